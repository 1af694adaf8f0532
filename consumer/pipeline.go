package consumer

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reindexer/reindexer/event"
	"github.com/reindexer/reindexer/indexer"
	"github.com/reindexer/reindexer/internal/metrics"
	"github.com/reindexer/reindexer/internal/throttle"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The pipeline's files follow the data path:
//
//	pipeline.go   the shared state, start and graceful shutdown
//	poll.go       fetch from Kafka, decode into the lanes' batches
//	lane.go       one ordered writer per set of partitions
//	write.go      one batch: bulk to OpenSearch, classify, dead-letter, mark durable
//	dlq.go        the dead-letter topic and its circuit breaker
//	commit.go     commit durable offsets (and tell the checkpoint history)
//	rebalance.go  partitions assigned, revoked and lost

// part is the state of one assigned partition for one assignment. A
// partition that is revoked and later assigned again gets a new part.
type part struct {
	id   int32
	lane *lane
	end  int64 // replay: records at or past this offset are not read; -1 unbounded
	dead atomic.Bool
	// broken is set when a batch holding records of this partition could
	// not be made durable (shutdown gave up, the dead-letter topic could
	// not take its records, the dead-letter breaker tripped). From then on
	// nothing of the partition is written or committed in this process: a
	// later batch completing must never move the commit past the failed
	// one. The next owner (or a restart) re-reads from the last commit.
	broken atomic.Bool
	ended  atomic.Bool  // replay: reached its end offset; fetching stays paused
	hwm    atomic.Int64 // high watermark at the last fetch
	polled atomic.Int64 // offset just past the last record polled; -1 none yet
	base   atomic.Int64 // offset of the first record polled; -1 none yet

	// guarded by the lane's mu (written only by the poll goroutine)
	first, last, count int64
	reachedEnd         bool

	// guarded by pipeline.mu
	durable   int64 // every record below is durable; -1 until a batch completes
	epoch     int32
	committed int64 // last committed by this process; -1 none
}

// wanted reports whether records of the partition may still be written.
func (pt *part) wanted() bool { return !pt.dead.Load() && !pt.broken.Load() }

// pipeline is the machinery shared by Run and Replay.
type pipeline struct {
	cfg   Config
	log   *slog.Logger
	m     *metrics.Metrics
	ix    *indexer.Indexer
	cl    *kgo.Client
	dlq   *kgo.Client
	lanes []*lane
	ends  map[int32]int64 // replay bounds; nil for Run

	workCtx    context.Context // writes; cancelled only when shutdown gives up
	workCancel context.CancelFunc
	stopPoll   context.CancelFunc
	stopping   atomic.Bool // the poll loop has ended; the lanes are draining

	mu      sync.Mutex
	parts   map[int32]*part
	retired map[int32]PartitionSummary // what parts no longer owned read, for the summary

	commitMu   sync.Mutex // serializes commits so they never go backwards
	commitNow  chan struct{}
	lastCommit atomic.Int64 // unix nanos of the last commit, or of the last time nothing was pending
	warnings   throttle.Log
	breaker    breaker

	failOnce sync.Once
	failErr  error

	batches sync.Pool
	stats   counters
}

type counters struct {
	records, created, updated, deleted, notFound, stale, duplicate, deadLettered atomic.Int64
}

func newPipeline(cfg Config, ends map[int32]int64) (*pipeline, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if _, err := event.NewDecoder(cfg.Decoder); err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	p := &pipeline{
		cfg:       cfg,
		log:       cfg.Logger,
		m:         cfg.Metrics,
		ix:        cfg.Indexer,
		ends:      ends,
		parts:     map[int32]*part{},
		retired:   map[int32]PartitionSummary{},
		commitNow: make(chan struct{}, 1),
		breaker:   newBreaker(cfg.DLQMaxRatio, cfg.DLQWindow),
	}
	p.workCtx, p.workCancel = context.WithCancel(context.Background())
	for i := 0; i < cfg.Lanes; i++ {
		dec, _ := event.NewDecoder(cfg.Decoder) // checked above
		p.lanes = append(p.lanes, newLane(p, i, dec))
	}
	var err error
	opts := append([]kgo.Opt{}, cfg.Kafka...)
	opts = append(opts, cfg.ConsumerKafka...)
	opts = append(opts,
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.ConsumeStartOffset(cfg.Start),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(cfg.FetchMaxBytes),
		kgo.MetadataMaxAge(cfg.MetadataMaxAge), // notices added partitions
		// Short fetch waits: a lane that resumes its paused partitions gets
		// data at the next fetch, not after the default 5s wait of the
		// fetch already in flight (measured: a 4-lane replay ran at half
		// speed with the default).
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.BrokerMaxReadBytes(max(cfg.FetchMaxBytes*2, 100<<20)),
		kgo.OnPartitionsAssigned(p.assigned),
		kgo.OnPartitionsRevoked(p.revoked),
		kgo.OnPartitionsLost(p.lost),
	)
	if cfg.SessionTimeout > 0 {
		opts = append(opts, kgo.SessionTimeout(cfg.SessionTimeout),
			kgo.HeartbeatInterval(max(cfg.SessionTimeout/10, 100*time.Millisecond)))
	}
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
	}
	if p.cl, err = kgo.NewClient(opts...); err != nil {
		return nil, fmt.Errorf("consumer: kafka client: %w", err)
	}
	if cfg.DLQTopic != "" {
		dopts := append([]kgo.Opt{}, cfg.Kafka...)
		dopts = append(dopts, kgo.DefaultProduceTopic(cfg.DLQTopic), kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.ProducerLinger(2*time.Millisecond))
		if p.dlq, err = kgo.NewClient(dopts...); err != nil {
			p.cl.Close()
			return nil, fmt.Errorf("consumer: dead-letter producer: %w", err)
		}
	}
	return p, nil
}

