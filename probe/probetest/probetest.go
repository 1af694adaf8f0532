// Package probetest builds what the probe and cutover tests search: indices
// holding the final state of the sample chat events
// (testdata/chat-events.jsonl), drifted copies of them, and query files
// made of the words of the messages.
package probetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"

	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/reindexer/reindexer/internal/osreq"
	"github.com/reindexer/reindexer/internal/refmodel"
)

// Mapping is the index body of the chat indices: one shard (so equal
// indices score equally), no replica (a single local node).
const Mapping = `{"settings":{"number_of_shards":1,"number_of_replicas":0},
  "mappings":{"properties":{"body":{"type":"text"},"message_id":{"type":"keyword"},
  "room_id":{"type":"keyword"},"sender_name":{"type":"text"}}}}`

// Doc is one chat message document.
type Doc struct {
	// ID is the document id.
	ID string
	// Source is the document.
	Source json.RawMessage
}

// Docs returns the final state of the sample events (deleted messages
// absent), sorted by id.
func Docs(t testing.TB) []Doc {
	t.Helper()
	want := itest.Model(t, refmodel.ModeDelete, chatgen.Sample())
	out := make([]Doc, 0, len(want))
	for id, d := range want {
		out = append(out, Doc{ID: id, Source: d.Source})
	}
	slices.SortFunc(out, func(a, b Doc) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Load creates index (deleted when the test ends) holding docs, indexed in
// order in one bulk request and refreshed.
func Load(t testing.TB, env *itest.Env, cl *opensearchapi.Client, index string, docs []Doc) {
	t.Helper()
	itest.CreateIndex(t, env, index, Mapping)
	var body bytes.Buffer
	for _, d := range docs {
		fmt.Fprintf(&body, `{"index":{"_index":%q,"_id":%q}}`+"\n", index, d.ID)
		body.Write(d.Source)
		body.WriteByte('\n')
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	data, err := osreq.Do(ctx, cl, http.MethodPost, "/_bulk?refresh=true", body.Bytes())
	if err != nil {
		t.Fatalf("probetest: load %s: %v", index, err)
	}
	var ans struct {
		Errors bool `json:"errors"`
	}
	if err := json.Unmarshal(data, &ans); err != nil || ans.Errors {
		t.Fatalf("probetest: load %s: errors in the bulk answer (%v): %.500s", index, err, data)
	}
}

// Drift returns a copy of docs without every fifth document and with the
// body of every seventh replaced: a copy that search answers tell apart.
func Drift(docs []Doc) []Doc {
	var out []Doc
	for i, d := range docs {
		switch {
		case i%5 == 0:
			continue
		case i%7 == 0:
			var m map[string]any
			if json.Unmarshal(d.Source, &m) == nil {
				m["body"] = "rewritten"
				src, _ := json.Marshal(m)
				d.Source = src
			}
		}
		out = append(out, d)
	}
	return out
}

// Words returns up to n distinct lower-case words of at least four letters
// from the bodies of docs, in order of first appearance.
func Words(docs []Doc, n int) []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range docs {
		var m struct {
			Body string `json:"body"`
		}
		if json.Unmarshal(d.Source, &m) != nil {
			continue
		}
		for _, w := range strings.FieldsFunc(strings.ToLower(m.Body), func(r rune) bool { return !unicode.IsLetter(r) }) {
			if len([]rune(w)) >= 4 && !seen[w] && len(out) < n {
				seen[w] = true
				out = append(out, w)
			}
		}
	}
	return out
}

// QueryFile writes a query file of n match queries on the body, one word of
// docs each, and returns its path. Every body sorts by score and then by
// message id, so two equal indices give the same top hits even when scores
// tie.
func QueryFile(t testing.TB, docs []Doc, n int) string {
	t.Helper()
	var b strings.Builder
	for _, w := range Words(docs, n) {
		q, _ := json.Marshal(map[string]any{
			"query": map[string]any{"match": map[string]any{"body": w}},
			"size":  10,
			"sort":  []any{"_score", map[string]any{"message_id": "asc"}},
		})
		b.Write(q)
		b.WriteByte('\n')
	}
	path := filepath.Join(t.TempDir(), "queries.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
