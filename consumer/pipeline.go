package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reindexer/reindexer/event"
	"github.com/reindexer/reindexer/indexer"
	"github.com/reindexer/reindexer/internal/metrics"
	"github.com/reindexer/reindexer/internal/throttle"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// part is the state of one assigned partition for one assignment. A
// partition that is revoked and later assigned again gets a new part.
type part struct {
	id    int32
	lane  *lane
	end   int64 // replay: records at or past this offset are not read; -1 unbounded
	dead  atomic.Bool
	ended atomic.Bool // replay: reached its end offset; fetching stays paused
	hwm   atomic.Int64

	// guarded by the lane's mu (written only by the poll goroutine)
	first, last, count int64
	reachedEnd         bool

	// guarded by pipeline.mu
	durable   int64 // every record below is durable; -1 until a batch completes
	epoch     int32
	committed int64 // last committed by this process; -1 none
}

// pipeline is the machinery shared by Run and Replay.
type pipeline struct {
	cfg   Config
	log   *slog.Logger
	m     *metrics.Metrics
	ix    *indexer.Indexer
	dec   *event.Decoder // poll goroutine only (under a lane's mu)
	cl    *kgo.Client
	dlq   *kgo.Client
	lanes []*lane
	ends  map[int32]int64 // replay bounds; nil for Run

	workCtx    context.Context // writes; cancelled only when shutdown gives up
	workCancel context.CancelFunc
	stopPoll   context.CancelFunc

	mu      sync.Mutex
	parts   map[int32]*part
	retired []*part // parts no longer owned, kept for the summary

	commitMu   sync.Mutex // serializes commits so they never go backwards
	commitNow  chan struct{}
	lastCommit atomic.Int64
	warnings   throttle.Log

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
	dec, err := event.NewDecoder(cfg.Decoder)
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	p := &pipeline{
		cfg:       cfg,
		log:       cfg.Logger,
		m:         cfg.Metrics,
		ix:        cfg.Indexer,
		dec:       dec,
		ends:      ends,
		parts:     map[int32]*part{},
		commitNow: make(chan struct{}, 1),
	}
	p.workCtx, p.workCancel = context.WithCancel(context.Background())
	for i := 0; i < cfg.Lanes; i++ {
		p.lanes = append(p.lanes, newLane(p, i))
	}
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
	p.lastCommit.Store(time.Now().UnixNano())
	p.pollLoop(pollCtx)
	stop()
	<-commitDone
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

func (p *pipeline) pollLoop(ctx context.Context) {
	for {
		fs := p.cl.PollRecords(ctx, p.cfg.MaxPollRecords)
		if fs.IsClientClosed() {
			return
		}
		if ctx.Err() != nil {
			p.cl.AllowRebalance()
			return
		}
		fs.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			p.warn("fetch error (franz-go retries it)", "topic", topic, "partition", partition, "err", err)
		})
		fs.EachPartition(func(ftp kgo.FetchTopicPartition) {
			p.mu.Lock()
			pt := p.parts[ftp.Partition]
			p.mu.Unlock()
			if pt == nil || pt.dead.Load() {
				return
			}
			pt.hwm.Store(ftp.HighWatermark)
			if len(ftp.Records) == 0 {
				return
			}
			p.m.RecordsConsumed.WithLabelValues(p.cfg.Topic).Add(float64(len(ftp.Records)))
			pt.lane.append(pt, ftp.Records)
			if pt.end >= 0 && ftp.Records[len(ftp.Records)-1].Offset+1 >= pt.end && !pt.ended.Swap(true) {
				// A replayed partition that reached its end stops fetching.
				p.pause([]int32{pt.id}, true)
			}
		})
		p.cl.AllowRebalance()
	}
}

