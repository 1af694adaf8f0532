package replay

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/reindexer/reindexer/checkpoint"
	"github.com/reindexer/reindexer/indexer"
)

// DefaultSkewMargin is how far before a snapshot's start the planning looks
// by default, for clock skew between the writers and the cluster.
const DefaultSkewMargin = time.Minute

// ErrFeederLagUnknown is returned (wrapped, naming the partitions) when
// partitions have no usable checkpoint history and the caller has not
// stated how far the snapshotted index's feeder may have lagged: a start
// taken from record timestamps is unsafe without that bound.
var ErrFeederLagUnknown = errors.New("no complete checkpoint history before the snapshot, and no bound on the old index's feeder lag")

// SnapshotGap asks for the plan of what a restored snapshot is missing.
type SnapshotGap struct {
	// Topic and Group are the replay's topic and consumer group.
	Topic, Group string
	// Index is the target index, restored from the snapshot.
	Index string
	// Repo and Name name the snapshot.
	Repo, Name string
	// SourceIndex is the index the snapshot was taken of, whose checkpoint
	// history the plan uses. Empty: the snapshot's only index that is not
	// the checkpoint index (or hidden), else Index.
	SourceIndex string
	// Margin is the clock-skew margin; 0 means DefaultSkewMargin.
	Margin time.Duration
	// MaxFeederLag is the operator's bound on how far the snapshotted
	// index's feeder was behind the topic when the snapshot started. Zero
	// means unknown: partitions without usable history are refused.
	MaxFeederLag time.Duration
	// DeleteMode is the replay's delete mode: in delete mode the start moves
	// back index.gc_deletes further (see Lookback).
	DeleteMode indexer.DeleteMode
	// To, if not zero, ends the plan at this time (see Bounds.To).
	To time.Time
	// AllowRetentionGap accepts starts below the log start (see
	// Bounds.AllowRetentionGap).
	AllowRetentionGap bool
}

// PlanSnapshot plans the replay of what the snapshot g names is missing:
// it reads the snapshot (it must be complete and hold the source index),
// picks the source index, computes the delete-mode look-back, finds the
// per-partition starts (SinceSnapshot) and makes the plan. note says, for a
// human, how each partition's start was chosen.
func PlanSnapshot(ctx context.Context, adm *kadm.Client, os *opensearchapi.Client, store *checkpoint.Store, g SnapshotGap) (Plan, string, error) {
	info, err := checkpoint.SnapshotInfo(ctx, os, g.Repo, g.Name)
	if err != nil {
		return Plan{}, "", err
	}
	// An explicit source index must be in the snapshot: its checkpoint
	// history is what the plan trusts.
	if err := info.Usable(g.SourceIndex); err != nil {
		return Plan{}, "", err
	}
	source := g.SourceIndex
	if source == "" {
		var data []string
		for _, ix := range info.Indices {
			if !strings.HasPrefix(ix, ".") && (store == nil || ix != store.Index()) {
				data = append(data, ix)
			}
		}
		source = g.Index
		if len(data) == 1 {
			source = data[0]
		}
	}
	lookback, err := Lookback(ctx, os, g.Index, g.DeleteMode)
	if err != nil {
		return Plan{}, "", err
	}
	margin := g.Margin
	if margin == 0 {
		margin = DefaultSkewMargin
	}
	starts, err := SinceSnapshot(ctx, store, adm, Since{
		Topic: g.Topic, SourceIndex: source, SnapshotStart: info.Start,
		Margin: margin, Lookback: lookback, MaxFeederLag: g.MaxFeederLag,
	})
	if err != nil {
		return Plan{}, "", err
	}
	desc := fmt.Sprintf("since snapshot %s/%s (started %s, margin %s, checkpoints of index %s): %s",
		g.Repo, g.Name, info.Start.UTC().Format(time.RFC3339Nano), margin, source, starts.Note)
	if lookback > 0 {
		desc = fmt.Sprintf("since snapshot %s/%s (started %s, margin %s + index.gc_deletes %s to replay the deletes the restore forgot, checkpoints of index %s): %s",
			g.Repo, g.Name, info.Start.UTC().Format(time.RFC3339Nano), margin, lookback, source, starts.Note)
	}
	plan, err := MakePlan(ctx, adm, g.Topic, g.Group, Bounds{
		FromOffsets: starts.Offsets, Complete: starts.Complete, To: g.To, Description: desc, AllowRetentionGap: g.AllowRetentionGap,
	})
	if err != nil {
		return plan, starts.Note, err
	}
	if starts.TopicID != plan.TopicID {
		return plan, starts.Note, fmt.Errorf("topic %s: %w while the plan was made (topic ID %s, then %s)", g.Topic, ErrTopicRecreated, starts.TopicID, plan.TopicID)
	}
	if len(starts.Gaps) > 0 {
		if !g.AllowRetentionGap {
			return plan, starts.Note, &GapError{Topic: g.Topic, Gaps: starts.Gaps}
		}
		plan.Gaps = append(plan.Gaps, starts.Gaps...)
		slices.SortFunc(plan.Gaps, func(a, b Gap) int { return int(a.Partition - b.Partition) })
	}
	return plan, starts.Note, nil
}

