package main

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/reindexer/reindexer/replay"
)

// gapFlags are the flags of a replay planned from a snapshot or bounded by
// Kafka retention, shared by run (--start snapshot:...) and replay.
type gapFlags struct {
	snapshotIndex     string
	skewMargin        time.Duration
	maxFeederLag      time.Duration
	allowRetentionGap bool
}

func (g *gapFlags) register(fs *flag.FlagSet, snapshotFlag string) {
	fs.StringVar(&g.snapshotIndex, "snapshot-index", "", snapshotIndexUsage)
	fs.DurationVar(&g.skewMargin, "skew-margin", replay.DefaultSkewMargin, "with "+snapshotFlag+": how far before the snapshot's start to look, for clock skew between the writers, the producers and the cluster")
	fs.DurationVar(&g.maxFeederLag, "max-feeder-lag", 0, "with "+snapshotFlag+": the most the snapshotted index's feeder can have been behind the topic when the snapshot started; "+
		"needed only for partitions without complete checkpoint history, which then start at the first record at or after (snapshot start - skew margin - this); unset, such partitions are refused")
	fs.BoolVar(&g.allowRetentionGap, "allow-retention-gap", false, "start at the log start when Kafka retention already deleted part of the range (the deleted offsets are printed and skipped); unset, that is an error")
}

// validate checks the durations.
func (g *gapFlags) validate() error {
	if g.skewMargin < 0 {
		return usageError{fmt.Errorf("flag --skew-margin: %s is negative", g.skewMargin)}
	}
	if g.maxFeederLag < 0 {
		return usageError{fmt.Errorf("flag --max-feeder-lag: %s is negative", g.maxFeederLag)}
	}
	return nil
}

// planError turns a planning refusal into a usage error (exit 2) that says
// which flag resolves it; other errors pass unchanged.
func planError(err error, snapshotFlag string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, replay.ErrFeederLagUnknown):
		return usageError{fmt.Errorf("%w; if you know the bound, state it with --max-feeder-lag (e.g. --max-feeder-lag 15m), or take a snapshot that includes the checkpoint index of a live indexer that wrote history (%s)", err, snapshotFlag)}
	case errors.Is(err, replay.ErrRetentionGap):
		return usageError{fmt.Errorf("%w; the target would miss these records for good: replay from another source, or accept the gap with --allow-retention-gap", err)}
	case errors.Is(err, replay.ErrGroupUsed):
		return usageError{fmt.Errorf("%w: choose a new --group", err)}
	case replay.IsRefusal(err):
		return usageError{err}
	}
	return err
}
