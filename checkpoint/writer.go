package checkpoint

import (
	"context"
	"log/slog"
	"maps"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Writer defaults and timings.
const (
	// DefaultInterval is how often a Writer writes by default.
	DefaultInterval = 5 * time.Second
	// DefaultRetention is how long checkpoints are kept by default.
	DefaultRetention = 7 * 24 * time.Hour
	// PruneEvery is how often a Writer prunes checkpoints older than its
	// retention (a failed prune is retried on the next tick).
	PruneEvery = time.Hour
	// FinalWriteTimeout bounds the last write a Writer makes when its
	// context ends.
	FinalWriteTimeout = 5 * time.Second
	// tickTimeout bounds one tick's requests.
	tickTimeout = 30 * time.Second
)

// Writer records a consumer group's committed offsets in the checkpoint
// history in the background. Observe is called after every successful
// commit; Run writes the latest offsets of the partitions that changed every
// interval. Failures are logged and retried, never fatal: the history is an
// aid for planning later replays, not part of the write path.
type Writer struct {
	store     *Store
	group     string
	topic     string
	index     string
	interval  time.Duration
	retention time.Duration
	log       *slog.Logger
	host      string
	pid       int
	now       func() time.Time

	mu       sync.Mutex
	latest   map[int32]int64 // guarded by mu
	coverage Coverage        // guarded by mu

	written map[int32]int64 // owned by Run
	ticks   atomic.Int64    // ticks run (for tests)
}

// NewWriter returns a Writer of the checkpoints of group reading topic into
// index, stored in store. interval (default DefaultInterval) is how often it
// writes; retention (default DefaultRetention) how long checkpoints are
// kept; logger (default: discard) receives failures.
func NewWriter(store *Store, group, topic, index string, interval, retention time.Duration, logger *slog.Logger) *Writer {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if retention <= 0 {
		retention = DefaultRetention
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	host, _ := os.Hostname()
	return &Writer{
		store: store, group: group, topic: topic, index: index,
		interval: interval, retention: retention,
		log:  logger.With("component", "checkpoint", "checkpoint_index", store.Index()),
		host: host, pid: os.Getpid(), now: time.Now,
		latest: map[int32]int64{}, written: map[int32]int64{},
	}
}

// Coverage says what a Writer's checkpoints may claim: the topic ID they
// belong to, and per partition whether the group's coverage is complete
// from the log start (Checkpoint.Complete). A Writer without a coverage
// writes incomplete checkpoints with no topic ID, which Store.Before never
// uses.
type Coverage struct {
	// TopicID is the Kafka topic ID the group reads.
	TopicID string
	// Complete maps partitions to whether the group's coverage of them is
	// complete from the log start.
	Complete map[int32]bool
	// Others is the completeness of partitions Complete does not list (for
	// example partitions added to the topic later, which a group started
	// at the earliest offset reads from their start).
	Others bool
}

// complete reports the completeness of partition p.
func (c Coverage) complete(p int32) bool {
	if v, ok := c.Complete[p]; ok {
		return v
	}
	return c.Others
}

// SetCoverage sets what the checkpoints written from now on claim; call it
// before Run. c.Complete is copied.
func (w *Writer) SetCoverage(c Coverage) {
	c.Complete = maps.Clone(c.Complete)
	w.mu.Lock()
	w.coverage = c
	w.mu.Unlock()
}

// Observe records committed offsets (partition → next offset to read) after
// a successful commit. It only takes a mutex and copies the map, so the
// consumer can call it on its commit path; committed is not retained.
func (w *Writer) Observe(committed map[int32]int64) {
	w.mu.Lock()
	maps.Copy(w.latest, committed)
	w.mu.Unlock()
}

// Run ensures the checkpoint index, then every interval writes the latest
// observed offset of each partition whose offset changed since the last
// successful write, and about once an hour prunes checkpoints older than the
// retention. When ctx ends it makes a final write with a fresh short timeout
// (FinalWriteTimeout) and returns. Call it once per Writer.
func (w *Writer) Run(ctx context.Context) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	var lastPrune time.Time
	failures := 0
	for {
		w.tick(ctx, &lastPrune, &failures)
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), FinalWriteTimeout)
			n, err := w.flush(fctx)
			cancel()
			if err != nil {
				w.log.Warn("final checkpoint write failed", "err", err)
			} else {
				w.log.Debug("final checkpoint write", "partitions", n)
			}
			return
		case <-t.C:
		}
	}
}

// tick writes the changed offsets and prunes when due.
func (w *Writer) tick(ctx context.Context, lastPrune *time.Time, failures *int) {
	defer w.ticks.Add(1)
	if ctx.Err() != nil {
		return
	}
	tctx, cancel := context.WithTimeout(ctx, tickTimeout)
	defer cancel()
	n, err := w.flush(tctx)
	switch {
	case err != nil && ctx.Err() == nil:
		*failures++
		w.log.Warn("checkpoint write failed; retrying next tick", "err", err, "consecutive_failures", *failures)
		return
	case err != nil:
		return // the final write retries
	case *failures > 0:
		w.log.Info("checkpoint writes recovered", "after_failures", *failures)
		*failures = 0
	}
	if n > 0 {
		w.log.Debug("checkpoints written", "partitions", n)
	}
	if now := w.now(); now.Sub(*lastPrune) >= PruneEvery {
		deleted, err := w.store.prune(tctx, now.Add(-w.retention))
		if err != nil {
			if ctx.Err() == nil {
				w.log.Warn("checkpoint prune failed; retrying next tick", "err", err)
			}
			return
		}
		*lastPrune = now
		if deleted > 0 {
			w.log.Info("pruned old checkpoints", "deleted", deleted, "retention", w.retention)
		}
	}
}

// flush writes the partitions whose observed offset differs from the last
// one written and returns how many it wrote.
func (w *Writer) flush(ctx context.Context) (int, error) {
	w.mu.Lock()
	changes := changed(w.latest, w.written)
	cov := w.coverage
	w.mu.Unlock()
	if len(changes) == 0 {
		// Still make sure the index exists, so problems show early.
		return 0, w.store.ensureOnce(ctx)
	}
	// The time is taken after the offsets were observed, hence after their
	// commit: the checkpoint's claim holds at that time.
	now := w.now()
	cps := make([]Checkpoint, 0, len(changes))
	for _, p := range sortedPartitions(changes) {
		cps = append(cps, Checkpoint{
			Group: w.group, Topic: w.topic, TopicID: cov.TopicID, Complete: cov.complete(p),
			Index: w.index, Partition: p, Offset: changes[p], Time: now, Host: w.host, PID: w.pid,
		})
	}
	if err := w.store.Write(ctx, cps); err != nil {
		return 0, err
	}
	maps.Copy(w.written, changes)
	return len(cps), nil
}

// changed returns the entries of latest that are missing from written or
// differ from it.
func changed(latest, written map[int32]int64) map[int32]int64 {
	out := map[int32]int64{}
	for p, o := range latest {
		if prev, ok := written[p]; !ok || prev != o {
			out[p] = o
		}
	}
	return out
}

// sortedPartitions returns m's keys in order.
func sortedPartitions[V any](m map[int32]V) []int32 {
	ps := make([]int32, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}