// add appends one record to b. Called by the poll goroutine with the lane
// locked.
func (p *pipeline) add(b *batch, pt *part, r *kgo.Record) {
	if r.Attrs.IsControl() {
		b.mark(pt, r) // transaction markers take an offset: commit past them
		return
	}
	if pt.end >= 0 && r.Offset >= pt.end {
		if !pt.reachedEnd {
			// Nothing between the last record read and this one exists
			// (compacted, aborted, or deleted by retention), so the
			// partition is complete up to its end.
			pt.reachedEnd = true
			b.markAt(pt, pt.end, r.LeaderEpoch)
		}
		return
	}
	if pt.count == 0 {
		pt.first = r.Offset
	}
	pt.last = r.Offset
	pt.count++
	p.stats.records.Add(1)
	b.bytes += len(r.Key) + len(r.Value)
	ev, err := p.dec.Decode(r)
	if err != nil {
		var de *event.Error
		if !errors.As(err, &de) {
			de = &event.Error{Reason: event.ReasonMalformedJSON, Detail: err.Error()}
		}
		b.dead = append(b.dead, deadRec{part: pt, rec: r, class: "decode", reason: string(de.Reason), detail: de.Detail})
		b.mark(pt, r)
		return
	}
	p.ix.Add(&b.ib, &ev)
	b.refs = append(b.refs, ref{part: pt, rec: r})
	b.mark(pt, r)
}

func (p *pipeline) full(b *batch) bool {
	return b.ib.Size() >= p.cfg.BatchBytes || b.ib.Len()+len(b.dead) >= p.cfg.BatchDocs
}

func (p *pipeline) getBatch() *batch {
	b, _ := p.batches.Get().(*batch)
	if b == nil {
		// Sized once so appends never double the buffer past the limit.
		b = &batch{}
		b.ib.Grow(p.cfg.BatchBytes + 64<<10)
	}
	return b
}

func (p *pipeline) putBatch(b *batch) {
	p.m.BufferedBytes.Sub(float64(b.bytes))
	b.reset()
	p.batches.Put(b)
}

// process writes one batch: index it, dead-letter what can never be indexed,
// then mark its partitions durable. Runs on the lane's sender goroutine.
func (p *pipeline) process(b *batch) {
	p.m.BufferedBytes.Add(float64(b.bytes))
	ctx := p.workCtx
	if b.ib.Len() > 0 {
		keep := func(i int) bool { return !b.refs[i].part.dead.Load() }
		if err := p.ix.Write(ctx, &b.ib, keep); err != nil {
			return // shutdown gave up: nothing here becomes durable
		}
		for i := range b.ib.Items {
			it := &b.ib.Items[i]
			if it.Result == indexer.Permanent && !b.refs[i].part.dead.Load() {
				b.dead = append(b.dead, deadRec{part: b.refs[i].part, rec: b.refs[i].rec, class: "index",
					reason: it.ErrType, detail: it.ErrReason})
			}
		}
	}
	if len(b.dead) > 0 {
		if err := p.deadLetter(ctx, b.dead); err != nil {
			return
		}
	}
	p.complete(b)
}

// complete advances the durable offsets of the batch's live partitions and
// counts its results.
func (p *pipeline) complete(b *batch) {
	p.mu.Lock()
	for _, mk := range b.marks {
		pt := mk.part
		if pt.dead.Load() {
			continue
		}
		if mk.next > pt.durable {
			pt.durable, pt.epoch = mk.next, mk.epoch
			if pt.end >= 0 && pt.durable >= pt.end {
				// A replayed partition is complete: commit it now rather
				// than at the next interval.
				select {
				case p.commitNow <- struct{}{}:
				default:
				}
			}
		}
	}
	p.mu.Unlock()
	var n [indexer.Abandoned + 1]int64
	for i := range b.ib.Items {
		n[b.ib.Items[i].Result]++
	}
	s := &p.stats
	s.created.Add(n[indexer.Created])
	s.updated.Add(n[indexer.Updated])
	s.deleted.Add(n[indexer.Deleted])
	s.notFound.Add(n[indexer.NotFound])
	s.stale.Add(n[indexer.Stale])
	s.duplicate.Add(n[indexer.Duplicate])
}

func (p *pipeline) commitLoop(ctx context.Context) {
	t := time.NewTicker(p.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.commitNow:
		case <-t.C:
		}
		if err := p.commit(ctx, nil); err != nil && ctx.Err() == nil {
			p.warn("offset commit failed; it is retried at the next interval", "group", p.cfg.Group, "err", err)
		}
	}
}

