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
	fr.compare(env, index, itest.Model(t, refmodel.ModeTombstone, events), false)
	fr.deadLettered(env, topic)
	fr.done()
}
