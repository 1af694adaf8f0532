package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// fuzzConfigs cover every source kind of every field (--id-from,
// --version-from, --op-from, --doc-from, --routing-from).
func fuzzConfigs(t testing.TB) []*Decoder {
	src := func(s string) Source {
		x, err := ParseSource(s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	cfgs := []Config{
		{}, // the default envelope
		{MaxDocBytes: 64},
		{ID: src("key"), Version: src("header:v"), Op: src("header:op"), Doc: src("value"), Routing: src("key")},
		{ID: src("header:id"), Version: src("offset"), Op: src("none"), Doc: src("json:/payload/after"), Routing: src("header:rt")},
		{ID: src("json:/payload/after/id"), Version: src("timestamp"), Op: src("json:/payload/op"), Doc: src("json:/payload/after"), Routing: src("json:/payload/after/room")},
		{ID: src("json:/a~1b/0"), Version: src("json:/m~0v"), Op: src("/op"), Doc: src("/doc"), Routing: src("/r"), TombstoneVersionHeader: "x-version"},
	}
	var out []*Decoder
	for _, c := range cfgs {
		d, err := NewDecoder(c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// validBody reports whether b is a valid body of a JSON string literal.
func validBody(b []byte) bool {
	var s string
	return json.Unmarshal(append(append([]byte{'"'}, b...), '"'), &s) == nil
}

// FuzzDecode decodes arbitrary records with every decoder configuration and
// checks that whatever Decode accepts can be put into a bulk body as is: a
// non-empty id that is a valid JSON string body of at most 512 bytes, a
// non-negative version, a known op, a one-line JSON object as document, a
// valid routing; and that whatever it rejects is an *Error with a reason.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"op":"upsert","id":"r42-m1001","version":1732412345678001,"doc":{"room_id":"r42","body":"こんにちは"}}`), []byte("r42-m1001"), []byte("7"), false, int64(5), int64(1700000000000))
	f.Add([]byte(`{"op":"delete","id":"r42-m1001","version":1732412399000000}`), []byte("r42-m1001"), []byte("delete"), false, int64(0), int64(0))
	f.Add([]byte(nil), []byte("k"), []byte("123"), true, int64(9), int64(-5))
	f.Add([]byte("{\"payload\":{\"op\":\"c\",\"after\":{\"id\":\"x\\u00e9\",\"room\":7,\"n\":[1,\n2]}}}"), []byte("\xff\x00"), []byte("upsert"), false, int64(1), int64(2))
	f.Add([]byte(`{"a/b":["id\"1"],"m~v":"12","op":"index","doc":{"x":{}},"r":"r\n1"}`), []byte(""), []byte("-1"), false, int64(3), int64(4))
	f.Add([]byte(` {"doc" : { "a" : [ 1 , 2 ] } , "version":"9223372036854775807","id":12.5e3,"op":"u"} `), []byte("k"), []byte("1"), false, int64(0), int64(0))
	decoders := fuzzConfigs(f)
	f.Fuzz(func(t *testing.T, value, key, hdr []byte, null bool, offset, ts int64) {
		r := &kgo.Record{Key: key, Value: value, Offset: offset, Timestamp: time.UnixMilli(ts)}
		if null {
			r.Value = nil
		} else if r.Value == nil {
			r.Value = []byte{}
		}
		for _, name := range []string{"v", "op", "id", "rt", "version", "x-version"} {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: name, Value: hdr})
		}
		for i, d := range decoders {
			ev, err := d.Decode(r)
			if err != nil {
				var de *Error
				if !errors.As(err, &de) || de.Reason == "" {
					t.Fatalf("decoder %d: error %v is not an *Error with a reason", i, err)
				}
				continue
			}
			if len(ev.ID) == 0 || !validBody(ev.ID) {
				t.Fatalf("decoder %d: id %q is not a non-empty JSON string body", i, ev.ID)
			}
			var id string
			_ = json.Unmarshal(append(append([]byte{'"'}, ev.ID...), '"'), &id)
			if len(id) > MaxIDBytes {
				t.Fatalf("decoder %d: id of %d bytes accepted", i, len(id))
			}
			if ev.Version < 0 {
				t.Fatalf("decoder %d: negative version %d accepted", i, ev.Version)
			}
			if ev.Routing != nil && !validBody(ev.Routing) {
				t.Fatalf("decoder %d: routing %q is not a JSON string body", i, ev.Routing)
			}
			switch ev.Op {
			case Delete:
				if ev.Doc != nil {
					t.Fatalf("decoder %d: delete with a document", i)
				}
			case Upsert:
				var obj map[string]any
				if json.Unmarshal(ev.Doc, &obj) != nil || obj == nil {
					t.Fatalf("decoder %d: document %q is not a JSON object", i, ev.Doc)
				}
				if bytes.ContainsAny(ev.Doc, "\n\r") {
					t.Fatalf("decoder %d: document %q spans lines", i, ev.Doc)
				}
				if max := d.Config().MaxDocBytes; max > 0 && len(ev.Doc) > max {
					t.Fatalf("decoder %d: document of %d bytes over the %d-byte limit", i, len(ev.Doc), max)
				}
			default:
				t.Fatalf("decoder %d: op %v", i, ev.Op)
			}
		}
	})
}