// run consumes until ctx ends or the pipeline fails, then shuts down
// gracefully. It returns nil after a clean shutdown.
func (p *pipeline) run(ctx context.Context) error {
	pollCtx, stop := context.WithCancel(ctx)
	p.stopPoll = stop
	defer stop()
	for _, l := range p.lanes {
		go l.run()
	}
	commitDone := make(chan struct{})
	go func() {
		defer close(commitDone)
		p.commitLoop(pollCtx)
	}()
	lagDone := make(chan struct{})
	go func() {
		defer close(lagDone)
		p.lagLoop(pollCtx)
	}()
	p.lastCommit.Store(time.Now().UnixNano())
	p.pollLoop(pollCtx)
	p.stopping.Store(true)
	stop()
	<-commitDone
	<-lagDone
	p.shutdown()
	return p.failErr
}

// fail stops the pipeline with err; the graceful shutdown still commits what
// is durable.
func (p *pipeline) fail(err error) {
	p.failOnce.Do(func() {
		p.failErr = err
		p.log.Error("stopping", "err", err)
		if p.stopPoll != nil {
			p.stopPoll()
		}
	})
}

// shutdown drains the lanes (for at most ShutdownTimeout, then abandons
// what is still in flight), commits what is durable, and leaves the group.
// A partition whose batch was abandoned is broken: nothing after it is
// committed, so a restart re-reads it.
func (p *pipeline) shutdown() {
	dctx, cancel := context.WithTimeout(context.Background(), p.cfg.ShutdownTimeout)
	targets := make([]uint64, len(p.lanes))
	for i, l := range p.lanes {
		targets[i] = l.flush()
	}
	drained := true
	for i, l := range p.lanes {
		// Every lane waits against the same deadline (a context, whose Done
		// channel stays closed for all of them, not a one-shot timer).
		if !l.waitDone(dctx, targets[i]) {
			drained = false
		}
	}
	cancel()
	if !drained {
		p.log.Warn("shutdown timeout: abandoning in-flight writes; their partitions are committed only up to the last durable record and are re-read on restart",
			"timeout", p.cfg.ShutdownTimeout)
		p.workCancel()
	}
	for _, l := range p.lanes {
		l.close()
	}
	for _, l := range p.lanes {
		<-l.exited
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	if err := p.commit(ctx, nil); err != nil {
		p.log.Warn("final commit failed; records since the last commit will be re-read", "err", err)
	}
	cancel()
	p.cl.CloseAllowingRebalance() // leaves the group; revoked() finds nothing left to do
	if p.dlq != nil {
		p.dlq.Close()
	}
	p.workCancel()
}

// warn logs at most one warning every few seconds; metrics count every
// event.
func (p *pipeline) warn(msg string, args ...any) { p.warnings.Warn(p.log, msg, args...) }

func (p *pipeline) summary() Summary {
	s := &p.stats
	p.mu.Lock()
	per := make(map[int32]PartitionSummary, len(p.retired)+len(p.parts))
	for id, ps := range p.retired {
		per[id] = ps
	}
	for _, pt := range p.parts {
		pt.lane.mu.Lock()
		per[pt.id] = pt.fold(per[pt.id])
		pt.lane.mu.Unlock()
	}
	p.mu.Unlock()
	for id, ps := range per {
		if ps.Records == 0 {
			delete(per, id)
		}
	}
	return Summary{
		Partitions:   per,
		Records:      s.records.Load(),
		Created:      s.created.Load(),
		Updated:      s.updated.Load(),
		Deleted:      s.deleted.Load(),
		NotFound:     s.notFound.Load(),
		Stale:        s.stale.Load(),
		Duplicate:    s.duplicate.Load(),
		DeadLettered: s.deadLettered.Load(),
	}
}

// fold adds what pt read to ps. Call with pt.lane.mu held.
func (pt *part) fold(ps PartitionSummary) PartitionSummary {
	if pt.count == 0 {
		return ps
	}
	if ps.Records == 0 || pt.first < ps.First {
		ps.First = pt.first
	}
	ps.Last = max(ps.Last, pt.last)
	ps.Records += pt.count
	return ps
}
