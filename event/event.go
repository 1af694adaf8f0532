// Package event decodes Kafka records into document operations.
//
// A record describes one operation on one document: an upsert carrying the
// full document, or a delete, each with a document id and a version (a
// non-negative int64 that grows with every change of that document). The
// default envelope (docs/design.md §5) is
//
//	{"op":"upsert","id":"r42-m1001","version":1732412345678001,"doc":{...}}
//	{"op":"delete","id":"r42-m1001","version":1732412399000000}
//
// with the record key equal to the id. Where each field comes from is
// configurable (see Source): JSON pointers into the value, the key, a
// header, the record offset or timestamp. A Kafka tombstone (null value) is
// a delete of its key, its version read from a header.
//
// Decoding never decodes the document: it finds the byte span of each field
// with a validating scanner and hands out slices of the record value, so
// the document reaches the bulk body byte for byte (pretty-printed documents
// are compacted onto one line, the only change ever made).
package event

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/reindexer/reindexer/internal/jsonscan"
	"github.com/twmb/franz-go/pkg/kgo"
)

// MaxIDBytes is OpenSearch's limit on the UTF-8 length of a document _id.
const MaxIDBytes = 512

// Op is a document operation.
type Op uint8

// The document operations.
const (
	Upsert Op = iota + 1 // write the full document
	Delete               // remove the document
)

