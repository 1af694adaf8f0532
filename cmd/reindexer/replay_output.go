// What replay prints: the plan of --dry-run and the summary, as tables or
// --json.

package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/reindexer/reindexer/consumer"
	"github.com/reindexer/reindexer/replay"
)

// planRow is one partition of a printed plan.
type planRow struct {
	Partition int32 `json:"partition"`
	Start     int64 `json:"start"`
	End       int64 `json:"end"`
	Records   int64 `json:"records"`
}

// planRows renders the plan's partitions; for a resumed plan the starts are
// the group's committed offsets (what is left to do).
func planRows(plan replay.Plan, committed map[int32]int64, resumed bool) ([]planRow, int64) {
	rows := make([]planRow, 0, len(plan.Partitions))
	var total int64
	for _, r := range plan.Partitions {
		start := r.Start
		if resumed {
			if at, ok := committed[r.Partition]; ok {
				start = min(max(at, r.Start), r.End)
			}
		}
		rows = append(rows, planRow{r.Partition, start, r.End, max(r.End-start, 0)})
		total += max(r.End-start, 0)
	}
	return rows, total
}

func (c *ReplayCommand) printPlan(plan replay.Plan, committed map[int32]int64, resumed bool) error {
	rows, total := planRows(plan, committed, resumed)
	if c.jsonOut {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		out := map[string]any{
			"topic": plan.Topic, "topic_id": plan.TopicID, "group": plan.Group, "index": c.flags.index, "from": plan.From,
			"resumed": resumed, "partitions": rows, "records": total,
		}
		if len(plan.Gaps) > 0 {
			out["retention_gaps"] = plan.Gaps
		}
		return enc.Encode(out)
	}
	fmt.Fprintf(c.stdout, "Replay plan (dry run, nothing written)\n")
	fmt.Fprintf(c.stdout, "  topic %s -> index %s, group %s\n", plan.Topic, c.flags.index, plan.Group)
	fmt.Fprintf(c.stdout, "  from: %s\n", plan.From)
	if resumed {
		fmt.Fprintf(c.stdout, "  resuming an interrupted run (planned %s)\n", plan.Created.Format(time.RFC3339))
	}
	for _, g := range plan.Gaps {
		fmt.Fprintf(c.stdout, "  RETENTION GAP (allowed): offsets already deleted, never replayed: %s\n", g)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tSTART\tEND\tRECORDS\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t\n", r.Partition, r.Start, r.End, r.Records)
	}
	fmt.Fprintf(tw, "TOTAL\t\t\t%d\t\n", total)
	return tw.Flush()
}

// summaryJSON is the --json form of a replay summary.
type summaryJSON struct {
	consumer.Summary
	Complete   bool     `json:"complete"`
	DurationMS int64    `json:"duration_ms"`
	RatePerSec float64  `json:"records_per_second"`
	Planned    int64    `json:"planned_offsets"`
	Plan       planJSON `json:"plan"`
}

// planJSON is the plan a replay ran, in its --json summary: the ranges as
// planned (Partitions), and, when the run resumed an interrupted one, what
// was left to do when it started (Remaining, from the group's commits).
type planJSON struct {
	Topic      string    `json:"topic"`
	TopicID    string    `json:"topic_id,omitempty"`
	Group      string    `json:"group"`
	Index      string    `json:"index"`
	From       string    `json:"from"`
	Created    time.Time `json:"created"`
	Resumed    bool      `json:"resumed"`
	Partitions []planRow `json:"partitions"`
	Remaining  []planRow `json:"remaining,omitempty"`
	// Gaps are the offsets retention had deleted, skipped with
	// --allow-retention-gap.
	Gaps []replay.Gap `json:"retention_gaps,omitempty"`
}

func (c *ReplayCommand) printSummary(s consumer.Summary, plan replay.Plan, committed map[int32]int64, resumed, complete bool) error {
	rate := 0.0
	if s.Duration > 0 {
		rate = float64(s.Records) / s.Duration.Seconds()
	}
	if c.jsonOut {
		pj := planJSON{Topic: plan.Topic, TopicID: plan.TopicID, Group: plan.Group, Index: c.flags.index, From: plan.From, Created: plan.Created, Resumed: resumed, Gaps: plan.Gaps}
		pj.Partitions, _ = planRows(plan, nil, false)
		if resumed {
			pj.Remaining, _ = planRows(plan, committed, true)
		}
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(summaryJSON{Summary: s, Complete: complete, DurationMS: s.Duration.Milliseconds(), RatePerSec: rate, Planned: plan.Records(), Plan: pj})
	}
	state := "complete"
	if !complete {
		state = "INCOMPLETE"
	}
	fmt.Fprintf(c.stdout, "Replay %s: %d records in %s (%.0f records/s)\n", state, s.Records, s.Duration.Round(time.Millisecond), rate)
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RESULT\tCOUNT\t")
	for _, r := range []struct {
		k string
		v int64
	}{{"created", s.Created}, {"updated", s.Updated}, {"deleted", s.Deleted}, {"not_found", s.NotFound},
		{"stale", s.Stale}, {"duplicate", s.Duplicate}, {"dead_lettered", s.DeadLettered}} {
		fmt.Fprintf(tw, "%s\t%d\t\n", r.k, r.v)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(s.Partitions) > 0 {
		ids := make([]int, 0, len(s.Partitions))
		for p := range s.Partitions {
			ids = append(ids, int(p))
		}
		sort.Ints(ids)
		tw = tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PARTITION\tFIRST\tLAST\tRECORDS\t")
		for _, p := range ids {
			ps := s.Partitions[int32(p)]
			fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t\n", p, ps.First, ps.Last, ps.Records)
		}
		return tw.Flush()
	}
	return nil
}
