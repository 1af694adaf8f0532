//go:build integration

package parity

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/reindexer/reindexer/event"
	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/reindexer/reindexer/internal/osreq"
	"github.com/reindexer/reindexer/internal/refmodel"
	"github.com/twmb/franz-go/pkg/kgo"
)

var modes = []Mode{ModeCount, ModeSample, ModeFull}

// want is the exact difference a comparison must report.
type want struct {
	onlyLeft, onlyRight []string
	versions            []VersionDiff
	buckets             []Bucket // with cfg.Bucket set
}

// check runs every mode on cfg and compares the Result with w: the verdict,
// the counts (left and right given), the diff in every mode (net counts in
// count mode, exact ids in full mode, and in sample mode, whose sample
// covers the whole left side, exactly the ids only on the left and at other
// versions), and the differing buckets.
func check(t *testing.T, cfg Config, leftCount, rightCount int64, w want) {
	t.Helper()
	for _, m := range modes {
		cfg.Mode = m
		cfg.Sample = 1 << 20 // the whole left side: the sample's answer is exact
		res := cmp(t, cfg)
		n := int64(len(w.onlyLeft) + len(w.onlyRight) + len(w.versions))
		if m == ModeCount {
			n = 0 // counts cannot see versions
		}
		for _, b := range w.buckets {
			n = max(n, b.Left-b.Right, b.Right-b.Left)
		}
		verdict := VerdictEqual
		if n > cfg.Tolerance || leftCount-rightCount > cfg.Tolerance || rightCount-leftCount > cfg.Tolerance {
			verdict = VerdictDrift
		}
		if res.Verdict != verdict {
			t.Errorf("%s: verdict %s, want %s (%+v)", m, res.Verdict, verdict, res)
		}
		if res.Left.Count != leftCount || res.Right.Count != rightCount {
			t.Errorf("%s: counts %d/%d, want %d/%d", m, res.Left.Count, res.Right.Count, leftCount, rightCount)
		}
		if cfg.Bucket != "" {
			if !slices.Equal(res.Buckets, w.buckets) {
				t.Errorf("%s: buckets %+v, want %+v", m, res.Buckets, w.buckets)
			}
			if res.Diff.Buckets != int64(len(w.buckets)) {
				t.Errorf("%s: %d differing buckets, want %d", m, res.Diff.Buckets, len(w.buckets))
			}
		}
		switch m {
		case ModeCount:
			if d := res.Diff; d.OnlyLeft != max(leftCount-rightCount, 0) || d.OnlyRight != max(rightCount-leftCount, 0) {
				t.Errorf("count: diff %+v, want net %d", d, leftCount-rightCount)
			}
		case ModeSample:
			if res.Sampled != int(leftCount) {
				t.Errorf("sample: sampled %d, want all %d", res.Sampled, leftCount)
			}
			checkIDs(t, m, res, w.onlyLeft, nil, w.versions)
		case ModeFull:
			checkIDs(t, m, res, w.onlyLeft, w.onlyRight, w.versions)
		}
	}
}

