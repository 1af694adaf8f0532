//go:build integration

package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"

	"github.com/reindexer/reindexer/internal/itest"
)

// waitFor polls cond every 50ms until it returns true or the deadline
// passes, then fails the test with what cond last said.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s (last: %s)", what, timeout, last)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("%s: test context ended", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// newStore returns a Store on a fresh ckpt-test- index that is deleted when
// the test ends.
func newStore(t *testing.T) (*itest.Env, *opensearchapi.Client, *Store) {
	t.Helper()
	env := itest.Services(t)
	cl := itest.OpenSearch(t, env)
	idx := itest.Name(t, "ckpt-test")
	itest.CleanupIndex(t, env, idx)
	return env, cl, NewStore(cl, idx)
}

// search runs body against index and decodes the answer into out.
func search(t *testing.T, cl *opensearchapi.Client, index string, body any, out any) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := perform(ctx, cl, http.MethodPost, "/"+url.PathEscape(index)+"/_refresh", nil); err != nil {
		t.Fatalf("refresh %s: %v", index, err)
	}
	data, err := perform(ctx, cl, http.MethodPost, "/"+url.PathEscape(index)+"/_search", b)
	if err != nil {
		t.Fatalf("search %s: %v", index, err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("search %s: decode: %v", index, err)
	}
}

// versions returns, for the checkpoints of group and partition of topic T
// and index X, how many
// documents there are and the sum of their _version (the number of writes
// they took).
func versions(t *testing.T, cl *opensearchapi.Client, index, group string, partition int32) (docs, writes int) {
	t.Helper()
	var ans struct {
		Hits struct {
			Hits []struct {
				Version int `json:"_version"`
			} `json:"hits"`
		} `json:"hits"`
	}
	search(t, cl, index, map[string]any{
		"size": 1000, "version": true,
		"query": map[string]any{"bool": map[string]any{"filter": []any{
			term("kind", kindCheckpoint), term("group", group), term("topic", "T"), term("topic_id", "TID"), term("index", "X"),
			map[string]any{"term": map[string]any{"partition": partition}},
		}}},
	}, &ans)
	for _, h := range ans.Hits.Hits {
		docs++
		writes += h.Version
	}
	return docs, writes
}

// countKind counts the documents of one kind.
func countKind(t *testing.T, cl *opensearchapi.Client, index, kind string) int {
	t.Helper()
	var ans struct {
		Hits struct {
			Total struct {
				Value int `json:"value"`
			} `json:"total"`
		} `json:"hits"`
	}
	search(t, cl, index, map[string]any{"size": 0, "track_total_hits": true, "query": term("kind", kind)}, &ans)
	return ans.Hits.Total.Value
}

