package indexer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/reindexer/reindexer/event"
	"github.com/reindexer/reindexer/internal/metrics"
)

func TestBatchRendering(t *testing.T) {
	ix := &Indexer{cfg: Config{VersionType: "external", DeleteMode: Delete}, tombDoc: []byte(`{"reindexer_tombstone":true}`)}
	var b Batch
	ix.Add(&b, &event.Event{Op: event.Upsert, ID: []byte(`a\"b`), Version: 7, Doc: []byte(`{"x":1}`)})
	ix.Add(&b, &event.Event{Op: event.Delete, ID: []byte("d1"), Version: 9, Routing: []byte("r1")})
	want := `{"index":{"_id":"a\"b","version":7,"version_type":"external"}}` + "\n" + `{"x":1}` + "\n" +
		`{"delete":{"_id":"d1","version":9,"version_type":"external","routing":"r1"}}` + "\n"
	if string(b.Body()) != want {
		t.Fatalf("body:\n%s\nwant:\n%s", b.Body(), want)
	}
	if string(b.ItemBody(1)) != `{"delete":{"_id":"d1","version":9,"version_type":"external","routing":"r1"}}`+"\n" {
		t.Fatalf("item body %q", b.ItemBody(1))
	}
	ix.cfg.DeleteMode, ix.cfg.VersionType = Tombstone, "external_gte"
	b.Reset()
	ix.Add(&b, &event.Event{Op: event.Delete, ID: []byte("d1"), Version: 9})
	want = `{"index":{"_id":"d1","version":9,"version_type":"external_gte"}}` + "\n" + `{"reindexer_tombstone":true}` + "\n"
	if string(b.Body()) != want || !b.Items[0].tombstone {
		t.Fatalf("tombstone body %q", b.Body())
	}
	// Every action line must be valid JSON.
	sc := bufio.NewScanner(bytes.NewReader(b.Body()))
	for sc.Scan() {
		if !json.Valid(sc.Bytes()) {
			t.Fatalf("invalid line %q", sc.Bytes())
		}
	}
}

func TestParseBulkResponse(t *testing.T) {
	body := `{"took":3,"errors":true,"items":[
	 {"index":{"_index":"i","_id":"a","_version":7,"result":"created","status":201}},
	 {"index":{"_index":"i","_id":"b","status":409,"error":{"type":"version_conflict_engine_exception","reason":"[b]: version conflict, current version [7] is higher or equal to the one provided [5]"}}},
	 {"delete":{"_index":"i","_id":"c","_version":3,"result":"not_found","status":404}},
	 {"index":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [n]","caused_by":{"type":"number_format_exception","reason":"For input string: \"x\""}}}}
	]}`
	var got []itemResp
	n, err := parseBulkResponse([]byte(body), func(i int, it *itemResp) { got = append(got, *it) })
	if err != nil || n != 4 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	if got[0].status != 201 || string(got[0].result) != "created" || got[1].status != 409 ||
		string(got[1].errType) != "version_conflict_engine_exception" || string(got[2].result) != "not_found" ||
		got[2].hasErrorBody || string(got[3].causeType) != "number_format_exception" {
		t.Fatalf("parsed %+v", got)
	}
	if c, p, ok := conflictVersions(got[1].errReason); !ok || c != 7 || p != 5 {
		t.Fatalf("conflict versions %d %d %v", c, p, ok)
	}
	if _, err := parseBulkResponse([]byte(`{"items":[{"index":{"status":201}`), func(int, *itemResp) {}); err == nil {
		t.Fatal("truncated response accepted")
	}
}

