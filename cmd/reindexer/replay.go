package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/reindexer/reindexer/checkpoint"
	"github.com/reindexer/reindexer/consumer"
	"github.com/reindexer/reindexer/indexer"
	"github.com/reindexer/reindexer/replay"
	"github.com/twmb/franz-go/pkg/kadm"
)

// ReplayCommand is "reindexer replay": a bounded, resumable replay.
type ReplayCommand struct {
	stdout, stderr io.Writer
	getenv         func(string) string

	flags            pipelineFlags
	gap              gapFlags
	from             string
	fromOffsets      string
	sinceSnapshot    string
	to               string
	stallTimeout     time.Duration
	dryRun           bool
	bulkLoad         bool
	bulkLoadReplicas bool
	jsonOut          bool
	progress         string
	now              func() time.Time
}

// Run parses args, plans the replay, and runs it to its end offsets.
func (c *ReplayCommand) Run(ctx context.Context, args []string) error {
	bounds, err := c.parse(args)
	if err != nil {
		return err
	}
	e, err := c.flags.build(c.stderr)
	if err != nil {
		return err
	}
	conn, err := preflight(ctx, e, &c.flags, true)
	if err != nil {
		return err
	}
	defer conn.adm.Close()
	res, err := c.plan(ctx, e, conn.adm, conn.store, bounds)
	if err != nil {
		return planError(err, "--since-snapshot")
	}
	if c.sinceSnapshot != "" {
		warnRestoredDeletes(e.log, c.flags.deleteMode, c.flags.index)
	}
	if c.dryRun {
		// Nothing below this point runs: a dry run creates no topic, index
		// or commit.
		return c.printPlan(res.Plan, res.Committed, res.Resumed)
	}
	seeded, err := c.prepare(ctx, e, conn, res)
	if err != nil {
		return err
	}
	cfg := c.flags.consumerConfig(e)
	cfg.Topic, cfg.Group = res.Plan.Topic, res.Plan.Group
	if conn.store != nil {
		stop := c.recordCheckpoints(ctx, e, conn.store, res.Plan, seeded, &cfg)
		defer stop()
	}
	return c.execute(ctx, e, conn.store, res, cfg)
}

// parse reads and checks the flags, and returns the replay's bounds.
func (c *ReplayCommand) parse(args []string) (replay.Bounds, error) {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	c.register(fs)
	if err := parseFlags(fs, args, c.getenv); err != nil {
		return replay.Bounds{}, err
	}
	if err := c.flags.validate(true); err != nil {
		return replay.Bounds{}, withSource(fs, err)
	}
	if c.bulkLoad && c.flags.checkpointIndex == "none" {
		return replay.Bounds{}, usageError{fmt.Errorf("flag --bulk-load needs the checkpoint index (it keeps the original settings until they are restored); do not combine it with --checkpoint-index none")}
	}
	if c.now == nil {
		c.now = time.Now
	}
	bounds, err := c.bounds()
	if err != nil {
		return bounds, err
	}
	switch c.progress {
	case "auto", "bar", "log", "none":
	default:
		return bounds, usageError{fmt.Errorf("flag --progress: %q is not auto, bar, log or none", c.progress)}
	}
	return bounds, nil
}

// prepare stores the plan, then seeds the replay group (or keeps the
// commits of the earlier run it resumes), and returns the offsets it
// seeded. The plan is stored first: once the group has commits, a restart
// must find the plan (and its end offsets); a crash between the two leaves
// a plan and no commits, which a restart simply replaces.
func (c *ReplayCommand) prepare(ctx context.Context, e *env, conn connected, res replay.Resolved) (map[int32]int64, error) {
	plan, store, log := res.Plan, conn.store, e.log
	ensureDLQ(ctx, conn.adm, c.flags.dlq(), log)
	if store != nil {
		if err := store.Ensure(ctx); err != nil {
			return nil, fmt.Errorf("checkpoint history: %w", err)
		}
		if err := replay.SavePlan(ctx, store, c.flags.index, plan); err != nil {
			return nil, fmt.Errorf("save replay plan: %w", err)
		}
	}
	if res.Seeded() {
		// The earlier run of this plan seeded every partition, so there is
		// nothing to commit and nothing to race. Its process may still be a
		// member of the group (after SIGKILL, until its session times out):
		// the replay's consumer gets the partitions when it is gone.
		log.Info("resuming: partitions keep the offsets committed by the earlier run", "group", plan.Group, "offsets", res.Committed)
		if state, members, _ := replay.GroupState(ctx, conn.adm, plan.Group); members > 0 {
			log.Warn("the replay group still has members (an earlier run killed without a clean shutdown stays a member until its session times out); "+
				"the replay gets its partitions when they leave", "group", plan.Group, "state", state, "members", members)
		}
		return nil, nil
	}
	seed, err := replay.Seed(ctx, conn.adm, plan)
	if err != nil {
		// Nothing ran: drop the plan just stored, or a later run with this
		// group would take it (and another job's commits) for an
		// interrupted run of this replay.
		if store != nil {
			if derr := store.DeletePlan(context.WithoutCancel(ctx), plan.Group, plan.Topic, c.flags.index); derr != nil {
				log.Warn("could not remove the replay plan", "err", derr)
			}
		}
		if errors.Is(err, replay.ErrGroupActive) {
			return nil, exitError{exitFailure, fmt.Errorf("%w (or choose another --group)", err)}
		}
		return nil, err
	}
	if len(seed.Resumed) > 0 {
		log.Info("resuming: partitions keep the offsets committed by the earlier run", "group", plan.Group, "offsets", seed.Resumed)
	}
	return seed.Seeded, nil
}

