package replay

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/reindexer/reindexer/checkpoint"
)

// PlanCoverage is what the checkpoints of a replay of plan may claim: the
// plan's topic ID, and per partition the completeness the plan established
// (Range.Complete). Partitions outside the plan are never complete.
func PlanCoverage(plan Plan) checkpoint.Coverage {
	c := checkpoint.Coverage{TopicID: plan.TopicID, Complete: map[int32]bool{}}
	for _, r := range plan.Partitions {
		c.Complete[r.Partition] = r.Complete
	}
	return c
}

// RunCoverage is what the checkpoints of a long-running group may claim.
// For each partition of the topic:
//
//   - seeded by this process from a plan (a `--start snapshot:` gap):
//     the plan's Range.Complete;
//   - with a commit (the group resumes its own history): complete when the
//     group's latest checkpoint of the partition for this topic ID and
//     index is complete (it continues a complete lineage: every record
//     between that checkpoint and the commit was written by the group
//     too), or when the commit is at or below the log start;
//   - without a commit: complete when the group starts it at the earliest
//     offset (fromEarliest), never when it starts at the end or at a time.
//
// Partitions the topic gains later start at the group's start position:
// complete when fromEarliest. store nil means no history: nothing to claim.
// The group's offsets must not be moved by other tools (an offset reset
// makes the group's later checkpoints claim records it skipped).
func RunCoverage(ctx context.Context, adm *kadm.Client, store *checkpoint.Store, group, topic, index string, fromEarliest bool, seeded *Plan) (checkpoint.Coverage, error) {
	o, err := listTopicOffsets(ctx, adm, topic)
	if err != nil {
		return checkpoint.Coverage{}, err
	}
	cov := checkpoint.Coverage{TopicID: o.topicID, Complete: map[int32]bool{}, Others: fromEarliest}
	if store == nil {
		return cov, nil
	}
	committed, err := GroupCommits(ctx, adm, group, topic)
	if err != nil {
		return cov, err
	}
	own, err := store.Search(ctx, checkpoint.Query{Topic: topic, TopicID: o.topicID, Index: index, Group: group})
	if err != nil {
		return cov, fmt.Errorf("read the checkpoint history of group %s: %w", group, err)
	}
	seededRanges := map[int32]Range{}
	if seeded != nil {
		for _, r := range seeded.Partitions {
			seededRanges[r.Partition] = r
		}
	}
	for _, p := range sortedKeys(o.ends) {
		if r, ok := seededRanges[p]; ok && seeded.TopicID == o.topicID {
			cov.Complete[p] = r.Complete
			continue
		}
		at, has := committed[p]
		if !has {
			cov.Complete[p] = fromEarliest
			continue
		}
		cp, ok := own[p]
		cov.Complete[p] = (ok && cp.Complete) || at <= o.logStarts[p]
	}
	return cov, nil
}
