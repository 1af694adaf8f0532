//go:build integration

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/reindexer/reindexer/internal/refmodel"
	"github.com/twmb/franz-go/pkg/kadm"
)

// freeLoopbackAddr returns a loopback address with a port nothing listens on now.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// probeStatus returns the HTTP status of GET http://addr/path (0 when
// nothing answers).
func probeStatus(addr, path string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// waitStatus polls GET addr/path until it answers want.
func waitStatus(t *testing.T, w *proc, addr, path string, want int, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	tick := time.NewTicker(100 * time.Millisecond) // poll interval of an awaited condition
	defer tick.Stop()
	for {
		got := probeStatus(addr, path)
		if got == want {
			return
		}
		select {
		case <-deadline:
			t.Fatalf("%s %s answered %d for %s, want %d", w.name, path, got, timeout, want)
		case <-w.done:
			t.Fatalf("%s exited (%v) while waiting for %s %d", w.name, w.err, path, want)
		case <-tick.C:
		}
	}
}

// metricSum adds up the values of the series of addr's /metrics whose
// lines start with prefix.
func metricSum(t *testing.T, addr, prefix string) float64 {
	t.Helper()
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	sum := 0.0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix) {
			if f := strings.Fields(line); len(f) >= 2 {
				v, _ := strconv.ParseFloat(f[len(f)-1], 64)
				sum += v
			}
		}
	}
	return sum
}

// switchProxy forwards to OpenSearch, or answers 503 like a load balancer
// without a healthy backend while down is set.
type switchProxy struct {
	*httptest.Server
	down     atomic.Bool
	bulkDown atomic.Bool // refuse only bulk requests
}