func TestClassify(t *testing.T) {
	ix := &Indexer{cfg: Config{}}
	ix.m = metrics.New(nil)
	cases := []struct {
		name string
		it   itemResp
		tomb bool
		res  Result
		out  outcome
	}{
		{"created", itemResp{status: 201, result: []byte("created")}, false, Created, outDone},
		{"updated", itemResp{status: 200, result: []byte("updated")}, false, Updated, outDone},
		{"tombstone written", itemResp{status: 201, result: []byte("created")}, true, Deleted, outDone},
		{"deleted", itemResp{status: 200, result: []byte("deleted")}, false, Deleted, outDone},
		{"not found", itemResp{status: 404, result: []byte("not_found")}, false, NotFound, outDone},
		{"stale", itemResp{status: 409, errType: []byte("version_conflict_engine_exception"), errReason: []byte("[x]: version conflict, current version [9] is higher or equal to the one provided [5]")}, false, Stale, outDone},
		{"duplicate", itemResp{status: 409, errType: []byte("version_conflict_engine_exception"), errReason: []byte("[x]: version conflict, current version [5] is higher or equal to the one provided [5]")}, false, Duplicate, outDone},
		{"gte stale", itemResp{status: 409, errType: []byte("version_conflict_engine_exception"), errReason: []byte("[x]: version conflict, current version [9] is higher than the one provided [5]")}, false, Stale, outDone},
		{"rejected", itemResp{status: 429, errType: []byte("rejected_execution_exception"), hasErrorBody: true}, false, Pending, outRetry},
		{"unavailable", itemResp{status: 503, errType: []byte("unavailable_shards_exception"), hasErrorBody: true}, false, Pending, outRetry},
		{"circuit breaker", itemResp{status: 429, errType: []byte("circuit_breaking_exception"), hasErrorBody: true}, false, Pending, outRetry},
		{"blocked", itemResp{status: 429, errType: []byte("cluster_block_exception"), hasErrorBody: true}, false, Pending, outBlocked},
		{"no index", itemResp{status: 404, errType: []byte("index_not_found_exception"), hasErrorBody: true}, false, Pending, outBlocked},
		{"mapping", itemResp{status: 400, errType: []byte("mapper_parsing_exception"), hasErrorBody: true}, false, Permanent, outDone},
		{"unknown 5xx", itemResp{status: 500, errType: []byte("whatever"), hasErrorBody: true}, false, Pending, outRetry},
	}
	for _, c := range cases {
		item := Item{tombstone: c.tomb}
		if out := ix.classify(&item, &c.it); out != c.out || item.Result != c.res {
			t.Errorf("%s: got %v/%v want %v/%v", c.name, item.Result, out, c.res, c.out)
		}
	}
}

// scripted is an httptest OpenSearch stand-in that answers bulk requests
// from a script, for the retry logic. Real behaviour is proven against a
// real node in the integration tests.
type scripted struct {
	mu       sync.Mutex
	requests [][]string // ids per request
	answer   func(n int, ids []string) (int, string)
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		var m map[string]struct {
			ID string `json:"_id"`
		}
		if json.Unmarshal([]byte(line), &m) == nil {
			for k, v := range m {
				if k == "index" || k == "delete" {
					ids = append(ids, v.ID)
				}
			}
		}
	}
	s.mu.Lock()
	n := len(s.requests)
	s.requests = append(s.requests, ids)
	s.mu.Unlock()
	status, resp := s.answer(n, ids)
	w.WriteHeader(status)
	io.WriteString(w, resp)
}

func items(ids []string, fn func(id string) string) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fn(id)
	}
	return `{"items":[` + strings.Join(parts, ",") + `]}`
}

