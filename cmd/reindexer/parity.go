package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/reindexer/reindexer/consumer"
	"github.com/reindexer/reindexer/parity"
)

// ParityCommand is "reindexer parity": a verdict on whether two indices, or
// an index and its topic, hold the same live documents.
type ParityCommand struct {
	stdout, stderr io.Writer
	getenv         func(string) string

	left, right  osFlags
	kafka        kafkaFlags
	decode       decodeFlags
	index        string
	againstIndex string
	againstTopic string
	checks       checkFlags
	jsonOut      bool
	watch        time.Duration
	metricsAddr  string
	maxIDs       int
	maxBuckets   int
	memoryBytes  string
	tempDir      string
	timeout      time.Duration
	logLevel     string
}

func (c *ParityCommand) register(fs *flag.FlagSet) {
	c.left.register(fs)
	c.right.registerAs(fs, "against-")
	c.kafka.register(fs)
	c.decode.register(fs)
	c.checks.register(fs)
	fs.StringVar(&c.index, "index", "", "left side: index, alias or comma-separated pattern (required)")
	fs.StringVar(&c.againstIndex, "against-index", "", "right side: an index (default: --index, with --against-opensearch)")
	fs.StringVar(&c.againstTopic, "against-topic", "", "right side: the Kafka topic that feeds --index (with --brokers and the --*-from flags of run)")
	fs.BoolVar(&c.jsonOut, "json", false, "print the result as JSON (one object per check; with --watch one line per check)")
	fs.DurationVar(&c.watch, "watch", 0, "check again at this interval until interrupted (e.g. 30s), exporting the last result on --metrics-addr")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "with --watch: serve the last result as reindexer_parity_* gauges on /metrics at this address (e.g. :9090)")
	fs.IntVar(&c.maxIDs, "max-ids", parity.DefaultMaxIDs, "list at most this many ids of each kind of difference (the counts are exact)")
	fs.IntVar(&c.maxBuckets, "max-buckets", parity.DefaultMaxBuckets, "list at most this many differing buckets (the count is exact)")
	fs.StringVar(&c.memoryBytes, "memory-bytes", "64MiB", "memory for sorting ids in --mode full and for a topic side; beyond it sorted runs spill to --temp-dir (bytes, or with KiB, MiB, GiB); the Go heap is soft-limited to this plus 32MiB unless GOMEMLIMIT is set")
	fs.StringVar(&c.tempDir, "temp-dir", "", "directory for spilled runs (default: the system's temporary directory); removed after each check")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Minute, "give up on one check after this long (could not check)")
	fs.StringVar(&c.logLevel, "log-level", "warn", "debug, info, warn or error")
}

// Usage returns the help text.
func (c *ParityCommand) Usage() string {
	fs := flag.NewFlagSet("parity", flag.ContinueOnError)
	(&ParityCommand{}).register(fs)
	return `Usage: reindexer parity --opensearch URL --index X
           (--against-index Y [--against-opensearch URL2] | --against-topic T --brokers B)
           [--mode count|sample|full] [--sample N] [--bucket FIELD[:INTERVAL]]
           [--settle DURATION --time-field FIELD] [--tolerance N] [--json] [--watch INTERVAL]

Says whether two sides hold the same live documents, and where they differ.
The left side is --index on --opensearch; the right side is --against-index
(on --against-opensearch with its own credentials and TLS, or on the same
cluster), or the topic --against-topic that feeds --index.

A tombstone document (one with --tombstone-field) is not live: a tombstone on
one side and no document on the other are equal. Tombstones are counted per
side.

Modes:
  count   exact live-document counts of both sides after a refresh (default).
  sample  the counts, plus --sample ids drawn at random from the left side and
          looked up on the right (mget): ids missing on the right and ids at
          another _version are listed.
  full    every live id and _version of both sides (scrolls with _source off,
          sorted on disk beyond --memory-bytes, then merged): exact counts of
          the ids only on the left, only on the right, and at other versions,
          with the first --max-ids of each in id order.

--bucket breaks the counts down with a paged composite aggregation on both
sides and lists only the buckets that differ (a text field is aggregated on
its .keyword sub-field). --settle with --time-field leaves out documents
whose time field is at or after (now - settle) on both sides; documents
without the field are kept. In full and sample mode an id changed inside the
window on either side is not compared. A topic side leaves out upserts whose
document's time field is inside the window (read from the document, not the
record timestamp); a delete always counts.

A topic side is read from the start of each partition up to the last stable
offsets captured when the check starts, decoded with the --*-from flags as
'run' decodes it: per id the operation with the greatest version wins (the
first read on a tie), deletes and Kafka tombstones make the id not live, and
records 'run' would dead-letter are counted as undecodable and ignored.

The counts, and a topic side, are exact; an answer built from part of the
data (failed shards, a timed-out search) is never trusted.

Exit codes: 0 equal within --tolerance; 1 drift; 2 could not check (the reason
is printed: bad flags, unreachable cluster, missing index or topic, failed
shards, timeout). With --watch, the code of the last completed check.

Examples:
  # Old and new cluster, every id and version.
  reindexer parity --opensearch https://old-search:9200 --index messages \
      --against-opensearch https://new-search:9200 --mode full

  # Same cluster, where do the counts differ per day? Ignore the last 5 minutes.
  reindexer parity --opensearch http://search:9200 --index messages \
      --against-index messages-v2 --bucket created_at:1d --settle 5m --time-field updated_at

  # The index against the topic that feeds it.
  reindexer parity --opensearch http://search:9200 --index messages \
      --against-topic chat-events --brokers kafka:9092 --mode full --json

  # A canary gate: check every 30s, drift as Prometheus gauges.
  reindexer parity ... --mode sample --sample 10000 --watch 30s --metrics-addr :9090

Flags:
` + flagUsage(fs)
}

