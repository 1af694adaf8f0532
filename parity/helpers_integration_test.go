//go:build integration

package parity

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/reindexer/reindexer/internal/osreq"
	"github.com/reindexer/reindexer/internal/refmodel"
)

// indexSettings gives test indices two shards, so that every search fans
// out and merges as it does on a real cluster.
const indexSettings = `{"settings":{"number_of_shards":2,"number_of_replicas":0}}`

// chatStream returns n generated chat events with deletes, re-creates,
// duplicates and late events, spread over a few days (for date buckets).
func chatStream(seed int64, n int) []chatgen.Event {
	cfg := chatgen.DefaultConfig(seed)
	cfg.IDs = n
	cfg.DeleteProb = 0.12
	cfg.TombstoneProb = 0.5
	cfg.MaxStepMicros = 200_000_000 // ~100 s between events: a few days in all
	return chatgen.MustNew(cfg).Stream(n)
}

// loadDocs indexes docs with their versions (external versioning), as the
// worker leaves them, and refreshes.
func loadDocs(t testing.TB, cl *opensearchapi.Client, index string, docs map[string]refmodel.Doc) {
	t.Helper()
	ids := slices.Sorted(maps.Keys(docs))
	const batch = 1000
	for start := 0; start < len(ids); start += batch {
		var body bytes.Buffer
		for _, id := range ids[start:min(start+batch, len(ids))] {
			d := docs[id]
			fmt.Fprintf(&body, `{"index":{"_index":%q,"_id":%q,"version":%d,"version_type":"external"}}`+"\n", index, id, d.Version)
			body.Write(d.Source)
			body.WriteByte('\n')
		}
		bulk(t, cl, body.Bytes())
	}
	refresh(t, cl, index)
}

// bulk sends a bulk body and fails on any item error.
func bulk(t testing.TB, cl *opensearchapi.Client, body []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	data, err := osreq.Do(ctx, cl, http.MethodPost, "/_bulk", body)
	if err != nil {
		t.Fatalf("bulk: %v", err)
	}
	var ans struct {
		Errors bool                                    `json:"errors"`
		Items  []map[string]map[string]json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(data, &ans); err != nil {
		t.Fatalf("bulk answer: %v", err)
	}
	if ans.Errors {
		for _, it := range ans.Items {
			for _, r := range it {
				if e, ok := r["error"]; ok {
					t.Fatalf("bulk item: %s", e)
				}
			}
		}
	}
}

func refresh(t testing.TB, cl *opensearchapi.Client, index string) {
	t.Helper()
	if _, err := osreq.Do(t.Context(), cl, http.MethodPost, "/"+url.PathEscape(index)+"/_refresh", nil); err != nil {
		t.Fatalf("refresh %s: %v", index, err)
	}
}

// newIndex creates an empty two-shard index, deleted when the test ends.
func newIndex(t testing.TB, env *itest.Env, prefix string) string {
	t.Helper()
	name := itest.Name(t, prefix)
	itest.CreateIndex(t, env, name, indexSettings)
	return name
}

// indexOf creates an index holding docs.
func indexOf(t testing.TB, env *itest.Env, cl *opensearchapi.Client, docs map[string]refmodel.Doc) string {
	t.Helper()
	name := newIndex(t, env, "parity")
	loadDocs(t, cl, name, docs)
	return name
}

// deleteIDs deletes ids from index (plain deletes) and refreshes.
func deleteIDs(t testing.TB, cl *opensearchapi.Client, index string, ids []string) {
	t.Helper()
	var body bytes.Buffer
	for _, id := range ids {
		fmt.Fprintf(&body, `{"delete":{"_index":%q,"_id":%q}}`+"\n", index, id)
	}
	bulk(t, cl, body.Bytes())
	refresh(t, cl, index)
}

// live returns the ids of docs that are not tombstones.
func live(docs map[string]refmodel.Doc) []string {
	var ids []string
	for id, d := range docs {
		if !d.Tombstone {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// field reads a top-level string field of a document.
func field(t testing.TB, src json.RawMessage, name string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(src, &m); err != nil {
		t.Fatal(err)
	}
	s, _ := m[name].(string)
	return s
}

// cmp runs Compare and fails the test when it could not check.
func cmp(t testing.TB, cfg Config) Result {
	t.Helper()
	res, err := Compare(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Compare(%s vs %s, %s): %v", cfg.Left.Index, cfg.Right.Index, cfg.Mode, err)
	}
	return res
}

// capped returns the first n of sorted ids.
func capped(ids []string, n int) []string {
	ids = slices.Clone(ids)
	sort.Strings(ids)
	if len(ids) > n {
		ids = ids[:n]
	}
	return ids
}
