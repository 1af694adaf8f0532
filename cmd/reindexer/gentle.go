package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"
)

// gentleFlags are the settings that keep a replay from taking the capacity
// the target cluster's searches need.
type gentleFlags struct {
	maxRate       float64
	maxBytesRate  float64
	targetLatency time.Duration
	guardQuery    string
	searchTarget  time.Duration
	guardInterval time.Duration
}

// gentleUsage explains which knob to use when; shown in -h of run and replay.
const gentleUsage = `Gentle on the target (all off by default, which is right for an idle new
cluster that serves no searches yet):
  a cluster under canary traffic:  --target-latency 500ms (adaptive concurrency)
      plus --guard-query FILE --search-latency-target 200ms (back off when
      representative searches slow down, before the node rejects anything)
  a live production cluster:       the above plus --max-rate N (a hard cap on
      documents per second, shared by all lanes)
`

func (g *gentleFlags) register(fs *flag.FlagSet) {
	fs.Float64Var(&g.maxRate, "max-rate", 0, "cap on documents per second sent by all lanes together (retries included); 0: no cap")
	fs.Float64Var(&g.maxBytesRate, "max-bytes-rate", 0, "cap on bulk body bytes per second; 0: no cap")
	fs.DurationVar(&g.targetLatency, "target-latency", 0, "turn on adaptive bulk concurrency: grow while bulks answer within this, halve on 429/rejected/503 or slower bulks (turn on for a cluster that serves searches); 0: off, every lane sends at will")
	fs.StringVar(&g.guardQuery, "guard-query", "", "file of representative search bodies (one JSON per line) run against the target index every --guard-interval; a search slower than --search-latency-target halves the concurrency (needs --target-latency)")
	fs.DurationVar(&g.searchTarget, "search-latency-target", 200*time.Millisecond, "with --guard-query: the search latency above which the worker backs off")
	fs.DurationVar(&g.guardInterval, "guard-interval", 2*time.Second, "with --guard-query: how often one guard search runs (its whole load)")
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
	case g.targetLatency == 0:
		return nil, usageError{fmt.Errorf("flag --guard-query needs --target-latency (the guard lowers the adaptive concurrency limit)")}
	case g.searchTarget <= 0 || g.guardInterval <= 0:
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

// startGuard runs the guard searches, if configured, until ctx ends.
func (e *env) startGuard(ctx context.Context, g *gentleFlags) {
	if len(e.guard) == 0 {
		return
	}
	go e.ix.Guard(ctx, e.guard, g.searchTarget, g.guardInterval)
}
