//go:build integration

package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/reindexer/reindexer/checkpoint"
	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/reindexer/reindexer/internal/refmodel"
	"github.com/reindexer/reindexer/replay"
	"github.com/twmb/franz-go/pkg/kadm"
)

// Replay planning against real Kafka and OpenSearch, with the binary: the
// refusals (a reused group, records deleted by retention, an unstated
// feeder lag) and snapshot gaps whose live indexer lagged or whose index
// was also written by a group that started mid-stream.

// runExit runs the binary to its exit and returns the exit code, stdout
// and the log (stderr).
func runExit(t *testing.T, name string, timeout time.Duration, args ...string) (int, string, string) {
	t.Helper()
	p, out := startSplit(t, name, args...)
	waitExit(t, p, timeout)
	code := 0
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		code = ee.ExitCode()
	} else if p.err != nil {
		t.Fatalf("%s: %v", name, p.err)
	}
	stdout, _ := os.ReadFile(out)
	return code, string(stdout), readLog(p)
}

// TestReplayReusedGroup: `replay --group g` on a group `run` used (commits,
// no stored plan) is refused with exit 2 naming the group and its commits,
// for the dry run too, and with --checkpoint-index none; it used to seed
// nothing, replay 0 records and print complete while the dry run showed
// every record. A new group replays everything.
func TestReplayReusedGroup(t *testing.T) {
	env := itest.Services(t)
	topic, index, ck := itest.Name(t, "plan-reuse"), itest.Name(t, "plan-reuse-x"), itest.Name(t, "plan-reuse-ck")
	createTopicDLQ(t, env, topic, 3)
	itest.CleanupIndex(t, env, index)
	itest.CleanupIndex(t, env, ck)
	f := newFeed(t, env, topic, chatgen.MustNew(chatConfig(13, 200)))
	ends := f.produce(300)
	group := itest.Name(t, "plan-reuse-g")
	live := start(t, "run", runArgs(env, topic, group, index, "--checkpoint-index", ck)...)
	waitGroupAt(t, env, group, topic, ends, 2*time.Minute)
	live.term(60 * time.Second)

	for _, tc := range []struct{ name, ck string }{{"dry-run", ck}, {"replay", ck}, {"no-checkpoint-index", "none"}} {
		args := replayArgs(env, topic, group, index, tc.ck, "--from", "1h")
		if tc.name == "dry-run" {
			args = append(args, "--dry-run")
		}
		code, out, log := runExit(t, "replay-"+tc.name, time.Minute, args...)
		if code != exitUsage || !strings.Contains(log, "group "+group+" has committed offsets on topic "+topic) ||
			!strings.Contains(log, replay.FormatOffsets(ends)) || !strings.Contains(log, "--group") {
			t.Errorf("%s on a group run used: exit %d, want 2 naming the group, its commits %s and --group; stdout:\n%s\nlog tail:\n%s",
				tc.name, code, replay.FormatOffsets(ends), out, tail([]byte(log), 1500))
		}
	}
	// The index keeps the run's result, and a new group replays all of it.
	r := runReplay(t, "replay-new-group", 2*time.Minute, replayArgs(env, topic, itest.Name(t, "plan-reuse-new"), index, ck, "--from", "1h")...)
	if r.Sum.Records != 300 {
		t.Errorf("a new group replayed %d records, want 300", r.Sum.Records)
	}
	itest.CompareToModel(t, itest.DumpIndex(t, env, index), f.model(t, refmodel.ModeDelete, below(ends)))
}

