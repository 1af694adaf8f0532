package replay

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Plan is the work of one replay: for each partition of the topic, the
// offsets [Start, End) to read. End offsets are captured once, when the plan
// is made, so a replay is bounded however fast the topic grows.
type Plan struct {
	// Topic is the topic replayed.
	Topic string `json:"topic"`
	// TopicID is the Kafka topic ID when the plan was made: a topic deleted
	// and created again under the same name has another one, and a plan of
	// the old topic must not be resumed on the new one.
	TopicID string `json:"topic_id,omitempty"`
	// Group is the replay's own consumer group.
	Group string `json:"group"`
	// Partitions are the ranges, one per partition of the topic.
	Partitions []Range `json:"partitions"`
	// From says, for humans, how the start offsets were chosen.
	From string `json:"from"`
	// Created is when the plan was made.
	Created time.Time `json:"created"`
	// Gaps are the ranges Kafka retention had already deleted when the plan
	// was made, which the operator allowed the replay to skip.
	Gaps []Gap `json:"retention_gaps,omitempty"`
}

// Range is one partition's part of a Plan.
type Range struct {
	// Partition is the topic partition.
	Partition int32 `json:"partition"`
	// Start is the first offset to read.
	Start int64 `json:"start"`
	// End is the offset to stop before (captured when the plan was made).
	End int64 `json:"end"`
	// Complete reports that the target index holds every record of the
	// partition below Start (Start is at or below the log start, or comes
	// from a complete checkpoint of the index the target was restored
	// from), so once the replay has committed offset O the index holds
	// every record below O: checkpoints of this replay may say so. See
	// the package documentation.
	Complete bool `json:"complete,omitempty"`
}

// Records returns the number of offsets the plan covers (an upper bound on
// records: transaction markers and compacted gaps take offsets too).
func (p Plan) Records() int64 {
	var n int64
	for _, r := range p.Partitions {
		n += max(r.End-r.Start, 0)
	}
	return n
}

// Ends returns the plan's end offsets by partition.
func (p Plan) Ends() map[int32]int64 {
	out := make(map[int32]int64, len(p.Partitions))
	for _, r := range p.Partitions {
		out[r.Partition] = r.End
	}
	return out
}

// Bounds says where a replay starts and stops. Exactly one of From and
// FromOffsets is used for the starts.
type Bounds struct {
	// From starts each partition at its first record with a timestamp at or
	// after this time.
	From time.Time
	// FromOffsets starts the listed partitions at the given offsets;
	// partitions not listed are not replayed.
	FromOffsets map[int32]int64
	// Complete lists the partitions of FromOffsets whose start offset is
	// known to have everything below it in the target index (a start taken
	// from a complete checkpoint). Partitions starting at or below the log
	// start are complete without being listed.
	Complete map[int32]bool
	// To, if not zero, ends each partition before its first record at or
	// after this time; otherwise (and never beyond) at the last stable
	// offset when the plan is made.
	To time.Time
	// Description is stored in Plan.From.
	Description string
	// AllowRetentionGap lets MakePlan start a partition at its log start
	// when part of its range was already deleted by retention; otherwise
	// that is an error wrapping ErrRetentionGap.
	AllowRetentionGap bool
}

// ErrRetentionGap is returned (wrapped, with the gaps) when Kafka retention
// has already deleted records a replay was asked to read.
var ErrRetentionGap = errors.New("records in the replay range were already deleted by Kafka retention")

// Gap is a range of offsets of one partition that retention deleted.
type Gap struct {
	// Partition is the topic partition.
	Partition int32 `json:"partition"`
	// From and To bound the deleted offsets: [From, To).
	From int64 `json:"from"`
	To   int64 `json:"to"`
	// Maybe reports that the range was asked for by time: the deleted
	// records' timestamps are unknown, so only some of [From, To) may have
	// been in the range (the oldest remaining record is already at or
	// after the start time).
	Maybe bool `json:"maybe,omitempty"`
}

// String renders g as "partition: [from, to)".
func (g Gap) String() string {
	s := fmt.Sprintf("%d: [%d, %d)", g.Partition, g.From, g.To)
	if g.Maybe {
		s += " (some of them: the oldest remaining record is at or after the start time)"
	}
	return s
}

// GapError is the error of a plan that would skip records retention deleted.
type GapError struct {
	// Topic is the topic whose records are gone.
	Topic string
	// Gaps are the deleted ranges, by partition.
	Gaps []Gap
}

// Error lists every gap.
func (e *GapError) Error() string {
	parts := make([]string, len(e.Gaps))
	for i, g := range e.Gaps {
		parts[i] = g.String()
	}
	return fmt.Sprintf("%s: topic %s, offsets gone: %s", ErrRetentionGap, e.Topic, strings.Join(parts, "; "))
}

// Unwrap returns ErrRetentionGap.
func (e *GapError) Unwrap() error { return ErrRetentionGap }

// offsets are the listings a plan is made from.
type offsets struct {
	topic     string
	topicID   string
	ends      map[int32]int64 // last stable offsets
	logStarts map[int32]int64
}

// listTopicOffsets reads the topic's ID, log start and end offsets.
func listTopicOffsets(ctx context.Context, adm *kadm.Client, topic string) (offsets, error) {
	o := offsets{topic: topic}
	id, err := TopicID(ctx, adm, topic)
	if err != nil {
		return o, err
	}
	o.topicID = id
	// Read-committed consumers cannot pass the last stable offset, so that
	// is the end (the high watermark, unless a transaction is open).
	if o.ends, err = listed(topic, "end", func() (kadm.ListedOffsets, error) { return adm.ListCommittedOffsets(ctx, topic) }); err != nil {
		return o, err
	}
	if o.logStarts, err = listed(topic, "start", func() (kadm.ListedOffsets, error) { return adm.ListStartOffsets(ctx, topic) }); err != nil {
		return o, err
	}
	return o, nil
}