// recordCheckpoints writes the replay group's commits to the checkpoint
// history (the seeded starts first) until the returned function is called.
func (c *ReplayCommand) recordCheckpoints(ctx context.Context, e *env, store *checkpoint.Store, plan replay.Plan, seeded map[int32]int64, cfg *consumer.Config) (stop func()) {
	w := checkpoint.NewWriter(store, plan.Group, plan.Topic, c.flags.index, c.flags.checkpointInterval, 0, e.log)
	w.SetCoverage(replay.PlanCoverage(plan))
	w.Observe(seeded) // the seeded starts are the replay's first checkpoints
	cfg.OnCommit = w.Observe
	wctx, wcancel := context.WithCancel(context.WithoutCancel(ctx))
	wdone := make(chan struct{})
	go func() { defer close(wdone); w.Run(wctx) }()
	return func() { wcancel(); <-wdone }
}

// execute serves the probes, applies --bulk-load and the guard, runs the
// replay to its end offsets and prints the summary.
func (c *ReplayCommand) execute(ctx context.Context, e *env, store *checkpoint.Store, res replay.Resolved, cfg consumer.Config) error {
	plan, log := res.Plan, e.log
	tracker := newProgressTracker(time.Now)
	pr := &probes{stallTimeout: c.stallTimeout, reach: reachOpenSearch(e.admin), blocked: gaugeIsSet(e.m.Blocked), progress: tracker.progress}
	healthy, ready := pr.handlers(ctx)
	if err := serveMetrics(ctx, c.flags.metricsAddr, c.flags.pprof, e.reg, log, healthy, ready); err != nil {
		return err
	}
	log.Info("replaying", "topic", plan.Topic, "group", plan.Group, "index", c.flags.index, "from", plan.From,
		"offsets", plan.Records(), "partitions", len(plan.Partitions))
	rep := newReporter(c.stderr, c.progress, log)
	if c.flags.gentle.targetLatency > 0 || len(e.guard) > 0 {
		rep.throttle = e.ix.Throttle
	}
	if len(e.guard) > 0 {
		rep.guardRate = e.ix.GuardRate
	}
	restore, err := bulkLoad(ctx, e.admin, store, log, plan.Group, plan.Topic, c.flags.index, c.bulkLoad, c.bulkLoadReplicas)
	if err != nil {
		return err
	}
	defer restore()
	if err := e.startGuard(ctx, &c.flags.gentle); err != nil {
		return err
	}
	sum, err := consumer.Replay(ctx, cfg, spans(plan), func(p consumer.Progress) { tracker.observe(p); rep.update(p) })
	rep.finish()
	if err != nil {
		c.printSummary(sum, plan, res.Committed, res.Resumed, false)
		if errors.Is(err, consumer.ErrInterrupted) {
			if store == nil {
				return fmt.Errorf("%w; without a checkpoint index the plan is not stored, so it cannot resume: run it again with a new --group", err)
			}
			return fmt.Errorf("%w; run it again with the same --group to resume", err)
		}
		return err
	}
	return c.printSummary(sum, plan, res.Committed, res.Resumed, true)
}

// spans returns the plan's ranges as the consumer's bounded-run spans.
func spans(plan replay.Plan) []consumer.Span {
	out := make([]consumer.Span, len(plan.Partitions))
	for i, r := range plan.Partitions {
		out[i] = consumer.Span{Partition: r.Partition, Start: r.Start, End: r.End}
	}
	return out
}

