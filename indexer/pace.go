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
//     than TargetLatency (multiplicative decrease, at most once per
//     TargetLatency so that one burst of slow answers halves it once),
//     then shrinks bulks, then pauses between them. It never drops below 1
//     nor rises above MaxInFlight.
//   - A guard (Indexer.Guard) paces documents per second like MaxRate, at
//     a rate it steers by the latency of representative searches.
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
	// guardRate is the documents per second a guard allows (0: no guard),
	// under mu; docsRate holds the rate in force (the lower of MaxRate
	// and guardRate, 0 for none) as float64 bits for the hot path.
	guardRate float64
	docsRate  atomic.Uint64
	// sent counts the documents bulks were cleared to send: the guard
	// measures what the worker achieves with it.
	sent atomic.Int64
	// held, while not nil, holds every bulk back until it is closed: a
	// guard re-measuring its baseline.
	held     chan struct{}
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
	t.docsRate.Store(math.Float64bits(t.maxRate))
	return t
}

// hold holds every bulk back until resume.
func (t *pacer) hold() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.held == nil {
		t.held = make(chan struct{})
	}
}

// resume lets bulks go again after hold.
func (t *pacer) resume() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.held != nil {
		close(t.held)
		t.held = nil
	}
}

// rate returns the documents per second in force: the lower of MaxRate
// and the guard's rate, 0 when neither is set.
func (t *pacer) rate() float64 { return math.Float64frombits(t.docsRate.Load()) }

// setGuardRate sets the guard's rate (0: none).
func (t *pacer) setGuardRate(r float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.guardRate = r
	eff := t.maxRate
	if r > 0 && (eff == 0 || r < eff) {
		eff = r
	}
	t.docsRate.Store(math.Float64bits(eff))
}

// adaptive reports whether the concurrency limit is on.
func (t *pacer) adaptive() bool { return t.target > 0 }

