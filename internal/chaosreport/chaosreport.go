// Package chaosreport keeps the results of the fault-injection tests and
// renders them as docs/reliability.md: per fault, how often it was injected,
// what was produced, what the index held afterwards compared with the
// reference model, and the longest stall.
//
// The tests write one JSON file per scenario into a results directory
// (REINDEXER_CHAOS_RESULTS); `make chaos` then renders the directory.
package chaosreport

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// ResultsEnv names the environment variable holding the results directory.
const ResultsEnv = "REINDEXER_CHAOS_RESULTS"

// Result is what one fault scenario injected and measured.
type Result struct {
	// Order sorts the scenarios in the report.
	Order int `json:"order"`
	// Fault names the fault, e.g. "Kafka broker restart during run".
	Fault string `json:"fault"`
	// Test is the Go test that ran the scenario.
	Test string `json:"test"`
	// Setup describes the configuration (mode, partitions, workers).
	Setup string `json:"setup"`
	// Injection says what one injection is, e.g. "broker stopped 5-30 s".
	Injection string `json:"injection"`
	// Injected is how many times the fault was injected.
	Injected int `json:"injected"`
	// Produced is the number of records produced to the topic.
	Produced int `json:"produced"`
	// Expected and Found are the documents in the reference model and in
	// the index.
	Expected int `json:"expected"`
	Found    int `json:"found"`
	// Lost are expected documents missing from the index, Extra documents
	// in the index the model does not hold, WrongVersion documents whose
	// _version (or source at the same version) differs.
	Lost         int `json:"lost"`
	Extra        int `json:"extra"`
	WrongVersion int `json:"wrong_version"`
	// DeadLettered is the number of records in the dead-letter topic.
	DeadLettered int `json:"dead_lettered"`
	// LongestStall is the longest time the group lagged without a commit
	// advancing, in seconds.
	LongestStall float64 `json:"longest_stall_s"`
	// Equal reports that the final index equals the reference model.
	Equal bool `json:"equal"`
	// LossExpected marks a configuration under which a difference is the
	// documented behaviour (delete mode across a node restart).
	LossExpected bool `json:"loss_expected,omitempty"`
	// Notes are further measurements, one sentence each.
	Notes []string `json:"notes,omitempty"`
	// Duration is the scenario's wall time in seconds.
	Duration float64 `json:"duration_s"`
	// Long reports the long form (make chaos) rather than the shortened
	// one (make test).
	Long bool `json:"long"`
	// At is when the scenario finished.
	At time.Time `json:"at"`
}

// OK reports whether the result meets the bar: nothing lost, extra or at a
// wrong version, unless a loss is the documented behaviour.
func (r Result) OK() bool {
	return r.LossExpected || (r.Equal && r.Lost == 0 && r.Extra == 0 && r.WrongVersion == 0)
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Save writes r as dir/<order>-<test>.json, creating dir.
func Save(dir string, r Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("chaosreport: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("chaosreport: encode %s: %w", r.Test, err)
	}
	name := fmt.Sprintf("%03d-%s.json", r.Order, unsafeName.ReplaceAllString(r.Test, "_"))
	if err := os.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("chaosreport: %w", err)
	}
	return nil
}

// Load reads every result in dir, sorted by Order then Test.
func Load(dir string) ([]Result, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("chaosreport: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("chaosreport: no results in %s", dir)
	}
	var out []Result
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("chaosreport: %w", err)
		}
		var r Result
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("chaosreport: %s: %w", f, err)
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b Result) int {
		if a.Order != b.Order {
			return a.Order - b.Order
		}
		return strings.Compare(a.Test, b.Test)
	})
	return out, nil
}

// Meta describes the run for the report's header.
type Meta struct {
	Generated         time.Time
	KafkaVersion      string
	OpenSearchVersion string
	Machine           string
	Command           string
	// Appendix is markdown added after the scenarios.
	Appendix string
}

// ErrFailed is returned by Render (after writing the report) when some
// result misses the bar.
var ErrFailed = errors.New("chaosreport: some fault scenario lost, added or misversioned documents")

