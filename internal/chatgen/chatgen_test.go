package chatgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func testConfig(seed int64) Config {
	return Config{
		Seed: seed, IDs: 500, Rooms: 7, Senders: 20,
		EditProb: 0.3, DeleteProb: 0.08, RecreateProb: 0.04,
		DuplicateProb: 0.05, OutOfOrderProb: 0.05, TombstoneProb: 0.3,
	}
}

func values(t testing.TB, cfg Config, n int) [][]byte {
	t.Helper()
	g := MustNew(cfg)
	out := make([][]byte, n)
	for i := range out {
		v, m := g.AppendValue(nil)
		if m.Tombstone {
			// Make tombstones visible in the comparison.
			v = fmt.Appendf(nil, "TOMBSTONE %s %d", m.Key, m.Version)
		}
		out[i] = v
	}
	return out
}

func TestDeterministic(t *testing.T) {
	a := values(t, testConfig(7), 5000)
	b := values(t, testConfig(7), 5000)
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("event %d differs for the same seed:\n%s\n%s", i, a[i], b[i])
		}
	}
	c := values(t, testConfig(8), 5000)
	same := 0
	for i := range a {
		if bytes.Equal(a[i], c[i]) {
			same++
		}
	}
	if same > 0 {
		t.Errorf("%d of %d events are identical for different seeds", same, len(a))
	}
}

// TestNextMatchesAppendValue checks that the two paths produce the same bytes.
func TestNextMatchesAppendValue(t *testing.T) {
	cfg := testConfig(11)
	fast := MustNew(cfg)
	slow := MustNew(cfg)
	var buf []byte
	for i := range 5000 {
		var m Meta
		buf, m = fast.AppendValue(buf[:0])
		e := slow.Next()
		if got := e.Value(); !bytes.Equal(got, buf) {
			t.Fatalf("event %d: Next().Value() = %s\nAppendValue = %s", i, got, buf)
		}
		if e.ID != string(m.Key) || e.Version != m.Version || e.Op != m.Op || e.Kind != m.Kind || e.Tombstone != m.Tombstone {
			t.Fatalf("event %d: metadata differs: %+v vs %+v", i, e, m)
		}
		if !bytes.Equal(e.Doc, m.Doc) {
			t.Fatalf("event %d: doc differs", i)
		}
		if string(e.Key()) != e.ID {
			t.Fatalf("event %d: key %q != id %q", i, e.Key(), e.ID)
		}
	}
	if fast.Stats() != slow.Stats() {
		t.Errorf("stats differ: %+v vs %+v", fast.Stats(), slow.Stats())
	}
}

type chatDoc struct {
	MessageID   *string          `json:"message_id"`
	RoomID      *string          `json:"room_id"`
	RoomName    *string          `json:"room_name"`
	SenderID    *string          `json:"sender_id"`
	SenderName  *string          `json:"sender_name"`
	Body        *string          `json:"body"`
	Lang        *string          `json:"lang"`
	CreatedAt   *string          `json:"created_at"`
	EditedAt    *string          `json:"edited_at"`
	EditCount   *int             `json:"edit_count"`
	Attachments []map[string]any `json:"attachments"`
	Mentions    []string         `json:"mentions"`
	Reactions   map[string]int   `json:"reactions"`
	ReplyTo     *string          `json:"reply_to"`
	Client      *string          `json:"client"`
}

