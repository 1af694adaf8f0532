//go:build integration

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/itest"
)

// End-to-end benchmarks against the real local services (make bench).
// They replay the same generated chat stream with the reindexer binary and
// compare its rate with the node's own direct bulk-load ceiling: the same
// documents, as version-checked bulk index actions, posted straight from
// memory by a plain concurrent loader. Reported metrics:
//
//	docs/s          events replayed per second of wall time
//	ceiling-docs/s  the direct loader's rate on the same node
//	ratio           docs/s divided by ceiling-docs/s (measured just before)
//	cpu-s/Mevents   reindexer CPU seconds (user+sys) per million events
//	peak-rss-MB     reindexer peak resident memory (VmHWM, sampled every 50ms)
//
// REINDEXER_BENCH_EVENTS sets the stream size (default 300000).

var benchData struct {
	once   sync.Once
	topic  string
	events []chatgen.Event
	err    error
}

func benchEvents() int {
	if v, err := strconv.Atoi(os.Getenv("REINDEXER_BENCH_EVENTS")); err == nil && v > 0 {
		return v
	}
	return 300000
}

// benchTopic produces the stream once per process.
func benchTopic(b *testing.B, env *itest.Env) (string, []chatgen.Event) {
	benchData.once.Do(func() {
		cfg := chatgen.DefaultConfig(2026)
		// Held in memory (the direct loader needs it): at most a million;
		// the ten-million form is BenchmarkFigures', which streams.
		n := min(benchEvents(), 1_000_000)
		cfg.IDs = n / 3
		benchData.events = chatgen.MustNew(cfg).Stream(n)
		benchData.topic = fmt.Sprintf("bench-%d-%d", n, time.Now().UnixNano())
		itest.CreateTopic(b, env, benchData.topic, 6)
		itest.Produce(b, env, benchData.topic, benchData.events)
	})
	return benchData.topic, benchData.events
}

const benchIndexBody = `{"settings":{"number_of_shards":2,"number_of_replicas":0}}`

func BenchmarkEndToEnd(b *testing.B) {
	env := itest.Services(b)
	topic, events := benchTopic(b, env)
	directLoad(b, env, events) // warm the node up; not counted
	b.Logf("machine: %d CPUs (shared by Kafka, OpenSearch and the worker), OpenSearch %s", runtime.NumCPU(), env.OpenSearchVersion)
	for _, c := range []struct {
		name  string
		flags []string
	}{
		{"defaults", nil},
		{"defaults-before-issue-20/lanes=4/batch=4MiB/fetch=16MiB/memory-limit=256MiB", []string{"--batch-bytes", "4MiB", "--fetch-max-bytes", "16MiB", "--memory-limit", "256MiB"}},
		{"lanes=1", []string{"--lanes", "1"}},
		{"lanes=2", []string{"--lanes", "2"}},
		{"lanes=4/batch=1MiB", []string{"--lanes", "4", "--batch-bytes", "1MiB"}},
		{"lanes=8", []string{"--lanes", "8"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				// The ceiling is measured right before each replay, on the
				// same node state, so drift (merges, GC) hits both alike.
				b.StopTimer()
				ceiling := directLoad(b, env, events)
				b.StartTimer()
				replayOnce(b, env, topic, len(events), ceiling, c.flags)
			}
		})
	}
}

