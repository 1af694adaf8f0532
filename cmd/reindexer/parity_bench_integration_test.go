//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/reindexer/reindexer/internal/osreq"
	"github.com/reindexer/reindexer/parity"
)

// BenchmarkParity measures the binary's parity command on two equal
// indices of REINDEXER_BENCH_PARITY_DOCS documents (default 1 000 000
// generated chat messages, ~480 bytes each, two shards; the second a
// _clone of the first) and on one of them
// against a topic of the same number of events: wall time, CPU time and
// peak RSS (VmHWM, sampled every 50ms) per mode. Run with make
// bench-parity; it is not part of make test.
func BenchmarkParity(b *testing.B) {
	env := itest.Services(b)
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("REINDEXER_BENCH_PARITY_DOCS")); err == nil && v > 0 {
		n = v
	}
	cfg := chatgen.DefaultConfig(1414)
	cfg.IDs = n
	cfg.EditProb, cfg.DeleteProb, cfg.RecreateProb, cfg.DuplicateProb, cfg.OutOfOrderProb = 0, 0, 0, 0, 0
	events := chatgen.MustNew(cfg).Stream(n) // n creates: n documents
	left, right := itest.Name(b, "parity-bench"), itest.Name(b, "parity-bench")
	itest.CreateIndex(b, env, left, `{"settings":{"number_of_shards":2,"number_of_replicas":0,"refresh_interval":"-1"}}`)
	began := time.Now()
	benchLoad(b, env, left, events)
	b.Logf("loaded %d documents into %s in %s", n, left, time.Since(began).Round(time.Second))
	// The right side is a clone (same segments, same ids and versions):
	// loading a second million documents would only make the benchmark
	// slower, the comparison reads both sides in full either way.
	cl := itest.OpenSearch(b, env)
	if _, err := osreq.Do(b.Context(), cl, http.MethodPut, "/"+left+"/_settings", []byte(`{"index.blocks.write":true}`)); err != nil {
		b.Fatal(err)
	}
	itest.CleanupIndex(b, env, right)
	if _, err := osreq.Do(b.Context(), cl, http.MethodPost, "/"+left+"/_clone/"+right+"?wait_for_active_shards=1", []byte(`{"settings":{"index.blocks.write":null}}`)); err != nil {
		b.Fatal(err)
	}
	topic := itest.Name(b, "parity-bench")
	itest.CreateTopic(b, env, topic, 6)
	began = time.Now()
	itest.Produce(b, env, topic, events)
	b.Logf("produced %d events in %s", n, time.Since(began).Round(time.Second))
	brokers := strings.Join(env.KafkaBrokers, ",")
	for _, c := range []struct {
		name string
		args []string
	}{
		{"count", []string{"--against-index", right}},
		{"sample-10000", []string{"--against-index", right, "--mode", "sample", "--sample", "10000"}},
		{"full", []string{"--against-index", right, "--mode", "full"}},
		{"topic-count", []string{"--against-topic", topic, "--brokers", brokers}},
		{"topic-full", []string{"--against-topic", topic, "--brokers", brokers, "--mode", "full"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				args := append([]string{"parity", "--opensearch", env.OpenSearchURL, "--index", left, "--json"}, c.args...)
				cmd := exec.Command(binPath, args...)
				var out, errb bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &errb
				start := time.Now()
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				// VmHWM of the process itself (the rusage maxrss of a child
				// starts at its parent's high-water mark at fork).
				peak := make(chan int64)
				go func() { peak <- watchRSS(cmd.Process.Pid) }()
				err := cmd.Wait()
				wall := time.Since(start)
				rss := <-peak
				if err != nil {
					b.Fatalf("parity %v: %v\n%s\n%s", c.args, err, out.String(), errb.String())
				}
				var res parity.Result
				if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.Verdict != parity.VerdictEqual || res.Left.Count != int64(n) || res.Right.Count != int64(n) {
					b.Fatalf("parity %v: %v %s", c.args, err, out.String())
				}
				ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
				cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
				b.ReportMetric(wall.Seconds(), "wall-s")
				b.ReportMetric(cpu.Seconds(), "cpu-s")
				b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MB")
				b.ReportMetric(float64(res.SpilledRuns), "spilled-runs")
			}
		})
	}
}

// benchLoad indexes events (all creates) with their versions by four
// concurrent bulk loaders, then refreshes.
func benchLoad(b *testing.B, env *itest.Env, index string, events []chatgen.Event) {
	b.Helper()
	cl := itest.OpenSearch(b, env)
	bodies := make(chan []byte, 4)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for body := range bodies {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				data, err := osreq.Do(ctx, cl, http.MethodPost, "/_bulk", body)
				cancel()
				if err == nil && bytes.Contains(data[:min(len(data), 100)], []byte(`"errors":true`)) {
					err = fmt.Errorf("bulk item errors: %s", osreq.Truncate(data, 500))
				}
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}
		}()
	}
	var body []byte
	for _, e := range events {
		body = fmt.Appendf(body, `{"index":{"_index":%q,"_id":%q,"version":%d,"version_type":"external"}}`+"\n", index, e.ID, e.Version)
		body = append(append(body, e.Doc...), '\n')
		if len(body) > 4<<20 {
			bodies <- body
			body = nil
		}
	}
	if len(body) > 0 {
		bodies <- body
	}
	close(bodies)
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	if _, err := osreq.Do(b.Context(), cl, http.MethodPost, "/"+index+"/_refresh", nil); err != nil {
		b.Fatal(err)
	}
}