func newSwitchProxy(t *testing.T, target string) *switchProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &switchProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() || p.bulkDown.Load() && strings.HasSuffix(r.URL.Path, "/_bulk") {
			http.Error(w, "no healthy upstream", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

// TestProbesKubernetesMeaning runs two workers on a one-partition topic:
// the member without a partition is ready too; while OpenSearch is down
// (records waiting, nothing durable for far longer than --stall-timeout)
// readiness fails but liveness holds, so Kubernetes would not restart the
// pods; when OpenSearch is back both are ready again and exit 0 on SIGTERM.
func TestProbesKubernetesMeaning(t *testing.T) {
	env := itest.Services(t)
	topic, group, index := itest.Name(t, "ops-probe"), itest.Name(t, "ops-probe"), itest.Name(t, "ops-probe")
	createTopicDLQ(t, env, topic, 1)
	itest.CreateIndex(t, env, index, `{"settings":{"number_of_shards":1,"number_of_replicas":0}}`)
	proxy := newSwitchProxy(t, env.OpenSearchURL)
	const stall = 2 * time.Second

	var workers []*proc
	var addrs []string
	for i := range 2 {
		addr := freeLoopbackAddr(t)
		args := runArgs(env, topic, group, index, "--metrics-addr", addr, "--stall-timeout", stall.String(),
			"--delete-mode", "tombstone", "--instance-id", fmt.Sprintf("ops-probe-%d", i))
		for j, a := range args {
			if a == env.OpenSearchURL {
				args[j] = proxy.URL
			}
		}
		workers = append(workers, start(t, fmt.Sprintf("worker-%d", i), args...))
		addrs = append(addrs, addr)
	}
	for i, w := range workers {
		waitStatus(t, w, addrs[i], "/readyz", 200, time.Minute)
		waitStatus(t, w, addrs[i], "/healthz", 200, time.Minute)
	}
	// Both joined; one owns the partition, the other none, and both are ready.
	adm := kadm.NewClient(itest.Kafka(t, env))
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		described, err := adm.DescribeGroups(ctx, group)
		cancel()
		g := described[group]
		if err == nil && g.Err == nil && g.State == "Stable" && len(g.Members) == 2 {
			owners := 0
			for _, m := range g.Members {
				if a, ok := m.Assigned.AsConsumer(); ok {
					for _, tp := range a.Topics {
						owners += len(tp.Partitions)
					}
				}
			}
			if owners == 1 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s not stable with 2 members and 1 owned partition: %+v %v", group, g, err)
		}
		time.Sleep(100 * time.Millisecond) // poll interval of an awaited condition
	}
	for i, w := range workers {
		if got := probeStatus(addrs[i], "/readyz"); got != 200 {
			t.Errorf("%s: /readyz %d with the group stable, want 200 (a member without partitions is ready)", w.name, got)
		}
	}

	// OpenSearch goes away while records keep coming.
	proxy.down.Store(true)
	itest.Produce(t, env, topic, chatgen.MustNew(chatgen.DefaultConfig(5)).Stream(200))
	for i, w := range workers {
		waitStatus(t, w, addrs[i], "/readyz", 503, time.Minute)
	}
	// Watch liveness for five stall timeouts with records waiting: it must hold.
	until := time.Now().Add(5 * stall)
	tick := time.NewTicker(200 * time.Millisecond)
	for time.Now().Before(until) {
		for i, w := range workers {
			if got := probeStatus(addrs[i], "/healthz"); got != 200 {
				t.Fatalf("%s: /healthz %d while OpenSearch is down; a restart cannot fix that, want 200", w.name, got)
			}
		}
		<-tick.C
	}
	tick.Stop()
	// The stall was real: the records were read and their bulks refused.
	consumed, retried := 0.0, 0.0
	for _, a := range addrs {
		consumed += metricSum(t, a, "reindexer_records_consumed_total{")
		retried += metricSum(t, a, "reindexer_retries_total{")
	}
	if consumed < 200 || retried == 0 {
		t.Fatalf("consumed %v records and retried %v bulks while OpenSearch was down: the test did not create a stall", consumed, retried)
	}

	proxy.down.Store(false)
	for i, w := range workers {
		waitStatus(t, w, addrs[i], "/readyz", 200, time.Minute)
	}
	for _, w := range workers {
		w.term(90 * time.Second)
	}
}

// TestReplayProbes: a replay serves the same probes. Its bulks refused and
// then OpenSearch gone entirely, it is not ready but stays live (a restart
// would not help); when OpenSearch is back it finishes and exits 0.
func TestReplayProbes(t *testing.T) {
	env := itest.Services(t)
	topic, group, index := itest.Name(t, "ops-rprobe"), itest.Name(t, "ops-rprobe"), itest.Name(t, "ops-rprobe")
	createTopicDLQ(t, env, topic, 2)
	itest.CreateIndex(t, env, index, `{"settings":{"number_of_shards":1,"number_of_replicas":0}}`)
	ck := itest.Name(t, "ops-rprobe-ck")
	t.Cleanup(func() { itest.CleanupIndex(t, env, ck) })
	events := chatgen.MustNew(chatgen.DefaultConfig(9)).Stream(500)
	itest.Produce(t, env, topic, events)
	proxy := newSwitchProxy(t, env.OpenSearchURL)
	proxy.bulkDown.Store(true)
	const stall = 2 * time.Second
	addr := freeLoopbackAddr(t)
	args := replayArgs(env, topic, group, index, ck, "--from-offsets", "0:0,1:0", "--delete-mode", "tombstone",
		"--metrics-addr", addr, "--stall-timeout", stall.String())
	for j, a := range args {
		if a == env.OpenSearchURL {
			args[j] = proxy.URL
		}
	}
	began := time.Now()
	p, out := startSplit(t, "replay", args...)
	waitStatus(t, p, addr, "/readyz", 200, time.Minute)
	waitStatus(t, p, addr, "/healthz", 200, time.Minute)
	proxy.down.Store(true)
	waitStatus(t, p, addr, "/readyz", 503, time.Minute)
	until := time.Now().Add(5 * stall)
	for time.Now().Before(until) {
		if got := probeStatus(addr, "/healthz"); got != 200 {
			t.Fatalf("replay /healthz %d while OpenSearch is down, want 200", got)
		}
		time.Sleep(200 * time.Millisecond) // sampling interval of an observation window
	}
	if retried := metricSum(t, addr, "reindexer_retries_total{"); retried == 0 {
		t.Fatal("no bulk was retried: the replay was never stalled")
	}
	proxy.down.Store(false)
	proxy.bulkDown.Store(false)
	res := finishReplay(t, p, out, began, 2*time.Minute)
	if res.Sum.Records != int64(len(events)) {
		t.Errorf("replay read %d records, want %d", res.Sum.Records, len(events))
	}
	itest.CompareToModel(t, itest.DumpIndex(t, env, index), itest.Model(t, refmodel.ModeTombstone, events))
}