// replayOnce replays the whole topic into a fresh index with the binary and
// reports rate, CPU and memory.
func replayOnce(b *testing.B, env *itest.Env, topic string, n int, ceiling float64, flags []string) {
	b.StopTimer()
	index := itest.Name(b, "bench")
	itest.CreateIndex(b, env, index, benchIndexBody)
	args := append([]string{"replay", "--brokers", strings.Join(env.KafkaBrokers, ","), "--opensearch", env.OpenSearchURL,
		"--topic", topic, "--group", itest.Name(b, "g"), "--index", index, "--from", "2000-01-01T00:00:00Z",
		"--checkpoint-index", "none", "--json", "--progress", "none", "--log-level", "warn"}, flags...)
	cmd := exec.Command(binPath, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	b.StartTimer()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	peak := make(chan int64)
	go func() { peak <- watchRSS(cmd.Process.Pid) }()
	err := cmd.Wait()
	wall := time.Since(start)
	b.StopTimer()
	rss := <-peak
	if err != nil {
		b.Fatalf("replay: %v\n%s", err, errb.String())
	}
	var sum struct {
		Records int64 `json:"records"`
	}
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil || sum.Records != int64(n) {
		b.Fatalf("replay summary %s (%v), want %d records", out.String(), err, n)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	rate := float64(n) / wall.Seconds()
	b.ReportMetric(rate, "docs/s")
	b.ReportMetric(ceiling, "ceiling-docs/s")
	b.ReportMetric(rate/ceiling, "ratio")
	b.ReportMetric(cpu.Seconds()/(float64(n)/1e6), "cpu-s/Mevents")
	b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MB")
	deleteIndex(env, index)
	b.StartTimer()
}

// directLoad measures the node's ceiling: the same documents, rendered as
// bulk index actions with external versions, posted from memory in 4 MiB
// requests by 4 concurrent loaders into a fresh index.
func directLoad(b *testing.B, env *itest.Env, events []chatgen.Event) float64 {
	b.Helper()
	index := itest.Name(b, "ceiling")
	itest.CreateIndex(b, env, index, benchIndexBody)
	var chunks [][]byte
	var cur bytes.Buffer
	for _, e := range events {
		if e.Op == chatgen.OpDelete {
			fmt.Fprintf(&cur, `{"delete":{"_id":%q,"version":%d,"version_type":"external"}}`+"\n", e.ID, e.Version)
		} else {
			fmt.Fprintf(&cur, `{"index":{"_id":%q,"version":%d,"version_type":"external"}}`+"\n", e.ID, e.Version)
			cur.Write(e.Doc)
			cur.WriteByte('\n')
		}
		if cur.Len() >= 4<<20 {
			chunks = append(chunks, bytes.Clone(cur.Bytes()))
			cur.Reset()
		}
	}
	if cur.Len() > 0 {
		chunks = append(chunks, bytes.Clone(cur.Bytes()))
	}
	work := make(chan []byte)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var loadErr error
	start := time.Now()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for body := range work {
				res, err := http.Post(env.OpenSearchURL+"/"+index+"/_bulk?filter_path=errors", "application/x-ndjson", bytes.NewReader(body))
				if err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						err = fmt.Errorf("HTTP %d", res.StatusCode)
					}
				}
				if err != nil {
					mu.Lock()
					loadErr = err
					mu.Unlock()
				}
			}
		}()
	}
	for _, c := range chunks {
		work <- c
	}
	close(work)
	wg.Wait()
	wall := time.Since(start)
	if loadErr != nil {
		b.Fatalf("direct load: %v", loadErr)
	}
	rate := float64(len(events)) / wall.Seconds()
	b.Logf("direct bulk-load ceiling: %d events in %s = %.0f docs/s", len(events), wall.Round(time.Millisecond), rate)
	deleteIndex(env, index)
	return rate
}

// deleteIndex frees the node's disk and heap between runs.
func deleteIndex(env *itest.Env, index string) {
	req, _ := http.NewRequest(http.MethodDelete, env.OpenSearchURL+"/"+index, nil)
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
	}
}

// watchRSS samples /proc/<pid>/status until the process is gone and returns
// the largest VmHWM (peak resident set) seen, in bytes.
func watchRSS(pid int) int64 {
	var peak int64
	for {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			return peak
		}
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				f := strings.Fields(rest)
				if len(f) > 0 {
					if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil && kb*1024 > peak {
						peak = kb * 1024
					}
				}
			}
		}
		if strings.Contains(string(b), "State:\tZ") {
			return peak
		}
		time.Sleep(50 * time.Millisecond) // sampling interval
	}
}
