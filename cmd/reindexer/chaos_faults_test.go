//go:build integration

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/faultproxy"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/reindexer/reindexer/internal/refmodel"
	"github.com/twmb/franz-go/pkg/kadm"
)

// Report order of the scenarios (chaosreport.Result.Order).
const (
	orderBrokerRun = 10 + iota
	orderBrokerReplay
	orderNodeRestart
	orderResurrectDelete
	orderResurrectTombstone
	orderPartitions
	orderPartitionsLatest
	orderConnections
	orderCrashLoop
	orderRebalance
	orderDisk
)

// TestChaosFaults runs the faults that stop a service, change a cluster-wide
// setting or need a broker advertising a proxy, each against the private
// stack (see privateStack), one after the other.
func TestChaosFaults(t *testing.T) {
	st := startPrivateStack(t)
	t.Run("BrokerRestartRun", func(t *testing.T) { brokerRestartRun(t, st) })
	t.Run("BrokerRestartReplay", func(t *testing.T) { brokerRestartReplay(t, st) })
	t.Run("ConnectionsDropped", func(t *testing.T) { connectionsDropped(t, st) })
	t.Run("NodeRestart", func(t *testing.T) { nodeRestart(t, st) })
	t.Run("DiskPressure", func(t *testing.T) { diskPressure(t, st) })
}

// chunkFor spreads n events over about d in chunks produced every 40ms.
func chunkFor(n int, d time.Duration) int {
	return max(n*40/int(d/time.Millisecond), 5)
}

