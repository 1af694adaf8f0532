package probe

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the probe's Prometheus collectors, updated while it runs.
type Metrics struct {
	// Requests counts requests by side (new, old) and result (ok, error,
	// rejected, unsent).
	Requests *prometheus.CounterVec
	// Latency observes answered requests' latency from when they were due,
	// by side.
	Latency *prometheus.HistogramVec
	// InFlight is the number of requests awaiting an answer, by side.
	InFlight *prometheus.GaugeVec
	// Step is the running step (1-based; 0 before the first).
	Step prometheus.Gauge
	// TargetRate is the running step's rate in queries per second.
	TargetRate prometheus.Gauge
	// Compared counts queries whose answers from both sides were compared.
	Compared prometheus.Counter
	// Differing counts compared queries whose top-k ids differed.
	Differing prometheus.Counter
}

// NewMetrics creates the collectors and registers them with reg (which may
// be nil: the collectors then work but are not exported).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reindexer_probe_requests_total",
			Help: "Probe search requests by side (new, old) and result (ok, error, rejected, unsent)."}, []string{"side", "result"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "reindexer_probe_latency_seconds",
			Help:    "Latency of answered probe searches, measured from when each was due, by side.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}, []string{"side"}),
		InFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reindexer_probe_in_flight",
			Help: "Probe searches awaiting an answer, by side."}, []string{"side"}),
		Step: prometheus.NewGauge(prometheus.GaugeOpts{Name: "reindexer_probe_step",
			Help: "The probe step running (1-based; 0 before the first)."}),
		TargetRate: prometheus.NewGauge(prometheus.GaugeOpts{Name: "reindexer_probe_target_rate",
			Help: "The running probe step's rate, queries per second."}),
		Compared: prometheus.NewCounter(prometheus.CounterOpts{Name: "reindexer_probe_answers_compared_total",
			Help: "Probe queries whose answers from the new and the old side were compared."}),
		Differing: prometheus.NewCounter(prometheus.CounterOpts{Name: "reindexer_probe_answers_differing_total",
			Help: "Compared probe queries whose top-k document ids differed."}),
	}
	if reg != nil {
		reg.MustRegister(m.Requests, m.Latency, m.InFlight, m.Step, m.TargetRate, m.Compared, m.Differing)
	}
	return m
}
