package parity

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// collect drains a stream into copies of its items.
func collect(t *testing.T, st stream) []item {
	t.Helper()
	var out []item
	for it, ok := st.Next(); ok; it, ok = st.Next() {
		c := *it
		c.ID = append([]byte(nil), it.ID...)
		out = append(out, c)
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	st.Close()
	return out
}

// TestSorterOrdersAndSpills sorts the same random items with budgets that
// keep them in memory, spill a few runs, and spill more runs than one merge
// reads (a multi-pass merge), and checks each result against slices.SortFunc.
func TestSorterOrdersAndSpills(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var want []item
	for i := range 60000 {
		id := fmt.Sprintf("r%d-m%d", r.IntN(50), r.IntN(5000))
		if i%97 == 0 {
			id = "日本語-" + id
		}
		want = append(want, item{ID: []byte(id), Version: r.Int64N(100), Seq: int64(i), Flag: uint8(r.IntN(3))})
	}
	sorted := slices.Clone(want)
	slices.SortFunc(sorted, func(a, b item) int { return less(&a, &b) })
	for _, tc := range []struct {
		name      string
		budget    int64
		minSpills int
	}{
		{"memory", 64 << 20, 0},
		{"spill", 2 << 20, 2},
		{"multipass", 1 << 20, maxFanIn + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSorter(t.TempDir(), tc.budget)
			if tc.name == "multipass" {
				s.budget = 20000 // below newSorter's floor, to force more than maxFanIn runs
			}
			for _, it := range want {
				if err := s.Add(it.ID, it.Version, it.Seq, it.Flag); err != nil {
					t.Fatal(err)
				}
			}
			st, err := s.Finish()
			if err != nil {
				t.Fatal(err)
			}
			if s.Spills() < tc.minSpills {
				t.Fatalf("spilled %d runs, want at least %d", s.Spills(), tc.minSpills)
			}
			got := collect(t, st)
			if len(got) != len(sorted) {
				t.Fatalf("got %d items, want %d", len(got), len(sorted))
			}
			for i := range got {
				if less(&got[i], &sorted[i]) != 0 || got[i].Flag != sorted[i].Flag {
					t.Fatalf("item %d: got %s v%d s%d, want %s v%d s%d", i, got[i].ID, got[i].Version, got[i].Seq, sorted[i].ID, sorted[i].Version, sorted[i].Seq)
				}
			}
		})
	}
}

