package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/reindexer/reindexer/checkpoint"
)

// TestCutoverBadFlags: every mistake exits 2 naming the flag, before any
// connection.
func TestCutoverBadFlags(t *testing.T) {
	base := []string{"cutover", "--opensearch", "http://127.0.0.1:1"}
	with := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"missing alias", with("--to-index", "v2"), "flag --alias is required"},
		{"neither", with("--alias", "a"), "give --to-index (or set REINDEXER_TO_INDEX) or --rollback"},
		{"both", with("--alias", "a", "--to-index", "v2", "--rollback"), "--to-index and --rollback exclude each other"},
		{"alias pattern", with("--alias", "mess*", "--to-index", "v2"), "flag --alias"},
		{"index pattern", with("--alias", "a", "--to-index", "v2,v3"), "flag --to-index"},
		{"alias itself", with("--alias", "a", "--to-index", "a"), "flag --to-index names the alias itself"},
		{"bad mode", with("--alias", "a", "--to-index", "v2", "--mode", "exact"), "flag --mode"},
		{"bad tolerance", with("--alias", "a", "--to-index", "v2", "--tolerance", "-1"), "flag --tolerance"},
		{"settle without field", with("--alias", "a", "--to-index", "v2", "--settle", "5m"), "flags --settle and --time-field go together"},
		{"no record index", with("--alias", "a", "--to-index", "v2", "--checkpoint-index", "none"), "flag --checkpoint-index"},
		{"bad url", []string{"cutover", "--opensearch", "search:9200", "--alias", "a", "--rollback"}, "flag --opensearch"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errb := runMain(t, nil, c.args...)
			if code != exitUsage || !strings.Contains(errb, c.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 and %q", code, errb, c.want)
			}
		})
	}
}

// TestCutoverUnreachable: a cluster that does not answer is "could not
// check", exit 2, nothing printed on stdout.
func TestCutoverUnreachable(t *testing.T) {
	code, out, errb := runMain(t, nil, "cutover", "--opensearch", "http://127.0.0.1:1", "--alias", "a", "--to-index", "v2")
	if code != exitUsage || !strings.Contains(errb, "could not check: read alias a") || out != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2, could not check", code, out, errb)
	}
}

func TestSwapBody(t *testing.T) {
	yes := true
	got := swapBody("messages", "v1", "v2", checkpoint.AliasSettings{
		Filter: json.RawMessage(`{"bool":{"must_not":{"exists":{"field":"reindexer_tombstone"}}}}`), IndexRouting: "1", SearchRouting: "1,2", IsWriteIndex: &yes})
	want := `{"actions":[{"remove":{"index":"v1","alias":"messages","must_exist":true}},` +
		`{"add":{"index":"v2","alias":"messages","filter":{"bool":{"must_not":{"exists":{"field":"reindexer_tombstone"}}}},"index_routing":"1","search_routing":"1,2","is_write_index":true}}]}`
	if string(got) != want {
		t.Fatalf("swap body\n got %s\nwant %s", got, want)
	}
	if got := swapBody("a", "x", "y", checkpoint.AliasSettings{}); string(got) != `{"actions":[{"remove":{"index":"x","alias":"a","must_exist":true}},{"add":{"index":"y","alias":"a"}}]}` {
		t.Fatalf("swap body without settings: %s", got)
	}
}

func TestCutoverReportGolden(t *testing.T) {
	yes := true
	settings := checkpoint.AliasSettings{Filter: json.RawMessage(`{"bool":{"must_not":{"exists":{"field":"reindexer_tombstone"}}}}`), SearchRouting: "r1", IsWriteIndex: &yes}
	equal := &cutoverParity{Mode: "count", Verdict: "equal", Left: 120, Right: 120}
	drift := &cutoverParity{Mode: "full", Verdict: "drift", Left: 120, Right: 96, OnlyLeft: 24, Versions: 3, Drift: 27, Tolerance: 5}
	at := time.Date(2026, 12, 2, 8, 30, 0, 0, time.UTC)
	swapped := cutoverReport{Action: "cutover", Alias: "messages", From: "messages-v1", To: "messages-v2", Settings: settings,
		Parity: equal, Request: swapBody("messages", "messages-v1", "messages-v2", settings), Outcome: outcomeSwapped, Record: "reindexer-checkpoints"}
	dry := swapped
	dry.DryRun, dry.Outcome, dry.Record = true, outcomeWouldSwap, ""
	refused := swapped
	refused.To, refused.Parity, refused.Request, refused.Outcome, refused.Record = "messages-v2-drifted", drift, nil, outcomeDrift, ""
	rolled := cutoverReport{Action: "rollback", Alias: "messages", From: "messages-v2", To: "messages-v1", Settings: settings,
		Request: swapBody("messages", "messages-v2", "messages-v1", settings), Outcome: outcomeRolledBack, Record: "reindexer-checkpoints", RecordedAt: &at}
	for name, rep := range map[string]cutoverReport{"swapped": swapped, "dry-run": dry, "drift": refused, "rollback": rolled} {
		t.Run(name, func(t *testing.T) {
			var text, js bytes.Buffer
			if err := writeCutoverText(&text, rep); err != nil {
				t.Fatal(err)
			}
			c := &CutoverCommand{stdout: &js, jsonOut: true}
			if err := c.print(rep); err != nil {
				t.Fatal(err)
			}
			golden(t, "cutover/"+name+"/text", text.String())
			golden(t, "cutover/"+name+"/json", js.String())
		})
	}
}
