package replay

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Unit tests of replay planning against kfake (franz-go's in-process
// Kafka). The same behaviour is proven against real Kafka and OpenSearch
// in the integration tests here and in cmd/reindexer.

func fakeKafka(t *testing.T, topic string, partitions int32) (*kfake.Cluster, []kgo.Opt) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
}

func produce(t *testing.T, opts []kgo.Opt, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func envelope(id string, version int) []byte {
	return []byte(fmt.Sprintf(`{"op":"upsert","id":%q,"version":%d,"doc":{"n":%d}}`, id, version, version))
}

// tenPerPartition produces 10 records on each partition of topic "t", one
// second apart from base, and returns an admin client.
func tenPerPartition(t *testing.T, opts []kgo.Opt, partitions int32, base time.Time) *kadm.Client {
	t.Helper()
	var recs []*kgo.Record
	for i := 0; i < 10; i++ {
		for p := int32(0); p < partitions; p++ {
			recs = append(recs, &kgo.Record{Topic: "t", Partition: p, Value: envelope(fmt.Sprint(i), i), Timestamp: base.Add(time.Duration(i) * time.Second)})
		}
	}
	produce(t, opts, recs...)
	adm, err := kadm.NewOptClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(adm.Close)
	return adm
}

// deleteBelow deletes the records of topic "t" partition p below offset at.
func deleteBelow(t *testing.T, adm *kadm.Client, p int32, at int64) {
	t.Helper()
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: "t", Partition: p, At: at})
	res, err := adm.DeleteRecords(context.Background(), del)
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatalf("delete records: %v", err)
	}
}

