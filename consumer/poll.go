package consumer

import (
	"context"
	"errors"

	"github.com/reindexer/reindexer/event"
	"github.com/twmb/franz-go/pkg/kgo"
)

// pollLoop fetches records and hands each partition's records to its lane.
// It never waits for a lane (a full lane pauses its partitions instead), so
// it never delays a rebalance.
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
			if pt != nil && pt.wanted() {
				pt.hwm.Store(ftp.HighWatermark)
				// Lag moves with every fetch, not only with commits: a
				// worker whose writes are stuck shows its lag growing.
				p.m.Lag(p.cfg.Topic, pt.id).Set(float64(pt.lagLocked()))
			}
			p.mu.Unlock()
			if pt == nil || !pt.wanted() {
				return
			}
			if len(ftp.Records) == 0 {
				return
			}
			last := ftp.Records[len(ftp.Records)-1].Offset
			pt.base.CompareAndSwap(-1, ftp.Records[0].Offset)
			pt.polled.Store(last + 1)
			p.m.RecordsConsumed.WithLabelValues(p.cfg.Topic).Add(float64(len(ftp.Records)))
			pt.lane.append(pt, ftp.Records)
			if pt.end >= 0 && last+1 >= pt.end && !pt.ended.Swap(true) {
				// A replayed partition that reached its end stops fetching.
				p.pause([]int32{pt.id}, true)
			}
		})
		p.cl.AllowRebalance()
	}
}

// add appends one record to b. Called with pt's lane locked (by the poll
// goroutine, or by the lane's sender when it moves overflow records into a
// batch).
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
	ev, err := pt.lane.dec.Decode(r)
	if err != nil {
		var de *event.Error
		if !errors.As(err, &de) {
			de = &event.Error{Reason: event.ReasonMalformedJSON, Detail: err.Error()}
		}
		b.dead = append(b.dead, deadRec{part: pt, offset: r.Offset, rec: r, class: "decode", reason: string(de.Reason), detail: de.Detail})
		b.mark(pt, r)
		return
	}
	p.ix.Add(&b.ib, &ev)
	b.refs = append(b.refs, ref{part: pt, offset: r.Offset})
	b.mark(pt, r)
}

// full reports whether b is as large as a batch may get: by bulk body bytes,
// by the bytes of the records it holds (records that failed to decode add
// no body but are held for the dead-letter topic), or by count. The
// limits are the indexer's for now (indexer.Indexer.BatchLimits): smaller
// while adaptive concurrency asks for smaller bulks or a rate is capped.
func (p *pipeline) full(b *batch) bool {
	docs, bytes := p.ix.BatchLimits(p.cfg.BatchDocs, p.cfg.BatchBytes)
	return max(b.ib.Size(), b.bytes) >= bytes || b.ib.Len()+len(b.dead) >= docs
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
