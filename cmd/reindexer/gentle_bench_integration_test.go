//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/reindexer/reindexer/probe"
	"github.com/reindexer/reindexer/probe/probetest"
)

// BenchmarkGentle (make bench-gentle) shows what a replay does to the
// searches of the cluster it writes, in three phases of equal length with
// the same fixed search load (chat-body match queries built from the words
// of testdata/, a fixed rate from several concurrent clients, open loop):
//
//  1. idle: search only;
//  2. search during an unthrottled replay of the bench stream into the
//     searched index;
//  3. search during the same replay into a fresh copy of that index with
//     adaptive concurrency, a guard query file and a search latency target.
//
// Per phase it reports search p50/p99/max and errors, and the replay's
// documents per second (over the whole replay, which may outlast the
// phase). Environment: REINDEXER_BENCH_EVENTS (stream size, default
// 300000; make bench-gentle uses 1000000), REINDEXER_GENTLE_QPS (search
// rate, default 40), REINDEXER_GENTLE_PHASE (phase length, default 30s),
// REINDEXER_GENTLE_FLAGS (phase 3's throttle flags).
func BenchmarkGentle(b *testing.B) {
	env := itest.Services(b)
	topic, _ := benchTopic(b, env)
	qps := envFloat("REINDEXER_GENTLE_QPS", 40)
	phase := envDuration("REINDEXER_GENTLE_PHASE", 30*time.Second)
	docs := probetest.Docs(b)
	qfile := probetest.QueryFile(b, docs, 60)
	qdata, err := os.ReadFile(qfile)
	if err != nil {
		b.Fatal(err)
	}
	queries, err := probe.ReadQueries(bytes.NewReader(qdata))
	if err != nil {
		b.Fatal(err)
	}
	gentle := strings.Fields(os.Getenv("REINDEXER_GENTLE_FLAGS"))
	if len(gentle) == 0 {
		gentle = []string{"--target-latency", "300ms", "--search-latency-target", "50ms", "--guard-interval", "500ms"}
	}
	gentle = append(gentle, "--guard-query", qfile)
	cl, err := opensearchapi.NewClient(opensearchapi.Config{Client: opensearch.Config{
		Addresses: []string{env.OpenSearchURL}, DisableRetry: true}})
	if err != nil {
		b.Fatal(err)
	}
	// Two identical targets with cold data the searches hit: the chat
	// sample plus a generated stream of older messages.
	cold := chatgen.DefaultConfig(7)
	cold.IDs = 20000
	coldEvents := chatgen.MustNew(cold).Stream(40000)
	var targets [2]string
	for i := range targets {
		targets[i] = itest.Name(b, "gentle")
		probetest.Load(b, env, cl, targets[i], docs)
		bulkEvents(b, env, targets[i], coldEvents)
	}
	b.Logf("machine: %d CPUs shared by Kafka, OpenSearch, the worker and the search load; OpenSearch %s; %d events; search %.0f q/s for %s per phase; phase 3 flags %v",
		runtime.NumCPU(), env.OpenSearchVersion, benchEvents(), qps, phase, gentle)

	type result struct {
		name    string
		search  probe.SideStats
		docsSec float64
	}
	var results []result
	search := func(index string) probe.SideStats {
		rep, err := probe.Run(context.Background(), probe.Config{
			New: probe.Side{Name: "new", Client: cl, Index: index}, Queries: queries,
			Rate: qps, Steps: []float64{1}, StepDuration: phase, MaxInFlight: 8,
		})
		if err != nil || len(rep.Steps) != 1 {
			b.Fatalf("search load: %v (%d steps)", err, len(rep.Steps))
		}
		return rep.Steps[0].New
	}
	for i := 0; i < b.N; i++ {
		results = append(results, result{name: "1 idle", search: search(targets[0])})
		for k, flags := range [][]string{nil, gentle} {
			index := targets[k]
			args := append([]string{"replay", "--brokers", strings.Join(env.KafkaBrokers, ","), "--opensearch", env.OpenSearchURL,
				"--topic", topic, "--group", itest.Name(b, "g"), "--index", index, "--from", "2000-01-01T00:00:00Z",
				"--checkpoint-index", "none", "--json", "--progress", "none", "--log-level", "warn"}, flags...)
			cmd := exec.Command(binPath, args...)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			start := time.Now()
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			st := search(index)
			if err := cmd.Wait(); err != nil {
				b.Fatalf("replay: %v\n%s", err, errb.String())
			}
			wall := time.Since(start)
			var sum struct {
				Records int64 `json:"records"`
			}
			if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
				b.Fatalf("replay summary %s: %v", out.String(), err)
			}
			name := "2 replay, unthrottled"
			if k == 1 {
				name = "3 replay, gentle"
			}
			results = append(results, result{name: name, search: st, docsSec: float64(sum.Records) / wall.Seconds()})
		}
	}
	var tb strings.Builder
	fmt.Fprintf(&tb, "\n| phase | search p50 | p99 | max | errors+rejected | replay docs/s |\n|---|---|---|---|---|---|\n")
	for _, r := range results {
		rate := "-"
		if r.docsSec > 0 {
			rate = strconv.FormatFloat(r.docsSec, 'f', 0, 64)
		}
		fmt.Fprintf(&tb, "| %s | %s | %s | %s | %d | %s |\n", r.name, probe.Round(r.search.P50), probe.Round(r.search.P99),
			probe.Round(r.search.Max), r.search.Errors+r.search.Rejected+r.search.Unsent, rate)
	}
	b.Log(tb.String())
	last := results[len(results)-3:]
	b.ReportMetric(float64(last[2].search.P99)/float64(max(last[0].search.P99, 1)), "p99-gentle/idle")
	b.ReportMetric(float64(last[1].search.P99)/float64(max(last[0].search.P99, 1)), "p99-unthrottled/idle")
	b.ReportMetric(last[2].docsSec/max(last[1].docsSec, 1), "docs/s-gentle/unthrottled")
}

// bulkEvents loads the final state of events into index directly.
func bulkEvents(b *testing.B, env *itest.Env, index string, events []chatgen.Event) {
	b.Helper()
	var body bytes.Buffer
	flush := func() {
		if body.Len() == 0 {
			return
		}
		res, err := http.Post(env.OpenSearchURL+"/"+index+"/_bulk?filter_path=errors&refresh=true", "application/x-ndjson", bytes.NewReader(body.Bytes()))
		if err != nil {
			b.Fatalf("load %s: %v", index, err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("load %s: HTTP %d", index, res.StatusCode)
		}
		body.Reset()
	}
	for _, e := range events {
		if e.Op == chatgen.OpDelete {
			fmt.Fprintf(&body, `{"delete":{"_id":%q,"version":%d,"version_type":"external"}}`+"\n", e.ID, e.Version)
		} else {
			fmt.Fprintf(&body, `{"index":{"_id":%q,"version":%d,"version_type":"external"}}`+"\n", e.ID, e.Version)
			body.Write(e.Doc)
			body.WriteByte('\n')
		}
		if body.Len() > 4<<20 {
			flush()
		}
	}
	flush()
}

func envFloat(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil && v > 0 {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
