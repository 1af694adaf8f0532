package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/reindexer/reindexer/probe"
)

// ProbeCommand is "reindexer probe": replays sample searches against the
// new side (and the old one) in rising rate steps and stops at the first
// step that breaks the latency, error or similarity limits.
type ProbeCommand struct {
	stdout, stderr io.Writer
	getenv         func(string) string

	os, against  osFlags
	index        string
	againstIndex string
	queries      string
	rate         float64
	steps        string
	stepDuration time.Duration
	maxP99Ratio  float64
	ratioFloor   time.Duration
	maxP99       time.Duration
	maxErrorRate string
	minOverlap   string
	maxInFlight  int
	timeout      time.Duration
	topK         int
	jsonOut      bool
	metricsAddr  string
	logLevel     string
}

func (c *ProbeCommand) register(fs *flag.FlagSet) {
	c.os.register(fs)
	fs.StringVar(&c.index, "index", "", "index (or alias) on the new side to search (required)")
	c.against.registerAs(fs, "against-")
	fs.StringVar(&c.againstIndex, "against-index", "", "index (or alias) on the old side, searched with the same queries at the same moments (default: --index, with --against-opensearch)")
	fs.StringVar(&c.queries, "queries", "", "file of search bodies, one JSON object per line, e.g. a sample of the production query log (required)")
	fs.Float64Var(&c.rate, "rate", 0, "full search rate in queries per second, sent to each side (required)")
	fs.StringVar(&c.steps, "steps", "5%,10%,30%,100%", "shares of --rate to run in turn")
	fs.DurationVar(&c.stepDuration, "step-duration", 2*time.Minute, "how long each step sends")
	fs.Float64Var(&c.maxP99Ratio, "max-p99-ratio", 2, "with an old side: stop when the new side's p99 latency exceeds this multiple of the old side's (0: off)")
	fs.DurationVar(&c.ratioFloor, "p99-ratio-floor", 20*time.Millisecond, "do not judge --max-p99-ratio while the new side's p99 is at or below this (milliseconds against one are noise)")
	fs.DurationVar(&c.maxP99, "max-p99", 0, "stop when the new side's p99 latency exceeds this (0: off)")
	fs.StringVar(&c.maxErrorRate, "max-error-rate", "1%", `stop when more of the new side's searches fail: errors, 429 rejections and searches not sent because --max-in-flight were waiting ("off" disables)`)
	fs.StringVar(&c.minOverlap, "min-overlap", "0%", "with an old side: stop when the answers' mean top-k overlap falls below this (0%: off)")
	fs.IntVar(&c.maxInFlight, "max-in-flight", probe.DefaultMaxInFlight, "searches awaiting an answer per side; a search due while this many wait is not sent and counts as an error")
	fs.DurationVar(&c.timeout, "timeout", probe.DefaultTimeout, "give up on a search after this long (an error)")
	fs.IntVar(&c.topK, "top-k", probe.DefaultTopK, "how many leading hits of both sides' answers are compared")
	fs.BoolVar(&c.jsonOut, "json", false, "print the report as JSON")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "serve /metrics during the probe on this address (e.g. :9090); empty disables")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error (a line per step at info)")
}

