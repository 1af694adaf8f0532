//go:build integration

package itest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/refmodel"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestServicesAnswer(t *testing.T) {
	env := Services(t)
	t.Logf("Kafka %v (%d brokers), OpenSearch %s at %s, env file %q, REQUIRE_REAL_SERVICES=%v",
		env.KafkaBrokers, env.KafkaBrokerCount, env.OpenSearchVersion, env.OpenSearchURL, env.EnvFile, env.RequireRealServices)
	if env.KafkaBrokerCount == 0 || env.OpenSearchVersion == "" {
		t.Fatalf("Services returned no broker count or version: %+v", env)
	}
}

// consumeAll reads n records from the start of topic, in partition order.
func consumeAll(t *testing.T, env *Env, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := Kafka(t, env, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records from %s: %v", len(recs), n, topic, err)
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("fetch %s/%d: %v", fe.Topic, fe.Partition, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	}
	if len(recs) != n {
		t.Fatalf("consumed %d records, want %d", len(recs), n)
	}
	return recs
}

func recordEvent(t *testing.T, r *kgo.Record) chatgen.Event {
	t.Helper()
	var vh []byte
	for _, h := range r.Headers {
		if h.Key == chatgen.VersionHeader {
			vh = h.Value
		}
	}
	e, err := chatgen.ParseRecord(r.Key, r.Value, vh)
	if err != nil {
		t.Fatalf("record %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
	}
	if e.ID != string(r.Key) {
		t.Fatalf("record %s/%d@%d: key %q, id %q", r.Topic, r.Partition, r.Offset, r.Key, e.ID)
	}
	return e
}

// TestProduceRoundTrip produces a stream with tombstones and reads it back.
func TestProduceRoundTrip(t *testing.T) {
	env := Services(t)
	topic := Name(t, "topic")
	CreateTopic(t, env, topic, 3)
	cfg := chatgen.DefaultConfig(42)
	cfg.IDs, cfg.DeleteProb, cfg.TombstoneProb = 200, 0.15, 0.5
	events := chatgen.MustNew(cfg).Stream(1500)
	p := Produce(t, env, topic, events)
	var ends int64
	for _, e := range p.EndOffsets {
		ends += e
	}
	if p.Records != len(events) || ends != int64(len(events)) || len(p.EndOffsets) != 3 {
		t.Fatalf("produced %d records, end offsets %v; want %d over 3 partitions", p.Records, p.EndOffsets, len(events))
	}

	recs := consumeAll(t, env, topic, len(events))
	// Per id, the records must come back in produced order, on one partition.
	wantByID := map[string][]chatgen.Event{}
	for _, e := range events {
		wantByID[e.ID] = append(wantByID[e.ID], e)
	}
	partOf := map[string]int32{}
	tombstones := 0
	for _, r := range recs {
		e := recordEvent(t, r)
		if p, ok := partOf[e.ID]; ok && p != r.Partition {
			t.Fatalf("id %s on partitions %d and %d", e.ID, p, r.Partition)
		}
		partOf[e.ID] = r.Partition
		want := wantByID[e.ID][0]
		wantByID[e.ID] = wantByID[e.ID][1:]
		if e.Tombstone != want.Tombstone || e.Version != want.Version || e.Op != want.Op || !bytes.Equal(e.Doc, want.Doc) {
			t.Fatalf("id %s: got %+v, want %+v", e.ID, e, want)
		}
		if e.Tombstone {
			if r.Value != nil {
				t.Fatalf("tombstone %s has value %q", e.ID, r.Value)
			}
			tombstones++
		}
	}
	if tombstones == 0 {
		t.Error("no tombstone made the round trip")
	}
	t.Logf("%d records, %d tombstones, %d ids over partitions %v", len(recs), tombstones, len(partOf), p.EndOffsets)
}

// bulkApply writes events to index with external versioning, as the worker
// does: an upsert is an index action, a delete either a delete action or (in
// tombstone mode) an index action of the tombstone document. A 409 is
// "already applied or superseded". It returns counts by result.
func bulkApply(t *testing.T, cl *opensearchapi.Client, index string, mode refmodel.DeleteMode, events []chatgen.Event) map[string]int {
	t.Helper()
	counts := map[string]int{}
	tombstone := refmodel.MarkerTombstone(refmodel.DefaultTombstoneField)
	const batch = 500
	for start := 0; start < len(events); start += batch {
		var body bytes.Buffer
		chunk := events[start:min(start+batch, len(events))]
		for _, e := range chunk {
			action, doc := "index", []byte(e.Doc)
			if e.Op == chatgen.OpDelete {
				if mode == refmodel.ModeTombstone {
					doc = tombstone(e.ID, e.Version)
				} else {
					action, doc = "delete", nil
				}
			}
			fmt.Fprintf(&body, `{%q:{"_index":%q,"_id":%q,"version":%d,"version_type":"external"}}`+"\n", action, index, e.ID, e.Version)
			if doc != nil {
				body.Write(doc)
				body.WriteByte('\n')
			}
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		resp, err := cl.Bulk(ctx, opensearchapi.BulkReq{Body: &body})
		cancel()
		if err != nil {
			t.Fatalf("bulk: %v", err)
		}
		if len(resp.Items) != len(chunk) {
			t.Fatalf("bulk answered %d items for %d actions", len(resp.Items), len(chunk))
		}
		for i, item := range resp.Items {
			for _, it := range item {
				switch {
				case it.Status == http.StatusConflict && it.Error != nil && it.Error.Type == "version_conflict_engine_exception":
					counts["stale"]++
				case it.Error == nil && (it.Status < 300 || it.Status == http.StatusNotFound):
					counts[it.Result]++
				default:
					t.Fatalf("bulk item %d (%s v%d): status %d, error %+v", start+i, chunk[i].ID, chunk[i].Version, it.Status, it.Error)
				}
			}
		}
	}
	return counts
}

// TestDumpIndexMatchesModel runs events through real Kafka into a real index
// with external versioning and checks DumpIndex against the reference model
// in both delete modes, after a replay.
func TestDumpIndexMatchesModel(t *testing.T) {
	env := Services(t)
	topic := Name(t, "topic")
	CreateTopic(t, env, topic, 3)
	cfg := chatgen.DefaultConfig(7)
	cfg.IDs, cfg.EditProb, cfg.DeleteProb, cfg.RecreateProb = 1500, 0.3, 0.1, 0.04
	cfg.DuplicateProb, cfg.OutOfOrderProb, cfg.TombstoneProb = 0.04, 0.05, 0.3
	p := Produce(t, env, topic, chatgen.MustNew(cfg).Stream(5000))
	recs := consumeAll(t, env, topic, p.Records)
	events := make([]chatgen.Event, len(recs))
	for i, r := range recs {
		events[i] = recordEvent(t, r)
	}
	cl := OpenSearch(t, env)

	for _, mode := range []refmodel.DeleteMode{refmodel.ModeDelete, refmodel.ModeTombstone} {
		t.Run(string(mode), func(t *testing.T) {
			index := Name(t, "idx")
			CreateIndex(t, env, index, `{"settings":{"number_of_shards":2,"number_of_replicas":0}}`)
			model, err := refmodel.New(mode)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range events {
				if err := model.Apply(e.ID, e.Op, e.Version, e.Doc); err != nil {
					t.Fatal(err)
				}
			}
			first := bulkApply(t, cl, index, mode, events)
			replay := bulkApply(t, cl, index, mode, events) // a second run changes nothing
			if mode == refmodel.ModeTombstone {
				// Tombstone mode converges in any order: apply a shuffled copy with extra duplicates.
				r := rand.New(rand.NewPCG(1, 2))
				shuffled := append([]chatgen.Event(nil), events...)
				for range 500 {
					shuffled = append(shuffled, events[r.IntN(len(events))])
				}
				r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
				bulkApply(t, cl, index, mode, shuffled)
			}
			for res, n := range replay {
				if res != "stale" && res != "not_found" {
					t.Errorf("replay wrote %d items as %q; it should change nothing", n, res)
				}
			}
			got := DumpIndex(t, env, index)
			want := model.Expected()
			t.Logf("%s mode: first run %v, replay %v; index %d docs, model %d docs (%d live)", mode, first, replay, len(got), len(want), model.Live())
			if len(want) < 1000 {
				t.Errorf("only %d expected documents; the dump should span several scroll pages", len(want))
			}
			CompareToModel(t, got, want)

			// A planted difference is found and reported.
			var victim string
			for id, d := range want {
				if !d.Tombstone {
					victim = id
					break
				}
			}
			var out map[string]any
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			path := "/" + url.PathEscape(index) + "/_doc/" + url.PathEscape(victim) + "?version_type=external&version=" + strconv.FormatInt(want[victim].Version+1, 10)
			if err := doJSON(ctx, cl, http.MethodPut, path, map[string]any{"planted": true}, &out); err != nil {
				t.Fatal(err)
			}
			d := Compare(DumpIndex(t, env, index), want)
			if d.Version != 1 || d.Missing+d.Extra+d.Source != 0 || len(d.Shown) != 1 || d.Shown[0].ID != victim {
				t.Errorf("planted difference on %s not reported as one version mismatch:\n%s", victim, d)
			} else if !strings.Contains(d.String(), `"planted":true`) {
				t.Errorf("diff does not show the planted source:\n%s", d)
			}
		})
	}
}
