//go:build integration

package replay

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reindexer/reindexer/checkpoint"
	"github.com/reindexer/reindexer/internal/itest"
)

// sinceFixture is a real topic of 4 partitions with 10 records each
// (partitions 0-2: offsets 0-4 stamped 30 minutes ago, 5-9 five minutes
// ago; partition 3: all ten 30 minutes ago) and a real checkpoint store.
type sinceFixture struct {
	topic, topicID string
	adm            *kadm.Client
	store          *checkpoint.Store
	now            time.Time
}

func newSinceFixture(t *testing.T) sinceFixture {
	t.Helper()
	env := itest.Services(t)
	ctx := t.Context()
	cl := itest.OpenSearch(t, env)
	ck := itest.Name(t, "plan-ck")
	itest.CleanupIndex(t, env, ck)
	f := sinceFixture{topic: itest.Name(t, "plan-since"), adm: kadm.NewClient(itest.Kafka(t, env)), store: checkpoint.NewStore(cl, ck), now: time.Now()}
	itest.CreateTopic(t, env, f.topic, 4)
	f.produce(t, env)
	id, err := TopicID(ctx, f.adm, f.topic)
	if err != nil || id == "" {
		t.Fatalf("topic ID %q: %v", id, err)
	}
	f.topicID = id
	return f
}

