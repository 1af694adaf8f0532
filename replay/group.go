package replay

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ErrGroupActive is returned by Seed when the replay group has members.
var ErrGroupActive = errors.New("replay group has active members")

// ErrGroupUsed is returned (wrapped, naming the group and its commits) when
// a new replay is asked to use a group that already has committed offsets
// on the topic and no stored plan of its own to resume: seeding would keep
// those commits and replay nothing.
var ErrGroupUsed = errors.New("the group already has committed offsets on the topic and no stored replay plan to resume")

// ErrTopicRecreated is returned (wrapped) when a stored plan or the
// checkpoints it relies on belong to an earlier topic of the same name.
var ErrTopicRecreated = errors.New("the topic was deleted and created again since")

// TopicID returns the Kafka topic ID of topic in the form Kafka's tools
// print (unpadded URL-safe base64), or "" when the brokers do not report
// IDs. An unknown topic is an error.
func TopicID(ctx context.Context, adm *kadm.Client, topic string) (string, error) {
	var td kadm.TopicDetails
	err := retriable(ctx, func() error {
		var err error
		td, err = adm.ListTopics(ctx, topic)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("describe topic %s: %w", topic, err)
	}
	d, ok := td[topic]
	if !ok {
		return "", fmt.Errorf("topic %s does not exist", topic)
	}
	if errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
		return "", fmt.Errorf("topic %s does not exist: %w", topic, d.Err)
	}
	if d.Err != nil {
		return "", fmt.Errorf("topic %s: %w", topic, d.Err)
	}
	if d.ID == (kadm.TopicID{}) {
		return "", nil
	}
	return base64.RawURLEncoding.EncodeToString(d.ID[:]), nil
}

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
// run of the same plan) keep it, so the replay resumes. It refuses to touch
// a group that has active members, since its commits would race theirs.
// Whether a group's commits belong to this plan is for the caller to decide
// (Resolve does).
func Seed(ctx context.Context, adm *kadm.Client, plan Plan) (SeedResult, error) {
	res := SeedResult{Resumed: map[int32]int64{}, Seeded: map[int32]int64{}}
	if err := groupIdle(ctx, adm, plan.Group); err != nil {
		return res, err
	}
	committed, err := GroupCommits(ctx, adm, plan.Group, plan.Topic)
	if err != nil {
		return res, err
	}
	seed := kadm.Offsets{}
	for _, r := range plan.Partitions {
		if at, ok := committed[r.Partition]; ok {
			res.Resumed[r.Partition] = at
			continue
		}
		seed.Add(kadm.Offset{Topic: plan.Topic, Partition: r.Partition, At: r.Start, LeaderEpoch: -1})
		res.Seeded[r.Partition] = r.Start
	}
	if len(seed) == 0 {
		return res, nil
	}
	err = retriable(ctx, func() error {
		c, err := adm.CommitOffsets(ctx, plan.Group, seed)
		if err == nil {
			err = c.Error()
		}
		return err
	})
	if err != nil {
		return res, fmt.Errorf("seed offsets of group %s (is the group in use?): %w", plan.Group, err)
	}
	return res, nil
}

// FetchCommits returns the committed offsets of group; a group that does
// not exist has none. Retriable coordinator errors (a young cluster) are
// retried for a while.
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

// GroupCommits returns the group's committed offsets on topic, by
// partition (partitions with no commit are absent).
func GroupCommits(ctx context.Context, adm *kadm.Client, group, topic string) (map[int32]int64, error) {
	fetched, err := FetchCommits(ctx, adm, group)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	fetched.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out, nil
}

// FormatOffsets renders partition → offset as "0:12, 1:40" in partition
// order.
func FormatOffsets(m map[int32]int64) string {
	parts := make([]string, 0, len(m))
	for _, p := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%d:%d", p, m[p]))
	}
	return strings.Join(parts, ", ")
}

// retriable runs fn until it succeeds, fails with an error Kafka does not
// call retriable, or 15 seconds pass: a young cluster answers
// COORDINATOR_NOT_AVAILABLE and the like while it creates
// __consumer_offsets.
func retriable(ctx context.Context, fn func() error) error {
	err := fn()
	for deadline := time.Now().Add(15 * time.Second); err != nil && kerr.IsRetriable(err) && time.Now().Before(deadline) && ctx.Err() == nil; {
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		err = fn()
	}
	return err
}

// groupIdle returns an error wrapping ErrGroupActive when group has
// members.
func groupIdle(ctx context.Context, adm *kadm.Client, group string) error {
	state, members, err := GroupState(ctx, adm, group)
	if err != nil {
		return err
	}
	switch state {
	case "Empty", "Dead", "":
		return nil
	}
	return fmt.Errorf("%w: group %s is %s with %d member(s); stop them (or wait for their session to expire) or choose another group",
		ErrGroupActive, group, state, members)
}

// GroupState returns the state and member count of group ("" and 0 when it
// does not exist).
func GroupState(ctx context.Context, adm *kadm.Client, group string) (string, int, error) {
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
		return "", 0, fmt.Errorf("describe group %s: %w", group, err)
	}
	if !ok || errors.Is(g.Err, kerr.GroupIDNotFound) { // Kafka 4.x: a group that never existed
		return "", 0, nil
	}
	if g.Err != nil {
		return "", 0, fmt.Errorf("describe group %s: %w", group, g.Err)
	}
	return g.State, len(g.Members), nil
}
