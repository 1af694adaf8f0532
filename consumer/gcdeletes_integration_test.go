//go:build integration

package consumer_test

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/reindexer/reindexer/consumer"
	"github.com/reindexer/reindexer/indexer"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestDeleteModeWeakSpot shows where each delete mode holds (docs/design.md §2): a
// document is created and deleted; once OpenSearch has forgotten the delete
// (index.gc_deletes, here 1s), a second writer replays a range that holds
// the old upsert but not the delete. In delete mode the document comes back
// (the documented weak spot); in tombstone mode the upsert gets a 409 and
// the document stays deleted.
func TestDeleteModeWeakSpot(t *testing.T) {
	env := itest.Services(t)
	for _, mode := range []indexer.DeleteMode{indexer.Delete, indexer.Tombstone} {
		t.Run(mode.String(), func(t *testing.T) {
			topic := itest.Name(t, "gc")
			index := itest.Name(t, "gc")
			itest.CreateTopic(t, env, topic, 1)
			itest.CreateTopic(t, env, topic+".dlq", 1)
			itest.CreateIndex(t, env, index, `{"settings":{"number_of_shards":1,"number_of_replicas":0,"index.gc_deletes":"1s"}}`)
			vals := []string{
				`{"op":"upsert","id":"victim","version":10,"doc":{"body":"hello"}}`,
				`{"op":"delete","id":"victim","version":20}`,
				`{"op":"upsert","id":"probe","version":10,"doc":{"body":"probe"}}`,
				`{"op":"delete","id":"probe","version":20}`,
			}
			cl := itest.Kafka(t, env)
			var recs []*kgo.Record
			for _, v := range vals {
				recs = append(recs, &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte(v)})
			}
			if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			ix := newIndexer(t, env, index, mode)
			runUntilCommitted(t, env, baseConfig(t, env, topic, itest.Name(t, "live"), ix), map[int32]int64{0: 4})

			// Await the end of the delete's memory: in delete mode an older
			// write of the probe document eventually succeeds; in tombstone
			// mode the tombstone is a document and nothing expires, so wait
			// for the time-based expiry of a delete on a scratch id instead.
			scratch := "probe"
			if mode == indexer.Tombstone {
				scratch = "scratch"
				doc(t, env, index, scratch, 10, http.MethodPut)
				doc(t, env, index, scratch, 20, http.MethodDelete)
			}
			deadline := time.Now().Add(2 * time.Minute)
			for doc(t, env, index, scratch, 5, http.MethodPut) != http.StatusCreated {
				if time.Now().After(deadline) {
					t.Fatal("OpenSearch never forgot the delete (index.gc_deletes=1s)")
				}
				time.Sleep(200 * time.Millisecond) // poll interval of an awaited condition
			}

			// A second writer replays only the old upsert of the victim.
			cfg := baseConfig(t, env, topic, itest.Name(t, "late"), ix)
			seed := kadm.Offsets{}
			seed.Add(kadm.Offset{Topic: topic, Partition: 0, At: 0, LeaderEpoch: -1})
			if _, err := kadm.NewClient(itest.Kafka(t, env)).CommitOffsets(t.Context(), cfg.Group, seed); err != nil {
				t.Fatal(err)
			}
			sum, err := consumer.Replay(t.Context(), cfg, []consumer.Span{{Partition: 0, Start: 0, End: 1}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			docs := itest.DumpIndex(t, env, index)
			victim, exists := docs["victim"]
			switch mode {
			case indexer.Delete:
				if !exists || victim.Version != 10 || sum.Created != 1 {
					t.Fatalf("delete mode: expected the documented resurrection (victim back at v10), got exists=%v %+v, summary %+v", exists, victim, sum)
				}
				t.Logf("delete mode: the old upsert replayed after gc_deletes resurrected the deleted document (v%d)", victim.Version)
			case indexer.Tombstone:
				if !exists || victim.Version != 20 || !bytes.Contains(victim.Source, []byte(indexer.DefaultTombstoneField)) || sum.Stale != 1 {
					t.Fatalf("tombstone mode: victim should stay a v20 tombstone, got exists=%v %+v, summary %+v", exists, victim, sum)
				}
				t.Logf("tombstone mode: the old upsert got a 409 (stale); the document stays deleted")
			}
		})
	}
}

// doc writes (PUT) or deletes one document with an external version and
// returns the HTTP status.
func doc(t *testing.T, env *itest.Env, index, id string, version int, method string) int {
	t.Helper()
	path := fmt.Sprintf("/%s/_doc/%s?version=%d&version_type=external", index, id, version)
	var body []byte
	if method == http.MethodPut {
		body = []byte(`{"body":"probe write"}`)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := itest.OpenSearch(t, env).Client.Stream(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}
