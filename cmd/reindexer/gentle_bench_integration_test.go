//go:build integration

package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
// searches of the cluster it writes (an index that already holds every id
// of the stream, as a restored snapshot does), in phases of equal length with the
// same fixed search load (chat-body match queries built from the words of
// testdata/, a fixed rate from several concurrent clients, open loop),
// after a warm-up of the same searches and with the node's merges settled
// before each phase:
//
//  1. idle: search only;
//  2. search during an unthrottled replay of the bench stream into the
//     searched index;
//  3. search during the same replay into a fresh copy of that index (warmed
//     up by the same searches as phase 1's) with a guard query file and a
//     search latency target (by default 1.5x: the guard's mean search may
//     get 50% slower than with the worker paused);
//
// then idle again on phase 3's index in its final state, and a --max-rate
// check:
// a replay at each cap of REINDEXER_GENTLE_RATE, documents sent over one
// minute after ten seconds of start-up.
//
// Per phase it reports search p50/p99/max and errors, the documents the
// node indexed per second during the phase, the replay's documents per
// second over the whole replay (which may outlast the phase), and the
// node's CPU and young collections, the machine's busy and steal shares
// (steal: CPU the hypervisor gave other guests, which on a shared VM
// slows every search, idle or not) and the p99 of the searches made in
// seconds with under 2% steal. Environment: REINDEXER_BENCH_EVENTS
// (stream size, default 300000; make bench-gentle uses 1000000),
// REINDEXER_GENTLE_QPS (search rate, default 40), REINDEXER_GENTLE_PHASE
// (phase length, default 30s; make bench-gentle uses 60s),
// REINDEXER_GENTLE_FLAGS (phase 3's throttle flags; several sets separated
// by ";"), REINDEXER_GENTLE_PHASES (which to run, default "1,2,3,r"),
// REINDEXER_GENTLE_WAIT=0 (stop each replay when its phase ends instead of
// awaiting it: quick experiments), REINDEXER_GENTLE_TRACE=1 (print the guard's steps and each phase's searches per 5 s with busy and steal), REINDEXER_GENTLE_MAX (how long a replay
// is awaited before it is stopped and reported incomplete, default 20m),
// REINDEXER_GENTLE_RATE (caps for the
// rate check, comma-separated, default 2000).
func BenchmarkGentle(b *testing.B) {
	env := itest.Services(b)
	topic, events := benchTopic(b, env)
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
	// Phase 3's flags; several sets separated by ";" run one after the
	// other (each into a fresh copy of the index).
	variants := [][]string{{"--search-latency-target", "1.5x", "--guard-interval", "250ms"}}
	if v := os.Getenv("REINDEXER_GENTLE_FLAGS"); v != "" {
		variants = nil
		for _, set := range strings.Split(v, ";") {
			variants = append(variants, strings.Fields(set))
		}
	}
	for i := range variants {
		if slices.Contains(variants[i], "--search-latency-target") {
			variants[i] = append(variants[i], "--guard-query", qfile, "--log-level", "info")
		}
	}
	// Every search of the load is timed at the transport as well: with
	// REINDEXER_GENTLE_TRACE=1 each phase prints its latency over time.
	trace := &searchTrace{}
	sampling, stopSampling := context.WithCancel(context.Background())
	defer stopSampling()
	go trace.sampleCPU(sampling)
	cl, err := opensearchapi.NewClient(opensearchapi.Config{Client: opensearch.Config{
		Addresses: []string{env.OpenSearchURL}, DisableRetry: true, Transport: trace}})
	if err != nil {
		b.Fatal(err)
	}
	// Identical targets with cold data the searches hit: the chat sample
	// plus a generated stream of older messages.
	cold := chatgen.DefaultConfig(7)
	cold.IDs = 20000
	coldEvents := chatgen.MustNew(cold).Stream(40000)
	// And the restored snapshot: every id of the bench stream already
	// there (its first document, at version 0), so that the replay updates
	// documents as a replay onto a restored snapshot does, rather than
	// growing the index many-fold; every phase searches an index of about
	// the same size, and a guard's baseline stays meaningful.
	var restored []chatgen.Event
	seen := map[string]bool{}
	for _, e := range events {
		if e.Op == chatgen.OpUpsert && !seen[e.ID] {
			seen[e.ID] = true
			restored = append(restored, chatgen.Event{Op: chatgen.OpUpsert, ID: e.ID, Doc: e.Doc})
		}
	}
	target := func() string {
		index := itest.Name(b, "gentle")
		probetest.Load(b, env, cl, index, docs)
		bulkEvents(b, env, index, coldEvents)
		bulkEvents(b, env, index, restored)
		return index
	}
	idle := target()
	// Every phase 3 replay writes a fresh copy, loaded up front so that
	// no phase searches an index still merging its load.
	fresh := make([]string, len(variants))
	for i := range fresh {
		fresh[i] = target()
	}
	b.Logf("machine: %d CPUs shared by Kafka, OpenSearch, the worker and the search load; OpenSearch %s; %d events; search %.0f q/s for %s per phase; phase 3 flags %q",
		runtime.NumCPU(), env.OpenSearchVersion, benchEvents(), qps, phase, variants)

	type result struct {
		name    string
		search  probe.SideStats
		node    nodeLoad
		docsSec float64 // over the whole replay
		guard   string  // the guard's baseline log line
		inPhase float64 // documents indexed per second during the phase
		machine machineLoad
	}
	var results []result
	search := func(index string) (probe.SideStats, machineLoad) {
		began := time.Now()
		st, err := probeFor(context.Background(), cl, index, queries, qps, phase)
		if err != nil {
			b.Fatal(err)
		}
		end := time.Now()
		trace.print(began, end)
		return st, trace.load(began, end)
	}
	// REINDEXER_GENTLE_PHASES picks phases (e.g. "1,3"); with
	// REINDEXER_GENTLE_WAIT=0 a replay is stopped (SIGTERM) when its phase
	// ends instead of awaited: quick experiments with throttle flags.
	phases := os.Getenv("REINDEXER_GENTLE_PHASES")
	if phases == "" {
		phases = "1,2,3,r"
	}
	wait := os.Getenv("REINDEXER_GENTLE_WAIT") != "0"
	maxReplay := envDuration("REINDEXER_GENTLE_MAX", 20*time.Minute)
	idlePhase := func(name, index string) {
		settle(b, env)
		before := readNodeLoad(b, env, index)
		st, machine := search(index)
		results = append(results, result{name: name, search: st, node: readNodeLoad(b, env, index).since(before), machine: machine})
	}
	// Warm up: the node's JIT and caches see the same searches first (not
	// counted), so that phase 1 is not its cold start.
	settle(b, env)
	_, _ = probeFor(context.Background(), cl, idle, queries, qps, phase/2)
	for i := 0; i < b.N; i++ {
		if strings.Contains(phases, "1") {
			idlePhase("1 idle", idle)
		}
		for k, flags := range append([][]string{nil}, variants...) {
			name := "2 replay, unthrottled"
			if k > 0 {
				name = "3 replay, " + strings.Join(flags, " ")
				name = strings.TrimSuffix(name, " --guard-query "+qfile+" --log-level info")
			}
			if !strings.Contains(phases, name[:1]) {
				continue
			}
			index := idle // phase 1 only reads it
			if k > 0 {
				index = fresh[k-1]
				// The same warm-up as phase 1's index had: phase 3 must
				// not measure a cold index against a warm one.
				settle(b, env)
				warm := time.Now()
				_, _ = probeFor(context.Background(), cl, index, queries, qps, phase/2)
				trace.print(warm, time.Now())
			}
			args := append([]string{"replay", "--brokers", strings.Join(env.KafkaBrokers, ","), "--opensearch", env.OpenSearchURL,
				"--topic", topic, "--group", itest.Name(b, "g"), "--index", index, "--from", "2000-01-01T00:00:00Z",
				"--checkpoint-index", "none", "--json", "--progress", "none", "--log-level", "warn"}, flags...)
			cmd := exec.Command(binPath, args...)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			start := time.Now()
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // an aborted bench leaves no replay behind
			settle(b, env)
			began := readNodeLoad(b, env, index)
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			before := readNodeLoad(b, env, index)
			st, machine := search(index)
			load := readNodeLoad(b, env, index).since(before)
			r := result{name: name, search: st, node: load, inPhase: float64(load.indexed) / load.wall.Seconds(), machine: machine}
			if !wait {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				_ = cmd.Wait()
				r.guard = guardLine(errb.String())
				traceGuard(r.name, errb.String())
				results = append(results, r)
				continue
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case err := <-exited:
				if err != nil {
					b.Fatalf("replay: %v\n%s", err, errb.String())
				}
			case <-time.After(maxReplay):
				// Too slow to wait for: stop it and say so.
				_ = cmd.Process.Signal(syscall.SIGTERM)
				<-exited
				all := readNodeLoad(b, env, index).since(began)
				r.name += fmt.Sprintf(" [stopped after %s, incomplete]", maxReplay)
				r.docsSec = float64(all.indexed) / all.wall.Seconds()
				r.guard = guardLine(errb.String())
				traceGuard(r.name, errb.String())
				results = append(results, r)
				continue
			}
			r.guard = guardLine(errb.String())
			traceGuard(r.name, errb.String())
			wall := time.Since(start)
			var sum struct {
				Records int64 `json:"records"`
			}
			if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
				b.Fatalf("replay summary %s: %v", out.String(), err)
			}
			r.docsSec = float64(sum.Records) / wall.Seconds()
			results = append(results, r)
		}
		if strings.Contains(phases, "1") && strings.Contains(phases, "3") {
			// Idle again, on the index phase 3 wrote, now in its final
			// state (a million events more, their merges settled): the
			// same searches without the replay, right after it.
			idlePhase("4 idle, phase 3's index after its replay", fresh[len(fresh)-1])
		}
		if strings.Contains(phases, "r") {
			for _, r := range strings.Split(cmp.Or(os.Getenv("REINDEXER_GENTLE_RATE"), "2000"), ",") {
				rate, err := strconv.ParseFloat(r, 64)
				if err != nil || rate <= 0 {
					b.Fatalf("REINDEXER_GENTLE_RATE: %q is not a rate", r)
				}
				rateCheck(b, env, topic, itest.Name(b, "gentle-rate"), rate)
			}
		}
	}
	var tb strings.Builder
	fmt.Fprintf(&tb, "\n| phase | search p50 | p99 | max | errors+rejected | docs/s in phase | replay docs/s | node CPU | young GCs (ms) | machine busy / steal | p99 under 2 %% steal (searches) |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		rate := "-"
		if r.docsSec > 0 {
			rate = strconv.FormatFloat(r.docsSec, 'f', 0, 64)
		}
		fmt.Fprintf(&tb, "| %s | %s | %s | %s | %d | %.0f | %s | %.0f %% | %d (%d) | %.0f %% / %.1f %% | %s (%d) |\n", r.name, probe.Round(r.search.P50), probe.Round(r.search.P99),
			probe.Round(r.search.Max), r.search.Errors+r.search.Rejected+r.search.Unsent, r.inPhase, rate,
			100*r.node.cpu.Seconds()/r.node.wall.Seconds(), r.node.youngGCs, r.node.youngGCTime.Milliseconds(), 100*r.machine.busy, 100*r.machine.steal, probe.Round(r.machine.quietP99), r.machine.quiet)
	}
	for _, r := range results {
		if r.guard != "" {
			fmt.Fprintf(&tb, "\n%s: %s", r.name, r.guard)
		}
	}
	fmt.Println(tb.String()) // b.Log would truncate a benchmark's log to ten lines
	// Ratios against phase 1, one per phase 3 variant (first variant's
	// names only, to keep them short).
	var idleP99, idleQuiet, unthrottled float64
	for _, r := range results {
		switch {
		case strings.HasPrefix(r.name, "1 "):
			idleP99, idleQuiet = float64(r.search.P99), float64(r.machine.quietP99)
		case strings.HasPrefix(r.name, "2 "):
			unthrottled = r.docsSec
			if idleP99 > 0 {
				b.ReportMetric(float64(r.search.P99)/idleP99, "p99-unthrottled/idle")
			}
		case strings.HasPrefix(r.name, "3 ") && idleP99 > 0:
			b.ReportMetric(float64(r.search.P99)/idleP99, "p99-gentle/idle")
			if idleQuiet > 0 && r.machine.quietP99 > 0 {
				b.ReportMetric(float64(r.machine.quietP99)/idleQuiet, "p99-gentle/idle-under-2%-steal")
			}
			if unthrottled > 0 && r.docsSec > 0 {
				b.ReportMetric(r.docsSec/unthrottled, "docs/s-gentle/unthrottled")
			}
		}
	}
}

