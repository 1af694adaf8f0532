package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/reindexer/reindexer/replay"
	"github.com/twmb/franz-go/pkg/kadm"
)

// seedStart applies --start latest or --start <time> by committing, for
// every partition of the topic the group has never committed, where it
// begins: its end now, or its first record at or after the time. The
// consumer itself then starts uncommitted partitions at their earliest
// offset, so a partition added to the topic later — which has no commit
// either — is read from its beginning instead of from "latest", and nothing
// produced into it before the worker notices it is skipped.
//
// A group with active members is left alone (its members own the
// partitions and their starts); the partitions of a group seeded here that
// no member has read yet are then read from their start too.
func seedStart(ctx context.Context, adm *kadm.Client, log *slog.Logger, group, topic, start string) error {
	var at time.Time
	if start != "latest" {
		t, err := time.Parse(time.RFC3339Nano, start)
		if err != nil {
			return usageError{fmt.Errorf("flag --start: %q is not earliest, latest, an RFC3339 time or snapshot:<repo>/<name>", start)}
		}
		at = t
	}
	var listed kadm.ListedOffsets
	var err error
	if at.IsZero() {
		listed, err = adm.ListCommittedOffsets(ctx, topic) // the last stable offsets: the worker reads committed
	} else {
		listed, err = adm.ListOffsetsAfterMilli(ctx, at.UnixMilli(), topic)
	}
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return fmt.Errorf("--start %s: list offsets of %s: %w", start, topic, err)
	}
	plan := replay.Plan{Topic: topic, Group: group}
	listed.Each(func(o kadm.ListedOffset) {
		plan.Partitions = append(plan.Partitions, replay.Range{Partition: o.Partition, Start: o.Offset, End: o.Offset})
	})
	res, err := replay.Seed(ctx, adm, plan)
	switch {
	case errors.Is(err, replay.ErrGroupActive):
		log.Info("the group has active members: --start applies to the partitions they have not committed", "group", group)
		return nil
	case err != nil:
		return fmt.Errorf("--start %s: %w", start, err)
	}
	if len(res.Seeded) > 0 {
		log.Info("partitions the group never committed begin at --start; partitions added to the topic later begin at their start",
			"group", group, "start", start, "offsets", res.Seeded)
	}
	return nil
}
