package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/reindexer/reindexer/consumer"
	"github.com/reindexer/reindexer/replay"
)

// Golden tests of what replay prints: the dry-run plan and the summary, as
// text and --json, one directory per case under testdata/replay/ (rewrite
// with go test ./cmd/reindexer -run TestReplayOutputGolden -update).

func goldenPlan() replay.Plan {
	return replay.Plan{
		Topic: "chat-events", TopicID: "dGVzdC10b3BpYy1pZC0xMg", Group: "gap-2026-11-26",
		From:    "since snapshot nightly/snap-2026.11.25 (started 2026-11-25T03:00:00Z, margin 1m0s, checkpoints of index messages): partitions 0-2 start at the last durable offset recorded before the cutoff",
		Created: time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC),
		Partitions: []replay.Range{
			{Partition: 0, Start: 1200, End: 1500, Complete: true},
			{Partition: 1, Start: 980, End: 1490, Complete: true},
			{Partition: 2, Start: 1500, End: 1500, Complete: true},
		},
	}
}

func goldenSummary() consumer.Summary {
	return consumer.Summary{
		Records: 810, Created: 120, Updated: 40, Deleted: 10, NotFound: 2, Stale: 600, Duplicate: 37, DeadLettered: 1,
		Partitions: map[int32]consumer.PartitionSummary{0: {First: 1200, Last: 1499, Records: 300}, 1: {First: 980, Last: 1489, Records: 510}},
		Duration:   2500 * time.Millisecond,
	}
}

func TestReplayOutputGolden(t *testing.T) {
	gap := goldenPlan()
	gap.Partitions[0].Start, gap.Partitions[0].Complete = 1250, false
	gap.Gaps = []replay.Gap{{Partition: 0, From: 1200, To: 1250}}
	for _, tc := range []struct {
		name      string
		plan      replay.Plan
		committed map[int32]int64
		resumed   bool
		complete  bool
	}{
		{name: "new", plan: goldenPlan(), complete: true},
		{name: "resumed", plan: goldenPlan(), committed: map[int32]int64{0: 1400, 1: 980, 2: 1500}, resumed: true, complete: true},
		{name: "interrupted", plan: goldenPlan(), committed: map[int32]int64{0: 1300}, complete: false},
		{name: "retention-gap", plan: gap, complete: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, jsonOut := range []bool{false, true} {
				suffix := "text"
				if jsonOut {
					suffix = "json"
				}
				var out bytes.Buffer
				c := &ReplayCommand{stdout: &out, jsonOut: jsonOut}
				c.flags.index = "messages"
				if err := c.printPlan(tc.plan, tc.committed, tc.resumed); err != nil {
					t.Fatal(err)
				}
				golden(t, "replay/"+tc.name+"/plan-"+suffix, out.String())
				out.Reset()
				if err := c.printSummary(goldenSummary(), tc.plan, tc.committed, tc.resumed, tc.complete); err != nil {
					t.Fatal(err)
				}
				golden(t, "replay/"+tc.name+"/summary-"+suffix, out.String())
			}
		})
	}
}

// TestGapFlags: bad values of the planning flags exit 2 naming the flag,
// before any connection is made.
func TestGapFlags(t *testing.T) {
	base := []string{"replay", "--brokers", "127.0.0.1:1", "--opensearch", "http://127.0.0.1:1", "--topic", "t", "--group", "g", "--index", "x"}
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--since-snapshot", "r/s", "--max-feeder-lag", "-1m"}, "--max-feeder-lag"},
		{[]string{"--since-snapshot", "r/s", "--skew-margin", "-5s"}, "--skew-margin"},
		{[]string{"--from", "1h", "--allow-retention-gap=maybe"}, "allow-retention-gap"},
	} {
		code, _, stderr := runMain(t, nil, append(base, tc.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tc.flag) {
			t.Errorf("%v: exit %d, want 2 naming %s; stderr: %s", tc.args, code, tc.flag, stderr)
		}
	}
}