// listedAt is one partition's answer to a by-time listing.
type listedAt struct {
	offset    int64
	timestamp int64 // -1: no record at or after the time
}

// listAfter lists, per partition, the first offset whose timestamp is at or
// after t.
func listAfter(ctx context.Context, adm *kadm.Client, topic string, t time.Time) (map[int32]listedAt, error) {
	l, err := adm.ListOffsetsAfterMilli(ctx, t.UnixMilli(), topic)
	if err == nil {
		err = l.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s at %s: %w", topic, t.UTC().Format(time.RFC3339Nano), err)
	}
	out := map[int32]listedAt{}
	l.Each(func(o kadm.ListedOffset) {
		if o.Topic == topic {
			out[o.Partition] = listedAt{o.Offset, o.Timestamp}
		}
	})
	return out, nil
}

// timeGap reports the retention gap of a partition started by time t at
// at: when the first record at or after t is the log start and the log
// start is above 0, the records retention deleted may have been at or after
// t too.
func timeGap(p int32, at listedAt, logStart int64) (Gap, bool) {
	if at.timestamp >= 0 && at.offset <= logStart && logStart > 0 {
		return Gap{Partition: p, From: 0, To: logStart, Maybe: true}, true
	}
	return Gap{}, false
}

// MakePlan resolves b against the topic's current offsets. A start below
// the log start offset (records already deleted by retention) is an error
// wrapping ErrRetentionGap that lists the deleted ranges, unless
// b.AllowRetentionGap: then the partition starts at the log start and the
// plan lists the gap in Plan.Gaps and Plan.From. Starts past the end are
// clamped to the end.
func MakePlan(ctx context.Context, adm *kadm.Client, topic, group string, b Bounds) (Plan, error) {
	plan := Plan{Topic: topic, Group: group, From: b.Description, Created: time.Now().UTC()}
	o, err := listTopicOffsets(ctx, adm, topic)
	if err != nil {
		return plan, err
	}
	plan.TopicID = o.topicID
	var afterTo map[int32]listedAt
	if !b.To.IsZero() {
		if afterTo, err = listAfter(ctx, adm, topic, b.To); err != nil {
			return plan, err
		}
	}
	var starts map[int32]listedAt
	if b.FromOffsets == nil {
		if starts, err = listAfter(ctx, adm, topic, b.From); err != nil {
			return plan, err
		}
	} else {
		for p := range b.FromOffsets {
			if _, ok := o.ends[p]; !ok {
				return plan, fmt.Errorf("topic %s has no partition %d", topic, p)
			}
		}
	}
	var gaps []Gap
	for _, p := range sortedKeys(o.ends) {
		r := Range{Partition: p, End: o.ends[p]}
		if at, ok := afterTo[p]; ok && at.timestamp >= 0 && at.offset < r.End {
			r.End = at.offset
		}
		ls := o.logStarts[p]
		if b.FromOffsets != nil {
			s, listed := b.FromOffsets[p]
			if !listed {
				s = r.End
			}
			r.Start = s
			r.Complete = b.Complete[p] || (listed && s <= ls)
			if s < ls && s < r.End {
				gaps = append(gaps, Gap{Partition: p, From: s, To: min(ls, r.End)})
				r.Start, r.Complete = ls, false
			}
		} else {
			at := starts[p]
			r.Start = at.offset
			r.Complete = ls == 0 && r.Start <= ls
			if g, ok := timeGap(p, at, ls); ok && r.Start < r.End {
				gaps = append(gaps, g)
				r.Complete = false
			}
		}
		r.Start = min(r.Start, r.End)
		plan.Partitions = append(plan.Partitions, r)
	}
	if len(gaps) > 0 {
		if !b.AllowRetentionGap {
			return plan, &GapError{Topic: topic, Gaps: gaps}
		}
		plan.Gaps = gaps
		parts := make([]string, len(gaps))
		for i, g := range gaps {
			parts[i] = g.String()
		}
		plan.From += " (RETENTION GAP allowed: these offsets were already deleted and are skipped: " + strings.Join(parts, "; ") + ")"
	}
	return plan, nil
}

// listed runs one kadm listing of topic and turns it into partition →
// offset, failing on any partition error or an unknown topic.
func listed(topic, what string, list func() (kadm.ListedOffsets, error)) (map[int32]int64, error) {
	l, err := list()
	if err == nil {
		err = l.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list %s offsets of topic %s: %w", what, topic, err)
	}
	out := map[int32]int64{}
	l.Each(func(o kadm.ListedOffset) {
		if o.Topic == topic && o.Partition >= 0 {
			out[o.Partition] = o.Offset
		}
	})
	if len(out) == 0 {
		return nil, fmt.Errorf("topic %s does not exist or has no partitions", topic)
	}
	return out, nil
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[int32]V) []int32 {
	ps := make([]int32, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}

// Starts returns the plan's start offsets by partition.
func (p Plan) Starts() map[int32]int64 {
	out := make(map[int32]int64, len(p.Partitions))
	for _, r := range p.Partitions {
		out[r.Partition] = r.Start
	}
	return out
}
