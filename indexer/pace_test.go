package indexer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/reindexer/reindexer/internal/metrics"
)

// TestPacingReservations: requests are booked back to back at the rate,
// documents and bytes each, the first of a burst going at once.
func TestPacingReservations(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var next time.Time
	var got []time.Duration
	for i := 0; i < 5; i++ {
		got = append(got, reserve(&next, t0, 250, 1000).Sub(t0))
	}
	// A fresh bucket holds a tenth of a second's credit.
	want := []time.Duration{0, 150 * time.Millisecond, 400 * time.Millisecond, 650 * time.Millisecond, 900 * time.Millisecond}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("reservations %v, want %v", got, want)
		}
	}
	// After a quiet period the bucket banks a tenth of a second, no more:
	// that and the first share (150 documents) go at once, the next ones at
	// the rate.
	later := t0.Add(10 * time.Second)
	for i, want := range []time.Duration{0, 0, 0, 50 * time.Millisecond} {
		if at := reserve(&next, later, 50, 1000); at.Sub(later) != want {
			t.Fatalf("after idling, request %d waits %v, want %v", i, at.Sub(later), want)
		}
	}
	// 1000 documents per second over a simulated minute: 60 000 ± one request.
	next = time.Time{}
	now, sent := t0, 0.0
	for now.Before(t0.Add(time.Minute)) {
		now = reserve(&next, now, 400, 1000)
		if now.Before(t0.Add(time.Minute)) {
			sent += 400
		}
	}
	if sent < 59600 || sent > 60400 {
		t.Fatalf("%v documents in a simulated minute at 1000/s", sent)
	}
}

// TestAdaptiveLimit: additive increase under the target, multiplicative
// decrease on overload and slow answers, once per target, within [1, max].
func TestAdaptiveLimit(t *testing.T) {
	clock := time.Unix(1000, 0)
	var changes []string
	p := newPacer(Config{TargetLatency: time.Second, MaxInFlight: 8}, func(l float64, reason string) {
		if reason != "" {
			changes = append(changes, reason)
		}
	})
	p.now = func() time.Time { return clock }
	p.observe(2*time.Second, "")
	if l, r := p.state(); l != 4 || r != "latency" {
		t.Fatalf("after a slow bulk: limit %v (%s), want 4 (latency)", l, r)
	}
	p.observe(10*time.Millisecond, "429")
	if l, _ := p.state(); l != 4 {
		t.Fatalf("a second decrease within the target latency halved again: %v", l)
	}
	clock = clock.Add(2 * time.Second)
	p.observe(10*time.Millisecond, "429")
	if l, r := p.state(); l != 2 || r != "429" {
		t.Fatalf("after a 429: limit %v (%s), want 2", l, r)
	}
	for i := 0; i < 5; i++ {
		clock = clock.Add(2 * time.Second)
		p.observe(0, "rejected")
	}
	if l, _ := p.state(); l != 1 {
		t.Fatalf("limit fell to %v, want the floor 1", l)
	}
	// At one request in flight, further decreases shrink the bulks: 5
	// rejections took the limit 2 -> 1, then the scale 1 -> 1/2 -> ... -> 1/16.
	if sc := p.batchScale(); sc != minScale {
		t.Fatalf("batch scale %v after 4 decreases at limit 1, want %v", sc, minScale)
	}
	// Still too much at the smallest bulks: a pause between them, doubled
	// per decrease up to its ceiling.
	for i := 0; i < 10; i++ {
		clock = clock.Add(2 * time.Second)
		p.observe(0, "rejected")
	}
	if g := p.pause(); g != maxGap {
		t.Fatalf("pause %v after 10 more decreases, want the ceiling %v", g, maxGap)
	}
	// Fast answers within one target latency count once.
	clock = clock.Add(time.Second)
	p.observe(10*time.Millisecond, "")
	p.observe(10*time.Millisecond, "")
	if g := p.pause(); g != maxGap*3/4 {
		t.Fatalf("pause %v after two fast answers within a second, want one step down to %v", g, maxGap*3/4)
	}
	for i := 0; i < 300; i++ {
		clock = clock.Add(time.Second)
		p.observe(10*time.Millisecond, "")
	}
	if l, sc := p.state(); l != 8 || p.batchScale() != 1 || p.pause() != 0 {
		t.Fatalf("limit %v, scale %v, pause %v (%s) after 300 fast answers, want back to 8, 1 and none", l, p.batchScale(), p.pause(), sc)
	}
	if n := len(changes); n != 7+8 || changes[14] != "rejected" {
		t.Fatalf("decreases reported %v", changes)
	}
}