// Run parses args, compares, prints the result and returns the verdict as
// the exit code.
func (c *ParityCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("parity", flag.ContinueOnError)
	c.register(fs)
	if err := parseFlags(fs, args, c.getenv); err != nil {
		return err
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.logLevel))
	log := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: lvl}))
	cfg.Logger = log
	if os.Getenv("GOMEMLIMIT") == "" {
		// The sort buffers are bounded by --memory-bytes; a soft heap limit
		// a little above it keeps the garbage collector from letting the
		// heap grow to twice what is live.
		debug.SetMemoryLimit(cfg.MemoryBytes + parityHeapSlack)
	}
	if c.watch == 0 {
		res, err := c.check(ctx, cfg)
		if werr := c.print(res); werr != nil {
			return werr
		}
		return verdictError(res, err)
	}
	return c.watchLoop(ctx, cfg, log)
}

// parityHeapSlack is the heap allowed besides the sort buffers: search
// pages, fetched records, the merge's read buffers.
const parityHeapSlack = 32 << 20

// check runs one comparison within --timeout.
func (c *ParityCommand) check(ctx context.Context, cfg parity.Config) (parity.Result, error) {
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, err := parity.Compare(cctx, cfg)
	if err != nil && errors.Is(cctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		err = fmt.Errorf("%w (--timeout %s)", err, c.timeout)
		res.Error = strings.TrimPrefix(err.Error(), parity.ErrCouldNotCheck.Error()+": ")
	}
	return res, err
}

// verdictError turns a result into the command's exit code.
func verdictError(res parity.Result, err error) error {
	switch {
	case err != nil:
		return exitError{code: exitUsage, err: err}
	case res.Verdict == parity.VerdictDrift:
		return exitError{code: exitFailure}
	}
	return nil
}

// print renders one result as JSON or as a table.
func (c *ParityCommand) print(res parity.Result) error {
	if c.jsonOut {
		enc := json.NewEncoder(c.stdout)
		if c.watch == 0 {
			enc.SetIndent("", "  ")
		}
		return enc.Encode(res)
	}
	_, err := io.WriteString(c.stdout, renderParity(res))
	return err
}

