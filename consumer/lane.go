package consumer

import (
	"context"
	"sync"
	"time"

	"github.com/reindexer/reindexer/event"
	"github.com/reindexer/reindexer/indexer"
	"github.com/twmb/franz-go/pkg/kgo"
)

// batch is one bulk request with the bookkeeping to commit behind it.
type batch struct {
	ib    indexer.Batch
	refs  []ref     // one per indexer item, same order
	dead  []deadRec // records that failed to decode
	marks []mark    // per partition: offset just past its last record here
	bytes int       // record bytes held (keys and values)
	first time.Time // when the first record was added
}

// ref is what a batch keeps of the record behind one bulk item: its
// partition and offset, not the record. Holding the records would pin the
// fetched (decompressed) batches they point into for as long as bulks are
// in flight, doubling the memory of every batch; the rare record that
// OpenSearch rejects is read back from Kafka to be dead-lettered.
type ref struct {
	part   *part
	offset int64
}

type deadRec struct {
	part   *part
	offset int64
	rec    *kgo.Record // nil until read back (index rejections)
	class  string      // "decode" or "index"
	reason string      // machine-readable reason
	detail string      // human-readable message
}

type mark struct {
	part  *part
	next  int64
	epoch int32
}

func (b *batch) reset() {
	b.ib.Reset()
	clear(b.refs)
	b.refs = b.refs[:0]
	clear(b.dead)
	b.dead = b.dead[:0]
	clear(b.marks)
	b.marks = b.marks[:0]
	b.bytes = 0
}

// mark records that everything of pt up to r is in this batch.
func (b *batch) mark(pt *part, r *kgo.Record) {
	for i := len(b.marks) - 1; i >= 0; i-- {
		if b.marks[i].part == pt {
			b.marks[i].next, b.marks[i].epoch = r.Offset+1, r.LeaderEpoch
			return
		}
	}
	b.marks = append(b.marks, mark{part: pt, next: r.Offset + 1, epoch: r.LeaderEpoch})
}

// markAt records that everything of pt below next is accounted for.
func (b *batch) markAt(pt *part, next int64, epoch int32) {
	for i := len(b.marks) - 1; i >= 0; i-- {
		if b.marks[i].part == pt {
			b.marks[i].next, b.marks[i].epoch = max(b.marks[i].next, next), epoch
			return
		}
	}
	b.marks = append(b.marks, mark{part: pt, next: next, epoch: epoch})
}

// lane is one ordered writer: it owns a set of partitions and sends their
// batches one at a time, in the order they were filled.
type lane struct {
	p  *pipeline
	id int

	// mu guards the fields below and the poll-side fields of its parts.
	// Lock order: pipeline.mu may be held while taking a lane's mu, never
	// the reverse.
	mu        sync.Mutex
	open      *batch // being filled by the poll goroutine
	sealed    *batch // full, waiting for the sender
	sealedSeq uint64 // batches handed to the sender so far
	doneSeq   uint64 // batches the sender has finished
	flushReq  bool   // send the open batch now, without lingering
	closed    bool   // no more batches; the sender exits when drained
	saturated bool   // the lane's partitions are paused until it has room
	parts     map[int32]*part
	// overflow holds records polled while the lane was full (open batch
	// full, sealed slot taken), in poll order, not yet encoded: they go
	// into batches as the sender frees the sealed slot. So no batch ever
	// grows past BatchBytes (plus one record), whatever a poll brings.
	overflow []pending
	dec      *event.Decoder // decodes into this lane's batches; used under mu
	progress chan struct{}
	wake     chan struct{}
	exited   chan struct{}

	nparts int // partitions assigned; guarded by pipeline.mu
}

// pending is a record waiting in a lane's overflow.
type pending struct {
	part *part
	rec  *kgo.Record
}

func newLane(p *pipeline, id int, dec *event.Decoder) *lane {
	return &lane{p: p, id: id, dec: dec, parts: map[int32]*part{}, progress: make(chan struct{}), wake: make(chan struct{}, 1), exited: make(chan struct{})}
}

// notify wakes everyone waiting for progress. Call with mu held.
func (l *lane) notify() {
	close(l.progress)
	l.progress = make(chan struct{})
}

func (l *lane) kick() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// append decodes records of one partition into the lane's open batch and
// seals it when full. It never waits: when the open batch is full and the
// sealed slot is still taken, the lane is saturated: its partitions are
// paused and the rest of the poll waits, undecoded, in the overflow until
// the sender takes the sealed batch. So one slow lane never holds up the
// others, never holds up a rebalance, and no batch outgrows its budget.
func (l *lane) append(pt *part, recs []*kgo.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, r := range recs {
		if len(l.overflow) > 0 || !l.room() {
			// Keep per-partition order: once records wait, every later one
			// waits behind them.
			for _, r := range recs[i:] {
				l.overflow = append(l.overflow, pending{pt, r})
			}
			break
		}
		l.p.add(l.open, pt, r)
	}
	if !l.saturated && len(l.overflow) > 0 {
		l.saturated = true
		l.p.m.LaneSaturated.Inc()
		l.p.pause(l.partitions(), true)
	}
}

