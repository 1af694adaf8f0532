//go:build integration

package consumer_test

import (
	"testing"
	"time"

	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/reindexer/reindexer/indexer"
	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/faultproxy"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/reindexer/reindexer/internal/metrics"
	"github.com/reindexer/reindexer/internal/refmodel"
)

// TestOverload puts a fault-injecting proxy in front of the real node: a
// quarter of the bulk items come back 429 rejected_execution_exception or
// 503 unavailable_shards_exception, and one request in ten fails whole.
// Nothing may be lost (the index equals the model) and only failed items
// may be resent (the proxy counts every item the node had already applied
// and sees again).
func TestOverload(t *testing.T) {
	env := itest.Services(t)
	topic := itest.Name(t, "ovl")
	index := itest.Name(t, "ovl")
	itest.CreateTopic(t, env, topic, 3)
	itest.CreateTopic(t, env, topic+".dlq", 1)
	itest.CreateIndex(t, env, index, `{"settings":{"number_of_shards":2,"number_of_replicas":0}}`)
	n := 8000
	if short() {
		n = 3000
	}
	gcfg := chatgen.DefaultConfig(77)
	gcfg.IDs = 2000
	events := chatgen.MustNew(gcfg).Stream(n)
	prod := itest.Produce(t, env, topic, events)

	px, err := faultproxy.New(env.OpenSearchURL, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	counts := map[string]int{}
	for _, e := range events {
		action := "index"
		if e.Op == chatgen.OpDelete {
			action = "delete"
		}
		counts[faultproxy.ItemKey(action, e.ID, e.Version)]++
	}
	for k, c := range counts {
		px.Allow(k, c)
	}
	px.Set(faultproxy.Faults{ItemReject: 0.15, ItemUnavail: 0.10, RequestReject: 0.10})

	client, err := opensearch.NewClient(opensearch.Config{Addresses: []string{px.URL()}, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(nil)
	ix, err := indexer.New(client, indexer.Config{Index: index, Logger: testLogger(t), Metrics: m,
		RetryInitial: 5 * time.Millisecond, RetryMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(t, env, topic, itest.Name(t, "g"), ix)
	cfg.Metrics = m
	cfg.BatchDocs = 500
	sum := runUntilCommitted(t, env, cfg, prod.EndOffsets)

	st := px.Stats()
	t.Logf("proxy: %+v; summary %+v; retries: 429=%v 503=%v rejected_execution=%v unavailable_shards=%v",
		st, sum, testutil.ToFloat64(m.Retries.WithLabelValues("429")), testutil.ToFloat64(m.Retries.WithLabelValues("503")),
		testutil.ToFloat64(m.Retries.WithLabelValues("rejected_execution_exception")),
		testutil.ToFloat64(m.Retries.WithLabelValues("unavailable_shards_exception")))
	if st.ItemsInjected == 0 || st.RequestsFailed == 0 {
		t.Fatalf("no faults were injected: %+v", st)
	}
	if st.ResentAfterDone != 0 {
		t.Errorf("%d items the node had already applied were sent again", st.ResentAfterDone)
	}
	if sum.DeadLettered != 0 {
		t.Errorf("%d records dead-lettered under overload", sum.DeadLettered)
	}
	got := itest.DumpIndex(t, env, index)
	itest.CompareToModel(t, got, itest.Model(t, refmodel.ModeDelete, events))
}