func checkIDs(t *testing.T, m Mode, res Result, onlyLeft, onlyRight []string, versions []VersionDiff) {
	t.Helper()
	d := res.Diff
	if d.OnlyLeft != int64(len(onlyLeft)) || d.OnlyRight != int64(len(onlyRight)) || d.VersionDiffers != int64(len(versions)) {
		t.Errorf("%s: diff %+v, want %d only left, %d only right, %d versions", m, d, len(onlyLeft), len(onlyRight), len(versions))
	}
	sortedIDs := func(ids []string) []string { ids = slices.Clone(ids); sort.Strings(ids); return ids }
	if m == ModeSample {
		// A sample lists its ids in sample order: any MaxIDs of them.
		if len(res.IDs.OnlyLeft) != min(len(onlyLeft), DefaultMaxIDs) {
			t.Errorf("%s: %d ids listed only left, want %d", m, len(res.IDs.OnlyLeft), min(len(onlyLeft), DefaultMaxIDs))
		}
		for _, id := range res.IDs.OnlyLeft {
			if !slices.Contains(onlyLeft, id) {
				t.Errorf("%s: %s listed only left, want one of %v", m, id, onlyLeft)
			}
		}
		onlyLeft = sortedIDs(res.IDs.OnlyLeft)
	}
	if got, want := sortedIDs(res.IDs.OnlyLeft), capped(onlyLeft, DefaultMaxIDs); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Errorf("%s: only left %v, want %v", m, got, want)
	}
	if got, want := sortedIDs(res.IDs.OnlyRight), capped(onlyRight, DefaultMaxIDs); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Errorf("%s: only right %v, want %v", m, got, want)
	}
	gotV := slices.Clone(res.IDs.VersionDiffers)
	slices.SortFunc(gotV, func(a, b VersionDiff) int { return strings.Compare(a.ID, b.ID) })
	if !slices.Equal(gotV, versions) {
		t.Errorf("%s: versions %+v, want %+v", m, gotV, versions)
	}
}

