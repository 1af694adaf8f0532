package faultproxy

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// Overload configures a LatencyProxy: a node that serves quickly up to a
// request rate and slows down above it, the way a cluster whose storage
// cannot keep up does.
type Overload struct {
	// AboveRate is the request rate (requests per second over Window)
	// above which requests are delayed. 0 delays every request.
	AboveRate float64
	// Delay is added before forwarding a request while the rate is above
	// AboveRate.
	Delay time.Duration
	// Window is the span the rate is measured over (1s when 0).
	Window time.Duration
	// Status, when not 0, answers delayed requests with this status (e.g.
	// 429) after the delay instead of forwarding them.
	Status int
}

// LatencyStats are a LatencyProxy's books.
type LatencyStats struct {
	Requests int // requests received
	Delayed  int // requests delayed
}

// LatencyProxy forwards every request to a real node, delaying those that
// arrive while the recent request rate is above a threshold. It is safe for
// concurrent use.
type LatencyProxy struct {
	srv   *httptest.Server
	rp    *httputil.ReverseProxy
	mu    sync.Mutex
	cfg   Overload
	times []time.Time // arrival times within the window, oldest first
	stats LatencyStats
}

// NewLatency starts a latency-injecting proxy to target (e.g.
// http://127.0.0.1:9200) with cfg.
func NewLatency(target string, cfg Overload) (*LatencyProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("faultproxy: target %q is not an http(s) URL", target)
	}
	p := &LatencyProxy{rp: httputil.NewSingleHostReverseProxy(u)}
	p.Set(cfg)
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	return p, nil
}

// URL is the proxy's address.
func (p *LatencyProxy) URL() string { return p.srv.URL }

// Close stops the proxy.
func (p *LatencyProxy) Close() { p.srv.Close() }

// Set replaces the configuration.
func (p *LatencyProxy) Set(cfg Overload) {
	if cfg.Window <= 0 {
		cfg.Window = time.Second
	}
	p.mu.Lock()
	p.cfg = cfg
	p.mu.Unlock()
}

// Stats returns a copy of the books.
func (p *LatencyProxy) Stats() LatencyStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// admit records a request arriving at now and returns the delay it gets,
// the status to answer after it (0: forward) and the configured threshold.
func (p *LatencyProxy) admit(now time.Time) (time.Duration, int, float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Requests++
	cut := now.Add(-p.cfg.Window)
	drop := 0
	for drop < len(p.times) && !p.times[drop].After(cut) {
		drop++
	}
	p.times = append(p.times[:0], p.times[drop:]...)
	p.times = append(p.times, now)
	rate := float64(len(p.times)) / p.cfg.Window.Seconds()
	if p.cfg.Delay <= 0 || rate <= p.cfg.AboveRate {
		return 0, 0, p.cfg.AboveRate
	}
	p.stats.Delayed++
	return p.cfg.Delay, p.cfg.Status, p.cfg.AboveRate
}

func (p *LatencyProxy) serve(w http.ResponseWriter, r *http.Request) {
	delay, status, above := p.admit(time.Now())
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	if status != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":{"type":"rejected_execution_exception","reason":"injected by faultproxy above %g requests/s"},"status":%d}`,
			above, status)
		return
	}
	p.rp.ServeHTTP(w, r)
}