// TestReplayRetentionGapCLI: when Kafka retention already deleted part of
// the range, replay exits 2 printing exactly which offsets are gone; with
// --allow-retention-gap it plans from the log start and lists the gap.
// It used to clamp silently (an INFO line, exit 0).
func TestReplayRetentionGapCLI(t *testing.T) {
	env := itest.Services(t)
	topic, index := itest.Name(t, "plan-ret"), itest.Name(t, "plan-ret-x")
	itest.CreateTopic(t, env, topic, 2)
	itest.CleanupIndex(t, env, index)
	f := newFeed(t, env, topic, chatgen.MustNew(chatConfig(14, 100)))
	ends := f.produce(200)
	adm := kadm.NewClient(itest.Kafka(t, env))
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: topic, Partition: 0, At: 30})
	if res, err := adm.DeleteRecords(t.Context(), del); err != nil || res.Error() != nil {
		t.Fatalf("delete records: %v %v", err, res.Error())
	}
	args := replayArgs(env, topic, itest.Name(t, "plan-ret-g"), index, "none", "--from-offsets", "0:10,1:0", "--dry-run")
	code, out, log := runExit(t, "replay-gap", time.Minute, args...)
	if code != exitUsage || !strings.Contains(log, "0: [10, 30)") || !strings.Contains(log, "--allow-retention-gap") {
		t.Errorf("a start below the log start: exit %d, want 2 printing 0: [10, 30) and naming --allow-retention-gap; stdout:\n%s\nlog tail:\n%s",
			code, out, tail([]byte(log), 1500))
	}
	code, out, log = runExit(t, "replay-gap-allowed", time.Minute, append(args, "--allow-retention-gap")...)
	var plan struct {
		From       string    `json:"from"`
		Partitions []planRow `json:"partitions"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &plan) != nil {
		t.Fatalf("--allow-retention-gap: exit %d; stdout:\n%s\nlog tail:\n%s", code, out, tail([]byte(log), 1500))
	}
	got := ranges(plan.Partitions)
	if got[0].Start != 30 || got[0].End != ends[0] || got[1].Start != 0 || !strings.Contains(plan.From, "0: [10, 30)") {
		t.Errorf("allowed gap: plan %+v, from %q; want partition 0 from 30, the gap listed", plan.Partitions, plan.From)
	}
}

// TestSnapshotGapLaggingFeeder: the old index A is fed by a live run G1
// that stops (its feeder lags further and further) while events go on; a
// second group G2 then feeds A from the end (`run --start latest`, a group
// that started mid-stream), and A is snapshotted with its checkpoint
// history while G1 is minutes of records behind.
//
//   - With history, the replay into the restored copy B starts at G1's
//     complete checkpoints, not at G2's greater but incomplete ones, and B
//     equals the reference state of the whole topic. (Trusting any group's
//     greatest offset skipped what A lacked between G1's stop and G2's
//     start.)
//   - Without history, the replay is refused (exit 2, naming
//     --max-feeder-lag) instead of starting at the skew margin and skipping
//     what the lagging feeder had not written; with --max-feeder-lag the
//     copy C equals the reference state.
func TestSnapshotGapLaggingFeeder(t *testing.T) {
	env := itest.Services(t)
	ctx := t.Context()
	cl := itest.OpenSearch(t, env)
	mode := refmodel.ModeTombstone
	topic, a, ck := itest.Name(t, "plan-lag"), itest.Name(t, "plan-lag-a"), itest.Name(t, "plan-lag-ck")
	createTopicDLQ(t, env, topic, 4)
	itest.CreateIndex(t, env, a, `{"settings":{"number_of_shards":2,"number_of_replicas":0}}`)
	itest.CleanupIndex(t, env, ck)
	adm := kadm.NewClient(itest.Kafka(t, env))
	topicID, err := replay.TopicID(ctx, adm, topic)
	if err != nil {
		t.Fatal(err)
	}
	f := newFeed(t, env, topic, chatgen.MustNew(chatConfig(15, 2000)))
	common := []string{"--delete-mode", string(mode), "--checkpoint-index", ck, "--checkpoint-interval", "200ms"}

	// G1 indexes the first 800 events, then stops: from here on A's feeder
	// lags.
	first := f.produce(800)
	g1 := itest.Name(t, "plan-lag-g1")
	run1 := start(t, "run-g1", runArgs(env, topic, g1, a, common...)...)
	waitGroupAt(t, env, g1, topic, first, 2*time.Minute)
	run1.term(60 * time.Second)
	stopped := time.Now()

	// Events go on; then G2 starts at the end and follows.
	second := f.produce(800)
	g2 := itest.Name(t, "plan-lag-g2")
	run2 := start(t, "run-g2", runArgs(env, topic, g2, a, append(common, "--start", "latest")...)...)
	store := checkpoint.NewStore(cl, ck)
	// Once G2 has its partitions, the next events are its to write.
	for deadline := time.Now().Add(2 * time.Minute); !strings.Contains(readLog(run2), "partitions assigned"); {
		if time.Now().After(deadline) {
			t.Fatal("G2 got no partitions within 2 minutes")
		}
		time.Sleep(200 * time.Millisecond) // poll interval of an awaited condition
	}
	third := f.produce(400)
	waitGroupAt(t, env, g2, topic, third, 2*time.Minute)
	// G2's checkpoints at the end of the topic say it is incomplete: it
	// started mid-stream.
	var own map[int32]checkpoint.Checkpoint
	for deadline := time.Now().Add(10 * time.Second); ; {
		own, err = store.Search(ctx, checkpoint.Query{Topic: topic, TopicID: topicID, Index: a, Group: g2})
		if err == nil && len(own) == 4 && own[0].Offset == third[0] && own[1].Offset == third[1] && own[2].Offset == third[2] && own[3].Offset == third[3] {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("G2 wrote no checkpoints with its topic ID at the end within 10s: %+v, %v", own, err)
			break
		}
		time.Sleep(200 * time.Millisecond) // poll interval of an awaited condition
	}
	for p, cp := range own {
		if cp.Complete {
			t.Errorf("G2 (started mid-stream) wrote a complete checkpoint %+v for partition %d", cp, p)
		}
	}
	margin := 2 * time.Second
	time.Sleep(margin + 500*time.Millisecond) // G2's checkpoints predate the snapshot's cutoff
	repo := snapshotRepo(t, env)
	takeSnapshot(t, env, repo, "lag-1", a, ck)
	info, err := checkpoint.SnapshotInfo(ctx, cl, repo, "lag-1")
	if err != nil {
		t.Fatal(err)
	}
	lag := info.Start.Sub(stopped)
	final := f.produce(300)
	run2.term(60 * time.Second)
	all := f.model(t, mode, below(final))
	t.Logf("snapshot %s after G1 stopped (the feeder's lag); A lacks %d records between G1's stop and G2's start",
		lag.Round(time.Millisecond), sum64(second)-sum64(first))

	// With history: G1's complete checkpoints, never G2's.
	restoreAs(t, env, repo, "lag-1", "-b", a, ck)
	b, ckB := a+"-b", ck+"-b"
	gap := []string{"--since-snapshot", repo + "/lag-1", "--snapshot-index", a, "--skew-margin", margin.String(), "--delete-mode", string(mode)}
	r := runReplay(t, "replay-b", 3*time.Minute, replayArgs(env, topic, itest.Name(t, "plan-lag-rb"), b, ckB, gap...)...)
	for _, row := range r.Sum.Plan.Partitions {
		if row.Start != first[row.Partition] {
			t.Errorf("partition %d starts at %d, want %d (G1's last complete checkpoint)", row.Partition, row.Start, first[row.Partition])
		}
	}
	if !strings.Contains(r.Sum.Plan.From, "groups "+g1+")") {
		t.Errorf("the plan does not name G1 alone as its history: %s", r.Sum.Plan.From)
	}
	itest.CompareToModel(t, itest.DumpIndex(t, env, b), all)

	// Without history: refused unless the feeder lag is stated.
	restoreAs(t, env, repo, "lag-1", "-c", a)
	c := a + "-c"
	noHist := replayArgs(env, topic, itest.Name(t, "plan-lag-rc"), c, "none", gap...)
	code, _, log := runExit(t, "replay-c-refused", time.Minute, noHist...)
	if code != exitUsage || !strings.Contains(log, "--max-feeder-lag") || !strings.Contains(log, "partitions 0-3") {
		t.Errorf("a snapshot replay without history and without a feeder-lag bound: exit %d, want 2 naming --max-feeder-lag; log tail:\n%s", code, tail([]byte(log), 1500))
		if code == 0 {
			// It ran from the skew margin: what did C miss?
			itest.CompareToModel(t, itest.DumpIndex(t, env, c), all)
			t.FailNow()
		}
	}
	bound := (lag + 10*time.Second).Round(time.Second)
	r = runReplay(t, "replay-c", 3*time.Minute, append(noHist, "--max-feeder-lag", bound.String())...)
	if !strings.Contains(r.Sum.Plan.From, "feeder was at most "+bound.String()+" behind") {
		t.Errorf("the plan does not state its assumption: %s", r.Sum.Plan.From)
	}
	itest.CompareToModel(t, itest.DumpIndex(t, env, c), all)
	t.Logf("feeder lag %s: with history the replay read %d records; without, with --max-feeder-lag %s, %d",
		lag.Round(time.Millisecond), sum64(final)-sum64(first), bound, r.Sum.Records)
}

// TestSnapshotGapRecreatedTopic: A was fed from a topic that was then
// deleted and created again under the same name; its checkpoint history
// holds offsets below the new topic's end. The replay of A's snapshot must
// not trust them (they speak of another topic ID): it is refused without a
// feeder-lag bound, and with one the restored copy equals the reference
// state of both topics' events. Trusting them skipped the new topic's first
// records.
func TestSnapshotGapRecreatedTopic(t *testing.T) {
	env := itest.Services(t)
	ctx := t.Context()
	mode := refmodel.ModeTombstone
	topic, a, ck := itest.Name(t, "plan-recr"), itest.Name(t, "plan-recr-a"), itest.Name(t, "plan-recr-ck")
	createTopicDLQ(t, env, topic, 4)
	itest.CreateIndex(t, env, a, `{"settings":{"number_of_shards":2,"number_of_replicas":0}}`)
	itest.CleanupIndex(t, env, ck)
	adm := kadm.NewClient(itest.Kafka(t, env))
	oldID, err := replay.TopicID(ctx, adm, topic)
	if err != nil {
		t.Fatal(err)
	}
	gen := chatgen.MustNew(chatConfig(16, 1500))
	f1 := newFeed(t, env, topic, gen)
	first := f1.produce(800)
	g1 := itest.Name(t, "plan-recr-g1")
	run1 := start(t, "run-g1", runArgs(env, topic, g1, a, "--delete-mode", string(mode), "--checkpoint-index", ck, "--checkpoint-interval", "200ms")...)
	waitGroupAt(t, env, g1, topic, first, 2*time.Minute)
	run1.term(60 * time.Second)

	// The topic is deleted and created again; new events arrive, more than
	// before, so the old checkpoints are below the new ends.
	if r, err := adm.DeleteTopic(ctx, topic); err != nil || r.Err != nil {
		t.Fatalf("delete topic: %v %v", err, r.Err)
	}
	for deadline := time.Now().Add(time.Minute); ; {
		r, err := adm.CreateTopic(ctx, 4, 1, nil, topic)
		if err == nil && r.Err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recreate topic: %v %v", err, r.Err)
		}
		time.Sleep(200 * time.Millisecond) // poll interval of an awaited condition
	}
	f2 := newFeed(t, env, topic, gen)
	second := f2.produce(1600)
	for p, e := range first {
		if second[p] <= e {
			t.Fatalf("partition %d: the new topic ends at %d, not past the old checkpoint %d: the test proves nothing", p, second[p], e)
		}
	}
	newID, err := replay.TopicID(ctx, kadm.NewClient(itest.Kafka(t, env)), topic)
	if err != nil || newID == oldID {
		t.Fatalf("topic ID after recreating: %q (was %q), %v", newID, oldID, err)
	}
	margin := 2 * time.Second
	time.Sleep(margin + 500*time.Millisecond) // the old checkpoints predate the cutoff
	repo := snapshotRepo(t, env)
	takeSnapshot(t, env, repo, "recr-1", a, ck)
	restoreAs(t, env, repo, "recr-1", "-b", a, ck)
	b, ckB := a+"-b", ck+"-b"
	var events []chatgen.Event
	for _, f := range []*feed{f1, f2} {
		for _, rs := range f.records() {
			for _, r := range rs {
				events = append(events, r.Event)
			}
		}
	}
	all := itest.Model(t, mode, events)

	args := replayArgs(env, topic, itest.Name(t, "plan-recr-r"), b, ckB, "--since-snapshot", repo+"/recr-1", "--snapshot-index", a,
		"--skew-margin", margin.String(), "--delete-mode", string(mode))
	code, _, log := runExit(t, "replay-refused", time.Minute, args...)
	if code != exitUsage || !strings.Contains(log, "--max-feeder-lag") || !strings.Contains(log, "no complete checkpoint history of this topic") {
		t.Errorf("a snapshot replay whose history is of an earlier topic: exit %d, want 2 naming --max-feeder-lag; log tail:\n%s", code, tail([]byte(log), 1500))
		if code == 0 {
			itest.CompareToModel(t, itest.DumpIndex(t, env, b), all) // what the replay skipped
			t.FailNow()
		}
	}
	r := runReplay(t, "replay-b", 3*time.Minute, append(args, "--max-feeder-lag", "1h")...)
	for _, row := range r.Sum.Plan.Partitions {
		if row.Start != 0 {
			t.Errorf("partition %d starts at %d, want 0 (nothing of the new topic is in A)", row.Partition, row.Start)
		}
	}
	itest.CompareToModel(t, itest.DumpIndex(t, env, b), all)
	t.Logf("old topic ID %s, new %s: the replay read %d records of the new topic; B equals the reference state (%d documents)", oldID, newID, r.Sum.Records, len(all))
}
