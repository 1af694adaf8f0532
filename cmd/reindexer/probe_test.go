package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reindexer/reindexer/probe"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestProbeBadFlags: every mistake exits 2 naming the flag, before any
// connection.
func TestProbeBadFlags(t *testing.T) {
	good := writeFile(t, "q.jsonl", `{"query":{"match":{"body":"deploy"}}}`+"\n")
	bad := writeFile(t, "bad.jsonl", `{"query":{"match_all":{}}}`+"\n"+`match body deploy`+"\n")
	base := []string{"probe", "--opensearch", "http://127.0.0.1:1", "--index", "i"}
	with := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"missing queries", with("--rate", "10"), "flag --queries is required"},
		{"missing rate", with("--queries", good), "flag --rate must be a positive number"},
		{"negative rate", with("--queries", good, "--rate", "-5"), "flag --rate"},
		{"bad steps", with("--queries", good, "--rate", "10", "--steps", "5,10"), "flag --steps"},
		{"bad step duration", with("--queries", good, "--rate", "10", "--step-duration", "0s"), "flag --step-duration must be positive"},
		{"bad error rate", with("--queries", good, "--rate", "10", "--max-error-rate", "lots"), "flag --max-error-rate"},
		{"bad overlap", with("--queries", good, "--rate", "10", "--against-index", "o", "--min-overlap", "120%"), "flag --min-overlap"},
		{"ratio without old side", with("--queries", good, "--rate", "10", "--max-p99-ratio", "1.5"), "flag --max-p99-ratio compares with an old side"},
		{"bad in flight", with("--queries", good, "--rate", "10", "--max-in-flight", "0"), "flag --max-in-flight must be positive"},
		{"query file line", with("--queries", bad, "--rate", "10"), "flag --queries: read queries: line 2 is not a JSON object"},
		{"query file missing", with("--queries", "/nonexistent/q.jsonl", "--rate", "10"), "flag --queries: open /nonexistent/q.jsonl"},
		{"bad against url", with("--queries", good, "--rate", "10", "--against-opensearch", "old:9200"), "flag --against-opensearch"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errb := runMain(t, nil, c.args...)
			if code != exitUsage || !strings.Contains(errb, c.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 and %q", code, errb, c.want)
			}
		})
	}
}

// TestProbeUnreachable: a side that does not answer is "could not check".
func TestProbeUnreachable(t *testing.T) {
	q := writeFile(t, "q.jsonl", `{"query":{"match_all":{}}}`+"\n")
	code, out, errb := runMain(t, nil, "probe", "--opensearch", "http://127.0.0.1:1", "--index", "i", "--queries", q,
		"--rate", "10", "--step-duration", "1s", "--log-level", "error")
	if code != exitUsage || !strings.Contains(errb, "could not check: new side (index i)") || out != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2, could not check", code, out, errb)
	}
}

// probeReports are fixed reports for the renderers' golden files.
func probeReports() map[string]struct {
	info probeInfo
	rep  probe.Report
} {
	ms := time.Millisecond
	limits := probe.Limits{MaxP99Ratio: 2, RatioFloor: 20 * ms, MaxErrorRate: 0.01}
	side := func(n int, p50, p99, mx time.Duration) probe.SideStats {
		return probe.SideStats{Scheduled: n, Sent: n, OK: n, P50: p50, P99: p99, Max: mx, Achieved: float64(n) / 2}
	}
	withOld := probeInfo{NewIndex: "messages-new", OldIndex: "messages-old", OldCluster: "other", Rate: 200, Steps: 3,
		StepDuration: 2 * time.Second, TopK: 10, Queries: 120, Limits: limits}
	o1, o2, o3 := side(20, 3*ms, 9*ms, 11*ms), side(60, 4*ms, 12*ms, 15*ms), side(200, 5*ms, 30*ms, 41*ms)
	pass := probe.Report{Verdict: probe.Pass, Steps: []probe.StepResult{
		{Step: 1, Share: 0.1, Rate: 20, Duration: 2010 * ms, New: side(20, 3100*time.Microsecond, 8*ms, 9*ms), Old: &o1, Overlap: probe.Overlap{Compared: 20, Sum: 20}},
		{Step: 2, Share: 0.3, Rate: 60, Duration: 2004 * ms, New: side(60, 4*ms, 13*ms, 14*ms), Old: &o2, Overlap: probe.Overlap{Compared: 60, Sum: 60}},
		{Step: 3, Share: 1, Rate: 200, Duration: 2030 * ms, New: side(200, 6*ms, 35*ms, 52*ms), Old: &o3, Overlap: probe.Overlap{Compared: 200, Sum: 200}},
	}, Overlap: probe.Overlap{Compared: 280, Sum: 280}}
	failing := side(200, 310*ms, 702*ms, 1203*ms)
	failing.Unsent, failing.Sent, failing.OK, failing.Rejected = 12, 188, 180, 8
	failing.FirstError = "HTTP 429: rejected_execution_exception: rejected execution of search"
	fail := probe.Report{Verdict: probe.Fail, FailedStep: 3, Steps: []probe.StepResult{
		pass.Steps[0], pass.Steps[1],
		{Step: 3, Share: 1, Rate: 200, Duration: 3200 * ms, New: failing, Old: &o3, Overlap: probe.Overlap{Compared: 180, Differing: 18, Sum: 171},
			Breaches: []probe.Breach{
				{Limit: "max-p99-ratio", Message: "new p99 702ms is 23.4× the old side's 30ms (limit 2×)"},
				{Limit: "max-error-rate", Message: "new error rate 10.0% is above 1% (0 errors, 8 rejected, 12 unsent of 200)"},
			}},
	}, Overlap: probe.Overlap{Compared: 260, Differing: 18, Sum: 251}}
	alone := probeInfo{NewIndex: "messages", Rate: 50, Steps: 2, StepDuration: time.Second, TopK: 10, Queries: 3,
		Limits: probe.Limits{MaxP99: 250 * ms, MaxErrorRate: -1}}
	interrupted := probe.Report{Verdict: probe.Interrupted, Steps: []probe.StepResult{
		{Step: 1, Share: 0.5, Rate: 25, Duration: time.Second, New: side(25, 2*ms, 5*ms, 6*ms)},
		{Step: 2, Share: 1, Rate: 50, Duration: 400 * ms, New: side(20, 2*ms, 4*ms, 4*ms), Interrupted: true},
	}}
	return map[string]struct {
		info probeInfo
		rep  probe.Report
	}{
		"pass-old-new":     {withOld, pass},
		"fail-ratio-error": {withOld, fail},
		"interrupted":      {alone, interrupted},
	}
}

func TestProbeReportGolden(t *testing.T) {
	for name, c := range probeReports() {
		t.Run(name, func(t *testing.T) {
			var table, js bytes.Buffer
			if err := writeProbeTable(&table, c.info, c.rep); err != nil {
				t.Fatal(err)
			}
			if err := writeProbeJSON(&js, c.info, c.rep); err != nil {
				t.Fatal(err)
			}
			golden(t, "probe/"+name+"/table", table.String())
			golden(t, "probe/"+name+"/json", js.String())
		})
	}
}
