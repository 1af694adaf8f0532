package itest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/reindexer/reindexer/internal/refmodel"
)

func TestParseEnvFile(t *testing.T) {
	in := `# written by scripts/services.sh
KAFKA_BROKERS=127.0.0.1:9092
export OPENSEARCH_URL="http://127.0.0.1:9200/"

OPENSEARCH_SNAPSHOT_DIR='/tmp/snap shots'
EMPTY=
WITH_EQUALS=a=b
`
	got, err := ParseEnvFile(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"KAFKA_BROKERS":           "127.0.0.1:9092",
		"OPENSEARCH_URL":          "http://127.0.0.1:9200/",
		"OPENSEARCH_SNAPSHOT_DIR": "/tmp/snap shots",
		"EMPTY":                   "",
		"WITH_EQUALS":             "a=b",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	for _, bad := range []string{"no equals sign", "=value", "TWO WORDS=x"} {
		if _, err := ParseEnvFile(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseEnvFile(%q) accepted it", bad)
		}
	}
}

func TestEnvFrom(t *testing.T) {
	lookup := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	// Defaults.
	env := EnvFrom(lookup(nil), nil)
	if strings.Join(env.KafkaBrokers, ",") != DefaultKafkaBrokers || env.OpenSearchURL != DefaultOpenSearchURL ||
		env.SnapshotDir != "" || env.RequireRealServices || env.KeepTestData {
		t.Errorf("defaults: %+v", env)
	}
	// The file fills what the environment leaves unset or empty.
	file := map[string]string{
		"KAFKA_BROKERS": "10.0.0.1:9092", "OPENSEARCH_URL": "http://file:9200/",
		"OPENSEARCH_SNAPSHOT_DIR": "/snap", "REQUIRE_REAL_SERVICES": "1",
	}
	env = EnvFrom(lookup(map[string]string{"KAFKA_BROKERS": " a:1, ,b:2 ", "OPENSEARCH_URL": "", "KEEP_TEST_DATA": "true"}), file)
	if got := strings.Join(env.KafkaBrokers, ","); got != "a:1,b:2" {
		t.Errorf("brokers %q", got)
	}
	if env.OpenSearchURL != "http://file:9200" || env.SnapshotDir != "/snap" || !env.RequireRealServices || !env.KeepTestData {
		t.Errorf("merged: %+v", env)
	}
	env = EnvFrom(lookup(map[string]string{"REQUIRE_REAL_SERVICES": "0", "KEEP_TEST_DATA": "yes"}), file)
	if env.RequireRealServices || !env.KeepTestData {
		t.Errorf("booleans: %+v", env)
	}
}

func TestFindRepoRoot(t *testing.T) {
	root := t.TempDir()
	deep := filepath.Join(root, "a", "b", "c")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := FindRepoRoot(deep)
	if err != nil || got != root {
		t.Errorf("FindRepoRoot = %q, %v; want %q", got, err, root)
	}
	// This package's own repository.
	if got, err := FindRepoRoot("."); err != nil || !fileExists(filepath.Join(got, "go.mod")) {
		t.Errorf("FindRepoRoot(.) = %q, %v", got, err)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

var validName = regexp.MustCompile(`^[a-z][a-z0-9-]*-[0-9a-f]{10}$`)

func TestName(t *testing.T) {
	seen := map[string]bool{}
	for _, prefix := range []string{"topic", "Index_X", "", "9lives", "--", "グループ"} {
		name := Name(t, prefix)
		if !validName.MatchString(name) || len(name) > maxNameLen {
			t.Errorf("Name(%q) = %q", prefix, name)
		}
		if seen[name] {
			t.Errorf("Name(%q) repeated %q", prefix, name)
		}
		seen[name] = true
	}
	t.Run("Sub Test/with:odd#chars", func(t *testing.T) {
		name := Name(t, "idx")
		if !strings.HasPrefix(name, "idx-name-sub-test-with-odd-chars-") || !validName.MatchString(name) {
			t.Errorf("Name = %q", name)
		}
	})
	long := buildName("p", strings.Repeat("VeryLong", 40), "0123456789")
	if len(long) > maxNameLen || !validName.MatchString(long) {
		t.Errorf("long name %q (%d bytes)", long, len(long))
	}
	if got := buildName("9x", "TestA", "0123456789"); got != "it-9x-a-0123456789" {
		t.Errorf("buildName = %q", got)
	}
}

func TestSameJSON(t *testing.T) {
	same := [][2]string{
		{`{"a":1,"b":[1,2]}`, `{ "b" : [1, 2], "a" : 1 }`},
		{`{"s":"日本"}`, `{"s":"\u65e5\u672c"}`},
		{`{"e":"🎉"}`, `{"e":"\ud83c\udf89"}`},
		{`{"h":"<a&b>"}`, `{"h":"\u003ca\u0026b\u003e"}`},
		{`{"n":1732412345678001}`, `{"n":1732412345678001}`},
		{`not json`, `not json`},
	}
	for _, c := range same {
		if !SameJSON([]byte(c[0]), []byte(c[1])) {
			t.Errorf("SameJSON(%s, %s) = false", c[0], c[1])
		}
	}
	differ := [][2]string{
		{`{"a":1}`, `{"a":2}`},
		{`{"a":1}`, `{"a":1,"b":null}`},
		{`{"a":[1,2]}`, `{"a":[2,1]}`},
		{`{"n":1732412345678001}`, `{"n":1732412345678002}`}, // beyond float64 precision
		{`{"n":1}`, `{"n":1.0}`},
		{`{"a":1}`, `{"a":1} {}`},
		{`not json`, `not json!`},
	}
	for _, c := range differ {
		if SameJSON([]byte(c[0]), []byte(c[1])) {
			t.Errorf("SameJSON(%s, %s) = true", c[0], c[1])
		}
	}
}

func want(v int64, src string) refmodel.Doc {
	return refmodel.Doc{Version: v, Source: json.RawMessage(src)}
}

func TestCompare(t *testing.T) {
	expected := map[string]refmodel.Doc{
		"a": want(1, `{"x":1}`),
		"b": want(2, `{"x":2}`),
		"c": want(3, `{"x":3}`),
		"d": want(4, `{"x":4}`),
	}
	got := map[string]DocState{
		"a": {Version: 1, Source: json.RawMessage(`{ "x" : 1 }`)}, // same value
		"b": {Version: 5, Source: json.RawMessage(`{"x":2}`)},     // version
		"c": {Version: 3, Source: json.RawMessage(`{"x":"3"}`)},   // source
		"e": {Version: 9, Source: json.RawMessage(`{}`)},          // extra; d missing
	}
	d := Compare(got, expected)
	if d.OK() || d.Missing != 1 || d.Extra != 1 || d.Version != 1 || d.Source != 1 || d.Expected != 4 || d.Indexed != 4 {
		t.Fatalf("diff %+v", d)
	}
	var order []string
	for _, m := range d.Shown {
		order = append(order, m.ID+":"+m.Kind)
	}
	if got := strings.Join(order, " "); got != "b:version c:source d:missing e:extra" {
		t.Errorf("shown %s", got)
	}
	s := d.String()
	for _, part := range []string{"1 missing, 1 extra, 1 version, 1 source", "got  v5", "want v2", `want v4 {"x":4}`} {
		if !strings.Contains(s, part) {
			t.Errorf("diff text lacks %q:\n%s", part, s)
		}
	}
	if d := Compare(map[string]DocState{"a": got["a"]}, map[string]refmodel.Doc{"a": expected["a"]}); !d.OK() {
		t.Errorf("equal states differ: %s", d)
	}
}

func TestCompareBounded(t *testing.T) {
	expected := map[string]refmodel.Doc{}
	for i := range 100 {
		expected[fmt.Sprintf("id%03d", i)] = want(int64(i), `{"body":"`+strings.Repeat("日本語", 100)+`"}`)
	}
	d := Compare(map[string]DocState{}, expected)
	if d.Missing != 100 || len(d.Shown) != MaxShown {
		t.Fatalf("missing %d, shown %d", d.Missing, len(d.Shown))
	}
	s := d.String()
	if !strings.Contains(s, "... and 80 more") || strings.Count(s, "\n") > 3*MaxShown+2 {
		t.Errorf("diff not bounded:\n%s", s)
	}
	for _, m := range d.Shown {
		if !strings.Contains(m.Want, "bytes)") || len(m.Want) > maxShownSource+40 {
			t.Errorf("source not truncated: %q", m.Want)
		}
		if !strings.HasPrefix(m.Want, "v") || strings.ContainsRune(m.Want, '\uFFFD') {
			t.Errorf("bad truncation: %q", m.Want)
		}
	}
}

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func TestCompareToModel(t *testing.T) {
	rec := &recorder{TB: t}
	exp := map[string]refmodel.Doc{"a": want(1, `{}`)}
	if !CompareToModel(rec, map[string]DocState{"a": {Version: 1, Source: json.RawMessage(`{}`)}}, exp) || len(rec.errors) != 0 {
		t.Fatalf("equal states reported: %v", rec.errors)
	}
	if CompareToModel(rec, map[string]DocState{}, exp) || len(rec.errors) != 1 || !strings.Contains(rec.errors[0], "1 missing") {
		t.Fatalf("missing document not reported: %v", rec.errors)
	}
}