// Usage returns the help text.
func (c *ProbeCommand) Usage() string {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	(&ProbeCommand{}).register(fs)
	return `Usage: reindexer probe --opensearch URL --index I --queries FILE --rate R [flags]

Finds out whether the new side can carry the search load before users are
sent to it. Replays the search bodies of --queries, round and round, at each
step's share of --rate against the new side and, when --against-index or
--against-opensearch is given, against the old side at the same moments.
Per step and side it measures p50, p99 and max latency, the error and 429
rejection rates and, with an old side, how far the top-k document ids of the
answers overlap. It stops at the first step that breaks a limit and says
which. Run it while 'reindexer run' keeps writing to see search under write
load.

The load is open-loop: searches leave on a fixed schedule whatever the
answers, latency counts from when a search was due, and a search due while
--max-in-flight searches of its side await an answer is not sent and counts
as an error. An overloaded side shows as latency and errors, never as a
quietly lower load.

Exit codes: 0 every step held; 1 a step broke a limit (the report names the
step and the limit); 2 could not check (bad flags or query file, a side
unreachable, an index missing, a query rejected, interrupted).

Examples:
  # Old and new cluster side by side, 5% to 100% of 400 searches/s, 2 minutes a step.
  reindexer probe --opensearch https://new-search:9200 --index messages \
      --against-opensearch https://old-search:9200 --queries sample-queries.jsonl \
      --rate 400 --steps 5%,10%,30%,100% --step-duration 2m --max-p99-ratio 1.5

  # One cluster, an absolute latency limit, the report as JSON.
  reindexer probe --opensearch http://search:9200 --index messages-v2 \
      --queries sample-queries.jsonl --rate 200 --max-p99 250ms --json

Flags:
` + flagUsage(fs)
}

// Run parses args, runs the probe and prints the report.
func (c *ProbeCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	c.register(fs)
	if err := parseFlags(fs, args, c.getenv); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	cfg, err := c.config(set)
	if err != nil {
		return err
	}
	queries, err := readQueryFile(c.queries)
	if err != nil {
		return usageError{fmt.Errorf("flag --queries: %w", err)}
	}
	cfg.Queries = queries
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.logLevel))
	log := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: lvl}))

	newClient, err := searchClient(&c.os, c.maxInFlight)
	if err != nil {
		return err
	}
	defer newClient.Close()
	cfg.New = probe.Side{Name: "new", Client: newClient, Index: c.index}
	if old := c.oldSide(); old != nil {
		oldClient, err := searchClient(old, c.maxInFlight)
		if err != nil {
			return err
		}
		defer oldClient.Close()
		cfg.Old = &probe.Side{Name: "old", Client: oldClient, Index: c.oldIndex()}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg.Metrics = probe.NewMetrics(reg)
	mctx, stopMetrics := context.WithCancel(ctx)
	defer stopMetrics()
	ok := func() error { return nil }
	if err := serveMetrics(mctx, c.metricsAddr, false, reg, log, ok, ok); err != nil {
		return err
	}
	cfg.OnStep = func(s probe.StepResult) {
		attrs := []any{"step", s.Step, "rate", s.Rate, "new_p99", probe.Round(s.New.P99), "new_error_rate", probe.Percent(s.New.ErrorRate())}
		if s.Old != nil {
			attrs = append(attrs, "old_p99", probe.Round(s.Old.P99), "overlap", probe.Percent(s.Overlap.Mean()))
		}
		switch {
		case s.Interrupted:
			log.Warn("probe step interrupted", attrs...)
		case len(s.Breaches) > 0:
			log.Warn("probe step broke a limit: "+s.Breaches[0].Message, attrs...)
		default:
			log.Info("probe step held", attrs...)
		}
	}
	log.Info("probing", "index", c.index, "against", c.oldIndex(), "rate", c.rate, "steps", c.steps, "step_duration", c.stepDuration, "queries", len(queries))
	rep, err := probe.Run(ctx, cfg)
	if err != nil {
		var ce *probe.CheckError
		if errors.As(err, &ce) {
			return exitError{exitUsage, fmt.Errorf("could not check: %w", err)}
		}
		return exitError{exitUsage, err}
	}
	info := c.info(cfg)
	if c.jsonOut {
		err = writeProbeJSON(c.stdout, info, rep)
	} else {
		err = writeProbeTable(c.stdout, info, rep)
	}
	if err != nil {
		return fmt.Errorf("print report: %w", err)
	}
	switch rep.Verdict {
	case probe.Fail:
		return exitError{exitFailure, errors.New(failureLine(rep))}
	case probe.Interrupted:
		return exitError{exitUsage, fmt.Errorf("interrupted during step %d of %d: not every step was checked", len(rep.Steps), len(cfg.Steps))}
	}
	return nil
}

