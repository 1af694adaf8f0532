package itest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/refmodel"
)

// Mismatch kinds, one per id.
const (
	KindMissing = "missing" // expected, not in the index
	KindExtra   = "extra"   // in the index, not expected
	KindVersion = "version" // _version differs (the source may differ too)
	KindSource  = "source"  // same _version, different source
)

// MaxShown is how many mismatches a Diff lists.
const MaxShown = 20

// Mismatch is one id whose state differs from the expected one.
type Mismatch struct {
	ID   string // document id
	Kind string // KindMissing, KindExtra, KindVersion or KindSource
	Got  string // the index's version and source ("" when missing)
	Want string // the expected version and source ("" when extra)
}

// Diff is the comparison of an index with the reference state.
type Diff struct {
	Expected, Indexed               int // documents on each side
	Missing, Extra, Version, Source int // mismatches by kind
	// Shown are the first MaxShown mismatches in id order.
	Shown []Mismatch
}

// OK reports whether the index equals the reference state.
func (d Diff) OK() bool { return d.Missing+d.Extra+d.Version+d.Source == 0 }

// String renders the diff for a test failure.
func (d Diff) String() string {
	if d.OK() {
		return fmt.Sprintf("index equals the reference state (%d documents)", d.Expected)
	}
	var b strings.Builder
	n := d.Missing + d.Extra + d.Version + d.Source
	fmt.Fprintf(&b, "index differs from the reference state in %d ids: %d missing, %d extra, %d version, %d source (%d expected, %d in index)",
		n, d.Missing, d.Extra, d.Version, d.Source, d.Expected, d.Indexed)
	for _, m := range d.Shown {
		fmt.Fprintf(&b, "\n  %-7s %s", m.Kind, m.ID)
		if m.Got != "" {
			fmt.Fprintf(&b, "\n      got  %s", m.Got)
		}
		if m.Want != "" {
			fmt.Fprintf(&b, "\n      want %s", m.Want)
		}
	}
	if n > len(d.Shown) {
		fmt.Fprintf(&b, "\n  ... and %d more", n-len(d.Shown))
	}
	return b.String()
}

// Compare compares the documents read from an index with the reference
// state. Sources are compared as JSON values (key order, whitespace and
// escapes do not matter; numbers compare by their text).
func Compare(got map[string]DocState, want map[string]refmodel.Doc) Diff {
	d := Diff{Expected: len(want), Indexed: len(got)}
	ids := make([]string, 0, len(want)+len(got))
	for id := range want {
		ids = append(ids, id)
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		g, inIndex := got[id]
		w, expected := want[id]
		var m Mismatch
		switch {
		case !inIndex:
			d.Missing++
			m = Mismatch{ID: id, Kind: KindMissing, Want: show(w.Version, w.Source)}
		case !expected:
			d.Extra++
			m = Mismatch{ID: id, Kind: KindExtra, Got: show(g.Version, g.Source)}
		case g.Version != w.Version:
			d.Version++
			m = Mismatch{ID: id, Kind: KindVersion, Got: show(g.Version, g.Source), Want: show(w.Version, w.Source)}
		case !SameJSON(g.Source, w.Source):
			d.Source++
			m = Mismatch{ID: id, Kind: KindSource, Got: show(g.Version, g.Source), Want: show(w.Version, w.Source)}
		default:
			continue
		}
		if len(d.Shown) < MaxShown {
			d.Shown = append(d.Shown, m)
		}
	}
	return d
}

// CompareToModel fails the test (without stopping it) when got differs from
// want, printing a bounded diff, and reports whether they were equal.
func CompareToModel(t testing.TB, got map[string]DocState, want map[string]refmodel.Doc) bool {
	t.Helper()
	d := Compare(got, want)
	if !d.OK() {
		t.Errorf("%s", d)
		return false
	}
	return true
}

// SameJSON reports whether a and b hold the same JSON value. Invalid JSON is
// equal only to identical bytes.
func SameJSON(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	va, errA := decodeJSON(a)
	vb, errB := decodeJSON(b)
	if errA != nil || errB != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode JSON: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("decode JSON: trailing data")
	}
	return v, nil
}

// maxShownSource bounds the source text in a Mismatch.
const maxShownSource = 160

func show(version int64, src []byte) string {
	s := string(src)
	if len(s) > maxShownSource {
		cut := maxShownSource
		for cut > 0 && s[cut]&0xc0 == 0x80 { // do not split a UTF-8 sequence
			cut--
		}
		s = s[:cut] + fmt.Sprintf("... (%d bytes)", len(src))
	}
	return fmt.Sprintf("v%d %s", version, s)
}

// Model returns the reference state (docs/design.md §2) of events in mode, applied
// in order; it fails the test on an event the model rejects.
func Model(t testing.TB, mode refmodel.DeleteMode, events ...[]chatgen.Event) map[string]refmodel.Doc {
	t.Helper()
	m, err := refmodel.New(mode)
	if err != nil {
		t.Fatal(err)
	}
	for _, evs := range events {
		for _, e := range evs {
			if err := m.Apply(e.ID, e.Op, e.Version, e.Doc); err != nil {
				t.Fatal(err)
			}
		}
	}
	return m.Expected()
}