// wait blocks until a bulk of docs documents and n bytes may be sent: it
// takes a concurrency slot (adaptive mode) and waits out the pacing. It
// returns how long it waited. Call release once the answer is in.
func (t *pacer) wait(ctx context.Context, docs, n int) (time.Duration, error) {
	start := t.now()
	for {
		t.mu.Lock()
		h := t.held
		t.mu.Unlock()
		if h == nil {
			break
		}
		select {
		case <-ctx.Done():
			return t.now().Sub(start), ctx.Err()
		case <-h:
		}
	}
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
	if rate := t.rate(); rate > 0 || t.maxBytesRate > 0 {
		t.mu.Lock()
		now := t.now()
		at := now
		if rate > 0 {
			at = latest(at, reserve(&t.nextDocs, now, float64(docs), rate))
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
	t.sent.Add(int64(docs))
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
		t.increase()
	}
}

// increase takes one additive step back up, at most one per target
// latency: first the pause between bulks shrinks, then bulks grow back,
// then the concurrency limit.
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

// MinRateBulkBytes is the smallest bulk body size a bytes rate
// (MaxBytesRate) closes bulks at.
const MinRateBulkBytes = 16 << 10

// BatchLimits returns the documents and body bytes to close a bulk at now,
// given the configured docs and bytes: shrunk when adaptive concurrency is
// down to one request in flight and the cluster still asks for less
// (halved per decrease, down to 1/16, grown back with fast answers), and under a
// rate (MaxRate, MaxBytesRate, or a guard's rate) to a RateSlice's worth
// of it, so that the rate reaches the cluster as a steady stream of small
// bulks rather than one large bulk every few seconds, which searches feel
// as a burst. Never below one document nor MinRateBulkBytes (unless the
// configured size is smaller). Cheap enough to call per record.
func (ix *Indexer) BatchLimits(docs, bytes int) (int, int) {
	if s := ix.thr.batchScale(); s < 1 {
		docs = max(1, int(s*float64(docs)))
		bytes = max(1, int(s*float64(bytes)))
	}
	const perSecond = float64(time.Second / RateSlice)
	if r := ix.thr.rate(); r > 0 {
		docs = max(1, min(docs, int(math.Ceil(r/perSecond))))
	}
	if r := ix.thr.maxBytesRate; r > 0 {
		bytes = min(bytes, max(MinRateBulkBytes, int(math.Ceil(r/perSecond))))
	}
	return docs, bytes
}

// Throttle reports the adaptive concurrency limit (MaxInFlight when
// adaptive concurrency is off) and the reason of its last decrease ("" if
// none).
func (ix *Indexer) Throttle() (limit float64, reason string) { return ix.thr.state() }

// GuardConfig configures Indexer.Guard.
type GuardConfig struct {
	// Queries are representative search bodies (JSON), run round robin
	// against the target index; the first GuardQueries of them are used.
	// Required.
	Queries [][]byte
	// Target is the search latency the guard keeps the searches under:
	// about the 90th percentile of its last 16 searches. Either Target or
	// Relative must be set.
	Target time.Duration
	// Relative, when above zero, sets the target relative to the searches'
	// own latency before this worker writes: Guard first runs two windows
	// of searches (one every 100ms at most, before the first bulk, after
	// two that open connections) and the target becomes Relative times
	// the lower of their two slow means (the mean of the slower half of a
	// window without its slowest eighth, see slowMean); the guard then
	// steers on the slow mean of its last window (a window is 16
	// searches, or the fewest whole rounds of the queries above 16, so
	// that every window and baseline holds the same mix of cheap and
	// costly queries; the slower half carries the slowdown a write load
	// causes, which a median of 16 ignores and a whole mean dilutes, and
	// averaging six of them is steadier than one tail quantile; leaving
	// out the slowest two keeps one search a stalled VM or a collection
	// held up from counting as a slowdown). 1.5 means "the slower half of
	// the searches may become at most 50% slower". Overrides Target.
	Relative float64
	// Interval is how often one guard search runs while the worker writes:
	// the guard's whole load. Default 500ms.
	Interval time.Duration
	// StartRate is the documents per second the worker starts at once the
	// guard steers; it doubles from there until searches first slow down.
	// Default DefaultGuardStartRate.
	StartRate float64
}

// GuardQueries is how many of GuardConfig.Queries the guard uses.
const GuardQueries = 16

// guardWindowSize returns the searches in one window for n queries: whole
// rounds of them, at least 16 (at most 30).
func guardWindowSize(n int) int { return n * ((16 + n - 1) / n) }

// Guard rate steps: the rate a guard starts at, the least it goes down
// to, and its multiplicative decrease (the first one, which ends the
// doubling start, halves).
const (
	DefaultGuardStartRate = 500.0
	minGuardRate          = 10.0
	guardCut              = 0.7
	guardStep             = 1.2
	// guardConfirm is how many windows in a row must be above the target
	// before the guard cuts (a failed or rejected search cuts at once).
	guardConfirm = 2
	// guardDoubleTo bounds the doubling start: past this many times the
	// start rate the guard climbs by guardStep like after its first cut.
	// A baseline taken in a noisy moment is lax, and doubling from it
	// reached 23 000 docs/s (twice an unthrottled replay on a 2-vCPU
	// node) before the searches pushed back; a fifth per window gives them
	// many windows to push back in before the rate is high. At 4 000 docs/s
	// (once 8 x) searches' p99 on such a node had already risen 1.5-2 x
	// while their slow mean (what the guard sees) rose a fifth: the
	// doubling stops at 2 000.
	guardDoubleTo = 4
	// guardStuck is how many cuts in a row, with no raise between them,
	// make a relative guard re-measure its baseline at once rather than at
	// the next guardRebaseEvery: searches that stay slow however far the
	// rate falls are slow for another reason (another tenant, a slower
	// node), and a target from before that would hold the worker at the
	// floor.
	guardStuck = 3
)

// A relative guard re-measures its baseline after guardFirstRebase
// intervals, then after twice as many each time up to every
// guardRebaseEvery (and when stuck, see guardStuck): it holds the worker's
// bulks back for one interval, then takes the slow mean of one window
// of searches (about 7% of the time without writes, once the re-measures
// are guardRebaseEvery apart). The first comes early because the baseline
// at start may be lax (a node still busy with what ran before: one was
// 9.4 ms where the re-measure a minute later found 5.3, and the guard
// climbed to 27 000 docs/s meanwhile). The node's own latency drifts over
// a long replay (a million updates leave deleted documents and more
// segments behind); a baseline taken once at start becomes unreachable
// and the worker would crawl at the floor. The new baseline may be lower than the old, or up
// to guardRebaseGrowth times it (merges the worker caused still run while
// it pauses: a baseline that could follow them freely would ratchet up).
const (
	guardFirstRebase  = 32
	guardRebaseEvery  = 240
	guardRebaseGrowth = 1.1
)

// rebaseClock says before which steering step a relative guard
// re-measures its baseline: step guardFirstRebase, then twice as many
// steps later each time, up to every guardRebaseEvery. A re-measure for
// being stuck restarts the count, so no two re-measures come closer than
// the gap in force unless the guard is stuck again (a stuck one followed
// at once by a scheduled one would hold the worker twice for nothing).
type rebaseClock struct{ gap, next int }

func newRebaseClock() rebaseClock {
	return rebaseClock{gap: guardFirstRebase, next: guardFirstRebase}
}

// due reports whether to re-measure before step i (steps count up by one
// per call); stuck asks for a re-measure now.
func (c *rebaseClock) due(i int, stuck bool) bool {
	if i < c.next && !stuck {
		return false
	}
	if i >= c.next {
		c.gap = min(2*c.gap, guardRebaseEvery)
	}
	c.next = i + c.gap
	return true
}

// Guard starts the guard: representative searches against the target
// index that steer the documents per second the worker sends by their
// latency. With a relative target it first measures the baseline
// (BaselineSearches searches, one at a time, while this worker holds its
// bulks back) and returns an error if those searches fail: the target
// could not be set. It then searches once per Interval, round robin, until
// ctx ends, in its own goroutine, and paces the bulks of every lane to its
// rate (as MaxRate does, and never above MaxRate), in bulks of a
// RateSlice's worth (BatchLimits): a steady stream, which searches feel
// far less than the same documents in large bursts.
//
// The rate starts at StartRate and doubles every window (16 searches, see
// Relative) while they are fast, up to 4 x StartRate, then grows by a
// fifth per window; the first time the searches' quantile (the second
// slowest of the window, about their 90th percentile; their slow mean
// for a relative target) is above the target in two windows in a row, it
// halves and from then on falls to 70% when above the target twice in a
// row and grows by a fifth while the quantile is below four fifths of the
// target (for a relative target: below the middle between the baseline
// and the target), each step judged by a window of searches made after
// the previous one. It never rises above twice what the worker achieved
// over those searches (a worker held back by something else does not bank
// a rate it would then send at once) nor falls below 10 documents per
// second. A relative target is re-measured with the worker held back
// after 32 searches, 64 more, 128 more, then every 240, and at once after
// three cuts in a row without a raise (see guardRebaseEvery, guardStuck). Each step
// down counts in reindexer_throttle_decreases_total (reason
// "search_latency", or "search_error" for a failed search, or
// "search_429"/"search_503" for a rejected one) and sets the reason
// Throttle reports; GuardRate and the reindexer_guard_rate gauge give the
// rate in force. Each search is bounded by 10 x the target. Guard returns
// the target in force; it does nothing (and returns 0) without queries or
// a target. Adaptive concurrency (TargetLatency) is independent: it
// still limits bulks in flight by their own answers.
func (ix *Indexer) Guard(ctx context.Context, cfg GuardConfig) (time.Duration, error) {
	if len(cfg.Queries) == 0 || (cfg.Target <= 0 && cfg.Relative <= 0) {
		return 0, nil
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 500 * time.Millisecond
	}
	if cfg.StartRate <= 0 {
		cfg.StartRate = DefaultGuardStartRate
	}
	path := "/" + url.PathEscape(ix.cfg.Index) + "/_search?request_cache=false"
	queries := cfg.Queries[:min(len(cfg.Queries), GuardQueries)]
	size := guardWindowSize(len(queries))
	target := cfg.Target
	raise := target * 4 / 5
	var base time.Duration
	if cfg.Relative > 0 {
		var err error
		base, err = ix.baseline(ctx, path, queries, 2, size, min(cfg.Interval, 100*time.Millisecond))
		if err != nil {
			return 0, err
		}
		target, raise = relativeTarget(base, cfg.Relative)
		ix.log.Info("guard baseline measured", "index", ix.cfg.Index, "searches", 2*size,
			"slow_mean", base, "target", target)
	}
	ix.m.GuardTarget.Set(target.Seconds())
	ix.setGuardRate(cfg.StartRate, "")
	g := &guard{ix: ix, path: path, queries: queries, size: size, target: target, raise: raise, interval: cfg.Interval,
		relative: cfg.Relative > 0, factor: cfg.Relative, base: base, rate: cfg.StartRate, doubleTo: guardDoubleTo * cfg.StartRate}
	go g.steer(ctx)
	return target, nil
}

// relativeTarget returns the target and the raise threshold of a factor
// over base: the guard raises while searches are in the lower half of the
// room the factor gives (a fixed share of the target would sit at the
// baseline itself for small factors: the worker's own writes would never
// let it climb).
func relativeTarget(base time.Duration, factor float64) (target, raise time.Duration) {
	target = time.Duration(factor * float64(base))
	return target, base + (target-base)/2
}

// GuardRate returns the documents per second a guard allows now (0 when
// no guard runs).
func (ix *Indexer) GuardRate() float64 {
	ix.thr.mu.Lock()
	defer ix.thr.mu.Unlock()
	return ix.thr.guardRate
}

// setGuardRate sets the guard's rate; a non-empty reason records a step
// down.
func (ix *Indexer) setGuardRate(r float64, reason string) {
	ix.thr.setGuardRate(r)
	ix.m.GuardRate.Set(r)
	if reason != "" {
		ix.thr.mu.Lock()
		ix.thr.reason = reason
		ix.thr.mu.Unlock()
		ix.m.ThrottleDecreases.WithLabelValues(reason).Inc()
	}
}

// baselineWarmup is how many searches open the baseline without counting:
// the first ones pay for new connections.
const baselineWarmup = 2

// baseline runs baselineWarmup + rounds*size searches, spaced by gap, and
// returns the lowest of the slow means (slowMean) of each window of
// size (which start at the first query): the quieter round, since a moment
// of unrelated load during one would set a lax target.
func (ix *Indexer) baseline(ctx context.Context, path string, queries [][]byte, rounds, size int, gap time.Duration) (time.Duration, error) {
	n := rounds * size
	lat := make([]time.Duration, 0, baselineWarmup+n)
	for i := 0; i < baselineWarmup+n; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(gap):
			}
		}
		d, _, err := ix.search(ctx, path, queries[(i+len(queries)-baselineWarmup%len(queries))%len(queries)], time.Minute)
		if err != nil {
			return 0, fmt.Errorf("guard baseline: %w (the index must exist and the queries run; or give an absolute --search-latency-target)", err)
		}
		ix.m.GuardLatency.Observe(d.Seconds())
		lat = append(lat, d)
	}
	lat = lat[baselineWarmup:]
	base := slowMean(lat[:size])
	for i := size; i+size <= len(lat); i += size {
		base = min(base, slowMean(lat[i:i+size]))
	}
	return base, nil
}

