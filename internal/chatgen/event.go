package chatgen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Event is one document operation as carried by one Kafka record.
type Event struct {
	// Op is OpUpsert or OpDelete.
	Op string
	// ID is the document id and the record key.
	ID string
	// Version is the document version (microseconds since the Unix epoch).
	Version int64
	// Doc is the document of an upsert, nil for a delete.
	Doc json.RawMessage
	// Tombstone marks a delete sent as a Kafka tombstone: nil value, version
	// in the VersionHeader header.
	Tombstone bool
	// Kind says why the generator emitted the event (KindUnknown when the
	// event was parsed from bytes).
	Kind Kind
}

// Key returns the record key: the document id.
func (e Event) Key() []byte { return []byte(e.ID) }

// Value returns the record value: the JSON envelope, or nil for a tombstone.
func (e Event) Value() []byte {
	if e.Tombstone {
		return nil
	}
	return e.AppendValue(make([]byte, 0, len(e.Doc)+len(e.ID)+64))
}

// AppendValue appends the record value to dst (nothing for a tombstone).
func (e Event) AppendValue(dst []byte) []byte {
	if e.Tombstone {
		return dst
	}
	dst = appendEnvelopeHead(dst, e.Op, []byte(e.ID), e.Version)
	if e.Op == OpUpsert {
		dst = append(dst, `,"doc":`...)
		if len(e.Doc) == 0 {
			dst = append(dst, "null"...) // keeps the value valid JSON; ParseValue rejects it
		}
		dst = append(dst, e.Doc...)
	}
	return append(dst, '}')
}

// VersionHeaderValue returns the value of the VersionHeader record header:
// the version in ASCII decimal. Produce it with tombstones; it is harmless
// on other records.
func (e Event) VersionHeaderValue() []byte {
	return strconv.AppendInt(nil, e.Version, 10)
}

// ParseValue decodes a record value in the default envelope. The document
// bytes are kept exactly as they appear in value.
func ParseValue(value []byte) (Event, error) {
	var env struct {
		Op      string          `json:"op"`
		ID      *string         `json:"id"`
		Version *int64          `json:"version"`
		Doc     json.RawMessage `json:"doc"`
	}
	if err := json.Unmarshal(value, &env); err != nil {
		return Event{}, fmt.Errorf("chatgen: decode envelope: %w", err)
	}
	switch {
	case env.ID == nil:
		return Event{}, errors.New("chatgen: envelope without id")
	case env.Version == nil:
		return Event{}, fmt.Errorf("chatgen: envelope %q without version", *env.ID)
	}
	e := Event{Op: env.Op, ID: *env.ID, Version: *env.Version}
	switch env.Op {
	case OpUpsert:
		if len(env.Doc) == 0 || bytes.Equal(env.Doc, []byte("null")) {
			return Event{}, fmt.Errorf("chatgen: upsert %q without doc", e.ID)
		}
		e.Doc = env.Doc
	case OpDelete:
	default:
		return Event{}, fmt.Errorf("chatgen: envelope %q: unknown op %q", e.ID, env.Op)
	}
	return e, nil
}

// ParseRecord decodes a Kafka record: a nil value is a tombstone delete of
// key whose version is versionHeader (ASCII decimal); anything else is an
// envelope (see ParseValue).
func ParseRecord(key, value, versionHeader []byte) (Event, error) {
	if value != nil {
		return ParseValue(value)
	}
	v, err := strconv.ParseInt(string(versionHeader), 10, 64)
	if err != nil {
		return Event{}, fmt.Errorf("chatgen: tombstone %q: version header %q: %w", key, versionHeader, err)
	}
	return Event{Op: OpDelete, ID: string(key), Version: v, Tombstone: true}, nil
}

// WriteJSONL writes the events' values, one per line. Tombstones have no
// value and cannot be written; they are an error.
func WriteJSONL(w io.Writer, events []Event) error {
	bw := bufio.NewWriter(w)
	var buf []byte
	for i, e := range events {
		if e.Tombstone {
			return fmt.Errorf("chatgen: event %d (%s): a tombstone has no JSON line", i, e.ID)
		}
		buf = append(e.AppendValue(buf[:0]), '\n')
		if _, err := bw.Write(buf); err != nil {
			return fmt.Errorf("chatgen: write event %d: %w", i, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("chatgen: flush: %w", err)
	}
	return nil
}

// ReadJSONL reads one envelope per line (blank lines are skipped).
func ReadJSONL(r io.Reader) ([]Event, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var evs []Event
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		e, err := ParseValue(bytes.Clone(b))
		if err != nil {
			return nil, fmt.Errorf("chatgen: line %d: %w", line, err)
		}
		evs = append(evs, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("chatgen: read JSONL: %w", err)
	}
	return evs, nil
}
