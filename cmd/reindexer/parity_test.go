package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/reindexer/reindexer/parity"
)

// parityCases are results as Compare returns them, one per shape of
// report.
func parityCases() map[string]parity.Result {
	started := time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)
	settled := started.Add(-5 * time.Minute)
	empty := parity.IDs{OnlyLeft: []string{}, OnlyRight: []string{}, VersionDiffers: []parity.VersionDiff{}}
	left := parity.SideCounts{Name: "messages @ old-search:9200", Count: 1_204_332}
	return map[string]parity.Result{
		"equal-count": {
			Verdict: parity.VerdictEqual, Mode: parity.ModeCount, Left: left,
			Right:   parity.SideCounts{Name: "messages @ new-search:9200", Count: 1_204_332, Tombstones: 18_220},
			Buckets: []parity.Bucket{}, IDs: empty, Started: started, Seconds: 0.41,
		},
		"drift-count-buckets": {
			Verdict: parity.VerdictDrift, Mode: parity.ModeCount, Left: left,
			Right: parity.SideCounts{Name: "messages-v2 @ old-search:9200", Count: 1_204_100},
			Diff:  parity.Diff{OnlyLeft: 232, Buckets: 2}, Drift: 232, Tolerance: 10,
			Bucket: "created_at:1d",
			Buckets: []parity.Bucket{
				{Key: "2026-11-24T00:00:00Z", Left: 40_112, Right: 39_900},
				{Key: "2026-11-25T00:00:00Z", Left: 41_003, Right: 40_983},
			},
			IDs: empty, SettledBefore: &settled, Started: started, Seconds: 1.2,
		},
		"drift-full": {
			Verdict: parity.VerdictDrift, Mode: parity.ModeFull, Left: left,
			Right: parity.SideCounts{Name: "messages @ new-search:9200", Count: 1_204_331, Tombstones: 3},
			Diff:  parity.Diff{OnlyLeft: 3, OnlyRight: 2, VersionDiffers: 1, Buckets: 1}, Drift: 6,
			Bucket:  "room_id",
			Buckets: []parity.Bucket{{Key: "r3", Left: 100_230, Right: 100_229}},
			IDs: parity.IDs{
				OnlyLeft:       []string{"r3-m1001", "r3-m1002"},
				OnlyRight:      []string{"r9-m77", "日本語-id"},
				VersionDiffers: []parity.VersionDiff{{ID: "r1-m5", Left: 1732412399000000, Right: 1732412345678001}},
			},
			Started: started, Seconds: 38.5,
		},
		"equal-sample-topic": {
			Verdict: parity.VerdictEqual, Mode: parity.ModeSample, Left: left,
			Right:   parity.SideCounts{Name: "topic chat-events", Count: 1_204_332, Tombstones: 40_001, Undecodable: 12, EndOffsets: map[int32]int64{0: 801_233, 1: 799_870}},
			Sampled: 10000, Buckets: []parity.Bucket{}, IDs: empty, Started: started, Seconds: 9.7,
		},
		"error": {
			Verdict: parity.VerdictError, Mode: parity.ModeFull, Left: parity.SideCounts{Name: "messages @ old-search:9200"},
			Right:   parity.SideCounts{Name: "messages,closed @ new-search:9200"},
			Buckets: []parity.Bucket{}, IDs: empty, Started: started,
			Error: "right index messages,closed: count: 1 of 3 shards failed: illegal_argument_exception: Field [created_at] of type [keyword] is not supported for aggregation [date_histogram]",
		},
	}
}

// TestParityRenderGolden: the table and the JSON object of each shape of
// result (testdata/parity/<case>/; -update rewrites them).
func TestParityRenderGolden(t *testing.T) {
	for name, res := range parityCases() {
		t.Run(name, func(t *testing.T) {
			golden(t, filepath.Join("parity", name, "table"), renderParity(res))
			var b bytes.Buffer
			c := &ParityCommand{stdout: &b, jsonOut: true}
			if err := c.print(res); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("parity", name, "json"), b.String())
			// The JSON object has the fields a gate reads, whatever the mode.
			var m map[string]any
			if err := json.Unmarshal(b.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"verdict", "mode", "left", "right", "diff", "buckets", "ids"} {
				if _, ok := m[k]; !ok {
					t.Errorf("JSON has no %q", k)
				}
			}
			for _, k := range []string{"only_left", "only_right", "version_differs"} {
				if _, ok := m["diff"].(map[string]any)[k]; !ok {
					t.Errorf("JSON diff has no %q", k)
				}
				if _, ok := m["ids"].(map[string]any)[k].([]any); !ok {
					t.Errorf("JSON ids.%s is not a list", k)
				}
			}
			if (res.Verdict == parity.VerdictError) != (m["error"] != nil) {
				t.Errorf("error field %v with verdict %s", m["error"], res.Verdict)
			}
		})
	}
}