func TestMakePlanAndSeed(t *testing.T) {
	_, opts := fakeKafka(t, "t", 2)
	base := time.UnixMilli(1_700_000_000_000)
	var recs []*kgo.Record
	for i := 0; i < 10; i++ {
		for p := int32(0); p < 2; p++ {
			recs = append(recs, &kgo.Record{Topic: "t", Partition: p, Value: envelope(fmt.Sprint(i), i), Timestamp: base.Add(time.Duration(i) * time.Second)})
		}
	}
	produce(t, opts, recs...)
	adm, err := kadm.NewOptClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx := context.Background()

	plan, err := MakePlan(ctx, adm, "t", "g", Bounds{From: base.Add(4 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range plan.Partitions {
		if r.Start != 4 || r.End != 10 {
			t.Fatalf("time plan %+v, want [4,10)", r)
		}
	}
	plan, err = MakePlan(ctx, adm, "t", "g", Bounds{From: base, To: base.Add(7 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Partitions[0].Start != 0 || plan.Partitions[0].End != 7 || plan.Records() != 14 {
		t.Fatalf("bounded plan %+v", plan)
	}
	plan, err = MakePlan(ctx, adm, "t", "g", Bounds{FromOffsets: map[int32]int64{1: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if p0, p1 := plan.Partitions[0], plan.Partitions[1]; p0.Start != 10 || p0.End != 10 || p1.Start != 3 || p1.End != 10 {
		t.Fatalf("offset plan %+v: unlisted partitions must be empty", plan.Partitions)
	}
	if _, err := MakePlan(ctx, adm, "t", "g", Bounds{FromOffsets: map[int32]int64{7: 0}}); err == nil {
		t.Fatal("plan accepted a partition the topic does not have")
	}

	if !plan.Partitions[1].Complete && plan.Partitions[1].Start != 3 {
		t.Fatalf("offset plan %+v", plan.Partitions)
	}
	res, err := Seed(ctx, adm, plan)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Seeded) != 2 || res.Seeded[1] != 3 || len(res.Resumed) != 0 {
		t.Fatalf("seed %+v", res)
	}
	res, err = Seed(ctx, adm, plan)
	if err != nil || len(res.Resumed) != 2 || len(res.Seeded) != 0 {
		t.Fatalf("second seed must resume: %+v %v", res, err)
	}

	// A group with an active member is refused.
	member, err := kgo.NewClient(append(opts, kgo.ConsumerGroup("busy"), kgo.ConsumeTopics("t"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		member.PollFetches(pctx)
		cancel()
		plan.Group = "busy"
		_, err = Seed(ctx, adm, plan)
		if errors.Is(err, ErrGroupActive) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("seeding an active group: %v, want ErrGroupActive", err)
		}
	}
}

// TestRetentionGap: a start below the log start is an error listing exactly
// the deleted offsets (it used to be clamped silently), unless allowed; a
// start by time whose first remaining record is the log start may have lost
// records too.
func TestRetentionGap(t *testing.T) {
	_, opts := fakeKafka(t, "t", 2)
	base := time.UnixMilli(1_700_000_000_000)
	adm := tenPerPartition(t, opts, 2, base)
	ctx := context.Background()
	deleteBelow(t, adm, 1, 6)

	_, err := MakePlan(ctx, adm, "t", "g", Bounds{FromOffsets: map[int32]int64{0: 2, 1: 3}})
	var ge *GapError
	if !errors.Is(err, ErrRetentionGap) || !errors.As(err, &ge) || len(ge.Gaps) != 1 || ge.Gaps[0] != (Gap{Partition: 1, From: 3, To: 6}) {
		t.Fatalf("offsets below the log start: %v, want a gap 1: [3, 6)", err)
	}
	if !strings.Contains(err.Error(), "1: [3, 6)") {
		t.Errorf("the error does not print the deleted offsets: %v", err)
	}
	plan, err := MakePlan(ctx, adm, "t", "g", Bounds{FromOffsets: map[int32]int64{0: 2, 1: 3}, AllowRetentionGap: true})
	if err != nil {
		t.Fatal(err)
	}
	if p1 := plan.Partitions[1]; p1.Start != 6 || p1.Complete || len(plan.Gaps) != 1 || !strings.Contains(plan.From, "RETENTION GAP allowed") {
		t.Errorf("allowed gap: %+v, gaps %v, from %q", plan.Partitions, plan.Gaps, plan.From)
	}
	// Starting exactly at the log start loses nothing.
	if _, err := MakePlan(ctx, adm, "t", "g", Bounds{FromOffsets: map[int32]int64{1: 6}}); err != nil {
		t.Errorf("start at the log start: %v", err)
	}
	// By time: partition 1's oldest remaining record (offset 6, base+6s)
	// is after the start, so the deleted ones may have been in range.
	_, err = MakePlan(ctx, adm, "t", "g", Bounds{From: base.Add(2 * time.Second)})
	if !errors.As(err, &ge) || len(ge.Gaps) != 1 || ge.Gaps[0] != (Gap{Partition: 1, From: 0, To: 6, Maybe: true}) {
		t.Fatalf("time start before the log start: %v", err)
	}
	plan, err = MakePlan(ctx, adm, "t", "g", Bounds{From: base.Add(7 * time.Second)})
	if err != nil || plan.Partitions[1].Start != 7 || plan.Partitions[1].Complete {
		t.Errorf("time start after the log start: %+v, %v", plan.Partitions, err)
	}
	plan, err = MakePlan(ctx, adm, "t", "g", Bounds{From: base})
	if err == nil {
		t.Fatalf("time start at base: no gap reported: %+v", plan.Partitions)
	}
	plan, err = MakePlan(ctx, adm, "t", "g", Bounds{From: base, AllowRetentionGap: true})
	if err != nil || !plan.Partitions[0].Complete || plan.Partitions[1].Complete {
		t.Errorf("partition 0 from offset 0 is complete, partition 1 after a gap is not: %+v, %v", plan.Partitions, err)
	}
	// A stored plan whose group stopped below what retention has since
	// deleted cannot resume without skipping: the same error.
	stored, err := MakePlan(ctx, adm, "t", "g", Bounds{FromOffsets: map[int32]int64{0: 0}})
	if err != nil {
		t.Fatal(err)
	}
	deleteBelow(t, adm, 0, 4)
	err = checkResume(ctx, adm, stored, map[int32]int64{0: 2}, false)
	if !errors.As(err, &ge) || len(ge.Gaps) != 1 || ge.Gaps[0] != (Gap{Partition: 0, From: 2, To: 4}) {
		t.Errorf("resume below the log start: %v, want a gap 0: [2, 4)", err)
	}
	if err := checkResume(ctx, adm, stored, map[int32]int64{0: 2}, true); err != nil {
		t.Errorf("resume below the log start, allowed: %v", err)
	}
}

// TestSinceSnapshotFallback: without checkpoint history a snapshot plan is
// refused unless the feeder lag is stated; with it, the start moves back
// by the lag (a feeder 10 minutes behind leaves records the snapshot lacks
// that a start at the skew margin would skip).
func TestSinceSnapshotFallback(t *testing.T) {
	_, opts := fakeKafka(t, "t", 2)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	var recs []*kgo.Record
	for i := 0; i < 30; i++ { // one a minute
		recs = append(recs, &kgo.Record{Topic: "t", Partition: 0, Value: envelope(fmt.Sprint(i), i), Timestamp: base.Add(time.Duration(i) * time.Minute)})
	}
	produce(t, opts, recs...)
	adm, err := kadm.NewOptClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx := context.Background()
	snap := base.Add(20*time.Minute + 30*time.Second)
	_, err = SinceSnapshot(ctx, nil, adm, Since{Topic: "t", SourceIndex: "x", SnapshotStart: snap, Margin: time.Minute})
	if !errors.Is(err, ErrFeederLagUnknown) || !strings.Contains(err.Error(), "partitions 0-1") {
		t.Fatalf("no history, no lag bound: %v, want ErrFeederLagUnknown naming partitions 0-1", err)
	}
	t.Logf("refusal: %v", err)
	got, err := SinceSnapshot(ctx, nil, adm, Since{Topic: "t", SourceIndex: "x", SnapshotStart: snap, Margin: time.Minute, MaxFeederLag: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// cutoff = 20m30s - 1m - 10m = 9m30s: the first record at or after it
	// is offset 10 (it was offset 20 with the margin alone).
	if want := map[int32]int64{0: 10, 1: 0}; !maps.Equal(got.Offsets, want) || len(got.Complete) != 0 {
		t.Errorf("starts %v (complete %v), want %v, none complete", got.Offsets, got.Complete, want)
	}
	for _, s := range []string{"partitions 0-1 (checkpoint history disabled) fall back", "feeder was at most 10m0s behind", "within 1m0s of the cluster's clock"} {
		if !strings.Contains(got.Note, s) {
			t.Errorf("note lacks %q: %s", s, got.Note)
		}
	}
}

// TestResolveRefusesUsedGroup: a group with commits and no stored plan (a
// group `run` used) is refused, naming it and its commits; seeding it used
// to keep its commits and replay nothing.
func TestResolveRefusesUsedGroup(t *testing.T) {
	_, opts := fakeKafka(t, "t", 2)
	adm := tenPerPartition(t, opts, 2, time.UnixMilli(1_700_000_000_000))
	ctx := context.Background()
	used := kadm.Offsets{}
	used.Add(kadm.Offset{Topic: "t", Partition: 0, At: 10, LeaderEpoch: -1})
	used.Add(kadm.Offset{Topic: "t", Partition: 1, At: 9, LeaderEpoch: -1})
	if _, err := adm.CommitOffsets(ctx, "used", used); err != nil {
		t.Fatal(err)
	}
	called := false
	newPlan := func(ctx context.Context) (Plan, error) {
		called = true
		return MakePlan(ctx, adm, "t", "used", Bounds{FromOffsets: map[int32]int64{0: 0, 1: 0}})
	}
	_, err := Resolve(ctx, adm, nil, "used", "t", "x", false, newPlan)
	if !errors.Is(err, ErrGroupUsed) || !strings.Contains(err.Error(), "group used") || !strings.Contains(err.Error(), "0:10, 1:9") || called {
		t.Fatalf("used group: %v (planned: %v)", err, called)
	}
	res, err := Resolve(ctx, adm, nil, "fresh", "t", "x", false, newPlan)
	if err != nil || res.Resumed || res.Plan.Records() != 20 {
		t.Fatalf("fresh group: %+v, %v", res, err)
	}
}

// TestTopicIDs: a recreated topic has a new ID; a plan of the old topic is
// not resumed on it.
func TestTopicIDs(t *testing.T) {
	_, opts := fakeKafka(t, "t", 1)
	adm := tenPerPartition(t, opts, 1, time.UnixMilli(1_700_000_000_000))
	ctx := context.Background()
	plan, err := MakePlan(ctx, adm, "t", "g", Bounds{FromOffsets: map[int32]int64{0: 0}})
	if err != nil {
		t.Fatal(err)
	}
	if plan.TopicID == "" {
		t.Fatal("no topic ID")
	}
	if r, err := adm.DeleteTopic(ctx, "t"); err != nil || r.Err != nil {
		t.Fatalf("delete topic: %v %v", err, r.Err)
	}
	if r, err := adm.CreateTopic(ctx, 1, 1, nil, "t"); err != nil || r.Err != nil {
		t.Fatalf("create topic: %v %v", err, r.Err)
	}
	produce(t, opts, &kgo.Record{Topic: "t", Partition: 0, Value: envelope("a", 1)})
	// A new client, as a new process would be (kadm caches metadata).
	adm, err = kadm.NewOptClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	id, err := TopicID(ctx, adm, "t")
	if err != nil || id == "" || id == plan.TopicID {
		t.Fatalf("recreated topic ID %q (was %q), %v", id, plan.TopicID, err)
	}
	err = checkResume(ctx, adm, plan, map[int32]int64{0: 3}, false)
	if !errors.Is(err, ErrTopicRecreated) {
		t.Errorf("resuming a plan of the old topic: %v, want ErrTopicRecreated", err)
	}
}
