//go:build integration

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/reindexer/reindexer/internal/refmodel"
)

// TestReplayThrottledConverges: a delete-mode replay under every throttle
// at once (--max-rate with its small bulks, adaptive concurrency, and a
// guard with a relative search target measured before the first write)
// still gives each partition its one ordered writer: the index equals the
// reference model. The rate cap is real: the replay cannot finish faster
// than its records at the cap allow.
func TestReplayThrottledConverges(t *testing.T) {
	n := 4000
	if short() {
		n = 2000
	}
	const rate = 2000
	env := itest.Services(t)
	topic, index, ck := itest.Name(t, "thr"), itest.Name(t, "thr"), itest.Name(t, "ck")
	itest.CreateTopic(t, env, topic, 3)
	itest.CreateTopic(t, env, topic+".dlq", 1)
	itest.CleanupIndex(t, env, ck)
	// The guard's baseline searches need the index to exist.
	itest.CreateIndex(t, env, index, `{"settings":{"number_of_shards":2,"number_of_replicas":0}}`)
	f := newFeed(t, env, topic, chatgen.MustNew(chatConfig(77, n/4)))
	f.produce(n)
	queries := filepath.Join(t.TempDir(), "guard.jsonl")
	if err := os.WriteFile(queries, []byte(`{"query":{"match":{"body":"meeting"}}}`+"\n"+`{"query":{"match":{"body":"lunch today"}}}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runReplay(t, "replay-throttled", 3*time.Minute, replayArgs(env, topic, itest.Name(t, "g"), index, ck,
		"--from", "2000-01-01T00:00:00Z", "--delete-mode", "delete", "--max-rate", "2000",
		"--target-latency", "500ms", "--guard-query", queries, "--search-latency-target", "3x", "--guard-interval", "100ms",
		"--log-level", "info")...)
	if r.Sum.Records != int64(n) {
		t.Errorf("replay read %d records, want %d", r.Sum.Records, n)
	}
	if !strings.Contains(r.Log, "guard baseline measured") {
		t.Errorf("no \"guard baseline measured\" in the log:\n%s", tail([]byte(r.Log), 2000))
	}
	// At most rate/s plus the 0.1 s a fresh bucket banks plus one bulk
	// (a tenth of a second's worth) going at the start of its share.
	if least := time.Duration(float64(n-2*rate/10) / rate * float64(time.Second)); activeSpan(r.Log) < least {
		t.Errorf("%d records written in %v under --max-rate %d; the cap allows no less than %v", n, activeSpan(r.Log), rate, least)
	}
	itest.CompareToModel(t, itest.DumpIndex(t, env, index), f.model(t, refmodel.ModeDelete, func(int32, int64) bool { return true }))
	t.Logf("%d records in %v (active %v) under --max-rate %d with the guard", r.Sum.Records, r.Took.Round(time.Millisecond), activeSpan(r.Log).Round(time.Millisecond), rate)
}
