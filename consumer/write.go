package consumer

import (
	"fmt"

	"github.com/reindexer/reindexer/indexer"
	"github.com/reindexer/reindexer/internal/metrics"
)

// process writes one batch: index it, dead-letter what can never be indexed,
// then mark its partitions durable. Runs on the lane's sender goroutine.
//
// What is committed when it gives up: nothing of the batch. Every partition
// with records in it is broken (see part.broken), so no later batch of the
// same partition moves its commit past the records that were not written.
func (p *pipeline) process(b *batch) {
	p.m.BufferedBytes.Add(float64(b.bytes))
	ctx := p.workCtx
	if b.ib.Len() > 0 {
		keep := func(i int) bool { return b.refs[i].part.wanted() }
		if err := p.ix.Write(ctx, &b.ib, keep); err != nil {
			p.abandon(b, fmt.Errorf("bulk to %s: %w", p.ix.Config().Index, err))
			return
		}
		for i := range b.ib.Items {
			it := &b.ib.Items[i]
			if it.Result == indexer.Permanent && b.refs[i].part.wanted() {
				b.dead = append(b.dead, deadRec{part: b.refs[i].part, offset: b.refs[i].offset, class: "index",
					reason: it.ErrType, detail: it.ErrReason})
			}
		}
	}
	if len(b.dead) > 0 {
		if err := p.breaker.add(b.ib.Len()+countDecodeDead(b), len(b.dead)); err != nil {
			p.fail(fmt.Errorf("%w; nothing of this batch is committed: check --index, the mapping and the --*-from flags, then restart (it resumes at the last commit)", err))
			p.abandon(b, err)
			return
		}
		if err := p.deadLetter(ctx, b.dead); err != nil {
			p.abandon(b, err)
			return
		}
	}
	p.complete(b)
}

// countDecodeDead counts the records of b that failed to decode (they have
// no bulk item).
func countDecodeDead(b *batch) int {
	n := 0
	for _, d := range b.dead {
		if d.class == "decode" {
			n++
		}
	}
	return n
}

// abandon gives up on b: its partitions become broken (nothing of them is
// written or committed any more in this process), and items that did not
// reach a final result are counted as failed. Outside a shutdown, a broken
// partition stops the pipeline: continuing would only fetch records it may
// never commit.
func (p *pipeline) abandon(b *batch, why error) {
	var broken []int32
	for _, mk := range b.marks {
		if !mk.part.dead.Load() && !mk.part.broken.Swap(true) {
			broken = append(broken, mk.part.id)
		}
	}
	failed := 0
	for i := range b.ib.Items {
		if r := b.ib.Items[i].Result; r == indexer.Pending || r == indexer.Permanent {
			failed++
		}
	}
	failed += countDecodeDead(b)
	p.m.Write(metrics.Failed, failed)
	if len(broken) == 0 {
		return
	}
	p.log.Warn("batch not written; its partitions are committed only up to their last durable record, and are re-read from there",
		"partitions", broken, "records_not_durable", failed, "reason", why)
	if !p.stopping.Load() {
		p.fail(fmt.Errorf("partitions %v: a batch could not be made durable (%w); stopping so that nothing is committed past it", broken, why))
	}
}

// complete advances the durable offsets of the batch's partitions and counts
// its results. A partition advances only if every item of it in the batch
// has a durable result; otherwise it is broken (a defence in depth: process
// never lets such a batch reach here).
func (p *pipeline) complete(b *batch) {
	for i := range b.ib.Items {
		if r := b.ib.Items[i].Result; r == indexer.Pending || r == indexer.Abandoned {
			b.refs[i].part.broken.Store(true)
		}
	}
	p.mu.Lock()
	for _, mk := range b.marks {
		pt := mk.part
		if !pt.wanted() {
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