// guard is one running guard (see Indexer.Guard).
type guard struct {
	ix            *Indexer
	path          string
	queries       [][]byte
	size          int // searches per window
	next          int // the next query
	target, raise time.Duration
	interval      time.Duration
	relative      bool

	factor   float64       // Relative
	base     time.Duration // the baseline in force (relative)
	rate     float64       // documents per second allowed
	doubleTo float64       // where the doubling start stops (guardDoubleTo x StartRate)
	slow     int           // windows in a row above the target
	stuck    int           // latency cuts since the last raise or re-measure
	started  bool          // the doubling start has ended
	w        guardWindow
	fromDocs int64     // documents sent when the window began
	fromAt   time.Time // and when
}

// steer runs one guard search per interval until ctx ends and steps the
// rate by their latency (see Indexer.Guard).
func (g *guard) steer(ctx context.Context) {
	tick := time.NewTicker(g.interval)
	defer tick.Stop()
	defer g.ix.thr.resume() // never leave the worker held
	g.reset()
	clock := newRebaseClock()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if g.relative && clock.due(i, g.stuck >= guardStuck) {
			g.rebase(ctx, tick.C)
			continue
		}
		lat, rejected, err := g.search(ctx)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil:
			g.ix.warn("guard search failed", "index", g.ix.cfg.Index, "err", err)
			g.cut("search_error", 0)
			continue
		case rejected != "":
			g.cut(rejected, 0)
			continue
		}
		g.ix.m.GuardLatency.Observe(lat.Seconds())
		if q := g.w.add(lat, g.size, g.relative); g.w.n >= g.size {
			g.judge(q)
		}
	}
}