// outage stops svc with sig, keeps it down for down (the fault's length,
// not a synchronisation), checking that the worker p (if any) keeps
// running, and starts it again on its data. It returns how long svc did not
// answer: from the signal until it answered again.
func outage(t *testing.T, st *privateStack, svc string, sig syscall.Signal, down time.Duration, p *proc) time.Duration {
	t.Helper()
	began := time.Now()
	st.stop(t, svc, sig)
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			st.start(t, svc)
		}
	})
	for time.Since(began) < down {
		if p != nil && p.exited() {
			t.Errorf("%s exited while %s was down: %v", p.name, svc, p.err)
			break
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
	st.start(t, svc)
	restarted = true
	return time.Since(began)
}

// downTimes are the outage lengths of one scenario: 5 s in the short form,
// 5-30 s (at random) in the long one.
func downTimes(rng *rand.Rand, n int) []time.Duration {
	if !longChaos() {
		return []time.Duration{5 * time.Second}
	}
	out := []time.Duration{5 * time.Second, 30 * time.Second}
	for len(out) < n {
		out = append(out, time.Duration(5+rng.IntN(26))*time.Second)
	}
	return out
}

// brokerRestartRun stops the broker several times under a running worker
// and a steady producer.
func brokerRestartRun(t *testing.T, st *privateStack) {
	env := st.env
	n, injections, dur := 6000, 1, 20*time.Second
	if longChaos() {
		n, injections, dur = 40000, 4, 4*time.Minute
	}
	rng := rand.New(rand.NewPCG(31, 31))
	fr := newFaultRun(t, orderBrokerRun, "Kafka broker restart during `run`",
		"1 worker, tombstone mode, 4 partitions, steady producer (acks=all, idempotent)",
		"broker stopped (SIGTERM, or SIGKILL for every other outage in the long form), kept down 5-30 s, started again on its data")
	topic, index, events := chaosSetupOn(t, env, "brk", 4, n, 31)
	group := itest.Name(t, "g")
	s := produceSlowly(t, env, topic, events, chunkFor(n, dur), 40*time.Millisecond)
	_, stopWatch := watchStalls(t, env, s, group, topic, index)
	w := start(t, "worker", runArgs(env, topic, group, index, "--delete-mode", "tombstone", "--batch-docs", "300")...)
	var outages []string
	var lastUp time.Time
	for i, down := range downTimes(rng, injections) {
		time.Sleep(time.Duration(2000+rng.IntN(3000)) * time.Millisecond) // a random moment: that is the test
		sig := syscall.SIGTERM
		if longChaos() && i%2 == 1 {
			sig = syscall.SIGKILL
		}
		took := outage(t, st, "kafka", sig, down, w)
		lastUp = time.Now()
		fr.res.Injected++
		resumed := commitResumed(t, env, group, topic, time.Minute)
		outages = append(outages, fmt.Sprintf("%s, %s down, %s unanswered, commits advancing again %s after the broker answered",
			sigName(sig), down, took.Round(100*time.Millisecond), resumed.Round(100*time.Millisecond)))
	}
	ends := s.wait(t)
	produced := time.Now()
	fr.res.Produced = len(events)
	waitGroupAt(t, env, group, topic, ends, 3*time.Minute)
	caughtUp := time.Since(produced)
	if w.exited() {
		t.Errorf("the worker exited during the broker outages: %v", w.err)
	} else {
		w.term(60 * time.Second)
	}
	m, stall := stopWatch()
	checkMonitor(t, m)
	fr.res.LongestStall = stall.Seconds()
	fr.note("outages: %s", strings.Join(outages, "; "))
	fr.note("the worker process kept running through every outage (no restart); its commits reached the end offsets %s after the producer's last record (the broker was last back %s before that); %d commit advances checked, %d ahead of an unapplied record",
		caughtUp.Round(100*time.Millisecond), produced.Sub(lastUp).Round(100*time.Millisecond), m.commits, len(m.violations))
	fr.compare(env, index, itest.Model(t, refmodel.ModeTombstone, events), false)
	fr.deadLettered(env, topic)
	fr.done()
}

// commitResumed waits until the group commits beyond what it had committed
// when the service came back, and returns how long that took (or 0 when
// nothing advanced within timeout, e.g. because the producer had finished
// and everything was committed).
func commitResumed(t *testing.T, env *itest.Env, group, topic string, timeout time.Duration) time.Duration {
	adm := kadm.NewClient(itest.Kafka(t, env))
	began := time.Now()
	var base int64 = -1
	for time.Since(began) < timeout {
		c := committedNow(adm, group, topic)
		switch {
		case len(c) == 0: // coordinator not answering yet
		case base < 0:
			base = sum64(c)
		case sum64(c) > base:
			return time.Since(began)
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
	return 0
}

func sigName(s syscall.Signal) string {
	if s == syscall.SIGKILL {
		return "SIGKILL"
	}
	return "SIGTERM"
}

// checkMonitor fails the test on a commit ahead of an unapplied record.
func checkMonitor(t *testing.T, m *monitor) {
	t.Helper()
	if len(m.violations) > 0 {
		t.Errorf("%d commits ahead of unapplied records, e.g. %v", len(m.violations), m.violations[:min(5, len(m.violations))])
	}
	if m.commits == 0 {
		t.Errorf("the monitor saw no commits")
	}
}

// brokerRestartReplay stops the broker under a bounded replay: it must
// not give up, must not commit past what it wrote, and must finish with
// exit code 0 and the whole range written.
func brokerRestartReplay(t *testing.T, st *privateStack) {
	env := st.env
	n, injections := 20000, 1
	if longChaos() {
		n, injections = 60000, 3
	}
	rng := rand.New(rand.NewPCG(37, 37))
	fr := newFaultRun(t, orderBrokerReplay, "Kafka broker restart during `replay`",
		"bounded replay of 4 partitions from offset 0, tombstone mode, 1 lane, 200-document bulks, 256 KiB fetches",
		"broker stopped (SIGTERM) once the replay has committed progress, kept down 5-30 s, started again")
	topic, index, events := chaosSetupOn(t, env, "brr", 4, n, 37)
	ck := itest.Name(t, "ck")
	itest.CleanupIndex(t, env, ck)
	s := produceSlowly(t, env, topic, events, 2000, time.Millisecond) // the stream records every offset for the monitor
	endOffsets := s.wait(t)
	fr.res.Produced = len(events)
	group := itest.Name(t, "g")
	args := replayArgs(env, topic, group, index, ck, "--from-offsets", "0:0,1:0,2:0,3:0", "--delete-mode", "tombstone",
		"--batch-docs", "200", "--lanes", "1", "--fetch-max-bytes", "262144")
	began := time.Now()
	p, out := startSplit(t, "replay", args...)
	adm := kadm.NewClient(itest.Kafka(t, env))
	total := sum64(endOffsets)
	_, stopWatch := watchStalls(t, env, s, group, topic, index)
	var outages []string
	var at int64
	for _, down := range downTimes(rng, injections) {
		// Wait for progress since the last outage that is not yet the
		// end, then cut the broker.
		for prev, deadline := at, time.Now().Add(2*time.Minute); ; {
			at = sum64(committedNow(adm, group, topic))
			if at > prev || p.exited() || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond) // poll interval
		}
		if p.exited() || at >= total {
			break
		}
		took := outage(t, st, "kafka", syscall.SIGTERM, down, p)
		fr.res.Injected++
		outages = append(outages, fmt.Sprintf("down %s at %d of %d records committed (%s unanswered)", down, at, total, took.Round(100*time.Millisecond)))
		if p.exited() {
			break
		}
	}
	if fr.res.Injected == 0 {
		t.Errorf("the replay finished before the broker could be stopped; make the range larger")
	}
	r := finishReplay(t, p, out, began, 5*time.Minute)
	m, stall := stopWatch()
	checkMonitor(t, m)
	fr.res.LongestStall = stall.Seconds()
	fr.note("outages: %s", strings.Join(outages, "; "))
	fr.note("the monitor checked %d commit advances, %d ahead of an unapplied record", m.commits, len(m.violations))
	fr.note("the replay kept running and exited 0 with a complete summary after %s: %d records read for %d produced (%d read again after the restart from the last commit: at-least-once), %d created, %d updated",
		r.Took.Round(100*time.Millisecond), r.Sum.Records, total, r.Sum.Records-total, r.Sum.Created, r.Sum.Updated)
	if c := committedNow(adm, group, topic); sum64(c) != total {
		t.Errorf("replay group committed %v, want the end offsets %v", c, endOffsets)
	}
	fr.compare(env, index, itest.Model(t, refmodel.ModeTombstone, events), false)
	fr.deadLettered(env, topic)
	fr.done()
}

// committedNow returns the group's committed offsets of topic, or nothing
// while Kafka does not answer.
func committedNow(adm *kadm.Client, group, topic string) map[int32]int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fetched, err := adm.FetchOffsets(ctx, group)
	out := map[int32]int64{}
	if err != nil || fetched.Error() != nil {
		return out
	}
	fetched.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.At > 0 {
			out[o.Partition] = o.At
		}
	})
	return out
}

