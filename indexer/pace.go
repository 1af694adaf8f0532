package indexer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Throttle settings (fields of Config). A zero value of each leaves that
// limit off, which is right for a replay into an idle new cluster; turn
// them on for a cluster that serves searches (a canary or production).
//
//   - MaxRate / MaxBytesRate pace bulk requests so that all lanes together
//     send at most that many documents (bytes) per second, on average over
//     any second or longer, plus at most a tenth of a second's worth that an
//     idle moment banked. A bulk larger than one second's worth waits in
//     proportion; retries are paced too.
//   - TargetLatency turns on adaptive concurrency (AIMD): at most Limit()
//     bulk requests are in flight; it grows by one per Limit() answers that
//     come back under TargetLatency (additive increase) and halves on a 429,
//     rejected_execution_exception, circuit breaker or 503, on a bulk slower
//     than TargetLatency, or on a guard search slower than its target
//     (multiplicative decrease, at most once per TargetLatency so that one
//     burst of slow answers halves it once). It never drops below 1 nor
//     rises above MaxInFlight.
//
// Ordering is untouched: each lane still sends its batches one at a time,
// in order; the throttle only delays them.

// pacer is the rate pacer and the adaptive concurrency limit of one
// Indexer, shared by every lane writing through it.
type pacer struct {
	maxRate, maxBytesRate float64
	target                time.Duration
	maxInFlight           float64

	mu        sync.Mutex
	nextDocs  time.Time // when the docs bucket is next empty (pacing by reservation)
	nextBytes time.Time
	limit     float64 // adaptive concurrency limit
	// scale shrinks bulks once the limit is down to one request in flight
	// and the cluster still asks for less: a share of the configured batch
	// size, halved per further decrease down to minScale, grown back by
	// 1/16 per fast answer before the limit grows again. Read on the hot
	// path through scaleBits.
	scale     float64
	scaleBits atomic.Uint64
	// gap is a pause before each bulk once the limit is one and bulks are
	// as small as they get: the last step down (doubled per decrease, up
	// to maxGap), and the first step back up (three quarters per step,
	// none below gapStep).
	gap      time.Duration
	lastStep time.Time // last additive increase
	// guarded is set while a guard steers: then only its searches raise
	// the limit (bulk answers can still lower it).
	guarded  atomic.Bool
	inflight int
	changed  chan struct{} // closed when inflight or limit changes
	lastCut  time.Time
	reason   string // of the last decrease
	onChange func(limit float64, reason string)
	now      func() time.Time
}

func newPacer(cfg Config, onChange func(float64, string)) *pacer {
	t := &pacer{
		maxRate: cfg.MaxRate, maxBytesRate: cfg.MaxBytesRate, target: cfg.TargetLatency,
		maxInFlight: float64(max(cfg.MaxInFlight, 1)), changed: make(chan struct{}),
		onChange: onChange, now: time.Now,
	}
	t.limit = t.maxInFlight
	t.setScaleLocked(1)
	return t
}

// adaptive reports whether the concurrency limit is on.
func (t *pacer) adaptive() bool { return t.target > 0 }

// wait blocks until a bulk of docs documents and n bytes may be sent: it
// takes a concurrency slot (adaptive mode) and waits out the pacing. It
// returns how long it waited. Call release once the answer is in.
func (t *pacer) wait(ctx context.Context, docs, n int) (time.Duration, error) {
	start := t.now()
	if t.adaptive() {
		for {
			t.mu.Lock()
			if float64(t.inflight) < math.Max(1, math.Floor(t.limit)) {
				t.inflight++
				t.mu.Unlock()
				break
			}
			ch := t.changed
			t.mu.Unlock()
			select {
			case <-ctx.Done():
				return t.now().Sub(start), ctx.Err()
			case <-ch:
			}
		}
	}
	if t.adaptive() {
		t.mu.Lock()
		gap := t.gap
		t.mu.Unlock()
		if gap > 0 {
			timer := time.NewTimer(gap)
			select {
			case <-ctx.Done():
				timer.Stop()
				t.release()
				return t.now().Sub(start), ctx.Err()
			case <-timer.C:
			}
		}
	}
	if t.maxRate > 0 || t.maxBytesRate > 0 {
		t.mu.Lock()
		now := t.now()
		at := now
		if t.maxRate > 0 {
			at = latest(at, reserve(&t.nextDocs, now, float64(docs), t.maxRate))
		}
		if t.maxBytesRate > 0 {
			at = latest(at, reserve(&t.nextBytes, now, float64(n), t.maxBytesRate))
		}
		t.mu.Unlock()
		if d := at.Sub(now); d > 0 {
			timer := time.NewTimer(d)
			select {
			case <-ctx.Done():
				timer.Stop()
				t.release()
				return t.now().Sub(start), ctx.Err()
			case <-timer.C:
			}
		}
	}
	return t.now().Sub(start), nil
}

