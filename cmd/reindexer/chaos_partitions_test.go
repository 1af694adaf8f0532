//go:build integration

package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/reindexer/reindexer/internal/itest"
	"github.com/reindexer/reindexer/internal/refmodel"
	"github.com/twmb/franz-go/pkg/kadm"
)

// TestChaosPartitionsAdded adds partitions to the topic while `run` runs
// and records land in them at once: the worker must pick the new
// partitions up by itself, read them from their first offset (records
// produced before it noticed them included) and skip nothing. It only
// touches its own topic, so it runs on the shared stack.
func TestChaosPartitionsAdded(t *testing.T) {
	env := itest.Services(t)

	perRound, adds := 3000, 1
	if longChaos() {
		perRound, adds = 10000, 3
	}
	fr := newFaultRun(t, orderPartitions, "Partitions added while `run` runs",
		"1 worker (default flags), tombstone mode, topic created with 2 partitions, events keyed by document id",
		"2 partitions added (kadm CreatePartitions), then records produced at once with a fresh producer, some into the new partitions")
	topic, index, events := chaosSetupOn(t, env, "parts", 2, perRound*(adds+1), 53)
	group := itest.Name(t, "g")
	adm := kadm.NewClient(itest.Kafka(t, env))
	w := start(t, "worker", runArgs(env, topic, group, index, "--delete-mode", "tombstone", "--batch-docs", "300")...)
	ends := itest.Produce(t, env, topic, events[:perRound]).EndOffsets
	waitGroupAt(t, env, group, topic, ends, 2*time.Minute)
	partitions := int32(2)
	var rounds []string
	for i := 1; i <= adds; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := adm.CreatePartitions(ctx, 2, topic)
		cancel()
		if err != nil {
			t.Fatalf("add partitions: %v", err)
		}
		added := time.Now()
		newParts := []int32{partitions, partitions + 1}
		partitions += 2
		fr.res.Injected++
		batch := events[i*perRound : (i+1)*perRound]
		got := itest.Produce(t, env, topic, batch).EndOffsets
		for p, e := range got {
			ends[p] = max(ends[p], e)
		}
		for _, p := range newParts {
			if ends[p] == 0 {
				t.Fatalf("no record landed in new partition %d (ends %v)", p, got)
			}
		}
		// How long until the worker committed everything in the new
		// partitions (which it can only do having read them from 0).
		first := map[int32]time.Duration{}
		var all time.Duration
		for deadline := added.Add(6 * time.Minute); ; {
			c := committedNow(adm, group, topic)
			done := true
			for _, p := range newParts {
				if _, ok := first[p]; !ok && c[p] > 0 {
					first[p] = time.Since(added)
				}
				if c[p] < ends[p] {
					done = false
				}
			}
			if done {
				all = time.Since(added)
				break
			}
			if w.exited() || time.Now().After(deadline) {
				t.Fatalf("the new partitions %v were not consumed within 6 minutes (commits %v, ends %v, worker exited %v)", newParts, c, ends, w.exited())
			}
			time.Sleep(200 * time.Millisecond) // poll interval
		}
		var firsts []string
		for _, p := range newParts {
			firsts = append(firsts, fmt.Sprintf("partition %d (%d records) first committed after %s", p, ends[p], first[p].Round(100*time.Millisecond)))
		}
		rounds = append(rounds, fmt.Sprintf("round %d: %s; all of them committed %s after the partitions were added",
			i, strings.Join(firsts, ", "), all.Round(100*time.Millisecond)))
		fr.res.LongestStall = max(fr.res.LongestStall, all.Seconds())
	}
	waitGroupAt(t, env, group, topic, ends, 2*time.Minute)
	w.term(60 * time.Second)
	fr.res.Produced = len(events)
	for _, r := range rounds {
		fr.note("%s", r)
	}
	fr.note("longest stall here is the time from adding the partitions until every record in them was committed: records in a partition the worker does not know of yet wait that long")
	fr.note("the worker refreshes the topic's metadata every 30 s (consumer.Config.MetadataMaxAge); with franz-go's default of 5 minutes the same scenario waited 4m58.8s for the new partitions (measured before the default was lowered)")
	fr.note("new partitions are read from offset 0, whatever `--start` says (it applies to the partitions the topic had when the worker started; see the next row)")
	fr.compare(env, index, itest.Model(t, refmodel.ModeTombstone, events), false)
	fr.deadLettered(env, topic)
	fr.done()
	// Short enough for make test too: it guards against skipping the
	// records of partitions added under --start latest.
	t.Run("StartLatest", func(t *testing.T) { partitionsStartLatest(t, env) })
}

// partitionsStartLatest is the same fault under `run --start latest`:
// --start seeds the partitions the topic has when the worker starts, and a
// partition added later has no commit, so it is read from its beginning:
// the records produced into it before the worker noticed it are not
// skipped.
func partitionsStartLatest(t *testing.T, env *itest.Env) {
	const perRound = 3000
	fr := newFaultRun(t, orderPartitionsLatest, "Partitions added while `run --start latest` runs",
		"as above, but the worker runs with `--start latest`",
		"2 partitions added, records produced into them at once, then more records once the worker owns them")
	topic, index, events := chaosSetupOn(t, env, "plat", 2, 3*perRound, 59)
	group := itest.Name(t, "g")
	w := start(t, "worker", runArgs(env, topic, group, index, "--delete-mode", "tombstone", "--start", "latest")...)
	owns := func(n int) bool {
		return strings.Contains(readLog(w), fmt.Sprintf("owned=%d", n))
	}
	if !pollFor(time.Minute, func() bool { return owns(2) }) {
		t.Fatalf("the worker did not take its 2 partitions within a minute")
	}
	ends := itest.Produce(t, env, topic, events[:perRound]).EndOffsets
	waitGroupAt(t, env, group, topic, ends, 2*time.Minute)
	adm := kadm.NewClient(itest.Kafka(t, env))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	_, err := adm.CreatePartitions(ctx, 2, topic)
	cancel()
	if err != nil {
		t.Fatalf("add partitions: %v", err)
	}
	added := time.Now()
	fr.res.Injected++
	early := itest.Produce(t, env, topic, events[perRound:2*perRound]).EndOffsets
	if !pollFor(2*time.Minute, func() bool { return owns(4) }) {
		t.Fatalf("the worker did not take the new partitions within 2 minutes")
	}
	noticed := time.Since(added)
	late := itest.Produce(t, env, topic, events[2*perRound:]).EndOffsets
	for p, e := range early {
		ends[p] = max(ends[p], e)
	}
	for p, e := range late {
		ends[p] = max(ends[p], e)
	}
	waitGroupAt(t, env, group, topic, ends, 2*time.Minute)
	w.term(60 * time.Second)
	fr.res.Produced = len(events)
	early2 := early[2] + early[3]
	fr.note("the worker took the new partitions %s after they were added and read them from offset 0 (%d records were produced into them before that): `--start latest` seeds the partitions the topic had at start; partitions added later begin at their start",
		noticed.Round(100*time.Millisecond), early2)
	fr.compare(env, index, itest.Model(t, refmodel.ModeTombstone, events), false)
	fr.deadLettered(env, topic)
	fr.done()
}
