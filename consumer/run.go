package consumer

import (
	"context"
	"time"
)

// Summary counts what a Run or Replay did. Write counts are per item
// result; Records counts data records read (transaction markers excluded).
type Summary struct {
	Records      int64 `json:"records"`
	Created      int64 `json:"created"`
	Updated      int64 `json:"updated"`
	Deleted      int64 `json:"deleted"`
	NotFound     int64 `json:"not_found"`
	Stale        int64 `json:"stale"`
	Duplicate    int64 `json:"duplicate"`
	DeadLettered int64 `json:"dead_lettered"`
	// Partitions holds, per partition read, the first and last offsets
	// read and the number of data records.
	Partitions map[int32]PartitionSummary `json:"partitions,omitempty"`
	Duration   time.Duration              `json:"-"`
}

// PartitionSummary is what one partition contributed to a Summary.
type PartitionSummary struct {
	First   int64 `json:"first_offset"`
	Last    int64 `json:"last_offset"`
	Records int64 `json:"records"`
}

// Status is a point-in-time view of a running pipeline for health checks.
type Status struct {
	// Assigned is the number of partitions owned now.
	Assigned int
	// LastCommit is when a commit last succeeded, or when the pipeline was
	// last caught up (everything polled durable, nothing left to fetch). A
	// pipeline whose writes are stuck does not move it, so "Lag > 0 and
	// LastCommit long ago" is a stall.
	LastCommit time.Time
	// Lag is the sum over owned partitions of the high watermark minus the
	// durable offset (or, before anything became durable, minus the first
	// offset polled).
	Lag int64
}

// Service is a running consumer-group pipeline. Create it with New, start it
// with Run.
type Service struct {
	p *pipeline
}

// New checks cfg, connects the Kafka clients (lazily; no request is made
// yet) and returns a Service ready to Run.
func New(cfg Config) (*Service, error) {
	p, err := newPipeline(cfg, nil)
	if err != nil {
		return nil, err
	}
	return &Service{p: p}, nil
}

// Run consumes the topic as a member of the group and indexes every record
// until ctx is cancelled; then it finishes in-flight writes, commits, leaves
// the group and returns nil. It returns an error only when it had to stop
// on its own (e.g. a record that can never be indexed with no dead-letter
// topic configured); what was durable is committed even then.
func (s *Service) Run(ctx context.Context) error {
	return s.p.run(ctx)
}

// Summary returns the counts so far.
func (s *Service) Summary() Summary { return s.p.summary() }

// Status returns the service's health view.
func (s *Service) Status() Status {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	st := Status{Assigned: len(p.parts), LastCommit: time.Unix(0, p.lastCommit.Load())}
	for _, pt := range p.parts {
		st.Lag += pt.lagLocked()
	}
	return st
}
