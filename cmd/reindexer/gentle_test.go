package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reindexer/reindexer/consumer"
)

func TestGentleFlags(t *testing.T) {
	base := []string{"--brokers", "127.0.0.1:1", "--topic", "t", "--group", "g", "--opensearch", "http://127.0.0.1:1", "--index", "i"}
	dir := t.TempDir()
	notJSON := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(notJSON, []byte("{\"query\":{}}\nnot json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"negative rate", []string{"--max-rate", "-5"}, "flag --max-rate"},
		{"negative bytes rate", []string{"--max-bytes-rate", "-1"}, "flag --max-bytes-rate"},
		{"guard file not JSON", []string{"--guard-query", notJSON}, "line 2 is not JSON"},
		{"guard file missing", []string{"--guard-query", filepath.Join(dir, "nope"), "--target-latency", "1s"}, "flag --guard-query"},
		{"search target factor", []string{"--search-latency-target", "0.5x"}, "search-latency-target"},
		{"search target", []string{"--search-latency-target", "fast"}, "search-latency-target"},
		{"dlq ratio", []string{"--dlq-max-ratio", "0"}, "flag --dlq-max-ratio"},
		{"bulk load without history", []string{"--from", "1h", "--bulk-load", "--checkpoint-index", "none"}, "flag --bulk-load needs the checkpoint index"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := "run"
			if strings.Contains(c.name, "bulk load") {
				cmd = "replay"
			}
			code, _, errb := runMain(t, nil, append(append([]string{cmd}, base...), c.args...)...)
			if code != 2 || !strings.Contains(errb, c.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, errb, c.want)
			}
		})
	}
}

// TestProgressShowsThrottle: with adaptive concurrency on, the progress
// line carries the current limit and the reason of its last decrease.
func TestProgressShowsThrottle(t *testing.T) {
	var logb, bar bytes.Buffer
	r := newReporter(&bar, "log", slog.New(slog.NewTextHandler(&logb, nil)))
	r.throttle = func() (float64, string) { return 1.5, "search_latency" }
	r.update(consumer.Progress{Done: 50, Total: 100, Elapsed: time.Second})
	if !strings.Contains(logb.String(), "throttle_limit=1.5") || !strings.Contains(logb.String(), "throttle_last_cut=search_latency") {
		t.Fatalf("progress log line %q lacks the throttle", logb.String())
	}
	r = newReporter(&bar, "bar", nil)
	r.throttle = func() (float64, string) { return 4, "" }
	r.update(consumer.Progress{Done: 50, Total: 100, Elapsed: time.Second})
	if !strings.Contains(bar.String(), "limit 4.0 (last cut: none)") {
		t.Fatalf("progress bar %q lacks the throttle", bar.String())
	}
}
