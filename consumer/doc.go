// Package consumer reads document events from Kafka and drives them into
// OpenSearch through an indexer.Indexer, committing offsets only behind
// durable writes.
//
// Two entry points share one pipeline: Run is the long-running consumer-group
// service, Replay a bounded one-off that stops at end offsets captured when it
// started.
//
// # Guarantees (docs/design.md §3)
//
//   - At least once, never ahead: the offset committed for a partition is the
//     offset just past the last record of that partition whose write is
//     durable (created, updated, deleted, not_found, stale, duplicate, or
//     produced to the dead-letter topic and acknowledged). A record still in
//     flight, being retried, or failing to reach the dead-letter topic holds
//     its partition's commit back.
//   - Rebalances never lose or rewind work: polling and rebalance callbacks
//     exclude each other (kgo.BlockRebalanceOnPoll); when partitions are
//     revoked their pending records are flushed, in-flight bulks are awaited
//     (for at most Config.RevokeTimeout, then abandoned), their durable
//     offsets are committed, and only then does the rebalance proceed. Lost
//     partitions (session expired) are dropped without a commit: the new owner
//     re-reads whatever was not committed, and external versions make the
//     re-read harmless.
//   - Shutdown (context cancelled, e.g. SIGTERM): stop fetching, finish the
//     in-flight batches (for at most Config.ShutdownTimeout), commit what is
//     durable, leave the group.
//
// # Concurrency design, and why
//
// Records are decoded on the poll goroutine and appended straight into the
// bulk body of one of Config.Lanes lanes. Each assigned partition belongs to
// exactly one lane (the least loaded at assignment), and each lane sends its
// batches one at a time, in order, retrying failed items before it sends the
// next batch. So:
//
//   - Every partition has one ordered writer, which is what docs/design.md §2 needs
//     for delete-mode convergence (a retried older upsert can never land after
//     a newer delete of the same document, since both are in one partition and
//     one lane). A design with several bulks of one partition in flight would
//     reorder them under retries and could resurrect deleted documents once
//     the retry outlasts index.gc_deletes.
//   - Commits need no contiguity tracking: batches of a lane complete in
//     order, so a partition's durable offset is just the end of its part of
//     the last completed batch.
//   - Several bulks are in flight (one per lane), and a lane's next batch is
//     filled while its current one is being written, so the build, the
//     network and OpenSearch overlap. With fewer lanes than partitions a lane
//     serves several partitions; with more, the extra lanes stay idle. A batch is sent when it reaches
//     Config.BatchBytes or Config.BatchDocs, or when its lane is idle and the
//     batch is Config.Linger old: large bulks under load, low latency when
//     the topic is quiet.
//
// Measured (make bench, 2-core node shared with Kafka and OpenSearch, see the
// README): every lane count from 1 to 8 reaches 0.8-0.98 of the node's own
// direct bulk-load ceiling; one lane is the classic serial batcher and is
// enough on one small node, several lanes keep several bulks in flight for
// clusters with more shards and nodes. Several bulks of one partition in
// flight (the other way to get concurrency) would lose the ordered-writer
// property above.
//
// Memory is bounded by bytes, not records: a lane holds at most its open
// batch, one sealed batch and one in flight, each about Config.BatchBytes
// (the open one may overshoot by one poll, Config.MaxPollRecords). When a
// lane is full its partitions are paused (kgo PauseFetchPartitions) until
// its sender catches up, so franz-go stops fetching for them while the other
// lanes go on; the poll goroutine itself never waits, and so never delays a
// rebalance. Beyond the lanes, franz-go buffers at most about
// Config.FetchMaxBytes per broker.
package consumer
