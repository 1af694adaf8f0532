package parity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/reindexer/reindexer/internal/osreq"
)

// scrollKeepAlive is how long a scroll context lives between two pages.
const scrollKeepAlive = "5m"

// filters builds the queries of one comparison: what is live, what is a
// tombstone, and what has settled.
type filters struct {
	tombstone string
	timeField string
	cutoff    time.Time // zero: no settle filter
}

// settled matches documents whose time field is before the cutoff, or
// that have no time field (their age is unknown, so they are kept).
func (f filters) settled() map[string]any {
	return map[string]any{"bool": map[string]any{
		"should": []any{
			map[string]any{"range": map[string]any{f.timeField: map[string]any{
				"lt": f.cutoff.UnixMilli(), "format": "epoch_millis",
			}}},
			map[string]any{"bool": map[string]any{"must_not": map[string]any{"exists": map[string]any{"field": f.timeField}}}},
		},
		"minimum_should_match": 1,
	}}
}

// live matches live (non-tombstone), settled documents.
func (f filters) live() map[string]any {
	b := map[string]any{"must_not": []any{map[string]any{"exists": map[string]any{"field": f.tombstone}}}}
	if !f.cutoff.IsZero() {
		b["filter"] = []any{f.settled()}
	}
	return map[string]any{"bool": b}
}

// unsettled matches live documents inside the settle window: their time
// field is at or after the cutoff.
func (f filters) unsettled() map[string]any {
	return map[string]any{"bool": map[string]any{
		"must_not": []any{map[string]any{"exists": map[string]any{"field": f.tombstone}}},
		"filter": []any{map[string]any{"range": map[string]any{f.timeField: map[string]any{
			"gte": f.cutoff.UnixMilli(), "format": "epoch_millis",
		}}}},
	}}
}

// tombstones matches tombstone documents (settled, like live ones).
func (f filters) tombstones() map[string]any {
	filter := []any{map[string]any{"exists": map[string]any{"field": f.tombstone}}}
	if !f.cutoff.IsZero() {
		filter = append(filter, f.settled())
	}
	return map[string]any{"bool": map[string]any{"filter": filter}}
}

// indexSide is one index side with its label, for error messages.
type indexSide struct {
	which string // "left" or "right"
	side  Side
}

func (s indexSide) path(suffix string) string {
	return "/" + url.PathEscape(s.side.Index) + suffix
}

// wrap names the side in err and turns a missing index into a plain reason.
func (s indexSide) wrap(what string, err error) error {
	if osreq.IsNotFound(err) {
		return fmt.Errorf("%s index %s: no such index (%w)", s.which, s.side.Index, err)
	}
	return fmt.Errorf("%s index %s: %s: %w", s.which, s.side.Index, what, err)
}

type shardsAnswer struct {
	Shards   opensearchapi.ResponseShards `json:"_shards"`
	TimedOut bool                         `json:"timed_out"`
}

// refresh makes every write so far visible to search.
func (s indexSide) refresh(ctx context.Context) error {
	var ans shardsAnswer
	if err := osreq.JSON(ctx, s.side.Client, http.MethodPost, s.path("/_refresh"), nil, &ans); err != nil {
		return s.wrap("refresh", err)
	}
	if err := osreq.ShardsError(ans.Shards, false); err != nil {
		return s.wrap("refresh", err)
	}
	return nil
}

// count returns the exact number of documents query matches; failed shards
// or a timeout are errors.
func (s indexSide) count(ctx context.Context, query map[string]any) (int64, error) {
	var ans struct {
		Count int64 `json:"count"`
		shardsAnswer
	}
	if err := osreq.JSON(ctx, s.side.Client, http.MethodPost, s.path("/_count"), map[string]any{"query": query}, &ans); err != nil {
		return 0, s.wrap("count", err)
	}
	if err := osreq.ShardsError(ans.Shards, ans.TimedOut); err != nil {
		return 0, s.wrap("count", err)
	}
	return ans.Count, nil
}

// hitsPage is one page of a scroll of ids and versions.
type hitsPage struct {
	ScrollID string `json:"_scroll_id"`
	shardsAnswer
	Hits struct {
		Total struct {
			Value    int64  `json:"value"`
			Relation string `json:"relation"`
		} `json:"total"`
		Hits []struct {
			ID      string `json:"_id"`
			Version int64  `json:"_version"`
			Routing string `json:"_routing"`
		} `json:"hits"`
	} `json:"hits"`
}