// Render writes the report. It returns ErrFailed, after writing everything,
// when a result does not meet the bar.
func Render(w io.Writer, meta Meta, results []Result) error {
	var b strings.Builder
	b.WriteString("# Reliability report\n\n")
	b.WriteString("<!-- generated by `make chaos` (internal/chaosreport); do not edit by hand -->\n\n")
	fmt.Fprintf(&b, "Generated %s by `%s` with Kafka %s and OpenSearch %s on %s.\n\n",
		meta.Generated.UTC().Format("2006-01-02 15:04 MST"), meta.Command, orUnknown(meta.KafkaVersion),
		orUnknown(meta.OpenSearchVersion), orUnknown(meta.Machine))
	b.WriteString(`Every scenario runs the real ` + "`reindexer`" + ` binary against a real Kafka broker and a real
OpenSearch node, injects its fault while a producer keeps writing chat events (edits, deletes,
Kafka tombstones, duplicates, late events; for ` + "`replay`" + `, over a range produced beforehand), lets the
worker catch up, and then compares the
**whole index** with the reference model (for each id the operation with the greatest version):
*lost* = expected but missing, *extra* = present but not expected, *wrong version* = present with
another ` + "`_version`" + ` or source. A monitor reads the group's commits every 100 ms and checks that every
record below a committed offset is already in the index (a commit ahead of an unapplied record
fails the test). *Longest stall* is the longest time the group lagged behind the producer
without a commit advancing. Scenarios that stop or block a service run on a private Kafka +
OpenSearch stack of their own (other ports, own data directory), never on the shared one.

`)
	failed := 0
	b.WriteString("| fault | injected | records produced | docs expected | docs found | lost | extra | wrong version | dead-lettered | longest stall | index = model |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range results {
		verdict := "yes"
		switch {
		case !r.Equal && r.LossExpected:
			verdict = "no (expected: see below)"
		case !r.Equal:
			verdict = "**NO**"
		}
		if !r.OK() {
			failed++
		}
		stall := "–" // not a stream, or never lagging
		if r.LongestStall > 0 {
			stall = fmt.Sprintf("%.1f s", r.LongestStall)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %s | %s |\n",
			r.Fault, r.Injected, r.Produced, r.Expected, r.Found, r.Lost, r.Extra, r.WrongVersion,
			r.DeadLettered, stall, verdict)
	}
	equal, expected := 0, []string{}
	for _, r := range results {
		switch {
		case r.Equal:
			equal++
		case r.LossExpected:
			expected = append(expected, r.Fault)
		}
	}
	fmt.Fprintf(&b, "\n**%d of %d scenarios end with the index equal to the reference model.**", equal, len(results))
	if len(expected) > 0 {
		fmt.Fprintf(&b, " The other %d are the configurations under which a difference is expected, shown next to the configuration that holds: %s.",
			len(expected), strings.Join(expected, "; "))
	}
	if failed > 0 {
		fmt.Fprintf(&b, " **%d scenarios lost, added or misversioned documents where none may be.**", failed)
	}
	b.WriteString("\n")
	b.WriteString("\n## Scenarios\n")
	for _, r := range results {
		fmt.Fprintf(&b, "\n### %s\n\n", r.Fault)
		form := "shortened (make test)"
		if r.Long {
			form = "long (make chaos)"
		}
		fmt.Fprintf(&b, "- test: `%s`, %s form, %.0f s\n", r.Test, form, r.Duration)
		fmt.Fprintf(&b, "- setup: %s\n", r.Setup)
		fmt.Fprintf(&b, "- fault: %s, injected %d times\n", r.Injection, r.Injected)
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	if meta.Appendix != "" {
		b.WriteString("\n" + strings.TrimSpace(meta.Appendix) + "\n")
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("chaosreport: write: %w", err)
	}
	if failed > 0 {
		return fmt.Errorf("%w (%d of %d)", ErrFailed, failed, len(results))
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}
