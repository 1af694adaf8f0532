// Package metrics defines the reindexer's Prometheus metrics. Every name has
// the reindexer_ prefix. A Metrics value is created per process (or per test)
// and handed to the packages that update it; there is no global registry.
package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Write results, the values of the "result" label of reindexer_writes_total.
const (
	Created      = "created"
	Updated      = "updated"
	Deleted      = "deleted"
	NotFound     = "not_found"
	Stale        = "stale"
	Duplicate    = "duplicate"
	DeadLettered = "dead_lettered"
	Failed       = "failed"
)

// Metrics holds the collectors. Create it with New.
type Metrics struct {
	RecordsConsumed   *prometheus.CounterVec // topic
	Writes            *prometheus.CounterVec // result
	BulkRequests      *prometheus.CounterVec // code (HTTP status or "error")
	BulkLatency       prometheus.Histogram   // seconds per bulk round trip
	BulkBytes         prometheus.Counter     // request bytes sent
	BulkDocs          prometheus.Histogram   // items per bulk request
	Retries           *prometheus.CounterVec // reason
	DeadLettered      *prometheus.CounterVec // reason
	Blocked           prometheus.Gauge       // 1 while writes are refused by a cluster block
	InFlightBulks     prometheus.Gauge       // bulk requests being written
	BufferedBytes     prometheus.Gauge       // bytes of events held between poll and durable write
	ConsumerLag       *prometheus.GaugeVec   // topic, partition: high watermark minus durable offset
	CommittedOffset   *prometheus.GaugeVec   // topic, partition
	Commits           *prometheus.CounterVec // outcome: ok, error
	ReplayRemaining   *prometheus.GaugeVec   // topic, partition: records left before the replay's end offset
	Rebalances        *prometheus.CounterVec // kind: assigned, revoked, lost
	LaneIdle          prometheus.Counter     // seconds lane senders waited for a batch
	LaneSaturated     prometheus.Counter     // times a full lane paused its partitions
	ThrottleLimit     prometheus.Gauge       // adaptive bulk concurrency limit
	ThrottleDecreases *prometheus.CounterVec // reason: 429, 503, rejected, latency, search_latency, ...
	ThrottleWait      prometheus.Counter     // seconds bulks waited for the rate limit or a concurrency slot
	GuardLatency      prometheus.Histogram   // seconds per guard search
	GuardTarget       prometheus.Gauge       // search latency target in force (seconds)
	GuardRate         prometheus.Gauge       // documents per second the guard allows
	writes            map[string]prometheus.Counter
}

