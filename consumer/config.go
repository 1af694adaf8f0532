package consumer

import (
	"errors"
	"log/slog"
	"time"

	"github.com/reindexer/reindexer/event"
	"github.com/reindexer/reindexer/indexer"
	"github.com/reindexer/reindexer/internal/metrics"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Defaults of Config fields left zero.
const (
	DefaultLanes           = 4
	DefaultBatchBytes      = 2 << 20
	DefaultBatchDocs       = 5000
	DefaultLinger          = 5 * time.Millisecond
	DefaultCommitInterval  = time.Second
	DefaultRevokeTimeout   = 30 * time.Second
	DefaultShutdownTimeout = 30 * time.Second
	DefaultSessionTimeout  = 45 * time.Second
	DefaultFetchMaxBytes   = 8 << 20
	DefaultMaxPollRecords  = 10000
	DefaultMetadataMaxAge  = 30 * time.Second
)

// Config configures Run and Replay. Topic, Group, Kafka (with at least
// kgo.SeedBrokers) and Indexer are required; every other field has a default.
type Config struct {
	// Topic is the topic to read.
	Topic string
	// Group is the consumer group. Run and Replay commit their progress
	// there; a Replay must use a group of its own.
	Group string
	// Kafka are the connection options shared by every Kafka client the
	// pipeline creates: kgo.SeedBrokers, TLS (kgo.DialTLSConfig), SASL
	// (kgo.SASL), client id. Consumer and group options are added here.
	Kafka []kgo.Opt
	// ConsumerKafka are extra options for the consuming client only, such
	// as kgo.WithHooks with franz-go's kprom metrics.
	ConsumerKafka []kgo.Opt
	// Decoder says where id, version, op and document are in a record.
	Decoder event.Config
	// Indexer writes the batches.
	Indexer *indexer.Indexer

	// DLQTopic receives records that can never be indexed, with headers
	// naming the error. Empty means there is no dead-letter topic: the
	// first such record stops the pipeline with an error, uncommitted.
	DLQTopic string

	// Start is where partitions the group has never committed begin.
	// Default: the earliest offset. Ignored by Replay, which seeds commits.
	Start kgo.Offset
	// StartSet reports that Start was set (kgo.Offset has no usable zero).
	StartSet bool

	// Lanes is the number of bulk requests in flight; each partition is
	// written by one lane. Default DefaultLanes.
	Lanes int
	// BatchBytes and BatchDocs close a bulk request when either is reached.
	// Defaults 2 MiB and 5000. A lane holds up to three batches (one being
	// filled, one ready, one in flight), so lanes × 3 × BatchBytes is the
	// bulk memory.
	BatchBytes, BatchDocs int
	// Linger is how long a lane whose sender is idle waits for more records
	// before it sends a partial batch. Default 5ms.
	Linger time.Duration
	// CommitInterval is how often durable offsets are committed. Default 1s.
	CommitInterval time.Duration
	// RevokeTimeout bounds the wait for in-flight writes of revoked
	// partitions; after it they are abandoned (not committed). Default 30s;
	// keep it below the group's rebalance timeout (60s).
	RevokeTimeout time.Duration
	// ShutdownTimeout bounds the wait for in-flight writes when the context
	// is cancelled. Default 30s.
	ShutdownTimeout time.Duration
	// SessionTimeout is the group session timeout. Default
	// DefaultSessionTimeout, 45s (franz-go's);
	// a dead member's partitions move after this long.
	SessionTimeout time.Duration
	// InstanceID, if set, makes this client a static member of the group
	// (KIP-345): a process that restarts with the same InstanceID takes its
	// partitions back at once instead of waiting for the session timeout.
	// Two live processes must never share one. A static member does not
	// leave the group when it closes, so a member that stops for good holds
	// its partitions until SessionTimeout passes.
	InstanceID string
	// FetchMaxBytes bounds one fetch response, and with it the memory franz-go
	// buffers ahead of the lanes. Default 8 MiB.
	FetchMaxBytes int32
	// MaxPollRecords bounds the records taken per poll. Default 10000.
	MaxPollRecords int
	// MetadataMaxAge is how often the topic's metadata is refreshed; it
	// bounds how long partitions added to the topic go unnoticed (they then
	// begin where Start says, earliest by default). Default 30s; franz-go's
	// own is 5m.
	MetadataMaxAge time.Duration

	// DLQMaxRatio stops the pipeline (nothing of the offending batch
	// committed) when more than this share of the last DLQWindow records
	// had to be dead-lettered: that many is a configuration problem (wrong
	// index, mapping, or --*-from flags), not bad records. It judges once
	// it has seen DLQWindow/10 records. Default DefaultDLQMaxRatio (0.5);
	// 1 or more disables the breaker.
	DLQMaxRatio float64
	// DLQWindow is the number of most recent records DLQMaxRatio looks at.
	// Default DefaultDLQWindow (1000).
	DLQWindow int

	// OnCommit, if set, is called after every successful commit with the
	// committed offsets of the partitions it covered (checkpoint history
	// uses it). It runs on the committing goroutine; keep it quick.
	OnCommit func(committed map[int32]int64)

	// Logger receives structured logs. Default slog.Default().
	Logger *slog.Logger
	// Metrics is updated with consumer metrics. Default: unregistered.
	Metrics *metrics.Metrics
}

func (c *Config) setDefaults() error {
	if c.Topic == "" {
		return errors.New("consumer: topic is empty")
	}
	if c.Group == "" {
		return errors.New("consumer: group is empty")
	}
	if c.Indexer == nil {
		return errors.New("consumer: no indexer")
	}
	if c.Lanes <= 0 {
		c.Lanes = DefaultLanes
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = DefaultBatchBytes
	}
	if c.BatchDocs <= 0 {
		c.BatchDocs = DefaultBatchDocs
	}
	if c.Linger <= 0 {
		c.Linger = DefaultLinger
	}
	if c.CommitInterval <= 0 {
		c.CommitInterval = DefaultCommitInterval
	}
	if c.RevokeTimeout <= 0 {
		c.RevokeTimeout = DefaultRevokeTimeout
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.FetchMaxBytes <= 0 {
		c.FetchMaxBytes = DefaultFetchMaxBytes
	}
	if c.DLQMaxRatio <= 0 {
		c.DLQMaxRatio = DefaultDLQMaxRatio
	}
	if c.DLQWindow <= 0 {
		c.DLQWindow = DefaultDLQWindow
	}
	if c.MaxPollRecords <= 0 {
		c.MaxPollRecords = DefaultMaxPollRecords
	}
	if c.MetadataMaxAge <= 0 {
		c.MetadataMaxAge = DefaultMetadataMaxAge
	}
	if !c.StartSet {
		c.Start = kgo.NewOffset().AtStart()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = metrics.New(nil)
	}
	return nil
}