// config checks the flags and builds the comparison.
func (c *ParityCommand) config() (parity.Config, error) {
	var cfg parity.Config
	if err := required("opensearch", c.left.urls, "index", c.index); err != nil {
		return cfg, err
	}
	topic := c.againstTopic != ""
	switch {
	case topic && (c.againstIndex != "" || c.right.urls != ""):
		return cfg, usageError{errors.New("flag --against-topic: give either --against-topic or --against-index/--against-opensearch, not both")}
	case !topic && c.againstIndex == "" && c.right.urls == "":
		return cfg, usageError{fmt.Errorf("flag --against-index, --against-opensearch or --against-topic is required (or set %s)", envName("against-index"))}
	}
	if c.right.urls == "" && (c.right.username != "" || c.right.password != "" || c.right.tlsCA != "" || c.right.tlsInsecure) {
		return cfg, usageError{errors.New("flags --against-opensearch-*: give --against-opensearch too (without it the right side uses the left's cluster and credentials)")}
	}
	check, err := c.checks.config()
	if err != nil {
		return cfg, err
	}
	if check.Bucket != "" && topic {
		return cfg, usageError{errors.New("flag --bucket: buckets need an index on both sides, not --against-topic")}
	}
	if c.watch < 0 {
		return cfg, usageError{fmt.Errorf("flag --watch must not be negative, got %s", c.watch)}
	}
	if c.metricsAddr != "" && c.watch == 0 {
		return cfg, usageError{errors.New("flag --metrics-addr needs --watch (a single check exits before anything could scrape it)")}
	}
	if c.timeout <= 0 {
		return cfg, usageError{fmt.Errorf("flag --timeout must be positive, got %s", c.timeout)}
	}
	if c.maxIDs <= 0 || c.maxBuckets <= 0 {
		return cfg, usageError{errors.New("flags --max-ids and --max-buckets must be positive")}
	}
	mem, err := paritySize(c.memoryBytes)
	if err != nil || mem < 1<<20 {
		return cfg, usageError{fmt.Errorf("flag --memory-bytes: %q is not a size of at least 1MiB (e.g. 64MiB)", c.memoryBytes)}
	}
	switch c.logLevel {
	case "debug", "info", "warn", "error":
	default:
		return cfg, usageError{fmt.Errorf("flag --log-level: %q is not debug, info, warn or error", c.logLevel)}
	}
	leftClient, _, err := c.left.clients(2)
	if err != nil {
		return cfg, err
	}
	cfg = check
	cfg.Left = parity.Side{Client: leftClient, Index: c.index, Name: sideName(c.index, c.left.urls)}
	cfg.MaxIDs, cfg.MaxBuckets, cfg.MemoryBytes, cfg.TempDir = c.maxIDs, c.maxBuckets, mem, c.tempDir
	if topic {
		if err := c.decode.validate(consumer.DefaultBatchBytes); err != nil {
			return cfg, err
		}
		kopts, err := c.kafka.opts()
		if err != nil {
			return cfg, err
		}
		cfg.Right = parity.Side{Name: "topic " + c.againstTopic, Topic: &parity.Topic{
			Kafka: kopts, Topic: c.againstTopic, Decoder: c.decode.config(consumer.DefaultBatchBytes),
		}}
		return cfg, nil
	}
	// Without --against-opensearch the right side is on the left's cluster,
	// with the left's credentials.
	right := &c.right
	if c.right.urls == "" {
		right = &c.left
	}
	rightIndex := c.againstIndex
	if rightIndex == "" {
		rightIndex = c.index
	}
	rightClient, _, err := right.clients(2)
	if err != nil {
		return cfg, err
	}
	cfg.Right = parity.Side{Client: rightClient, Index: rightIndex, Name: sideName(rightIndex, right.urls)}
	return cfg, nil
}

// sideName labels a side: the index and the first cluster's host (never
// its credentials).
func sideName(index, urls string) string {
	first, _, _ := strings.Cut(urls, ",")
	if u, err := url.Parse(strings.TrimSpace(first)); err == nil && u.Host != "" {
		return index + " @ " + u.Host
	}
	return index
}

