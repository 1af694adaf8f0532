package event

import (
	"strings"
	"testing"
	"time"

	"github.com/reindexer/reindexer/internal/jsonscan"
	"github.com/twmb/franz-go/pkg/kgo"
)

func rec(value string, headers ...string) *kgo.Record {
	r := &kgo.Record{Key: []byte("k1"), Value: []byte(value), Offset: 77, Timestamp: time.UnixMilli(1700000000123)}
	if value == "\x00null" {
		r.Value = nil
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: headers[i], Value: []byte(headers[i+1])})
	}
	return r
}

func TestDecodeEnvelope(t *testing.T) {
	d, err := NewDecoder(Config{MaxDocBytes: 200})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		rec     *kgo.Record
		op      Op
		id      string
		version int64
		doc     string
		reason  Reason
	}{
		{"upsert", rec(`{"op":"upsert","id":"r42-m1001","version":1732412345678001,"doc":{"body":"こんにちは","n":[1,2]}}`), Upsert, "r42-m1001", 1732412345678001, `{"body":"こんにちは","n":[1,2]}`, ""},
		{"field order and spaces", rec(` { "doc" : {"a":1} , "version":"5", "id":"x\"y", "op":"index" } `), Upsert, `x\"y`, 5, `{"a":1}`, ""},
		{"multiline doc is compacted", rec("{\"op\":\"upsert\",\"id\":\"a\",\"version\":1,\"doc\":{\n  \"a\": \"x y\",\n  \"b\": 2\n}}"), Upsert, "a", 1, `{"a":"x y","b":2}`, ""},
		{"numeric id", rec(`{"op":"upsert","id":42,"version":0,"doc":{}}`), Upsert, "42", 0, `{}`, ""},
		{"delete", rec(`{"op":"delete","id":"r1","version":9}`), Delete, "r1", 9, "", ""},
		{"delete ignores doc", rec(`{"op":"delete","id":"r1","version":9,"doc":"junk"}`), Delete, "r1", 9, "", ""},
		{"kafka tombstone", rec("\x00null", "version", "123"), Delete, "k1", 123, "", ""},
		{"tombstone without version header", rec("\x00null"), 0, "", 0, "", ReasonMissingVersion},
		{"malformed", rec(`{"op":"upsert","id":"a","version":1,"doc":{"a":}`), 0, "", 0, "", ReasonMalformedJSON},
		{"trailing garbage", rec(`{"op":"upsert","id":"a","version":1,"doc":{}} x`), 0, "", 0, "", ReasonMalformedJSON},
		{"not an object", rec(`[1,2]`), 0, "", 0, "", ReasonMalformedJSON},
		{"not json", rec(`hello`), 0, "", 0, "", ReasonMalformedJSON},
		{"missing id", rec(`{"op":"upsert","version":1,"doc":{}}`), 0, "", 0, "", ReasonMissingID},
		{"empty id", rec(`{"op":"upsert","id":"","version":1,"doc":{}}`), 0, "", 0, "", ReasonMissingID},
		{"object id", rec(`{"op":"upsert","id":{},"version":1,"doc":{}}`), 0, "", 0, "", ReasonInvalidID},
		{"id too long", rec(`{"op":"upsert","id":"` + strings.Repeat("é", 257) + `","version":1,"doc":{}}`), 0, "", 0, "", ReasonIDTooLong},
		{"id 512 bytes ok", rec(`{"op":"upsert","id":"` + strings.Repeat("x", 512) + `","version":1,"doc":{}}`), Upsert, strings.Repeat("x", 512), 1, `{}`, ""},
		{"missing version", rec(`{"op":"upsert","id":"a","doc":{}}`), 0, "", 0, "", ReasonMissingVersion},
		{"null version", rec(`{"op":"upsert","id":"a","version":null,"doc":{}}`), 0, "", 0, "", ReasonMissingVersion},
		{"negative version", rec(`{"op":"upsert","id":"a","version":-1,"doc":{}}`), 0, "", 0, "", ReasonNegativeVersion},
		{"float version", rec(`{"op":"upsert","id":"a","version":1.5,"doc":{}}`), 0, "", 0, "", ReasonInvalidVersion},
		{"non-numeric version", rec(`{"op":"upsert","id":"a","version":"abc","doc":{}}`), 0, "", 0, "", ReasonInvalidVersion},
		{"huge version", rec(`{"op":"upsert","id":"a","version":9223372036854775808,"doc":{}}`), 0, "", 0, "", ReasonInvalidVersion},
		{"unknown op", rec(`{"op":"merge","id":"a","version":1,"doc":{}}`), 0, "", 0, "", ReasonUnknownOp},
		{"missing op", rec(`{"id":"a","version":1,"doc":{}}`), 0, "", 0, "", ReasonMissingOp},
		{"missing doc", rec(`{"op":"upsert","id":"a","version":1}`), 0, "", 0, "", ReasonMissingDoc},
		{"array doc", rec(`{"op":"upsert","id":"a","version":1,"doc":[1]}`), 0, "", 0, "", ReasonInvalidDoc},
		{"doc too large", rec(`{"op":"upsert","id":"a","version":1,"doc":{"b":"` + strings.Repeat("x", 300) + `"}}`), 0, "", 0, "", ReasonDocTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := d.Decode(c.rec)
			if c.reason != "" {
				e, ok := err.(*Error)
				if !ok || e.Reason != c.reason {
					t.Fatalf("got err %v, want reason %s", err, c.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if ev.Op != c.op || string(ev.ID) != c.id || ev.Version != c.version || string(ev.Doc) != c.doc {
				t.Fatalf("got op=%v id=%q v=%d doc=%q", ev.Op, ev.ID, ev.Version, ev.Doc)
			}
		})
	}
}

func TestDecodeConfiguredSources(t *testing.T) {
	mustSrc := func(s string) Source {
		src, err := ParseSource(s)
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	// CDC-style: whole value is the document, id from key, version from a
	// header, op from a header, routing from a nested field.
	d, err := NewDecoder(Config{ID: mustSrc("key"), Version: mustSrc("header:v"), Op: mustSrc("header:op"),
		Doc: mustSrc("value"), Routing: mustSrc("json:/room/id")})
	if err != nil {
		t.Fatal(err)
	}
	r := rec(`{"room":{"id":"r\"7"},"body":"hi"}`, "v", "12", "op", "c")
	r.Key = []byte("a\"b")
	ev, err := d.Decode(r)
	if err != nil {
		t.Fatal(err)
	}
	if string(ev.ID) != `a\"b` || ev.Version != 12 || ev.Op != Upsert || string(ev.Doc) != string(r.Value) || string(ev.Routing) != `r\"7` {
		t.Fatalf("got %+v", ev)
	}

	// Nested pointers and offset versions.
	d, err = NewDecoder(Config{ID: mustSrc("json:/payload/after/id"), Version: mustSrc("offset"),
		Op: mustSrc("/payload/op"), Doc: mustSrc("/payload/after")})
	if err != nil {
		t.Fatal(err)
	}
	ev, err = d.Decode(rec(`{"payload":{"op":"u","after":{"id":"m~1","x":1}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(ev.ID) != "m~1" || ev.Version != 77 || string(ev.Doc) != `{"id":"m~1","x":1}` {
		t.Fatalf("got %+v", ev)
	}

	// Timestamp version, op none.
	d, err = NewDecoder(Config{ID: mustSrc("key"), Version: mustSrc("timestamp"), Op: mustSrc("none"), Doc: mustSrc("value")})
	if err != nil {
		t.Fatal(err)
	}
	ev, err = d.Decode(rec(`{"a":1}`))
	if err != nil || ev.Version != 1700000000123 || ev.Op != Upsert {
		t.Fatalf("got %+v %v", ev, err)
	}
}

func TestBadSources(t *testing.T) {
	for _, s := range []string{"", "json:", "json:x", "header:", "bogus", "/a~2b"} {
		if _, err := ParseSource(s); err == nil {
			t.Errorf("ParseSource(%q) accepted", s)
		}
	}
	if _, err := NewDecoder(Config{ID: Source{Kind: FromOffset}}); err == nil {
		t.Error("id from offset accepted")
	}
	if _, err := NewDecoder(Config{Doc: Source{Kind: FromKey}}); err == nil {
		t.Error("doc from key accepted")
	}
	if s, _ := ParseSource("json:/a~1b/c~0d"); len(s.Pointer) != 2 || s.Pointer[0] != "a/b" || s.Pointer[1] != "c~d" {
		t.Errorf("pointer unescape wrong: %q", s.Pointer)
	}
}

func BenchmarkDecodeEnvelope(b *testing.B) {
	d, _ := NewDecoder(Config{})
	r := rec(`{"op":"upsert","id":"r42-m1001","version":1732412345678001,"doc":{"message_id":"m1001","room_id":"r42","sender_id":"u7","sender_name":"佐藤 花子","body":"明日の会議は10時からです。資料は共有フォルダにあります。 Let me know if the agenda works for you!","created_at":"2026-11-24T09:12:25.678Z","edited_at":null,"edit_count":0,"attachments":[],"mentions":["u3","u9"],"reactions":{"👍":2},"lang":"ja"}}`)
	b.SetBytes(int64(len(r.Value)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Decode(r); err != nil {
			b.Fatal(err)
		}
	}
}

// osView is the id OpenSearch stores for the JSON string body id: the
// decoded string with invalid UTF-8 (and lone surrogates) replaced by
// U+FFFD, as Jackson and Lucene do.
func osView(t *testing.T, id []byte) string {
	t.Helper()
	u, err := jsonscan.AppendUnescaped(nil, id)
	if err != nil {
		t.Fatalf("id %q is not a JSON string body: %v", id, err)
	}
	return strings.ToValidUTF8(string(u), "\uFFFD")
}

// TestBinaryKeysNeverCollide (issue 13 item 3): two different record keys,
// headers or JSON ids never become the same OpenSearch id. Keys ff78 and
// fe78 both used to become "\ufffdx"; now the strict default rejects them
// (invalid_id_encoding) and hex/base64url encode every key losslessly.
// Every two-byte key is tried, as key, as tombstone key and as header.
func TestBinaryKeysNeverCollide(t *testing.T) {
	for _, enc := range []IDEncoding{IDStrict, IDHex, IDBase64URL} {
		for _, src := range []string{"key", "tombstone", "header:id"} {
			t.Run(enc.String()+"/"+src, func(t *testing.T) {
				cfg := Config{IDEncoding: enc, Version: Source{Kind: FromOffset}}
				if src != "tombstone" {
					cfg.ID, _ = ParseSource(src)
				}
				d, err := NewDecoder(cfg)
				if err != nil {
					t.Fatal(err)
				}
				seen := map[string][]byte{}
				rejected := 0
				for k := 0; k < 1<<16; k++ {
					key := []byte{byte(k >> 8), byte(k)}
					r := &kgo.Record{Key: key, Value: []byte(`{"op":"upsert","id":"j","doc":{}}`)}
					switch src {
					case "tombstone":
						r.Value = nil
					case "header:id":
						r.Key = []byte("k")
						r.Headers = []kgo.RecordHeader{{Key: "id", Value: key}}
					}
					ev, err := d.Decode(r)
					if err != nil {
						if e, ok := err.(*Error); !ok || e.Reason != ReasonInvalidIDEncoding || enc != IDStrict {
							t.Fatalf("key %x: %v", key, err)
						}
						rejected++
						continue
					}
					v := osView(t, ev.ID)
					if prev, dup := seen[v]; dup {
						t.Fatalf("keys %x and %x both become id %q", prev, key, v)
					}
					seen[v] = key
				}
				if enc == IDStrict && (rejected == 0 || len(seen) == 0) {
					t.Fatalf("strict: %d rejected, %d accepted; want both", rejected, len(seen))
				}
				if enc != IDStrict && rejected != 0 {
					t.Fatalf("%s rejected %d keys", enc, rejected)
				}
			})
		}
	}

	// The two keys of the report, and their ids under each encoding.
	for _, c := range []struct {
		enc  IDEncoding
		want [2]string
	}{{IDHex, [2]string{"ff78", "fe78"}}, {IDBase64URL, [2]string{"_3g", "_ng"}}} {
		none, _ := ParseSource("none")
		d, _ := NewDecoder(Config{ID: Source{Kind: FromKey}, IDEncoding: c.enc, Op: none, Doc: Source{Kind: FromValue}, Version: Source{Kind: FromOffset}})
		for i, k := range []string{"\xffx", "\xfex"} {
			ev, err := d.Decode(&kgo.Record{Key: []byte(k), Value: []byte(`{}`)})
			if err != nil || string(ev.ID) != c.want[i] {
				t.Errorf("%s: key %x -> %q, %v; want %q", c.enc, k, ev.ID, err, c.want[i])
			}
		}
	}
}

// TestJSONIDsNeverCollide: JSON string ids that OpenSearch would alter
// (raw invalid UTF-8, lone surrogate escapes) are dead-lettered; valid
// escapes, surrogate pairs included, pass.
func TestJSONIDsNeverCollide(t *testing.T) {
	d, err := NewDecoder(Config{})
	if err != nil {
		t.Fatal(err)
	}
	doc := func(id string) *kgo.Record {
		return rec(`{"op":"upsert","id":"` + id + `","version":1,"doc":{}}`)
	}
	for _, id := range []string{`\ud800x`, `\udbffx`, `\udc00`, "\xffx", "\xfex", `a\ud83d`} {
		_, err := d.Decode(doc(id))
		if e, ok := err.(*Error); !ok || e.Reason != ReasonInvalidIDEncoding {
			t.Errorf("id %q: got %v, want %s", id, err, ReasonInvalidIDEncoding)
		}
	}
	for _, id := range []string{`\ud83d\ude00`, `caf\u00e9`, "café", `a\"b`} {
		if _, err := d.Decode(doc(id)); err != nil {
			t.Errorf("id %q: %v", id, err)
		}
	}
}

// TestRoutingEncoding: routing values from a key or header follow the id
// encoding (strict rejects invalid UTF-8: two keys would share a routing
// value OpenSearch cannot tell apart); JSON routing must be valid text.
func TestRoutingEncoding(t *testing.T) {
	for _, c := range []struct {
		enc     IDEncoding
		routing string
		key     string
		want    string
		reason  Reason
	}{
		{IDStrict, "key", "\xffx", "", ReasonInvalidRouting},
		{IDStrict, "key", "r\"1", `r\"1`, ""},
		{IDHex, "key", "\xffx", "ff78", ""},
		{IDBase64URL, "header:rt", "\xfex", "_ng", ""},
		{IDStrict, "header:rt", "\xfex", "", ReasonInvalidRouting},
	} {
		src, _ := ParseSource(c.routing)
		d, err := NewDecoder(Config{Routing: src, IDEncoding: c.enc})
		if err != nil {
			t.Fatal(err)
		}
		r := rec(`{"op":"upsert","id":"a","version":1,"doc":{}}`, "rt", c.key)
		r.Key = []byte(c.key)
		ev, err := d.Decode(r)
		if c.reason != "" {
			if e, ok := err.(*Error); !ok || e.Reason != c.reason {
				t.Errorf("%s %s %x: got %v, want %s", c.enc, c.routing, c.key, err, c.reason)
			}
			continue
		}
		if err != nil || string(ev.Routing) != c.want || string(ev.ID) != "a" {
			t.Errorf("%s %s %x: routing %q id %q %v, want routing %q", c.enc, c.routing, c.key, ev.Routing, ev.ID, err, c.want)
		}
	}
	d, _ := NewDecoder(Config{Routing: JSON("/rt")})
	for _, rt := range []string{`"\ud800"`, "\"\xff\"", `{}`} {
		_, err := d.Decode(rec(`{"op":"upsert","id":"a","version":1,"rt":` + rt + `,"doc":{}}`))
		if e, ok := err.(*Error); !ok || e.Reason != ReasonInvalidRouting {
			t.Errorf("json routing %s: got %v, want %s", rt, err, ReasonInvalidRouting)
		}
	}
}

// TestTombstoneJSONRouting (issue 13 item 6): with routing from the JSON
// value, a Kafka tombstone (null value) takes its routing from the
// tombstone routing header; without that header it is rejected
// (missing_routing) instead of being sent to the id's shard, where the
// delete would find nothing and the document would stay.
func TestTombstoneJSONRouting(t *testing.T) {
	d, err := NewDecoder(Config{Routing: JSON("/room_id")})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := d.Decode(rec(`{"op":"upsert","id":"m1","version":1,"room_id":"r7","doc":{}}`))
	if err != nil || string(ev.Routing) != "r7" {
		t.Fatalf("upsert routing %q, %v", ev.Routing, err)
	}
	ev, err = d.Decode(rec("\x00null", "version", "2", "routing", "r7"))
	if err != nil || ev.Op != Delete || string(ev.Routing) != "r7" || string(ev.ID) != "k1" {
		t.Fatalf("tombstone with routing header: %+v %v, want a delete of k1 routed r7", ev, err)
	}
	_, err = d.Decode(rec("\x00null", "version", "2"))
	if e, ok := err.(*Error); !ok || e.Reason != ReasonMissingRouting {
		t.Fatalf("tombstone without routing header: got %v, want %s", err, ReasonMissingRouting)
	}
	ev, err = d.Decode(rec("\x00null", "version", "2", "routing", ""))
	if err != nil || ev.Routing != nil {
		t.Fatalf("empty routing header means no routing: %+v %v", ev, err)
	}
	_, err = d.Decode(rec("\x00null", "version", "2", "routing", "\xff"))
	if e, ok := err.(*Error); !ok || e.Reason != ReasonInvalidRouting {
		t.Fatalf("tombstone with invalid UTF-8 routing: got %v, want %s", err, ReasonInvalidRouting)
	}
	d, _ = NewDecoder(Config{Routing: JSON("/room_id"), TombstoneRoutingHeader: "x-room"})
	ev, err = d.Decode(rec("\x00null", "version", "2", "x-room", "r9"))
	if err != nil || string(ev.Routing) != "r9" {
		t.Fatalf("custom tombstone routing header: %+v %v", ev, err)
	}
	// Routing from the key or a header needs no help.
	d, _ = NewDecoder(Config{Routing: Source{Kind: FromKey}})
	if ev, err = d.Decode(rec("\x00null", "version", "2")); err != nil || string(ev.Routing) != "k1" {
		t.Fatalf("key routing on a tombstone: %+v %v", ev, err)
	}
}

func TestParseIDEncoding(t *testing.T) {
	for _, e := range []IDEncoding{IDStrict, IDHex, IDBase64URL} {
		if got, err := ParseIDEncoding(e.String()); err != nil || got != e {
			t.Errorf("ParseIDEncoding(%s) = %v, %v", e, got, err)
		}
	}
	if _, err := ParseIDEncoding("base64"); err == nil {
		t.Error("base64 accepted")
	}
	if _, err := NewDecoder(Config{IDEncoding: 9}); err == nil {
		t.Error("unknown id encoding accepted")
	}
}

// TestDeleteWithoutRouting: with routing configured, a delete that carries
// no routing value at all is rejected (missing_routing) rather than sent to
// the shard of its id, where it would find nothing; an explicit "none" (a
// JSON null, an empty header) is a delete of an unrouted document. Upserts
// without routing are indexed without it, as before.
func TestDeleteWithoutRouting(t *testing.T) {
	d, err := NewDecoder(Config{Routing: JSON("/room")})
	if err != nil {
		t.Fatal(err)
	}
	hd, err := NewDecoder(Config{Routing: Source{Kind: FromHeader, Header: "rt"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		d       *Decoder
		rec     *kgo.Record
		routing string
		reason  Reason
	}{
		{"json delete without routing", d, rec(`{"op":"delete","id":"m1","version":2}`), "", ReasonMissingRouting},
		{"json delete with routing", d, rec(`{"op":"delete","id":"m1","version":2,"room":"r7"}`), "r7", ""},
		{"json delete, routing null", d, rec(`{"op":"delete","id":"m1","version":2,"room":null}`), "", ""},
		{"json upsert without routing", d, rec(`{"op":"upsert","id":"m1","version":2,"doc":{}}`), "", ""},
		{"header delete without routing", hd, rec(`{"op":"delete","id":"m1","version":2}`), "", ReasonMissingRouting},
		{"header delete, empty routing", hd, rec(`{"op":"delete","id":"m1","version":2}`, "rt", ""), "", ""},
		{"header tombstone without routing", hd, rec("\x00null", "version", "2"), "", ReasonMissingRouting},
		{"header tombstone with routing", hd, rec("\x00null", "version", "2", "rt", "r7"), "r7", ""},
		{"header upsert without routing", hd, rec(`{"op":"upsert","id":"m1","version":2,"doc":{}}`), "", ""},
	} {
		ev, err := c.d.Decode(c.rec)
		if c.reason != "" {
			if e, ok := err.(*Error); !ok || e.Reason != c.reason {
				t.Errorf("%s: got %v, want %s", c.name, err, c.reason)
			}
			continue
		}
		if err != nil || string(ev.Routing) != c.routing || (c.routing == "" && ev.Routing != nil) {
			t.Errorf("%s: routing %q, %v; want %q", c.name, ev.Routing, err, c.routing)
		}
	}
}