// String returns "upsert" or "delete".
func (o Op) String() string {
	switch o {
	case Upsert:
		return "upsert"
	case Delete:
		return "delete"
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// Event is one decoded document operation. Its slices alias the record
// value or the Decoder's scratch space and are valid until the next call of
// Decode on the same Decoder.
type Event struct {
	Op      Op
	ID      []byte // the id as the body of a JSON string literal (escaped, no quotes); never empty
	Version int64  // >= 0
	Doc     []byte // the document as one line of JSON (an object); nil for deletes
	Routing []byte // custom routing as a JSON string body, or nil
}

// Reason classifies why a record could not be decoded. Reasons are stable
// identifiers: they name dead-letter headers and metric labels.
type Reason string

// Why a record is rejected.
const (
	ReasonMalformedJSON Reason = "malformed_json"
	ReasonMissingID     Reason = "missing_id"
	ReasonInvalidID     Reason = "invalid_id"
	// ReasonInvalidIDEncoding: the id is not valid Unicode text (invalid
	// UTF-8 in a key or header, or a lone surrogate escape in JSON).
	// OpenSearch would replace the bad bytes with U+FFFD and so merge
	// different ids into one document.
	ReasonInvalidIDEncoding Reason = "invalid_id_encoding"
	ReasonIDTooLong         Reason = "id_too_long"
	ReasonMissingVersion    Reason = "missing_version"
	ReasonInvalidVersion    Reason = "invalid_version"
	ReasonNegativeVersion   Reason = "negative_version"
	ReasonMissingOp         Reason = "missing_op"
	ReasonUnknownOp         Reason = "unknown_op"
	ReasonMissingDoc        Reason = "missing_doc"
	ReasonInvalidDoc        Reason = "invalid_doc"
	ReasonDocTooLarge       Reason = "doc_too_large"
	// ReasonInvalidRouting: the routing value is not a string or number,
	// or not valid Unicode text (see ReasonInvalidIDEncoding).
	ReasonInvalidRouting Reason = "invalid_routing"
	// ReasonMissingRouting: a delete has no routing value while routing is
	// configured (a Kafka tombstone with routing from JSON: no routing
	// header). Sent without routing, the delete would look on the wrong
	// shard and miss the document.
	ReasonMissingRouting Reason = "missing_routing"
)

// Error is a permanent decoding failure: the record goes to the dead-letter
// topic with Reason and Detail in its headers.
type Error struct {
	Reason Reason
	Detail string
}

func (e *Error) Error() string { return string(e.Reason) + ": " + e.Detail }

func fail(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// Config says where the fields of an event come from. The zero value
// decodes the default envelope.
type Config struct {
	ID      Source // default json:/id
	Version Source // default json:/version
	Op      Source // default json:/op
	Doc     Source // default json:/doc
	Routing Source // default none

	// TombstoneVersionHeader names the header that carries the version of
	// a Kafka tombstone (null value) when Version is read from JSON.
	// Default "version".
	TombstoneVersionHeader string

	// TombstoneRoutingHeader names the header that carries the routing of
	// a Kafka tombstone when Routing is read from JSON (a null value has
	// none). A tombstone without it is rejected (missing_routing); an
	// empty value means "no routing". Default "routing".
	TombstoneRoutingHeader string

	// IDEncoding says how ids and routing values read from the record key
	// or a header become strings. Default IDStrict.
	IDEncoding IDEncoding

	// MaxDocBytes rejects documents larger than this (reason
	// doc_too_large) so one record cannot exceed the bulk byte limit.
	// Default 0 means no limit.
	MaxDocBytes int
}

// IDEncoding turns the bytes of a record key or header into a document id
// (or routing value). OpenSearch ids are Unicode strings, Kafka keys are
// bytes: no encoding may let two different keys become the same id.
type IDEncoding uint8

// The id encodings.
const (
	// IDStrict uses the bytes as they are; bytes that are not valid UTF-8
	// are rejected (invalid_id_encoding, or invalid_routing for routing).
	IDStrict IDEncoding = iota
	// IDHex uses the lower-case hex form of every key or header id.
	IDHex
	// IDBase64URL uses the unpadded base64url form (RFC 4648 §5) of every
	// key or header id.
	IDBase64URL
)

// String returns "strict", "hex" or "base64url".
func (e IDEncoding) String() string {
	switch e {
	case IDStrict:
		return "strict"
	case IDHex:
		return "hex"
	case IDBase64URL:
		return "base64url"
	}
	return "id-encoding(" + strconv.Itoa(int(e)) + ")"
}

// ParseIDEncoding parses "strict", "hex" or "base64url".
func ParseIDEncoding(s string) (IDEncoding, error) {
	for _, e := range []IDEncoding{IDStrict, IDHex, IDBase64URL} {
		if s == e.String() {
			return e, nil
		}
	}
	return 0, fmt.Errorf("%q is not strict, hex or base64url", s)
}

// Decoder turns records into events. It is not safe for concurrent use;
// give each goroutine its own.
type Decoder struct {
	cfg     Config
	top     bool // every JSON source is a single top-level key
	scratch []byte
	idbuf   []byte
	rbuf    []byte
}

// NewDecoder checks cfg and returns a Decoder.
func NewDecoder(cfg Config) (*Decoder, error) {
	def := func(s *Source, d string) {
		if s.Kind == FromNone && s.text == "" && d != "" {
			*s = JSON(d)
		}
	}
	def(&cfg.ID, "/id")
	def(&cfg.Version, "/version")
	def(&cfg.Op, "/op")
	def(&cfg.Doc, "/doc")
	if cfg.TombstoneVersionHeader == "" {
		cfg.TombstoneVersionHeader = "version"
	}
	if cfg.TombstoneRoutingHeader == "" {
		cfg.TombstoneRoutingHeader = "routing"
	}
	if cfg.IDEncoding > IDBase64URL {
		return nil, fmt.Errorf("id encoding %s: want strict, hex or base64url", cfg.IDEncoding)
	}
	switch cfg.ID.Kind {
	case FromJSON, FromKey, FromHeader:
	default:
		return nil, fmt.Errorf("id source %s: the id comes from json:/pointer, key or header:NAME", cfg.ID)
	}
	switch cfg.Version.Kind {
	case FromJSON, FromHeader, FromOffset, FromTimestamp:
	default:
		return nil, fmt.Errorf("version source %s: the version comes from json:/pointer, header:NAME, offset or timestamp", cfg.Version)
	}
	switch cfg.Op.Kind {
	case FromJSON, FromHeader, FromNone:
	default:
		return nil, fmt.Errorf("op source %s: the op comes from json:/pointer, header:NAME or none", cfg.Op)
	}
	switch cfg.Doc.Kind {
	case FromJSON, FromValue:
	default:
		return nil, fmt.Errorf("doc source %s: the document comes from json:/pointer or value", cfg.Doc)
	}
	switch cfg.Routing.Kind {
	case FromNone, FromJSON, FromKey, FromHeader:
	default:
		return nil, fmt.Errorf("routing source %s: routing comes from json:/pointer, key, header:NAME or none", cfg.Routing)
	}
	d := &Decoder{cfg: cfg, top: true}
	for _, s := range []Source{cfg.ID, cfg.Version, cfg.Op, cfg.Doc, cfg.Routing} {
		if s.Kind == FromJSON && len(s.Pointer) != 1 {
			d.top = false
		}
	}
	return d, nil
}

// Config returns the decoder's configuration with defaults filled in.
func (d *Decoder) Config() Config { return d.cfg }

// span is a located JSON value: [start, end) in the record value.
type span struct {
	start, end int
	found      bool
	multiline  bool
}

// Decode decodes one record. A returned error is always an *Error.
func (d *Decoder) Decode(r *kgo.Record) (Event, error) {
	var ev Event
	if r.Value == nil {
		return d.tombstone(r)
	}
	val := r.Value
	needJSON := d.cfg.ID.Kind == FromJSON || d.cfg.Version.Kind == FromJSON || d.cfg.Op.Kind == FromJSON ||
		d.cfg.Doc.Kind == FromJSON || d.cfg.Routing.Kind == FromJSON || d.cfg.Doc.Kind == FromValue
	var id, ver, op, doc, rt span
	if needJSON {
		start := jsonscan.SkipSpace(val, 0)
		if jsonscan.KindAt(val, start) != jsonscan.Object {
			if _, _, _, err := jsonscan.Document(val); err != nil {
				return ev, fail(ReasonMalformedJSON, "%v", err)
			}
			return ev, fail(ReasonMalformedJSON, "record value is a JSON %s, want an object", jsonscan.KindAt(val, start))
		}
		if d.top {
			end, err := jsonscan.Fields(val, start, func(f jsonscan.Field) bool {
				s := span{f.ValueStart, f.ValueEnd, true, f.Multiline}
				d.match(f.Key, &d.cfg.ID, &id, s)
				d.match(f.Key, &d.cfg.Version, &ver, s)
				d.match(f.Key, &d.cfg.Op, &op, s)
				d.match(f.Key, &d.cfg.Doc, &doc, s)
				d.match(f.Key, &d.cfg.Routing, &rt, s)
				return true
			})
			if err == nil {
				if rest := jsonscan.SkipSpace(val, end); rest != len(val) {
					err = &jsonscan.SyntaxError{Offset: rest, Msg: "trailing data after JSON value"}
				}
			}
			if err != nil {
				return ev, fail(ReasonMalformedJSON, "%v", err)
			}
		} else {
			if _, _, _, err := jsonscan.Document(val); err != nil {
				return ev, fail(ReasonMalformedJSON, "%v", err)
			}
			id = lookup(val, start, d.cfg.ID)
			ver = lookup(val, start, d.cfg.Version)
			op = lookup(val, start, d.cfg.Op)
			doc = lookup(val, start, d.cfg.Doc)
			rt = lookup(val, start, d.cfg.Routing)
		}
		if d.cfg.Doc.Kind == FromValue {
			s, e, multi, _ := jsonscan.Document(val)
			doc = span{s, e, true, multi}
		}
	}

	// Op first: deletes need no document.
	switch d.cfg.Op.Kind {
	case FromNone:
		ev.Op = Upsert
	case FromJSON:
		if !op.found || jsonscan.KindAt(val, op.start) == jsonscan.Null {
			return ev, fail(ReasonMissingOp, "no op at %s", d.cfg.Op)
		}
		if jsonscan.KindAt(val, op.start) != jsonscan.String {
			return ev, fail(ReasonUnknownOp, "op at %s is a JSON %s, want a string", d.cfg.Op, jsonscan.KindAt(val, op.start))
		}
		o, ok := parseOp(val[op.start+1 : op.end-1])
		if !ok {
			return ev, fail(ReasonUnknownOp, "op %s is not one of upsert, index, create, update, delete", val[op.start:op.end])
		}
		ev.Op = o
	case FromHeader:
		h, ok := header(r, d.cfg.Op.Header)
		if !ok {
			return ev, fail(ReasonMissingOp, "no header %q", d.cfg.Op.Header)
		}
		o, ok := parseOp(h)
		if !ok {
			return ev, fail(ReasonUnknownOp, "op header %q=%q is not one of upsert, index, create, update, delete", d.cfg.Op.Header, h)
		}
		ev.Op = o
	}

	var err *Error
	if ev.ID, err = d.idFrom(r, val, id); err != nil {
		return ev, err
	}
	if ev.Version, err = d.versionFrom(r, val, ver, d.cfg.Version); err != nil {
		return ev, err
	}
	if d.cfg.Routing.Kind != FromNone {
		if ev.Routing, err = d.routingFor(ev.Op, r, val, rt); err != nil {
			return ev, err
		}
	}
	if ev.Op == Delete {
		return ev, nil
	}
	if !doc.found || jsonscan.KindAt(val, doc.start) == jsonscan.Null {
		return ev, fail(ReasonMissingDoc, "upsert without a document at %s", d.cfg.Doc)
	}
	if k := jsonscan.KindAt(val, doc.start); k != jsonscan.Object {
		return ev, fail(ReasonInvalidDoc, "document at %s is a JSON %s, want an object", d.cfg.Doc, k)
	}
	ev.Doc = val[doc.start:doc.end]
	if doc.multiline {
		d.scratch = jsonscan.AppendCompact(d.scratch[:0], ev.Doc)
		ev.Doc = d.scratch
	}
	if d.cfg.MaxDocBytes > 0 && len(ev.Doc) > d.cfg.MaxDocBytes {
		return ev, fail(ReasonDocTooLarge, "document is %d bytes, over the %d-byte limit (raise --max-doc-bytes and --batch-bytes together)", len(ev.Doc), d.cfg.MaxDocBytes)
	}
	return ev, nil
}

func (d *Decoder) match(key []byte, src *Source, dst *span, s span) {
	if src.Kind == FromJSON && len(src.Pointer) == 1 && jsonscan.KeyEquals(key, src.Pointer[0]) {
		*dst = s
	}
}

func lookup(val []byte, start int, src Source) span {
	if src.Kind != FromJSON {
		return span{}
	}
	s, e, found, err := jsonscan.Lookup(val, start, src.Pointer)
	if err != nil || !found {
		return span{}
	}
	_, multi, _ := jsonscan.Value(val[:e], s)
	return span{s, e, true, multi}
}

func (d *Decoder) tombstone(r *kgo.Record) (Event, error) {
	ev := Event{Op: Delete}
	var err *Error
	switch d.cfg.ID.Kind {
	case FromHeader:
		ev.ID, err = d.idFrom(r, nil, span{})
	default: // key, or JSON which a null value cannot have: the key is the id
		ev.ID, err = d.escapeID(r.Key, "record key of a tombstone")
	}
	if err != nil {
		return ev, err
	}
	vsrc := d.cfg.Version
	if vsrc.Kind == FromJSON {
		vsrc = Source{Kind: FromHeader, Header: d.cfg.TombstoneVersionHeader}
	}
	if ev.Version, err = d.versionFrom(r, nil, span{}, vsrc); err != nil {
		return ev, err
	}
	switch d.cfg.Routing.Kind {
	case FromKey, FromHeader:
		if ev.Routing, err = d.routingFor(Delete, r, nil, span{}); err != nil {
			return ev, err
		}
	case FromJSON:
		// The upserts were routed by a value field a tombstone does not
		// have; a delete sent without routing would search the shard of
		// the id, answer not_found and leave the document in place.
		h, ok := header(r, d.cfg.TombstoneRoutingHeader)
		if !ok {
			return ev, fail(ReasonMissingRouting, "tombstone has no %q header, and its routing (%s) is in the value it does not have", d.cfg.TombstoneRoutingHeader, d.cfg.Routing)
		}
		if ev.Routing, err = d.textRouting(h, "header "+d.cfg.TombstoneRoutingHeader); err != nil {
			return ev, err
		}
	}
	return ev, nil
}

func (d *Decoder) idFrom(r *kgo.Record, val []byte, s span) ([]byte, *Error) {
	switch d.cfg.ID.Kind {
	case FromKey:
		if r.Key == nil {
			return nil, fail(ReasonMissingID, "record has no key")
		}
		return d.escapeID(r.Key, "record key")
	case FromHeader:
		h, ok := header(r, d.cfg.ID.Header)
		if !ok {
			return nil, fail(ReasonMissingID, "no header %q", d.cfg.ID.Header)
		}
		return d.escapeID(h, "header "+d.cfg.ID.Header)
	}
	if !s.found || jsonscan.KindAt(val, s.start) == jsonscan.Null {
		return nil, fail(ReasonMissingID, "no id at %s", d.cfg.ID)
	}
	switch k := jsonscan.KindAt(val, s.start); k {
	case jsonscan.String:
		raw := val[s.start+1 : s.end-1]
		n, err := jsonscan.UnescapedLen(raw)
		if err != nil {
			return nil, fail(ReasonInvalidID, "id at %s: %v", d.cfg.ID, err)
		}
		if n == 0 {
			return nil, fail(ReasonMissingID, "id at %s is empty", d.cfg.ID)
		}
		if n > MaxIDBytes {
			return nil, fail(ReasonIDTooLong, "id is %d bytes, OpenSearch allows at most %d", n, MaxIDBytes)
		}
		if !jsonscan.ValidText(raw) {
			return nil, fail(ReasonInvalidIDEncoding, "id at %s is not valid Unicode (invalid UTF-8 or a lone surrogate escape): %q", d.cfg.ID, truncate(raw, 64))
		}
		return raw, nil
	case jsonscan.Number:
		return val[s.start:s.end], nil
	default:
		return nil, fail(ReasonInvalidID, "id at %s is a JSON %s, want a string or number", d.cfg.ID, k)
	}
}

// escapeID turns the bytes of a key or header into an id (the body of a
// JSON string) under the configured IDEncoding, never merging two
// different byte strings into one id.
func (d *Decoder) escapeID(raw []byte, what string) ([]byte, *Error) {
	if len(raw) == 0 {
		return nil, fail(ReasonMissingID, "%s is empty", what)
	}
	if n := encodedLen(d.cfg.IDEncoding, len(raw)); n > MaxIDBytes {
		return nil, fail(ReasonIDTooLong, "id (%s, %s) is %d bytes, OpenSearch allows at most %d", what, d.cfg.IDEncoding, n, MaxIDBytes)
	}
	if d.cfg.IDEncoding != IDStrict {
		d.idbuf = appendEncoded(d.idbuf[:0], d.cfg.IDEncoding, raw)
		return d.idbuf, nil
	}
	if !jsonscan.NeedsEscape(raw) {
		return raw, nil
	}
	if !utf8.Valid(raw) {
		return nil, fail(ReasonInvalidIDEncoding, "id (%s) is not valid UTF-8: %s; OpenSearch would replace the bad bytes and merge it with other ids (index binary keys with the hex or base64url id encoding)", what, hexPreview(raw))
	}
	d.idbuf = jsonscan.AppendEscaped(d.idbuf[:0], raw)
	return d.idbuf, nil
}

// encodedLen is the length of n bytes under encoding e.
func encodedLen(e IDEncoding, n int) int {
	switch e {
	case IDHex:
		return hex.EncodedLen(n)
	case IDBase64URL:
		return base64.RawURLEncoding.EncodedLen(n)
	}
	return n
}

// appendEncoded appends raw under encoding e (hex or base64url); the
// result needs no JSON escaping.
func appendEncoded(dst []byte, e IDEncoding, raw []byte) []byte {
	if e == IDHex {
		return hex.AppendEncode(dst, raw)
	}
	return base64.RawURLEncoding.AppendEncode(dst, raw)
}

// textRouting turns routing bytes that must be text (a tombstone's routing
// header standing in for a JSON routing value) into a JSON string body.
func (d *Decoder) textRouting(raw []byte, what string) ([]byte, *Error) {
	if len(raw) == 0 {
		return nil, nil
	}
	if !jsonscan.NeedsEscape(raw) {
		return raw, nil
	}
	if !utf8.Valid(raw) {
		return nil, fail(ReasonInvalidRouting, "routing (%s) is not valid UTF-8: %s", what, hexPreview(raw))
	}
	d.rbuf = jsonscan.AppendEscaped(d.rbuf[:0], raw)
	return d.rbuf, nil
}

// hexPreview shows up to 32 bytes of b in hex, for error details.
func hexPreview(b []byte) string {
	if len(b) > 32 {
		return "0x" + hex.EncodeToString(b[:32]) + "..."
	}
	return "0x" + hex.EncodeToString(b)
}

func (d *Decoder) versionFrom(r *kgo.Record, val []byte, s span, src Source) (int64, *Error) {
	var lit []byte
	switch src.Kind {
	case FromOffset:
		if r.Offset < 0 {
			return 0, fail(ReasonNegativeVersion, "record offset %d is negative", r.Offset)
		}
		return r.Offset, nil
	case FromTimestamp:
		ms := r.Timestamp.UnixMilli()
		if ms < 0 {
			return 0, fail(ReasonNegativeVersion, "record timestamp %d is before 1970", ms)
		}
		return ms, nil
	case FromHeader:
		h, ok := header(r, src.Header)
		if !ok {
			return 0, fail(ReasonMissingVersion, "no header %q", src.Header)
		}
		lit = h
	default:
		if !s.found || jsonscan.KindAt(val, s.start) == jsonscan.Null {
			return 0, fail(ReasonMissingVersion, "no version at %s", src)
		}
		switch k := jsonscan.KindAt(val, s.start); k {
		case jsonscan.Number:
			lit = val[s.start:s.end]
		case jsonscan.String:
			lit = val[s.start+1 : s.end-1]
		default:
			return 0, fail(ReasonInvalidVersion, "version at %s is a JSON %s, want an integer", src, k)
		}
	}
	v, err := jsonscan.ParseInt(lit)
	switch {
	case err != nil:
		return 0, fail(ReasonInvalidVersion, "version %q is not an integer in the int64 range", truncate(lit, 64))
	case v < 0:
		return 0, fail(ReasonNegativeVersion, "version %d is negative; OpenSearch external versions are 0 to 2^63-1", v)
	}
	return v, nil
}

// routingFor reads the routing of an operation. An upsert without a
// routing value is indexed without routing. A delete without one is
// rejected (missing_routing): sent without routing it would look on the
// shard of its id, answer not_found (a success) and leave a routed
// document in place. A delete of a document that has no routing says so
// explicitly: a JSON null, or an empty header or key.
func (d *Decoder) routingFor(op Op, r *kgo.Record, val []byte, s span) ([]byte, *Error) {
	rt, present, err := d.routingFrom(r, val, s)
	if err == nil && !present && op == Delete {
		return nil, fail(ReasonMissingRouting, "delete without routing at %s (a JSON null or an empty value means none)", d.cfg.Routing)
	}
	return rt, err
}

// routingFrom reads the routing of a record; present is false when the
// source holds no value at all (absent field, header or key).
func (d *Decoder) routingFrom(r *kgo.Record, val []byte, s span) (rt []byte, present bool, err *Error) {
	var raw []byte
	switch d.cfg.Routing.Kind {
	case FromKey:
		if r.Key == nil {
			return nil, false, nil
		}
		raw = r.Key
	case FromHeader:
		h, ok := header(r, d.cfg.Routing.Header)
		if !ok {
			return nil, false, nil
		}
		raw = h
	case FromJSON:
		if !s.found {
			return nil, false, nil
		}
		switch jsonscan.KindAt(val, s.start) {
		case jsonscan.String:
			raw := val[s.start+1 : s.end-1]
			if !jsonscan.ValidText(raw) {
				return nil, true, fail(ReasonInvalidRouting, "routing at %s is not valid Unicode (invalid UTF-8 or a lone surrogate escape): %q", d.cfg.Routing, truncate(raw, 64))
			}
			return raw, true, nil
		case jsonscan.Number:
			return val[s.start:s.end], true, nil
		case jsonscan.Null:
			return nil, true, nil
		default:
			return nil, true, fail(ReasonInvalidRouting, "routing at %s must be a string or number", d.cfg.Routing)
		}
	}
	if len(raw) == 0 {
		return nil, true, nil
	}
	if d.cfg.IDEncoding != IDStrict {
		d.rbuf = appendEncoded(d.rbuf[:0], d.cfg.IDEncoding, raw)
		return d.rbuf, true, nil
	}
	rt, err = d.textRouting(raw, "record "+d.cfg.Routing.String())
	return rt, true, err
}

func parseOp(b []byte) (Op, bool) {
	switch string(b) {
	case "upsert", "index", "create", "update", "insert", "UPSERT", "INDEX", "CREATE", "UPDATE", "INSERT", "c", "u", "r":
		return Upsert, true
	case "delete", "DELETE", "d":
		return Delete, true
	}
	return 0, false
}

func header(r *kgo.Record, name string) ([]byte, bool) {
	for i := range r.Headers {
		if r.Headers[i].Key == name {
			return r.Headers[i].Value, r.Headers[i].Value != nil
		}
	}
	return nil, false
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "..."
}