// paritySize reads a size: a number of bytes, optionally with KiB, MiB or
// GiB.
func paritySize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// renderParity renders a result as a readable table.
func renderParity(res parity.Result) string {
	var b strings.Builder
	switch res.Verdict {
	case parity.VerdictEqual:
		fmt.Fprintf(&b, "parity: EQUAL (%s mode", res.Mode)
	case parity.VerdictDrift:
		fmt.Fprintf(&b, "parity: DRIFT (%s mode", res.Mode)
	default:
		fmt.Fprintf(&b, "parity: COULD NOT CHECK (%s mode", res.Mode)
	}
	if res.Tolerance > 0 {
		fmt.Fprintf(&b, ", tolerance %d", res.Tolerance)
	}
	b.WriteString(")\n")
	if res.Verdict == parity.VerdictError {
		fmt.Fprintf(&b, "reason: %s\n", res.Error)
		return b.String()
	}
	if res.SettledBefore != nil {
		fmt.Fprintf(&b, "documents with a time field at or after %s are left out\n", res.SettledBefore.Format(time.RFC3339))
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\tleft\tright\n")
	fmt.Fprintf(tw, "side\t%s\t%s\n", res.Left.Name, res.Right.Name)
	fmt.Fprintf(tw, "live documents\t%d\t%d\n", res.Left.Count, res.Right.Count)
	fmt.Fprintf(tw, "tombstones\t%d\t%d\n", res.Left.Tombstones, res.Right.Tombstones)
	if res.Right.Undecodable > 0 {
		fmt.Fprintf(tw, "undecodable records\t\t%d\n", res.Right.Undecodable)
	}
	tw.Flush()
	b.WriteString("\n")
	switch res.Mode {
	case parity.ModeCount:
		fmt.Fprintf(&b, "count difference: %+d (left - right)\n", res.Left.Count-res.Right.Count)
	case parity.ModeSample:
		fmt.Fprintf(&b, "count difference: %+d (left - right)\n", res.Left.Count-res.Right.Count)
		fmt.Fprintf(&b, "of %d ids sampled on the left: %d missing on the right, %d at other versions\n",
			res.Sampled, res.Diff.OnlyLeft, res.Diff.VersionDiffers)
	default:
		fmt.Fprintf(&b, "differences in all ids: %d only left, %d only right, %d at other versions\n",
			res.Diff.OnlyLeft, res.Diff.OnlyRight, res.Diff.VersionDiffers)
	}
	fmt.Fprintf(&b, "drift %d, tolerance %d\n", res.Drift, res.Tolerance)
	if res.Bucket != "" {
		fmt.Fprintf(&b, "\nbuckets by %s: %d differ", res.Bucket, res.Diff.Buckets)
		if int64(len(res.Buckets)) < res.Diff.Buckets {
			fmt.Fprintf(&b, " (first %d shown)", len(res.Buckets))
		}
		b.WriteString("\n")
		if len(res.Buckets) > 0 {
			tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "  key\tleft\tright\tdiff\n")
			for _, k := range res.Buckets {
				fmt.Fprintf(tw, "  %s\t%d\t%d\t%+d\n", k.Key, k.Left, k.Right, k.Left-k.Right)
			}
			tw.Flush()
		}
	}
	list := func(title string, n int64, ids []string) {
		if n == 0 {
			return
		}
		fmt.Fprintf(&b, "\n%s: %d", title, n)
		if int64(len(ids)) < n {
			fmt.Fprintf(&b, " (first %d shown)", len(ids))
		}
		b.WriteString("\n")
		for _, id := range ids {
			fmt.Fprintf(&b, "  %s\n", id)
		}
	}
	leftTitle := "ids only on the left"
	if res.Mode == parity.ModeSample {
		leftTitle = "sampled ids missing on the right"
	}
	list(leftTitle, res.Diff.OnlyLeft*boolInt(res.Mode != parity.ModeCount), res.IDs.OnlyLeft)
	list("ids only on the right", res.Diff.OnlyRight*boolInt(res.Mode != parity.ModeCount), res.IDs.OnlyRight)
	if n := res.Diff.VersionDiffers; n > 0 {
		fmt.Fprintf(&b, "\nids at other versions: %d", n)
		if int64(len(res.IDs.VersionDiffers)) < n {
			fmt.Fprintf(&b, " (first %d shown)", len(res.IDs.VersionDiffers))
		}
		b.WriteString("\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  id\tleft\tright\n")
		for _, v := range res.IDs.VersionDiffers {
			fmt.Fprintf(tw, "  %s\t%d\t%d\n", v.ID, v.Left, v.Right)
		}
		tw.Flush()
	}
	return b.String()
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// parityGauges export the last result of --watch.
type parityGauges struct {
	verdict    *prometheus.GaugeVec
	drift      prometheus.Gauge
	tolerance  prometheus.Gauge
	documents  *prometheus.GaugeVec
	tombstones *prometheus.GaugeVec
	diff       *prometheus.GaugeVec
	last       prometheus.Gauge
	duration   prometheus.Gauge
	checks     *prometheus.CounterVec
}

func newParityGauges(reg prometheus.Registerer) *parityGauges {
	g := &parityGauges{
		verdict: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reindexer_parity_verdict",
			Help: "1 for the verdict of the last check (equal, drift or error), 0 for the others"}, []string{"verdict"}),
		drift: prometheus.NewGauge(prometheus.GaugeOpts{Name: "reindexer_parity_drift",
			Help: "differing documents found by the last completed check (compared with the tolerance)"}),
		tolerance: prometheus.NewGauge(prometheus.GaugeOpts{Name: "reindexer_parity_tolerance",
			Help: "differing documents that still count as equal (--tolerance)"}),
		documents: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reindexer_parity_documents",
			Help: "live documents per side in the last completed check"}, []string{"side"}),
		tombstones: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reindexer_parity_tombstones",
			Help: "tombstone documents per side in the last completed check"}, []string{"side"}),
		diff: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reindexer_parity_differences",
			Help: "differences of the last completed check by kind (only_left, only_right, version_differs, buckets)"}, []string{"kind"}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{Name: "reindexer_parity_last_check_timestamp_seconds",
			Help: "when the last check finished (Unix time)"}),
		duration: prometheus.NewGauge(prometheus.GaugeOpts{Name: "reindexer_parity_check_duration_seconds",
			Help: "how long the last check took"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reindexer_parity_checks_total",
			Help: "checks run, by verdict"}, []string{"verdict"}),
	}
	reg.MustRegister(g.verdict, g.drift, g.tolerance, g.documents, g.tombstones, g.diff, g.last, g.duration, g.checks)
	return g
}