// TestParityIndices: equal indices are equal in every mode; then each kind
// of drift, injected alone into a copy, is reported exactly.
func TestParityIndices(t *testing.T) {
	env := itest.Services(t)
	cl := itest.OpenSearch(t, env)
	events := chatStream(1, 3000)
	model := itest.Model(t, refmodel.ModeDelete, events)
	ids := live(model)
	n := int64(len(ids))
	base := indexOf(t, env, cl, model)
	pair := func(right string) Config {
		return Config{Left: Side{Client: cl, Index: base}, Right: Side{Client: cl, Index: right}}
	}
	// Per-room and per-day counts of the model, to state the buckets.
	room := map[string][]string{}
	day := map[string][]string{}
	for _, id := range ids {
		room[field(t, model[id].Source, "room_id")] = append(room[field(t, model[id].Source, "room_id")], id)
		d := field(t, model[id].Source, "created_at")[:10] + "T00:00:00Z"
		day[d] = append(day[d], id)
	}
	if len(day) < 3 {
		t.Fatalf("the stream spans %d days, want at least 3", len(day))
	}

	t.Run("equal", func(t *testing.T) {
		right := indexOf(t, env, cl, model)
		for _, b := range []string{"", "room_id", "created_at:1d", "created_at:6h"} {
			cfg := pair(right)
			cfg.Bucket = b
			check(t, cfg, n, n, want{})
		}
	})

	t.Run("missing in one bucket", func(t *testing.T) {
		right := indexOf(t, env, cl, model)
		gone := room["r3"][:7]
		deleteIDs(t, cl, right, gone)
		cfg := pair(right)
		cfg.Bucket = "room_id"
		r3 := int64(len(room["r3"]))
		check(t, cfg, n, n-7, want{onlyLeft: gone, buckets: []Bucket{{Key: "r3", Left: r3, Right: r3 - 7}}})
		// One bucket per document: more buckets than one composite page
		// holds, so the merge pages through both sides.
		if len(ids) <= 2*bucketPageSize/2 {
			t.Fatalf("%d documents, want more than one page of buckets", len(ids))
		}
		cfg.Bucket = "message_id"
		cfg.Mode = ModeCount
		var perID []Bucket
		for _, id := range capped(gone, len(gone)) {
			perID = append(perID, Bucket{Key: id, Left: 1, Right: 0})
		}
		res := cmp(t, cfg)
		if res.Diff.Buckets != 7 || !slices.Equal(res.Buckets, perID) {
			t.Errorf("per-id buckets: %d differ, %+v; want %+v", res.Diff.Buckets, res.Buckets, perID)
		}
	})

	t.Run("extra documents", func(t *testing.T) {
		extra := maps.Clone(model)
		var added []string
		for i := range 5 {
			id := fmt.Sprintf("extra-%d", i)
			extra[id] = refmodel.Doc{Version: 1, Source: json.RawMessage(`{"room_id":"r-new","created_at":"2024-11-24T12:00:00Z"}`)}
			added = append(added, id)
		}
		right := indexOf(t, env, cl, extra)
		cfg := pair(right)
		cfg.Bucket = "room_id"
		check(t, cfg, n, n+5, want{onlyRight: added, buckets: []Bucket{{Key: "r-new", Left: 0, Right: 5}}})
		cfg.Tolerance = 5
		check(t, cfg, n, n+5, want{onlyRight: added, buckets: []Bucket{{Key: "r-new", Left: 0, Right: 5}}})
	})

	t.Run("older versions", func(t *testing.T) {
		older := maps.Clone(model)
		var versions []VersionDiff
		for _, id := range ids[10:14] {
			d := older[id]
			versions = append(versions, VersionDiff{ID: id, Left: d.Version, Right: d.Version - 1})
			d.Version--
			older[id] = d
		}
		right := indexOf(t, env, cl, older)
		cfg := pair(right)
		cfg.Bucket = "created_at:1d"
		check(t, cfg, n, n, want{versions: versions})
	})

	t.Run("deleted range", func(t *testing.T) {
		right := indexOf(t, env, cl, model)
		days := slices.Sorted(maps.Keys(day))
		gone := day[days[1]]
		deleteIDs(t, cl, right, gone)
		cfg := pair(right)
		cfg.Bucket = "created_at:1d"
		k := int64(len(gone))
		check(t, cfg, n, n-k, want{onlyLeft: gone, buckets: []Bucket{{Key: days[1], Left: k, Right: 0}}})
	})

	t.Run("tombstone-mode copy", func(t *testing.T) {
		tmodel := itest.Model(t, refmodel.ModeTombstone, events)
		right := indexOf(t, env, cl, tmodel)
		tombstones := int64(len(tmodel) - len(ids))
		if tombstones == 0 {
			t.Fatal("the stream has no deletes")
		}
		cfg := pair(right)
		cfg.Bucket = "room_id"
		check(t, cfg, n, n, want{})
		cfg.Mode = ModeFull
		res := cmp(t, cfg)
		if res.Left.Tombstones != 0 || res.Right.Tombstones != tombstones {
			t.Errorf("tombstones %d/%d, want 0/%d", res.Left.Tombstones, res.Right.Tombstones, tombstones)
		}
		// A tombstone where the other side has a live document is drift.
		live := maps.Clone(tmodel)
		var revived []string
		for id, d := range tmodel {
			if d.Tombstone && len(revived) < 3 {
				revived = append(revived, id)
				live[id] = refmodel.Doc{Version: d.Version, Source: json.RawMessage(`{"room_id":"r1"}`)}
			}
		}
		sort.Strings(revived)
		check(t, Config{Left: Side{Client: cl, Index: indexOf(t, env, cl, live)}, Right: Side{Client: cl, Index: right}}, n+3, n, want{onlyLeft: revived})
	})

	t.Run("custom routing", func(t *testing.T) {
		// Documents routed by room: a lookup by id alone would look on the
		// wrong shard for about half of them.
		routed := func() string {
			name := newIndex(t, env, "parity-routed")
			var body bytes.Buffer
			for _, id := range ids {
				d := model[id]
				fmt.Fprintf(&body, `{"index":{"_index":%q,"_id":%q,"routing":%q,"version":%d,"version_type":"external"}}`+"\n",
					name, id, field(t, d.Source, "room_id"), d.Version)
				body.Write(d.Source)
				body.WriteByte('\n')
			}
			bulk(t, cl, body.Bytes())
			refresh(t, cl, name)
			return name
		}
		check(t, Config{Left: Side{Client: cl, Index: routed()}, Right: Side{Client: cl, Index: routed()}}, n, n, want{})
	})

	t.Run("full mode spills", func(t *testing.T) {
		right := indexOf(t, env, cl, model)
		cfg := pair(right)
		cfg.Mode = ModeFull
		cfg.MemoryBytes = 1 << 16 // a few KB of ids per run: every side spills
		cfg.PageSize = 500
		res := cmp(t, cfg)
		if res.Verdict != VerdictEqual || res.Left.Count != n || res.SpilledRuns < 2 {
			t.Errorf("got %+v, want equal, %d docs, spilled runs", res, n)
		}
	})
}