// reserve books amount units at rate per second on the bucket whose next
// free moment is *next, and returns when this request may go: the start of
// its share, so the first request of a burst goes at once and the rate
// holds on average. A bucket left unused banks up to RateSlice of credit
// (never more), so a moment when no lane was ready (a slow fetch, a slow
// bulk) is made up for and the rate holds over a minute, not just as a
// ceiling.
func reserve(next *time.Time, now time.Time, amount, rate float64) time.Time {
	at := latest(*next, now.Add(-RateSlice))
	*next = at.Add(time.Duration(amount / rate * float64(time.Second)))
	return latest(at, now)
}

// RateSlice is the credit an idle rate bucket banks (MaxRate,
// MaxBytesRate): a tenth of a second's worth. Callers that set a rate cap
// should also close bulks at about a RateSlice's worth, so that the cap
// reaches the cluster as a steady stream rather than bursts.
const RateSlice = 100 * time.Millisecond

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// release gives back the slot wait took (adaptive mode).
func (t *pacer) release() {
	if !t.adaptive() {
		return
	}
	t.mu.Lock()
	t.inflight--
	t.notifyLocked()
	t.mu.Unlock()
}

// observe feeds one answer into the adaptive limit: overload (a reason,
// e.g. "429") halves it, an answer slower than the target halves it, any
// other answer adds 1/limit.
func (t *pacer) observe(latency time.Duration, overload string) {
	if !t.adaptive() {
		return
	}
	switch {
	case overload != "":
		t.decrease(overload)
	case latency > t.target:
		t.decrease("latency")
	default:
		if !t.guarded.Load() {
			t.increase()
		}
	}
}

// increase takes one additive step back up, at most one per target latency
// (so a stream of fast bulk answers cannot outvote the guard, which is
// heard at most once per target latency too): first the pause between
// bulks shrinks, then bulks grow back, then the concurrency limit.
func (t *pacer) increase() {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if now.Sub(t.lastStep) < t.target || now.Sub(t.lastCut) < t.target {
		return
	}
	t.lastStep = now
	switch {
	case t.gap > 0:
		if t.gap = t.gap * 3 / 4; t.gap < gapStep {
			t.gap = 0
		}
		t.changedLocked("")
	case t.scale < 1:
		t.setScaleLocked(math.Min(1, t.scale+1.0/16))
		t.changedLocked("")
	case t.limit < t.maxInFlight:
		t.limit = math.Min(t.maxInFlight, t.limit+1/t.limit)
		t.notifyLocked()
		t.changedLocked("")
	}
}

// The pause between bulks: its first step and its ceiling.
const (
	gapStep = 25 * time.Millisecond
	maxGap  = 2 * time.Second
)

// minScale is the smallest share of the configured batch size that
// adaptive sizing shrinks bulks to.
const minScale = 1.0 / 16

func (t *pacer) setScaleLocked(v float64) {
	t.scale = v
	t.scaleBits.Store(math.Float64bits(v))
}

// batchScale returns the share of the configured batch size to fill now
// (1 unless adaptive sizing has shrunk it).
func (t *pacer) batchScale() float64 {
	if t == nil {
		return 1
	}
	return math.Float64frombits(t.scaleBits.Load())
}

// decrease halves the limit for reason, at most once per target latency.
func (t *pacer) decrease(reason string) {
	if !t.adaptive() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if now.Sub(t.lastCut) < t.target {
		return
	}
	t.lastCut = now
	switch {
	case t.limit > 1:
		t.limit = math.Max(1, t.limit/2)
	case t.scale > minScale:
		// One request in flight and still too much: smaller bulks.
		t.setScaleLocked(math.Max(minScale, t.scale/2))
	case t.gap < maxGap:
		// The smallest bulks, one at a time, and still too much: pause
		// between them.
		t.gap = min(max(2*t.gap, gapStep), maxGap)
	default:
		return // at the floor already
	}
	t.reason = reason
	t.changedLocked(reason)
}

func (t *pacer) notifyLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// changedLocked reports the new limit; decreased is the reason when it was
// a decrease, "" for an increase.
func (t *pacer) changedLocked(decreased string) {
	if t.onChange != nil {
		t.onChange(t.limit, decreased)
	}
}