// rateCheck replays the bench stream with --max-rate rate and counts the documents its bulks carried
// (reindexer_bulk_items_sum) over one minute after ten seconds of start-up,
// then stops it (SIGTERM).
func rateCheck(b *testing.B, env *itest.Env, topic, index string, rate float64) {
	b.Helper()
	itest.CleanupIndex(b, env, index)
	window := envDuration("REINDEXER_GENTLE_RATE_WINDOW", time.Minute)
	addr := freeAddr(b)
	cmd := exec.Command(binPath, "replay", "--brokers", strings.Join(env.KafkaBrokers, ","), "--opensearch", env.OpenSearchURL,
		"--topic", topic, "--group", itest.Name(b, "g"), "--index", index, "--from", "2000-01-01T00:00:00Z",
		"--checkpoint-index", "none", "--json", "--progress", "none", "--log-level", "warn",
		"--max-rate", strconv.FormatFloat(rate, 'f', -1, 64), "--metrics-addr", addr)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // an aborted bench leaves no replay behind
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Process.Kill()
	sent := func() float64 {
		m, err := scrape(addr)
		if err != nil {
			b.Fatalf("%v\n%s", err, errb.String())
		}
		return m["reindexer_bulk_items_sum"]
	}
	time.Sleep(10 * time.Second) // start-up: planning, the first fetches
	t0, n0 := time.Now(), sent()
	time.Sleep(window)
	n1, t1 := sent(), time.Now()
	got := (n1 - n0) / t1.Sub(t0).Seconds()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	// Stopped before its end offsets, the replay says so and exits 1.
	if err := cmd.Wait(); cmd.ProcessState.ExitCode() != 1 || !strings.Contains(errb.String(), "replay interrupted") {
		b.Fatalf("replay stopped by SIGTERM: %v, want exit 1 and \"replay interrupted\"\n%s", err, errb.String())
	}
	fmt.Printf("\n--max-rate %.0f: %.0f documents in %s = %.1f documents/s, %.2f x the cap\n", rate, n1-n0, t1.Sub(t0).Round(time.Millisecond), got, got/rate)
	b.ReportMetric(got/rate, fmt.Sprintf("achieved/max-rate-%.0f", rate))
}

