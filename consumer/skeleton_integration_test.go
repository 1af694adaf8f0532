//go:build integration

package consumer_test

import (
	"maps"
	"testing"

	"github.com/reindexer/reindexer/indexer"
	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/reindexer/reindexer/internal/refmodel"
)

// TestWalkingSkeleton produces 10 000 chat events into a real multi-partition
// topic, indexes them through a consumer group with version-checked bulks,
// and compares every document (_id, _version, _source) with the reference
// model. A second pass over the same records, with a new group, must change
// nothing: every item is a 409 (stale or duplicate).
func TestWalkingSkeleton(t *testing.T) {
	env := itest.Services(t)
	topic := itest.Name(t, "skel")
	index := itest.Name(t, "skel")
	itest.CreateTopic(t, env, topic, 4)
	itest.CreateTopic(t, env, topic+".dlq", 1)
	itest.CreateIndex(t, env, index, `{"settings":{"number_of_shards":2,"number_of_replicas":0}}`)

	n := 10000
	if short() {
		n = 3000
	}
	cfg := chatgen.DefaultConfig(42)
	cfg.IDs = n / 3
	events := chatgen.MustNew(cfg).Stream(n)
	prod := itest.Produce(t, env, topic, events)

	ix := newIndexer(t, env, index, indexer.Delete)
	sum := runUntilCommitted(t, env, baseConfig(t, env, topic, itest.Name(t, "g1"), ix), prod.EndOffsets)
	if sum.Records != int64(n) || sum.DeadLettered != 0 {
		t.Fatalf("first pass read %d records (want %d), dead-lettered %d", sum.Records, n, sum.DeadLettered)
	}
	first := itest.DumpIndex(t, env, index)
	if !itest.CompareToModel(t, first, itest.Model(t, refmodel.ModeDelete, events)) {
		t.FailNow()
	}
	t.Logf("first pass: %d docs; %+v", len(first), sum)

	sum2 := runUntilCommitted(t, env, baseConfig(t, env, topic, itest.Name(t, "g2"), ix), prod.EndOffsets)
	if sum2.Records != int64(n) {
		t.Fatalf("second pass read %d records, want %d", sum2.Records, n)
	}
	if sum2.Created+sum2.Updated+sum2.Deleted != 0 || sum2.Stale+sum2.Duplicate == 0 {
		t.Fatalf("second pass changed the index: %+v", sum2)
	}
	second := itest.DumpIndex(t, env, index)
	if !maps.EqualFunc(first, second, func(a, b itest.DocState) bool { return a.Version == b.Version && string(a.Source) == string(b.Source) }) {
		t.Fatalf("second pass changed documents")
	}
	t.Logf("second pass: %+v", sum2)
}