// config checks the flags that need no connection and builds the probe's
// configuration (sides and queries are added by Run).
func (c *ProbeCommand) config(set map[string]bool) (probe.Config, error) {
	if err := required("opensearch", c.os.urls, "index", c.index, "queries", c.queries); err != nil {
		return probe.Config{}, err
	}
	if !(c.rate > 0) || math.IsInf(c.rate, 0) {
		return probe.Config{}, usageError{fmt.Errorf("flag --rate must be a positive number of queries per second (or set %s)", envName("rate"))}
	}
	steps, err := probe.ParseSteps(c.steps)
	if err != nil {
		return probe.Config{}, usageError{fmt.Errorf("flag --steps: %v", err)}
	}
	for _, f := range []struct {
		name string
		val  time.Duration
	}{{"step-duration", c.stepDuration}, {"timeout", c.timeout}} {
		if f.val <= 0 {
			return probe.Config{}, usageError{fmt.Errorf("flag --%s must be positive, got %s", f.name, f.val)}
		}
	}
	for _, f := range []struct {
		name string
		val  time.Duration
	}{{"max-p99", c.maxP99}, {"p99-ratio-floor", c.ratioFloor}} {
		if f.val < 0 {
			return probe.Config{}, usageError{fmt.Errorf("flag --%s must not be negative, got %s", f.name, f.val)}
		}
	}
	for _, f := range []struct {
		name string
		val  int
	}{{"max-in-flight", c.maxInFlight}, {"top-k", c.topK}} {
		if f.val <= 0 {
			return probe.Config{}, usageError{fmt.Errorf("flag --%s must be positive, got %d", f.name, f.val)}
		}
	}
	if c.maxP99Ratio < 0 || math.IsNaN(c.maxP99Ratio) {
		return probe.Config{}, usageError{fmt.Errorf("flag --max-p99-ratio must not be negative, got %g", c.maxP99Ratio)}
	}
	limits := probe.Limits{MaxP99: c.maxP99, RatioFloor: c.ratioFloor, MaxErrorRate: -1}
	if c.oldSide() != nil {
		limits.MaxP99Ratio = c.maxP99Ratio
	} else {
		for _, name := range []string{"max-p99-ratio", "min-overlap"} {
			if set[name] {
				return probe.Config{}, usageError{fmt.Errorf("flag --%s compares with an old side: give --against-index or --against-opensearch", name)}
			}
		}
	}
	if c.maxErrorRate != "off" {
		if limits.MaxErrorRate, err = probe.ParseRatio(c.maxErrorRate); err != nil {
			return probe.Config{}, usageError{fmt.Errorf("flag --max-error-rate: %v", err)}
		}
	}
	if limits.MinOverlap, err = probe.ParseRatio(c.minOverlap); err != nil {
		return probe.Config{}, usageError{fmt.Errorf("flag --min-overlap: %v", err)}
	}
	switch c.logLevel {
	case "debug", "info", "warn", "error":
	default:
		return probe.Config{}, usageError{fmt.Errorf("flag --log-level: %q is not debug, info, warn or error", c.logLevel)}
	}
	return probe.Config{
		Rate: c.rate, Steps: steps, StepDuration: c.stepDuration, MaxInFlight: c.maxInFlight,
		Timeout: c.timeout, TopK: c.topK, Limits: limits,
	}, nil
}

// oldSide returns the old side's connection settings, nil without an old
// side. Without --against-opensearch the old side is in the new side's
// cluster.
func (c *ProbeCommand) oldSide() *osFlags {
	switch {
	case c.against.urls != "":
		return &c.against
	case c.againstIndex != "":
		return &c.os
	}
	return nil
}

// oldIndex is the old side's index: --against-index, or --index in the
// other cluster.
func (c *ProbeCommand) oldIndex() string {
	switch {
	case c.againstIndex != "":
		return c.againstIndex
	case c.against.urls != "":
		return c.index
	}
	return ""
}

