// Package checkpoint keeps the checkpoint history in the target OpenSearch
// cluster, stores replay plans so an interrupted replay resumes with the
// same end offsets, and reads snapshots' start times.
//
// # Checkpoint history
//
// While `reindexer run` or `replay` writes a topic into index X, a Writer
// records, every few seconds, one small document per partition whose
// committed offset moved: {group, topic, topic_id, index, partition, offset,
// complete, time}. The offset is the group's committed offset, the next
// record to read, so every record from where the group began up to it had
// been written durably into X (acknowledged by OpenSearch: created,
// updated, stale or dead-lettered) before the commit, and the commit came
// before the document's time (the time is taken when the document is
// written, after the commit was observed, and rounded up to the
// millisecond).
//
// Only when the group's coverage of the partition is complete from the log
// start (complete: true; package replay decides, see its documentation) does
// the document state the fact a snapshot plan needs: "at `time`, X held the
// effect of every record of this topic partition below `offset`". That fact
// does not depend on which group wrote it, so Store.Before, asked for the
// history of topic+index before t, takes for each partition the greatest
// offset among the complete checkpoints of the current topic ID with time <
// t, whatever the group. A group that started mid-stream writes incomplete
// checkpoints, which Before ignores; so are checkpoints of an earlier topic
// of the same name (another topic ID) and checkpoints written by versions
// that recorded neither field.
//
// Document ids are derived from group, topic, topic ID, index, partition and
// offset: a new offset is a new document and never replaces an older
// checkpoint, and the same offset written again only moves its time later,
// which keeps the fact true. Checkpoints older than the retention (7 days by
// default) are pruned.
//
// The reasoning assumes X is one lineage: if X was deleted and recreated, or
// restored from an older snapshot, after a checkpoint was written, that
// checkpoint no longer describes X. Prune the history (or use another
// checkpoint index) when an index is rebuilt.
//
// # Since a snapshot
//
// Package replay plans `--since-snapshot` from this history and
// SnapshotInfo (the snapshot's start time and state).
//
// # Replay plans
//
// A replay captures its end offsets once; Store.SavePlan and Store.LoadPlan
// keep that plan (a document of kind "plan" in the same index, keyed by
// group, topic and index, its body the planner's JSON, stored untouched) so
// a killed replay resumes with the same ends.
package checkpoint