// TestParityBadFlags: every command-line mistake exits 2 naming the flag,
// before connecting to anything.
func TestParityBadFlags(t *testing.T) {
	base := []string{"parity", "--opensearch", "http://127.0.0.1:1", "--index", "a"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"parity", "--index", "a", "--against-index", "b"}, "flag --opensearch is required"},
		{[]string{"parity", "--opensearch", "http://127.0.0.1:1", "--against-index", "b"}, "flag --index is required"},
		{base, "flag --against-index, --against-opensearch or --against-topic is required"},
		{append(base, "--against-topic", "t", "--against-index", "b", "--brokers", "k:1"), "flag --against-topic"},
		{append(base, "--against-index", "b", "--mode", "fast"), "flag --mode"},
		{append(base, "--against-index", "b", "--sample", "0"), "flag --sample"},
		{append(base, "--against-index", "b", "--tolerance", "-1"), "flag --tolerance"},
		{append(base, "--against-index", "b", "--settle", "5m"), "flags --settle and --time-field"},
		{append(base, "--against-index", "b", "--time-field", "t"), "flags --settle and --time-field"},
		{append(base, "--against-index", "b", "--bucket", "created_at:2x"), "flag --bucket"},
		{append(base, "--against-topic", "t", "--brokers", "k:1", "--bucket", "room_id"), "flag --bucket"},
		{append(base, "--against-index", "b", "--metrics-addr", ":0"), "flag --metrics-addr needs --watch"},
		{append(base, "--against-index", "b", "--memory-bytes", "12"), "flag --memory-bytes"},
		{append(base, "--against-index", "b", "--memory-bytes", "lots"), "flag --memory-bytes"},
		{append(base, "--against-index", "b", "--watch", "-1s"), "flag --watch"},
		{append(base, "--against-index", "b", "--against-opensearch", "search:9200"), "flag --against-opensearch"},
		{append(base, "--against-topic", "t"), "flag --brokers is required"},
		{append(base, "--against-topic", "t", "--brokers", "k:1", "--id-from", "body"), "flag --id-from"},
		{append(base, "--against-index", "b", "--log-level", "loud"), "flag --log-level"},
		{append(base, "--against-index", "b", "--against-opensearch-username", "u"), "flags --against-opensearch-*: give --against-opensearch too"},
	} {
		code, _, errb := runMain(t, nil, tc.args...)
		if code != exitUsage || !strings.Contains(errb, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args[1:], code, errb, tc.want)
		}
	}
	// Variables name themselves.
	code, _, errb := runMain(t, map[string]string{"REINDEXER_AGAINST_OPENSEARCH_TLS_INSECURE": "maybe"}, append(base, "--against-index", "b")...)
	if code != exitUsage || !strings.Contains(errb, "REINDEXER_AGAINST_OPENSEARCH_TLS_INSECURE") {
		t.Errorf("bad variable: exit %d, stderr %q", code, errb)
	}
}

// TestParityUnreachable: a cluster that does not answer is "could not
// check" (exit 2), with the reason in the report and on stderr.
func TestParityUnreachable(t *testing.T) {
	code, out, errb := runMain(t, nil, "parity", "--opensearch", "http://127.0.0.1:1", "--index", "a", "--against-index", "b", "--json")
	var res parity.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("stdout is not a JSON result: %v\n%s", err, out)
	}
	if code != exitUsage || res.Verdict != parity.VerdictError || !strings.Contains(res.Error, "connection refused") || !strings.Contains(errb, "could not check") {
		t.Errorf("exit %d, result %+v, stderr %q", code, res, errb)
	}
}

// TestParityGauges: --watch exports the last completed check; a check that
// could not be made changes the verdict and keeps the last figures.
func TestParityGauges(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := newParityGauges(reg)
	now := time.Unix(1_800_000_000, 0)
	g.set(parityCases()["drift-full"], now)
	g.set(parityCases()["error"], now.Add(time.Minute))
	want := `
# HELP reindexer_parity_differences differences of the last completed check by kind (only_left, only_right, version_differs, buckets)
# TYPE reindexer_parity_differences gauge
reindexer_parity_differences{kind="buckets"} 1
reindexer_parity_differences{kind="only_left"} 3
reindexer_parity_differences{kind="only_right"} 2
reindexer_parity_differences{kind="version_differs"} 1
# HELP reindexer_parity_documents live documents per side in the last completed check
# TYPE reindexer_parity_documents gauge
reindexer_parity_documents{side="left"} 1.204332e+06
reindexer_parity_documents{side="right"} 1.204331e+06
# HELP reindexer_parity_drift differing documents found by the last completed check (compared with the tolerance)
# TYPE reindexer_parity_drift gauge
reindexer_parity_drift 6
# HELP reindexer_parity_verdict 1 for the verdict of the last check (equal, drift or error), 0 for the others
# TYPE reindexer_parity_verdict gauge
reindexer_parity_verdict{verdict="drift"} 0
reindexer_parity_verdict{verdict="equal"} 0
reindexer_parity_verdict{verdict="error"} 1
# HELP reindexer_parity_checks_total checks run, by verdict
# TYPE reindexer_parity_checks_total counter
reindexer_parity_checks_total{verdict="drift"} 1
reindexer_parity_checks_total{verdict="error"} 1
# HELP reindexer_parity_last_check_timestamp_seconds when the last check finished (Unix time)
# TYPE reindexer_parity_last_check_timestamp_seconds gauge
reindexer_parity_last_check_timestamp_seconds 1.80000006e+09
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"reindexer_parity_differences", "reindexer_parity_documents", "reindexer_parity_drift", "reindexer_parity_verdict",
		"reindexer_parity_checks_total", "reindexer_parity_last_check_timestamp_seconds"); err != nil {
		t.Error(err)
	}
}

func TestParitySize(t *testing.T) {
	for in, want := range map[string]int64{"1048576": 1 << 20, "64MiB": 64 << 20, "512KiB": 512 << 10, "2GiB": 2 << 30} {
		if got, err := paritySize(in); err != nil || got != want {
			t.Errorf("%s: %d %v, want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "-5", "1.5MiB", "MiB", "99999999999GiB"} {
		if _, err := paritySize(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if got := sideName("messages", "https://user:secret@search.example:9200, https://b:9200"); got != "messages @ search.example:9200" {
		t.Errorf("sideName: %q", got)
	}
}
