package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/reindexer/reindexer/consumer"
	"github.com/reindexer/reindexer/indexer"
)

// probeTimeout bounds the OpenSearch request of one probe; keep the
// Kubernetes probes' timeoutSeconds above it.
const probeTimeout = 2 * time.Second

// probes decides /healthz (liveness) and /readyz (readiness) with the
// meaning Kubernetes gives them:
//
//   - liveness fails only when a restart can help: records are waiting, nothing
//     became durable for stallTimeout, and OpenSearch is reachable and not
//     refusing writes. An unreachable or blocked OpenSearch is not fixed by
//     restarting the worker, so it never fails liveness (reindexer_blocked,
//     the lag metrics and readiness report it).
//   - readiness fails while OpenSearch cannot be reached. A member that owns
//     no partitions is ready: more replicas than partitions is legal, and a
//     rolling update must not wait for partitions a member will never get.
type probes struct {
	stallTimeout time.Duration
	// reach checks that OpenSearch answers.
	reach func(ctx context.Context) error
	// blocked reports that OpenSearch refuses writes (cluster block).
	blocked func() bool
	// progress returns the records waiting to become durable and how long
	// ago something last became durable.
	progress func() (behind int64, idle time.Duration)
}

// live is the liveness check.
func (p *probes) live(ctx context.Context) error {
	behind, idle := p.progress()
	if behind <= 0 || idle <= p.stallTimeout {
		return nil
	}
	if p.blocked != nil && p.blocked() {
		return nil // OpenSearch refuses writes: a restart changes nothing
	}
	rctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if err := p.reach(rctx); err != nil {
		return nil // OpenSearch is down: a restart changes nothing
	}
	return fmt.Errorf("stalled: %d records waiting and nothing durable for %s while OpenSearch answers", behind, idle.Round(time.Second))
}

// ready is the readiness check.
func (p *probes) ready(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if err := p.reach(rctx); err != nil {
		return fmt.Errorf("opensearch unreachable: %v", err)
	}
	return nil
}

// handlers returns the two checks in the form serveMetrics takes.
func (p *probes) handlers(ctx context.Context) (healthy, ready func() error) {
	return func() error { return p.live(ctx) }, func() error { return p.ready(ctx) }
}

// reachOpenSearch checks OpenSearch with the admin client.
func reachOpenSearch(admin *opensearchapi.Client) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := indexer.ClusterInfo(ctx, admin)
		return err
	}
}

// gaugeIsSet reports whether g is above zero.
func gaugeIsSet(g prometheus.Gauge) func() bool {
	return func() bool {
		var m dto.Metric
		if err := g.Write(&m); err != nil {
			return false
		}
		return m.GetGauge().GetValue() > 0
	}
}

// runProgress is probes.progress for run: lag and time since the last
// commit.
func runProgress(status func() consumer.Status, now func() time.Time) func() (int64, time.Duration) {
	return func() (int64, time.Duration) {
		st := status()
		return st.Lag, now().Sub(st.LastCommit)
	}
}

// progressTracker remembers when a replay's durable progress last moved.
type progressTracker struct {
	now func() time.Time

	mu      sync.Mutex
	done    int64
	total   int64
	changed time.Time
}

func newProgressTracker(now func() time.Time) *progressTracker {
	return &progressTracker{now: now, changed: now(), done: -1}
}

// observe records one progress report.
func (t *progressTracker) observe(p consumer.Progress) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p.Done != t.done {
		t.done, t.changed = p.Done, t.now()
	}
	t.total = p.Total
}

// progress is probes.progress for replay: offsets left and time since the
// durable count last moved.
func (t *progressTracker) progress() (int64, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	behind := t.total - max(t.done, 0)
	if t.done < 0 {
		behind = 0 // no report yet: the replay is still joining its group
	}
	return behind, t.now().Sub(t.changed)
}

// registerBuildInfo registers reindexer_build_info{version,goversion,revision} = 1.
func registerBuildInfo(reg prometheus.Registerer) {
	revision := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		var modified bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && revision != "unknown" {
			revision += "-dirty"
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "reindexer_build_info",
		Help:        "Always 1; the labels say which build is running.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version(), "revision": revision},
	})
	g.Set(1)
	reg.MustRegister(g)
}

// stallTimeoutUsage documents --stall-timeout (run and replay).
const stallTimeoutUsage = "/healthz (liveness) fails when records wait and nothing became durable for this long while OpenSearch answers and accepts writes " +
	"(an unreachable or blocked OpenSearch never fails liveness: a restart would not fix it; /readyz reports it)"
