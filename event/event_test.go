package event

import (
	"strings"
	"testing"
	"time"

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