// commit commits the durable offsets of the given partitions (all live ones
// if nil) that moved since their last commit.
func (p *pipeline) commit(ctx context.Context, only []*part) error {
	p.commitMu.Lock()
	defer p.commitMu.Unlock()
	return p.commitLocked(ctx, only)
}

func (p *pipeline) commitLocked(ctx context.Context, only []*part) error {
	p.mu.Lock()
	if only == nil {
		for _, pt := range p.parts {
			only = append(only, pt)
		}
	}
	offs := map[int32]kgo.EpochOffset{}
	var list []*part
	for _, pt := range only {
		if pt.durable > pt.committed {
			offs[pt.id] = kgo.EpochOffset{Epoch: pt.epoch, Offset: pt.durable}
			list = append(list, pt)
		}
	}
	p.mu.Unlock()
	if len(offs) == 0 {
		p.lastCommit.Store(time.Now().UnixNano())
		return nil
	}
	var cerr error
	p.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{p.cfg.Topic: offs},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				cerr = err
				return
			}
			for _, t := range resp.Topics {
				for _, pr := range t.Partitions {
					if e := kerr.ErrorForCode(pr.ErrorCode); e != nil && cerr == nil {
						cerr = fmt.Errorf("partition %d: %w", pr.Partition, e)
					}
				}
			}
		})
	if cerr != nil {
		p.m.Commits.WithLabelValues("error").Inc()
		return fmt.Errorf("commit to group %s: %w", p.cfg.Group, cerr)
	}
	p.m.Commits.WithLabelValues("ok").Inc()
	p.lastCommit.Store(time.Now().UnixNano())
	done := make(map[int32]int64, len(list))
	p.mu.Lock()
	for _, pt := range list {
		off := offs[pt.id].Offset
		if off > pt.committed {
			pt.committed = off
		}
		done[pt.id] = off
		p.m.Committed(p.cfg.Topic, pt.id).Set(float64(off))
		if h := pt.hwm.Load(); h > 0 {
			p.m.Lag(p.cfg.Topic, pt.id).Set(float64(max(h-off, 0)))
		}
		if pt.end >= 0 {
			p.m.ReplayRemaining.WithLabelValues(p.cfg.Topic, itoa(pt.id)).Set(float64(max(pt.end-off, 0)))
		}
	}
	p.mu.Unlock()
	if p.cfg.OnCommit != nil {
		p.cfg.OnCommit(done)
	}
	return nil
}

// assigned creates state for newly assigned partitions and spreads them over
// the lanes.
func (p *pipeline) assigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := assigned[p.cfg.Topic]
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		if old := p.parts[id]; old != nil {
			old.dead.Store(true)
			old.lane.nparts--
			old.lane.mu.Lock()
			delete(old.lane.parts, id)
			old.lane.mu.Unlock()
		}
		ln := p.lanes[0]
		for _, l := range p.lanes[1:] {
			if l.nparts < ln.nparts {
				ln = l
			}
		}
		ln.nparts++
		end := int64(-1)
		if p.ends != nil {
			e, ok := p.ends[id]
			if !ok {
				e = 0 // not in the plan: read nothing
			}
			end = e
		}
		pt := &part{id: id, lane: ln, end: end, durable: -1, committed: -1}
		p.parts[id] = pt
		ln.mu.Lock()
		ln.parts[id] = pt
		ln.mu.Unlock()
	}
	p.m.Rebalances.WithLabelValues("assigned").Add(float64(len(ids)))
	if len(ids) > 0 {
		p.log.Info("partitions assigned", "topic", p.cfg.Topic, "partitions", ids, "owned", len(p.parts))
	}
}

