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
	topic := itest.Name(t, prefix)
	index := itest.Name(t, prefix)
	itest.CreateTopic(t, env, topic, partitions)
	itest.CreateTopic(t, env, topic+".dlq", 1)
	itest.CreateIndex(t, env, index, `{"settings":{"number_of_shards":2,"number_of_replicas":0}}`)
	cfg := chatgen.DefaultConfig(seed)
	cfg.IDs = n / 4
	cfg.TombstoneProb = 0.3
	return env, topic, index, chatgen.MustNew(cfg).Stream(n)
}

// watch runs the monitor every 100ms until stop is closed, then once more.
func watch(t *testing.T, env *itest.Env, s *stream, group, topic, index string) (*monitor, func() *monitor) {
	m := &monitor{checked: map[int32]int64{}, cl: itest.OpenSearch(t, env), adm: kadm.NewClient(itest.Kafka(t, env))}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				m.check(s, group, topic, index)
			}
		}
	}()
	return m, func() *monitor {
		close(stop)
		<-done
		m.check(s, group, topic, index)
		return m
	}
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
	itest.CompareToModel(t, itest.DumpIndex(t, env, index), itest.Model(t, refmodel.ModeTombstone, events))
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
	env, topic, index, events := chaosSetup(t, "crash", 4, n, 11)
	group := itest.Name(t, "g")
	interval := 40 * time.Millisecond
	chunk := max(n/(kills*20), 50)
	s := produceSlowly(t, env, topic, events, chunk, interval)
	_, stopWatch := watch(t, env, s, group, topic, index)
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
	}
	ends := s.wait(t)
	final := start(t, "worker-final", args...)
	waitGroupAt(t, env, group, topic, ends, 3*time.Minute)
	final.term(60 * time.Second)
	m := stopWatch()
	t.Logf("%d kills survived; %d events; monitor checked %d commit advances", kills, n, m.commits)
	finalCheck(t, env, index, events, m)
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
	env, topic, index, events := chaosSetup(t, "rebal", 6, n, 23)
	group := itest.Name(t, "g")
	s := produceSlowly(t, env, topic, events, max(n/(changes*30), 50), 40*time.Millisecond)
	_, stopWatch := watch(t, env, s, group, topic, index)
	args := runArgs(env, topic, group, index, "--delete-mode", "tombstone", "--batch-docs", "300")
	rng := rand.New(rand.NewPCG(3, 3))
	workers := []*proc{}
	next := 0
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
		} else {
			w.term(90 * time.Second)
		}
		spawn()
	}
	ends := s.wait(t)
	waitGroupAt(t, env, group, topic, ends, 3*time.Minute)
	for _, w := range workers {
		w.term(90 * time.Second)
	}
	m := stopWatch()
	t.Logf("%d membership changes; %d events; monitor checked %d commit advances", changes, n, m.commits)
	finalCheck(t, env, index, events, m)
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