// set exports res. A check that could not be made changes only the
// verdict, the timestamps and the counter: the figures stay those of the
// last completed check.
func (g *parityGauges) set(res parity.Result, now time.Time) {
	for _, v := range []string{parity.VerdictEqual, parity.VerdictDrift, parity.VerdictError} {
		val := 0.0
		if v == res.Verdict {
			val = 1
		}
		g.verdict.WithLabelValues(v).Set(val)
	}
	g.checks.WithLabelValues(res.Verdict).Inc()
	g.last.Set(float64(now.Unix()))
	g.duration.Set(res.Seconds)
	if res.Verdict == parity.VerdictError {
		return
	}
	g.drift.Set(float64(res.Drift))
	g.tolerance.Set(float64(res.Tolerance))
	g.documents.WithLabelValues("left").Set(float64(res.Left.Count))
	g.documents.WithLabelValues("right").Set(float64(res.Right.Count))
	g.tombstones.WithLabelValues("left").Set(float64(res.Left.Tombstones))
	g.tombstones.WithLabelValues("right").Set(float64(res.Right.Tombstones))
	g.diff.WithLabelValues("only_left").Set(float64(res.Diff.OnlyLeft))
	g.diff.WithLabelValues("only_right").Set(float64(res.Diff.OnlyRight))
	g.diff.WithLabelValues("version_differs").Set(float64(res.Diff.VersionDiffers))
	g.diff.WithLabelValues("buckets").Set(float64(res.Diff.Buckets))
}

// watchLoop checks every --watch until ctx ends and returns the verdict of
// the last completed check.
func (c *ParityCommand) watchLoop(ctx context.Context, cfg parity.Config, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	g := newParityGauges(reg)
	checked := make(chan struct{})
	ready := func() error {
		select {
		case <-checked:
			return nil
		default:
			return errors.New("no check completed yet")
		}
	}
	if err := serveMetrics(ctx, c.metricsAddr, false, reg, log, func() error { return nil }, ready); err != nil {
		return err
	}
	var last *parity.Result
	var lastErr error
	for {
		res, err := c.check(ctx, cfg)
		if ctx.Err() != nil {
			break // interrupted inside a check: its result is not a verdict
		}
		g.set(res, time.Now())
		if last == nil {
			close(checked)
		}
		last, lastErr = &res, err
		if err := c.print(res); err != nil {
			return err
		}
		t := time.NewTimer(c.watch)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		if ctx.Err() != nil {
			break
		}
	}
	if last == nil {
		return exitError{code: exitUsage, err: errors.New("interrupted before the first check completed")}
	}
	return verdictError(*last, lastErr)
}