// searchClient returns a client for o that never retries (a retried 429
// or timeout would hide it) with a connection pool for conns searches.
func searchClient(o *osFlags, conns int) (*opensearchapi.Client, error) {
	admin, bulk, err := o.clients(conns)
	if err != nil {
		return nil, err
	}
	_ = admin.Close()
	return opensearchapi.NewFromClient(bulk), nil
}

// readQueryFile reads path with probe.ReadQueries.
func readQueryFile(path string) ([]probe.Query, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return probe.ReadQueries(f)
}

// probeInfo describes the probe for the report.
type probeInfo struct {
	NewIndex     string
	OldIndex     string // empty without an old side
	OldCluster   string // "same" or "other"
	Rate         float64
	Steps        int
	StepDuration time.Duration
	TopK         int
	Queries      int
	Limits       probe.Limits
}

func (c *ProbeCommand) info(cfg probe.Config) probeInfo {
	in := probeInfo{NewIndex: c.index, Rate: c.rate, Steps: len(cfg.Steps), StepDuration: c.stepDuration,
		TopK: cfg.TopK, Queries: len(cfg.Queries), Limits: cfg.Limits}
	if cfg.Old != nil {
		in.OldIndex, in.OldCluster = cfg.Old.Index, "same"
		if c.against.urls != "" {
			in.OldCluster = "other"
		}
	}
	return in
}

// failureLine names the failed step and the limits it broke.
func failureLine(rep probe.Report) string {
	s, _ := rep.Failed()
	var msgs []string
	for _, b := range s.Breaches {
		msgs = append(msgs, b.Limit+": "+b.Message)
	}
	return fmt.Sprintf("step %d (%s of the rate, %s queries/s) broke %s", s.Step, shareText(s.Share), rateText(s.Rate), strings.Join(msgs, "; "))
}

func shareText(f float64) string { return fmt.Sprintf("%g%%", math.Round(f*1e4)/100) }
func rateText(r float64) string  { return fmt.Sprintf("%g", math.Round(r*100)/100) }

