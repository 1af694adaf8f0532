package consumer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/reindexer/reindexer/internal/metrics"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Headers added to every dead-lettered record, next to its original
// headers. The key and value are the original record's, byte for byte.
const (
	HeaderErrorClass      = "reindexer.error.class"      // "decode" (bad event) or "index" (OpenSearch rejected it)
	HeaderErrorReason     = "reindexer.error.reason"     // e.g. malformed_json, id_too_long, mapper_parsing_exception
	HeaderErrorMessage    = "reindexer.error.message"    // human-readable detail
	HeaderSourceTopic     = "reindexer.source.topic"     // where the record came from
	HeaderSourcePartition = "reindexer.source.partition" // decimal
	HeaderSourceOffset    = "reindexer.source.offset"    // decimal
	HeaderSourceTimestamp = "reindexer.source.timestamp" // record timestamp, ms since epoch, decimal
	HeaderIndex           = "reindexer.index"            // the target index
)

// deadLetter produces recs to the dead-letter topic and waits until every
// one is acknowledged, retrying failures with backoff until ctx ends. Only
// then may the records' offsets be committed. Records of partitions revoked
// meanwhile are dropped from the retries (their next owner re-reads them);
// when none is left it returns errRevoked.
func (p *pipeline) deadLetter(ctx context.Context, recs []deadRec) error {
	if p.dlq == nil {
		d := recs[0]
		err := fmt.Errorf("record %s/%d@%d cannot be indexed (%s: %s) and no dead-letter topic is configured (set --dlq-topic); stopping without committing it",
			p.cfg.Topic, d.part.id, d.offset, d.reason, d.detail)
		p.fail(err)
		return err
	}
	if err := p.readBack(ctx, recs); err != nil {
		return err
	}
	out := make([]*kgo.Record, 0, len(recs))
	owner := make(map[*kgo.Record]*part, len(recs))
	for _, d := range recs {
		if !d.part.wanted() || d.rec == nil {
			continue
		}
		r := d.rec
		h := make([]kgo.RecordHeader, 0, len(r.Headers)+8)
		h = append(h, r.Headers...)
		h = append(h,
			kgo.RecordHeader{Key: HeaderErrorClass, Value: []byte(d.class)},
			kgo.RecordHeader{Key: HeaderErrorReason, Value: []byte(d.reason)},
			kgo.RecordHeader{Key: HeaderErrorMessage, Value: []byte(d.detail)},
			kgo.RecordHeader{Key: HeaderSourceTopic, Value: []byte(r.Topic)},
			kgo.RecordHeader{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
			kgo.RecordHeader{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
			kgo.RecordHeader{Key: HeaderSourceTimestamp, Value: []byte(strconv.FormatInt(r.Timestamp.UnixMilli(), 10))},
			kgo.RecordHeader{Key: HeaderIndex, Value: []byte(p.ix.Config().Index)},
		)
		dr := &kgo.Record{Topic: p.cfg.DLQTopic, Key: r.Key, Value: r.Value, Headers: h}
		owner[dr] = d.part
		out = append(out, dr)
		p.warn("record dead-lettered", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset,
			"class", d.class, "reason", d.reason, "detail", d.detail, "dlq_topic", p.cfg.DLQTopic)
	}
	bo := backoff.NewExponentialBackOff(backoff.WithInitialInterval(200*time.Millisecond),
		backoff.WithMaxInterval(30*time.Second), backoff.WithMaxElapsedTime(0))
	for len(out) > 0 {
		res := p.dlq.ProduceSync(ctx, out...)
		var failed []*kgo.Record
		var firstErr error
		for _, pr := range res {
			if pr.Err != nil {
				if owner[pr.Record].wanted() {
					failed = append(failed, pr.Record)
				}
				if firstErr == nil {
					firstErr = pr.Err
				}
				continue
			}
			p.m.DeadLettered.WithLabelValues(headerValue(pr.Record, HeaderErrorReason)).Inc()
			p.m.Write(metrics.DeadLettered, 1)
			p.stats.deadLettered.Add(1)
		}
		if len(failed) == 0 {
			if firstErr != nil {
				return errRevoked
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.log.Error("dead-letter produce failed; the records stay uncommitted and are retried",
			"dlq_topic", p.cfg.DLQTopic, "records", len(failed), "err", firstErr)
		p.m.Retries.WithLabelValues("dlq").Add(float64(len(failed)))
		out = failed
		t := time.NewTimer(bo.NextBackOff())
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// readBack fills in the records of dead that the pipeline did not keep
// (bulk items OpenSearch rejected; see ref) by reading them again from
// Kafka, by partition and offset, with the consumer's isolation level. It
// retries with backoff until ctx ends; records of partitions no longer
// wanted are left nil (deadLetter skips them).
func (p *pipeline) readBack(ctx context.Context, dead []deadRec) error {
	bo := backoff.NewExponentialBackOff(backoff.WithInitialInterval(200*time.Millisecond),
		backoff.WithMaxInterval(30*time.Second), backoff.WithMaxElapsedTime(0))
	for {
		want := map[int32]map[int64][]int{} // partition -> offset -> indices in dead
		for i, d := range dead {
			if d.rec == nil && d.part.wanted() {
				if want[d.part.id] == nil {
					want[d.part.id] = map[int64][]int{}
				}
				want[d.part.id][d.offset] = append(want[d.part.id][d.offset], i)
			}
		}
		if len(want) == 0 {
			return nil
		}
		err := p.fetchOffsets(ctx, want, func(r *kgo.Record) {
			for _, i := range want[r.Partition][r.Offset] {
				dead[i].rec = r
			}
			delete(want[r.Partition], r.Offset)
		})
		if err == nil {
			continue // all found; the loop ends at the check above
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.warn("reading rejected records back from Kafka failed; retrying", "topic", p.cfg.Topic, "err", err)
		t := time.NewTimer(bo.NextBackOff())
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// fetchOffsets reads the given offsets of the topic's partitions with a
// short-lived direct (groupless) consumer and calls found for each.
func (p *pipeline) fetchOffsets(ctx context.Context, want map[int32]map[int64][]int, found func(*kgo.Record)) error {
	starts := map[int32]kgo.Offset{}
	last := map[int32]int64{}
	for part, offs := range want {
		lo, hi := int64(-1), int64(-1)
		for o := range offs {
			if lo < 0 || o < lo {
				lo = o
			}
			hi = max(hi, o)
		}
		starts[part] = kgo.NewOffset().At(lo)
		last[part] = hi
	}
	opts := append([]kgo.Opt{}, p.cfg.Kafka...)
	opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{p.cfg.Topic: starts}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(200*time.Millisecond))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("read back from %s: %w", p.cfg.Topic, err)
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for len(last) > 0 {
		fs := cl.PollFetches(rctx)
		if err := rctx.Err(); err != nil {
			return fmt.Errorf("read back offsets %v of %s: %w", last, p.cfg.Topic, err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return fmt.Errorf("read back from %s: %w", p.cfg.Topic, ferr)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if _, ok := want[r.Partition][r.Offset]; ok {
				found(r)
			}
			if hi, ok := last[r.Partition]; ok && r.Offset >= hi {
				delete(last, r.Partition)
			}
		})
	}
	for part, offs := range want {
		if len(offs) > 0 {
			return fmt.Errorf("read back from %s: partition %d no longer holds offsets %v", p.cfg.Topic, part, offs)
		}
	}
	return nil
}

// errRevoked: the records still to dead-letter belong to partitions this
// process no longer owns.
var errRevoked = errors.New("partitions revoked while their records were being dead-lettered")

// Defaults of the dead-letter breaker.
const (
	DefaultDLQMaxRatio = 0.5
	DefaultDLQWindow   = 1000
)

// breaker stops the pipeline when more than maxRatio of the last window
// records had to be dead-lettered: that many bad records is a wrong index,
// mapping or decoding configuration, not bad data, and dead-lettering (and
// committing) the whole topic would be a silent disaster. It judges only
// once it has seen window/10 records. A zero value never trips.
type breaker struct {
	mu       sync.Mutex
	maxRatio float64
	ring     []bool // true: dead-lettered
	pos, n   int
	dead     int
}

func newBreaker(maxRatio float64, window int) breaker {
	if maxRatio <= 0 || maxRatio >= 1 || window <= 0 {
		return breaker{}
	}
	return breaker{maxRatio: maxRatio, ring: make([]bool, window)}
}

// add records a batch of total records of which dead are to be
// dead-lettered, and returns an error when the breaker trips.
func (b *breaker) add(total, dead int) error {
	if b.ring == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := 0; i < total; i++ {
		d := i < dead
		if b.n == len(b.ring) {
			if b.ring[b.pos] {
				b.dead--
			}
		} else {
			b.n++
		}
		b.ring[b.pos] = d
		if d {
			b.dead++
		}
		b.pos = (b.pos + 1) % len(b.ring)
	}
	if b.n >= max(len(b.ring)/10, 1) && float64(b.dead) > b.maxRatio*float64(b.n) {
		return fmt.Errorf("dead-letter breaker: %d of the last %d records could not be indexed (over --dlq-max-ratio %.2f)",
			b.dead, b.n, b.maxRatio)
	}
	return nil
}

func headerValue(r *kgo.Record, key string) string {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == key {
			return string(r.Headers[i].Value)
		}
	}
	return ""
}

func itoa(i int32) string { return strconv.Itoa(int(i)) }
