package refmodel

import (
	"encoding/json"
	"maps"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

type ev struct {
	id      string
	op      string
	version int64
	doc     string
}

func up(id string, v int64, doc string) ev { return ev{id, OpUpsert, v, doc} }
func del(id string, v int64) ev            { return ev{id, OpDelete, v, ""} }

func expected(t *testing.T, mode DeleteMode, evs []ev, opts ...Option) map[string]Doc {
	t.Helper()
	m, err := New(mode, opts...)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if err := m.Apply(e.id, e.op, e.version, []byte(e.doc)); err != nil {
			t.Fatalf("Apply(%+v): %v", e, err)
		}
	}
	return m.Expected()
}

func doc(v int64, src string) Doc { return Doc{Version: v, Source: json.RawMessage(src)} }

func tomb(v int64) Doc {
	return Doc{Version: v, Source: json.RawMessage(`{"reindexer_tombstone":true}`), Tombstone: true}
}

func TestCases(t *testing.T) {
	cases := []struct {
		name      string
		evs       []ev
		delete    map[string]Doc // ModeDelete
		tombstone map[string]Doc // ModeTombstone; nil: same as delete
	}{
		{
			name:   "empty",
			delete: map[string]Doc{},
		},
		{
			name:   "single upsert",
			evs:    []ev{up("a", 5, `{"x":1}`)},
			delete: map[string]Doc{"a": doc(5, `{"x":1}`)},
		},
		{
			name:   "newer upsert wins in order",
			evs:    []ev{up("a", 1, `{"x":1}`), up("a", 2, `{"x":2}`)},
			delete: map[string]Doc{"a": doc(2, `{"x":2}`)},
		},
		{
			name:   "newer upsert wins out of order",
			evs:    []ev{up("a", 2, `{"x":2}`), up("a", 1, `{"x":1}`)},
			delete: map[string]Doc{"a": doc(2, `{"x":2}`)},
		},
		{
			name:   "tie: first applied wins",
			evs:    []ev{up("a", 7, `{"x":"first"}`), up("a", 7, `{"x":"second"}`)},
			delete: map[string]Doc{"a": doc(7, `{"x":"first"}`)},
		},
		{
			name:      "tie: upsert first beats delete",
			evs:       []ev{up("a", 7, `{"x":1}`), del("a", 7)},
			delete:    map[string]Doc{"a": doc(7, `{"x":1}`)},
			tombstone: map[string]Doc{"a": doc(7, `{"x":1}`)},
		},
		{
			name:      "tie: delete first beats upsert",
			evs:       []ev{del("a", 7), up("a", 7, `{"x":1}`)},
			delete:    map[string]Doc{},
			tombstone: map[string]Doc{"a": tomb(7)},
		},
		{
			name:      "delete after upsert",
			evs:       []ev{up("a", 1, `{"x":1}`), del("a", 2)},
			delete:    map[string]Doc{},
			tombstone: map[string]Doc{"a": tomb(2)},
		},
		{
			name:      "delete then older upsert: stays deleted",
			evs:       []ev{up("a", 1, `{"x":1}`), del("a", 3), up("a", 2, `{"x":2}`)},
			delete:    map[string]Doc{},
			tombstone: map[string]Doc{"a": tomb(3)},
		},
		{
			name:      "delete of an id never upserted",
			evs:       []ev{del("a", 4)},
			delete:    map[string]Doc{},
			tombstone: map[string]Doc{"a": tomb(4)},
		},
		{
			name:   "re-create after delete",
			evs:    []ev{up("a", 1, `{"x":1}`), del("a", 2), up("a", 3, `{"x":3}`)},
			delete: map[string]Doc{"a": doc(3, `{"x":3}`)},
		},
		{
			name:   "re-create applied before the delete",
			evs:    []ev{up("a", 3, `{"x":3}`), del("a", 2), up("a", 1, `{"x":1}`)},
			delete: map[string]Doc{"a": doc(3, `{"x":3}`)},
		},
		{
			name:      "older delete after newer upsert is stale",
			evs:       []ev{up("b", 10, `{}`), del("b", 9)},
			delete:    map[string]Doc{"b": doc(10, `{}`)},
			tombstone: map[string]Doc{"b": doc(10, `{}`)},
		},
		{
			name:   "duplicates change nothing",
			evs:    []ev{up("a", 1, `{"x":1}`), up("a", 1, `{"x":1}`), up("b", 2, `{"y":2}`), up("a", 1, `{"x":1}`)},
			delete: map[string]Doc{"a": doc(1, `{"x":1}`), "b": doc(2, `{"y":2}`)},
		},
		{
			name:   "version zero is valid",
			evs:    []ev{up("a", 0, `{"x":0}`)},
			delete: map[string]Doc{"a": doc(0, `{"x":0}`)},
		},
		{
			name:   "source kept byte for byte",
			evs:    []ev{up("a", 1, "{ \"b\" : \"\\u65e5\",\n\"a\":1 }")},
			delete: map[string]Doc{"a": doc(1, "{ \"b\" : \"\\u65e5\",\n\"a\":1 }")},
		},
		{
			name: "several ids are independent",
			evs: []ev{
				up("a", 1, `{"a":1}`), up("b", 1, `{"b":1}`), del("a", 2), up("c", 5, `{"c":5}`),
				up("b", 3, `{"b":3}`), up("a", 1, `{"a":1}`), del("c", 4),
			},
			delete:    map[string]Doc{"b": doc(3, `{"b":3}`), "c": doc(5, `{"c":5}`)},
			tombstone: map[string]Doc{"a": tomb(2), "b": doc(3, `{"b":3}`), "c": doc(5, `{"c":5}`)},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := expected(t, ModeDelete, c.evs); !reflect.DeepEqual(got, c.delete) {
				t.Errorf("delete mode:\n got %v\nwant %v", got, c.delete)
			}
			want := c.tombstone
			if want == nil {
				want = c.delete
			}
			if got := expected(t, ModeTombstone, c.evs); !reflect.DeepEqual(got, want) {
				t.Errorf("tombstone mode:\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestTombstoneDocuments(t *testing.T) {
	evs := []ev{up("a", 1, `{}`), del("a", 2)}
	got := expected(t, ModeTombstone, evs, WithTombstoneField("deleted"))
	if want := `{"deleted":true}`; string(got["a"].Source) != want {
		t.Errorf("WithTombstoneField: %s, want %s", got["a"].Source, want)
	}
	got = expected(t, ModeTombstone, evs, WithTombstoneFunc(func(id string, v int64) json.RawMessage {
		return json.RawMessage(`{"gone":"` + id + `","at":` + strconv.FormatInt(v, 10) + `}`)
	}))
	if want := `{"gone":"a","at":2}`; string(got["a"].Source) != want || !got["a"].Tombstone || got["a"].Version != 2 {
		t.Errorf("WithTombstoneFunc: %+v, want source %s", got["a"], want)
	}
}

func TestApplyRejects(t *testing.T) {
	m, err := New(ModeDelete)
	if err != nil {
		t.Fatal(err)
	}
	bad := []ev{
		{"", OpUpsert, 1, `{}`},
		{strings.Repeat("x", MaxIDBytes+1), OpUpsert, 1, `{}`},
		{"a", OpUpsert, -1, `{}`},
		{"a", "merge", 1, `{}`},
		{"a", OpUpsert, 1, ``},
		{"a", OpUpsert, 1, `{"x":`},
		{"a", OpUpsert, 1, `[1]`},
		{"a", OpUpsert, 1, `null`},
		{"a", OpDelete, -3, ``},
	}
	for _, e := range bad {
		if err := m.Apply(e.id, e.op, e.version, []byte(e.doc)); err == nil {
			t.Errorf("Apply(%q, %q, %d, %q) accepted it", e.id, e.op, e.version, e.doc)
		}
	}
	if len(m.Expected()) != 0 || m.Applied() != 0 {
		t.Errorf("rejected operations changed the model: %v, applied %d", m.Expected(), m.Applied())
	}
	if err := m.Apply(strings.Repeat("x", MaxIDBytes), OpUpsert, 1, []byte(` {"ok":true}`)); err != nil {
		t.Errorf("id of exactly %d bytes: %v", MaxIDBytes, err)
	}
	if _, err := New("soft"); err == nil {
		t.Error("New accepted an unknown mode")
	}
}

func TestCopiesInput(t *testing.T) {
	m, _ := New(ModeDelete)
	buf := []byte(`{"x":1}`)
	if err := m.Apply("a", OpUpsert, 1, buf); err != nil {
		t.Fatal(err)
	}
	copy(buf, `{"y":2}`)
	exp := m.Expected()
	if string(exp["a"].Source) != `{"x":1}` {
		t.Fatalf("model aliases the caller's buffer: %s", exp["a"].Source)
	}
	exp["a"].Source[2] = 'z'
	if string(m.Expected()["a"].Source) != `{"x":1}` {
		t.Fatal("Expected aliases the model's memory")
	}
}

// TestOrderIndependence checks the convergence promise on the model itself:
// with distinct versions per id, any order and any duplicates give the same
// state.
func TestOrderIndependence(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var evs []ev
	for i := range 200 {
		id := string(rune('a' + i%17))
		v := int64(i)
		if r.IntN(4) == 0 {
			evs = append(evs, del(id, v))
		} else {
			evs = append(evs, up(id, v, `{"i":`+strings.Repeat("1", 1+i%5)+`}`))
		}
	}
	for _, mode := range []DeleteMode{ModeDelete, ModeTombstone} {
		want := expected(t, mode, evs)
		for range 50 {
			shuffled := append([]ev(nil), evs...)
			for range r.IntN(50) {
				shuffled = append(shuffled, evs[r.IntN(len(evs))])
			}
			r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			if got := expected(t, mode, shuffled); !maps.EqualFunc(got, want, func(a, b Doc) bool { return reflect.DeepEqual(a, b) }) {
				t.Fatalf("%s mode: state depends on order", mode)
			}
		}
	}
}

func TestLive(t *testing.T) {
	m, _ := New(ModeTombstone)
	for _, e := range []ev{up("a", 1, `{}`), up("b", 1, `{}`), del("b", 2), del("c", 1)} {
		if err := m.Apply(e.id, e.op, e.version, []byte(e.doc)); err != nil {
			t.Fatal(err)
		}
	}
	if m.Live() != 1 || len(m.Expected()) != 3 || m.Mode() != ModeTombstone {
		t.Errorf("Live %d, Expected %d, Mode %s", m.Live(), len(m.Expected()), m.Mode())
	}
}
