package jsonscan

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

var corpus = []string{
	`{}`, `[]`, `0`, `-0`, `1.5e10`, `-1E-2`, `"a"`, `"\u00e9\ud83d\ude00"`, `true`, `false`, `null`,
	`{"a":1,"b":[1,2,{"c":"d"}],"e":{"f":null}}`,
	"{\n  \"op\": \"upsert\",\n  \"doc\": {\"body\": \"x\\ny\"}\n}",
	`{"a":1,}`, `[1,]`, `{'a':1}`, `01`, `1.`, `1e`, `"\x"`, "\"a\x01\"", `{"a"1}`, `nul`, `[1 2]`, `{"a":1}}`,
	`"\ud800"`, `{"k\"ey":"v"}`, `-`, `--1`, `{"a":[}`, ` {"a" : 1 } `, `"日本語のメッセージ"`,
}

func TestDocumentMatchesEncodingJSON(t *testing.T) {
	for _, c := range corpus {
		_, _, _, err := Document([]byte(c))
		if want := json.Valid([]byte(c)); (err == nil) != want {
			t.Errorf("Document(%q) err=%v, encoding/json valid=%v", c, err, want)
		}
	}
}

func FuzzDocument(f *testing.F) {
	for _, c := range corpus {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, e, multi, err := Document(b)
		if (err == nil) != json.Valid(b) {
			t.Fatalf("Document(%q) err=%v, encoding/json valid=%v", b, err, json.Valid(b))
		}
		if err != nil {
			return
		}
		var want bytes.Buffer
		if cerr := json.Compact(&want, b[s:e]); cerr != nil {
			t.Fatal(cerr)
		}
		got := AppendCompact(nil, b[s:e])
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("AppendCompact(%q) = %q, want %q", b[s:e], got, want.Bytes())
		}
		if !multi && bytes.ContainsAny(b[s:e], "\n\r") {
			t.Fatalf("multiline not reported for %q", b[s:e])
		}
	})
}

func TestLookup(t *testing.T) {
	doc := []byte(`{"a":{"b":[10,{"c":"x"}]},"k\/s":2,"z":true}`)
	cases := []struct {
		path  []string
		want  string
		found bool
	}{
		{[]string{"a", "b", "0"}, `10`, true},
		{[]string{"a", "b", "1", "c"}, `"x"`, true},
		{[]string{"k/s"}, `2`, true},
		{[]string{"z"}, `true`, true},
		{[]string{"a", "b", "2"}, ``, false},
		{[]string{"missing"}, ``, false},
		{[]string{"z", "q"}, ``, false},
		{nil, string(doc), true},
	}
	for _, c := range cases {
		s, e, found, err := Lookup(doc, 0, c.path)
		if err != nil {
			t.Fatalf("Lookup(%v): %v", c.path, err)
		}
		if found != c.found || (found && string(doc[s:e]) != c.want) {
			t.Errorf("Lookup(%v) = %q,%v want %q,%v", c.path, doc[s:e], found, c.want, c.found)
		}
	}
}

func TestParseInt(t *testing.T) {
	good := map[string]int64{"0": 0, "-1": -1, "9223372036854775807": 1<<63 - 1, "-9223372036854775808": -1 << 63, "1732412345678001": 1732412345678001}
	for s, want := range good {
		if got, err := ParseInt([]byte(s)); err != nil || got != want {
			t.Errorf("ParseInt(%s) = %d, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "-", "01", "1.5", "1e3", "9223372036854775808", "abc", "99999999999999999999999"} {
		if _, err := ParseInt([]byte(s)); err == nil {
			t.Errorf("ParseInt(%q) accepted", s)
		}
	}
}

func TestEscapeRoundTrip(t *testing.T) {
	for _, s := range []string{"plain", `q"uote`, `back\slash`, "nl\n\t\x01", "日本語 😀", "bad\xffutf8"} {
		lit := `"` + string(AppendEscaped(nil, []byte(s))) + `"`
		var got string
		if err := json.Unmarshal([]byte(lit), &got); err != nil {
			t.Fatalf("escaped %q is not a JSON string: %s: %v", s, lit, err)
		}
		want := strings.ToValidUTF8(s, "\uFFFD")
		if got != want {
			t.Errorf("round trip %q -> %q", s, got)
		}
		u, err := AppendUnescaped(nil, []byte(lit[1:len(lit)-1]))
		if err != nil || string(u) != want {
			t.Errorf("AppendUnescaped(%s) = %q, %v", lit, u, err)
		}
		if n, _ := UnescapedLen([]byte(lit[1 : len(lit)-1])); n != len(want) {
			t.Errorf("UnescapedLen(%s) = %d want %d", lit, n, len(want))
		}
		if NeedsEscape([]byte(s)) == (lit[1:len(lit)-1] == s) {
			t.Errorf("NeedsEscape(%q) inconsistent with escaping", s)
		}
	}
}

func TestKeyEquals(t *testing.T) {
	if !KeyEquals([]byte(`i\u0064`), "id") || KeyEquals([]byte(`idx`), "id") || !KeyEquals([]byte("id"), "id") {
		t.Fatal("KeyEquals wrong")
	}
}

// TestValidText: strings OpenSearch would alter (invalid UTF-8, lone
// surrogate escapes) are told apart from valid ones, escaped or not.
func TestValidText(t *testing.T) {
	valid := []string{``, `plain`, `日本語`, `\u00e9`, `\ud83d\ude00`, `a\"b\\c\/d\n`, `\uD83D\uDE00x`, `😀`}
	invalid := []string{"\xff", "x\xfex", "\xed\xa0\x80", `\ud800`, `\ud800x`, `\udbffx`, `\udc00`, `\ud83d\u0041`, `x\ud83d`, `\ud83d\\`, "\xc3"}
	for _, s := range valid {
		if !ValidText([]byte(s)) {
			t.Errorf("ValidText(%q) = false, want true", s)
		}
	}
	for _, s := range invalid {
		if ValidText([]byte(s)) {
			t.Errorf("ValidText(%q) = true, want false", s)
		}
	}
}