// revoked finishes (or, after RevokeTimeout, abandons) the in-flight work of
// revoked partitions, commits what is durable, and forgets them.
func (p *pipeline) revoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	ids := revoked[p.cfg.Topic]
	parts := p.lookup(ids)
	if len(parts) == 0 {
		return
	}
	lanes := map[*lane]uint64{}
	for _, pt := range parts {
		if _, ok := lanes[pt.lane]; !ok {
			lanes[pt.lane] = pt.lane.flush()
		}
	}
	deadline := time.After(p.cfg.RevokeTimeout)
	finished := true
	for l, target := range lanes {
		if !l.waitDone(target, deadline) {
			finished = false
		}
	}
	p.commitMu.Lock()
	for _, pt := range parts {
		pt.dead.Store(true) // late completions no longer count
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	err := p.commitLocked(cctx, parts)
	cancel()
	p.commitMu.Unlock()
	p.forget(parts)
	p.m.Rebalances.WithLabelValues("revoked").Add(float64(len(parts)))
	switch {
	case !finished:
		p.log.Warn("partitions revoked before their writes finished; the unfinished records are left to the next owner",
			"partitions", ids, "timeout", p.cfg.RevokeTimeout)
	case err != nil:
		p.log.Warn("partitions revoked; final commit failed, the next owner re-reads from the previous commit", "partitions", ids, "err", err)
	default:
		p.log.Info("partitions revoked", "topic", p.cfg.Topic, "partitions", ids)
	}
}

// lost drops partitions whose ownership is already gone: no commit.
func (p *pipeline) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	parts := p.lookup(lost[p.cfg.Topic])
	for _, pt := range parts {
		pt.dead.Store(true)
	}
	p.forget(parts)
	p.m.Rebalances.WithLabelValues("lost").Add(float64(len(parts)))
	if len(parts) > 0 {
		p.log.Warn("partitions lost (session expired); uncommitted records will be re-read by their next owner",
			"partitions", lost[p.cfg.Topic])
	}
}

func (p *pipeline) lookup(ids []int32) []*part {
	p.mu.Lock()
	defer p.mu.Unlock()
	var parts []*part
	for _, id := range ids {
		if pt := p.parts[id]; pt != nil {
			parts = append(parts, pt)
		}
	}
	return parts
}

func (p *pipeline) forget(parts []*part) {
	var ids []int32
	p.mu.Lock()
	for _, pt := range parts {
		if p.parts[pt.id] == pt {
			delete(p.parts, pt.id)
			pt.lane.nparts--
		}
		p.retired = append(p.retired, pt)
		ids = append(ids, pt.id)
		p.m.Forget(p.cfg.Topic, pt.id)
		pt.lane.mu.Lock()
		if pt.lane.parts[pt.id] == pt {
			delete(pt.lane.parts, pt.id)
		}
		pt.lane.mu.Unlock()
	}
	p.mu.Unlock()
	// Pauses outlive assignments; a later owner must fetch again.
	p.pause(ids, false)
}

// pause pauses (or resumes) fetching of partitions of the topic.
func (p *pipeline) pause(ids []int32, on bool) {
	if len(ids) == 0 {
		return
	}
	tp := map[string][]int32{p.cfg.Topic: ids}
	if on {
		p.cl.PauseFetchPartitions(tp)
	} else {
		p.cl.ResumeFetchPartitions(tp)
	}
}

// shutdown drains the lanes, commits, and leaves the group.
func (p *pipeline) shutdown() {
	deadline := time.After(p.cfg.ShutdownTimeout)
	targets := make([]uint64, len(p.lanes))
	for i, l := range p.lanes {
		targets[i] = l.flush()
	}
	drained := true
	for i, l := range p.lanes {
		if !l.waitDone(targets[i], deadline) {
			drained = false
		}
	}
	if !drained {
		p.log.Warn("shutdown timeout: abandoning in-flight writes; their records stay uncommitted and are re-read on restart",
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
	per := map[int32]PartitionSummary{}
	for _, pt := range append(append([]*part(nil), p.retired...), mapValues(p.parts)...) {
		pt.lane.mu.Lock()
		first, last, count := pt.first, pt.last, pt.count
		pt.lane.mu.Unlock()
		if count == 0 {
			continue
		}
		ps, ok := per[pt.id]
		if !ok || first < ps.First {
			ps.First = first
		}
		ps.Last = max(ps.Last, last)
		ps.Records += count
		per[pt.id] = ps
	}
	p.mu.Unlock()
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

func mapValues(m map[int32]*part) []*part {
	out := make([]*part, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