// Lookback is how much earlier than the snapshot's cutoff a gap replay in
// delete mode starts: index.gc_deletes of the target (DefaultGCDeletes when
// the index does not exist yet), and 0 in tombstone mode. A restored index
// has lost the delete tombstones the live index still held when the
// snapshot was taken (they live only in memory, for index.gc_deletes).
// Starting that much earlier replays those deletes, so the restored index
// remembers them again and a late or duplicate older upsert in the gap gets
// its 409, as it did live.
func Lookback(ctx context.Context, os *opensearchapi.Client, index string, mode indexer.DeleteMode) (time.Duration, error) {
	if mode != indexer.Delete {
		return 0, nil
	}
	s, err := indexer.ReadIndexSettings(ctx, os, index)
	if err != nil {
		return 0, fmt.Errorf("read index.gc_deletes of %s: %w", index, err)
	}
	if !s.Exists {
		return indexer.DefaultGCDeletes, nil
	}
	return s.GCDeletes, nil
}

// Since asks SinceSnapshot for the starts of a snapshot's gap.
type Since struct {
	// Topic is the topic; SourceIndex the index whose history to use.
	Topic, SourceIndex string
	// SnapshotStart is the snapshot's start time (cluster clock).
	SnapshotStart time.Time
	// Margin is the clock-skew margin (0: DefaultSkewMargin).
	Margin time.Duration
	// Lookback moves every start that much earlier (delete mode).
	Lookback time.Duration
	// MaxFeederLag bounds the snapshotted index's feeder lag; 0 = unknown.
	MaxFeederLag time.Duration
}

// Starts are the per-partition starts of a snapshot's gap.
type Starts struct {
	// TopicID is the topic ID the history was matched against.
	TopicID string
	// Offsets maps every partition to its start.
	Offsets map[int32]int64
	// Complete lists the partitions whose start came from a complete
	// checkpoint (the snapshot holds every record below it).
	Complete map[int32]bool
	// Gaps lists records retention already deleted that the snapshot may
	// lack.
	Gaps []Gap
	// Note says, for a human, which partitions used which rule.
	Note string
}

// SinceSnapshot finds, per partition of s.Topic, the offset from which a
// replay restores everything a snapshot of s.SourceIndex that started at
// s.SnapshotStart may lack.
//
// With cutoff = SnapshotStart − Margin − Lookback, a partition with complete
// checkpoints of the current topic ID for SourceIndex before the cutoff
// starts at the greatest such offset (Store.Before): everything below it
// was durable in the source index before any shard was captured.
//
// Partitions without one can only start from record timestamps, which is
// safe only when (1) the source index's feeder was at most MaxFeederLag
// behind at the snapshot's start, so every record appended before
// SnapshotStart − MaxFeederLag was in the index, and (2) record timestamps
// (producer or broker clocks) are within Margin of the cluster's clock.
// Such partitions start at the first record with a timestamp at or after
// cutoff − MaxFeederLag (the end when there is none); with MaxFeederLag 0
// (unknown) they are an error wrapping ErrFeederLagUnknown. store may be nil
// (no checkpoint history).
func SinceSnapshot(ctx context.Context, store *checkpoint.Store, adm *kadm.Client, s Since) (Starts, error) {
	out := Starts{Offsets: map[int32]int64{}, Complete: map[int32]bool{}}
	switch {
	case s.SnapshotStart.IsZero():
		return out, errors.New("since snapshot: zero snapshot start time")
	case s.Margin < 0 || s.Lookback < 0 || s.MaxFeederLag < 0:
		return out, fmt.Errorf("since snapshot: negative margin %s, look-back %s or feeder lag %s", s.Margin, s.Lookback, s.MaxFeederLag)
	case s.Margin == 0:
		s.Margin = DefaultSkewMargin
	}
	cutoff := s.SnapshotStart.Add(-s.Margin - s.Lookback)
	o, err := listTopicOffsets(ctx, adm, s.Topic)
	if err != nil {
		return out, fmt.Errorf("since snapshot: %w", err)
	}
	out.TopicID = o.topicID
	var history map[int32]checkpoint.Checkpoint
	if store != nil {
		if history, err = store.Before(ctx, s.Topic, o.topicID, s.SourceIndex, cutoff); err != nil {
			return out, fmt.Errorf("since snapshot: %w", err)
		}
	}

	var fromHistory, fallback, contradicted []int32
	for _, p := range sortedKeys(o.ends) {
		cp, ok := history[p]
		if ok && cp.Offset > o.ends[p] {
			contradicted = append(contradicted, p)
			ok = false
		}
		if !ok {
			fallback = append(fallback, p)
			continue
		}
		out.Offsets[p] = cp.Offset
		out.Complete[p] = true
		fromHistory = append(fromHistory, p)
	}
	why := "no complete checkpoint history of this topic before the cutoff"
	if store == nil {
		why = "checkpoint history disabled"
	}
	fallbackCutoff := cutoff.Add(-s.MaxFeederLag)
	if len(fallback) > 0 {
		if s.MaxFeederLag == 0 {
			return out, fmt.Errorf("%w: partitions %s of topic %s (%s, cutoff %s for index %s). "+
				"Their start would come from record timestamps, which is only safe if the old index's feeder was at most a known time behind the topic "+
				"when the snapshot started and record timestamps are within the clock-skew margin (%s) of the cluster's clock",
				ErrFeederLagUnknown, partitionList(fallback), s.Topic, why, cutoff.UTC().Format(checkpoint.TimeLayout), s.SourceIndex, s.Margin)
		}
		after, err := listAfter(ctx, adm, s.Topic, fallbackCutoff)
		if err != nil {
			return out, fmt.Errorf("since snapshot: %w", err)
		}
		for _, p := range fallback {
			at, ok := after[p]
			if !ok || at.offset < 0 {
				at = listedAt{o.ends[p], -1} // no record at or after the cutoff
			}
			out.Offsets[p] = at.offset
			if g, ok := timeGap(p, at, o.logStarts[p]); ok {
				out.Gaps = append(out.Gaps, g)
			}
		}
	}
	var unknown []int32
	for p := range history {
		if _, ok := o.ends[p]; !ok {
			unknown = append(unknown, p)
		}
	}
	slices.Sort(unknown)

	out.Note = sinceNote(s, store, history, cutoff, fallbackCutoff, why, fromHistory, fallback, contradicted, unknown)
	return out, nil
}