// pause returns the current pause between bulks.
func (t *pacer) pause() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.gap
}

// state returns the current limit and the reason of its last decrease.
func (t *pacer) state() (float64, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.limit, t.reason
}

// overloadReason says whether a round trip's answer means the cluster is
// overloaded (not blocked, not a bad document): "" when it does not.
func overloadReason(status int, retryReason string) string {
	switch {
	case status == http.StatusTooManyRequests, status == http.StatusServiceUnavailable:
		return fmt.Sprint(status)
	}
	switch retryReason {
	case "rejected_execution_exception", "es_rejected_execution_exception", "circuit_breaking_exception", "429":
		return "rejected"
	case "unavailable_shards_exception", "503":
		return "503"
	}
	return ""
}

// BatchScale returns the share (in (0, 1]) of the configured batch size
// that batches should be filled to now: 1 unless adaptive concurrency is
// down to one request in flight and the cluster still asks for less, then
// it halves per decrease (down to 1/16) and grows back with fast answers.
// Cheap enough to call per record.
func (ix *Indexer) BatchScale() float64 { return ix.thr.batchScale() }

// Throttle reports the adaptive concurrency limit (MaxInFlight when
// adaptive concurrency is off) and the reason of its last decrease ("" if
// none).
func (ix *Indexer) Throttle() (limit float64, reason string) { return ix.thr.state() }

// GuardConfig configures Indexer.Guard.
type GuardConfig struct {
	// Queries are representative search bodies (JSON), run round robin
	// against the target index. Required.
	Queries [][]byte
	// Target is the search latency the guard keeps the searches under:
	// about the 90th percentile of its last 16 searches. Either Target or
	// Relative must be set.
	Target time.Duration
	// Relative, when above zero, sets the target relative to the searches'
	// own latency before this worker writes: Guard first runs
	// BaselineSearches searches (one every 100ms at most, before the first
	// bulk, after two that open connections) and the target becomes
	// Relative times their median; the guard then steers on the median of
	// its last 16 searches (a median of few samples is steady where a tail
	// quantile is noise). 1.5 means "searches may become at most 50%
	// slower". Overrides Target.
	Relative float64
	// Interval is how often one guard search runs while the worker writes:
	// the guard's whole load. Default 2s.
	Interval time.Duration
}

// BaselineSearches is how many searches measure the baseline of a relative
// guard target.
const BaselineSearches = 32

// guardSettle is how many fresh guard searches a decision needs after a
// step down: a step takes a few searches to show, and one slow outlier is
// not the tail.
const guardSettle = 8

// Guard starts the guard: representative searches against the target
// index that steer the adaptive throttle by their latency. With a relative
// target it first measures the baseline (BaselineSearches searches, one at
// a time, while this worker holds its bulks back) and returns an error if
// those searches fail: the target could not be set. It then searches once
// per Interval, round robin, until ctx ends, in its own goroutine. When the
// second slowest of the last 16 searches (about their 90th percentile; the
// median for a relative target) is above the target it steps down (limit, then bulk size, then a pause
// between bulks; reason "search_latency") and waits for 8 fresh searches
// before judging again; while that quantile is below four fifths of the
// target (for a relative target: below the middle between the baseline
// and the target) it steps up, once per search. While a guard runs, only it raises
// the throttle (bulk answers still lower it on overload), so the worker
// takes what searches leave free and backs off when they slow down, before
// the node rejects anything. Each search is bounded by 10 x the target. It
// returns the target in force; it does nothing (and returns 0) unless
// adaptive concurrency is on (Config.TargetLatency) and there are queries.
func (ix *Indexer) Guard(ctx context.Context, cfg GuardConfig) (time.Duration, error) {
	if !ix.thr.adaptive() || len(cfg.Queries) == 0 || (cfg.Target <= 0 && cfg.Relative <= 0) {
		return 0, nil
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	path := "/" + url.PathEscape(ix.cfg.Index) + "/_search?request_cache=false"
	target := cfg.Target
	raise := target * 4 / 5
	if cfg.Relative > 0 {
		base, err := ix.baseline(ctx, path, cfg.Queries, min(cfg.Interval, 100*time.Millisecond))
		if err != nil {
			return 0, err
		}
		target = time.Duration(cfg.Relative * float64(base))
		// Raise while searches are in the lower half of the room the
		// factor gives (a fixed share of the target would sit at the
		// baseline itself for small factors: the worker's own writes would
		// never let it climb).
		raise = base + (target-base)/2
		ix.log.Info("guard baseline measured", "index", ix.cfg.Index, "searches", BaselineSearches,
			"median", base, "target", target)
	}
	ix.m.GuardTarget.Set(target.Seconds())
	ix.thr.guarded.Store(true)
	go ix.steer(ctx, path, cfg.Queries, target, raise, cfg.Interval, cfg.Relative > 0)
	return target, nil
}

// baselineWarmup is how many searches open the baseline without counting:
// the first ones pay for new connections.
const baselineWarmup = 2

// baseline runs baselineWarmup + BaselineSearches searches, spaced by gap,
// and returns the median latency of the last BaselineSearches.
func (ix *Indexer) baseline(ctx context.Context, path string, queries [][]byte, gap time.Duration) (time.Duration, error) {
	lat := make([]time.Duration, 0, baselineWarmup+BaselineSearches)
	for i := 0; i < baselineWarmup+BaselineSearches; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(gap):
			}
		}
		d, err := ix.search(ctx, path, queries[i%len(queries)], time.Minute)
		if err != nil {
			return 0, fmt.Errorf("guard baseline: %w (the index must exist and the queries run; or give an absolute --search-latency-target)", err)
		}
		ix.m.GuardLatency.Observe(d.Seconds())
		lat = append(lat, d)
	}
	lat = lat[baselineWarmup:]
	slices.Sort(lat)
	return lat[len(lat)/2], nil
}

