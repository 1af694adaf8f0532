//go:build integration

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkFigures (make bench; make bench BENCH_EVENTS=10000000 for the
// long form) measures what an operator plans with, on a stream produced
// straight from the generator (never held in memory, so ten million events
// fit):
//
//   - memory over time: the replay's RSS sampled every second next to the
//     records it has read, reported per million events (the table shows
//     whether it stays flat) and as the first and last million's peaks;
//   - a replay of a range the index already holds (every write a 409, the
//     common case right after a snapshot restore): documents per second and
//     CPU seconds per million;
//   - time from start to the first bulk request, and from SIGTERM to exit
//     of a `run` under load;
//   - --bulk-load: the node's CPU seconds per million documents and the
//     replay's documents per second with and without it.
func BenchmarkFigures(b *testing.B) {
	env := itest.Services(b)
	n := benchEvents()
	topic := itest.Name(b, "figures")
	itest.CreateTopic(b, env, topic, 6)
	produceStream(b, env, topic, n, 2027)
	// The 409, --bulk-load and stop figures use at most a million events.
	small, m := topic, n
	if n > 1_000_000 {
		small, m = itest.Name(b, "figures-1m"), 1_000_000
		itest.CreateTopic(b, env, small, 6)
		produceStream(b, env, small, m, 2028)
	}
	b.Logf("machine: 2 vCPUs shared by Kafka, OpenSearch and the worker; OpenSearch %s; %d events (409, bulk-load and stop figures: %d)",
		env.OpenSearchVersion, n, m)
	for i := 0; i < b.N; i++ {
		index := itest.Name(b, "fig")
		itest.CreateIndex(b, env, index, benchIndexBody)
		first := figureReplay(b, env, topic, index, nil, true)
		b.Logf("fresh replay: %.0f docs/s, %.2f CPU s per million events, peak RSS %.0f MB, first bulk %s after start; peak RSS per million events read (MB): %s",
			first.rate, first.cpuPerM, first.peak, first.firstBulk.Round(time.Millisecond), first.rssTable())
		b.ReportMetric(first.rate, "docs/s")
		b.ReportMetric(first.cpuPerM, "cpu-s/Mevents")
		b.ReportMetric(float64(first.firstBulk.Milliseconds()), "ms-to-first-bulk")
		if len(first.perMillion) > 0 {
			b.ReportMetric(first.perMillion[0], "first-M-peak-rss-MB")
			b.ReportMetric(first.perMillion[len(first.perMillion)-1], "last-M-peak-rss-MB")
		}
		b.ReportMetric(first.peak, "peak-rss-MB")
		deleteIndex(env, index)

		index = itest.Name(b, "fig")
		itest.CreateIndex(b, env, index, benchIndexBody)
		figureReplay(b, env, small, index, nil, false)
		again := figureReplay(b, env, small, index, nil, false)
		b.Logf("replay of a range the index holds (409s): %.0f docs/s, %.2f CPU s per million", again.rate, again.cpuPerM)
		b.ReportMetric(again.rate, "409-docs/s")
		b.ReportMetric(again.cpuPerM, "409-cpu-s/Mevents")
		deleteIndex(env, index)

		for _, bl := range []bool{false, true} {
			index := itest.Name(b, "fig")
			itest.CreateIndex(b, env, index, benchIndexBody)
			var flags []string
			if bl {
				flags = []string{"--bulk-load", "--checkpoint-index", itest.Name(b, "ck")}
			}
			os0 := openSearchCPU(b)
			r := figureReplay(b, env, small, index, flags, false)
			osCPU := (openSearchCPU(b) - os0).Seconds() / (float64(m) / 1e6)
			name := map[bool]string{false: "no-bulk-load", true: "bulk-load"}[bl]
			b.Logf("%s: %.0f docs/s, OpenSearch %.1f CPU s per million documents", name, r.rate, osCPU)
			b.ReportMetric(r.rate, name+"-docs/s")
			b.ReportMetric(osCPU, name+"-os-cpu-s/M")
			deleteIndex(env, index)
		}
		stop := sigtermUnderLoad(b, env, small)
		b.Logf("run under load: SIGTERM to exit %s", stop.Round(time.Millisecond))
		b.ReportMetric(float64(stop.Milliseconds()), "ms-sigterm-to-exit")
	}
}

// produceStream produces n generated events to topic without keeping them.
func produceStream(b *testing.B, env *itest.Env, topic string, n int, seed int64) {
	b.Helper()
	cfg := chatgen.DefaultConfig(seed)
	cfg.IDs = max(n/3, 1)
	g := chatgen.MustNew(cfg)
	cl := itest.Kafka(b, env, kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(100000))
	ctx := context.Background()
	errc := make(chan error, 1)
	for i := 0; i < n; i++ {
		cl.Produce(ctx, itest.Record(topic, g.Next()), func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	select {
	case err := <-errc:
		b.Fatalf("produce: %v", err)
	default:
	}
}

type figure struct {
	rate, cpuPerM, peak float64
	firstBulk           time.Duration
	perMillion          []float64 // peak RSS (MB) while reading each million events
}

func (f figure) rssTable() string {
	parts := make([]string, len(f.perMillion))
	for i, v := range f.perMillion {
		parts[i] = fmt.Sprintf("%dM:%.0f", i+1, v)
	}
	return strings.Join(parts, " ")
}

// figureReplay replays the whole topic into index with the binary at the
// default settings (plus flags), sampling its RSS and progress.
func figureReplay(b *testing.B, env *itest.Env, topic, index string, flags []string, sample bool) figure {
	b.Helper()
	addr := freeAddr(b)
	args := append([]string{"replay", "--brokers", strings.Join(env.KafkaBrokers, ","), "--opensearch", env.OpenSearchURL,
		"--topic", topic, "--group", itest.Name(b, "g"), "--index", index, "--from", "2000-01-01T00:00:00Z",
		"--checkpoint-index", "none", "--json", "--progress", "none", "--log-level", "warn", "--metrics-addr", addr}, flags...)
	cmd := exec.Command(binPath, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var f figure
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		lastSample := time.Time{}
		for range tick.C {
			if cmd.ProcessState != nil {
				return
			}
			rss, ok := vmRSS(cmd.Process.Pid)
			if !ok {
				return
			}
			f.peak = max(f.peak, rss)
			if f.firstBulk == 0 && metricValue(addr, "reindexer_bulk_requests_total") > 0 {
				f.firstBulk = time.Since(start)
			}
			if sample && time.Since(lastSample) >= time.Second {
				lastSample = time.Now()
				read := metricValue(addr, "reindexer_records_consumed_total")
				m := int(read / 1e6)
				for len(f.perMillion) <= m {
					f.perMillion = append(f.perMillion, 0)
				}
				f.perMillion[m] = max(f.perMillion[m], rss)
			}
		}
	}()
	err := cmd.Wait()
	wall := time.Since(start)
	<-done
	if err != nil {
		b.Fatalf("replay: %v\n%s", err, errb.String())
	}
	var sum struct {
		Records int64 `json:"records"`
	}
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		b.Fatalf("replay summary %s: %v", out.String(), err)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	f.rate = float64(sum.Records) / wall.Seconds()
	f.cpuPerM = cpu.Seconds() / (float64(sum.Records) / 1e6)
	if len(f.perMillion) > 1 && float64(sum.Records) < float64(len(f.perMillion))*1e6 {
		f.perMillion = f.perMillion[:len(f.perMillion)-1] // the last, partial million (just the summary)
	}
	return f
}

// sigtermUnderLoad starts `run` on topic with a fresh group and index,
// sends SIGTERM while it is writing, and returns how long it took to exit.
func sigtermUnderLoad(b *testing.B, env *itest.Env, topic string) time.Duration {
	b.Helper()
	index := itest.Name(b, "fig")
	itest.CreateIndex(b, env, index, benchIndexBody)
	defer deleteIndex(env, index)
	addr := freeAddr(b)
	cmd := exec.Command(binPath, "run", "--brokers", strings.Join(env.KafkaBrokers, ","), "--opensearch", env.OpenSearchURL,
		"--topic", topic, "--group", itest.Name(b, "g"), "--index", index, "--checkpoint-index", "none",
		"--log-level", "warn", "--metrics-addr", addr)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); metricValue(addr, "reindexer_bulk_requests_total") < 1; {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			b.Fatal("run wrote no bulk within a minute")
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
	start := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		b.Fatalf("run after SIGTERM: %v", err)
	}
	return time.Since(start)
}

// metricValue sums the samples of a metric on a /metrics endpoint (0 when
// unreachable).
func metricValue(addr, name string) float64 {
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	var sum float64
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != ' ' && line[len(name)] != '{') {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// vmRSS returns the process's resident memory in MB.
func vmRSS(pid int) (float64, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil || strings.Contains(string(data), "State:\tZ") {
		return 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			if kb, err := strconv.ParseFloat(strings.Fields(rest)[0], 64); err == nil {
				return kb / 1024, true
			}
		}
	}
	return 0, false
}

// openSearchCPU returns the CPU time (user+sys) the local OpenSearch node
// has used so far, from its pid file.
func openSearchCPU(b *testing.B) time.Duration {
	b.Helper()
	root, err := itest.FindRepoRoot(".")
	if err != nil {
		b.Fatal(err)
	}
	pidData, err := os.ReadFile(filepath.Join(root, ".cache/services/opensearch/opensearch.pid"))
	if err != nil {
		b.Fatalf("OpenSearch pid: %v", err)
	}
	stat, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pidData)) + "/stat")
	if err != nil {
		b.Fatalf("OpenSearch stat: %v", err)
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)        // utime, field 14
	st, _ := strconv.ParseInt(f[12], 10, 64)        // stime, field 15
	return time.Duration(ut+st) * time.Second / 100 // clock ticks (USER_HZ 100)
}
