//go:build integration

package consumer_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/reindexer/reindexer/indexer"
	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/reindexer/reindexer/internal/refmodel"
)

// TestConvergence is the property test of docs/design.md §2: for many seeds, a
// stream over a few thousand ids with random versions, duplicates,
// out-of-order versions, deletes, re-creates and Kafka tombstones, spread
// over several partitions, is drained by the pipeline with random batching
// settings; the whole index then equals the independent reference model,
// in both delete modes. Replaying everything again (a new group) changes
// nothing.
func TestConvergence(t *testing.T) {
	env := itest.Services(t)
	seeds := 10
	events := 8000
	if short() {
		seeds, events = 2, 3000
	}
	for _, mode := range []indexer.DeleteMode{indexer.Delete, indexer.Tombstone} {
		for seed := 1; seed <= seeds; seed++ {
			t.Run(fmt.Sprintf("%s/seed=%d", mode, seed), func(t *testing.T) {
				convergeOnce(t, env, mode, int64(seed), events)
			})
		}
	}
}

func convergeOnce(t *testing.T, env *itest.Env, mode indexer.DeleteMode, seed int64, n int) {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(mode)))
	gcfg := chatgen.DefaultConfig(seed*7919 + int64(mode))
	gcfg.IDs = 500 + rng.IntN(2500)
	gcfg.DeleteProb = 0.05 + rng.Float64()*0.15
	gcfg.RecreateProb = 0.02 + rng.Float64()*0.08
	gcfg.DuplicateProb = 0.02 + rng.Float64()*0.1
	gcfg.OutOfOrderProb = 0.02 + rng.Float64()*0.1
	gcfg.TombstoneProb = rng.Float64() * 0.5
	events := chatgen.MustNew(gcfg).Stream(n)

	partitions := int32(1 + rng.IntN(6))
	topic := itest.Name(t, "conv")
	index := itest.Name(t, "conv")
	itest.CreateTopic(t, env, topic, partitions)
	itest.CreateTopic(t, env, topic+".dlq", 1)
	itest.CreateIndex(t, env, index, fmt.Sprintf(`{"settings":{"number_of_shards":%d,"number_of_replicas":0}}`, 1+rng.IntN(3)))
	prod := itest.Produce(t, env, topic, events)

	ix := newIndexer(t, env, index, mode)
	cfg := baseConfig(t, env, topic, itest.Name(t, "g"), ix)
	cfg.Lanes = 1 + rng.IntN(4)
	cfg.BatchDocs = 20 + rng.IntN(2000)
	cfg.BatchBytes = 16<<10 + rng.IntN(2<<20)
	t.Logf("seed %d: %d events over %d ids, %d partitions, lanes %d, batch %d docs/%d bytes",
		seed, n, gcfg.IDs, partitions, cfg.Lanes, cfg.BatchDocs, cfg.BatchBytes)

	sum := runUntilCommitted(t, env, cfg, prod.EndOffsets)
	if sum.DeadLettered != 0 {
		t.Fatalf("%d records dead-lettered", sum.DeadLettered)
	}
	rmode := refmodel.ModeDelete
	if mode == indexer.Tombstone {
		rmode = refmodel.ModeTombstone
	}
	want := itest.Model(t, rmode, events)
	got := itest.DumpIndex(t, env, index)
	if !itest.CompareToModel(t, got, want) {
		t.FailNow()
	}

	// Replay everything again: nothing may change.
	cfg2 := cfg
	cfg2.Group = itest.Name(t, "again")
	sum2 := runUntilCommitted(t, env, cfg2, prod.EndOffsets)
	if sum2.Created+sum2.Updated+sum2.Deleted != 0 {
		t.Fatalf("replaying again changed the index: %+v", sum2)
	}
	again := itest.DumpIndex(t, env, index)
	if !maps.EqualFunc(got, again, func(a, b itest.DocState) bool { return a.Version == b.Version && itest.SameJSON(a.Source, b.Source) }) {
		t.Fatalf("replaying again changed documents")
	}
	t.Logf("converged: %d documents (%d live in the model); first pass %+v", len(got), len(want), sum)
}
