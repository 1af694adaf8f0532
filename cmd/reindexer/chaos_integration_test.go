//go:build integration

package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/reindexer/reindexer/internal/refmodel"
	"github.com/twmb/franz-go/pkg/kadm"
)

func newRequest(method, path string, body []byte) (*http.Request, error) {
	req, err := http.NewRequest(method, path, bytes.NewReader(body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, err
}

// chaosSetup creates a topic, a tombstone-mode index and an event stream.
func chaosSetup(t *testing.T, prefix string, partitions int32, n int, seed int64) (*itest.Env, string, string, []chatgen.Event) {
	env := itest.Services(t)
	topic, index, events := chaosSetupOn(t, env, prefix, partitions, n, seed)
	return env, topic, index, events
}

// chaosSetupOn is chaosSetup on the services of env.
func chaosSetupOn(t *testing.T, env *itest.Env, prefix string, partitions int32, n int, seed int64) (string, string, []chatgen.Event) {
	topic := itest.Name(t, prefix)
	index := itest.Name(t, prefix)
	createTopicDLQ(t, env, topic, partitions)
	itest.CreateIndex(t, env, index, `{"settings":{"number_of_shards":2,"number_of_replicas":0}}`)
	cfg := chatgen.DefaultConfig(seed)
	cfg.IDs = n / 4
	cfg.TombstoneProb = 0.3
	return topic, index, chatgen.MustNew(cfg).Stream(n)
}

// watchStalls runs the monitor every 100ms until stop is called, then once
// more, and measures the longest stall: the longest stretch during which the
// group lagged behind what was produced and no commit advanced.
func watchStalls(t *testing.T, env *itest.Env, s *stream, group, topic, index string) (*monitor, func() (*monitor, time.Duration)) {
	m := &monitor{checked: map[int32]int64{}, cl: itest.OpenSearch(t, env), adm: kadm.NewClient(itest.Kafka(t, env))}
	stop := make(chan struct{})
	done := make(chan struct{})
	var longest time.Duration
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		lastAdvance, seen := time.Now(), 0
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				m.check(s, group, topic, index)
				now := time.Now()
				if m.commits != seen || !lagging(s, m) {
					lastAdvance, seen = now, m.commits
					continue
				}
				longest = max(longest, now.Sub(lastAdvance))
			}
		}
	}()
	return m, func() (*monitor, time.Duration) {
		close(stop)
		<-done
		m.check(s, group, topic, index)
		return m, longest
	}
}

// lagging reports whether some partition has records produced beyond what
// the monitor has seen committed.
func lagging(s *stream, m *monitor) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, end := range s.ends {
		if m.checked[p] < end {
			return true
		}
	}
	return false
}

// waitGroupAt polls the group's commits until they reach ends.
func waitGroupAt(t *testing.T, env *itest.Env, group, topic string, ends map[int32]int64, timeout time.Duration) {
	t.Helper()
	adm := kadm.NewClient(itest.Kafka(t, env))
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		fetched, err := adm.FetchOffsets(ctx, group)
		cancel()
		if err == nil && fetched.Error() == nil {
			ok := true
			for p, e := range ends {
				if o, found := fetched.Lookup(topic, p); !found || o.At < e {
					ok = false
				}
			}
			if ok {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s did not reach %v within %s (last %v)", group, ends, timeout, fetched)
		}
		time.Sleep(100 * time.Millisecond) // poll interval of an awaited condition
	}
}

func finalCheck(t *testing.T, env *itest.Env, index string, events []chatgen.Event, m *monitor) {
	t.Helper()
	if len(m.violations) > 0 {
		t.Errorf("%d commits ahead of unapplied records, e.g. %v", len(m.violations), m.violations[:min(5, len(m.violations))])
	}
	if len(m.errors) > 0 {
		t.Logf("monitor: %d transient read errors, e.g. %s", len(m.errors), m.errors[0])
	}
	if m.commits == 0 {
		t.Errorf("the monitor saw no commits")
	}
}