// room makes sure there is an open batch that is not full, sealing a full
// one into the free sealed slot; it reports false when the open batch is
// full and the sealed slot taken. Call with mu held.
func (l *lane) room() bool {
	if l.open != nil && l.p.full(l.open) {
		if l.sealed != nil {
			return false
		}
		l.sealed, l.open = l.open, nil
		l.sealedSeq++
		l.kick()
	}
	if l.open == nil {
		l.open = l.p.getBatch()
		l.open.first = time.Now()
		l.kick()
	}
	return true
}

// fill moves overflow records into batches while there is room. Records of
// partitions no longer wanted (revoked, or broken) are dropped: they were
// never committed, so their next reader gets them. Call with mu held.
func (l *lane) fill() {
	n := 0
	for n < len(l.overflow) && l.room() {
		o := l.overflow[n]
		l.overflow[n] = pending{}
		n++
		if o.part.wanted() {
			l.p.add(l.open, o.part, o.rec)
		}
	}
	l.overflow = l.overflow[n:]
	if len(l.overflow) == 0 {
		l.overflow = nil
	}
}

// partitions lists the lane's partitions. Call with mu held.
func (l *lane) partitions() []int32 {
	ids := make([]int32, 0, len(l.parts))
	for id := range l.parts {
		ids = append(ids, id)
	}
	return ids
}

// unsaturate resumes the lane's partitions once it has room again (except
// replayed partitions that reached their end). Call with mu held.
func (l *lane) unsaturate() {
	if !l.saturated || len(l.overflow) > 0 || (l.sealed != nil && l.open != nil && l.p.full(l.open)) {
		return
	}
	l.saturated = false
	var ids []int32
	for id, pt := range l.parts {
		if !pt.ended.Load() {
			ids = append(ids, id)
		}
	}
	l.p.pause(ids, false)
}

// flush asks the sender to send whatever is buffered now and returns the
// sequence number that doneSeq reaches once it has.
func (l *lane) flush() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	target := l.sealedSeq
	if l.open != nil {
		target++
		l.flushReq = true
		l.kick()
	}
	return target
}

// waitDone waits until the sender has finished batch number target or ctx
// ends; it reports whether it got there.
func (l *lane) waitDone(ctx context.Context, target uint64) bool {
	for {
		l.mu.Lock()
		if l.doneSeq >= target {
			l.mu.Unlock()
			return true
		}
		ch := l.progress
		l.mu.Unlock()
		select {
		case <-ch:
		case <-l.exited:
			l.mu.Lock()
			ok := l.doneSeq >= target
			l.mu.Unlock()
			return ok
		case <-ctx.Done():
			return false
		}
	}
}

// close makes the sender exit once the batch it is sending (if any) is
// done, and drops what is still buffered: batches sealed or opened after
// the shutdown's flush and the overflow. Nothing of it was written, so
// nothing of it is committed and the next reader gets it again; sending it
// would keep a throttled worker (--max-rate, a guard) writing long after
// its drain deadline.
func (l *lane) close() {
	l.mu.Lock()
	l.closed = true
	for _, b := range []*batch{l.sealed, l.open} {
		if b != nil {
			b.reset() // never sent: not counted as buffered (putBatch would uncount it)
			l.p.batches.Put(b)
		}
	}
	l.sealed, l.open, l.overflow = nil, nil, nil
	l.kick()
	l.mu.Unlock()
}

// run is the sender goroutine.
func (l *lane) run() {
	defer close(l.exited)
	for {
		b := l.next()
		if b == nil {
			return
		}
		l.p.process(b)
		l.mu.Lock()
		l.doneSeq++
		l.notify()
		l.mu.Unlock()
		l.p.putBatch(b)
	}
}

// next returns the next batch to send, waiting for one: the sealed batch
// first, else the open batch once it has lingered (or a flush or close asks
// for it), else nil once the lane is closed and empty.
func (l *lane) next() *batch {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if l.sealed != nil {
			b := l.sealed
			l.sealed = nil
			if l.open != nil && l.p.full(l.open) {
				l.sealed, l.open = l.open, nil
				l.sealedSeq++
			}
			l.fill()
			l.unsaturate()
			l.notify()
			return b
		}
		l.fill()
		wait := time.Duration(-1)
		if l.open != nil {
			age := time.Since(l.open.first)
			if age >= l.p.cfg.Linger || l.flushReq || l.closed {
				b := l.open
				l.open = nil
				l.sealedSeq++
				l.flushReq = false
				l.notify()
				return b
			}
			wait = l.p.cfg.Linger - age
		} else if l.closed && len(l.overflow) == 0 {
			return nil
		}
		l.flushReq = false
		l.mu.Unlock()
		idleFrom := time.Now()
		if wait < 0 {
			<-l.wake
		} else {
			t := time.NewTimer(wait)
			select {
			case <-l.wake:
			case <-t.C:
			}
			t.Stop()
		}
		l.p.m.LaneIdle.Add(time.Since(idleFrom).Seconds())
		l.mu.Lock()
	}
}