func TestEnsureIntegration(t *testing.T) {
	env, cl, store := newStore(t)
	ctx := t.Context()
	start := time.Now()
	if err := store.Ensure(ctx); err != nil {
		t.Fatalf("first Ensure: %v", err)
	}
	created := time.Since(start)
	start = time.Now()
	if err := NewStore(cl, store.Index()).Ensure(ctx); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	t.Logf("Ensure: create %s, on an existing index %s", created.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	data, err := perform(ctx, cl, http.MethodGet, "/"+store.Index()+"/_settings", nil)
	if err != nil {
		t.Fatal(err)
	}
	var settings map[string]struct {
		Settings struct {
			Index struct {
				Shards   string `json:"number_of_shards"`
				Replicas string `json:"auto_expand_replicas"`
			} `json:"index"`
		} `json:"settings"`
	}
	if err := json.Unmarshal(data, &settings); err != nil {
		t.Fatal(err)
	}
	if s := settings[store.Index()].Settings.Index; s.Shards != "1" || s.Replicas != "0-1" {
		t.Errorf("settings: shards %q, auto_expand_replicas %q; want 1 and 0-1", s.Shards, s.Replicas)
	}

	// An index an earlier version created (no topic_id, no complete)
	// gets the two fields added; its old checkpoints are never trusted.
	older := itest.Name(t, "ckpt-test-older")
	itest.CreateIndex(t, env, older, `{"mappings":{"dynamic":false,"properties":{"kind":{"type":"keyword"},"group":{"type":"keyword"},
		"topic":{"type":"keyword"},"index":{"type":"keyword"},"partition":{"type":"integer"},"offset":{"type":"long"},"time":{"type":"date"}}}}`)
	if _, err := perform(ctx, cl, http.MethodPut, "/"+older+"/_doc/old-1?refresh=true",
		[]byte(`{"kind":"checkpoint","group":"g","topic":"T","index":"X","partition":0,"offset":99,"time":"2026-01-01T00:00:00.000Z"}`)); err != nil {
		t.Fatal(err)
	}
	ostore := NewStore(cl, older)
	if err := ostore.Ensure(ctx); err != nil {
		t.Fatalf("Ensure on an index of an earlier version: %v", err)
	}
	data, err = perform(ctx, cl, http.MethodGet, "/"+older+"/_mapping", nil)
	if err != nil {
		t.Fatal(err)
	}
	if missing, err := checkMappingBody(older, data); err != nil || len(missing) != 0 {
		t.Errorf("after Ensure the mapping still lacks %v (%v)", missing, err)
	}
	if err := ostore.Write(ctx, []Checkpoint{{Group: "g", Topic: "T", TopicID: "TID", Complete: true, Index: "X", Partition: 0, Offset: 5, Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}); err != nil {
		t.Fatal(err)
	}
	if got, err := ostore.Before(ctx, "T", "TID", "X", time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)); err != nil || len(got) != 1 || got[0].Offset != 5 {
		t.Errorf("Before on an extended index = %+v, %v; want only the new checkpoint (offset 5), not the old one (99)", got, err)
	}

	// Concurrent creators of a fresh index: all succeed.
	idx := itest.Name(t, "ckpt-test-conc")
	itest.CleanupIndex(t, env, idx)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = NewStore(cl, idx).Ensure(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Ensure: %v", err)
	}

	// An index dynamic mapping made is refused, naming the problem.
	bad := itest.Name(t, "ckpt-test-bad")
	itest.CreateIndex(t, env, bad, `{"mappings":{"properties":{"partition":{"type":"long"},"kind":{"type":"text"}}}}`)
	err = NewStore(cl, bad).Ensure(ctx)
	if err == nil || !strings.Contains(err.Error(), "incompatible mapping") || !strings.Contains(err.Error(), "field partition is long") {
		t.Fatalf("Ensure on an incompatible index: %v", err)
	}
	t.Logf("incompatible index: %v", err)
}

func TestWriteBeforeIntegration(t *testing.T) {
	_, cl, store := newStore(t)
	ctx := t.Context()
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Hour)
	at := base.Add(30 * time.Minute) // the "t" of Before
	cp := func(group string, p int32, off int64, when time.Time) Checkpoint {
		return Checkpoint{Group: group, Topic: "T", TopicID: "TID", Complete: true, Index: "X", Partition: p, Offset: off, Time: when, Host: "h", PID: 1}
	}
	cps := []Checkpoint{
		cp("g1", 0, 100, base.Add(1*time.Minute)),
		cp("g1", 0, 150, base.Add(10*time.Minute)),
		cp("g2", 0, 180, base.Add(20*time.Minute)), // greatest before t, any group
		cp("g3", 0, 170, base.Add(25*time.Minute)), // later but lower: loses
		cp("g2", 0, 500, base.Add(31*time.Minute)), // after t: ignored
		cp("g1", 1, 40, at.Add(-time.Millisecond)),
		cp("g1", 1, 45, at), // time == t is not before t
		cp("g1", 2, 7, at.Add(time.Minute)),
		// Stored times round up to the millisecond: t−0.5ms is stored as t.
		cp("g1", 3, 7, at.Add(-time.Millisecond)),
		cp("g2", 3, 8, at.Add(-500*time.Microsecond)),
		// Exact beyond 2^53, where a max aggregation (a double) cannot
		// tell these apart.
		cp("g1", 4, 1<<53+1, base.Add(5*time.Minute)),
		cp("g2", 4, 1<<53, base.Add(6*time.Minute)),
		// Other index, other topic: not this history.
		{Group: "g1", Topic: "T", TopicID: "TID", Complete: true, Index: "X2", Partition: 0, Offset: 9999, Time: base},
		{Group: "g1", Topic: "T2", TopicID: "TID", Complete: true, Index: "X", Partition: 0, Offset: 9999, Time: base},
		// An earlier topic of the same name (another topic ID), and a
		// group that started mid-stream (incomplete): never trusted.
		{Group: "g1", Topic: "T", TopicID: "OLD", Complete: true, Index: "X", Partition: 0, Offset: 9998, Time: base},
		{Group: "g5", Topic: "T", TopicID: "TID", Complete: false, Index: "X", Partition: 0, Offset: 9997, Time: base},
		{Group: "g5", Topic: "T", TopicID: "TID", Complete: false, Index: "X", Partition: 2, Offset: 9997, Time: base},
	}
	start := time.Now()
	if err := store.Write(ctx, cps); err != nil {
		t.Fatalf("Write: %v", err)
	}
	t.Logf("Write of %d checkpoints (first write creates the index): %s", len(cps), time.Since(start).Round(time.Millisecond))
	// Rewriting the same checkpoints is idempotent: same ids, same count.
	start = time.Now()
	if err := store.Write(ctx, cps); err != nil {
		t.Fatalf("second Write: %v", err)
	}
	t.Logf("rewrite of %d checkpoints: %s", len(cps), time.Since(start).Round(time.Millisecond))
	if n := countKind(t, cl, store.Index(), kindCheckpoint); n != len(cps) {
		t.Errorf("after writing the same %d checkpoints twice: %d documents", len(cps), n)
	}

	start = time.Now()
	got, err := store.Before(ctx, "T", "TID", "X", at)
	if err != nil {
		t.Fatalf("Before: %v", err)
	}
	t.Logf("Before: %s", time.Since(start).Round(time.Millisecond))
	want := map[int32]Checkpoint{0: cps[2], 1: cps[5], 3: cps[8], 4: cps[10]}
	if len(got) != len(want) {
		t.Errorf("Before returned partitions %v, want %v", sortedPartitions(got), sortedPartitions(want))
	}
	for p, w := range want {
		g, ok := got[p]
		w.Time = ceilMilli(w.Time).UTC()
		if !ok || g != w {
			t.Errorf("partition %d: got %+v, want %+v", p, g, w)
		}
	}

	// Earlier t: only the history up to then.
	got, err = store.Before(ctx, "T", "TID", "X", base.Add(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Offset != 150 || got[0].Group != "g1" || got[4].Offset != 1<<53+1 {
		t.Errorf("Before(base+15m) = %+v", got)
	}

	// A later checkpoint in the same minute is a new document: the earlier
	// one stays, so a cutoff between the two still finds it (with one
	// document per minute, the later write replaced it and a short history
	// fell back to record timestamps).
	if err := store.Write(ctx, []Checkpoint{cp("g1", 0, 160, base.Add(10*time.Minute+30*time.Second))}); err != nil {
		t.Fatal(err)
	}
	if docs, writes := versions(t, cl, store.Index(), "g1", 0); docs != 3 || writes != 5 {
		t.Errorf("g1/p0: %d documents, %d writes; want 3 documents (offsets 100, 150, 160), 5 writes", docs, writes)
	}
	got, err = store.Before(ctx, "T", "TID", "X", base.Add(10*time.Minute+15*time.Second))
	if err != nil || got[0].Offset != 150 {
		t.Errorf("Before(between two checkpoints of one minute) = %+v, %v; want offset 150", got[0], err)
	}
	// The same offset written again later only moves its time later.
	if err := store.Write(ctx, []Checkpoint{cp("g1", 0, 150, base.Add(10*time.Minute+45*time.Second))}); err != nil {
		t.Fatal(err)
	}
	if got, err = store.Before(ctx, "T", "TID", "X", base.Add(10*time.Minute+15*time.Second)); err != nil || got[0].Offset != 100 {
		t.Errorf("after rewriting offset 150 later, Before(10m15s) = %+v, %v; want offset 100", got[0], err)
	}
	// Without a topic ID, only checkpoints written without one count.
	if got, err = store.Before(ctx, "T", "", "X", at); err != nil || len(got) != 0 {
		t.Errorf("Before with no topic ID = %+v, %v; want nothing", got, err)
	}

	// No checkpoint index: empty, no error.
	empty, err := NewStore(cl, itest.Name(t, "ckpt-test-none")).Before(ctx, "T", "TID", "X", at)
	if err != nil || len(empty) != 0 {
		t.Errorf("Before on a missing index = %v, %v; want empty, nil", empty, err)
	}
}

func TestBeforeManyPartitionsIntegration(t *testing.T) {
	// More partitions than one composite page holds.
	_, _, store := newStore(t)
	ctx := t.Context()
	at := time.Now().Add(-time.Hour)
	const parts = compositePage + 234
	cps := make([]Checkpoint, 0, parts)
	for p := range int32(parts) {
		cps = append(cps, Checkpoint{Group: "g", Topic: "T", TopicID: "TID", Complete: true, Index: "X", Partition: p, Offset: int64(p) * 3, Time: at})
	}
	if err := store.Write(ctx, cps); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got, err := store.Before(ctx, "T", "TID", "X", at.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Before over %d partitions (2 pages): %s", parts, time.Since(start).Round(time.Millisecond))
	if len(got) != parts {
		t.Fatalf("got %d partitions, want %d", len(got), parts)
	}
	for p, cp := range got {
		if cp.Offset != int64(p)*3 {
			t.Fatalf("partition %d: offset %d", p, cp.Offset)
		}
	}
}

func TestPruneIntegration(t *testing.T) {
	_, cl, store := newStore(t)
	ctx := t.Context()
	if err := store.Prune(ctx, time.Now()); err != nil {
		t.Fatalf("Prune on a missing index: %v", err)
	}
	now := time.Now()
	day := 24 * time.Hour
	var cps []Checkpoint
	for i, age := range []time.Duration{10 * day, 8 * day, 7*day + time.Minute, 7*day - time.Minute, day, 0} {
		cps = append(cps, Checkpoint{Group: "g", Topic: "T", TopicID: "TID", Complete: true, Index: "X", Partition: int32(i), Offset: int64(i), Time: now.Add(-age)})
	}
	if err := store.Write(ctx, cps); err != nil {
		t.Fatal(err)
	}
	plan := Plan{Topic: "T", Group: "g", Index: "X", Created: now.Add(-30 * day), Body: json.RawMessage(`{"partitions":[{"partition":0,"start":0,"end":1}]}`)}
	if err := store.SavePlan(ctx, plan); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := store.Prune(ctx, now.Add(-7*day)); err != nil {
		t.Fatalf("Prune: %v", err)
	}
	t.Logf("Prune: %s", time.Since(start).Round(time.Millisecond))
	got, err := store.Before(ctx, "T", "TID", "X", now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[3].Offset != 3 || got[4].Offset != 4 || got[5].Offset != 5 {
		t.Errorf("after Prune: %+v; want partitions 3, 4, 5", got)
	}
	if n := countKind(t, cl, store.Index(), kindPlan); n != 1 {
		t.Errorf("Prune removed plans: %d left", n)
	}
	if _, ok, err := store.LoadPlan(ctx, "g", "T", "X"); !ok || err != nil {
		t.Errorf("plan after Prune: %v, %v", ok, err)
	}
}

func TestPlanIntegration(t *testing.T) {
	_, cl, store := newStore(t)
	ctx := t.Context()
	if _, ok, err := store.LoadPlan(ctx, "g", "T", "X"); ok || err != nil {
		t.Fatalf("LoadPlan without an index = %v, %v; want false, nil", ok, err)
	}
	plan := Plan{
		Topic: "T", Group: "g", Index: "X",
		Created: time.Date(2026, 11, 26, 20, 0, 0, 123_000_000, time.UTC),
		Body:    json.RawMessage(`{"from":"since snapshot nightly/s1: …","partitions":[{"partition":0,"start":5,"end":10},{"partition":1,"start":0,"end":4611686018427387907}]}`),
	}
	start := time.Now()
	if err := store.SavePlan(ctx, plan); err != nil {
		t.Fatalf("SavePlan: %v", err)
	}
	saved := time.Since(start)
	start = time.Now()
	got, ok, err := store.LoadPlan(ctx, "g", "T", "X")
	if err != nil || !ok {
		t.Fatalf("LoadPlan = %v, %v", ok, err)
	}
	t.Logf("SavePlan (creates the index): %s, LoadPlan: %s", saved.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if got.Topic != plan.Topic || got.Group != plan.Group || got.Index != plan.Index || !got.Created.Equal(plan.Created) || string(got.Body) != string(plan.Body) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, plan)
	}
	if _, ok, _ := store.LoadPlan(ctx, "g", "T", "Y"); ok {
		t.Error("a plan for another index was found")
	}
	if _, ok, _ := store.LoadPlan(ctx, "g2", "T", "X"); ok {
		t.Error("a plan for another group was found")
	}
	// Replace, then delete.
	plan.Body = json.RawMessage(`{"partitions":[{"partition":0,"start":5,"end":11}]}`)
	if err := store.SavePlan(ctx, plan); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := store.LoadPlan(ctx, "g", "T", "X"); string(got.Body) != string(plan.Body) {
		t.Errorf("replaced plan not loaded: %+v", got)
	}
	if n := countKind(t, cl, store.Index(), kindPlan); n != 1 {
		t.Errorf("%d plan documents, want 1", n)
	}
	if err := store.DeletePlan(ctx, "g", "T", "X"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := store.LoadPlan(ctx, "g", "T", "X"); ok || err != nil {
		t.Errorf("LoadPlan after DeletePlan = %v, %v", ok, err)
	}
	if err := store.DeletePlan(ctx, "g", "T", "X"); err != nil {
		t.Errorf("deleting a missing plan: %v", err)
	}
	if err := store.SavePlan(ctx, Plan{Topic: "T", Index: "X", Body: json.RawMessage(`{}`)}); err == nil {
		t.Error("a plan without a group must be refused")
	}
}

// countingHandler logs to the test and counts warnings.
type countingHandler struct {
	slog.Handler
	warnings *atomic.Int64
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.warnings.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return countingHandler{h.Handler.WithAttrs(as), h.warnings}
}

func (h countingHandler) WithGroup(name string) slog.Handler {
	return countingHandler{h.Handler.WithGroup(name), h.warnings}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestWriterIntegration(t *testing.T) {
	_, cl, store := newStore(t)
	var warnings atomic.Int64
	logger := slog.New(countingHandler{slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}), &warnings})
	current := func(group string) func() map[int32]int64 {
		return func() map[int32]int64 {
			got, err := store.Before(t.Context(), "T", "TID", "X", time.Now().Add(time.Hour))
			if err != nil {
				t.Fatalf("Before: %v", err)
			}
			out := map[int32]int64{}
			for p, cp := range got {
				if cp.Group == group {
					out[p] = cp.Offset
				}
			}
			return out
		}
	}

	// Periodic writes of what changed.
	w := NewWriter(store, "g", "T", "X", 100*time.Millisecond, 0, logger)
	w.SetCoverage(Coverage{TopicID: "TID", Others: true})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	start := time.Now()
	w.Observe(map[int32]int64{0: 10, 1: 20})
	now := current("g")
	waitFor(t, 10*time.Second, "first offsets written", func() (bool, string) {
		got := now()
		return maps.Equal(got, map[int32]int64{0: 10, 1: 20}), fmt.Sprint(got)
	})
	t.Logf("Observe to visible checkpoint (interval 100ms): %s", time.Since(start).Round(time.Millisecond))
	w.Observe(map[int32]int64{0: 11, 1: 20}) // partition 1 unchanged
	waitFor(t, 10*time.Second, "changed offset written", func() (bool, string) {
		got := now()
		return got[0] == 11, fmt.Sprint(got)
	})
	ticks := w.ticks.Load()
	waitFor(t, 10*time.Second, "three more ticks", func() (bool, string) {
		return w.ticks.Load() >= ticks+3, fmt.Sprint(w.ticks.Load())
	})
	if docs, writes := versions(t, cl, store.Index(), "g", 1); writes != 1 {
		t.Errorf("unchanged partition 1 was written %d times (%d documents), want once", writes, docs)
	}
	if docs, writes := versions(t, cl, store.Index(), "g", 0); writes != 2 {
		t.Errorf("partition 0 (two distinct offsets) was written %d times (%d documents), want twice", writes, docs)
	}

	// A final write when the context ends, even with a long interval.
	w2 := NewWriter(store, "g2", "T", "X", time.Hour, 0, logger)
	w2.SetCoverage(Coverage{TopicID: "TID", Complete: map[int32]bool{2: true}})
	ctx2, cancel2 := context.WithCancel(t.Context())
	done2 := make(chan struct{})
	go func() { defer close(done2); w2.Run(ctx2) }()
	waitFor(t, 10*time.Second, "first tick of the second writer", func() (bool, string) {
		return w2.ticks.Load() >= 1, ""
	})
	w2.Observe(map[int32]int64{2: 7})
	start = time.Now()
	cancel2()
	select {
	case <-done2:
	case <-time.After(FinalWriteTimeout + 5*time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	t.Logf("Run returned %s after cancel (final write included)", time.Since(start).Round(time.Millisecond))
	now2 := current("g2")
	waitFor(t, 10*time.Second, "final write on cancel", func() (bool, string) {
		got := now2()
		return got[2] == 7, fmt.Sprint(got)
	})
	if n := warnings.Load(); n != 0 {
		t.Errorf("%d warnings logged", n)
	}
}

func TestWriterSurvivesOutageIntegration(t *testing.T) {
	// A store whose cluster does not answer: Run logs, keeps going, and
	// returns promptly when cancelled.
	cfg := opensearchapi.Config{}
	cfg.Client.Addresses = []string{"http://127.0.0.1:1"} // nothing listens on port 1
	cfg.Client.DisableRetry = true
	dead, err := opensearchapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var warnings atomic.Int64
	logger := slog.New(countingHandler{slog.NewTextHandler(io.Discard, nil), &warnings})
	w := NewWriter(NewStore(dead, "ckpt-test-unreachable"), "g", "T", "X", 50*time.Millisecond, 0, logger)
	w.Observe(map[int32]int64{0: 1})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	waitFor(t, 10*time.Second, "failures logged on several ticks", func() (bool, string) {
		return warnings.Load() >= 3, fmt.Sprint(warnings.Load())
	})
	cancel()
	select {
	case <-done:
	case <-time.After(FinalWriteTimeout + 5*time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestSnapshotInfoIntegration(t *testing.T) {
	env := itest.Services(t)
	if env.SnapshotDir == "" {
		t.Fatalf("OPENSEARCH_SNAPSHOT_DIR is not set (process environment or %s): the snapshot tests need the node's path.repo", itest.ServicesEnvFile)
	}
	cl := itest.OpenSearch(t, env)
	ctx := t.Context()
	repo := itest.Name(t, "ckpt-test")
	location := filepath.Join(env.SnapshotDir, repo)
	_, err := cl.Snapshot.Repository.Create(ctx, opensearchapi.SnapshotRepositoryCreateReq{
		Repo: repo,
		Body: strings.NewReader(fmt.Sprintf(`{"type":"fs","settings":{"location":%q}}`, location)),
	})
	if err != nil {
		t.Fatalf("register fs repository %s at %s: %v", repo, location, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := cl.Snapshot.Repository.Delete(ctx, opensearchapi.SnapshotRepositoryDeleteReq{Repos: []string{repo}}); err != nil {
			t.Errorf("delete repository %s: %v", repo, err)
		}
		if err := os.RemoveAll(location); err != nil {
			t.Errorf("remove %s: %v", location, err)
		}
	})
	idx := itest.Name(t, "ckpt-test")
	itest.CreateIndex(t, env, idx, `{"settings":{"number_of_shards":2,"number_of_replicas":0}}`)
	if _, err := cl.Index(ctx, opensearchapi.IndexReq{Index: idx, DocumentID: "1", Body: strings.NewReader(`{"a":1}`)}); err != nil {
		t.Fatal(err)
	}

	before := time.Now()
	wait := true
	snap := "snap-1"
	res, err := cl.Snapshot.Create(ctx, opensearchapi.SnapshotCreateReq{
		Repo: repo, Snapshot: snap,
		Body:   strings.NewReader(fmt.Sprintf(`{"indices":%q,"include_global_state":false}`, idx)),
		Params: opensearchapi.SnapshotCreateParams{WaitForCompletion: &wait},
	})
	if err != nil {
		t.Fatalf("create snapshot: %v", err)
	}
	after := time.Now()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := cl.Snapshot.Delete(ctx, opensearchapi.SnapshotDeleteReq{Repo: repo, Snapshots: []string{snap}}); err != nil {
			t.Errorf("delete snapshot %s/%s: %v", repo, snap, err)
		}
	})
	if res.Snapshot.State != SnapshotSuccess {
		t.Fatalf("snapshot state %s", res.Snapshot.State)
	}

	start := time.Now()
	info, err := SnapshotInfo(ctx, cl, repo, snap)
	if err != nil {
		t.Fatalf("SnapshotInfo: %v", err)
	}
	t.Logf("SnapshotInfo: %s; %+v", time.Since(start).Round(time.Millisecond), info)
	if info.Name != snap || info.Repo != repo || info.State != SnapshotSuccess || info.UUID == "" || info.Version == "" ||
		len(info.Indices) != 1 || info.Indices[0] != idx || info.ShardsTotal != 2 || info.ShardsSuccessful != 2 || info.ShardsFailed != 0 {
		t.Errorf("SnapshotInfo = %+v", info)
	}
	// Same machine, same clock: the start lies within the create call.
	if info.Start.Before(before.Add(-time.Second)) || info.Start.After(after.Add(time.Second)) || info.End.Before(info.Start) {
		t.Errorf("start %s, end %s; the create call ran from %s to %s", info.Start, info.End, before.UTC(), after.UTC())
	}
	if err := info.Usable(idx); err != nil {
		t.Errorf("Usable: %v", err)
	}

	_, err = SnapshotInfo(ctx, cl, repo, "no-such-snapshot")
	if !errors.Is(err, ErrSnapshotMissing) || !strings.Contains(err.Error(), repo) || !strings.Contains(err.Error(), "no-such-snapshot") {
		t.Errorf("missing snapshot: %v", err)
	}
	t.Logf("missing snapshot: %v", err)
	_, err = SnapshotInfo(ctx, cl, "ckpt-test-no-such-repo", "s")
	if !errors.Is(err, ErrRepositoryMissing) || !strings.Contains(err.Error(), "ckpt-test-no-such-repo") {
		t.Errorf("missing repository: %v", err)
	}
	t.Logf("missing repository: %v", err)
}