// memStreamOf sorts items in memory.
func memStreamOf(t *testing.T, items ...item) stream {
	t.Helper()
	s := newSorter(t.TempDir(), 64<<20)
	for _, it := range items {
		if err := s.Add(it.ID, it.Version, it.Seq, it.Flag); err != nil {
			t.Fatal(err)
		}
	}
	st, err := s.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func it(id string, v, seq int64, flag uint8) item {
	return item{ID: []byte(id), Version: v, Seq: seq, Flag: flag}
}

// TestLiveStreamLatestWins: the greatest version wins, the first on a tie,
// deletes count as tombstones and unsettled ids pass flagged.
func TestLiveStreamLatestWins(t *testing.T) {
	ls := &liveStream{in: memStreamOf(t,
		it("a", 1, 1, flagLive), it("a", 3, 2, flagDelete), it("a", 2, 3, flagLive), // deleted
		it("b", 5, 4, flagLive), it("b", 5, 5, flagDelete), // tie: first read wins
		it("c", 1, 6, flagDelete), it("c", 2, 7, flagLive), // re-created
		it("d", 9, 8, flagUnsettled), it("d", 1, 9, flagLive), // changed inside the window
	)}
	got := collect(t, ls)
	var ids []string
	for _, g := range got {
		ids = append(ids, fmt.Sprintf("%s:%d:%d", g.ID, g.Version, g.Flag))
	}
	if want := []string{"b:5:0", "c:2:0", "d:9:2"}; !slices.Equal(ids, want) {
		t.Fatalf("got %v, want %v", ids, want)
	}
	if ls.live != 2 || ls.tombstones != 1 || ls.unsettled != 1 {
		t.Fatalf("live %d tombstones %d unsettled %d, want 2 1 1", ls.live, ls.tombstones, ls.unsettled)
	}
}

// TestJoin reports exactly the ids on one side only and at different
// versions, caps the lists, and leaves unsettled ids out.
func TestJoin(t *testing.T) {
	c := &comparison{cfg: Config{MaxIDs: 2}}
	var left, right []item
	for i := range 10 {
		id := fmt.Sprintf("id%02d", i)
		left = append(left, it(id, 1, 0, flagLive))
		switch {
		case i < 3: // only left
		case i < 6:
			right = append(right, it(id, 2, 0, flagLive)) // version differs
		case i == 6:
			right = append(right, it(id, 2, 0, flagUnsettled)) // in the window: not compared
		default:
			right = append(right, it(id, 1, 0, flagLive))
		}
	}
	right = append(right, it("zz", 1, 0, flagLive), it("zy", 1, 0, flagUnsettled))
	res := Result{}
	if err := c.join(&liveStream{in: memStreamOf(t, left...)}, &liveStream{in: memStreamOf(t, right...)}, &res, false); err != nil {
		t.Fatal(err)
	}
	want := Diff{OnlyLeft: 3, OnlyRight: 1, VersionDiffers: 3}
	if res.Diff != want {
		t.Fatalf("diff %+v, want %+v", res.Diff, want)
	}
	if !slices.Equal(res.IDs.OnlyLeft, []string{"id00", "id01"}) || !slices.Equal(res.IDs.OnlyRight, []string{"zz"}) ||
		len(res.IDs.VersionDiffers) != 2 || res.IDs.VersionDiffers[0] != (VersionDiff{ID: "id03", Left: 1, Right: 2}) {
		t.Fatalf("ids %+v", res.IDs)
	}
}

func TestParseBucket(t *testing.T) {
	for in, want := range map[string]string{
		"room_id":       "room_id  false",
		"created_at:1d": "created_at 1d true",
		"created_at:1M": "created_at 1M true",
		"t:6h":          "t 6h false",
		"t:90m":         "t 90m false",
		"t:1ms":         "t 1ms false",
	} {
		s, err := parseBucket(in)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if got := fmt.Sprintf("%s %s %v", s.field, s.interval, s.calendar); got != want {
			t.Errorf("%s: got %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"", ":1d", "t:", "t:1x", "t:2M", "t:0d", "t:d"} {
		if _, err := parseBucket(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestCompareKeys(t *testing.T) {
	keys := []string{`null`, `-5`, `3`, `20`, `1704067200000`, `"A"`, `"a"`, `"b"`, `"日本"`}
	for i := range keys {
		for j := range keys {
			got := compareKeys(json.RawMessage(keys[i]), json.RawMessage(keys[j]))
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if (got < 0) != (want < 0) || (got > 0) != (want > 0) {
				t.Errorf("compareKeys(%s, %s) = %d, want sign %d", keys[i], keys[j], got, want)
			}
		}
	}
	if got := renderKey(bucketSpec{interval: "1d"}, json.RawMessage(`1704067200000`)); got != "2024-01-01T00:00:00Z" {
		t.Errorf("date key rendered %q", got)
	}
	if got := renderKey(bucketSpec{}, json.RawMessage(`null`)); got != MissingKey {
		t.Errorf("missing key rendered %q", got)
	}
}

func TestDocSettled(t *testing.T) {
	cut := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for doc, want := range map[string]bool{
		`{"t":"2025-12-31T23:59:59Z"}`:        true,
		`{"t":"2026-01-01T00:00:00Z"}`:        false,
		`{"t":"2026-01-01T00:00:00.5+00:00"}`: false,
		`{"t":"2025-12-31"}`:                  true,
		`{"t":1767225599999}`:                 true,
		`{"t":1767225600000}`:                 false,
		`{"t":"1767225600000"}`:               false,
		`{"x":1}`:                             true,
		`{"t":null}`:                          true,
		`{"a":{"t":"2026-02-01T00:00:00Z"}}`:  true,
	} {
		if got := docSettled([]byte(doc), []string{"t"}, cut); got != want {
			t.Errorf("%s: settled %v, want %v", doc, got, want)
		}
	}
	if docSettled([]byte(`{"a":{"t":"2026-02-01T00:00:00Z"}}`), timePath("a.t"), cut) {
		t.Error("a.t: want unsettled")
	}
}

func TestHasField(t *testing.T) {
	for src, want := range map[string]bool{`{"reindexer_tombstone":true}`: true, `{}`: false, ``: false, `{"reindexer_tombstone":null}`: false} {
		if got := hasField(json.RawMessage(src), []string{"reindexer_tombstone"}); got != want {
			t.Errorf("%q: %v, want %v", src, got, want)
		}
	}
}

func TestConfigChecks(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Mode: "fast"}, "mode"},
		{Config{}, "no OpenSearch client"},
	} {
		res, err := Compare(t.Context(), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) || res.Verdict != VerdictError || res.Error == "" {
			t.Errorf("%+v: got %v %+v, want error containing %q", tc.cfg, err, res, tc.want)
		}
	}
}
