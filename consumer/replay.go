package consumer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Plan is the work of one replay: for each partition of the topic, the
// offsets [Start, End) to read. End offsets are captured once, when the plan
// is made, so a replay is bounded however fast the topic grows.
type Plan struct {
	Topic      string    `json:"topic"`
	Group      string    `json:"group"`
	Partitions []Range   `json:"partitions"`
	From       string    `json:"from"` // how the start offsets were chosen, for humans
	Created    time.Time `json:"created"`
}

// Range is one partition's part of a Plan.
type Range struct {
	Partition int32 `json:"partition"`
	Start     int64 `json:"start"`
	End       int64 `json:"end"`
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

// Bounds says where a replay starts and stops. Exactly one of From and
// FromOffsets is used for the starts.
type Bounds struct {
	// From starts each partition at its first record with a timestamp at or
	// after this time.
	From time.Time
	// FromOffsets starts the listed partitions at the given offsets;
	// partitions not listed are not replayed.
	FromOffsets map[int32]int64
	// To, if not zero, ends each partition before its first record at or
	// after this time; otherwise (and never beyond) at the last stable
	// offset when the plan is made.
	To time.Time
	// Description is stored in Plan.From.
	Description string
}

// MakePlan resolves b against the topic's current offsets. The starts are
// clamped to what the log still holds (a start below the log start offset
// has been deleted by retention: the plan starts at the log start and says
// so in Plan.From), and to the end.
func MakePlan(ctx context.Context, adm *kadm.Client, topic, group string, b Bounds) (Plan, error) {
	plan := Plan{Topic: topic, Group: group, From: b.Description, Created: time.Now().UTC()}
	// Read-committed consumers cannot pass the last stable offset, so that
	// is the end (the high watermark, unless a transaction is open).
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return plan, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	if len(ends[topic]) == 0 {
		return plan, fmt.Errorf("topic %s does not exist or has no partitions", topic)
	}
	logStarts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = logStarts.Error()
	}
	if err != nil {
		return plan, fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	var afterTo kadm.ListedOffsets
	if !b.To.IsZero() {
		if afterTo, err = adm.ListOffsetsAfterMilli(ctx, b.To.UnixMilli(), topic); err == nil {
			err = afterTo.Error()
		}
		if err != nil {
			return plan, fmt.Errorf("list offsets of %s at %s: %w", topic, b.To.Format(time.RFC3339), err)
		}
	}
	var starts kadm.ListedOffsets
	if b.FromOffsets == nil {
		if starts, err = adm.ListOffsetsAfterMilli(ctx, b.From.UnixMilli(), topic); err == nil {
			err = starts.Error()
		}
		if err != nil {
			return plan, fmt.Errorf("list offsets of %s at %s: %w", topic, b.From.Format(time.RFC3339), err)
		}
	} else {
		for p := range b.FromOffsets {
			if _, ok := ends.Lookup(topic, p); !ok {
				return plan, fmt.Errorf("topic %s has no partition %d", topic, p)
			}
		}
	}
	var clamped []string
	ends.Each(func(o kadm.ListedOffset) {
		r := Range{Partition: o.Partition, End: o.Offset}
		if at, ok := afterTo.Lookup(topic, o.Partition); ok && at.Timestamp >= 0 && at.Offset < r.End {
			r.End = at.Offset
		}
		ls, _ := logStarts.Lookup(topic, o.Partition)
		if b.FromOffsets != nil {
			s, listed := b.FromOffsets[o.Partition]
			if !listed {
				s = r.End
			}
			r.Start = s
		} else if s, ok := starts.Lookup(topic, o.Partition); ok {
			r.Start = s.Offset
		}
		if r.Start < ls.Offset {
			clamped = append(clamped, fmt.Sprintf("%d:%d->%d", o.Partition, r.Start, ls.Offset))
			r.Start = ls.Offset
		}
		r.Start = min(r.Start, r.End)
		plan.Partitions = append(plan.Partitions, r)
	})
	sort.Slice(plan.Partitions, func(i, j int) bool { return plan.Partitions[i].Partition < plan.Partitions[j].Partition })
	if len(clamped) > 0 {
		plan.From += fmt.Sprintf(" (clamped to the log start, earlier records were deleted by retention: %v)", clamped)
	}
	return plan, nil
}

// ErrGroupActive is returned by Seed when the replay group has members.
var ErrGroupActive = errors.New("replay group has active members")

// SeedResult says what Seed found and did, per partition.
type SeedResult struct {
	// Resumed maps partitions that already had a committed offset in the
	// group (a previous run of this replay) to that offset.
	Resumed map[int32]int64
	// Seeded maps partitions whose commit was set to the plan's start.
	Seeded map[int32]int64
}

// Seed prepares the replay group: partitions with no committed offset get
// their plan start committed; partitions with one (an earlier, interrupted
// run) keep it, so the replay resumes. It refuses to touch a group that has
// active members, since its commits would race theirs.
func Seed(ctx context.Context, adm *kadm.Client, plan Plan) (SeedResult, error) {
	res := SeedResult{Resumed: map[int32]int64{}, Seeded: map[int32]int64{}}
	if err := groupIdle(ctx, adm, plan.Group); err != nil {
		return res, err
	}
	fetched, err := FetchCommits(ctx, adm, plan.Group)
	if err != nil {
		return res, err
	}
	seed := kadm.Offsets{}
	for _, r := range plan.Partitions {
		if o, ok := fetched.Lookup(plan.Topic, r.Partition); ok && o.At >= 0 {
			res.Resumed[r.Partition] = o.At
			continue
		}
		seed.Add(kadm.Offset{Topic: plan.Topic, Partition: r.Partition, At: r.Start, LeaderEpoch: -1})
		res.Seeded[r.Partition] = r.Start
	}
	if len(seed) == 0 {
		return res, nil
	}
	err = retriable(ctx, func() error {
		committed, err := adm.CommitOffsets(ctx, plan.Group, seed)
		if err == nil {
			err = committed.Error()
		}
		return err
	})
	if err != nil {
		return res, fmt.Errorf("seed offsets of group %s (is the group in use?): %w", plan.Group, err)
	}
	return res, nil
}

// FetchCommits returns the committed offsets of group; a group that does
// not exist has none.
func FetchCommits(ctx context.Context, adm *kadm.Client, group string) (kadm.OffsetResponses, error) {
	var fetched kadm.OffsetResponses
	err := retriable(ctx, func() error {
		var err error
		if fetched, err = adm.FetchOffsets(ctx, group); err == nil {
			err = fetched.Error()
		}
		return err
	})
	if errors.Is(err, kerr.GroupIDNotFound) {
		return kadm.OffsetResponses{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	return fetched, nil
}

// retriable runs fn until it succeeds, fails with an error Kafka does not
// call retriable, or 15 seconds pass: a young cluster answers
// COORDINATOR_NOT_AVAILABLE and the like while it creates
// __consumer_offsets.
func retriable(ctx context.Context, fn func() error) error {
	err := fn()
	for deadline := time.Now().Add(15 * time.Second); err != nil && kerr.IsRetriable(err) && time.Now().Before(deadline) && ctx.Err() == nil; {
		time.Sleep(200 * time.Millisecond)
		err = fn()
	}
	return err
}

func groupIdle(ctx context.Context, adm *kadm.Client, group string) error {
	var g kadm.DescribedGroup
	var ok bool
	err := retriable(ctx, func() error {
		described, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return err
		}
		if g, ok = described[group]; ok && kerr.IsRetriable(g.Err) {
			return g.Err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("describe group %s: %w", group, err)
	}
	if !ok {
		return nil
	}
	if errors.Is(g.Err, kerr.GroupIDNotFound) {
		return nil // Kafka 4.x: a group that never existed
	}
	if g.Err != nil {
		return fmt.Errorf("describe group %s: %w", group, g.Err)
	}
	switch g.State {
	case "Empty", "Dead", "":
		return nil
	}
	return fmt.Errorf("%w: group %s is %s with %d member(s); stop them (or wait for their session to expire) or choose another --group",
		ErrGroupActive, group, g.State, len(g.Members))
}

// Progress is reported while a replay runs.
type Progress struct {
	Done, Total int64 // offsets behind the group's commits / in the plan
	Partitions  int   // partitions not yet at their end
	Elapsed     time.Duration
}

// ErrInterrupted is returned by Replay when its context ends before the
// plan is complete; running the same replay again resumes it.
var ErrInterrupted = errors.New("replay interrupted before reaching its end offsets; run it again with the same --group to resume")

// Replay reads plan into the index through the group plan.Group (which Seed
// must have prepared) and returns when the group's committed offsets have
// reached every end. It calls progress, if not nil, about once a second.
// cfg.Topic and cfg.Group are taken from the plan.
func Replay(ctx context.Context, cfg Config, plan Plan, progress func(Progress)) (Summary, error) {
	start := time.Now()
	cfg.Topic, cfg.Group = plan.Topic, plan.Group
	ends := map[int32]int64{}
	for _, r := range plan.Partitions {
		ends[r.Partition] = r.End
	}
	p, err := newPipeline(cfg, ends)
	if err != nil {
		return Summary{}, err
	}
	adm := kadm.NewClient(p.cl)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	complete := make(chan bool, 1)
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
			}
			pr, done, err := groupProgress(runCtx, adm, plan)
			if err != nil {
				continue // transient; the next tick retries
			}
			pr.Elapsed = time.Since(start)
			if progress != nil {
				progress(pr)
			}
			if done {
				complete <- true
				cancel()
				return
			}
		}
	}()
	err = p.run(runCtx)
	sum := p.summary()
	sum.Duration = time.Since(start)
	if err != nil {
		return sum, err
	}
	select {
	case <-complete:
		if progress != nil {
			progress(Progress{Done: plan.Records(), Total: plan.Records(), Elapsed: sum.Duration})
		}
		return sum, nil
	default:
	}
	// The context ended first; a last look at the commits decides.
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	if admin, aerr := kadm.NewOptClient(cfg.Kafka...); aerr == nil {
		_, done, err := groupProgress(cctx, admin, plan)
		admin.Close()
		if err == nil && done {
			return sum, nil
		}
	}
	return sum, ErrInterrupted
}

// groupProgress compares the group's committed offsets with the plan.
func groupProgress(ctx context.Context, adm *kadm.Client, plan Plan) (Progress, bool, error) {
	fetched, err := FetchCommits(ctx, adm, plan.Group)
	if err != nil {
		return Progress{}, false, err
	}
	pr := Progress{Total: plan.Records()}
	for _, r := range plan.Partitions {
		at := r.Start
		if o, ok := fetched.Lookup(plan.Topic, r.Partition); ok && o.At >= 0 {
			at = o.At
		}
		at = min(max(at, r.Start), r.End)
		pr.Done += at - r.Start
		if at < r.End {
			pr.Partitions++
		}
	}
	return pr, pr.Partitions == 0, nil
}