// sinceNote says, for a human, how SinceSnapshot chose each partition's
// start.
func sinceNote(s Since, store *checkpoint.Store, history map[int32]checkpoint.Checkpoint, cutoff, fallbackCutoff time.Time, why string,
	fromHistory, fallback, contradicted, unknown []int32) string {
	var oldest, newest time.Time
	groups := map[string]bool{}
	for _, p := range fromHistory {
		cp := history[p]
		groups[cp.Group] = true
		if oldest.IsZero() || cp.Time.Before(oldest) {
			oldest = cp.Time
		}
		newest = later(newest, cp.Time)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "snapshot started %s; cutoff %s (start - %s clock-skew margin", s.SnapshotStart.UTC().Format(checkpoint.TimeLayout),
		cutoff.UTC().Format(checkpoint.TimeLayout), s.Margin)
	if s.Lookback > 0 {
		fmt.Fprintf(&b, " - %s look-back", s.Lookback)
	}
	b.WriteString(")")
	if len(fromHistory) > 0 {
		fmt.Fprintf(&b, "; partitions %s start at the last durable offset recorded before the cutoff in checkpoint history %s for index %s (complete checkpoints from %s to %s, groups %s)",
			partitionList(fromHistory), store.Index(), s.SourceIndex, oldest.Format(checkpoint.TimeLayout), newest.Format(checkpoint.TimeLayout),
			strings.Join(slices.Sorted(maps.Keys(groups)), ","))
	}
	if len(fallback) > 0 {
		fmt.Fprintf(&b, "; partitions %s (%s) fall back to the first record with a timestamp at or after %s (the cutoff less the stated feeder lag %s), "+
			"assuming the old index's feeder was at most %s behind when the snapshot started and record timestamps are within %s of the cluster's clock",
			partitionList(fallback), why, fallbackCutoff.UTC().Format(checkpoint.TimeLayout), s.MaxFeederLag, s.MaxFeederLag, s.Margin)
	}
	if len(contradicted) > 0 {
		fmt.Fprintf(&b, "; WARNING: checkpoints of partitions %s are past the partition's end offset; they were ignored", partitionList(contradicted))
	}
	if len(unknown) > 0 {
		fmt.Fprintf(&b, "; checkpoints name partitions %s the topic does not have; ignored", partitionList(unknown))
	}
	return b.String()
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// partitionList renders sorted partitions compactly: "0-3,5,7-8".
func partitionList(ps []int32) string {
	var b strings.Builder
	for i := 0; i < len(ps); {
		j := i
		for j+1 < len(ps) && ps[j+1] == ps[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(ps[i])))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(int(ps[j])))
		}
		i = j + 1
	}
	return b.String()
}
