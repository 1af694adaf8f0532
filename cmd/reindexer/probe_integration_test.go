//go:build integration

package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/faultproxy"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/reindexer/reindexer/probe/probetest"
)

// waitExitCode waits for p and returns its exit code.
func waitExitCode(t *testing.T, p *proc, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s still running after %s", p.name, timeout)
	}
	if p.err == nil {
		return 0
	}
	return p.cmd.ProcessState.ExitCode()
}

// TestProbeCommand runs the binary against the local node. The new side is
// the node behind a proxy that adds 600ms to every search above 40
// searches/s; the old side is the node itself, holding the same documents,
// while `reindexer run` indexes a Kafka topic into a third index of the
// same node. A plan whose third step (100/s) exceeds what the new side
// serves stops there with exit 1 and names the step; a plan that stays
// below holds with exit 0, reports 100% answer overlap as JSON and serves
// its metrics while it runs; a missing index is "could not check", exit 2.
func TestProbeCommand(t *testing.T) {
	env := itest.Services(t)
	cl := itest.OpenSearch(t, env)
	docs := probetest.Docs(t)
	newIndex, oldIndex, written := itest.Name(t, "probe-new"), itest.Name(t, "probe-old"), itest.Name(t, "probe-written")
	probetest.Load(t, env, cl, newIndex, docs)
	probetest.Load(t, env, cl, oldIndex, docs)
	itest.CleanupIndex(t, env, written)
	queries := probetest.QueryFile(t, docs, 40)
	proxy, err := faultproxy.NewLatency(env.OpenSearchURL, faultproxy.Overload{AboveRate: 60, Delay: 600 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()

	// Writes on the node during the probes.
	topic := itest.Name(t, "probe-topic")
	itest.CreateTopic(t, env, topic, 3)
	events := chatgen.Sample()
	feed := produceSlowly(t, env, topic, append(append([]chatgen.Event{}, events...), events...), 20, 250*time.Millisecond)
	writer := start(t, "run", runArgs(env, topic, itest.Name(t, "probe-group"), written)...)

	base := []string{"probe", "--opensearch", proxy.URL(), "--index", newIndex, "--against-opensearch", env.OpenSearchURL,
		"--against-index", oldIndex, "--queries", queries, "--max-p99-ratio", "3", "--p99-ratio-floor", "150ms", "--max-error-rate", "5%"}
	args := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }

	code, out, errb := runBin(t, args("--rate", "100", "--steps", "10%,30%,100%,100%", "--step-duration", "1500ms")...)
	t.Logf("overloaded plan, exit %d:\n%s", code, out)
	if code != exitFailure || !strings.Contains(out, "result: FAIL, step 3 (100% of the rate, 100 queries/s) broke") ||
		!strings.Contains(errb, "step 3 (100% of the rate, 100 queries/s) broke") {
		t.Fatalf("overloaded plan: exit %d\nstdout %s\nstderr %s\nwant exit 1 at step 3", code, out, errb)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "4 ") {
			t.Fatalf("step 4 ran after step 3 failed: %q", line)
		}
	}

	metrics := freeAddr(t) // from the chaos report tests
	p, outPath := startSplit(t, "probe", args("--rate", "20", "--steps", "50%,100%", "--step-duration", "1500ms", "--json", "--metrics-addr", metrics)...)
	var scraped string
	for deadline := time.Now().Add(5 * time.Second); scraped == "" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		res, err := http.Get("http://" + metrics + "/metrics")
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if strings.Contains(string(body), `reindexer_probe_requests_total{result="ok",side="new"}`) {
			scraped = string(body)
		}
	}
	code = waitExitCode(t, p, time.Minute)
	data, _ := os.ReadFile(outPath)
	var rep probeReportJSON
	if code != exitOK || json.Unmarshal(data, &rep) != nil || rep.Verdict != "pass" || len(rep.Steps) != 2 {
		t.Fatalf("comfortable plan: exit %d, report %s", code, data)
	}
	if rep.Overlap == nil || rep.Overlap.Compared < 40 || rep.Overlap.Mean != 1 || rep.Overlap.Differing != 0 {
		t.Fatalf("comfortable plan: overlap %+v; want 100%% of at least 40 queries (equal indices)", rep.Overlap)
	}
	if scraped == "" {
		t.Fatal("no reindexer_probe_requests_total on --metrics-addr while the probe ran")
	}
	t.Logf("comfortable plan: step 2 new p99 %.1fms, old p99 %.1fms, overlap %.0f%% of %d", rep.Steps[1].New.P99S*1000,
		rep.Steps[1].Old.P99S*1000, rep.Overlap.Mean*100, rep.Overlap.Compared)

	code, _, errb = runBin(t, "probe", "--opensearch", env.OpenSearchURL, "--index", itest.Name(t, "probe-missing"),
		"--queries", queries, "--rate", "10", "--step-duration", "1s")
	if code != exitUsage || !strings.Contains(errb, "could not check") || !strings.Contains(errb, "index_not_found_exception") {
		t.Fatalf("missing index: exit %d, stderr %s; want exit 2, could not check", code, errb)
	}

	feed.wait(t)
	if writer.exited() {
		t.Fatal("the run writing during the probes died")
	}
	writer.term(30 * time.Second)
	if n := len(itest.DumpIndex(t, env, written)); n == 0 {
		t.Fatal("run wrote nothing during the probes")
	}
}
