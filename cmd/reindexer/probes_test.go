package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/reindexer/reindexer/consumer"
)

// TestProbesMeaning: liveness fails only for a stall a restart can fix;
// readiness fails only when OpenSearch cannot be reached, never for a
// member without partitions.
func TestProbesMeaning(t *testing.T) {
	down := errors.New("connection refused")
	for _, c := range []struct {
		name        string
		behind      int64
		idle        time.Duration
		blocked     bool
		reach       error
		live, ready string // "" = passes, else a substring of the error
	}{
		{name: "idle member without partitions", behind: 0, idle: time.Hour},
		{name: "lagging but committing", behind: 500, idle: time.Second},
		{name: "stalled while OpenSearch answers", behind: 500, idle: 10 * time.Minute, live: "stalled: 500 records waiting"},
		{name: "stalled because OpenSearch is down", behind: 500, idle: 10 * time.Minute, reach: down, ready: "opensearch unreachable: connection refused"},
		{name: "stalled because the cluster blocks writes", behind: 500, idle: 10 * time.Minute, blocked: true},
		{name: "OpenSearch down, nothing waiting", reach: down, ready: "opensearch unreachable"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := &probes{
				stallTimeout: 5 * time.Minute,
				reach:        func(context.Context) error { return c.reach },
				blocked:      func() bool { return c.blocked },
				progress:     func() (int64, time.Duration) { return c.behind, c.idle },
			}
			check := func(what string, err error, want string) {
				t.Helper()
				switch {
				case want == "" && err != nil:
					t.Errorf("%s failed: %v", what, err)
				case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
					t.Errorf("%s = %v, want an error with %q", what, err, want)
				}
			}
			check("liveness", p.live(context.Background()), c.live)
			check("readiness", p.ready(context.Background()), c.ready)
		})
	}
}

func TestRunProgress(t *testing.T) {
	now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	f := runProgress(func() consumer.Status {
		return consumer.Status{Assigned: 2, Lag: 42, LastCommit: now.Add(-90 * time.Second)}
	}, func() time.Time { return now })
	if behind, idle := f(); behind != 42 || idle != 90*time.Second {
		t.Fatalf("runProgress = %d, %s; want 42, 1m30s", behind, idle)
	}
}

func TestProgressTracker(t *testing.T) {
	now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tr := newProgressTracker(clock)
	if behind, _ := tr.progress(); behind != 0 {
		t.Fatalf("before the first report: behind %d, want 0 (still joining)", behind)
	}
	tr.observe(consumer.Progress{Done: 10, Total: 100})
	now = now.Add(time.Minute)
	tr.observe(consumer.Progress{Done: 10, Total: 100}) // no movement
	if behind, idle := tr.progress(); behind != 90 || idle != time.Minute {
		t.Fatalf("progress = %d, %s; want 90, 1m0s", behind, idle)
	}
	tr.observe(consumer.Progress{Done: 60, Total: 100})
	if behind, idle := tr.progress(); behind != 40 || idle != 0 {
		t.Fatalf("after movement: %d, %s; want 40, 0s", behind, idle)
	}
	tr.observe(consumer.Progress{Done: 100, Total: 100})
	now = now.Add(time.Hour)
	if behind, _ := tr.progress(); behind != 0 {
		t.Fatalf("complete: behind %d, want 0", behind)
	}
}

func TestGaugeIsSet(t *testing.T) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
	set := gaugeIsSet(g)
	if set() {
		t.Fatal("zero gauge reported as set")
	}
	g.Set(1)
	if !set() {
		t.Fatal("gauge at 1 reported as unset")
	}
}

func TestBuildInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	registerBuildInfo(reg)
	n, err := testutil.GatherAndCount(reg, "reindexer_build_info")
	if err != nil || n != 1 {
		t.Fatalf("reindexer_build_info series: %d, %v; want 1", n, err)
	}
	mfs, _ := reg.Gather()
	labels := map[string]string{}
	for _, l := range mfs[0].GetMetric()[0].GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["version"] != version || !strings.HasPrefix(labels["goversion"], "go") || labels["revision"] == "" {
		t.Fatalf("labels %v", labels)
	}
}