// steer runs one guard search per interval until ctx ends and steps the
// throttle by their latency (see Guard): by the median of the window when
// relative (the baseline is a median), else by its 90th percentile.
func (ix *Indexer) steer(ctx context.Context, path string, queries [][]byte, target, raise, interval time.Duration, relative bool) {
	var w guardWindow
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		lat, err := ix.search(ctx, path, queries[i%len(queries)], 10*target)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			ix.warn("guard search failed", "index", ix.cfg.Index, "err", err)
			ix.thr.decrease("search_error")
			continue
		}
		ix.m.GuardLatency.Observe(lat.Seconds())
		q := w.add(lat)
		if relative {
			q = w.median()
		}
		if w.n < guardSettle {
			continue
		}
		switch {
		case q > target:
			ix.thr.decrease("search_latency")
			w = guardWindow{} // judge the step by searches made after it
		case q <= raise:
			// Searches are comfortably fast: the guard, not the bulk
			// answers, lets the worker take more.
			ix.thr.increase()
		}
	}
}

// guardWindow holds the latencies of the last guard searches and gives a
// high quantile of them: the second largest of 16, about the 90th
// percentile. A single fast sample says little about the tail searches
// suffer; the guard steers on the tail.
type guardWindow struct {
	lat [16]time.Duration
	n   int
}

func (w *guardWindow) add(d time.Duration) time.Duration {
	w.lat[w.n%len(w.lat)] = d
	w.n++
	top, second := time.Duration(0), time.Duration(0)
	for _, v := range w.lat[:min(w.n, len(w.lat))] {
		switch {
		case v > top:
			top, second = v, top
		case v > second:
			second = v
		}
	}
	if w.n < 2 {
		return top
	}
	return second
}

// median returns the median of the samples in the window.
func (w *guardWindow) median() time.Duration {
	var v [len(w.lat)]time.Duration
	n := copy(v[:], w.lat[:min(w.n, len(w.lat))])
	slices.Sort(v[:n])
	return v[n/2]
}

// full reports whether the window holds 16 samples.
func (w *guardWindow) full() bool { return w.n >= len(w.lat) }

// search runs one search and returns its latency.
func (ix *Indexer) search(ctx context.Context, path string, body []byte, timeout time.Duration) (time.Duration, error) {
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(sctx, http.MethodPost, path, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("guard search on %s: %w", ix.cfg.Index, err)
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	res, err := ix.client.Stream(req)
	if err != nil {
		if res != nil {
			res.Body.Close()
		}
		if sctx.Err() != nil && ctx.Err() == nil {
			return time.Since(start), nil // timed out: slow is the answer
		}
		return 0, fmt.Errorf("guard search on %s: %w", ix.cfg.Index, err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	lat := time.Since(start)
	if res.StatusCode == http.StatusTooManyRequests || res.StatusCode == http.StatusServiceUnavailable {
		ix.thr.decrease("search_" + fmt.Sprint(res.StatusCode))
	} else if res.StatusCode >= 300 {
		return 0, fmt.Errorf("guard search on %s: HTTP %d", ix.cfg.Index, res.StatusCode)
	}
	return lat, nil
}
