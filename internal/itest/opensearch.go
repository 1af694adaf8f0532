package itest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/reindexer/reindexer/internal/osreq"
)

// DocState is one document as read back from OpenSearch.
type DocState struct {
	// Version is the document's _version.
	Version int64
	// Source is the document's _source, as stored.
	Source json.RawMessage
}

// indexTimeout bounds index administration and each page of a dump.
const indexTimeout = time.Minute

// CreateIndex creates index name with body (settings and mappings as JSON;
// empty for the defaults) and deletes it when the test ends (unless
// KEEP_TEST_DATA=1).
func CreateIndex(t testing.TB, env *Env, name, body string) {
	t.Helper()
	cl, err := newOpenSearch(env)
	if err != nil {
		t.Fatalf("itest: create index %s: %v", name, err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), indexTimeout)
	defer cancel()
	req := opensearchapi.IndicesCreateReq{Index: name}
	if body != "" {
		req.Body = strings.NewReader(body)
	}
	if _, err := cl.Indices.Create(ctx, req); err != nil {
		t.Fatalf("itest: create index %s: %v", name, err)
	}
	CleanupIndex(t, env, name)
}

// CleanupIndex deletes index name (if it exists) when the test ends, unless
// KEEP_TEST_DATA=1. Use it for indices the code under test creates.
func CleanupIndex(t testing.TB, env *Env, name string) {
	t.Helper()
	t.Cleanup(func() {
		if env.KeepTestData {
			t.Logf("itest: KEEP_TEST_DATA: keeping index %s", name)
			return
		}
		cl, err := newOpenSearch(env)
		if err != nil {
			t.Errorf("itest: delete index %s: %v", name, err)
			return
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), indexTimeout)
		defer cancel()
		var out json.RawMessage
		err = doJSON(ctx, cl, http.MethodDelete, "/"+url.PathEscape(name), nil, &out)
		if err != nil && !isStatus(err, http.StatusNotFound) {
			t.Errorf("itest: delete index %s: %v", name, err)
		}
	})
}

type shards struct {
	Total      int             `json:"total"`
	Successful int             `json:"successful"`
	Failed     int             `json:"failed"`
	Failures   json.RawMessage `json:"failures,omitempty"`
}

func (s shards) check(what string) error {
	if s.Failed != 0 {
		return fmt.Errorf("%s: %d of %d shards failed: %s", what, s.Failed, s.Total, s.Failures)
	}
	return nil
}

type searchPage struct {
	ScrollID string `json:"_scroll_id"`
	Shards   shards `json:"_shards"`
	TimedOut bool   `json:"timed_out"`
	Hits     struct {
		Total struct {
			Value    int64  `json:"value"`
			Relation string `json:"relation"`
		} `json:"total"`
		Hits []struct {
			ID      string          `json:"_id"`
			Version *int64          `json:"_version"`
			Source  json.RawMessage `json:"_source"`
		} `json:"hits"`
	} `json:"hits"`
}

// dumpPageSize is the number of hits per scroll page.
const dumpPageSize = 1000

// DumpIndex refreshes index, checks that no shard failed, and reads every
// document with its _id, _version and _source. It uses a scroll sorted by
// _doc (sorting on _id needs fielddata that OpenSearch 2.x and 3.x disable
// by default) and checks that it read exactly hits.total documents.
func DumpIndex(t testing.TB, env *Env, index string) map[string]DocState {
	t.Helper()
	cl, err := newOpenSearch(env)
	if err != nil {
		t.Fatalf("itest: dump index %s: %v", index, err)
	}
	defer cl.Close()
	docs, err := dumpIndex(t.Context(), cl, index)
	if err != nil {
		t.Fatalf("itest: dump index %s: %v", index, err)
	}
	return docs
}

func dumpIndex(ctx context.Context, cl *opensearchapi.Client, index string) (map[string]DocState, error) {
	path := "/" + url.PathEscape(index)
	var refresh struct {
		Shards shards `json:"_shards"`
	}
	if err := doJSON(ctx, cl, http.MethodPost, path+"/_refresh", nil, &refresh); err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	if err := refresh.Shards.check("refresh"); err != nil {
		return nil, err
	}
	query := map[string]any{
		"size":             dumpPageSize,
		"sort":             []string{"_doc"},
		"version":          true,
		"track_total_hits": true,
		"query":            map[string]any{"match_all": map[string]any{}},
	}
	var page searchPage
	if err := doJSON(ctx, cl, http.MethodPost, path+"/_search?scroll=2m", query, &page); err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	total := page.Hits.Total
	docs := make(map[string]DocState, total.Value)
	scrollID := page.ScrollID
	defer func() {
		if scrollID == "" {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		var out json.RawMessage
		_ = doJSON(cctx, cl, http.MethodDelete, "/_search/scroll", map[string]any{"scroll_id": []string{scrollID}}, &out)
	}()
	for {
		if err := page.Shards.check("search"); err != nil {
			return nil, err
		}
		if page.TimedOut {
			return nil, errors.New("search timed out")
		}
		if len(page.Hits.Hits) == 0 {
			break
		}
		for _, h := range page.Hits.Hits {
			if h.Version == nil {
				return nil, fmt.Errorf("hit %q has no _version", h.ID)
			}
			if _, dup := docs[h.ID]; dup {
				return nil, fmt.Errorf("scroll returned _id %q twice", h.ID)
			}
			docs[h.ID] = DocState{Version: *h.Version, Source: h.Source}
		}
		if page.ScrollID != "" {
			scrollID = page.ScrollID
		}
		page = searchPage{}
		body := map[string]any{"scroll": "2m", "scroll_id": scrollID}
		if err := doJSON(ctx, cl, http.MethodPost, "/_search/scroll", body, &page); err != nil {
			return nil, fmt.Errorf("scroll: %w", err)
		}
	}
	if total.Relation != "eq" || int64(len(docs)) != total.Value {
		return nil, fmt.Errorf("read %d documents, hits.total is %s %d", len(docs), total.Relation, total.Value)
	}
	return docs, nil
}

func isStatus(err error, status int) bool {
	got, _ := osreq.Info(err)
	return got == status
}

// doJSON sends body (marshalled as JSON when not nil) through the client's
// transport and decodes a 2xx answer into out.
var doJSON = osreq.JSON