// TestAdaptiveSlots: no more requests in flight than the limit.
func TestAdaptiveSlots(t *testing.T) {
	p := newPacer(Config{TargetLatency: time.Second, MaxInFlight: 2}, nil)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if _, err := p.wait(ctx, 1, 1); err != nil {
			t.Fatal(err)
		}
	}
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := p.wait(tctx, 1, 1); err == nil {
		t.Fatal("a third request got a slot with a limit of 2")
	}
	got := make(chan error, 1)
	go func() { _, err := p.wait(ctx, 1, 1); got <- err }()
	p.release()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

// guardServer answers searches after the delay slow returns (read per
// search) and counts them on searches.
func guardServer(t *testing.T, slow func() time.Duration, searches chan<- struct{}) *opensearch.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/_search") {
			time.Sleep(slow())
			io.WriteString(w, `{"hits":{"hits":[]}}`)
			select {
			case searches <- struct{}{}:
			default:
			}
		}
	}))
	t.Cleanup(srv.Close)
	c, err := opensearch.NewClient(opensearch.Config{Addresses: []string{srv.URL}, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// statusClient returns a client of a server that answers every request
// with status and an error of type typ.
func statusClient(t *testing.T, status int, typ string) *opensearch.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":{"type":%q}}`, typ)
	}))
	t.Cleanup(srv.Close)
	c, err := opensearch.NewClient(opensearch.Config{Addresses: []string{srv.URL}, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// awaitSearchCut waits, search by search, until the guard has lowered
// its rate below below for search_latency, failing after within.
func awaitSearchCut(t *testing.T, ix *Indexer, below float64, searches <-chan struct{}, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		if r, why := ix.GuardRate(), ix.reason(); r < below && why == "search_latency" {
			return
		}
		select {
		case <-searches:
		case <-deadline:
			t.Fatalf("guard rate %v (last cut: %s) after slow guard searches, want below %v for search_latency", ix.GuardRate(), ix.reason(), below)
		}
	}
}

// reason is the throttle's last decrease reason.
func (ix *Indexer) reason() string { _, r := ix.Throttle(); return r }

// send stands in for the worker: it sends bulks of 10 documents as fast
// as the pacer lets it until ctx ends.
func send(ctx context.Context, ix *Indexer) {
	for ctx.Err() == nil {
		if _, err := ix.thr.wait(ctx, 10, 1000); err == nil {
			ix.thr.release()
		}
	}
}

// delayServer is a guardServer whose delay the test changes as it goes.
type delayServer struct {
	delay    atomic.Int64
	searches chan struct{} // one per search answered
}

// newDelayServer starts a delayServer answering after d, with room for
// buf searches on its channel.
func newDelayServer(t *testing.T, d time.Duration, buf int) (*delayServer, *opensearch.Client) {
	s := &delayServer{searches: make(chan struct{}, buf)}
	s.set(d)
	return s, guardServer(t, func() time.Duration { return time.Duration(s.delay.Load()) }, s.searches)
}

// set makes the next searches take d.
func (s *delayServer) set(d time.Duration) { s.delay.Store(int64(d)) }

// relativeGuard is a running guard with a 1.5x target on a delayServer.
type relativeGuard struct {
	*delayServer
	ix     *Indexer
	m      *metrics.Metrics
	target time.Duration   // what Guard returned
	ctx    context.Context // the guard's; ends with cancel
	cancel context.CancelFunc
}

// startRelativeGuard starts a guard searching every interval, with a 1.5x
// target measured on a delayServer answering after d.
func startRelativeGuard(t *testing.T, d time.Duration, buf int, interval time.Duration) *relativeGuard {
	t.Helper()
	srv, c := newDelayServer(t, d, buf)
	ix, m := guardIndexer(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	target, err := ix.Guard(ctx, GuardConfig{Queries: guardQuery, Relative: 1.5, Interval: interval})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	return &relativeGuard{delayServer: srv, ix: ix, m: m, target: target, ctx: ctx, cancel: cancel}
}

// guardIndexer returns an indexer on c with adaptive concurrency on (8 in
// flight, 10ms bulk target), and its metrics.
func guardIndexer(t *testing.T, c *opensearch.Client) (*Indexer, *metrics.Metrics) {
	t.Helper()
	m := metrics.New(nil)
	ix, err := New(c, Config{Index: "i", TargetLatency: 10 * time.Millisecond, MaxInFlight: 8, Metrics: m,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return ix, m
}

var guardQuery = [][]byte{[]byte(`{"query":{"match":{"body":"x"}}}`)}

// TestGuardBacksOff: guard searches slower than the target lower the
// guard's rate once the guard has seen enough of them (the first cut
// halves it, later ones take it to 70%); one search per interval; the
// rate paces the worker.
func TestGuardBacksOff(t *testing.T) {
	searches := make(chan struct{}, 100)
	c := guardServer(t, func() time.Duration { return 30 * time.Millisecond }, searches)
	ix, m := guardIndexer(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if target, err := ix.Guard(ctx, GuardConfig{Queries: guardQuery, Target: 10 * time.Millisecond, Interval: 20 * time.Millisecond, StartRate: 1000}); err != nil || target != 10*time.Millisecond {
		t.Fatalf("Guard: %v, %v", target, err)
	}
	if r := ix.GuardRate(); r != 1000 {
		t.Fatalf("guard rate %v at start, want StartRate 1000", r)
	}
	for i := 0; i < guardWindowSize(1)-1; i++ {
		<-searches
	}
	if r := ix.GuardRate(); r != 1000 {
		t.Fatalf("guard rate %v after %d slow searches, want 1000 until the guard has seen %d", r, guardWindowSize(1)-1, guardWindowSize(1))
	}
	awaitSearchCut(t, ix, 1000, searches, 10*time.Second)
	if r := ix.GuardRate(); r != 500 {
		t.Fatalf("guard rate %v after the first cut, want half of 1000", r)
	}
	awaitSearchCut(t, ix, 500, searches, 10*time.Second)
	if r := ix.GuardRate(); r != 350 {
		t.Fatalf("guard rate %v after the second cut, want 70%% of 500", r)
	}
	if n := testutil.ToFloat64(m.ThrottleDecreases.WithLabelValues("search_latency")); n < 2 {
		t.Fatalf("decreases{search_latency} = %v, want 2", n)
	}
	if g := testutil.ToFloat64(m.GuardTarget); g != 0.01 {
		t.Fatalf("guard target gauge %v, want 0.01", g)
	}
	if g := testutil.ToFloat64(m.GuardRate); g != ix.GuardRate() {
		t.Fatalf("guard rate gauge %v, want %v", g, ix.GuardRate())
	}
	// The rate paces the worker: the pacer's bucket banks at most
	// RateSlice, so a second of sending carries at most rate + rate/10
	// documents (and the first bulk).
	for ix.GuardRate() > minGuardRate {
		<-searches
	}
	rate := ix.GuardRate()
	sctx, stop := context.WithTimeout(ctx, time.Second)
	defer stop()
	before := ix.thr.sent.Load()
	send(sctx, ix)
	if n := float64(ix.thr.sent.Load() - before); n > rate*1.1+20 || n < rate*0.5 {
		t.Fatalf("%v documents sent in a second at a guard rate of %v", n, rate)
	}
}

// TestGuardSteps: the guard's rate doubles while searches are fast, but
// never above twice what the worker achieved; two slow windows in a row
// halve it the first time, later ones take it to 70%, never below minGuardRate; fast searches
// after that raise it by a fifth; searches between the raise threshold and
// the target hold it.
func TestGuardSteps(t *testing.T) {
	ix, m := guardIndexer(t, guardServer(t, func() time.Duration { return 0 }, make(chan struct{}, 1)))
	g := &guard{ix: ix, target: 50 * time.Millisecond, raise: 40 * time.Millisecond, rate: 100, doubleTo: guardDoubleTo * 100}
	ix.setGuardRate(g.rate, "")
	g.reset()
	// sent pretends the worker sent n documents over the last second.
	sent := func(n int64) {
		g.fromAt = time.Now().Add(-time.Second)
		ix.thr.sent.Add(n)
	}
	step := func(q time.Duration, want float64) {
		t.Helper()
		g.judge(q)
		if math.Abs(g.rate-want) > want*1e-4 || ix.GuardRate() != g.rate || testutil.ToFloat64(m.GuardRate) != g.rate {
			t.Fatalf("after a window at %v: rate %v (pacer %v, gauge %v), want %v", q, g.rate, ix.GuardRate(), testutil.ToFloat64(m.GuardRate), want)
		}
	}
	step(10*time.Millisecond, 100) // nothing sent: nothing to double
	sent(100)
	step(10*time.Millisecond, 200) // doubling
	sent(130)
	step(10*time.Millisecond, 260) // at most twice what was achieved
	sent(300)
	step(45*time.Millisecond, 260) // between raise and target: hold
	step(60*time.Millisecond, 260) // one slow window: noise as often as not
	step(10*time.Millisecond, 260) // a fast one resets that (nothing sent: no raise)
	step(60*time.Millisecond, 260)
	step(60*time.Millisecond, 130) // two in a row: the first cut halves
	if ix.reason() != "search_latency" {
		t.Fatalf("last cut %q, want search_latency", ix.reason())
	}
	step(60*time.Millisecond, 130)
	step(60*time.Millisecond, 130*guardCut) // later cuts: 70%
	sent(1000)
	step(10*time.Millisecond, 130*guardCut*guardStep) // after the start: a fifth
	for i := 0; i < 20; i++ {
		g.judge(time.Second)
		g.judge(time.Second)
	}
	if g.rate != minGuardRate {
		t.Fatalf("rate %v after many slow windows, want the floor %v", g.rate, minGuardRate)
	}
	// At the floor a slow window is no step down.
	n := testutil.ToFloat64(m.ThrottleDecreases.WithLabelValues("search_latency"))
	g.judge(time.Second)
	g.judge(time.Second)
	if after := testutil.ToFloat64(m.ThrottleDecreases.WithLabelValues("search_latency")); after != n || n < 3 {
		t.Fatalf("decreases{search_latency} = %v, then %v at the floor; want at least 3, then unchanged", n, after)
	}
	// The doubling start stops at guardDoubleTo times the start rate; from
	// there a fast window raises by a fifth, and the first cut still halves.
	g.rate, g.started, g.slow = 100, false, 0
	var wants []float64
	for r := 200.0; r <= 100*guardDoubleTo; r *= 2 {
		wants = append(wants, r)
	}
	top := 100 * guardDoubleTo * guardStep * guardStep
	if len(wants) < 2 || wants[len(wants)-1] != 100*guardDoubleTo {
		t.Fatalf("guardDoubleTo %d: want a power of two of at least 4", guardDoubleTo)
	}
	for _, want := range append(wants, 100*guardDoubleTo*guardStep, top) {
		sent(1 << 20)
		step(10*time.Millisecond, want)
	}
	step(60*time.Millisecond, top)
	step(60*time.Millisecond, top/2)
}

// TestGuardStuck: latency cuts in a row with no raise between them count
// as stuck (a relative guard re-measures its baseline then); a raise or a
// re-measure clears the count, a failed search does not add to it.
func TestGuardStuck(t *testing.T) {
	ix, _ := guardIndexer(t, guardServer(t, func() time.Duration { return 0 }, make(chan struct{}, 1)))
	g := &guard{ix: ix, target: 50 * time.Millisecond, raise: 40 * time.Millisecond, rate: 1000}
	g.reset()
	for i := 0; i < guardStuck; i++ {
		g.judge(time.Second)
		g.judge(time.Second)
	}
	g.cut("search_error", 0)
	if g.stuck != guardStuck {
		t.Fatalf("stuck %d after %d latency cuts and a failed search, want %d", g.stuck, guardStuck, guardStuck)
	}
	g.fromAt = time.Now().Add(-time.Second)
	ix.thr.sent.Add(1 << 20)
	g.judge(time.Millisecond)
	if g.stuck != 0 {
		t.Fatalf("stuck %d after a raise, want 0", g.stuck)
	}
}

// TestGuardRelative: a relative target is the factor times the mean of
// the baseline searches, measured before Guard returns (so before any
// bulk); searches that then slow down past it lower the rate, and back at
// the baseline's speed they raise it again. A failing baseline is an
// error.
func TestGuardRelative(t *testing.T) {
	g := startRelativeGuard(t, 20*time.Millisecond, 100, 10*time.Millisecond)
	defer g.cancel()
	srv, searches, ix, m, target := g.delayServer, g.searches, g.ix, g.m, g.target
	// Each baseline search took at least 20ms (the server's delay), so the
	// target is at least 30ms; well under the 200ms the searches take next.
	if target < 30*time.Millisecond || target > 150*time.Millisecond {
		t.Fatalf("relative target %v, want 1.5 x a baseline of about 20ms", target)
	}
	if g := testutil.ToFloat64(m.GuardTarget); g != target.Seconds() {
		t.Fatalf("guard target gauge %v, want the target in force, %v", g, target.Seconds())
	}
	if n := len(searches); n < baselineWarmup+2*guardWindowSize(1) {
		t.Fatalf("Guard returned after %d baseline searches, want %d", n, baselineWarmup+2*guardWindowSize(1))
	}
	if r := ix.GuardRate(); r != DefaultGuardStartRate {
		t.Fatalf("guard rate %v after the baseline, want %v", r, DefaultGuardStartRate)
	}
	go send(g.ctx, ix)
	srv.set(200 * time.Millisecond)
	awaitSearchCut(t, ix, DefaultGuardStartRate, searches, 20*time.Second)
	// Back to the baseline's speed: inside the lower half between baseline
	// and target, the guard raises the rate again.
	srv.set(20 * time.Millisecond)
	low := ix.GuardRate()
	for deadline := time.After(20 * time.Second); ix.GuardRate() <= low; {
		select {
		case <-searches:
			low = min(low, ix.GuardRate())
		case <-deadline:
			t.Fatal("searches back at the baseline's speed did not raise the rate")
		}
	}

	// A baseline that cannot be measured is an error.
	bix, err := New(statusClient(t, http.StatusNotFound, "index_not_found_exception"), Config{Index: "missing", Metrics: metrics.New(nil),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bix.Guard(g.ctx, GuardConfig{Queries: guardQuery, Relative: 1.5}); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("baseline on a missing index: %v, want an error naming HTTP 404", err)
	}
}

// TestBatchLimits: a rate (MaxRate, MaxBytesRate, a guard's) closes bulks
// at a RateSlice's worth (never above the configured size, never empty,
// bytes never below MinRateBulkBytes), so the rate reaches the cluster
// as a stream of small bulks; the lower of MaxRate and the guard's rate
// counts.
func TestBatchLimits(t *testing.T) {
	c := guardServer(t, func() time.Duration { return 0 }, make(chan struct{}, 1))
	for _, tc := range []struct {
		cfg                 Config
		guard               float64
		docs, bytes         int
		wantDocs, wantBytes int
	}{
		{Config{}, 0, 5000, 2 << 20, 5000, 2 << 20},
		{Config{MaxRate: 250}, 0, 5000, 2 << 20, 25, 2 << 20},
		{Config{MaxRate: 4000}, 0, 5000, 2 << 20, 400, 2 << 20},
		{Config{MaxRate: 100000}, 0, 5000, 2 << 20, 5000, 2 << 20},
		{Config{MaxRate: 0.5}, 0, 5000, 2 << 20, 1, 2 << 20},
		{Config{MaxBytesRate: 1 << 20}, 0, 5000, 2 << 20, 5000, 104858},
		{Config{MaxBytesRate: 1000}, 0, 5000, 2 << 20, 5000, 16 << 10},
		{Config{MaxBytesRate: 1000}, 0, 5000, 8 << 10, 5000, 8 << 10},
		{Config{}, 3000, 5000, 2 << 20, 300, 2 << 20},
		{Config{MaxRate: 1000}, 3000, 5000, 2 << 20, 100, 2 << 20},
		{Config{MaxRate: 5000}, 3000, 5000, 2 << 20, 300, 2 << 20},
	} {
		tc.cfg.Index, tc.cfg.Metrics = "i", metrics.New(nil)
		ix, err := New(c, tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if tc.guard > 0 {
			ix.setGuardRate(tc.guard, "")
		}
		if d, b := ix.BatchLimits(tc.docs, tc.bytes); d != tc.wantDocs || b != tc.wantBytes {
			t.Errorf("max rate %v, bytes rate %v, guard %v on (%d docs, %d bytes): got (%d, %d), want (%d, %d)",
				tc.cfg.MaxRate, tc.cfg.MaxBytesRate, tc.guard, tc.docs, tc.bytes, d, b, tc.wantDocs, tc.wantBytes)
		}
	}
}

func TestGuardWindowQuantile(t *testing.T) {
	var w guardWindow
	if q := w.add(5*time.Millisecond, 16, false); q != 5*time.Millisecond {
		t.Fatalf("one sample: %v", q)
	}
	addN(&w, time.Millisecond, 14, false)
	if w.n != 15 {
		t.Fatalf("%d samples after 15", w.n)
	}
	if q := w.add(9*time.Millisecond, 16, false); q != 5*time.Millisecond {
		t.Fatalf("quantile %v, want the second largest, 5ms", q)
	}
	// The oldest samples leave the window.
	addN(&w, 2*time.Millisecond, 16, false)
	if q := w.add(2*time.Millisecond, 16, false); q != 2*time.Millisecond {
		t.Fatalf("quantile %v after the slow samples left, want 2ms", q)
	}
	// The slow mean (relative targets): the slower half without the
	// slowest eighth, so one stalled search of 16 does not move it, while
	// a slowdown of some searches moves it more than a whole mean.
	var m guardWindow
	addN(&m, 4*time.Millisecond, 15, true)
	if got := m.add(40*time.Millisecond, 16, true); got != 4*time.Millisecond {
		t.Fatalf("slow mean of 15 x 4ms and one 40ms = %v, want 4ms", got)
	}
	addN(&m, 10*time.Millisecond, 3, true)
	// With the next: 11 x 4ms, 1 x 40ms (oldest first) and 4 x 10ms;
	// sorted, the 9th to the 14th: 4, 4, 4, 10, 10, 10 = 7ms (the mean
	// without the slowest eighth would be 5.7ms).
	if got := m.add(10*time.Millisecond, 16, true); got != 7*time.Millisecond {
		t.Fatalf("slow mean after a quarter of the window slowed: %v, want 7ms", got)
	}
	if got := slowMean([]time.Duration{9, 1, 30, 2, 3, 5}); got != 14 {
		t.Fatalf("slow mean of 6 (nothing left out): %v, want (5+9+30)/3", got)
	}
}

// addN adds n searches of d to a window of 16.
func addN(w *guardWindow, d time.Duration, n int, avg bool) {
	for i := 0; i < n; i++ {
		w.add(d, 16, avg)
	}
}

// TestPacerHold: while held, no bulk goes (a cancelled context still ends
// the wait); resume lets them go.
func TestPacerHold(t *testing.T) {
	ix, _ := guardIndexer(t, guardServer(t, func() time.Duration { return 0 }, make(chan struct{}, 1)))
	ix.thr.hold()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ix.thr.wait(ctx, 1, 1); err == nil {
		t.Fatal("wait on a held pacer with a cancelled context: no error")
	}
	done := make(chan error, 1)
	go func() {
		_, err := ix.thr.wait(context.Background(), 1, 1)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("wait returned while held: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	ix.thr.resume()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ix.thr.release()
}

// TestGuardRebase: a relative guard re-measures its baseline with the
// worker held back, and the target follows a node that became slower for
// good, by at most guardRebaseGrowth per re-measure: early (after
// guardFirstRebase searches: here 1.2 x slower from the start, inside the
// target, so the rate does not fall), and at once when the searches stay
// above the target however far the rate falls (stuck: here 4 x slower
// once the early re-measures are done, long before the next scheduled
// one). The hold ends when the guard stops.
func TestGuardRebase(t *testing.T) {
	for _, c := range []struct {
		name       string
		before     int // searches before the slowdown
		slower     time.Duration
		minS, maxS int // searches after the slowdown until the target moves
	}{
		// Re-measures (16 searches each) come after 32 steering searches,
		// 64 more and 128 more (search 270), then after 240 more (509).
		{"early", 0, 12 * time.Millisecond, guardFirstRebase, guardFirstRebase + guardWindowSize(1) + 2},
		{"stuck", 280, 40 * time.Millisecond, guardStuck * guardConfirm * guardWindowSize(1), 180},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := startRelativeGuard(t, 10*time.Millisecond, 1000, 2*time.Millisecond)
			defer g.cancel()
			srv, searches, ix, m, cancel := g.delayServer, g.searches, g.ix, g.m, g.cancel
			for len(searches) > 0 {
				<-searches // the baseline's
			}
			for i := 0; i < c.before; i++ {
				<-searches
			}
			first := testutil.ToFloat64(m.GuardTarget) // seconds
			srv.set(c.slower)                          // the node is slower now, for good
			var held bool
			n := 0
			for deadline := time.After(30 * time.Second); testutil.ToFloat64(m.GuardTarget) <= first; {
				select {
				case <-searches:
					n++
					ix.thr.mu.Lock()
					held = held || ix.thr.held != nil
					ix.thr.mu.Unlock()
				case <-deadline:
					t.Fatalf("target %v s after the node slowed down, want above the first %v", testutil.ToFloat64(m.GuardTarget), first)
				}
			}
			if !held {
				t.Fatal("the re-measure did not hold the worker back")
			}
			if n < c.minS || n > c.maxS {
				t.Fatalf("target moved after %d searches at the slower speed, want %d to %d", n, c.minS, c.maxS)
			}
			if got, limit := testutil.ToFloat64(m.GuardTarget), first*guardRebaseGrowth*1.0001; got > limit {
				t.Fatalf("target %v s after one re-measure, want at most %v", got, limit)
			}
			cancel()
			for deadline := time.Now().Add(10 * time.Second); ; {
				ix.thr.mu.Lock()
				h := ix.thr.held
				ix.thr.mu.Unlock()
				if h == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the worker is still held after the guard stopped")
				}
				time.Sleep(5 * time.Millisecond) // poll interval
			}
		})
	}
}

// TestGuardRebaseFails: a re-measure whose search fails or is rejected,
// or whose guard stops, returns early with the baseline and target it
// found, the stuck count cleared (it is not retried at every tick) and
// the worker no longer held.
func TestGuardRebaseFails(t *testing.T) {
	for _, c := range []struct {
		name   string
		status int
		cancel bool
	}{{"500", http.StatusInternalServerError, false}, {"429", http.StatusTooManyRequests, false}, {"stopped", http.StatusOK, true}} {
		t.Run(c.name, func(t *testing.T) {
			ix, m := guardIndexer(t, statusClient(t, c.status, "x"))
			base, target := 10*time.Millisecond, 15*time.Millisecond
			g := &guard{ix: ix, path: "/i/_search", queries: guardQuery, size: guardWindowSize(1), target: target,
				raise: 12 * time.Millisecond, relative: true, factor: 1.5, base: base, rate: 1000, stuck: guardStuck}
			m.GuardTarget.Set(target.Seconds())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tick := make(chan time.Time, 2*g.size)
			for range cap(tick) {
				tick <- time.Now()
			}
			if c.cancel {
				tick = make(chan time.Time) // never ticks: the re-measure waits for its first interval
				time.AfterFunc(20*time.Millisecond, cancel)
			}
			done := make(chan struct{})
			go func() { g.rebase(ctx, tick); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the re-measure did not return")
			}
			if g.base != base || g.target != target || testutil.ToFloat64(m.GuardTarget) != target.Seconds() {
				t.Fatalf("baseline %v, target %v (gauge %v s) after a re-measure that gave up; want %v, %v kept",
					g.base, g.target, testutil.ToFloat64(m.GuardTarget), base, target)
			}
			if g.stuck != 0 {
				t.Fatalf("stuck %d after a re-measure, want 0", g.stuck)
			}
			ix.thr.mu.Lock()
			held := ix.thr.held != nil
			ix.thr.mu.Unlock()
			if held {
				t.Fatal("the worker is still held after the re-measure gave up")
			}
		})
	}
}

// TestRebaseClock: scheduled re-measures come after guardFirstRebase
// steps, then twice as many each time up to guardRebaseEvery; a stuck
// re-measure comes at once and pushes the scheduled one back by the gap in
// force instead of leaving it a few steps later.
func TestRebaseClock(t *testing.T) {
	run := func(steps int, stuckAt ...int) []int {
		c := newRebaseClock()
		var due []int
		for i := 0; i < steps; i++ {
			if c.due(i, slices.Contains(stuckAt, i)) {
				due = append(due, i)
			}
		}
		return due
	}
	f, e := guardFirstRebase, guardRebaseEvery
	sched := []int{f, 3 * f, 7 * f}
	sched = append(sched, sched[2]+e, sched[2]+2*e)
	if got := run(sched[4] + 1); !slices.Equal(got, sched) {
		t.Fatalf("scheduled re-measures at %v, want %v", got, sched)
	}
	// Stuck 4 steps before the third scheduled one: that one moves to the
	// stuck step plus the gap in force (4f), the doubling goes on from there.
	stuck := sched[2] - 4
	want := []int{sched[0], sched[1], stuck, stuck + 4*f, stuck + 4*f + e}
	if got := run(want[4]+1, stuck); !slices.Equal(got, want) {
		t.Fatalf("re-measures with a stuck one at %d: %v, want %v", stuck, got, want)
	}
}

// TestGuardWindowSize: a window holds whole rounds of the guard's queries,
// at least 16 searches, so every window and baseline holds the same mix of
// cheap and costly queries.
func TestGuardWindowSize(t *testing.T) {
	for n, want := range map[int]int{1: 16, 2: 16, 3: 18, 5: 20, 7: 21, 9: 18, 15: 30, 16: 16} {
		if got := guardWindowSize(n); got != want || got%n != 0 {
			t.Errorf("guardWindowSize(%d) = %d, want %d", n, got, want)
		}
	}
}

// TestGuardSearchFailures: a guard search that fails or is rejected lowers
// the rate at once (no window needed), with its own reason.
func TestGuardSearchFailures(t *testing.T) {
	for _, c := range []struct {
		status int
		reason string
	}{{http.StatusInternalServerError, "search_error"}, {http.StatusTooManyRequests, "search_429"}, {http.StatusServiceUnavailable, "search_503"}} {
		ix, m := guardIndexer(t, statusClient(t, c.status, "x"))
		ctx, cancel := context.WithCancel(context.Background())
		if _, err := ix.Guard(ctx, GuardConfig{Queries: guardQuery, Target: time.Second, Interval: 5 * time.Millisecond, StartRate: 1000}); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); testutil.ToFloat64(m.ThrottleDecreases.WithLabelValues(c.reason)) < 2; {
			if time.Now().After(deadline) {
				t.Fatalf("HTTP %d guard searches: decreases{%s} = %v, want 2 within 10s", c.status, c.reason, testutil.ToFloat64(m.ThrottleDecreases.WithLabelValues(c.reason)))
			}
			time.Sleep(5 * time.Millisecond) // poll interval
		}
		if r := ix.GuardRate(); r > 500*guardCut*1.0001 || ix.reason() != c.reason {
			t.Fatalf("HTTP %d: rate %v, last cut %q; want at most %v after two cuts, reason %s", c.status, r, ix.reason(), 500*guardCut, c.reason)
		}
		cancel()
	}
}