// expectedWrites replays events in order against per-id versions, as
// OpenSearch's external versioning does (tombstone mode: every event is an
// index action), and returns how many must write and how many must be
// refused with a 409 when each event is applied exactly once.
func expectedWrites(events []chatgen.Event) (writes, conflicts int) {
	cur := map[string]int64{}
	for _, e := range events {
		v, seen := cur[e.ID]
		if seen && e.Version <= v {
			conflicts++
			continue
		}
		cur[e.ID] = e.Version
		writes++
	}
	return writes, conflicts
}

// connectionsDropped puts a TCP proxy in front of the broker and one in
// front of the node; both reset connections and stall reads at random.
func connectionsDropped(t *testing.T, st *privateStack) {
	env := st.env
	n, dur := 8000, 20*time.Second
	if longChaos() {
		n, dur = 50000, 4*time.Minute
	}
	faults := faultproxy.TCPFaults{Reset: 0.005, Stall: 0.02, MaxStall: 3 * time.Second}
	fr := newFaultRun(t, orderConnections, "Connections dropped (TCP proxies before broker and node)",
		"1 worker, tombstone mode, 4 partitions; the worker reaches the broker only through a TCP proxy (the broker advertises the proxy's port on a listener of its own) and the node through another",
		fmt.Sprintf("per chunk forwarded: %.1f %% chance of a connection reset (RST), %.0f %% chance of a stall up to %s; plus every 3-8 s all connections of one proxy reset at once",
			faults.Reset*100, faults.Stall*100, faults.MaxStall))
	kp, err := faultproxy.NewTCP(st.proxyAddr, st.proxiedListener, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer kp.Close()
	op, err := faultproxy.NewTCP("127.0.0.1:0", strings.TrimPrefix(env.OpenSearchURL, "http://"), 6)
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	topic, index, events := chaosSetupOn(t, env, "tcp", 4, n, 41)
	group := itest.Name(t, "g")
	s := produceSlowly(t, env, topic, events, chunkFor(n, dur), 40*time.Millisecond)
	_, stopWatch := watchStalls(t, env, s, group, topic, index)
	maddr := freeAddr(t)
	args := runArgs(env, topic, group, index, "--delete-mode", "tombstone", "--batch-docs", "300", "--metrics-addr", maddr)
	args[indexOf(args, "--brokers")+1] = kp.Addr()
	args[indexOf(args, "--opensearch")+1] = "http://" + op.Addr()
	w := start(t, "worker", args...)
	kp.Set(faults)
	op.Set(faults)
	rng := rand.New(rand.NewPCG(41, 41))
	bulkResets := 0
	for {
		select {
		case <-s.done:
		case <-time.After(time.Duration(3000+rng.IntN(5000)) * time.Millisecond): // random moments: that is the test
			if rng.IntN(2) == 0 {
				bulkResets += kp.ResetAll()
			} else {
				bulkResets += op.ResetAll()
			}
			if w.exited() {
				t.Fatalf("the worker exited: %v", w.err)
			}
			continue
		}
		break
	}
	ends := s.wait(t)
	fr.res.Produced = len(events)
	kst, ost := kp.Stats(), op.Stats()
	kp.Set(faultproxy.TCPFaults{})
	op.Set(faultproxy.TCPFaults{})
	waitGroupAt(t, env, group, topic, ends, 3*time.Minute)
	met, err := scrape(maddr)
	if err != nil {
		t.Errorf("metrics: %v", err)
	}
	if w.exited() {
		t.Errorf("the worker exited: %v", w.err)
	} else {
		w.term(60 * time.Second)
	}
	m, stall := stopWatch()
	checkMonitor(t, m)
	fr.res.LongestStall = stall.Seconds()
	fr.res.Injected = kst.Resets + ost.Resets + kst.Stalls + ost.Stalls
	fr.note("Kafka proxy: %d connections, %d reset, %d stalls (%s held back in all); OpenSearch proxy: %d connections, %d reset, %d stalls (%s held back)",
		kst.Conns, kst.Resets, kst.Stalls, kst.Stalled.Round(time.Second), ost.Conns, ost.Resets, ost.Stalls, ost.Stalled.Round(time.Second))
	wantWrites, wantConflicts := expectedWrites(events)
	written := int(sum(met, "reindexer_writes_total", `result="created"`) + sum(met, "reindexer_writes_total", `result="updated"`) +
		sum(met, "reindexer_writes_total", `result="deleted"`))
	conflicts := int(sum(met, "reindexer_writes_total", `result="stale"`) + sum(met, "reindexer_writes_total", `result="duplicate"`))
	fr.note("results: %d records got %d final results; %d writes changed the index and %d were answered 409, where applying each record exactly once gives %d and %d: %d writes landed but their answer was lost with the connection, so their retry was answered 409 (at-least-once, harmless with external versions); no record was written twice",
		len(events), written+conflicts, written, conflicts, wantWrites, wantConflicts, wantWrites-written)
	fr.note("retries by reason: network %.0f, 5xx/429 %.0f, unusable response %.0f",
		sum(met, "reindexer_retries_total", `reason="network"`), sum(met, "reindexer_retries_total", `reason="5`)+sum(met, "reindexer_retries_total", `reason="429"`),
		sum(met, "reindexer_retries_total", `reason="bad_response"`))
	if met != nil && written > wantWrites {
		t.Errorf("%d writes changed the index, at most %d can: a record was applied twice", written, wantWrites)
	}
	if met != nil && written+conflicts < len(events) {
		t.Errorf("%d results for %d records: some record was never applied", written+conflicts, len(events))
	}
	fr.compare(env, index, itest.Model(t, refmodel.ModeTombstone, events), false)
	fr.deadLettered(env, topic)
	fr.done()
}

func indexOf(args []string, flag string) int {
	for i, a := range args {
		if a == flag {
			return i
		}
	}
	panic("no flag " + flag)
}

// resurrectionEvents are m upserts at version 10, then (after the returned
// moment) deletes of the same ids at version 20.
func resurrectionEvents(m int) (upserts, deletes []chatgen.Event) {
	for i := range m {
		id := fmt.Sprintf("res-%04d", i)
		upserts = append(upserts, chatgen.Event{Op: chatgen.OpUpsert, ID: id, Version: 10,
			Doc: []byte(fmt.Sprintf(`{"room_id":"r-res","body":"deleted before the restart %d"}`, i))})
		deletes = append(deletes, chatgen.Event{Op: chatgen.OpDelete, ID: id, Version: 20})
	}
	return upserts, deletes
}

// nodeRestart restarts the OpenSearch node under a running worker, and
// shows on the side what a restart does to delete tombstones: an older
// upsert replayed after the restart resurrects a deleted document in delete
// mode and stays refused in tombstone mode.
func nodeRestart(t *testing.T, st *privateStack) {
	env := st.env
	n, injections, dur := 6000, 1, 20*time.Second
	if longChaos() {
		n, injections, dur = 40000, 3, 4*time.Minute
	}
	rng := rand.New(rand.NewPCG(43, 43))

	// The resurrection case: 300 documents upserted then deleted, in a
	// delete-mode index (gc_deletes raised to 1h so only the restart can
	// make it forget) and a tombstone-mode one.
	const resIDs = 300
	rtopic := itest.Name(t, "res")
	createTopicDLQ(t, env, rtopic, 1)
	idxDel, idxTomb := itest.Name(t, "resdel"), itest.Name(t, "restomb")
	itest.CreateIndex(t, env, idxDel, `{"settings":{"number_of_shards":1,"number_of_replicas":0,"index.gc_deletes":"1h"}}`)
	itest.CreateIndex(t, env, idxTomb, `{"settings":{"number_of_shards":1,"number_of_replicas":0}}`)
	ck := itest.Name(t, "ck")
	itest.CleanupIndex(t, env, ck)
	ups, dels := resurrectionEvents(resIDs)
	itest.Produce(t, env, rtopic, ups)
	upsertsEnd := nextMilli()
	itest.Produce(t, env, rtopic, dels)
	for _, x := range []struct{ index, mode string }{{idxDel, "delete"}, {idxTomb, "tombstone"}} {
		runReplay(t, "res-"+x.mode, 2*time.Minute, replayArgs(env, rtopic, itest.Name(t, "g"), x.index, ck,
			"--from-offsets", "0:0", "--delete-mode", x.mode)...)
	}
	stale := func(name string) {
		for _, x := range []struct{ index, mode string }{{idxDel, "delete"}, {idxTomb, "tombstone"}} {
			runReplay(t, name+"-"+x.mode, 2*time.Minute, replayArgs(env, rtopic, itest.Name(t, "g"), x.index, ck,
				"--from-offsets", "0:0", "--to", upsertsEnd.UTC().Format(time.RFC3339Nano), "--delete-mode", x.mode)...)
		}
	}
	// Control: before the restart the node remembers the deletes.
	stale("stale-before")
	resurrectedBefore := len(itest.DumpIndex(t, env, idxDel))

	fr := newFaultRun(t, orderNodeRestart, "OpenSearch node restart during `run`",
		"1 worker, tombstone mode, 4 partitions, 2-shard index, steady producer",
		"node stopped (SIGTERM, or SIGKILL for every other restart in the long form), kept down 5-30 s, started again on its data")
	topic, index, events := chaosSetupOn(t, env, "node", 4, n, 43)
	group := itest.Name(t, "g")
	s := produceSlowly(t, env, topic, events, chunkFor(n, dur), 40*time.Millisecond)
	_, stopWatch := watchStalls(t, env, s, group, topic, index)
	maddr := freeAddr(t)
	w := start(t, "worker", runArgs(env, topic, group, index, "--delete-mode", "tombstone", "--batch-docs", "300", "--metrics-addr", maddr)...)
	bw := watchBlocked(maddr)
	var outages []string
	var lastUp time.Time
	for i, down := range downTimes(rng, injections) {
		time.Sleep(time.Duration(2000+rng.IntN(3000)) * time.Millisecond) // a random moment: that is the test
		sig := syscall.SIGTERM
		if longChaos() && i%2 == 1 {
			sig = syscall.SIGKILL
		}
		took := outage(t, st, "opensearch", sig, down, w)
		lastUp = time.Now()
		fr.res.Injected++
		resumed := commitResumed(t, env, group, topic, time.Minute)
		outages = append(outages, fmt.Sprintf("%s, %s down, %s until it answered again (yellow), commits advancing again %s after that",
			sigName(sig), down, took.Round(100*time.Millisecond), resumed.Round(100*time.Millisecond)))
		if i == 0 {
			stale("stale-after")
		}
	}
	ends := s.wait(t)
	produced := time.Now()
	fr.res.Produced = len(events)
	waitGroupAt(t, env, group, topic, ends, 4*time.Minute)
	caughtUp := time.Since(produced)
	met := bw.metrics()
	bw.close()
	log := readLog(w)
	if w.exited() {
		t.Errorf("the worker exited while the node was down: %v", w.err)
	} else {
		w.term(60 * time.Second)
	}
	m, stall := stopWatch()
	checkMonitor(t, m)
	fr.res.LongestStall = stall.Seconds()
	fr.note("restarts: %s", strings.Join(outages, "; "))
	fr.note("the worker kept running and retried: %.0f bulk retries for network errors, %.0f for 5xx/429, %d \"bulk request failed, retrying\" warnings (rate-limited), reindexer_blocked at 1 for %s (it reports cluster blocks; an unreachable node counts as retries); its commits reached the end offsets %s after the producer's last record (the node was last back %s before that)",
		sum(met, "reindexer_retries_total", `reason="network"`), sum(met, "reindexer_retries_total", `reason="5`)+sum(met, "reindexer_retries_total", `reason="429"`),
		strings.Count(log, "bulk request failed, retrying"), bw.blockedFor.Round(100*time.Millisecond), caughtUp.Round(100*time.Millisecond),
		produced.Sub(lastUp).Round(100*time.Millisecond))
	fr.compare(env, index, itest.Model(t, refmodel.ModeTombstone, events), false)
	fr.deadLettered(env, topic)
	fr.done()

	// The resurrection case, filed as two results.
	all := append(append([]chatgen.Event{}, ups...), dels...)
	del := newFaultRun(t, orderResurrectDelete, "OpenSearch node restart, `--delete-mode delete`: older upserts replayed after the restart",
		fmt.Sprintf("%d documents upserted (v10) then deleted (v20) through `replay`; index.gc_deletes raised to 1h so only the restart can forget the deletes; then a second writer replays only the upserts (`replay --to` before the deletes)", resIDs),
		"the node restart of the scenario above")
	del.res.Injected, del.res.Produced = 1, len(all)
	d := del.compare(env, idxDel, itest.Model(t, refmodel.ModeDelete, all), true)
	del.note("before the restart the same replay of the upserts resurrected %d of %d documents (the node remembered the deletes); after it, %d of %d came back: **a loss of deletes, expected in delete mode** (OpenSearch keeps delete tombstones only in memory, for index.gc_deletes, and forgets them on a restart); use `--delete-mode tombstone` where another writer can replay older upserts",
		resurrectedBefore, resIDs, d.Extra, resIDs)
	if resurrectedBefore != 0 {
		t.Errorf("%d documents came back before the restart, while the node still remembered their deletes", resurrectedBefore)
	}
	del.done()
	tomb := newFaultRun(t, orderResurrectTombstone, "OpenSearch node restart, `--delete-mode tombstone`: the same replay",
		"the same events, index and replays as the row above, in tombstone mode", "the node restart of the scenario above")
	tomb.res.Injected, tomb.res.Produced = 1, len(all)
	td := tomb.compare(env, idxTomb, itest.Model(t, refmodel.ModeTombstone, all), false)
	tomb.note("%d of %d documents came back: tombstone documents carry the delete's version through the restart, so the older upserts are refused (409)", td.Extra+td.Version, resIDs)
	tomb.done()
}

// diskPressure makes the node's flood-stage disk watermark trip (absolute
// free-space watermarks larger than the free space), which puts a
// read_only_allow_delete block on every index, holds it, lifts it, and
// checks the worker waited and resumed.
func diskPressure(t *testing.T, st *privateStack) {
	env := st.env
	n, injections, dur, hold := 6000, 1, 30*time.Second, 5*time.Second
	if longChaos() {
		n, injections, dur, hold = 30000, 3, 4*time.Minute, 30*time.Second
	}
	fr := newFaultRun(t, orderDisk, "Disk pressure: flood-stage watermark",
		"1 worker, tombstone mode, 2 partitions, steady producer",
		fmt.Sprintf("`cluster.routing.allocation.disk.watermark.{low,high,flood_stage}` set to `10tb` free space (more than the disk has) with `threshold_enabled: true` and `cluster.info.update.interval: 10s`; held %s after the worker reported the block, then the watermarks reset to their defaults", hold))
	clear := `{"persistent":{"cluster.routing.allocation.disk.threshold_enabled":null,"cluster.routing.allocation.disk.watermark.low":null,"cluster.routing.allocation.disk.watermark.high":null,"cluster.routing.allocation.disk.watermark.flood_stage":null,"cluster.info.update.interval":null}}`
	t.Cleanup(func() { osDo(t, env, http.MethodPut, "/_cluster/settings", clear) })
	osOK(t, env, http.MethodPut, "/_cluster/settings", `{"persistent":{"cluster.routing.allocation.disk.threshold_enabled":true,"cluster.info.update.interval":"10s"}}`)
	topic, index, events := chaosSetupOn(t, env, "disk", 2, n, 47)
	group := itest.Name(t, "g")
	s := produceSlowly(t, env, topic, events, chunkFor(n, dur), 40*time.Millisecond)
	_, stopWatch := watchStalls(t, env, s, group, topic, index)
	maddr := freeAddr(t)
	w := start(t, "worker", runArgs(env, topic, group, index, "--delete-mode", "tombstone", "--batch-docs", "300", "--metrics-addr", maddr)...)
	bw := watchBlocked(maddr)
	var rounds []string
	manual := 0
	for range injections {
		time.Sleep(3 * time.Second) // let writes flow before the disk "fills"
		tripped := time.Now()
		osOK(t, env, http.MethodPut, "/_cluster/settings", `{"persistent":{"cluster.routing.allocation.disk.watermark.low":"10tb","cluster.routing.allocation.disk.watermark.high":"10tb","cluster.routing.allocation.disk.watermark.flood_stage":"10tb"}}`)
		if !pollFor(2*time.Minute, func() bool { return bw.blocked() || w.exited() }) || w.exited() {
			t.Fatalf("the worker did not report reindexer_blocked within 2 minutes of the flood stage (exited: %v)", w.exited())
		}
		blockedAt := time.Now()
		fr.res.Injected++
		atBlock := committedNow(kadm.NewClient(itest.Kafka(t, env)), group, topic)
		time.Sleep(hold) // the fault's length, not a synchronisation
		if after := committedNow(kadm.NewClient(itest.Kafka(t, env)), group, topic); sum64(after) != sum64(atBlock) {
			// Commits of records written before the block are fine; the
			// monitor checks that none runs ahead of the index.
			t.Logf("commits moved from %v to %v while blocked (records written before the block)", atBlock, after)
		}
		lifted := time.Now()
		osOK(t, env, http.MethodPut, "/_cluster/settings", `{"persistent":{"cluster.routing.allocation.disk.watermark.low":null,"cluster.routing.allocation.disk.watermark.high":null,"cluster.routing.allocation.disk.watermark.flood_stage":null}}`)
		// OpenSearch releases read_only_allow_delete itself once usage is
		// below the high watermark, at its next disk check.
		released := pollFor(90*time.Second, func() bool { return !indexBlocked(t, env, index) })
		if !released {
			manual++
			osOK(t, env, http.MethodPut, "/_all/_settings", `{"index.blocks.read_only_allow_delete":null}`)
		}
		releasedAt := time.Now()
		if !pollFor(2*time.Minute, func() bool { return !bw.blocked() }) {
			t.Fatalf("the worker still reports reindexer_blocked 2 minutes after the block was released")
		}
		rounds = append(rounds, fmt.Sprintf("blocked %s after the flood stage was set, held %s, block released by OpenSearch %s after the watermarks were reset%s, worker writing again %s after that",
			blockedAt.Sub(tripped).Round(100*time.Millisecond), lifted.Sub(blockedAt).Round(100*time.Millisecond),
			releasedAt.Sub(lifted).Round(100*time.Millisecond), map[bool]string{true: "", false: " (by hand: not released within 90 s)"}[released],
			time.Since(releasedAt).Round(100*time.Millisecond)))
	}
	ends := s.wait(t)
	fr.res.Produced = len(events)
	waitGroupAt(t, env, group, topic, ends, 3*time.Minute)
	bw.close()
	log := readLog(w)
	if w.exited() {
		t.Errorf("the worker exited while writes were blocked: %v", w.err)
	} else {
		w.term(60 * time.Second)
	}
	m, stall := stopWatch()
	checkMonitor(t, m)
	fr.res.LongestStall = stall.Seconds()
	fr.note("rounds: %s", strings.Join(rounds, "; "))
	fr.note("reindexer_blocked was 1 for %s in all; the worker logged \"OpenSearch refuses writes\" %d times (rate-limited) and \"accepts writes again\" %d times; blocks lifted by hand: %d",
		bw.blockedFor.Round(100*time.Millisecond), strings.Count(log, "OpenSearch refuses writes"), strings.Count(log, "accepts writes again"), manual)
	if !strings.Contains(log, "cluster_block_exception") {
		t.Errorf("the worker never logged a cluster_block_exception")
	}
	fr.compare(env, index, itest.Model(t, refmodel.ModeTombstone, events), false)
	fr.deadLettered(env, topic)
	fr.done()
}

// pollFor polls cond every 200ms until it holds or timeout passes.
func pollFor(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); ; {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Millisecond) // poll interval
	}
}

// indexBlocked reports whether index carries a read_only_allow_delete block.
func indexBlocked(t *testing.T, env *itest.Env, index string) bool {
	status, body := osDo(t, env, http.MethodGet, "/"+index+"/_settings/index.blocks.read_only_allow_delete?flat_settings=true", "")
	return status == http.StatusOK && strings.Contains(string(body), `"index.blocks.read_only_allow_delete":"true"`)
}
