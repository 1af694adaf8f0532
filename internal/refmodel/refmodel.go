// Package refmodel is the reference model of docs/design.md §2: the state an index
// must converge on after a set of document operations has been applied at
// least once, in any order, with any duplicates.
//
// It is the oracle of the integration tests and is written to be obviously
// right rather than fast: for each id it keeps the operation with the
// greatest version, and on a tie the one applied first. It shares no code
// with the indexer.
package refmodel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Ops accepted by Apply.
const (
	OpUpsert = "upsert"
	OpDelete = "delete"
)

// MaxIDBytes is the longest document id OpenSearch accepts (UTF-8 bytes).
const MaxIDBytes = 512

// DeleteMode says how a delete shows in the expected state.
type DeleteMode string

// The delete modes of docs/design.md §2.
const (
	// ModeDelete: a deleted id is absent.
	ModeDelete DeleteMode = "delete"
	// ModeTombstone: a deleted id is present as a tombstone document
	// carrying the delete's version.
	ModeTombstone DeleteMode = "tombstone"
)

// DefaultTombstoneField is the marker field of the default tombstone
// document, {"reindexer_tombstone":true}.
const DefaultTombstoneField = "reindexer_tombstone"

// TombstoneFunc returns the tombstone document written for a delete of id at
// version.
type TombstoneFunc func(id string, version int64) json.RawMessage

// MarkerTombstone returns a TombstoneFunc whose document is {"<field>":true}
// whatever the id and version.
func MarkerTombstone(field string) TombstoneFunc {
	doc := []byte(`{` + strconv.Quote(field) + `:true}`)
	return func(string, int64) json.RawMessage { return bytes.Clone(doc) }
}

// Doc is the expected state of one document.
type Doc struct {
	// Version is the document's _version.
	Version int64
	// Source is the document's _source.
	Source json.RawMessage
	// Tombstone reports a tombstone document (ModeTombstone only).
	Tombstone bool
}

// Option configures a Model.
type Option func(*Model)

// WithTombstoneField makes tombstones {"<field>":true}.
func WithTombstoneField(field string) Option {
	return func(m *Model) { m.tombstone = MarkerTombstone(field) }
}

// WithTombstoneFunc makes f build the tombstone documents.
func WithTombstoneFunc(f TombstoneFunc) Option {
	return func(m *Model) { m.tombstone = f }
}

// op is the winning operation of one id.
type op struct {
	deleted bool
	version int64
	doc     json.RawMessage
}

// Model accumulates operations and computes the reference state. The zero
// value is not usable; call New. A Model is not safe for concurrent use.
type Model struct {
	mode      DeleteMode
	tombstone TombstoneFunc
	ops       map[string]op
	applied   int
}

// New returns an empty model. mode must be ModeDelete or ModeTombstone.
func New(mode DeleteMode, opts ...Option) (*Model, error) {
	if mode != ModeDelete && mode != ModeTombstone {
		return nil, fmt.Errorf("refmodel: unknown delete mode %q (want %q or %q)", mode, ModeDelete, ModeTombstone)
	}
	m := &Model{mode: mode, tombstone: MarkerTombstone(DefaultTombstoneField), ops: map[string]op{}}
	for _, o := range opts {
		o(m)
	}
	return m, nil
}

// Mode returns the model's delete mode.
func (m *Model) Mode() DeleteMode { return m.mode }

// Apply records one operation. An operation the worker must dead-letter
// (docs/design.md §3: empty or over-long id, negative version, unknown op, an upsert
// whose document is not a JSON object) is rejected with an error and changes
// nothing. doc is ignored for deletes and copied for upserts.
func (m *Model) Apply(id, opName string, version int64, doc []byte) error {
	switch {
	case id == "":
		return fmt.Errorf("refmodel: empty id")
	case len(id) > MaxIDBytes:
		return fmt.Errorf("refmodel: id of %d bytes exceeds %d", len(id), MaxIDBytes)
	case version < 0:
		return fmt.Errorf("refmodel: id %q: negative version %d", id, version)
	}
	next := op{version: version}
	switch opName {
	case OpDelete:
		next.deleted = true
	case OpUpsert:
		if !isObject(doc) {
			return fmt.Errorf("refmodel: id %q version %d: document is not a JSON object", id, version)
		}
		next.doc = bytes.Clone(doc)
	default:
		return fmt.Errorf("refmodel: id %q: unknown op %q", id, opName)
	}
	m.applied++
	// The greatest version wins; on a tie the operation applied first stays.
	if cur, ok := m.ops[id]; ok && cur.version >= version {
		return nil
	}
	m.ops[id] = next
	return nil
}

// Applied returns how many operations Apply accepted.
func (m *Model) Applied() int { return m.applied }

// Expected returns the reference state: every id that exists in the index,
// with its version and source. In ModeDelete deleted ids are absent; in
// ModeTombstone they map to their tombstone document.
func (m *Model) Expected() map[string]Doc {
	out := make(map[string]Doc, len(m.ops))
	for id, o := range m.ops {
		switch {
		case !o.deleted:
			out[id] = Doc{Version: o.version, Source: bytes.Clone(o.doc)}
		case m.mode == ModeTombstone:
			out[id] = Doc{Version: o.version, Source: m.tombstone(id, o.version), Tombstone: true}
		}
	}
	return out
}

// Live returns how many ids exist and are not deleted (tombstones excluded):
// what a search that filters tombstones would count.
func (m *Model) Live() int {
	n := 0
	for _, o := range m.ops {
		if !o.deleted {
			n++
		}
	}
	return n
}

func isObject(doc []byte) bool {
	d := bytes.TrimLeft(doc, " \t\r\n")
	return len(d) > 0 && d[0] == '{' && json.Valid(doc)
}