// traceGuard prints the guard's steps from a replay's log when
// REINDEXER_GENTLE_TRACE=1 (how the rate moved during a phase 3 replay).
func traceGuard(name, log string) {
	if os.Getenv("REINDEXER_GENTLE_TRACE") != "1" {
		return
	}
	fmt.Printf("\n%s: the guard's steps\n", name)
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "msg=\"guard ") {
			fmt.Println(l)
		}
	}
}

// searchTrace times every search the load sends (at the transport: from
// the request to the answer's headers) and samples the machine's CPU; with
// REINDEXER_GENTLE_TRACE=1 it prints both per 5 s of a phase: where in a
// phase the slow searches were, and whether the hypervisor was taking the
// CPUs away then (steal).
type searchTrace struct {
	mu  sync.Mutex
	at  []time.Time
	lat []time.Duration
	cpu []cpuSample // every second (sampleCPU)
}

// machineLoad is what the machine did during a phase: the shares of all
// its CPUs that were busy (any process) and stolen by the hypervisor for
// other guests, and the p99 of the phase's searches made in seconds with
// under 2% steal, with how many those were.
type machineLoad struct {
	busy, steal float64
	quietP99    time.Duration
	quiet       int
}

// load returns the machine's load over [from, to).
func (t *searchTrace) load(from, to time.Time) machineLoad {
	t.mu.Lock()
	defer t.mu.Unlock()
	var l machineLoad
	l.busy, l.steal = t.cpuBetween(from, to)
	l.quietP99, l.quiet = t.quietP99(from, to, 0.02)
	return l
}

