// Package checkpoint keeps the checkpoint history of DESIGN §4 in the target
// OpenSearch cluster, stores replay plans so an interrupted replay resumes
// with the same end offsets, and plans `--since-snapshot` replays from a
// snapshot's start time.
//
// # Checkpoint history
//
// While `reindexer run` or `replay` writes a topic into index X, a Writer
// records, every few seconds, one small document per partition whose
// committed offset moved: {group, topic, index, partition, offset, time}.
// The offset is the group's committed offset, the next record to read, so
// every record below it had been written durably into X (acknowledged by
// OpenSearch: created, updated, stale or dead-lettered) before the commit,
// and the commit came before the document's time (the time is taken when the
// document is written, after the commit was observed, and rounded up to the
// millisecond). Each document therefore states a fact: "at `time`, X held
// the effect of every record of this topic partition below `offset`".
//
// That fact does not depend on which consumer group wrote it: any group
// that wrote X with durable offset O at time T means X held everything below
// O at T. So Store.Before, asked for the history of topic+index before t,
// takes for each partition the greatest offset among the checkpoints with
// time < t, whatever the group. Overwrites (a document id covers one minute
// per group, topic, index and partition, so a later write in the same minute
// replaces an earlier one) only ever drop true facts, never create false
// ones: the answer can get more conservative (an earlier offset, replaying a
// little more, which is harmless since replays are idempotent), never
// unsafe.
//
// The reasoning assumes X is one lineage: if X was deleted and recreated, or
// restored from an older snapshot, after a checkpoint was written, that
// checkpoint no longer describes X. Prune the history (or use another
// checkpoint index) when an index is rebuilt.
//
// # Since a snapshot
//
// OpenSearch captures each primary shard of a snapshot on its own, when that
// shard's task starts, never before the snapshot's start time S (see
// research/opensearch-facts.md §5). Everything acknowledged before S is in
// every shard's capture. The checkpoint times come from the worker's clock,
// S from the cluster's, so SinceSnapshot trusts only checkpoints written
// before S − margin (default one minute) and starts each partition at the
// greatest such offset: every record the snapshot might lack is at or after
// it. Partitions with no usable history fall back to the first offset whose
// record timestamp is at or after S − margin, which is only safe if the
// producers' timestamps are close to wall-clock time.
//
// # Replay plans
//
// A replay captures its end offsets once; Store.SavePlan and Store.LoadPlan
// keep that plan (a document of kind "plan" in the same index, keyed by
// group, topic and index) so a killed replay resumes with the same ends.
package checkpoint
