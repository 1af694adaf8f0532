//go:build integration

package consumer_test

import (
	"context"
	"testing"
	"time"

	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/reindexer/reindexer/event"
	"github.com/reindexer/reindexer/indexer"
	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/faultproxy"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/reindexer/reindexer/internal/metrics"
	"github.com/reindexer/reindexer/internal/refmodel"
)

// TestGentleBacksOffAndRecovers: with adaptive concurrency on, a node that
// rejects bulk items (429 rejected_execution_exception through the fault
// proxy in front of the real node) makes the concurrency limit fall; once
// the rejections stop it climbs back to the number of lanes; nothing is
// lost, and delete mode still converges (each partition keeps its one
// ordered writer under every throttle setting): the index equals the
// reference model.
func TestGentleBacksOffAndRecovers(t *testing.T) {
	env := itest.Services(t)
	topic, index := itest.Name(t, "gentle"), itest.Name(t, "gentle")
	itest.CreateTopic(t, env, topic, 4)
	itest.CreateTopic(t, env, topic+".dlq", 1)
	itest.CreateIndex(t, env, index, `{"settings":{"number_of_shards":2,"number_of_replicas":0}}`)
	gcfg := chatgen.DefaultConfig(91)
	gcfg.IDs = 1500
	events := chatgen.MustNew(gcfg).Stream(6000)
	prod := itest.Produce(t, env, topic, events)

	px, err := faultproxy.New(env.OpenSearchURL, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	px.Set(faultproxy.Faults{ItemReject: 0.3})
	client, err := opensearch.NewClient(opensearch.Config{Addresses: []string{px.URL()}, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(nil)
	const lanes = 4
	ix, err := indexer.New(client, indexer.Config{Index: index, Logger: testLogger(t), Metrics: m,
		RetryInitial: 5 * time.Millisecond, RetryMax: 100 * time.Millisecond,
		TargetLatency: 2 * time.Second, MaxInFlight: lanes})
	if err != nil {
		t.Fatal(err)
	}
	// Lift the faults once the limit has fallen.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	lifted := make(chan float64, 1)
	go func() {
		for ctx.Err() == nil {
			if l, _ := ix.Throttle(); l < lanes {
				px.Set(faultproxy.Faults{})
				lifted <- l
				return
			}
			time.Sleep(5 * time.Millisecond) // poll interval of an awaited condition
		}
	}()
	cfg := baseConfig(t, env, topic, itest.Name(t, "g"), ix)
	cfg.Metrics, cfg.Lanes, cfg.BatchDocs = m, lanes, 60
	sum := runUntilCommitted(t, env, cfg, prod.EndOffsets)
	var low float64
	select {
	case low = <-lifted:
	default:
		t.Fatalf("the concurrency limit never fell below %d while 30%% of the items were rejected", lanes)
	}
	decreases := testutil.ToFloat64(m.ThrottleDecreases.WithLabelValues("rejected"))
	if decreases == 0 {
		t.Errorf("no decrease counted for rejected items")
	}
	// The limit climbs back to the lanes: fast answers add 1/limit, one
	// step per target latency (2s), so from 1 it takes 7 steps. Keep
	// writing one probe document (left out of the comparison below) until
	// it does.
	var b indexer.Batch
	for deadline := time.Now().Add(40 * time.Second); testutil.ToFloat64(m.ThrottleLimit) < lanes; {
		if time.Now().After(deadline) {
			t.Fatalf("the limit was back at %v of %d lanes 40s after the rejections stopped (it fell to %v)", testutil.ToFloat64(m.ThrottleLimit), lanes, low)
		}
		b.Reset()
		ix.Add(&b, &event.Event{Op: event.Upsert, ID: []byte("probe-doc"), Version: 1, Doc: []byte(`{"body":"x"}`)})
		if err := ix.Write(t.Context(), &b, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // pace of the writes that let the limit climb; the loop awaits the condition
	}
	if sum.DeadLettered != 0 {
		t.Errorf("%d records dead-lettered under rejections", sum.DeadLettered)
	}
	t.Logf("limit fell to %v (%v decreases for rejected items), recovered to %v; %d items rejected by the proxy",
		low, decreases, testutil.ToFloat64(m.ThrottleLimit), px.Stats().ItemsInjected)
	got := itest.DumpIndex(t, env, index)
	delete(got, "probe-doc")
	itest.CompareToModel(t, got, itest.Model(t, refmodel.ModeDelete, events))
}