// TestParitySettle: differences inside the settle window are left out on
// both sides; one outside it is reported.
func TestParitySettle(t *testing.T) {
	env := itest.Services(t)
	cl := itest.OpenSearch(t, env)
	events := chatStream(3, 2000)
	model := itest.Model(t, refmodel.ModeDelete, events)
	ids := live(model)
	sort.Slice(ids, func(i, j int) bool {
		return field(t, model[ids[i]].Source, "created_at") < field(t, model[ids[j]].Source, "created_at")
	})
	// The cutoff: the created_at of the 90th percentile document.
	cutAt := ids[len(ids)*9/10]
	cutoff, err := time.Parse(time.RFC3339Nano, field(t, model[cutAt].Source, "created_at"))
	if err != nil {
		t.Fatal(err)
	}
	recent := ids[len(ids)*9/10:]
	old := ids[:len(ids)*9/10]
	drifted := maps.Clone(model)
	for _, id := range recent[:5] {
		delete(drifted, id) // not yet indexed on the right
	}
	for _, id := range recent[5:8] {
		d := drifted[id]
		d.Version-- // an older version on the right
		drifted[id] = d
	}
	delete(drifted, old[0]) // real drift
	base := indexOf(t, env, cl, model)
	right := indexOf(t, env, cl, drifted)
	cfg := Config{
		Left: Side{Client: cl, Index: base}, Right: Side{Client: cl, Index: right},
		Settle: time.Hour, TimeField: "created_at", Now: func() time.Time { return cutoff.Add(time.Hour) },
	}
	settled := int64(len(old))
	check(t, cfg, settled, settled-1, want{onlyLeft: []string{old[0]}})
	cfg.Settle, cfg.TimeField = 0, ""
	all := int64(len(ids))
	res := cmp(t, Config{Left: cfg.Left, Right: cfg.Right, Mode: ModeFull})
	if res.Left.Count != all || res.Diff.OnlyLeft != 6 || res.Diff.VersionDiffers != 3 {
		t.Errorf("without settle: %+v, want 6 only left and 3 versions of %d", res.Diff, all)
	}
}