// cpuSample is the machine's CPU counters (/proc/stat, in ticks) at a
// moment: busy (user, nice, system, irq, softirq), steal (time the
// hypervisor gave another guest) and all.
type cpuSample struct {
	at               time.Time
	busy, steal, all float64
}

// sampleCPU records the machine's CPU counters every second until ctx
// ends (Linux; nothing elsewhere).
func (t *searchTrace) sampleCPU(ctx context.Context) {
	for {
		if data, err := os.ReadFile("/proc/stat"); err == nil {
			f := strings.Fields(strings.SplitN(string(data), "\n", 2)[0])
			v := make([]float64, len(f))
			for i := 1; i < len(f); i++ {
				v[i], _ = strconv.ParseFloat(f[i], 64)
			}
			if len(v) > 8 {
				s := cpuSample{at: time.Now(), busy: v[1] + v[2] + v[3] + v[6] + v[7], steal: v[8]}
				for _, x := range v[1:] {
					s.all += x
				}
				t.mu.Lock()
				t.cpu = append(t.cpu, s)
				t.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// cpuBetween returns the machine's busy and steal shares (of all its
// CPUs) between from and to, from the samples nearest them; t.mu held.
func (t *searchTrace) cpuBetween(from, to time.Time) (busy, steal float64) {
	var a, z *cpuSample
	for i := range t.cpu {
		if a == nil && !t.cpu[i].at.Before(from) {
			a = &t.cpu[i]
		}
		if !t.cpu[i].at.After(to) {
			z = &t.cpu[i]
		}
	}
	if a == nil || z == nil || z.all <= a.all {
		return 0, 0
	}
	return (z.busy - a.busy) / (z.all - a.all), (z.steal - a.steal) / (z.all - a.all)
}

func (t *searchTrace) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	res, err := http.DefaultTransport.RoundTrip(r)
	if strings.HasSuffix(r.URL.Path, "/_search") {
		t.mu.Lock()
		t.at, t.lat = append(t.at, start), append(t.lat, time.Since(start))
		t.mu.Unlock()
	}
	return res, err
}

// quietP99 returns the p99 of the searches sent in [from, to) during
// seconds in which the hypervisor took less than maxSteal of the machine's
// CPUs, and how many searches that is: the same statistic with another
// guest's load on the host left out (applied alike to every phase; a
// diagnostic, not the verdict); t.mu held.
func (t *searchTrace) quietP99(from, to time.Time, maxSteal float64) (time.Duration, int) {
	var lat []time.Duration
	for i, at := range t.at {
		if at.Before(from) || !at.Before(to) {
			continue
		}
		// The sampled second the search started in.
		k, _ := slices.BinarySearchFunc(t.cpu, at, func(s cpuSample, at time.Time) int { return s.at.Compare(at) })
		if k == 0 || k >= len(t.cpu) {
			continue
		}
		a, z := t.cpu[k-1], t.cpu[k]
		if z.all > a.all && (z.steal-a.steal)/(z.all-a.all) < maxSteal {
			lat = append(lat, t.lat[i])
		}
	}
	if len(lat) == 0 {
		return 0, 0
	}
	slices.Sort(lat)
	return lat[min(len(lat)-1, len(lat)*99/100)], len(lat)
}

// print prints the searches sent in [from, to) per 5 s: count, p50, p99,
// max.
func (t *searchTrace) print(from, to time.Time) {
	if os.Getenv("REINDEXER_GENTLE_TRACE") != "1" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	const bucket = 5 * time.Second
	fmt.Printf("\nsearches from %s, per %s: count p50 p99 max, machine busy and steal (of %d CPUs)\n", from.Format("15:04:05"), bucket, runtime.NumCPU())
	for b0 := from; b0.Before(to); b0 = b0.Add(bucket) {
		var lat []time.Duration
		for i, at := range t.at {
			if !at.Before(b0) && at.Before(b0.Add(bucket)) && at.Before(to) {
				lat = append(lat, t.lat[i])
			}
		}
		if len(lat) == 0 {
			continue
		}
		slices.Sort(lat)
		q := func(p float64) time.Duration {
			return lat[min(len(lat)-1, int(p*float64(len(lat))))].Round(100 * time.Microsecond)
		}
		busy, steal := t.cpuBetween(b0, b0.Add(bucket))
		fmt.Printf("  %s %4d %8s %8s %8s %4.0f%% %4.1f%%\n", b0.Format("15:04:05"), len(lat), q(0.5), q(0.99), lat[len(lat)-1].Round(100*time.Microsecond), 100*busy, 100*steal)
	}
}

// guardLine returns the replay log's "guard baseline measured" line, if
// any (the replay runs with --log-level info when it has a guard).
func guardLine(log string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "guard baseline measured") {
			return l
		}
	}
	return ""
}

// probeFor runs the search load on index at qps for d and returns its
// figures.
func probeFor(ctx context.Context, cl *opensearchapi.Client, index string, queries []probe.Query, qps float64, d time.Duration) (probe.SideStats, error) {
	rep, err := probe.Run(ctx, probe.Config{
		New: probe.Side{Name: "new", Client: cl, Index: index}, Queries: queries,
		Rate: qps, Steps: []float64{1}, StepDuration: d, MaxInFlight: 8,
	})
	if err != nil || len(rep.Steps) != 1 {
		return probe.SideStats{}, fmt.Errorf("search load: %v (%d steps)", err, len(rep.Steps))
	}
	return rep.Steps[0].New, nil
}

// settle waits until the node runs no merge (a previous load or replay
// still merging would disturb the next phase's searches), at most two
// minutes.
func settle(b *testing.B, env *itest.Env) {
	b.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var ns struct {
			Nodes map[string]struct {
				Indices struct {
					Merges struct {
						Current int64 `json:"current"`
					} `json:"merges"`
				} `json:"indices"`
			} `json:"nodes"`
		}
		getJSON(b, env.OpenSearchURL+"/_nodes/_local/stats/indices/merge", &ns)
		busy := false
		for _, n := range ns.Nodes {
			busy = busy || n.Indices.Merges.Current > 0
		}
		if !busy {
			return
		}
		time.Sleep(time.Second)
	}
	b.Log("the node was still merging after two minutes; the next phase starts anyway")
}