// search runs the next query, round robin (every window of size searches
// holds each query equally often).
func (g *guard) search(ctx context.Context) (time.Duration, string, error) {
	q := g.queries[g.next%len(g.queries)]
	g.next++
	return g.ix.search(ctx, g.path, q, 10*g.target)
}

// rebase re-measures a relative guard's baseline with the worker's bulks
// held back (see guardRebaseEvery); tick paces its searches.
func (g *guard) rebase(ctx context.Context, tick <-chan time.Time) {
	g.stuck = 0 // a re-measure that fails is not retried at every tick
	g.ix.thr.hold()
	defer g.ix.thr.resume()
	lat := make([]time.Duration, 0, g.size)
	for i := -1; i < g.size; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
		if i < 0 {
			continue // one interval for the bulks in flight to finish
		}
		d, rejected, err := g.search(ctx)
		if err != nil || rejected != "" {
			return // keep the baseline; the steering loop hears of it
		}
		g.ix.m.GuardLatency.Observe(d.Seconds())
		lat = append(lat, d)
	}
	m := slowMean(lat)
	base := min(m, time.Duration(guardRebaseGrowth*float64(g.base)))
	g.base = base
	g.target, g.raise = relativeTarget(base, g.factor)
	g.ix.m.GuardTarget.Set(g.target.Seconds())
	g.ix.log.Info("guard baseline re-measured", "index", g.ix.cfg.Index, "searches", g.size,
		"slow_mean", m, "baseline", base, "target", g.target, "rate", g.rate)
	g.reset()
}