func (c *ReplayCommand) register(fs *flag.FlagSet) {
	c.flags.register(fs)
	fs.StringVar(&c.from, "from", "", "replay from this time: RFC3339 (2026-11-25T03:00:00Z) or a duration before now (90m, 36h, 7d)")
	fs.StringVar(&c.fromOffsets, "from-offsets", "", "replay from these offsets: partition:offset,... (partitions not listed are not replayed)")
	fs.StringVar(&c.sinceSnapshot, "since-snapshot", "", "replay what the snapshot <repo>/<name> is missing (restored into --index)")
	fs.StringVar(&c.to, "to", "now", "stop before the first record at or after this RFC3339 time; now = the end offsets when the replay starts")
	c.gap.register(fs, "--since-snapshot")
	fs.DurationVar(&c.stallTimeout, "stall-timeout", 5*time.Minute, stallTimeoutUsage)
	fs.BoolVar(&c.bulkLoad, "bulk-load", false, bulkLoadUsage)
	fs.BoolVar(&c.bulkLoadReplicas, "bulk-load-replicas", false, "with --bulk-load: also set number_of_replicas to 0 for the replay (restored at the end; the replicas are rebuilt then)")
	fs.BoolVar(&c.dryRun, "dry-run", false, "print the plan (start and end offset per partition, records, target) and write nothing")
	fs.BoolVar(&c.jsonOut, "json", false, "print the plan or summary as JSON")
	fs.StringVar(&c.progress, "progress", "auto", "progress display: auto (bar on a terminal, else log lines), bar, log or none")
}

// bounds interprets --from, --from-offsets and --to.
func (c *ReplayCommand) bounds() (replay.Bounds, error) {
	n := 0
	for _, v := range []string{c.from, c.fromOffsets, c.sinceSnapshot} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return replay.Bounds{}, usageError{errors.New("exactly one of --from, --from-offsets and --since-snapshot is required")}
	}
	if err := c.gap.validate(); err != nil {
		return replay.Bounds{}, err
	}
	b := replay.Bounds{AllowRetentionGap: c.gap.allowRetentionGap}
	if c.to != "now" && c.to != "" {
		t, err := time.Parse(time.RFC3339Nano, c.to)
		if err != nil {
			return b, usageError{fmt.Errorf("flag --to: %q is not now or an RFC3339 time", c.to)}
		}
		b.To = t
	}
	switch {
	case c.from != "":
		if d, err := parseDuration(c.from); err == nil {
			if d <= 0 {
				return b, usageError{fmt.Errorf("flag --from: duration %s must be positive", c.from)}
			}
			b.From = c.now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339Nano, c.from); err == nil {
			b.From = t
		} else {
			return b, usageError{fmt.Errorf("flag --from: %q is not an RFC3339 time or a duration", c.from)}
		}
		b.Description = "first records at or after " + b.From.UTC().Format(time.RFC3339Nano)
	case c.fromOffsets != "":
		offs, err := parseOffsets(c.fromOffsets)
		if err != nil {
			return b, usageError{fmt.Errorf("flag --from-offsets: %v", err)}
		}
		b.FromOffsets = offs
		b.Description = "offsets " + c.fromOffsets
	default:
		if _, _, err := splitSnapshot(c.sinceSnapshot); err != nil {
			return b, usageError{fmt.Errorf("flag --since-snapshot: %v", err)}
		}
	}
	return b, nil
}

func parseOffsets(s string) (map[int32]int64, error) {
	out := map[int32]int64{}
	for _, pair := range strings.Split(s, ",") {
		ps, os, ok := strings.Cut(strings.TrimSpace(pair), ":")
		if !ok {
			return nil, fmt.Errorf("%q is not partition:offset", pair)
		}
		p, err := strconv.ParseInt(ps, 10, 32)
		if err != nil || p < 0 {
			return nil, fmt.Errorf("%q: partition must be a non-negative integer", pair)
		}
		o, err := strconv.ParseInt(os, 10, 64)
		if err != nil || o < 0 {
			return nil, fmt.Errorf("%q: offset must be a non-negative integer", pair)
		}
		if _, dup := out[int32(p)]; dup {
			return nil, fmt.Errorf("partition %d listed twice", p)
		}
		out[int32(p)] = o
	}
	return out, nil
}

