package chatgen

import (
	"encoding/json"
	"testing"
	"time"
)

func TestAppendTimeMatchesTimeFormat(t *testing.T) {
	r := newRNG(1)
	cases := []int64{1, 999, 1000, 86400_000_000 - 1, 951782400_000_000 /* 2000-02-29 */, DefaultStartVersion, 4102444799_999_999}
	for range 100000 {
		cases = append(cases, 1+r.int63n(4102444800_000_000)) // up to 2100
	}
	for _, us := range cases {
		want := `"` + time.UnixMicro(us).UTC().Format("2006-01-02T15:04:05.000Z07:00") + `"`
		if got := string(appendTime(nil, us)); got != want {
			t.Fatalf("appendTime(%d) = %s, want %s", us, got, want)
		}
	}
	if got := string(appendTime(nil, 0)); got != "null" {
		t.Errorf("appendTime(0) = %s", got)
	}
}

func TestAppendStringModes(t *testing.T) {
	in := "a\"b\\c\nd\te\r\x01<&> 日本🎉\u2028"
	for _, mode := range []escMode{escMinimal, escHTML, escASCII} {
		b := appendString(nil, in, mode)
		var out string
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("mode %d: %s: %v", mode, b, err)
		}
		if out != in {
			t.Fatalf("mode %d: decoded %q, want %q", mode, out, in)
		}
		for i, c := range b {
			if mode == escASCII && c >= 0x80 {
				t.Fatalf("mode ascii: non-ASCII byte at %d in %s", i, b)
			}
			if mode == escHTML && (c == '<' || c == '>' || c == '&') {
				t.Fatalf("mode html: unescaped %q in %s", c, b)
			}
		}
	}
	want := `"a\"b\\c\nd\te\r\u0001<&> 日本🎉` + "\u2028" + `"`
	if got := string(appendString(nil, in, escMinimal)); got != want {
		t.Errorf("minimal: %s, want %s", got, want)
	}
	if got, want := string(appendString(nil, "🎉日", escASCII)), `"\ud83c\udf89\u65e5"`; got != want {
		t.Errorf("ascii: %s, want %s", got, want)
	}
	if got, want := string(appendString(nil, "<a>&\u2029", escHTML)), `"\u003ca\u003e\u0026\u2029"`; got != want {
		t.Errorf("html: %s, want %s", got, want)
	}
}
