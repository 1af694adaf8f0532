package indexer

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
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
	want := []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond, 750 * time.Millisecond, time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("reservations %v, want %v", got, want)
		}
	}
	// After a quiet period the bucket does not bank credit beyond now.
	later := t0.Add(10 * time.Second)
	if at := reserve(&next, later, 250, 1000); !at.Equal(later) {
		t.Fatalf("after idling, a request waits until %v, want now", at.Sub(later))
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

// TestGuardBacksOff: a guard search slower than its target halves the
// limit; the guard sends one search per interval.
func TestGuardBacksOff(t *testing.T) {
	searches := make(chan struct{}, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/_search") {
			searches <- struct{}{}
			time.Sleep(30 * time.Millisecond) // the slow search the guard must notice
			io.WriteString(w, `{"hits":{"hits":[]}}`)
		}
	}))
	defer srv.Close()
	c, err := opensearch.NewClient(opensearch.Config{Addresses: []string{srv.URL}, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(nil)
	ix, err := New(c, Config{Index: "i", TargetLatency: 10 * time.Millisecond, MaxInFlight: 8, Metrics: m,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ix.Guard(ctx, [][]byte{[]byte(`{"query":{"match":{"body":"x"}}}`)}, 10*time.Millisecond, 20*time.Millisecond)
	}()
	for i := 0; i < 3; i++ {
		<-searches
	}
	cancel()
	<-done
	if l, r := ix.Throttle(); l >= 8 || r != "search_latency" {
		t.Fatalf("limit %v (%s) after slow guard searches, want below 8 for search_latency", l, r)
	}
	if n := testutil.ToFloat64(m.ThrottleDecreases.WithLabelValues("search_latency")); n < 1 {
		t.Fatalf("decreases{search_latency} = %v", n)
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
}
