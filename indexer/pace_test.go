package indexer

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
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

// awaitSearchCut waits, search by search, until the guard has lowered the
// limit below 8 for search_latency, failing after within.
func awaitSearchCut(t *testing.T, ix *Indexer, searches <-chan struct{}, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		if l, r := ix.Throttle(); l < 8 && r == "search_latency" {
			return
		}
		select {
		case <-searches:
		case <-deadline:
			l, r := ix.Throttle()
			t.Fatalf("limit %v (%s) after slow guard searches, want below 8 for search_latency", l, r)
		}
	}
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
// limit once the guard has seen enough of them; one search per interval.
func TestGuardBacksOff(t *testing.T) {
	searches := make(chan struct{}, 100)
	c := guardServer(t, func() time.Duration { return 30 * time.Millisecond }, searches)
	ix, m := guardIndexer(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if target, err := ix.Guard(ctx, GuardConfig{Queries: guardQuery, Target: 10 * time.Millisecond, Interval: 20 * time.Millisecond}); err != nil || target != 10*time.Millisecond {
		t.Fatalf("Guard: %v, %v", target, err)
	}
	for i := 0; i < guardSettle-1; i++ {
		<-searches
	}
	if l, _ := ix.Throttle(); l != 8 {
		t.Fatalf("limit %v after %d slow searches, want 8 until the guard has seen %d", l, guardSettle-1, guardSettle)
	}
	awaitSearchCut(t, ix, searches, 10*time.Second)
	if n := testutil.ToFloat64(m.ThrottleDecreases.WithLabelValues("search_latency")); n < 1 {
		t.Fatalf("decreases{search_latency} = %v", n)
	}
	if g := testutil.ToFloat64(m.GuardTarget); g != 0.01 {
		t.Fatalf("guard target gauge %v, want 0.01", g)
	}
}

// TestGuardRelative: a relative target is the factor times the median of
// the baseline searches, measured before Guard returns (so
// before any bulk); searches that then slow down past it lower the limit.
// A failing baseline is an error.
func TestGuardRelative(t *testing.T) {
	var delay atomic.Int64
	delay.Store(int64(20 * time.Millisecond))
	searches := make(chan struct{}, 100)
	c := guardServer(t, func() time.Duration { return time.Duration(delay.Load()) }, searches)
	ix, m := guardIndexer(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	target, err := ix.Guard(ctx, GuardConfig{Queries: guardQuery, Relative: 1.5, Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Each baseline search took at least 20ms (the server's delay), so the
	// target is at least 30ms; well under the 200ms the searches take next.
	if target < 30*time.Millisecond || target > 150*time.Millisecond {
		t.Fatalf("relative target %v, want 1.5 x a baseline of about 20ms", target)
	}
	if g := testutil.ToFloat64(m.GuardTarget); g != target.Seconds() {
		t.Fatalf("guard target gauge %v, want the target in force, %v", g, target.Seconds())
	}
	if n := len(searches); n < baselineWarmup+BaselineSearches {
		t.Fatalf("Guard returned after %d baseline searches, want %d", n, baselineWarmup+BaselineSearches)
	}
	if l, _ := ix.Throttle(); l != 8 {
		t.Fatalf("limit %v after the baseline, want 8", l)
	}
	delay.Store(int64(200 * time.Millisecond))
	awaitSearchCut(t, ix, searches, 20*time.Second)
	// Back to the baseline's speed: inside the lower half between baseline
	// and target, the guard raises the throttle again.
	delay.Store(int64(20 * time.Millisecond))
	level := func() float64 { l, _ := ix.Throttle(); return l + ix.BatchScale() - ix.thr.pause().Seconds() }
	low := level()
	for deadline := time.After(20 * time.Second); level() <= low; {
		select {
		case <-searches:
			low = min(low, level())
		case <-deadline:
			t.Fatal("searches back at the baseline's speed did not raise the throttle")
		}
	}

	// A baseline that cannot be measured is an error.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":{"type":"index_not_found_exception"}}`)
	}))
	defer bad.Close()
	bc, err := opensearch.NewClient(opensearch.Config{Addresses: []string{bad.URL}, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	bix, err := New(bc, Config{Index: "missing", TargetLatency: 10 * time.Millisecond, Metrics: metrics.New(nil),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bix.Guard(ctx, GuardConfig{Queries: guardQuery, Relative: 1.5}); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("baseline on a missing index: %v, want an error naming HTTP 404", err)
	}
}

func TestGuardWindowQuantile(t *testing.T) {
	var w guardWindow
	if q := w.add(5 * time.Millisecond); q != 5*time.Millisecond {
		t.Fatalf("one sample: %v", q)
	}
	for i := 0; i < 14; i++ {
		w.add(time.Millisecond)
	}
	if w.full() {
		t.Fatal("full after 15 samples")
	}
	if q := w.add(9 * time.Millisecond); q != 5*time.Millisecond || !w.full() {
		t.Fatalf("quantile %v (full %v), want the second largest, 5ms", q, w.full())
	}
	// The oldest samples leave the window.
	for i := 0; i < 16; i++ {
		w.add(2 * time.Millisecond)
	}
	if q := w.add(2 * time.Millisecond); q != 2*time.Millisecond {
		t.Fatalf("quantile %v after the slow samples left, want 2ms", q)
	}
	// The median (relative targets): the middle of what the window holds.
	var m guardWindow
	for _, ms := range []int{9, 1, 30, 2, 3} {
		m.add(time.Duration(ms) * time.Millisecond)
	}
	if got := m.median(); got != 3*time.Millisecond {
		t.Fatalf("median of 9,1,30,2,3 ms = %v, want 3ms", got)
	}
}