// TestParityCouldNotCheck: an unreachable cluster, a missing index, failed
// shards and a closed index are "could not check", never a number.
func TestParityCouldNotCheck(t *testing.T) {
	env := itest.Services(t)
	cl := itest.OpenSearch(t, env)
	model := itest.Model(t, refmodel.ModeDelete, chatStream(4, 300))
	good := indexOf(t, env, cl, model)
	dead, err := opensearchapi.NewClient(opensearchapi.Config{Client: opensearch.Config{Addresses: []string{"http://127.0.0.1:1"}, DisableRetry: true}})
	if err != nil {
		t.Fatal(err)
	}
	// keyword-typed created_at: a date histogram fails on this index's shards.
	other := itest.Name(t, "parity-kw")
	itest.CreateIndex(t, env, other, `{"settings":{"number_of_shards":1,"number_of_replicas":0},"mappings":{"properties":{"created_at":{"type":"keyword"}}}}`)
	loadDocs(t, cl, other, map[string]refmodel.Doc{"x": {Version: 1, Source: json.RawMessage(`{"created_at":"2024-11-24T12:00:00Z"}`)}})
	// integer-typed created_at: a settle range of epoch milliseconds is out
	// of range on this index's shard, so _count answers 200 with a failed
	// shard.
	intIndex := itest.Name(t, "parity-int")
	itest.CreateIndex(t, env, intIndex, `{"settings":{"number_of_shards":1,"number_of_replicas":0},"mappings":{"properties":{"created_at":{"type":"integer"}}}}`)
	loadDocs(t, cl, intIndex, map[string]refmodel.Doc{"x": {Version: 1, Source: json.RawMessage(`{"created_at":5}`)}})
	closed := newIndex(t, env, "parity-closed")
	if _, err := osreq.Do(t.Context(), cl, http.MethodPost, "/"+closed+"/_close", nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		cfg    Config
		reason string
	}{
		{"unreachable", Config{Left: Side{Client: cl, Index: good}, Right: Side{Client: dead, Index: good}}, "connection refused"},
		{"missing index", Config{Left: Side{Client: cl, Index: good}, Right: Side{Client: cl, Index: good + "-missing"}}, "no such index"},
		{"failed shards", Config{Left: Side{Client: cl, Index: good}, Right: Side{Client: cl, Index: good + "," + other}, Bucket: "created_at:1d"}, "1 of 3 shards failed"},
		{"failed shard in a count", Config{Left: Side{Client: cl, Index: good}, Right: Side{Client: cl, Index: good + "," + intIndex},
			Settle: time.Hour, TimeField: "created_at"}, "1 of 3 shards failed: query_shard_exception"},
		{"unreachable Kafka", Config{Left: Side{Client: cl, Index: good}, Right: Side{Topic: &Topic{
			Kafka: []kgo.Opt{kgo.SeedBrokers("127.0.0.1:1")}, Topic: "parity-nowhere"}}}, "connection refused"},
		{"closed index", Config{Left: Side{Client: cl, Index: good + "," + closed}, Right: Side{Client: cl, Index: good}}, "closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, m := range modes {
				tc.cfg.Mode = m
				res, err := Compare(t.Context(), tc.cfg)
				if err == nil || res.Verdict != VerdictError || !strings.Contains(res.Error, tc.reason) {
					t.Errorf("%s: got %v, verdict %s, error %q; want could not check with %q", m, err, res.Verdict, res.Error, tc.reason)
				}
			}
		})
	}
}

// topicSide reads topic with the default envelope.
func topicSide(env *itest.Env, topic string) Side {
	return Side{Topic: &Topic{Kafka: []kgo.Opt{kgo.SeedBrokers(env.KafkaBrokers...)}, Topic: topic, Decoder: event.Config{}}}
}