// limitsText lists the active limits.
func limitsText(l probe.Limits, old bool) string {
	var parts []string
	if old && l.MaxP99Ratio > 0 {
		parts = append(parts, fmt.Sprintf("p99 at most %g× the old side's (judged above %s)", l.MaxP99Ratio, l.RatioFloor))
	}
	if l.MaxP99 > 0 {
		parts = append(parts, fmt.Sprintf("p99 at most %s", l.MaxP99))
	}
	if l.MaxErrorRate >= 0 {
		parts = append(parts, fmt.Sprintf("errors at most %g%%", l.MaxErrorRate*100))
	}
	if old && l.MinOverlap > 0 {
		parts = append(parts, fmt.Sprintf("overlap at least %g%%", l.MinOverlap*100))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// writeProbeTable prints the report as a table.
func writeProbeTable(w io.Writer, in probeInfo, rep probe.Report) error {
	old := in.OldIndex != ""
	head := fmt.Sprintf("probe of index %s", in.NewIndex)
	if old {
		head += fmt.Sprintf(" against index %s (%s cluster)", in.OldIndex, in.OldCluster)
	}
	fmt.Fprintf(w, "%s: %d queries, full rate %s/s, %d steps of %s\nlimits: %s\n\n",
		head, in.Queries, rateText(in.Rate), in.Steps, in.StepDuration, limitsText(in.Limits, old))
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	hdr := "STEP\tSHARE\tRATE/S\tSIDE\tSENT\tOK\tP50\tP99\tMAX\tERRORS\t429\tUNSENT\t"
	if old {
		hdr += fmt.Sprintf("TOP-%d OVERLAP\t", in.TopK)
	}
	fmt.Fprintln(tw, hdr+"RESULT")
	row := func(step, share, rate string, side string, s probe.SideStats, overlap, result string) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t", step, share, rate, side, s.Sent, s.OK,
			probe.Round(s.P50), probe.Round(s.P99), probe.Round(s.Max), probe.Percent(s.ErrorRate()), probe.Percent(s.RejectionRate()), s.Unsent)
		if old {
			fmt.Fprintf(tw, "%s\t", overlap)
		}
		fmt.Fprintln(tw, result)
	}
	for _, s := range rep.Steps {
		result := "ok"
		switch {
		case s.Interrupted:
			result = "interrupted"
		case len(s.Breaches) > 0:
			var names []string
			for _, b := range s.Breaches {
				names = append(names, b.Limit)
			}
			result = "FAIL " + strings.Join(names, ",")
		}
		overlap := "-"
		if s.Overlap.Compared > 0 {
			overlap = fmt.Sprintf("%s (%d/%d differ)", probe.Percent(s.Overlap.Mean()), s.Overlap.Differing, s.Overlap.Compared)
		}
		row(fmt.Sprint(s.Step), shareText(s.Share), rateText(s.Rate), "new", s.New, overlap, result)
		if s.Old != nil {
			row("", "", "", "old", *s.Old, "", "")
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// The old side's rows end in empty cells: no padding at line ends.
	for _, line := range strings.SplitAfter(table.String(), "\n") {
		io.WriteString(w, strings.TrimRight(line, " \n"))
		if strings.HasSuffix(line, "\n") {
			io.WriteString(w, "\n")
		}
	}
	fmt.Fprintln(w)
	if old {
		o := rep.Overlap
		switch {
		case o.Compared == 0:
			fmt.Fprintln(w, "answers: no query was answered by both sides, nothing compared")
		case o.Differing == 0:
			fmt.Fprintf(w, "answers: the same top-%d ids on both sides for all %d queries compared (overlap 100%%)\n", in.TopK, o.Compared)
		default:
			fmt.Fprintf(w, "answers: top-%d ids overlap %s; %d of %d queries compared got different answers\n",
				in.TopK, probe.Percent(o.Mean()), o.Differing, o.Compared)
		}
	}
	switch rep.Verdict {
	case probe.Pass:
		fmt.Fprintf(w, "result: PASS, every step held\n")
	case probe.Fail:
		fmt.Fprintf(w, "result: FAIL, %s\n", failureLine(rep))
	default:
		fmt.Fprintf(w, "result: INTERRUPTED during step %d of %d\n", len(rep.Steps), in.Steps)
	}
	for _, s := range rep.Steps {
		for _, side := range []struct {
			name string
			s    *probe.SideStats
		}{{"new", &s.New}, {"old", s.Old}} {
			if side.s != nil && side.s.FirstError != "" {
				fmt.Fprintf(w, "step %d %s side, first error: %s\n", s.Step, side.name, side.s.FirstError)
			}
		}
	}
	return nil
}

// probeReportJSON is the --json form of a probe report.
type probeReportJSON struct {
	Verdict       string       `json:"verdict"`
	FailedStep    int          `json:"failed_step,omitempty"`
	Reason        string       `json:"reason,omitempty"`
	NewIndex      string       `json:"new_index"`
	OldIndex      string       `json:"old_index,omitempty"`
	OldCluster    string       `json:"old_cluster,omitempty"`
	Queries       int          `json:"queries"`
	Rate          float64      `json:"rate"`
	StepDurationS float64      `json:"step_duration_s"`
	TopK          int          `json:"top_k"`
	Limits        limitsJSON   `json:"limits"`
	Steps         []stepJSON   `json:"steps"`
	Overlap       *overlapJSON `json:"overlap,omitempty"`
}

type limitsJSON struct {
	MaxP99Ratio    float64  `json:"max_p99_ratio,omitempty"`
	P99RatioFloorS float64  `json:"p99_ratio_floor_s,omitempty"`
	MaxP99S        float64  `json:"max_p99_s,omitempty"`
	MaxErrorRate   *float64 `json:"max_error_rate,omitempty"`
	MinOverlap     float64  `json:"min_overlap,omitempty"`
}

type stepJSON struct {
	Step        int          `json:"step"`
	Share       float64      `json:"share"`
	Rate        float64      `json:"rate"`
	DurationS   float64      `json:"duration_s"`
	New         sideJSON     `json:"new"`
	Old         *sideJSON    `json:"old,omitempty"`
	Overlap     *overlapJSON `json:"overlap,omitempty"`
	Breaches    []breachJSON `json:"breaches,omitempty"`
	Interrupted bool         `json:"interrupted,omitempty"`
}

type sideJSON struct {
	Scheduled     int     `json:"scheduled"`
	Sent          int     `json:"sent"`
	OK            int     `json:"ok"`
	Errors        int     `json:"errors"`
	Rejected      int     `json:"rejected"`
	Unsent        int     `json:"unsent"`
	ErrorRate     float64 `json:"error_rate"`
	RejectionRate float64 `json:"rejection_rate"`
	P50S          float64 `json:"p50_s"`
	P99S          float64 `json:"p99_s"`
	MaxS          float64 `json:"max_s"`
	Achieved      float64 `json:"achieved_rate"`
	FirstError    string  `json:"first_error,omitempty"`
}

type overlapJSON struct {
	Mean      float64 `json:"mean"`
	Compared  int     `json:"compared"`
	Differing int     `json:"differing"`
}

type breachJSON struct {
	Limit   string `json:"limit"`
	Message string `json:"message"`
}

// round6 keeps JSON numbers short and stable.
func round6(f float64) float64 { return math.Round(f*1e6) / 1e6 }

func sideToJSON(s probe.SideStats) sideJSON {
	return sideJSON{Scheduled: s.Scheduled, Sent: s.Sent, OK: s.OK, Errors: s.Errors, Rejected: s.Rejected, Unsent: s.Unsent,
		ErrorRate: round6(s.ErrorRate()), RejectionRate: round6(s.RejectionRate()),
		P50S: round6(s.P50.Seconds()), P99S: round6(s.P99.Seconds()), MaxS: round6(s.Max.Seconds()),
		Achieved: round6(s.Achieved), FirstError: s.FirstError}
}

func overlapToJSON(o probe.Overlap) *overlapJSON {
	return &overlapJSON{Mean: round6(o.Mean()), Compared: o.Compared, Differing: o.Differing}
}

// writeProbeJSON prints the report as one JSON object.
func writeProbeJSON(w io.Writer, in probeInfo, rep probe.Report) error {
	out := probeReportJSON{
		Verdict: rep.Verdict, FailedStep: rep.FailedStep, NewIndex: in.NewIndex, OldIndex: in.OldIndex, OldCluster: in.OldCluster,
		Queries: in.Queries, Rate: in.Rate, StepDurationS: in.StepDuration.Seconds(), TopK: in.TopK,
		Limits: limitsJSON{MaxP99S: in.Limits.MaxP99.Seconds(), MinOverlap: in.Limits.MinOverlap},
		Steps:  []stepJSON{},
	}
	if in.OldIndex != "" {
		out.Limits.MaxP99Ratio, out.Limits.P99RatioFloorS = in.Limits.MaxP99Ratio, in.Limits.RatioFloor.Seconds()
		out.Overlap = overlapToJSON(rep.Overlap)
	}
	if in.Limits.MaxErrorRate >= 0 {
		v := in.Limits.MaxErrorRate
		out.Limits.MaxErrorRate = &v
	}
	if rep.Verdict == probe.Fail {
		out.Reason = failureLine(rep)
	}
	for _, s := range rep.Steps {
		js := stepJSON{Step: s.Step, Share: round6(s.Share), Rate: round6(s.Rate), DurationS: round6(s.Duration.Seconds()),
			New: sideToJSON(s.New), Interrupted: s.Interrupted}
		if s.Old != nil {
			o := sideToJSON(*s.Old)
			js.Old = &o
			js.Overlap = overlapToJSON(s.Overlap)
		}
		for _, b := range s.Breaches {
			js.Breaches = append(js.Breaches, breachJSON{Limit: b.Limit, Message: b.Message})
		}
		out.Steps = append(out.Steps, js)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