// TestCrashLoop kills the worker with SIGKILL at random moments while
// events keep arriving, restarts it each time, and checks that no offset
// was ever committed ahead of an unapplied record and that the final index
// equals the reference model.
func TestCrashLoop(t *testing.T) {
	kills, n := 12, 16000
	if short() {
		kills, n = 10, 8000
	}
	if longChaos() {
		kills, n = 60, 80000
	}
	fr := newFaultRun(t, orderCrashLoop, "Worker killed with SIGKILL in a loop",
		"1 worker at a time, tombstone mode, 4 partitions, 300-document bulks, steady producer over the whole loop",
		"SIGKILL of the worker 0.3-2 s after it started, then a new worker at once")
	env, topic, index, events := chaosSetup(t, "crash", 4, n, 11)
	group := itest.Name(t, "g")
	interval := 40 * time.Millisecond
	// Spread production over the whole kill loop (about 1.4 s per kill).
	s := produceSlowly(t, env, topic, events, chunkFor(n, time.Duration(kills)*1400*time.Millisecond), interval)
	_, stopWatch := watchStalls(t, env, s, group, topic, index)
	rng := rand.New(rand.NewPCG(7, 7))
	args := runArgs(env, topic, group, index, "--delete-mode", "tombstone", "--batch-docs", "300")
	for i := 0; i < kills; i++ {
		w := start(t, fmt.Sprintf("worker-%d", i), args...)
		// The kill moment is random on purpose: that is the test.
		time.Sleep(time.Duration(300+rng.IntN(1700)) * time.Millisecond)
		if w.exited() {
			t.Fatalf("worker %d exited on its own: %v", i, w.err)
		}
		w.kill()
		fr.res.Injected++
	}
	finished := false
	select {
	case <-s.done:
		finished = true
	default:
	}
	ends := s.wait(t)
	final := start(t, "worker-final", args...)
	waitGroupAt(t, env, group, topic, ends, 3*time.Minute)
	final.term(60 * time.Second)
	m, stall := stopWatch()
	t.Logf("%d kills survived; %d events; monitor checked %d commit advances", kills, n, m.commits)
	finalCheck(t, env, index, events, m)
	fr.res.Produced, fr.res.LongestStall = len(events), stall.Seconds()
	fr.note("%d workers killed; the producer %s; the monitor checked %d commit advances, %d ahead of an unapplied record",
		kills, map[bool]string{true: "had finished before the last kill", false: "was still producing at the last kill"}[finished], m.commits, len(m.violations))
	fr.note("the kills come faster (every 0.3-2 s) than the group's session timeout (6 s): a killed member holds its partitions until its session expires, so many workers die before they are assigned anything; the longest stall measures that, and the final worker catches up")
	fr.compare(env, index, itest.Model(t, refmodel.ModeTombstone, events), false)
	fr.deadLettered(env, topic)
	fr.done()
}

// TestRebalance runs three workers in one group and keeps replacing them
// (graceful SIGTERM, and in the long form also SIGKILL) while events flow;
// each graceful stop must exit 0, no commit may run ahead of an unapplied
// record, and the final index must equal the reference model.
func TestRebalance(t *testing.T) {
	changes, n := 8, 16000
	if short() {
		changes, n = 5, 8000
	}
	if longChaos() {
		changes, n = 40, 80000
	}
	fr := newFaultRun(t, orderRebalance, "Rebalance storm",
		"3 workers in one group, tombstone mode, 6 partitions, steady producer",
		"a random member stopped 0.8-2.3 s after the previous change (SIGTERM; SIGKILL for a third of them in the long form) and a new one started at once")
	env, topic, index, events := chaosSetup(t, "rebal", 6, n, 23)
	group := itest.Name(t, "g")
	s := produceSlowly(t, env, topic, events, chunkFor(n, time.Duration(changes)*2*time.Second), 40*time.Millisecond)
	_, stopWatch := watchStalls(t, env, s, group, topic, index)
	args := runArgs(env, topic, group, index, "--delete-mode", "tombstone", "--batch-docs", "300")
	rng := rand.New(rand.NewPCG(3, 3))
	workers := []*proc{}
	next, killed := 0, 0
	spawn := func() {
		workers = append(workers, start(t, fmt.Sprintf("member-%d", next), args...))
		next++
	}
	for range 3 {
		spawn()
	}
	for i := 0; i < changes; i++ {
		time.Sleep(time.Duration(800+rng.IntN(1500)) * time.Millisecond) // random membership churn
		k := rng.IntN(len(workers))
		w := workers[k]
		workers = append(workers[:k], workers[k+1:]...)
		if longChaos() && rng.IntN(3) == 0 {
			w.kill()
			killed++
		} else {
			w.term(90 * time.Second)
		}
		fr.res.Injected++
		spawn()
	}
	ends := s.wait(t)
	waitGroupAt(t, env, group, topic, ends, 3*time.Minute)
	for _, w := range workers {
		w.term(90 * time.Second)
	}
	m, stall := stopWatch()
	t.Logf("%d membership changes; %d events; monitor checked %d commit advances", changes, n, m.commits)
	finalCheck(t, env, index, events, m)
	fr.res.Produced, fr.res.LongestStall = len(events), stall.Seconds()
	fr.note("%d membership changes (%d by SIGKILL, the rest by SIGTERM, each exiting 0); the monitor checked %d commit advances, %d ahead of an unapplied record",
		changes, killed, m.commits, len(m.violations))
	fr.compare(env, index, itest.Model(t, refmodel.ModeTombstone, events), false)
	fr.deadLettered(env, topic)
	fr.done()
}

// TestMonitorCatchesCommitAhead proves the crash and rebalance tests can
// fail: a group whose offsets are committed with nothing indexed must be
// reported by the monitor.
func TestMonitorCatchesCommitAhead(t *testing.T) {
	env, topic, index, events := chaosSetup(t, "mon", 2, 200, 5)
	s := produceSlowly(t, env, topic, events, 100, time.Millisecond)
	ends := s.wait(t)
	group := itest.Name(t, "g")
	adm := kadm.NewClient(itest.Kafka(t, env))
	offs := kadm.Offsets{}
	for p, e := range ends {
		offs.Add(kadm.Offset{Topic: topic, Partition: p, At: e, LeaderEpoch: -1})
	}
	if _, err := adm.CommitOffsets(t.Context(), group, offs); err != nil {
		t.Fatal(err)
	}
	m := &monitor{checked: map[int32]int64{}, cl: itest.OpenSearch(t, env), adm: adm}
	m.check(s, group, topic, index)
	if len(m.violations) != len(events) {
		t.Fatalf("monitor reported %d violations for %d committed-but-unindexed records (errors %v)", len(m.violations), len(events), m.errors)
	}
}
