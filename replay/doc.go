// Package replay plans bounded replays of a topic into an index: where each
// partition starts and ends, how the replay's consumer group is prepared
// and resumed, what a restored snapshot is missing, and what the checkpoints
// of a group may claim. It does no consuming: consumer.Replay runs a plan's
// ranges, and package checkpoint stores plans and checkpoint history.
//
// # Plans
//
// MakePlan captures the end offsets (the last stable offsets) once, so a
// replay is bounded however fast the topic grows, and resolves the starts
// from a time, from offsets, or (PlanSnapshot) from a snapshot. A start
// below the log start means Kafka retention already deleted records the
// replay was asked for: that is an error listing the deleted ranges
// (partition: [from, to)) unless the caller allows the gap, in which case
// the plan starts at the log start and lists the gap. A plan records the
// topic's ID, so a plan of a deleted and recreated topic is never resumed.
//
// # Groups
//
// A replay runs in a consumer group of its own: Seed commits each
// partition's start. Resolve refuses a group that already has commits on
// the topic unless the checkpoint index holds this replay's plan (the same
// group, topic and index): the commits then belong to an interrupted run,
// which resumes with the stored ends. Without a checkpoint index no plan is
// stored, so a replay can never resume: a group with commits is refused
// and an interrupted replay is started again in a new group (replays are
// idempotent, so this costs time, never correctness).
//
// # Complete checkpoints
//
// A checkpoint states that at its time the index held the records of a
// partition up to its offset. That is true of the whole prefix below the
// offset only if the writing group's coverage is complete from the log
// start. A group's coverage of a partition is complete when:
//
//   - the group began the partition at or below the log start (`run
//     --start earliest`, or a replay from a time or offsets at or below the
//     log start with nothing deleted by retention in its range);
//   - or it began at a start derived from a complete checkpoint of the
//     index its target was restored from (a `--since-snapshot` or `--start
//     snapshot:` gap start taken from checkpoint history): the restored
//     snapshot holds everything below that start;
//   - or it resumes its own complete history (its latest checkpoint of the
//     partition is complete), or resumes at or below the log start.
//
// A group that began mid-stream (`run --start latest` or a time, `replay
// --from 10m` into a live index, a start taken from record timestamps, or a
// start past a retention gap) vouches only for what it wrote: its
// checkpoints are written with Complete false, and since-snapshot planning
// (checkpoint.Store.Before) uses only complete checkpoints of the current
// topic ID.
//
// # Since a snapshot
//
// OpenSearch captures each primary shard of a snapshot on its own, never
// before the snapshot's start time S, so everything acknowledged before S is
// in every shard's capture. Checkpoint times come from the writers' clocks,
// S from the cluster's, so only checkpoints written before S − margin are
// trusted, and in delete mode the start moves back index.gc_deletes further
// (a snapshot holds no delete tombstones; see Lookback). A partition without
// such a checkpoint can only start from record timestamps, which is safe
// only if the snapshotted index's feeder was at most a known time behind at
// S and record timestamps are within the margin of the cluster's clock:
// the caller must state that bound (Since.MaxFeederLag), else the plan is
// refused.
package replay