// scrollFilter trims scroll answers to what is read.
const scrollFilter = "filter_path=_scroll_id,_shards,timed_out,hits.total,hits.hits._id,hits.hits._version,hits.hits._routing"

// scroll reads the hits of body page by page, calling fn for each hit (its
// id, version, and custom routing or ""), and
// checks that it read exactly hits.total hits when limit is 0 (limit > 0
// stops after that many hits). Failed shards or a timeout on any page are
// errors. The scroll is cleared when it ends.
func (s indexSide) scroll(ctx context.Context, body map[string]any, limit int64, fn func(id string, version int64, routing string) error) (int64, error) {
	var page hitsPage
	if err := osreq.JSON(ctx, s.side.Client, http.MethodPost, s.path("/_search?scroll="+scrollKeepAlive+"&"+scrollFilter), body, &page); err != nil {
		return 0, s.wrap("search", err)
	}
	scrollID := page.ScrollID
	defer func() {
		if scrollID == "" {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = osreq.JSON(cctx, s.side.Client, http.MethodDelete, "/_search/scroll", map[string]any{"scroll_id": []string{scrollID}}, nil)
	}()
	total := page.Hits.Total
	var n int64
	for {
		if err := osreq.ShardsError(page.Shards, page.TimedOut); err != nil {
			return n, s.wrap("search", err)
		}
		if len(page.Hits.Hits) == 0 {
			break
		}
		for _, h := range page.Hits.Hits {
			if err := fn(h.ID, h.Version, h.Routing); err != nil {
				return n, err
			}
			n++
			if limit > 0 && n >= limit {
				return n, nil
			}
		}
		if page.ScrollID != "" {
			scrollID = page.ScrollID
		}
		page = hitsPage{}
		req := map[string]any{"scroll": scrollKeepAlive, "scroll_id": scrollID}
		if err := osreq.JSON(ctx, s.side.Client, http.MethodPost, "/_search/scroll?"+scrollFilter, req, &page); err != nil {
			return n, s.wrap("scroll", err)
		}
	}
	if limit == 0 && (total.Relation != "eq" || n != total.Value) {
		return n, s.wrap("scroll", fmt.Errorf("read %d documents, but the search matched %s %d", n, total.Relation, total.Value))
	}
	return n, nil
}

// mgetDoc is one document of an mget answer.
type mgetDoc struct {
	ID      string          `json:"_id"`
	Found   bool            `json:"found"`
	Version int64           `json:"_version"`
	Source  json.RawMessage `json:"_source"`
	Error   json.RawMessage `json:"error"`
}

// mgetID is one document to look up: its id and custom routing ("" for
// none), as the left side holds it.
type mgetID struct {
	ID      string `json:"_id"`
	Routing string `json:"routing,omitempty"`
}

// mget looks ids up (realtime: no refresh needed), reading only the fields
// of source from _source.
func (s indexSide) mget(ctx context.Context, ids []mgetID, source []string) ([]mgetDoc, error) {
	path := s.path("/_mget?realtime=true")
	if len(source) > 0 {
		path += "&_source_includes=" + url.QueryEscape(strings.Join(source, ","))
	} else {
		path += "&_source=false"
	}
	var ans struct {
		Docs []mgetDoc `json:"docs"`
	}
	if err := osreq.JSON(ctx, s.side.Client, http.MethodPost, path, map[string]any{"docs": ids}, &ans); err != nil {
		return nil, s.wrap("mget", err)
	}
	if len(ans.Docs) != len(ids) {
		return nil, s.wrap("mget", fmt.Errorf("asked for %d ids, got %d answers", len(ids), len(ans.Docs)))
	}
	for _, d := range ans.Docs {
		if len(d.Error) > 0 && string(d.Error) != "null" {
			return nil, s.wrap("mget", fmt.Errorf("id %q: %s", d.ID, osreq.Truncate(d.Error, 500)))
		}
	}
	return ans.Docs, nil
}

// errMissingClient reports a side without a client.
var errMissingClient = errors.New("no OpenSearch client")