func newTestIndexer(t *testing.T, h http.Handler) *Indexer {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := opensearch.NewClient(opensearch.Config{Addresses: []string{srv.URL}, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	ix, err := New(c, Config{Index: "i", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ix.sleepHook = func(time.Duration) {}
	return ix
}

func batchOf(ix *Indexer, n int) *Batch {
	var b Batch
	for i := 0; i < n; i++ {
		ix.Add(&b, &event.Event{Op: event.Upsert, ID: []byte(fmt.Sprintf("d%d", i)), Version: 1, Doc: []byte(`{}`)})
	}
	return &b
}

func TestRetriesOnlyFailedItems(t *testing.T) {
	s := &scripted{answer: func(n int, ids []string) (int, string) {
		return 200, items(ids, func(id string) string {
			if n == 0 && (id == "d1" || id == "d3") {
				return `{"index":{"status":429,"error":{"type":"rejected_execution_exception","reason":"queue full"}}}`
			}
			return `{"index":{"status":201,"result":"created"}}`
		})
	}}
	ix := newTestIndexer(t, s)
	b := batchOf(ix, 5)
	if err := ix.Write(context.Background(), b, nil); err != nil {
		t.Fatal(err)
	}
	if len(s.requests) != 2 || strings.Join(s.requests[1], ",") != "d1,d3" {
		t.Fatalf("requests %v: want the second to resend only d1,d3", s.requests)
	}
	for i, it := range b.Items {
		if it.Result != Created {
			t.Errorf("item %d: %v", i, it.Result)
		}
	}
}

func TestWholeRequestFailuresRetryAndSplit(t *testing.T) {
	// 503 twice, then a 400 for any request containing d2, else success:
	// the indexer must retry, then bisect down to d2 alone.
	s := &scripted{answer: func(n int, ids []string) (int, string) {
		if n < 2 {
			return 503, `{"error":{"type":"unavailable_shards_exception","reason":"x"},"status":503}`
		}
		for _, id := range ids {
			if id == "d2" {
				return 400, `{"error":{"type":"action_request_validation_exception","reason":"Validation Failed: 1: bad"},"status":400}`
			}
		}
		return 200, items(ids, func(string) string { return `{"index":{"status":201,"result":"created"}}` })
	}}
	ix := newTestIndexer(t, s)
	b := batchOf(ix, 6)
	if err := ix.Write(context.Background(), b, nil); err != nil {
		t.Fatal(err)
	}
	for i, it := range b.Items {
		want := Created
		if i == 2 {
			want = Permanent
		}
		if it.Result != want {
			t.Errorf("item %d: %v want %v (%s)", i, it.Result, want, it.ErrReason)
		}
	}
	if b.Items[2].ErrType != "action_request_validation_exception" {
		t.Errorf("d2 error type %q", b.Items[2].ErrType)
	}
	// Every success was sent in exactly one successful request.
	seen := map[string]int{}
	for n, ids := range s.requests {
		if n < 2 {
			continue
		}
		ok := true
		for _, id := range ids {
			if id == "d2" {
				ok = false
			}
		}
		if ok {
			for _, id := range ids {
				seen[id]++
			}
		}
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("%s applied %d times", id, c)
		}
	}
}

func TestBlockedKeepsRetryingUntilLifted(t *testing.T) {
	s := &scripted{answer: func(n int, ids []string) (int, string) {
		if n < 5 {
			return 200, items(ids, func(string) string {
				return `{"index":{"status":429,"error":{"type":"cluster_block_exception","reason":"index [i] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has read-only-allow-delete block];"}}}`
			})
		}
		return 200, items(ids, func(string) string { return `{"index":{"status":200,"result":"updated"}}` })
	}}
	ix := newTestIndexer(t, s)
	b := batchOf(ix, 3)
	if err := ix.Write(context.Background(), b, nil); err != nil {
		t.Fatal(err)
	}
	if len(s.requests) != 6 || b.Items[0].Result != Updated {
		t.Fatalf("%d requests, result %v", len(s.requests), b.Items[0].Result)
	}
	if v := ix.blockedN.Load(); v != 0 {
		t.Fatalf("still marked blocked: %d", v)
	}
}

func TestAbandonAndCancel(t *testing.T) {
	s := &scripted{answer: func(n int, ids []string) (int, string) {
		return 200, items(ids, func(string) string {
			return `{"index":{"status":429,"error":{"type":"rejected_execution_exception","reason":"x"}}}`
		})
	}}
	ix := newTestIndexer(t, s)
	b := batchOf(ix, 4)
	if err := ix.Write(context.Background(), b, func(int) bool { return false }); err != nil {
		t.Fatal(err)
	}
	for _, it := range b.Items {
		if it.Result != Abandoned {
			t.Fatalf("result %v, want abandoned", it.Result)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	ix.sleepHook = func(time.Duration) { cancel() }
	b = batchOf(ix, 2)
	if err := ix.Write(ctx, b, nil); err == nil {
		t.Fatal("Write returned nil after its context was cancelled")
	}
	if b.Items[0].Result != Pending {
		t.Fatalf("cancelled item %v, want pending", b.Items[0].Result)
	}
}

func TestDeleteRisk(t *testing.T) {
	if DeleteRisk(Tombstone, IndexSettings{Exists: true, GCDeletes: 0}, true) != "" {
		t.Error("tombstone mode warned")
	}
	if DeleteRisk(Delete, IndexSettings{Exists: true, GCDeletes: time.Minute}, false) != "" {
		t.Error("unbounded run with default gc_deletes warned")
	}
	if w := DeleteRisk(Delete, IndexSettings{Exists: true, GCDeletes: time.Minute}, true); !strings.Contains(w, "--delete-mode tombstone") || !strings.Contains(w, "gc_deletes") {
		t.Errorf("bounded replay warning %q", w)
	}
	if w := DeleteRisk(Delete, IndexSettings{Exists: true, GCDeletes: 0}, false); w == "" {
		t.Error("gc_deletes 0 did not warn")
	}
	if w := DeleteRisk(Delete, IndexSettings{Exists: true, GCDeletes: time.Second}, false); !strings.Contains(w, "below the default") {
		t.Errorf("gc_deletes 1s did not warn: %q", w)
	}
	for in, want := range map[string]time.Duration{"60s": time.Minute, "7d": 7 * 24 * time.Hour, "500ms": 500 * time.Millisecond, "-1": 0} {
		if got, err := parseOSDuration(in); err != nil || got != want {
			t.Errorf("parseOSDuration(%q) = %v, %v", in, got, err)
		}
	}
}

// BenchmarkParseResponse measures classifying a filtered bulk response of
// 5000 items (a mix of created, updated and 409s).
func BenchmarkParseResponse(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"items":[`)
	for i := 0; i < 5000; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		switch i % 10 {
		case 0:
			sb.WriteString(`{"index":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"[r1-m1]: version conflict, current version [1732412399000000] is higher or equal to the one provided [1732412345678001]"}}}`)
		case 1, 2:
			sb.WriteString(`{"index":{"status":200,"result":"updated"}}`)
		default:
			sb.WriteString(`{"index":{"status":201,"result":"created"}}`)
		}
	}
	sb.WriteString(`]}`)
	body := []byte(sb.String())
	ix := &Indexer{m: metrics.New(nil)}
	items := make([]Item, 5000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		n, err := parseBulkResponse(body, func(i int, it *itemResp) { ix.classify(&items[i], it) })
		if err != nil || n != 5000 {
			b.Fatal(n, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*5000), "ns/item")
}

// TestRequestLevelErrorsBlock: answers that are nobody's document's fault
// (a redirect, a wrong method or media type from a proxy, a 400 page that is
// not an OpenSearch error, an index-level item error) must wait, loudly, and
// never split the batch or make an item Permanent (which would send it to
// the dead-letter topic and commit past it).
func TestRequestLevelErrorsBlock(t *testing.T) {
	created := `{"index":{"status":201,"result":"created"}}`
	for _, c := range []struct {
		name   string
		status int
		body   string
	}{
		{"redirect", 302, ``},
		{"method not allowed", 405, `{"error":"Incorrect HTTP method for uri [/i/_bulk], allowed: [GET]","status":405}`},
		{"unsupported media type", 415, `{"error":"Content-Type header [text/plain] is not supported","status":415}`},
		{"proxy 400 page", 400, `<html><body>400 Bad Request</body></html>`},
		{"no write index (item)", 200, `{"index":{"status":400,"error":{"type":"illegal_argument_exception","reason":"no write index is defined for alias [a]. The write index may be explicitly disabled using is_write_index=false or the alias points to multiple indices without one being designated as a write index"}}}`},
		{"invalid index name (item)", 200, `{"index":{"status":400,"error":{"type":"invalid_index_name_exception","reason":"Invalid index name [A], must be lowercase"}}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &scripted{answer: func(n int, ids []string) (int, string) {
				if n < 3 {
					if c.status == 200 {
						return 200, items(ids, func(string) string { return c.body })
					}
					return c.status, c.body
				}
				return 200, items(ids, func(string) string { return created })
			}}
			ix := newTestIndexer(t, s)
			b := batchOf(ix, 4)
			if err := ix.Write(context.Background(), b, nil); err != nil {
				t.Fatal(err)
			}
			for i, it := range b.Items {
				if it.Result != Created {
					t.Errorf("item %d: %v (%s %s), want created after the block lifted", i, it.Result, it.ErrType, it.ErrReason)
				}
			}
			for n, ids := range s.requests {
				if len(ids) != 4 {
					t.Errorf("request %d held %d items: the batch was split, want it retried whole", n, len(ids))
				}
			}
			if got := testutil.ToFloat64(ix.m.Retries.WithLabelValues("blocked")); got != 12 {
				t.Errorf("blocked retries = %v, want 12 (3 rounds of 4)", got)
			}
		})
	}
}

