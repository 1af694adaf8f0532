package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The secrets the tests below pass in every way a user can.
const (
	urlSecret   = "UrlPw-7f3a91"
	osSecret    = "OsPw-52be07"
	kafkaSecret = "KafkaPw-c81d44"
	envSecret   = "EnvPw-90aa1e"
)

// checkNoSecret fails when any of the test secrets appears in out.
func checkNoSecret(t *testing.T, what, out string) {
	t.Helper()
	for _, s := range []string{urlSecret, osSecret, kafkaSecret, envSecret} {
		if strings.Contains(out, s) {
			t.Errorf("%s: secret %q printed:\n%s", what, s, out)
		}
	}
}

// TestSecretsNeverPrinted (issue 13 item 13): passwords in the OpenSearch
// URL, in --opensearch-password and --kafka-password (flags and
// environment) never appear in stdout or stderr: not in the "cannot reach"
// error of an unreachable node, not in the logs and errors of a reachable
// one, not in rejected flag values, not in -h.
func TestSecretsNeverPrinted(t *testing.T) {
	// A node that answers like OpenSearch and quotes back what it was
	// sent, credentials included, in its errors (as some proxies do).
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		if r.URL.Path == "/" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"version":{"number":"2.19.1","distribution":"opensearch"}}`))
			return
		}
		http.Error(w, `{"error":"denied for `+user+`:`+pass+` at `+r.URL.String()+`"}`, http.StatusForbidden)
	}))
	defer node.Close()
	reachable := strings.Replace(node.URL, "http://", "http://admin:"+urlSecret+"@", 1)
	env := map[string]string{"REINDEXER_KAFKA_PASSWORD": envSecret}
	common := []string{"--brokers", "127.0.0.1:1", "--topic", "t", "--group", "g", "--index", "i",
		"--opensearch-username", "admin", "--opensearch-password", osSecret,
		"--kafka-sasl", "plain", "--kafka-username", "u", "--kafka-password=" + kafkaSecret, "--log-level", "debug"}
	for _, c := range []struct {
		name string
		args []string
		want string // in stderr
		code int
	}{
		{"unreachable", append([]string{"run", "--opensearch", "http://admin:" + urlSecret + "@127.0.0.1:1"}, common...), "cannot reach OpenSearch at http://admin:xxxxx@127.0.0.1:1", 1},
		{"unreachable list", append([]string{"replay", "--from", "1h", "--dry-run", "--opensearch", "http://127.0.0.1:1,https://admin:" + urlSecret + "@127.0.0.1:2"}, common...), "cannot reach OpenSearch at http://127.0.0.1:1,https://admin:xxxxx@127.0.0.1:2", 1},
		{"reachable", append([]string{"run", "--opensearch", reachable}, common...), "reindexer run:", 1},
		{"reachable dry run", append([]string{"replay", "--from", "1h", "--dry-run", "--opensearch", reachable}, common...), "reindexer replay:", 1},
		{"no scheme", append([]string{"run", "--opensearch", "admin:" + urlSecret + "@search:9200"}, common...), "flag --opensearch", 2},
		{"brokers with userinfo", []string{"run", "--brokers", "admin:" + urlSecret + "@kafka:9092", "--topic", "t", "--group", "g", "--index", "i", "--opensearch", "http://x:1"}, "flag --brokers", 2},
		{"help", []string{"run", "-h", "--opensearch-password", osSecret}, "--opensearch-password", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errb := runMain(t, env, c.args...)
			if code != c.code || !strings.Contains(errb, c.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", code, errb, c.code, c.want)
			}
			checkNoSecret(t, c.name, out+errb)
		})
	}

	// -h never shows values from the environment, secret or not.
	code, out, errb := runMain(t, map[string]string{"REINDEXER_OPENSEARCH_PASSWORD": "EnvOnlyPw-1", "REINDEXER_OPENSEARCH": "http://a:EnvOnlyUrl-2@h:1"}, "run", "-h")
	if code != 0 || strings.Contains(out+errb, "EnvOnly") {
		t.Errorf("-h shows environment values (exit %d):\n%s", code, out+errb)
	}
}

func TestRedactURLs(t *testing.T) {
	for in, want := range map[string]string{
		"http://search:9200":                         "http://search:9200",
		"https://admin:p@ss:w0rd@h:9200/x?y=1":       "https://admin:xxxxx@h:9200/x?y=1",
		"http://a:b@h1:1, http://h2:2,http://c:d@h3": "http://a:xxxxx@h1:1, http://h2:2,http://c:xxxxx@h3",
		"user@h:1":            "user@h:1",
		"admin:pw@h:9200":     "admin:xxxxx@h:9200",
		"http://h:1/path@x:y": "http://h:1/path@x:y",
	} {
		if got := redactURLs(in); got != want {
			t.Errorf("redactURLs(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestScrubber(t *testing.T) {
	got := secretsIn([]string{"run", "--kafka-password", "kp-1234", "--opensearch-password=op-1234", "--opensearch", "http://u:up-1234@h",
		"--aws-secret-access-key", "sk-1234", "--topic", "not-secret", "--x-token", "ab"},
		[]string{"REINDEXER_OPENSEARCH_PASSWORD=ep-1234", "OTHER_PASSWORD=no-1234", "REINDEXER_AGAINST_OPENSEARCH=https://v:ev-1234@h", "AWS_SECRET_ACCESS_KEY=aws-1234"})
	want := []string{"kp-1234", "op-1234", "up-1234", "sk-1234", "ep-1234", "ev-1234", "aws-1234"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("secretsIn = %q, want %q", got, want)
	}
	var b bytes.Buffer
	w := scrub(&b, got)
	if n, err := w.Write([]byte("a kp-1234 b up-1234\n")); err != nil || n != 20 {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if b.String() != "a xxxxx b xxxxx\n" {
		t.Fatalf("scrubbed %q", b.String())
	}
	if scrub(&b, nil) != &b || unwrapWriter(w) != &b {
		t.Fatal("scrub without secrets must not wrap; unwrapWriter must unwrap")
	}
}

// TestSecretsFromConfigFile: secrets set in a --config file (a password
// setting, a password inside the OpenSearch URL) are scrubbed like those of
// flags and the environment, even from an answer that quotes them back.
func TestSecretsFromConfigFile(t *testing.T) {
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		http.Error(w, `{"error":"denied for `+user+`:`+pass+`"}`, http.StatusForbidden)
	}))
	defer node.Close()
	dir := t.TempDir()
	withPw := strings.Replace(node.URL, "http://", "http://admin:"+urlSecret+"@", 1)
	for _, c := range []struct{ name, body string }{
		{"password setting", "opensearch: " + node.URL + "\nopensearch-username: admin\nopensearch-password: " + osSecret + "\nrun:\n  kafka-password: " + kafkaSecret + "\n"},
		{"url password", "opensearch: " + withPw + "\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".yaml")
			if err := os.WriteFile(path, []byte(c.body), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errb := runMain(t, nil, "run", "--config", path, "--brokers", "127.0.0.1:1", "--topic", "t", "--group", "g", "--index", "i", "--log-level", "debug")
			if code != 1 || !strings.Contains(errb, "denied for admin:") {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit 1 and the node's answer", code, errb)
			}
			checkNoSecret(t, c.name, out+errb)
		})
	}
}