// TestParityTopic: the live ids and versions a topic implies equal the
// reference model's, in memory and when they spill to disk; drift against
// the index is reported exactly.
func TestParityTopic(t *testing.T) {
	env := itest.Services(t)
	cl := itest.OpenSearch(t, env)
	events := chatStream(5, 20000)
	topic := itest.Name(t, "parity")
	itest.CreateTopic(t, env, topic, 3)
	itest.Produce(t, env, topic, events)
	model := itest.Model(t, refmodel.ModeDelete, events)
	tmodel := itest.Model(t, refmodel.ModeTombstone, events)
	ids := live(model)
	n, deleted := int64(len(ids)), int64(len(tmodel)-len(ids))
	index := indexOf(t, env, cl, model)
	for _, mem := range []int64{DefaultMemoryBytes, 1 << 20} {
		t.Run(fmt.Sprintf("memory %d", mem), func(t *testing.T) {
			for _, m := range modes {
				res := cmp(t, Config{Left: Side{Client: cl, Index: index}, Right: topicSide(env, topic), Mode: m, MemoryBytes: mem, Sample: 5000})
				if res.Verdict != VerdictEqual || res.Right.Count != n || res.Right.Tombstones != deleted || res.Left.Count != n {
					t.Errorf("%s: %+v; want equal, %d live and %d deleted ids", m, res, n, deleted)
				}
				if m == ModeSample && res.Sampled != 5000 {
					t.Errorf("sample: sampled %d", res.Sampled)
				}
				if spilled := res.SpilledRuns > 0; spilled != (mem < DefaultMemoryBytes) {
					t.Errorf("%s: spilled %d runs with %d bytes", m, res.SpilledRuns, mem)
				}
			}
		})
	}
	t.Run("drift", func(t *testing.T) {
		drifted := maps.Clone(model)
		gone := ids[100:105]
		for _, id := range gone {
			delete(drifted, id)
		}
		var versions []VersionDiff
		for _, id := range ids[200:202] {
			d := drifted[id]
			versions = append(versions, VersionDiff{ID: id, Left: d.Version - 1, Right: d.Version})
			d.Version--
			drifted[id] = d
		}
		cfg := Config{Left: Side{Client: cl, Index: indexOf(t, env, cl, drifted)}, Right: topicSide(env, topic), MemoryBytes: 1 << 20}
		cfg.Mode = ModeFull
		res := cmp(t, cfg)
		if res.Verdict != VerdictDrift || res.Left.Count != n-5 || res.Right.Count != n {
			t.Errorf("full: %+v", res)
		}
		checkIDs(t, ModeFull, res, nil, gone, versions)
		cfg.Mode = ModeCount
		if res := cmp(t, cfg); res.Verdict != VerdictDrift || res.Diff.OnlyRight != 5 {
			t.Errorf("count: %+v", res)
		}
	})
	t.Run("settle", func(t *testing.T) {
		// The index has not caught up with the newest documents yet: the
		// settle window (read from each upsert's created_at on the topic
		// side) leaves them out of both sides.
		byCreated := slices.Clone(ids)
		sort.Slice(byCreated, func(i, j int) bool {
			return field(t, model[byCreated[i]].Source, "created_at") < field(t, model[byCreated[j]].Source, "created_at")
		})
		recent := byCreated[len(byCreated)*19/20:]
		cutoff, err := time.Parse(time.RFC3339Nano, field(t, model[recent[0]].Source, "created_at"))
		if err != nil {
			t.Fatal(err)
		}
		lagging := maps.Clone(model)
		for _, id := range recent {
			delete(lagging, id)
		}
		cfg := Config{Left: Side{Client: cl, Index: indexOf(t, env, cl, lagging)}, Right: topicSide(env, topic), MemoryBytes: 1 << 20,
			Settle: time.Minute, TimeField: "created_at", Now: func() time.Time { return cutoff.Add(time.Minute) }}
		settled := n - int64(len(recent))
		for _, m := range modes {
			cfg.Mode = m
			if res := cmp(t, cfg); res.Verdict != VerdictEqual || res.Left.Count != settled || res.Right.Count != settled {
				t.Errorf("%s: %+v; want equal, %d settled documents", m, res, settled)
			}
		}
		cfg.Settle, cfg.TimeField, cfg.Mode = 0, "", ModeFull
		if res := cmp(t, cfg); res.Diff.OnlyRight != int64(len(recent)) {
			t.Errorf("without settle: %+v; want %d only on the topic", res.Diff, len(recent))
		}
	})
	t.Run("tombstone-mode index", func(t *testing.T) {
		res := cmp(t, Config{Left: Side{Client: cl, Index: indexOf(t, env, cl, tmodel)}, Right: topicSide(env, topic), Mode: ModeFull})
		if res.Verdict != VerdictEqual || res.Left.Tombstones != deleted || res.Right.Tombstones != deleted {
			t.Errorf("%+v", res)
		}
	})
	t.Run("missing topic", func(t *testing.T) {
		_, err := Compare(t.Context(), Config{Left: Side{Client: cl, Index: index}, Right: topicSide(env, topic+"-missing")})
		if err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("got %v", err)
		}
	})
	// Last, as it appends to the topic: a topic that grows while it is read
	// is read up to the end offsets captured when the check began.
	t.Run("bounded while the topic grows", func(t *testing.T) {
		prod := itest.Kafka(t, env, kgo.RequiredAcks(kgo.AllISRAcks()))
		type at struct {
			p int32
			o int64
		}
		var mu sync.Mutex
		var late []at
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			for i := 0; ctx.Err() == nil; i++ {
				r := itest.Record(topic, chatgen.Event{Op: chatgen.OpUpsert, ID: fmt.Sprintf("late-%06d", i), Version: 1, Doc: json.RawMessage(`{"room_id":"r1"}`)})
				if prod.ProduceSync(ctx, r).FirstErr() == nil {
					mu.Lock()
					late = append(late, at{r.Partition, r.Offset})
					mu.Unlock()
				}
			}
		}()
		produced := func() int {
			mu.Lock()
			defer mu.Unlock()
			return len(late)
		}
		for produced() < 20 {
			select {
			case <-stopped:
				t.Fatal("the producer stopped")
			case <-time.After(10 * time.Millisecond):
			}
		}
		res := cmp(t, Config{Left: Side{Client: cl, Index: index}, Right: topicSide(env, topic), Mode: ModeFull, MemoryBytes: 1 << 20})
		for n0 := produced(); produced() < n0+20; { // the producer outlives the check
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		<-stopped
		var included int64
		for _, a := range late {
			if a.o < res.Right.EndOffsets[a.p] {
				included++
			}
		}
		if included == 0 || included == int64(len(late)) {
			t.Fatalf("%d of %d late records below the end offsets %v; want some, not all", included, len(late), res.Right.EndOffsets)
		}
		if res.Right.Count != n+included || res.Diff.OnlyRight != included || res.Diff.OnlyLeft != 0 || res.Diff.VersionDiffers != 0 {
			t.Errorf("%+v; want exactly the %d late ids below the end offsets only on the topic", res, included)
		}
		for _, id := range res.IDs.OnlyRight {
			if !strings.HasPrefix(id, "late-") {
				t.Errorf("only on the topic: %s, not a late id", id)
			}
		}
	})
}