// TestKeepCheckedBeforeFirstSend: items whose partition is gone before the
// batch goes out are never sent.
func TestKeepCheckedBeforeFirstSend(t *testing.T) {
	s := &scripted{answer: func(n int, ids []string) (int, string) {
		return 200, items(ids, func(string) string { return `{"index":{"status":201,"result":"created"}}` })
	}}
	ix := newTestIndexer(t, s)
	b := batchOf(ix, 5)
	if err := ix.Write(context.Background(), b, func(i int) bool { return i%2 == 0 }); err != nil {
		t.Fatal(err)
	}
	if len(s.requests) != 1 || strings.Join(s.requests[0], ",") != "d0,d2,d4" {
		t.Fatalf("requests %v, want one with d0,d2,d4", s.requests)
	}
	for i, it := range b.Items {
		want := Created
		if i%2 == 1 {
			want = Abandoned
		}
		if it.Result != want {
			t.Errorf("item %d: %v want %v", i, it.Result, want)
		}
	}
	// Nothing wanted: no request at all.
	b = batchOf(ix, 3)
	if err := ix.Write(context.Background(), b, func(int) bool { return false }); err != nil || len(s.requests) != 1 {
		t.Fatalf("err %v, %d requests: a batch nobody wants must not be sent", err, len(s.requests))
	}
}

