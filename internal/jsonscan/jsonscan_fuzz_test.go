package jsonscan

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
	"unicode/utf8"
)

// depth is the deepest nesting of brackets in b (ignoring strings roughly:
// good enough to skip inputs near MaxDepth).
func depth(b []byte) int {
	d, m := 0, 0
	for _, c := range b {
		switch c {
		case '[', '{':
			d++
			m = max(m, d)
		case ']', '}':
			d--
		}
	}
	return m
}

func decode(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return v
}

// FuzzFields checks the scanner against encoding/json: it accepts exactly
// the documents encoding/json accepts (below MaxDepth), Compact keeps the
// value and leaves no line break, and Fields and Lookup find every member
// of an object (FuzzDocument compares Compact byte for byte).
func FuzzFields(f *testing.F) {
	for _, s := range []string{
		`{"op":"upsert","id":"r42-m1001","version":1732412345678001,"doc":{"room_id":"r42","body":"こんにちは"}}`,
		"{\n  \"a\": [1, 2.5e-3, -0, true, false, null],\n  \"b\": {\"c\": \"x\\ny\\u00e9\\ud83d\\ude00\"}\n}",
		`[]`, `""`, `0`, `-`, `01`, `1.`, `1e`, `{"a":1,}`, `[1,]`, `{'a':1}`, "\"\x01\"", `"\x"`, `"\u12"`,
		`{"a" : 1 , "b" : [ ] , "c" : { } }`, ` 1 `, `nul`, `truex`, `{"a":1}{"b":2}`, "\"\xff\xfe\"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if depth(b) >= MaxDepth-1 {
			return
		}
		start, end, multiline, err := Document(b)
		valid := json.Valid(b)
		if (err == nil) != valid {
			t.Fatalf("Document(%q) err = %v, encoding/json says valid = %v", b, err, valid)
		}
		if err != nil {
			return
		}
		v := b[start:end]
		c := AppendCompact(nil, v)
		if bytes.ContainsAny(c, "\n\r") {
			t.Fatalf("Compact(%q) = %q has a line break", v, c)
		}
		if !json.Valid(c) || !reflect.DeepEqual(decode(t, c), decode(t, v)) {
			t.Fatalf("Compact(%q) = %q changes the value", v, c)
		}
		if !multiline && bytes.ContainsAny(v, "\n\r") {
			t.Fatalf("Document(%q) says one line", v)
		}
		if KindAt(v, 0) != Object {
			return
		}
		n := 0
		_, err = Fields(v, 0, func(fl Field) bool {
			n++
			key, kerr := AppendUnescaped(nil, fl.Key)
			if kerr != nil {
				t.Fatalf("key %q of a valid object: %v", fl.Key, kerr)
			}
			s, e, found, lerr := Lookup(v, 0, []string{string(key)})
			if lerr != nil || !found || e <= s {
				t.Fatalf("Lookup of key %q: %d-%d %v %v", key, s, e, found, lerr)
			}
			return true
		})
		if err != nil {
			t.Fatalf("Fields of a valid object: %v", err)
		}
		var members []json.RawMessage
		dec := json.NewDecoder(bytes.NewReader(v))
		_, _ = dec.Token()
		for dec.More() {
			_, _ = dec.Token() // key
			var m json.RawMessage
			if err := dec.Decode(&m); err != nil {
				t.Fatal(err)
			}
			members = append(members, m)
		}
		if n != len(members) {
			t.Fatalf("Fields saw %d members, encoding/json %d", n, len(members))
		}
	})
}

// FuzzParseInt checks ParseInt against strconv on JSON integer literals.
func FuzzParseInt(f *testing.F) {
	for _, s := range []string{"0", "-0", "7", "-1", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "01", "1.0", "1e3", "", "-", "+1", "18446744073709551616"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseInt(b)
		want, serr := strconv.ParseInt(string(b), 10, 64)
		jsonInt := len(b) > 0 && b[0] != '+' && !(len(b) > 1 && b[0] == '0') && !(len(b) > 2 && b[0] == '-' && b[1] == '0')
		switch {
		case err == nil && (serr != nil || got != want):
			t.Fatalf("ParseInt(%q) = %d, strconv: %d, %v", b, got, want, serr)
		case err != nil && serr == nil && jsonInt:
			t.Fatalf("ParseInt(%q) failed (%v), strconv reads %d", b, err, want)
		}
	})
}

// FuzzStrings checks escaping and unescaping against encoding/json: an
// escaped string decodes back to itself, a valid literal unescapes to what
// encoding/json decodes, and UnescapedLen agrees.
func FuzzStrings(f *testing.F) {
	for _, s := range []string{"", "plain", `a"b\c`, "tab\tnew\nline", "\x00\x1f", "こんにちは", "\xff\xfe", `\u00e9`, `\ud83d\ude00`, `\ud83d`, `\n\"\\\/`, `\x`, `\u12`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		// Escaping any bytes gives a literal that decodes to s (invalid
		// UTF-8 replaced by U+FFFD, as encoding/json does).
		esc := AppendEscaped(nil, s)
		lit := append(append([]byte{'"'}, esc...), '"')
		if end, err := String1(lit, 0); err != nil || end != len(lit) {
			t.Fatalf("String1 of escaped %q: %d, %v", s, end, err)
		}
		var back string
		if err := json.Unmarshal(lit, &back); err != nil {
			t.Fatalf("escaped %q = %q does not decode: %v", s, esc, err)
		}
		if utf8.Valid(s) && back != string(s) {
			t.Fatalf("escaped %q decodes to %q", s, back)
		}
		if NeedsEscape(s) == bytes.Equal(esc, s) && NeedsEscape(s) {
			t.Fatalf("NeedsEscape(%q) but escaping changes nothing", s)
		}
		// Treating s as the body of a literal.
		lit = append(append([]byte{'"'}, s...), '"')
		end, serr := String1(lit, 0)
		if serr == nil && end != len(lit) {
			return // s holds an unescaped quote: not the body of one literal
		}
		var want string
		jerr := json.Unmarshal(lit, &want)
		if (serr == nil) != (jerr == nil) {
			t.Fatalf("String1(%q) err = %v, encoding/json err = %v", lit, serr, jerr)
		}
		if serr != nil {
			return
		}
		got, err := AppendUnescaped(nil, s)
		if err != nil {
			t.Fatalf("AppendUnescaped(%q) of a valid literal: %v", s, err)
		}
		if utf8.Valid(got) && string(got) != want {
			t.Fatalf("AppendUnescaped(%q) = %q, encoding/json %q", s, got, want)
		}
		if n, err := UnescapedLen(s); err != nil || n != len(got) {
			t.Fatalf("UnescapedLen(%q) = %d, %v; want %d", s, n, err, len(got))
		}
	})
}
