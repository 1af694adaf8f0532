package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/reindexer/reindexer/checkpoint"
)

// SavePlan stores plan as the replay plan of its group and topic into
// index in store, so an interrupted replay resumes with the same ends.
func SavePlan(ctx context.Context, store *checkpoint.Store, index string, plan Plan) error {
	body, err := json.Marshal(plan)
	if err != nil {
		return fmt.Errorf("save replay plan: encode: %w", err)
	}
	return store.SavePlan(ctx, checkpoint.Plan{Group: plan.Group, Topic: plan.Topic, Index: index, Created: plan.Created, Body: body})
}

// LoadPlan returns the replay plan stored for group, topic and index; ok is
// false when there is none.
func LoadPlan(ctx context.Context, store *checkpoint.Store, group, topic, index string) (Plan, bool, error) {
	stored, ok, err := store.LoadPlan(ctx, group, topic, index)
	if err != nil || !ok {
		return Plan{}, false, err
	}
	var plan Plan
	if err := json.Unmarshal(stored.Body, &plan); err != nil {
		return Plan{}, false, fmt.Errorf("load replay plan of group %s, topic %s, index %s: decode: %w", group, topic, index, err)
	}
	if plan.Group != group || plan.Topic != topic {
		return Plan{}, false, fmt.Errorf("load replay plan of group %s, topic %s, index %s: the stored plan names group %s, topic %s", group, topic, index, plan.Group, plan.Topic)
	}
	return plan, true, nil
}

// Resolved is a replay ready to seed and run.
type Resolved struct {
	// Plan is the plan to run.
	Plan Plan
	// Resumed reports that Plan is the stored plan of an interrupted (or
	// completed) run of this replay, which the group's commits continue.
	Resumed bool
	// Committed are the group's committed offsets on the topic when the
	// replay was resolved.
	Committed map[int32]int64
}

// Resolve decides what a replay with group into index runs:
//
//   - the group has commits on the topic and store holds a plan of this
//     group, topic and index: that plan, resumed (an error wrapping
//     ErrTopicRecreated if the topic ID changed since, or wrapping
//     ErrRetentionGap if retention deleted records the plan has yet to
//     read, unless allowGap);
//   - the group has commits and no stored plan (a group `run` used, another
//     job's, or any group when store is nil): an error wrapping ErrGroupUsed
//     that names the group and its commits. Seeding such a group would keep
//     its commits and replay nothing;
//   - otherwise a new plan from newPlan.
func Resolve(ctx context.Context, adm *kadm.Client, store *checkpoint.Store, group, topic, index string, allowGap bool,
	newPlan func(context.Context) (Plan, error)) (Resolved, error) {
	committed, err := GroupCommits(ctx, adm, group, topic)
	if err != nil {
		return Resolved{}, err
	}
	if len(committed) > 0 {
		if store == nil {
			return Resolved{}, fmt.Errorf("%w: group %s has committed offsets on topic %s (%s), and without a checkpoint index no replay plan is stored, so no replay can resume in it; a new replay needs a group of its own",
				ErrGroupUsed, group, topic, FormatOffsets(committed))
		}
		stored, ok, err := LoadPlan(ctx, store, group, topic, index)
		if err != nil {
			return Resolved{}, err
		}
		if !ok {
			return Resolved{}, fmt.Errorf("%w: group %s has committed offsets on topic %s (%s) and checkpoint index %s holds no replay plan of it into index %s (it was used by `run`, by another job, or by a replay of another index); a new replay needs a group of its own",
				ErrGroupUsed, group, topic, FormatOffsets(committed), store.Index(), index)
		}
		if err := checkResume(ctx, adm, stored, committed, allowGap); err != nil {
			return Resolved{}, err
		}
		return Resolved{Plan: stored, Resumed: true, Committed: committed}, nil
	}
	plan, err := newPlan(ctx)
	if err != nil {
		return Resolved{Plan: plan, Committed: committed}, err
	}
	return Resolved{Plan: plan, Committed: committed}, nil
}

// Seeded reports whether the group's commits cover every partition of the
// plan: a resumed plan whose earlier run seeded it all needs no seeding
// (nothing to commit, nothing to race with a member that has not left yet).
func (r Resolved) Seeded() bool {
	if !r.Resumed {
		return false
	}
	for _, p := range r.Plan.Partitions {
		if _, ok := r.Committed[p.Partition]; !ok {
			return false
		}
	}
	return true
}

// checkResume checks that a stored plan can still be resumed: same topic
// ID, and no record it has yet to read deleted by retention (unless
// allowGap).
func checkResume(ctx context.Context, adm *kadm.Client, plan Plan, committed map[int32]int64, allowGap bool) error {
	o, err := listTopicOffsets(ctx, adm, plan.Topic)
	if err != nil {
		return err
	}
	if plan.TopicID != o.topicID {
		return fmt.Errorf("resume the replay plan of group %s made %s: topic %s: %w (topic ID %s then, %s now); start a new replay with a new group",
			plan.Group, plan.Created.Format("2006-01-02T15:04:05Z07:00"), plan.Topic, ErrTopicRecreated, plan.TopicID, o.topicID)
	}
	var gaps []Gap
	for _, r := range plan.Partitions {
		at, ok := committed[r.Partition]
		if !ok {
			at = r.Start
		}
		if ls := o.logStarts[r.Partition]; at < ls && at < r.End {
			gaps = append(gaps, Gap{Partition: r.Partition, From: at, To: min(ls, r.End)})
		}
	}
	if len(gaps) > 0 && !allowGap {
		return &GapError{Topic: plan.Topic, Gaps: gaps}
	}
	return nil
}

// IsRefusal reports whether err is one of the planning refusals an operator
// resolves by changing the command line: a group already used, a feeder lag
// that must be stated, records deleted by retention, a recreated topic.
func IsRefusal(err error) bool {
	return errors.Is(err, ErrGroupUsed) || errors.Is(err, ErrFeederLagUnknown) || errors.Is(err, ErrRetentionGap) || errors.Is(err, ErrTopicRecreated)
}