// nodeLoad is what the OpenSearch node did over a span: CPU time of its
// process, young-generation collections, and documents indexed into one
// index.
type nodeLoad struct {
	wall, cpu, youngGCTime time.Duration
	youngGCs, indexed      int64
}

func (l nodeLoad) since(before nodeLoad) nodeLoad {
	return nodeLoad{wall: l.wall - before.wall, cpu: l.cpu - before.cpu, youngGCTime: l.youngGCTime - before.youngGCTime,
		youngGCs: l.youngGCs - before.youngGCs, indexed: l.indexed - before.indexed}
}

// readNodeLoad reads the node's counters now (wall is time since an
// arbitrary origin, for differences).
func readNodeLoad(b *testing.B, env *itest.Env, index string) nodeLoad {
	b.Helper()
	var ns struct {
		Nodes map[string]struct {
			Process struct {
				CPU struct {
					TotalMillis int64 `json:"total_in_millis"`
				} `json:"cpu"`
			} `json:"process"`
			JVM struct {
				GC struct {
					Collectors map[string]struct {
						Count  int64 `json:"collection_count"`
						Millis int64 `json:"collection_time_in_millis"`
					} `json:"collectors"`
				} `json:"gc"`
			} `json:"jvm"`
		} `json:"nodes"`
	}
	var is struct {
		All struct {
			Primaries struct {
				Indexing struct {
					Total int64 `json:"index_total"`
				} `json:"indexing"`
			} `json:"primaries"`
		} `json:"_all"`
	}
	getJSON(b, env.OpenSearchURL+"/_nodes/_local/stats/process,jvm", &ns)
	getJSON(b, env.OpenSearchURL+"/"+index+"/_stats/indexing", &is)
	l := nodeLoad{wall: time.Duration(time.Now().UnixNano()), indexed: is.All.Primaries.Indexing.Total}
	for _, n := range ns.Nodes {
		l.cpu = time.Duration(n.Process.CPU.TotalMillis) * time.Millisecond
		y := n.JVM.GC.Collectors["young"]
		l.youngGCs, l.youngGCTime = y.Count, time.Duration(y.Millis)*time.Millisecond
	}
	return l
}

func getJSON(b testing.TB, url string, v any) {
	b.Helper()
	res, err := http.Get(url)
	if err != nil {
		b.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: HTTP %d", url, res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		b.Fatalf("GET %s: %v", url, err)
	}
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
