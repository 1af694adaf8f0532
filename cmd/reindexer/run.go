package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/reindexer/reindexer/checkpoint"
	"github.com/reindexer/reindexer/consumer"
	"github.com/reindexer/reindexer/indexer"
	"github.com/reindexer/reindexer/replay"
	"github.com/twmb/franz-go/pkg/kadm"
)

// RunCommand is "reindexer run": the long-running consumer-group indexer.
type RunCommand struct {
	stdout, stderr io.Writer
	getenv         func(string) string

	flags        pipelineFlags
	start        string
	gap          gapFlags
	stallTimeout time.Duration
}

// Run parses args and indexes the topic until ctx is cancelled (SIGTERM or
// SIGINT), then commits what is durable, leaves the group and returns nil.
// A signal during startup also ends it cleanly (exit 0).
func (c *RunCommand) Run(ctx context.Context, args []string) error {
	err := c.run(ctx, args)
	var ue usageError
	if err != nil && ctx.Err() != nil && !errors.As(err, &ue) && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(c.stderr, "reindexer run: stopped by signal before it started consuming (%v)\n", err)
		return nil
	}
	return err
}

func (c *RunCommand) run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	c.register(fs)
	if err := parseFlags(fs, args, c.getenv); err != nil {
		return err
	}
	if err := c.flags.validate(true); err != nil {
		return withSource(fs, err)
	}
	snapshot, err := parseStart(c.start)
	if err != nil {
		return err
	}
	e, err := c.flags.build(c.stderr)
	if err != nil {
		return err
	}
	log := e.log
	// Partitions without a commit begin at their earliest offset (the
	// consumer's default): --start latest, a time or a snapshot is applied
	// by seeding the commits of the partitions the topic has now, so
	// partitions added later are read from their beginning.
	cfg := c.flags.consumerConfig(e)

	conn, err := preflight(ctx, e, &c.flags, false)
	if err != nil {
		return err
	}
	defer conn.adm.Close()
	adm, store, cluster := conn.adm, conn.store, conn.cluster
	ensureDLQ(ctx, adm, c.flags.dlq(), e.log)
	if snapshot == "" && c.start != "earliest" {
		if err := seedStart(ctx, adm, log, c.flags.group, c.flags.topic, c.start); err != nil {
			return err
		}
	}
	var seeded *replay.Plan
	if snapshot != "" {
		if seeded, err = c.seedFromSnapshot(ctx, e, adm, store, snapshot); err != nil {
			return planError(err, "--start snapshot:...")
		}
	}
	if store != nil {
		if err := store.Ensure(ctx); err != nil {
			return fmt.Errorf("checkpoint history: %w", err)
		}
		w := checkpoint.NewWriter(store, c.flags.group, c.flags.topic, c.flags.index, c.flags.checkpointInterval, 0, log)
		// What the group's checkpoints may claim (complete from the log
		// start, for which topic ID): see replay.RunCoverage.
		cov, err := replay.RunCoverage(ctx, adm, store, c.flags.group, c.flags.topic, c.flags.index, c.start == "earliest", seeded)
		if err != nil {
			return fmt.Errorf("checkpoint history: %w", err)
		}
		w.SetCoverage(cov)
		if seeded != nil {
			w.Observe(seeded.Starts()) // the gap's starts are the group's first checkpoints
		}
		cfg.OnCommit = w.Observe
		wctx, wcancel := context.WithCancel(context.WithoutCancel(ctx))
		wdone := make(chan struct{})
		go func() { defer close(wdone); w.Run(wctx) }()
		defer func() { wcancel(); <-wdone }()
	}

	svc, err := consumer.New(cfg)
	if err != nil {
		return err
	}
	pr := &probes{stallTimeout: c.stallTimeout, reach: reachOpenSearch(e.admin), blocked: gaugeIsSet(e.m.Blocked),
		progress: runProgress(svc.Status, time.Now)}
	healthy, ready := pr.handlers(ctx)
	if err := serveMetrics(ctx, c.flags.metricsAddr, c.flags.pprof, e.reg, log, healthy, ready); err != nil {
		return err
	}
	log.Info("running", "topic", c.flags.topic, "group", c.flags.group, "index", c.flags.index,
		"opensearch", cluster.Version, "delete_mode", c.flags.deleteMode, "version_type", c.flags.versionType,
		"dlq_topic", c.flags.dlq(), "lanes", c.flags.lanes, "batch_bytes", c.flags.batchBytes, "batch_docs", c.flags.batchDocs,
		"instance_id", c.flags.instanceID, "drain_timeout", c.flags.drainTimeout)
	start := time.Now()
	if err := e.startGuard(ctx, &c.flags.gentle); err != nil {
		return err
	}
	err = svc.Run(ctx)
	s := svc.Summary()
	log.Info("stopped", "records", s.Records, "created", s.Created, "updated", s.Updated, "deleted", s.Deleted,
		"not_found", s.NotFound, "stale", s.Stale, "duplicate", s.Duplicate, "dead_lettered", s.DeadLettered,
		"duration", time.Since(start).Round(time.Millisecond))
	return err
}

func (c *RunCommand) register(fs *flag.FlagSet) {
	c.flags.register(fs)
	fs.StringVar(&c.start, "start", "earliest", "where the partitions the topic has now begin if the group never committed them: earliest, latest, an RFC3339 time, or snapshot:<repo>/<name> (the gap a restored snapshot is missing); partitions added to the topic later are read from their start")
	c.gap.register(fs, "--start snapshot:...")
	fs.DurationVar(&c.stallTimeout, "stall-timeout", 5*time.Minute, stallTimeoutUsage)
}