// plan resolves the replay: the stored plan of an interrupted run of this
// replay, or a new plan (refusing a group used by something else).
func (c *ReplayCommand) plan(ctx context.Context, e *env, adm *kadm.Client, store *checkpoint.Store, b replay.Bounds) (replay.Resolved, error) {
	res, err := replay.Resolve(ctx, adm, store, c.flags.group, c.flags.topic, c.flags.index, c.gap.allowRetentionGap,
		func(ctx context.Context) (replay.Plan, error) {
			if c.sinceSnapshot == "" {
				return replay.MakePlan(ctx, adm, c.flags.topic, c.flags.group, b)
			}
			plan, note, err := snapshotPlan(ctx, e, adm, store, &c.flags, &c.gap, c.sinceSnapshot, b.To)
			if err == nil {
				e.log.Info("snapshot gap planned", "snapshot", c.sinceSnapshot, "note", note)
			}
			return plan, err
		})
	if err == nil && res.Resumed {
		e.log.Info("found the plan of an earlier run of this replay group: resuming it with its end offsets (use a new --group for a new replay)",
			"group", res.Plan.Group, "from", res.Plan.From, "planned", res.Plan.Created)
	}
	return res, err
}

// snapshotPlan plans the replay of what a snapshot is missing (run and
// replay).
func snapshotPlan(ctx context.Context, e *env, adm *kadm.Client, store *checkpoint.Store, f *pipelineFlags, g *gapFlags, snap string, to time.Time) (replay.Plan, string, error) {
	repo, name, err := splitSnapshot(snap)
	if err != nil {
		return replay.Plan{}, "", usageError{err}
	}
	mode, _ := indexer.ParseDeleteMode(f.deleteMode)
	return replay.PlanSnapshot(ctx, adm, e.admin, store, replay.SnapshotGap{
		Topic: f.topic, Group: f.group, Index: f.index, Repo: repo, Name: name, SourceIndex: g.snapshotIndex,
		Margin: g.skewMargin, MaxFeederLag: g.maxFeederLag, DeleteMode: mode, To: to, AllowRetentionGap: g.allowRetentionGap,
	})
}

// warnRestoredDeletes warns, for a replay or run that fills the gap of a
// restored snapshot in delete mode, what the restore cannot bring back. A
// snapshot holds no delete tombstones (OpenSearch keeps them only in memory,
// for index.gc_deletes); snapshotPlan therefore starts index.gc_deletes
// earlier, replaying the deletes the live index still remembered. What is
// left is delete mode's own limit: an older upsert arriving more than
// index.gc_deletes after the delete it should lose to (on the live index as
// well), or a replay taking longer than index.gc_deletes between the two.
func warnRestoredDeletes(log *slog.Logger, deleteMode, index string) {
	if mode, _ := indexer.ParseDeleteMode(deleteMode); mode == indexer.Tombstone {
		return
	}
	log.Warn("deleted documents can come back after a snapshot restore", "index", index,
		"risk", "a restored index holds no delete tombstones (snapshots do not keep them); the replay starts index.gc_deletes earlier to "+
			"re-apply the deletes the live index still remembered, but an older upsert (a duplicate or late event) that reaches the index more "+
			"than index.gc_deletes after its delete brings the document back, here as on the live index; use --delete-mode tombstone for exact convergence")
}

// Usage returns the help text.
func (c *ReplayCommand) Usage() string {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	(&ReplayCommand{}).register(fs)
	return `Usage: reindexer replay [flags] (--from T | --from-offsets P:O,... | --since-snapshot REPO/NAME)

Replays a bounded range of a topic into an index and exits 0 when every
partition has reached the end offsets captured when the replay started.
Safe to repeat: versions make already-applied records no-ops (409s, counted
as stale or duplicate). It uses its own consumer group (--group), so a killed
replay started again with the same flags resumes where it stopped, with the
same end offsets.

Examples:
  # What did the restored snapshot miss? Print the plan, write nothing.
  reindexer replay --brokers kafka:9092 --topic chat-events --group replay-new-cluster \
      --opensearch https://new-search:9200 --index messages \
      --since-snapshot nightly/snap-2026.11.25 --dry-run

  # Replay the last 90 minutes, summary as JSON.
  reindexer replay --brokers kafka:9092 --topic chat-events --group replay-90m \
      --opensearch http://search:9200 --index messages --from 90m --json

  # Replay partitions 0 and 3 from given offsets up to a point in time.
  reindexer replay ... --from-offsets 0:1500,3:1720 --to 2026-11-25T06:00:00Z

` + gentleUsage + `
Flags:
` + flagUsage(fs)
}
