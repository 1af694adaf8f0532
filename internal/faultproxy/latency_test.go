package faultproxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestLatencyProxyDelaysAboveRate(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"ok":true}`)
	}))
	defer backend.Close()
	p, err := NewLatency(backend.URL, Overload{AboveRate: 5, Delay: 150 * time.Millisecond, Window: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	get := func() (time.Duration, int) {
		start := time.Now()
		res, err := http.Get(p.URL() + "/x/_search")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return time.Since(start), res.StatusCode
	}
	// Five requests within the window: at most 5/s, never delayed.
	for i := range 5 {
		if d, code := get(); d >= 150*time.Millisecond || code != http.StatusOK {
			t.Fatalf("request %d below the rate: %s, HTTP %d; want fast 200", i, d, code)
		}
	}
	// The sixth within the same second is above 5/s: delayed.
	if d, code := get(); d < 150*time.Millisecond || code != http.StatusOK {
		t.Fatalf("request above the rate: %s, HTTP %d; want at least 150ms and 200", d, code)
	}
	if s := p.Stats(); s.Requests != 6 || s.Delayed != 1 {
		t.Fatalf("stats %+v, want 6 requests, 1 delayed", s)
	}
	// Rejection mode answers the delayed requests itself.
	p.Set(Overload{AboveRate: 0, Delay: time.Millisecond, Status: http.StatusTooManyRequests})
	if _, code := get(); code != http.StatusTooManyRequests {
		t.Fatalf("HTTP %d, want 429", code)
	}
}