// judge steps the rate by q, the window's quantile.
func (g *guard) judge(q time.Duration) {
	switch {
	case q > g.target:
		// A window's mean (or tail) above the target once is noise as
		// often as not; two windows in a row are a trend.
		if g.slow++; g.slow >= guardConfirm {
			g.cut("search_latency", q)
			return
		}
		g.reset()
	case q <= g.raise:
		g.slow = 0
		r := g.rate * guardStep
		if !g.started && g.rate*2 <= g.doubleTo {
			r = g.rate * 2
		}
		// Not above twice what the worker achieved meanwhile: a rate it
		// does not reach says nothing about what searches would feel.
		if span := time.Since(g.fromAt).Seconds(); span > 0 {
			achieved := float64(g.ix.thr.sent.Load()-g.fromDocs) / span
			r = min(r, max(2*achieved, g.rate))
		}
		if r > g.rate {
			g.stuck = 0
			g.ix.log.Info("guard raises the rate", "index", g.ix.cfg.Index, "from", int(g.rate), "to", int(r), "searches", q, "target", g.target)
			g.rate = r
			g.ix.setGuardRate(r, "")
		}
		g.reset()
	default:
		g.slow = 0
	}
}

// cut steps the rate down for reason: halves it the first time (ending the
// doubling start), else to guardCut of it. q is the quantile that asked
// for it (0 for a failed or rejected search).
func (g *guard) cut(reason string, q time.Duration) {
	f := guardCut
	if !g.started {
		f, g.started = 0.5, true
	}
	g.slow = 0
	if reason == "search_latency" {
		g.stuck++
	}
	if g.rate > minGuardRate {
		r := max(minGuardRate, g.rate*f)
		g.ix.log.Info("guard lowers the rate", "index", g.ix.cfg.Index, "from", int(g.rate), "to", int(r), "reason", reason, "searches", q, "target", g.target)
		g.rate = r
		g.ix.setGuardRate(g.rate, reason)
	}
	g.reset()
}

