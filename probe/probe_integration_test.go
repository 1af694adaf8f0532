//go:build integration

package probe_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"

	"github.com/reindexer/reindexer/internal/faultproxy"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/reindexer/reindexer/probe"
	"github.com/reindexer/reindexer/probe/probetest"
)

// searchClient is a client to url that never retries, as probe needs.
func searchClient(t *testing.T, url string) *opensearchapi.Client {
	t.Helper()
	cl, err := opensearchapi.NewClient(opensearchapi.Config{Client: opensearch.Config{Addresses: []string{url}, DisableRetry: true}})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func readQueries(t *testing.T, path string) []probe.Query {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	qs, err := probe.ReadQueries(f)
	if err != nil {
		t.Fatal(err)
	}
	return qs
}

// TestProbeAnswersOverlap: two indices holding the same documents answer
// every query with the same top-10 ids; a drifted copy (a fifth of the
// documents missing, some bodies rewritten) does not, and a --min-overlap
// limit stops the probe on it.
func TestProbeAnswersOverlap(t *testing.T) {
	env := itest.Services(t)
	cl := itest.OpenSearch(t, env)
	docs := probetest.Docs(t)
	same, other, drifted := itest.Name(t, "probe-a"), itest.Name(t, "probe-b"), itest.Name(t, "probe-drift")
	probetest.Load(t, env, cl, same, docs)
	probetest.Load(t, env, cl, other, docs)
	probetest.Load(t, env, cl, drifted, probetest.Drift(docs))
	queries := readQueries(t, probetest.QueryFile(t, docs, 40))
	search := searchClient(t, env.OpenSearchURL)
	run := func(newIndex string, minOverlap float64) probe.Report {
		rep, err := probe.Run(t.Context(), probe.Config{
			New: probe.Side{Client: search, Index: newIndex}, Old: &probe.Side{Client: search, Index: other},
			Queries: queries, Rate: 40, Steps: []float64{1}, StepDuration: time.Second,
			Limits: probe.Limits{MaxErrorRate: 0, MinOverlap: minOverlap},
		})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	equal := run(same, 0.99)
	if o := equal.Overlap; equal.Verdict != probe.Pass || o.Compared != 40 || o.Differing != 0 || o.Mean() != 1 {
		t.Fatalf("equal indices: verdict %s, overlap %+v (mean %v); want pass, 40 compared, 100%%", equal.Verdict, o, o.Mean())
	}
	drift := run(drifted, 0.99)
	o := drift.Overlap
	t.Logf("drifted copy: overlap %s, %d of %d differ", probe.Percent(o.Mean()), o.Differing, o.Compared)
	if o.Compared != 40 || o.Differing == 0 || o.Mean() >= 0.99 {
		t.Fatalf("drifted copy: overlap %+v (mean %v); want answers that differ", o, o.Mean())
	}
	if drift.Verdict != probe.Fail || drift.Steps[0].Breaches[0].Limit != "min-overlap" {
		t.Fatalf("drifted copy: verdict %s, breaches %v; want fail on min-overlap", drift.Verdict, drift.Steps[0].Breaches)
	}
}

// TestProbeStopsWhereTheNodeCannotServe: the new side is the local node
// behind a proxy that adds 600ms to every search above 40 searches/s (a
// cluster whose storage cannot keep up). At 10% and 30% of 100/s it keeps
// up; at 100% the probe stops, and never runs the fourth step. A plan that
// stays below 40/s holds.
func TestProbeStopsWhereTheNodeCannotServe(t *testing.T) {
	env := itest.Services(t)
	cl := itest.OpenSearch(t, env)
	docs := probetest.Docs(t)
	newIndex, oldIndex := itest.Name(t, "probe-new"), itest.Name(t, "probe-old")
	probetest.Load(t, env, cl, newIndex, docs)
	probetest.Load(t, env, cl, oldIndex, docs)
	proxy, err := faultproxy.NewLatency(env.OpenSearchURL, faultproxy.Overload{AboveRate: 40, Delay: 600 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	queries := readQueries(t, probetest.QueryFile(t, docs, 40))
	cfg := probe.Config{
		New:     probe.Side{Client: searchClient(t, proxy.URL()), Index: newIndex},
		Old:     &probe.Side{Client: searchClient(t, env.OpenSearchURL), Index: oldIndex},
		Queries: queries, Rate: 100, Steps: []float64{0.1, 0.3, 1, 1}, StepDuration: 1500 * time.Millisecond,
		Limits: probe.Limits{MaxP99Ratio: 3, RatioFloor: 150 * time.Millisecond, MaxErrorRate: 0.05},
	}
	rep, err := probe.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Steps {
		t.Logf("step %d (%g/s): new p50 %s p99 %s errors %s; old p99 %s; breaches %v", s.Step, s.Rate,
			probe.Round(s.New.P50), probe.Round(s.New.P99), probe.Percent(s.New.ErrorRate()), probe.Round(s.Old.P99), s.Breaches)
	}
	if rep.Verdict != probe.Fail || rep.FailedStep != 3 || len(rep.Steps) != 3 {
		t.Fatalf("verdict %s at step %d after %d steps; want fail at step 3 (100/s, above the proxy's 40/s) and no step 4",
			rep.Verdict, rep.FailedStep, len(rep.Steps))
	}
	if p99 := rep.Steps[2].New.P99; p99 < 600*time.Millisecond {
		t.Fatalf("step 3 new p99 %s, want the proxy's 600ms in it", p99)
	}
	if d := proxy.Stats().Delayed; d == 0 {
		t.Fatal("the proxy delayed nothing")
	}

	// A fresh proxy: the first plan's last second at 100/s is still in the
	// old one's rate window, and would delay the next plan's first searches.
	calm, err := faultproxy.NewLatency(env.OpenSearchURL, faultproxy.Overload{AboveRate: 40, Delay: 600 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer calm.Close()
	cfg.New.Client = searchClient(t, calm.URL())
	cfg.Rate, cfg.Steps = 30, []float64{0.5, 1}
	comfortable, err := probe.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if comfortable.Verdict != probe.Pass || len(comfortable.Steps) != 2 {
		t.Fatalf("comfortable plan: verdict %s, steps %s; want pass", comfortable.Verdict, fmt.Sprint(comfortable.Steps))
	}
	if st := calm.Stats(); st.Requests == 0 || st.Delayed != 0 {
		t.Fatalf("comfortable plan through the proxy: %d requests, %d delayed; want some, none delayed", st.Requests, st.Delayed)
	}
}
