package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// refusingNode is an OpenSearch URL that answers every request with 403 at
// once: a command gets past its flags and fails fast (exit 1).
func refusingNode(t *testing.T) string {
	t.Helper()
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":"forbidden"}`, http.StatusForbidden)
	}))
	t.Cleanup(node.Close)
	return node.URL
}

// TestTimestampVersionWarning (issue 13 item 12): versions from record
// timestamps are accepted with a warning at start, like versions from
// offsets: two changes in one millisecond (a LogAppendTime batch) get
// equal versions and the later one is dropped as a duplicate.
func TestTimestampVersionWarning(t *testing.T) {
	args := []string{"run", "--brokers", "127.0.0.1:1", "--topic", "t", "--group", "g", "--opensearch", refusingNode(t), "--index", "i"}
	code, _, errb := runMain(t, nil, append(args, "--version-from", "timestamp", "--id-from", "key")...)
	if code != 1 || !strings.Contains(errb, "versions come from record timestamps") || !strings.Contains(errb, "LogAppendTime") {
		t.Errorf("exit %d, stderr:\n%s\nwant the timestamp-version warning", code, errb)
	}
	_, _, errb = runMain(t, nil, args...)
	if strings.Contains(errb, "versions come from record timestamps") {
		t.Errorf("warning without --version-from timestamp:\n%s", errb)
	}
	_, help, helpErr := runMain(t, nil, "run", "-h")
	if !strings.Contains(help+helpErr, "LogAppendTime") {
		t.Error("--version-from help does not say why timestamps are unsafe")
	}
}

// TestDecodeFlags: --id-encoding and --tombstone-routing-header are
// checked like every flag (exit 2 naming the flag).
func TestDecodeFlags(t *testing.T) {
	base := []string{"--brokers", "127.0.0.1:1", "--topic", "t", "--group", "g", "--opensearch", refusingNode(t), "--index", "i"}
	code, _, errb := runMain(t, nil, append([]string{"run", "--id-encoding", "base64"}, base...)...)
	if code != 2 || !strings.Contains(errb, "flag --id-encoding") {
		t.Errorf("exit %d, stderr %q; want exit 2 naming --id-encoding", code, errb)
	}
	code, _, errb = runMain(t, map[string]string{"REINDEXER_ID_ENCODING": "b64"}, append([]string{"run"}, base...)...)
	if code != 2 || !strings.Contains(errb, "flag --id-encoding") {
		t.Errorf("exit %d, stderr %q; want exit 2 naming --id-encoding", code, errb)
	}
	for _, enc := range []string{"strict", "hex", "base64url"} {
		code, _, errb = runMain(t, nil, append([]string{"run", "--id-encoding", enc, "--routing-from", "json:/room", "--tombstone-routing-header", "room"}, base...)...)
		if code != 1 || !strings.Contains(errb, "cannot reach OpenSearch") {
			t.Errorf("--id-encoding %s: exit %d, stderr %q; want it accepted (then exit 1: no OpenSearch)", enc, code, errb)
		}
	}
}