// TestParityTopicEscapedIDs: ids escaped in the envelope's JSON (\u
// escapes, quotes, backslashes) are compared as the index stores them,
// unescaped.
func TestParityTopicEscapedIDs(t *testing.T) {
	env := itest.Services(t)
	cl := itest.OpenSearch(t, env)
	topic := itest.Name(t, "parity")
	itest.CreateTopic(t, env, topic, 1)
	values := []string{
		`{"op":"upsert","id":"caf\u00e9-1","version":3,"doc":{"room_id":"r1"}}`,
		`{"op":"upsert","id":"quote\"d","version":4,"doc":{"room_id":"r1"}}`,
		`{"op":"upsert","id":"back\\slash","version":5,"doc":{"room_id":"r1"}}`,
		`{"op":"upsert","id":"\u65e5\u672c-\ud83d\ude00","version":6,"doc":{"room_id":"r1"}}`,
		`{"op":"upsert","id":"gone","version":1,"doc":{"room_id":"r1"}}`,
		`{"op":"delete","id":"gone","version":2}`,
		`{"op":"upsert","id":"","version":1,"doc":{}}`, // dead-lettered by run: undecodable
	}
	prod := itest.Kafka(t, env)
	for _, v := range values {
		if err := prod.ProduceSync(t.Context(), &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	index := indexOf(t, env, cl, map[string]refmodel.Doc{
		"café-1":        {Version: 3, Source: json.RawMessage(`{"room_id":"r1"}`)},
		`quote"d`:       {Version: 4, Source: json.RawMessage(`{"room_id":"r1"}`)},
		`back\slash`:    {Version: 5, Source: json.RawMessage(`{"room_id":"r1"}`)},
		"日本-\U0001F600": {Version: 6, Source: json.RawMessage(`{"room_id":"r1"}`)},
	})
	res := cmp(t, Config{Left: Side{Client: cl, Index: index}, Right: topicSide(env, topic), Mode: ModeFull})
	if res.Verdict != VerdictEqual || res.Right.Count != 4 || res.Right.Tombstones != 1 || res.Right.Undecodable != 1 {
		t.Errorf("%+v; want equal, 4 live ids, 1 deleted, 1 undecodable", res)
	}
}