func (f sinceFixture) produce(t *testing.T, env *itest.Env) {
	t.Helper()
	producer := itest.Kafka(t, env, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for p := range int32(4) {
		for i := range 10 {
			ts := f.now.Add(-30*time.Minute + time.Duration(i)*time.Second)
			if i >= 5 && p != 3 {
				ts = f.now.Add(-5*time.Minute + time.Duration(i)*time.Second)
			}
			recs = append(recs, &kgo.Record{Topic: f.topic, Partition: p, Timestamp: ts, Key: []byte(fmt.Sprint(i)), Value: []byte("{}")})
		}
	}
	if err := producer.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// TestSinceSnapshotIntegration plans snapshot gaps from real checkpoint
// history: the greatest complete checkpoint of the current topic ID before
// the cutoff, any group; incomplete checkpoints (a group that started
// mid-stream) and checkpoints of an earlier topic of the same name are
// never used; partitions without history fall back to timestamps only
// with a stated feeder lag.
func TestSinceSnapshotIntegration(t *testing.T) {
	f := newSinceFixture(t)
	ctx := t.Context()
	snapStart := f.now.Add(-10 * time.Minute)
	margin := time.Minute
	cutoff := snapStart.Add(-margin)
	cp := func(group, index string, p int32, off int64, when time.Time) checkpoint.Checkpoint {
		return checkpoint.Checkpoint{Group: group, Topic: f.topic, TopicID: f.topicID, Complete: true, Index: index, Partition: p, Offset: off, Time: when}
	}
	midStream := cp("g-latest", "X", 1, 8, cutoff.Add(-2*time.Minute))
	midStream.Complete = false // a group that started mid-stream: vouches only for what it wrote
	oldTopic := cp("g1", "X", 2, 4, cutoff.Add(-2*time.Minute))
	oldTopic.TopicID = "an-earlier-topic-of-this-name"
	if err := f.store.Write(ctx, []checkpoint.Checkpoint{
		cp("g1", "X", 0, 3, cutoff.Add(-5*time.Minute)),
		cp("g2", "X", 0, 6, cutoff.Add(-2*time.Minute)),
		cp("g1", "X", 0, 9, cutoff.Add(30*time.Second)), // after the cutoff
		cp("g1", "X", 1, 2, cutoff.Add(-time.Second)),
		midStream,
		oldTopic,
		cp("g1", "X", 2, 9, cutoff.Add(time.Minute)), // only after: falls back
		cp("g1", "other-index", 2, 1, cutoff.Add(-time.Hour)),
		cp("g1", "X", 7, 1, cutoff.Add(-time.Hour)),        // no partition 7
		cp("g1", "X-new", 0, 1000, cutoff.Add(-time.Hour)), // past the end
		cp("g1", "X-new", 1, 3, cutoff.Add(-time.Hour)),
	}); err != nil {
		t.Fatal(err)
	}

	run := func(name string, store *checkpoint.Store, index string, lag time.Duration) (Starts, error) {
		t.Helper()
		start := time.Now()
		got, err := SinceSnapshot(ctx, store, f.adm, Since{Topic: f.topic, SourceIndex: index, SnapshotStart: snapStart, Margin: margin, MaxFeederLag: lag})
		t.Logf("%s: SinceSnapshot took %s: %v %v\n  note: %s", name, time.Since(start).Round(time.Millisecond), got.Offsets, err, got.Note)
		return got, err
	}
	check := func(name string, got Starts, err error, want map[int32]int64, complete []int32, notes ...string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !maps.Equal(got.Offsets, want) {
			t.Errorf("%s: starts %v, want %v", name, got.Offsets, want)
		}
		wantComplete := map[int32]bool{}
		for _, p := range complete {
			wantComplete[p] = true
		}
		if !maps.Equal(got.Complete, wantComplete) {
			t.Errorf("%s: complete %v, want %v", name, got.Complete, wantComplete)
		}
		for _, n := range notes {
			if !strings.Contains(got.Note, n) {
				t.Errorf("%s: note lacks %q:\n%s", name, n, got.Note)
			}
		}
	}

	// Without a feeder-lag bound, partitions 2 and 3 (no usable history)
	// are refused.
	if _, err := run("history, no lag bound", f.store, "X", 0); !errors.Is(err, ErrFeederLagUnknown) || !strings.Contains(err.Error(), "partitions 2-3") {
		t.Errorf("history without a lag bound: %v, want ErrFeederLagUnknown naming partitions 2-3", err)
	}
	// With a 10-minute lag bound the fallback cutoff is 21 minutes ago:
	// partitions 2 and 3 start at 0 (records 30 minutes old may not have
	// been in the index). Partition 1 keeps offset 2: the mid-stream
	// group's 8 is not trusted.
	got, err := run("history", f.store, "X", 10*time.Minute)
	check("history", got, err, map[int32]int64{0: 6, 1: 2, 2: 5, 3: 10}, []int32{0, 1},
		"partitions 0-1 start at the last durable offset recorded before the cutoff",
		"groups g1,g2)",
		"partitions 2-3 (no complete checkpoint history of this topic before the cutoff) fall back",
		"feeder was at most 10m0s behind",
		"partitions 7 the topic does not have")
	got, err = run("history, 30m lag", f.store, "X", 30*time.Minute)
	check("history, 30m lag", got, err, map[int32]int64{0: 6, 1: 2, 2: 0, 3: 0}, []int32{0, 1})

	got, err = run("no history", checkpoint.NewStore(itest.OpenSearch(t, itest.Services(t)), itest.Name(t, "plan-ck-none")), "X", time.Minute)
	check("no history", got, err, map[int32]int64{0: 5, 1: 5, 2: 5, 3: 10}, nil, "partitions 0-3 (no complete checkpoint history of this topic before the cutoff) fall back")
	got, err = run("disabled", nil, "X", time.Minute)
	check("disabled", got, err, map[int32]int64{0: 5, 1: 5, 2: 5, 3: 10}, nil, "(checkpoint history disabled)")

	got, err = run("contradicted", f.store, "X-new", time.Minute)
	check("contradicted", got, err, map[int32]int64{0: 5, 1: 3, 2: 5, 3: 10}, []int32{1},
		"WARNING: checkpoints of partitions 0 are past the partition's end offset")

	// Retention deleted records the snapshot lacks: the plan is refused,
	// naming the offsets, unless allowed.
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: f.topic, Partition: 1, At: 4})
	if res, err := f.adm.DeleteRecords(ctx, del); err != nil || res.Error() != nil {
		t.Fatalf("delete records: %v %v", err, res.Error())
	}
	got, err = run("retention", f.store, "X", time.Minute)
	check("retention", got, err, map[int32]int64{0: 6, 1: 2, 2: 5, 3: 10}, []int32{0, 1})
	_, err = MakePlan(ctx, f.adm, f.topic, "g", Bounds{FromOffsets: got.Offsets, Complete: got.Complete})
	if !errors.Is(err, ErrRetentionGap) || !strings.Contains(err.Error(), "1: [2, 4)") {
		t.Errorf("plan over deleted records: %v, want ErrRetentionGap listing 1: [2, 4)", err)
	}

	if _, err := SinceSnapshot(ctx, f.store, f.adm, Since{Topic: itest.Name(t, "plan-missing"), SourceIndex: "X", SnapshotStart: snapStart}); err == nil ||
		!strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing topic: %v", err)
	}
}