// TestWritesCountedOnce: an answer that does not line up with the request
// is resent; the items it did classify must not be counted twice.
func TestWritesCountedOnce(t *testing.T) {
	s := &scripted{answer: func(n int, ids []string) (int, string) {
		if n == 0 {
			return 200, items(ids[:len(ids)-1], func(string) string { return `{"index":{"status":201,"result":"created"}}` })
		}
		return 200, items(ids, func(string) string { return `{"index":{"status":201,"result":"created"}}` })
	}}
	ix := newTestIndexer(t, s)
	ix.m = metrics.New(nil)
	b := batchOf(ix, 6)
	if err := ix.Write(context.Background(), b, nil); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(ix.m.Writes.WithLabelValues("created")); got != 6 {
		t.Fatalf("writes_total{created} = %v, want 6", got)
	}
}

// TestUnreachableIsBlocked: a node that does not answer for several rounds
// sets the blocked gauge (an outage is not a blip), and clears it when it
// answers again; nothing is dropped.
func TestUnreachableIsBlocked(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	var sawBlocked atomic.Bool
	var ix *Indexer
	s := &scripted{answer: func(n int, ids []string) (int, string) {
		return 200, items(ids, func(string) string { return `{"index":{"status":201,"result":"created"}}` })
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			hj, _ := w.(http.Hijacker)
			c, _, _ := hj.Hijack()
			c.Close() // no answer at all
			return
		}
		s.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c, err := opensearch.NewClient(opensearch.Config{Addresses: []string{srv.URL}, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(nil)
	ix, err = New(c, Config{Index: "i", Metrics: m, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rounds := 0
	ix.sleepHook = func(time.Duration) {
		rounds++
		if testutil.ToFloat64(m.Blocked) == 1 {
			sawBlocked.Store(true)
		}
		if rounds == 5 {
			down.Store(false)
		}
	}
	b := batchOf(ix, 3)
	if err := ix.Write(context.Background(), b, nil); err != nil {
		t.Fatal(err)
	}
	if !sawBlocked.Load() {
		t.Fatal("the blocked gauge never rose while the node did not answer")
	}
	if testutil.ToFloat64(m.Blocked) != 0 || b.Items[0].Result != Created {
		t.Fatalf("after the node answered: blocked %v, result %v", testutil.ToFloat64(m.Blocked), b.Items[0].Result)
	}
}
