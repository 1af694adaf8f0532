package probe

import (
	"math"
	"slices"
	"sync"
	"time"
)

// SideStats is what one side did during one step.
type SideStats struct {
	// Scheduled is how many requests were due during the step.
	Scheduled int
	// Sent is how many of them were sent (Scheduled minus Unsent).
	Sent int
	// OK counts complete 2xx answers.
	OK int
	// Errors counts failed requests other than rejections: transport
	// errors, timeouts, non-2xx answers other than 429, and 2xx answers
	// with failed shards or timed_out (an answer from part of the data).
	Errors int
	// Rejected counts 429 answers (the cluster shed the load).
	Rejected int
	// Unsent counts requests not sent because MaxInFlight requests of this
	// side were still waiting for an answer when they were due.
	Unsent int
	// P50, P99 and Max are latencies of the answered requests (any
	// status), measured from when each request was due.
	P50, P99, Max time.Duration
	// Achieved is the rate at which requests were sent (Sent per second of
	// the step's schedule): below the step's rate when requests went
	// unsent.
	Achieved float64
	// FirstError describes the step's first failure, if any.
	FirstError string
}

// ErrorRate is the share of scheduled requests that failed in any way:
// errors, rejections and unsent requests.
func (s SideStats) ErrorRate() float64 {
	if s.Scheduled == 0 {
		return 0
	}
	return float64(s.Errors+s.Rejected+s.Unsent) / float64(s.Scheduled)
}

// RejectionRate is the share of scheduled requests answered 429.
func (s SideStats) RejectionRate() float64 {
	if s.Scheduled == 0 {
		return 0
	}
	return float64(s.Rejected) / float64(s.Scheduled)
}

// outcome is how one request ended.
type outcome int

const (
	outcomeOK outcome = iota
	outcomeError
	outcomeRejected
	outcomeUnsent
)

// String is the outcome's metric label.
func (o outcome) String() string {
	switch o {
	case outcomeOK:
		return "ok"
	case outcomeRejected:
		return "rejected"
	case outcomeUnsent:
		return "unsent"
	}
	return "error"
}

// sideAcc accumulates one side's requests of one step. It is safe for
// concurrent use.
type sideAcc struct {
	mu        sync.Mutex
	latencies []time.Duration
	stats     SideStats
}

// add records one request; latency is ignored for unsent requests.
func (a *sideAcc) add(o outcome, latency time.Duration, errText string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stats.Scheduled++
	switch o {
	case outcomeUnsent:
		a.stats.Unsent++
	case outcomeOK:
		a.stats.OK++
	case outcomeRejected:
		a.stats.Rejected++
	default:
		a.stats.Errors++
	}
	if o != outcomeUnsent {
		a.stats.Sent++
		a.latencies = append(a.latencies, latency)
	}
	if o != outcomeOK && a.stats.FirstError == "" {
		a.stats.FirstError = errText
	}
}

// result returns the step's stats for a schedule of span.
func (a *sideAcc) result(span time.Duration) SideStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.stats
	lat := slices.Clone(a.latencies)
	slices.Sort(lat)
	s.P50, s.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
	if len(lat) > 0 {
		s.Max = lat[len(lat)-1]
	}
	if span > 0 {
		s.Achieved = float64(s.Sent) / span.Seconds()
	}
	return s
}

// percentile returns the nearest-rank p-quantile of sorted (0 when empty):
// the smallest value with at least p of the values at or below it.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// Overlap is how similar the answers of the two sides were.
type Overlap struct {
	// Compared counts queries both sides answered successfully.
	Compared int
	// Differing counts those whose top-k ids were not the same set.
	Differing int
	// Sum is the sum of the per-query overlaps (Mean = Sum / Compared).
	Sum float64
}

// Mean is the mean overlap of the compared queries, in [0, 1]; 0 when
// nothing was compared.
func (o Overlap) Mean() float64 {
	if o.Compared == 0 {
		return 0
	}
	return o.Sum / float64(o.Compared)
}

// add records one compared query.
func (o *Overlap) add(v float64) {
	o.Compared++
	o.Sum += v
	if v < 1 {
		o.Differing++
	}
}

// merge adds other's counts to o.
func (o *Overlap) merge(other Overlap) {
	o.Compared += other.Compared
	o.Differing += other.Differing
	o.Sum += other.Sum
}

// TopKOverlap returns |a ∩ b| / max(|a|, |b|) of two lists of document ids
// (each holding distinct ids), 1 when both are empty.
func TopKOverlap(a, b []string) float64 {
	n := max(len(a), len(b))
	if n == 0 {
		return 1
	}
	in := make(map[string]struct{}, len(a))
	for _, id := range a {
		in[id] = struct{}{}
	}
	common := 0
	for _, id := range b {
		if _, ok := in[id]; ok {
			common++
		}
	}
	return float64(common) / float64(n)
}