// TestRecreatedTopicIntegration: checkpoints of a topic that was deleted
// and created again under the same name are not trusted, though their
// offsets are below the new topic's end (they used to be).
func TestRecreatedTopicIntegration(t *testing.T) {
	f := newSinceFixture(t)
	ctx := t.Context()
	env := itest.Services(t)
	snapStart := f.now.Add(-10 * time.Minute)
	if err := f.store.Write(ctx, []checkpoint.Checkpoint{{
		Group: "g1", Topic: f.topic, TopicID: f.topicID, Complete: true, Index: "X", Partition: 0, Offset: 7, Time: snapStart.Add(-time.Hour),
	}}); err != nil {
		t.Fatal(err)
	}
	got, err := SinceSnapshot(ctx, f.store, f.adm, Since{Topic: f.topic, SourceIndex: "X", SnapshotStart: snapStart, MaxFeederLag: time.Minute})
	if err != nil || got.Offsets[0] != 7 {
		t.Fatalf("before recreating: %v, %v; want partition 0 at 7", got.Offsets, err)
	}
	if r, err := f.adm.DeleteTopic(ctx, f.topic); err != nil || r.Err != nil {
		t.Fatalf("delete topic: %v %v", err, r.Err)
	}
	// Recreate it (the broker may still be deleting the old one).
	for deadline := time.Now().Add(time.Minute); ; {
		r, err := f.adm.CreateTopic(ctx, 4, 1, nil, f.topic)
		if err == nil && r.Err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recreate topic: %v %v", err, r.Err)
		}
		time.Sleep(200 * time.Millisecond) // poll interval of an awaited condition
	}
	f.produce(t, env)
	adm := kadm.NewClient(itest.Kafka(t, env)) // kadm caches metadata: a new client, as a new process
	id, err := TopicID(ctx, adm, f.topic)
	if err != nil || id == f.topicID || id == "" {
		t.Fatalf("recreated topic ID %q (was %q): %v", id, f.topicID, err)
	}
	got, err = SinceSnapshot(ctx, f.store, adm, Since{Topic: f.topic, SourceIndex: "X", SnapshotStart: snapStart, MaxFeederLag: time.Minute})
	if err != nil || got.Offsets[0] != 5 || got.Complete[0] || got.TopicID != id {
		t.Errorf("after recreating: %v (complete %v, topic ID %s), %v; want partition 0 at 5 from timestamps, the old checkpoint ignored",
			got.Offsets, got.Complete, got.TopicID, err)
	}
	t.Logf("old topic ID %s, new %s; note: %s", f.topicID, id, got.Note)
}

// TestRunCoverageIntegration: what a long-running group's checkpoints may
// claim, read from real commits and history.
func TestRunCoverageIntegration(t *testing.T) {
	f := newSinceFixture(t)
	ctx := t.Context()
	commit := func(group string, offs map[int32]int64) {
		t.Helper()
		o := kadm.Offsets{}
		for p, at := range offs {
			o.Add(kadm.Offset{Topic: f.topic, Partition: p, At: at, LeaderEpoch: -1})
		}
		if r, err := f.adm.CommitOffsets(ctx, group, o); err != nil || r.Error() != nil {
			t.Fatalf("commit: %v %v", err, r.Error())
		}
	}
	// A new group from the earliest offset: complete; from the end or a
	// time: not.
	cov, err := RunCoverage(ctx, f.adm, f.store, itest.Name(t, "plan-new"), f.topic, "X", true, nil)
	if err != nil || cov.TopicID != f.topicID || !cov.Others || !cov.Complete[0] {
		t.Errorf("earliest: %+v, %v", cov, err)
	}
	cov, err = RunCoverage(ctx, f.adm, f.store, itest.Name(t, "plan-new"), f.topic, "X", false, nil)
	if err != nil || cov.Others || cov.Complete[0] {
		t.Errorf("latest: %+v, %v", cov, err)
	}
	// A group resuming: complete where its own latest checkpoint is
	// complete or its commit is at the log start.
	g := itest.Name(t, "plan-resume")
	commit(g, map[int32]int64{0: 8, 1: 8, 2: 0})
	if err := f.store.Write(ctx, []checkpoint.Checkpoint{
		{Group: g, Topic: f.topic, TopicID: f.topicID, Complete: true, Index: "X", Partition: 0, Offset: 7, Time: time.Now()},
		{Group: g, Topic: f.topic, TopicID: f.topicID, Complete: false, Index: "X", Partition: 1, Offset: 7, Time: time.Now()},
	}); err != nil {
		t.Fatal(err)
	}
	cov, err = RunCoverage(ctx, f.adm, f.store, g, f.topic, "X", false, nil)
	if want := map[int32]bool{0: true, 1: false, 2: true, 3: false}; err != nil || !maps.Equal(cov.Complete, want) {
		t.Errorf("resume: %v, %v; want %v", cov.Complete, err, want)
	}
	// Seeded from a snapshot plan: the plan's completeness.
	seeded := Plan{TopicID: f.topicID, Partitions: []Range{{Partition: 3, Start: 10, End: 10, Complete: true}}}
	cov, err = RunCoverage(ctx, f.adm, f.store, g, f.topic, "X", false, &seeded)
	if err != nil || !cov.Complete[3] {
		t.Errorf("seeded: %v, %v", cov.Complete, err)
	}
}
