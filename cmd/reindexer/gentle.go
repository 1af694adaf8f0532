package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/reindexer/reindexer/indexer"
)

// gentleFlags are the settings that keep a replay from taking the capacity
// the target cluster's searches need.
type gentleFlags struct {
	maxRate       float64
	maxBytesRate  float64
	targetLatency time.Duration
	guardQuery    string
	searchTarget  latencyTarget
	guardInterval time.Duration
}

// gentleUsage explains which knob to use when; shown in -h of run and replay.
const gentleUsage = `Gentle on the target (all off by default, which is right for an idle new
cluster that serves no searches yet; add replay --bulk-load there):
  a cluster under canary traffic:  --guard-query FILE --search-latency-target 1.2x
      (the worker's documents per second follow representative searches:
      it backs off while the slower half of them is more than 20% slower
      than with the worker paused, before the node rejects anything)
  a live production cluster:       --guard-query FILE --search-latency-target
      <your search SLO, e.g. 80ms> --max-rate N --target-latency 500ms (a hard
      cap on documents per second for all lanes; start at a fifth of what an
      unthrottled replay reached on an idle cluster; adaptive concurrency
      backs off on 429s and slow bulks)
`

func (g *gentleFlags) register(fs *flag.FlagSet) {
	fs.Float64Var(&g.maxRate, "max-rate", 0, "cap on documents per second sent by all lanes together (retries included); also closes bulks at a tenth of a second's worth, a steady stream instead of bursts; 0: no cap")
	fs.Float64Var(&g.maxBytesRate, "max-bytes-rate", 0, "cap on bulk body bytes per second; also closes bulks at a tenth of a second's worth (at least 16KiB); 0: no cap")
	fs.DurationVar(&g.targetLatency, "target-latency", 0, "turn on adaptive bulk concurrency: grow while bulks answer within this, halve on 429/rejected/503 or slower bulks (turn on for a cluster that serves searches); 0: off, every lane sends at will")
	fs.StringVar(&g.guardQuery, "guard-query", "", "file of representative search bodies (one JSON per line, the first 16 used) run against the target index every --guard-interval; the worker's documents per second (shared by all lanes, sent as a steady stream of small bulks) start at 500 and follow them: double while the searches stay fast (up to 2000, then grow by a fifth); once they are slower than --search-latency-target for two windows of 16 searches in a row, halve, and from then on fall to 70% when slow and grow by a fifth when well under it")
	g.searchTarget = latencyTarget{abs: 200 * time.Millisecond}
	fs.Var(&g.searchTarget, "search-latency-target", "with --guard-query: the search latency above which the worker backs off: a duration (200ms; the p90 of the guard's last 16 searches stays under it), "+
		"or a factor of the latency measured with the worker paused (1.2x: the mean of the slower half of the guard's last 16 searches, without the slowest eighth, may get 20% slower; measured with 32 searches at start, again after 32, 64 and 128 guard searches, then every 240, and after three cuts in a row)")
	fs.DurationVar(&g.guardInterval, "guard-interval", 500*time.Millisecond, "with --guard-query: how often one guard search runs (its whole load)")
}

// validate checks the values and reads the guard queries.
func (g *gentleFlags) validate() ([][]byte, error) {
	switch {
	case g.maxRate < 0:
		return nil, usageError{fmt.Errorf("flag --max-rate must not be negative, got %g", g.maxRate)}
	case g.maxBytesRate < 0:
		return nil, usageError{fmt.Errorf("flag --max-bytes-rate must not be negative, got %g", g.maxBytesRate)}
	case g.targetLatency < 0:
		return nil, usageError{fmt.Errorf("flag --target-latency must not be negative, got %s", g.targetLatency)}
	case g.guardQuery == "":
		return nil, nil
	case g.guardInterval <= 0:
		return nil, usageError{fmt.Errorf("flags --search-latency-target and --guard-interval must be positive")}
	}
	return readQueries(g.guardQuery)
}

// readQueries reads one JSON search body per non-empty line of path.
func readQueries(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usageError{fmt.Errorf("flag --guard-query: %w", err)}
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if !json.Valid(line) {
			return nil, usageError{fmt.Errorf("flag --guard-query: %s line %d is not JSON", path, n)}
		}
		out = append(out, append([]byte(nil), line...))
	}
	if len(out) == 0 {
		return nil, usageError{fmt.Errorf("flag --guard-query: %s holds no query", path)}
	}
	return out, nil
}

// startGuard starts the guard searches, if configured, which run until ctx
// ends. A relative target is measured first, before anything is written;
// an error means it could not be (ctx ending meanwhile is not an error:
// the caller's pipeline then stops as it would have).
func (e *env) startGuard(ctx context.Context, g *gentleFlags) error {
	if len(e.guard) == 0 {
		return nil
	}
	_, err := e.ix.Guard(ctx, indexer.GuardConfig{Queries: e.guard, Target: g.searchTarget.abs, Relative: g.searchTarget.rel, Interval: g.guardInterval})
	if err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// latencyTarget is the value of --search-latency-target: a duration, or a
// factor of the latency measured at start ("1.5x").
type latencyTarget struct {
	abs time.Duration
	rel float64
}

func (l *latencyTarget) String() string {
	if l.rel > 0 {
		return strconv.FormatFloat(l.rel, 'g', -1, 64) + "x"
	}
	return l.abs.String()
}

func (l *latencyTarget) Set(s string) error {
	if f, ok := strings.CutSuffix(s, "x"); ok {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 1 || math.IsInf(v, 0) {
			return fmt.Errorf("want a factor above 1 such as 1.5x, got %q", s)
		}
		*l = latencyTarget{rel: v}
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("want a positive duration (200ms) or a factor (1.5x), got %q", s)
	}
	*l = latencyTarget{abs: d}
	return nil
}