// New creates the collectors and registers them with reg, which may be nil
// (the collectors then work but are not exported).
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		RecordsConsumed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reindexer_records_consumed_total",
			Help: "Kafka records read, by topic."}, []string{"topic"}),
		Writes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reindexer_writes_total",
			Help: "Document operations finished, by result: created, updated, deleted, not_found, stale (409, newer version present), duplicate (409, same version present), dead_lettered, failed (neither written nor dead-lettered: abandoned at a shutdown timeout, or stopped with no dead-letter topic or by the dead-letter breaker; uncommitted, re-read on restart)."},
			[]string{"result"}),
		BulkRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reindexer_bulk_requests_total",
			Help: "Bulk requests sent, by HTTP status code (\"error\" for transport failures)."}, []string{"code"}),
		BulkLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "reindexer_bulk_latency_seconds",
			Help: "Round-trip time of one bulk request.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		BulkBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "reindexer_bulk_bytes_total",
			Help: "Bytes of bulk request bodies sent (uncompressed)."}),
		BulkDocs: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "reindexer_bulk_items",
			Help: "Items per bulk request.", Buckets: prometheus.ExponentialBuckets(1, 4, 8)}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reindexer_retries_total",
			Help: "Items or requests retried, by reason (e.g. 429, 503, network, blocked)."}, []string{"reason"}),
		DeadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reindexer_dead_lettered_total",
			Help: "Records sent to the dead-letter topic, by reason."}, []string{"reason"}),
		Blocked: prometheus.NewGauge(prometheus.GaugeOpts{Name: "reindexer_blocked",
			Help: "1 while OpenSearch refuses writes with a cluster block or a missing index; progress is stopped, nothing is dropped."}),
		InFlightBulks: prometheus.NewGauge(prometheus.GaugeOpts{Name: "reindexer_inflight_bulks",
			Help: "Bulk requests in flight."}),
		BufferedBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "reindexer_buffered_bytes",
			Help: "Bytes of events polled but not yet durable."}),
		ConsumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reindexer_consumer_lag",
			Help: "Records between the partition's high watermark and the durable offset."}, []string{"topic", "partition"}),
		CommittedOffset: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reindexer_committed_offset",
			Help: "Last committed offset (next record to read) per partition."}, []string{"topic", "partition"}),
		Commits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reindexer_commits_total",
			Help: "Offset commits, by outcome."}, []string{"outcome"}),
		ReplayRemaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reindexer_replay_remaining_records",
			Help: "Records left before a replay reaches its end offset, per partition."}, []string{"topic", "partition"}),
		Rebalances: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reindexer_rebalance_events_total",
			Help: "Partitions assigned, revoked or lost."}, []string{"kind"}),
		LaneIdle: prometheus.NewCounter(prometheus.CounterOpts{Name: "reindexer_lane_idle_seconds_total",
			Help: "Seconds lane senders spent waiting for records (high: Kafka or the poll loop is the bottleneck, not OpenSearch)."}),
		LaneSaturated: prometheus.NewCounter(prometheus.CounterOpts{Name: "reindexer_lane_saturated_total",
			Help: "Times a lane was full and paused fetching of its partitions (high: OpenSearch is the bottleneck)."}),
		ThrottleLimit: prometheus.NewGauge(prometheus.GaugeOpts{Name: "reindexer_throttle_limit",
			Help: "Bulk requests allowed in flight by adaptive concurrency (--target-latency); the number of lanes when it is off."}),
		ThrottleDecreases: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reindexer_throttle_decreases_total",
			Help: "Times the throttle stepped down, by reason: adaptive concurrency halving its limit on 429, 503, rejected (rejected_execution_exception, circuit breaker), latency (bulk slower than --target-latency); the guard lowering its rate on search_latency (guard searches slower than --search-latency-target), search_error, search_429, search_503."},
			[]string{"reason"}),
		ThrottleWait: prometheus.NewCounter(prometheus.CounterOpts{Name: "reindexer_throttle_wait_seconds_total",
			Help: "Seconds bulk requests waited for --max-rate / --max-bytes-rate or a concurrency slot."}),
		GuardLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "reindexer_guard_search_latency_seconds",
			Help: "Latency of the guard searches (--guard-query).", Buckets: prometheus.ExponentialBuckets(0.002, 2, 14)}),
		GuardTarget: prometheus.NewGauge(prometheus.GaugeOpts{Name: "reindexer_guard_target_seconds",
			Help: "The guard's search latency target in force (--search-latency-target; for a relative target such as 1.2x, that factor times the median measured at start); 0 without a guard."}),
		GuardRate: prometheus.NewGauge(prometheus.GaugeOpts{Name: "reindexer_guard_rate",
			Help: "Documents per second the guard (--guard-query) lets the worker send now; 0 without a guard."}),
		writes: map[string]prometheus.Counter{},
	}
	for _, r := range []string{Created, Updated, Deleted, NotFound, Stale, Duplicate, DeadLettered, Failed} {
		m.writes[r] = m.Writes.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.RecordsConsumed, m.Writes, m.BulkRequests, m.BulkLatency, m.BulkBytes, m.BulkDocs,
			m.Retries, m.DeadLettered, m.Blocked, m.InFlightBulks, m.BufferedBytes, m.ConsumerLag,
			m.CommittedOffset, m.Commits, m.ReplayRemaining, m.Rebalances, m.LaneIdle, m.LaneSaturated,
			m.ThrottleLimit, m.ThrottleDecreases, m.ThrottleWait, m.GuardLatency, m.GuardTarget, m.GuardRate)
	}
	return m
}

// Write adds n to the count of writes with the given result.
func (m *Metrics) Write(result string, n int) {
	if n == 0 {
		return
	}
	c, ok := m.writes[result]
	if !ok {
		c = m.Writes.WithLabelValues(result)
	}
	c.Add(float64(n))
}

// Lag returns the lag gauge of one partition.
func (m *Metrics) Lag(topic string, partition int32) prometheus.Gauge {
	return m.ConsumerLag.WithLabelValues(topic, strconv.Itoa(int(partition)))
}

// Committed returns the committed-offset gauge of one partition.
func (m *Metrics) Committed(topic string, partition int32) prometheus.Gauge {
	return m.CommittedOffset.WithLabelValues(topic, strconv.Itoa(int(partition)))
}

// Forget removes the per-partition series of a partition this process no
// longer owns, so dashboards do not show stale lag.
func (m *Metrics) Forget(topic string, partition int32) {
	p := strconv.Itoa(int(partition))
	m.ConsumerLag.DeleteLabelValues(topic, p)
	m.CommittedOffset.DeleteLabelValues(topic, p)
}