// reset starts a fresh window: the next decision is judged by searches
// made after this step.
func (g *guard) reset() {
	g.w = guardWindow{}
	g.fromDocs, g.fromAt = g.ix.thr.sent.Load(), time.Now()
}

// guardWindow holds the latencies of the last guard searches (a window of
// up to 32) and gives their slow mean or a high quantile: the second
// largest, about the 90th percentile of 16. A single fast sample says
// little about the tail searches suffer; the guard steers on the tail.
type guardWindow struct {
	lat [32]time.Duration
	n   int
}

// add adds d to a window of size and returns the window's slow mean (avg) or
// its second largest.
func (w *guardWindow) add(d time.Duration, size int, avg bool) time.Duration {
	size = min(size, len(w.lat))
	w.lat[w.n%size] = d
	w.n++
	held := w.lat[:min(w.n, size)]
	if avg {
		return slowMean(held)
	}
	top, second := time.Duration(0), time.Duration(0)
	for _, v := range held {
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

// slowMean returns the mean of the slower half of lat without its slowest
// eighth (for 16: the 9th to the 14th fastest), the statistic a relative
// guard steers on. A write load slows some searches of a window (those
// that meet a bulk, a refresh or a merge) and leaves the others as they
// were: the fast half dilutes a whole window's mean, so a mean held within
// 1.5 x let the searches' p99 rise 1.9 x; the slower half carries the
// slowdown a tail feels. Leaving out the slowest eighth keeps a search the
// hypervisor or a collection happened to stall (5-10 times the others on a
// small node) from counting as a slowdown (fewer than 8: the slower half
// whole).
func slowMean(lat []time.Duration) time.Duration {
	s := slices.Clone(lat)
	slices.Sort(s)
	return mean(s[len(s)/2 : len(s)-len(s)/8])
}

// mean returns the mean of lat (0 for none).
func mean(lat []time.Duration) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	return sum / time.Duration(len(lat))
}

// search runs one search and returns its latency, or the reason it was
// rejected ("search_429", "search_503"). A search that times out returns
// how long it waited: slow is the answer.
func (ix *Indexer) search(ctx context.Context, path string, body []byte, timeout time.Duration) (time.Duration, string, error) {
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(sctx, http.MethodPost, path, bytes.NewReader(body))
	if err != nil {
		return 0, "", fmt.Errorf("guard search on %s: %w", ix.cfg.Index, err)
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	res, err := ix.client.Stream(req)
	if err != nil {
		if res != nil {
			res.Body.Close()
		}
		if sctx.Err() != nil && ctx.Err() == nil {
			return time.Since(start), "", nil
		}
		return 0, "", fmt.Errorf("guard search on %s: %w", ix.cfg.Index, err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	lat := time.Since(start)
	switch {
	case res.StatusCode == http.StatusTooManyRequests || res.StatusCode == http.StatusServiceUnavailable:
		return lat, "search_" + fmt.Sprint(res.StatusCode), nil
	case res.StatusCode >= 300:
		return 0, "", fmt.Errorf("guard search on %s: HTTP %d", ix.cfg.Index, res.StatusCode)
	}
	return lat, "", nil
}