// seedFromSnapshot starts a group that has never committed at the gap a
// restored snapshot is missing, and returns the plan it seeded (nil when the
// group already has commits).
func (c *RunCommand) seedFromSnapshot(ctx context.Context, e *env, adm *kadm.Client, store *checkpoint.Store, snapshot string) (*replay.Plan, error) {
	if err := c.gap.validate(); err != nil {
		return nil, err
	}
	committed, err := replay.GroupCommits(ctx, adm, c.flags.group, c.flags.topic)
	if err != nil {
		return nil, err
	}
	if len(committed) > 0 {
		e.log.Info("group already has committed offsets; --start applies only to partitions never committed, resuming", "group", c.flags.group)
		return nil, nil
	}
	plan, note, err := snapshotPlan(ctx, e, adm, store, &c.flags, &c.gap, snapshot, time.Time{})
	if err != nil {
		return nil, err
	}
	e.log.Info("starting at the snapshot's gap", "snapshot", snapshot, "note", note, "records_behind", plan.Records())
	warnRestoredDeletes(e.log, c.flags.deleteMode, c.flags.index)
	res, err := replay.Seed(ctx, adm, plan)
	if err != nil {
		return nil, err
	}
	e.log.Info("group seeded", "group", c.flags.group, "offsets", res.Seeded)
	return &plan, nil
}

// Usage returns the help text.
func (c *RunCommand) Usage() string {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	(&RunCommand{}).register(fs)
	return `Usage: reindexer run [flags]

Follows a topic as a member of a consumer group and indexes every event into
OpenSearch with version-checked bulk writes, forever. Offsets are committed
only behind durable writes; SIGTERM finishes in-flight writes, commits and
leaves the group. Run more instances with the same --group to scale out (up
to one per partition).

Examples:
  # Index the chat topic into the messages index.
  reindexer run --brokers kafka:9092 --topic chat-events --group chat-indexer \
      --opensearch http://search:9200 --index messages --metrics-addr :9090

  # Feed a cluster restored from a snapshot: start at exactly what the
  # snapshot is missing, then keep following.
  reindexer run --brokers kafka:9092 --topic chat-events --group chat-indexer-new \
      --opensearch https://new-search:9200 --index messages \
      --start snapshot:nightly/snap-2026.11.25 --delete-mode tombstone

` + gentleUsage + `
Flags:
` + flagUsage(fs)
}

// snapshotIndexUsage documents --snapshot-index (run and replay).
const snapshotIndexUsage = "with a snapshot start: the index the snapshot was taken of, whose checkpoint history to use " +
	"(default: the snapshot's only index other than the checkpoint index, else --index); " +
	"needed when the snapshot was restored under another name, or holds several indices"

// parseStart checks --start and returns the snapshot it names, if any.
func parseStart(s string) (snapshot string, err error) {
	switch {
	case s == "earliest" || s == "latest":
		return "", nil
	case strings.HasPrefix(s, "snapshot:"):
		snap := strings.TrimPrefix(s, "snapshot:")
		if _, _, err := splitSnapshot(snap); err != nil {
			return "", usageError{fmt.Errorf("flag --start: %v", err)}
		}
		return snap, nil
	}
	if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
		return "", usageError{fmt.Errorf("flag --start: %q is not earliest, latest, an RFC3339 time or snapshot:<repo>/<name>", s)}
	}
	return "", nil
}

func splitSnapshot(s string) (repo, name string, err error) {
	repo, name, ok := strings.Cut(s, "/")
	if !ok || repo == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("%q is not <repo>/<snapshot>", s)
	}
	return repo, name, nil
}

// connected is what preflight checked and opened.
type connected struct {
	cluster indexer.Cluster
	adm     *kadm.Client      // close it when done
	store   *checkpoint.Store // nil with --checkpoint-index none
}

// preflight checks that OpenSearch answers and is supported, warns about
// delete-mode risks on the target index, and checks that the topic exists.
func preflight(ctx context.Context, e *env, f *pipelineFlags, bounded bool) (connected, error) {
	var conn connected
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cluster, err := indexer.ClusterInfo(pctx, e.admin)
	if err != nil {
		return conn, fmt.Errorf("cannot reach OpenSearch at %s: %w", redactURLs(f.os.urls), err)
	}
	conn.cluster = cluster
	if ok, why := cluster.Supported(); !ok {
		e.log.Warn("unsupported cluster", "reason", why)
	}
	settings, err := indexer.ReadIndexSettings(pctx, e.admin, f.index)
	if err != nil {
		return conn, err
	}
	if !settings.Exists {
		e.log.Info("index does not exist yet: the first write creates it with the cluster's default settings and dynamic mapping (create it first to control them)", "index", f.index)
	}
	mode, _ := indexer.ParseDeleteMode(f.deleteMode)
	if w := indexer.DeleteRisk(mode, settings, bounded); w != "" {
		e.log.Warn("deleted documents can come back", "index", f.index, "risk", w)
	}
	adm, err := kadm.NewOptClient(e.kafka...)
	if err != nil {
		return conn, fmt.Errorf("kafka admin client: %w", err)
	}
	if err := topicExists(ctx, adm, f.topic); err != nil {
		adm.Close()
		return conn, err
	}
	conn.adm = adm
	if f.checkpointIndex != "none" {
		conn.store = checkpoint.NewStore(e.admin, f.checkpointIndex)
	}
	return conn, nil
}

func topicExists(ctx context.Context, adm *kadm.Client, topic string) error {
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	td, err := adm.ListTopics(tctx, topic)
	if err != nil {
		return fmt.Errorf("cannot reach Kafka: %w", err)
	}
	d, ok := td[topic]
	if !ok || d.Err != nil {
		return fmt.Errorf("topic %s does not exist (or is not readable) on the brokers", topic)
	}
	return nil
}