func checkDoc(t *testing.T, i int, e Event) {
	t.Helper()
	var d chatDoc
	dec := json.NewDecoder(bytes.NewReader(e.Doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("event %d: doc %s: %v", i, e.Doc, err)
	}
	switch {
	case d.MessageID == nil || *d.MessageID != e.ID:
		t.Fatalf("event %d: message_id does not match id %q: %s", i, e.ID, e.Doc)
	case d.RoomID == nil || !strings.HasPrefix(e.ID, *d.RoomID+"-m"):
		t.Fatalf("event %d: room_id does not prefix id: %s", i, e.Doc)
	case d.RoomName == nil || d.SenderID == nil || d.SenderName == nil || d.Body == nil || *d.Body == "" || d.Client == nil:
		t.Fatalf("event %d: missing field: %s", i, e.Doc)
	case d.Lang == nil || (*d.Lang != "ja" && *d.Lang != "en"):
		t.Fatalf("event %d: bad lang: %s", i, e.Doc)
	case d.EditCount == nil || d.Attachments == nil || d.Mentions == nil || d.Reactions == nil:
		t.Fatalf("event %d: missing edit_count, attachments, mentions or reactions: %s", i, e.Doc)
	}
	created, err := time.Parse("2006-01-02T15:04:05.000Z07:00", derefOr(d.CreatedAt, ""))
	if err != nil {
		t.Fatalf("event %d: created_at: %v", i, err)
	}
	if created.UnixMicro() > e.Version {
		t.Fatalf("event %d: created_at %v after version %d", i, created, e.Version)
	}
	if (*d.EditCount == 0) != (d.EditedAt == nil) {
		t.Fatalf("event %d: edit_count %d with edited_at %v", i, *d.EditCount, d.EditedAt)
	}
	if d.EditedAt != nil {
		edited, err := time.Parse(time.RFC3339Nano, *d.EditedAt)
		if err != nil {
			t.Fatalf("event %d: edited_at: %v", i, err)
		}
		if edited.UnixMicro() > e.Version || edited.Before(created) {
			t.Fatalf("event %d: edited_at %v outside [created_at, version %d]", i, edited, e.Version)
		}
	}
}

func derefOr(s *string, def string) string {
	if s == nil {
		return def
	}
	return *s
}

// TestEnvelopes checks that every value is valid JSON in the envelope of
// docs/design.md §5 and that every document looks like a chat message.
func TestEnvelopes(t *testing.T) {
	g := MustNew(testConfig(3))
	for i := range 20000 {
		e := g.Next()
		if e.Tombstone {
			if e.Value() != nil || e.Op != OpDelete || e.Doc != nil {
				t.Fatalf("event %d: tombstone with value, doc or op %q", i, e.Op)
			}
			back, err := ParseRecord(e.Key(), nil, e.VersionHeaderValue())
			if err != nil || back.Version != e.Version || back.ID != e.ID || !back.Tombstone {
				t.Fatalf("event %d: tombstone round trip: %+v, %v", i, back, err)
			}
			continue
		}
		v := e.Value()
		if !json.Valid(v) {
			t.Fatalf("event %d: invalid JSON: %s", i, v)
		}
		var env map[string]json.RawMessage
		if err := json.Unmarshal(v, &env); err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{"op": true, "id": true, "version": true, "doc": e.Op == OpUpsert}
		for k := range env {
			if !want[k] {
				t.Fatalf("event %d: unexpected envelope field %q: %s", i, k, v)
			}
		}
		for k, need := range want {
			if _, ok := env[k]; need && !ok {
				t.Fatalf("event %d: envelope lacks %q: %s", i, k, v)
			}
		}
		back, err := ParseValue(v)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if back.ID != e.ID || back.Version != e.Version || back.Op != e.Op || !bytes.Equal(back.Doc, e.Doc) {
			t.Fatalf("event %d: round trip changed the event: %+v vs %+v", i, back, e)
		}
		if e.Version <= 0 {
			t.Fatalf("event %d: version %d", i, e.Version)
		}
		if e.Op == OpUpsert {
			checkDoc(t, i, e)
		}
	}
}

// TestVersionPatterns checks, per id, that versions follow the documented
// patterns for every kind of event.
func TestVersionPatterns(t *testing.T) {
	type idState struct {
		max    int64
		seen   map[int64]bool
		lastOp string // op of the newest (non-late, non-duplicate) event
	}
	cfg := testConfig(5)
	cfg.IDs = 300 // small, so ids get many versions
	g := MustNew(cfg)
	ids := map[string]*idState{}
	var history [][]byte
	var globalMax int64
	for i := range 30000 {
		e := g.Next()
		st := ids[e.ID]
		rec := e.Value()
		if e.Tombstone {
			rec = []byte("tombstone " + e.ID + " " + string(e.VersionHeaderValue()))
		}
		switch e.Kind {
		case KindCreate:
			if st != nil {
				t.Fatalf("event %d: create of known id %s", i, e.ID)
			}
			st = &idState{seen: map[int64]bool{}}
			ids[e.ID] = st
		case KindDuplicate:
			found := false
			for j := len(history) - 1; j >= 0 && j >= len(history)-RingSize; j-- {
				if bytes.Equal(history[j], rec) {
					found = true
					break
				}
			}
			if !found {
				t.Fatalf("event %d: duplicate %s matches none of the last %d events", i, rec, RingSize)
			}
			continue
		}
		if st == nil {
			t.Fatalf("event %d: %v of an id never created: %s", i, e.Kind, e.ID)
		}
		switch e.Kind {
		case KindCreate, KindUpdate, KindDelete, KindRecreate:
			if e.Version <= st.max || e.Version <= globalMax {
				t.Fatalf("event %d: %v version %d not above id max %d / stream max %d", i, e.Kind, e.Version, st.max, globalMax)
			}
			if (e.Kind == KindUpdate || e.Kind == KindDelete) && st.lastOp != OpUpsert {
				t.Fatalf("event %d: %v of deleted id %s", i, e.Kind, e.ID)
			}
			if e.Kind == KindRecreate && st.lastOp != OpDelete {
				t.Fatalf("event %d: re-create of id %s whose newest op is %s", i, e.ID, st.lastOp)
			}
			if (e.Kind == KindDelete) != (e.Op == OpDelete) {
				t.Fatalf("event %d: kind %v with op %s", i, e.Kind, e.Op)
			}
			st.max, globalMax = e.Version, e.Version
			st.lastOp = e.Op
		case KindLate:
			if e.Op != OpUpsert || e.Version >= st.max || st.seen[e.Version] {
				t.Fatalf("event %d: late %s v%d: max %d, already seen %v", i, e.Op, e.Version, st.max, st.seen[e.Version])
			}
		default:
			t.Fatalf("event %d: kind %v", i, e.Kind)
		}
		st.seen[e.Version] = true
		history = append(history, rec)
	}
}

// TestDistribution checks that the measured rates match the configured ones
// when fallbacks are rare (many ids).
func TestDistribution(t *testing.T) {
	cfg := Config{
		Seed: 99, IDs: 1 << 20,
		EditProb: 0.30, DeleteProb: 0.10, RecreateProb: 0.05,
		DuplicateProb: 0.05, OutOfOrderProb: 0.05, TombstoneProb: 0.4,
	}
	g := MustNew(cfg)
	const n = 200000
	var buf []byte
	for range n {
		buf, _ = g.AppendValue(buf[:0])
	}
	s := g.Stats()
	if s.Events != n {
		t.Fatalf("Events = %d, want %d", s.Events, n)
	}
	if sum := s.Creates + s.Updates + s.Deletes + s.Recreates + s.Duplicates + s.Late; sum != n {
		t.Fatalf("kinds add up to %d, want %d", sum, n)
	}
	checkRate := func(name string, got int64, total int64, want, tol float64) {
		t.Helper()
		rate := float64(got) / float64(total)
		if math.Abs(rate-want) > tol {
			t.Errorf("%s rate %.4f, want %.4f±%.3f", name, rate, want, tol)
		}
	}
	checkRate("edit", s.Updates, n, cfg.EditProb, 0.01)
	checkRate("delete", s.Deletes, n, cfg.DeleteProb, 0.01)
	checkRate("recreate", s.Recreates, n, cfg.RecreateProb, 0.01)
	checkRate("duplicate", s.Duplicates, n, cfg.DuplicateProb, 0.01)
	checkRate("out-of-order", s.Late, n, cfg.OutOfOrderProb, 0.01)
	checkRate("create", s.Creates, n, 1-0.55, 0.015)
	// Duplicates of tombstones are tombstones too.
	checkRate("tombstone", s.Tombstones, s.Deletes+s.Duplicates*s.Deletes/n, cfg.TombstoneProb, 0.03)
}

func TestFallbacksWhenIDsRunOut(t *testing.T) {
	g := MustNew(Config{Seed: 1, IDs: 3}) // all probabilities zero
	seen := map[string]bool{}
	for i := range 50 {
		e := g.Next()
		seen[e.ID] = true
		if i < 3 && e.Kind != KindCreate || i >= 3 && e.Kind != KindUpdate {
			t.Fatalf("event %d: kind %v", i, e.Kind)
		}
	}
	if len(seen) != 3 {
		t.Errorf("ids %v, want 3", seen)
	}
	// Everything deleted: the only possible event is a re-create.
	g = MustNew(Config{Seed: 1, IDs: 1, DeleteProb: 1})
	kinds := []Kind{KindCreate, KindDelete, KindRecreate, KindDelete, KindRecreate}
	for i, want := range kinds {
		if e := g.Next(); e.Kind != want {
			t.Fatalf("event %d: kind %v, want %v", i, e.Kind, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []Config{
		{IDs: -1},
		{EditProb: 1.5},
		{DeleteProb: -0.1},
		{TombstoneProb: math.NaN()},
		{EditProb: 0.6, DeleteProb: 0.6},
		{StartVersion: -5},
	}
	for _, c := range bad {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted an invalid config", c)
		}
	}
	g, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	c := g.Config()
	if c.IDs != DefaultIDs || c.Rooms != DefaultRooms || c.Senders != DefaultSenders || c.StartVersion != DefaultStartVersion {
		t.Errorf("defaults not applied: %+v", c)
	}
	if e := g.Next(); e.Version <= DefaultStartVersion {
		t.Errorf("first version %d not after start %d", e.Version, DefaultStartVersion)
	}
}

// TestBodyVariety checks that the stream exercises what the pipeline must
// pass through untouched.
func TestBodyVariety(t *testing.T) {
	g := MustNew(DefaultConfig(1))
	want := map[string]string{
		"newline escape":   `\n`,
		"quote escape":     `\"`,
		"backslash escape": `\\`,
		"tab escape":       `\t`,
		"unicode escape":   `\u3`,
		"surrogate pair":   `\ud83d`,
		"html escape":      `\u003c`,
		"japanese":         "です",
		"emoji":            "🎉",
		"lang ja":          `"lang":"ja"`,
		"lang en":          `"lang":"en"`,
		"attachment":       `"attachments":[{`,
		"mention":          `"mentions":["u`,
		"reaction":         `"reactions":{"`,
		"reply":            `"reply_to":"r`,
	}
	found := map[string]bool{}
	var buf []byte
	total := 0
	const n = 5000
	for range n {
		buf, _ = g.AppendValue(buf[:0])
		total += len(buf)
		for name, s := range want {
			if !found[name] && bytes.Contains(buf, []byte(s)) {
				found[name] = true
			}
		}
	}
	for name, s := range want {
		if !found[name] {
			t.Errorf("no event contains %s (%q)", name, s)
		}
	}
	if avg := total / n; avg < 300 || avg > 600 {
		t.Errorf("average value size %d bytes, want 300..600", avg)
	}
}

func TestParseErrors(t *testing.T) {
	bad := []string{
		`not json`,
		`{"op":"upsert","version":1,"doc":{}}`,
		`{"op":"upsert","id":"a","doc":{}}`,
		`{"op":"upsert","id":"a","version":1}`,
		`{"op":"upsert","id":"a","version":1,"doc":null}`,
		`{"op":"merge","id":"a","version":1,"doc":{}}`,
	}
	for _, s := range bad {
		if _, err := ParseValue([]byte(s)); err == nil {
			t.Errorf("ParseValue(%s) accepted it", s)
		}
	}
	if _, err := ParseRecord([]byte("k"), nil, []byte("x1")); err == nil {
		t.Error("ParseRecord accepted a tombstone with a bad version header")
	}
}

func TestJSONLRoundTrip(t *testing.T) {
	cfg := testConfig(21)
	cfg.TombstoneProb = 0
	evs := MustNew(cfg).Stream(500)
	var buf bytes.Buffer
	if err := WriteJSONL(&buf, evs); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSONL(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(evs) {
		t.Fatalf("read %d events, wrote %d", len(back), len(evs))
	}
	for i := range evs {
		if !bytes.Equal(back[i].Value(), evs[i].Value()) {
			t.Fatalf("event %d changed:\n%s\n%s", i, back[i].Value(), evs[i].Value())
		}
	}
	if err := WriteJSONL(&buf, []Event{{Op: OpDelete, ID: "x", Version: 1, Tombstone: true}}); err == nil {
		t.Error("WriteJSONL accepted a tombstone")
	}
}

func TestAppendValueAllocs(t *testing.T) {
	g := MustNew(DefaultConfig(1))
	buf := make([]byte, 0, 4096)
	for range 2 * RingSize {
		buf, _ = g.AppendValue(buf[:0])
	}
	allocs := testing.AllocsPerRun(5000, func() {
		buf, _ = g.AppendValue(buf[:0])
	})
	// The per-id bookkeeping slices grow now and then (amortised).
	if allocs > 0.05 {
		t.Errorf("AppendValue allocates %.3f times per event", allocs)
	}
}

func BenchmarkAppendValue(b *testing.B) {
	cfg := DefaultConfig(1)
	cfg.IDs = 1 << 20
	g := MustNew(cfg)
	buf := make([]byte, 0, 4096)
	var total int64
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = g.AppendValue(buf[:0])
		total += int64(len(buf))
	}
	b.ReportMetric(float64(total)/float64(b.N), "bytes/event")
}

func BenchmarkAppendValueBatch(b *testing.B) {
	// Appending many values into one growing buffer, as a bulk writer would.
	cfg := DefaultConfig(1)
	cfg.IDs = 1 << 20
	g := MustNew(cfg)
	buf := make([]byte, 0, 8<<20)
	b.ReportAllocs()
	for b.Loop() {
		if len(buf) > 7<<20 {
			buf = buf[:0]
		}
		buf, _ = g.AppendValue(buf)
		buf = append(buf, '\n')
	}
}

func BenchmarkNext(b *testing.B) {
	cfg := DefaultConfig(1)
	cfg.IDs = 1 << 20
	g := MustNew(cfg)
	b.ReportAllocs()
	for b.Loop() {
		_ = g.Next()
	}
}
