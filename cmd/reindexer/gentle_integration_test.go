//go:build integration

package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

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
	createTopicDLQ(t, env, topic, 3)
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

// TestReplayThrottledInterrupted: a replay held to --max-rate 100 buffers
// far more than it may send before its drain deadline (a poll's worth per
// lane, in 10-document bulks). Stopped with Ctrl-C, it must exit within
// --drain-timeout and a little, not keep writing at the cap until its
// buffers are empty; what it did not write is not committed, and the same
// command, uncapped, resumes and converges on the reference model.
func TestReplayThrottledInterrupted(t *testing.T) {
	env := itest.Services(t)
	topic, index, ck := itest.Name(t, "thri"), itest.Name(t, "thri"), itest.Name(t, "ck")
	createTopicDLQ(t, env, topic, 2)
	itest.CleanupIndex(t, env, index)
	itest.CleanupIndex(t, env, ck)
	f := newFeed(t, env, topic, chatgen.MustNew(chatConfig(91, 1000)))
	ends := f.produce(6000)
	group := itest.Name(t, "g")
	args := replayArgs(env, topic, group, index, ck, "--from-offsets", "0:0,1:0", "--delete-mode", "tombstone",
		"--drain-timeout", "2s")
	p, out := startSplit(t, "replay-capped", append(args, "--max-rate", "100")...)
	adm := kadm.NewClient(itest.Kafka(t, env))
	for deadline := time.Now().Add(time.Minute); ; {
		var n int64
		for _, at := range commits(t, adm, group, topic) {
			n += at
		}
		if n > 0 {
			break
		}
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("nothing committed under --max-rate 100 (exited: %v); log:\n%s", p.exited(), tail([]byte(readLog(p)), 3000))
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
	stopped := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	waitExit(t, p, time.Minute)
	took := time.Since(stopped)
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) || ee.ExitCode() != exitFailure {
		t.Fatalf("interrupted replay exited with %v, want exit code %d; log:\n%s", p.err, exitFailure, tail([]byte(readLog(p)), 3000))
	}
	// The drain deadline, the final commit and leaving the group; at the
	// cap, what the lanes buffered would take about a minute.
	if took > 12*time.Second {
		t.Errorf("took %v to exit after Ctrl-C with --drain-timeout 2s", took)
	}
	data, _ := os.ReadFile(out)
	var sum summaryJSON
	if err := json.Unmarshal(data, &sum); err != nil || sum.Complete {
		t.Fatalf("summary after Ctrl-C: %v, complete %v\n%s", err, sum.Complete, data)
	}
	var committed int64
	for _, at := range commits(t, adm, group, topic) {
		committed += at
	}
	if committed >= sum64(ends) {
		t.Fatalf("all %d records committed though the replay was stopped at 100 docs/s", committed)
	}
	r := runReplay(t, "replay-capped-resumed", 2*time.Minute, args...)
	if got := r.Sum.Records + committed; got < sum64(ends) {
		t.Errorf("resumed replay read %d records after %d committed, want the remaining %d", r.Sum.Records, committed, sum64(ends)-committed)
	}
	itest.CompareToModel(t, itest.DumpIndex(t, env, index), f.model(t, refmodel.ModeTombstone, below(ends)))
	t.Logf("exit %v after Ctrl-C (drain 2s) with %d of %d committed; resumed %d records", took.Round(time.Millisecond), committed, sum64(ends), r.Sum.Records)
}

// TestReplayGuardBaselineInterrupted: Ctrl-C while the guard measures its
// relative baseline (before the first bulk) stops the replay as an
// interrupted one: exit 1, an incomplete summary, nothing written and
// nothing committed; the same command resumes and converges on the
// reference model.
func TestReplayGuardBaselineInterrupted(t *testing.T) {
	env := itest.Services(t)
	topic, index, ck := itest.Name(t, "gbi"), itest.Name(t, "gbi"), itest.Name(t, "ck")
	createTopicDLQ(t, env, topic, 2)
	itest.CleanupIndex(t, env, ck)
	itest.CreateIndex(t, env, index, `{"settings":{"number_of_shards":1,"number_of_replicas":0}}`)
	f := newFeed(t, env, topic, chatgen.MustNew(chatConfig(93, 500)))
	ends := f.produce(2000)
	queries := filepath.Join(t.TempDir(), "guard.jsonl")
	if err := os.WriteFile(queries, []byte(`{"query":{"match":{"body":"meeting"}}}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	group := itest.Name(t, "g")
	args := replayArgs(env, topic, group, index, ck, "--from-offsets", "0:0,1:0", "--delete-mode", "tombstone",
		"--guard-query", queries, "--search-latency-target", "1.5x", "--guard-interval", "250ms", "--log-level", "info")
	p, out := startSplit(t, "replay-baseline-interrupted", args...)
	// The baseline is 34 searches 100 ms apart: signal at its first.
	searched := func() int64 {
		var st struct {
			All struct {
				Primaries struct {
					Search struct {
						QueryTotal int64 `json:"query_total"`
					} `json:"search"`
				} `json:"primaries"`
			} `json:"_all"`
		}
		getJSON(t, env.OpenSearchURL+"/"+index+"/_stats/search", &st)
		return st.All.Primaries.Search.QueryTotal
	}
	for deadline := time.Now().Add(time.Minute); searched() == 0; {
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("no guard search within a minute (exited: %v); log:\n%s", p.exited(), tail([]byte(readLog(p)), 3000))
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	waitExit(t, p, time.Minute)
	log := readLog(p)
	if strings.Contains(log, "guard baseline measured") {
		t.Fatalf("the baseline finished before the signal: the test did not interrupt it; log:\n%s", tail([]byte(log), 3000))
	}
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) || ee.ExitCode() != exitFailure {
		t.Fatalf("replay interrupted in its baseline exited with %v, want exit code %d; log:\n%s", p.err, exitFailure, tail([]byte(log), 3000))
	}
	data, _ := os.ReadFile(out)
	var sum summaryJSON
	if err := json.Unmarshal(data, &sum); err != nil || sum.Complete || sum.Records != 0 {
		t.Fatalf("summary after Ctrl-C in the baseline: %v, complete %v, %d records; want incomplete, none\n%s", err, sum.Complete, sum.Records, data)
	}
	if docs := itest.DumpIndex(t, env, index); len(docs) != 0 {
		t.Fatalf("%d documents written before the guard's baseline was measured", len(docs))
	}
	for part, at := range commits(t, kadm.NewClient(itest.Kafka(t, env)), group, topic) {
		if at != 0 {
			t.Fatalf("partition %d committed at %d though nothing was written", part, at)
		}
	}
	r := runReplay(t, "replay-baseline-resumed", 2*time.Minute, args...)
	if r.Sum.Records != sum64(ends) {
		t.Errorf("resumed replay read %d records, want all %d", r.Sum.Records, sum64(ends))
	}
	itest.CompareToModel(t, itest.DumpIndex(t, env, index), f.model(t, refmodel.ModeTombstone, below(ends)))
}
