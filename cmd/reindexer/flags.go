package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/reindexer/reindexer/consumer"
	"github.com/reindexer/reindexer/event"
	"github.com/reindexer/reindexer/indexer"
	"github.com/reindexer/reindexer/internal/metrics"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
)

// envPrefix prefixes the environment variable of every flag.
const envPrefix = "REINDEXER_"

// envName returns the environment variable that sets flag name.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// parseFlags parses args, then fills every flag not given on the command
// line from its REINDEXER_<FLAG> environment variable. Errors are
// usageErrors naming the flag (and the variable).
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	fs.SetOutput(io.Discard)
	acceptDays(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		v := getenv(envName(f.Name))
		if v == "" {
			return
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = usageError{fmt.Errorf("invalid value %q for flag --%s (from %s): %v", v, f.Name, envName(f.Name), serr)}
		}
		set[f.Name] = true // the environment wins over a config file
		markSource(fs, f.Name, envName(f.Name))
	})
	if err != nil {
		return err
	}
	return applyConfigFlag(fs, set)
}

func required(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if strings.TrimSpace(pairs[i+1]) == "" {
			return usageError{fmt.Errorf("flag --%s is required (or set %s)", pairs[i], envName(pairs[i]))}
		}
	}
	return nil
}

// kafkaFlags are the connection settings for Kafka.
type kafkaFlags struct {
	brokers       string
	tls           bool
	tlsCA         string
	tlsCert       string
	tlsKey        string
	tlsInsecure   bool
	saslMechanism string
	username      string
	password      string
	clientID      string

	oauthToken     string
	oauthTokenFile string
}

func (k *kafkaFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&k.brokers, "brokers", "", "Kafka bootstrap brokers, comma-separated host:port (required)")
	fs.BoolVar(&k.tls, "kafka-tls", false, "connect to Kafka with TLS")
	fs.StringVar(&k.tlsCA, "kafka-tls-ca", "", "PEM file of CAs to verify the Kafka brokers (implies --kafka-tls)")
	fs.StringVar(&k.tlsCert, "kafka-tls-cert", "", "PEM client certificate for Kafka mTLS (with --kafka-tls-key)")
	fs.StringVar(&k.tlsKey, "kafka-tls-key", "", "PEM client key for Kafka mTLS")
	fs.BoolVar(&k.tlsInsecure, "kafka-tls-insecure", false, "skip verification of the brokers' certificates (testing only)")
	fs.StringVar(&k.saslMechanism, "kafka-sasl", "", kafkaSASLUsage)
	fs.StringVar(&k.username, "kafka-username", "", "SASL username")
	fs.StringVar(&k.password, "kafka-password", "", "SASL password (prefer REINDEXER_KAFKA_PASSWORD; never logged)")
	fs.StringVar(&k.clientID, "kafka-client-id", "reindexer", "Kafka client id")
	fs.StringVar(&k.oauthToken, "kafka-oauth-token", "", "OAUTHBEARER token (prefer REINDEXER_KAFKA_OAUTH_TOKEN or --kafka-oauth-token-file; never logged)")
	fs.StringVar(&k.oauthTokenFile, "kafka-oauth-token-file", "", "file holding the OAUTHBEARER token, read again at every (re)authentication so a rotated token is picked up")
}

// opts returns the franz-go options for these settings.
func (k *kafkaFlags) opts() ([]kgo.Opt, error) {
	var brokers []string
	for _, b := range strings.Split(k.brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			if _, _, err := net.SplitHostPort(b); err != nil {
				return nil, usageError{fmt.Errorf("flag --brokers: %q is not host:port", redactURLs(b))}
			}
			brokers = append(brokers, b)
		}
	}
	if len(brokers) == 0 {
		return nil, usageError{fmt.Errorf("flag --brokers is required (or set %s)", envName("brokers"))}
	}
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ClientID(k.clientID)}
	saslOpt, saslTLS, err := kafkaSASL(k)
	if err != nil {
		return nil, err
	}
	if k.tls || k.tlsCA != "" || k.tlsCert != "" || k.tlsInsecure || saslTLS {
		cfg, err := tlsConfig("kafka-tls", k.tlsCA, k.tlsCert, k.tlsKey, k.tlsInsecure)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if saslOpt != nil {
		opts = append(opts, saslOpt)
	}
	return opts, nil
}

// osFlags are the connection settings for OpenSearch.
type osFlags struct {
	urls        string
	username    string
	password    string
	tlsCA       string
	tlsInsecure bool
	compress    bool
	auth        osAuthFlags
	prefix      string // flag-name prefix of this registration ("" or "against-")
}

func (o *osFlags) register(fs *flag.FlagSet) { o.registerAs(fs, "") }

// registerAs registers the OpenSearch flags with every name prefixed by
// prefix (e.g. "against-" for the other side of a comparison, whose
// variables are then REINDEXER_AGAINST_OPENSEARCH...). Only the unprefixed
// registration has --opensearch-gzip (bulk bodies).
func (o *osFlags) registerAs(fs *flag.FlagSet, prefix string) {
	o.prefix = prefix
	urlUsage := "OpenSearch URL(s), comma-separated, e.g. https://search.example:9200 (required)"
	if prefix != "" {
		urlUsage = "OpenSearch URL(s) of the other side, comma-separated (default: --opensearch with its credentials and TLS settings)"
	}
	fs.StringVar(&o.urls, prefix+"opensearch", "", urlUsage)
	fs.StringVar(&o.username, prefix+"opensearch-username", "", "OpenSearch basic-auth user")
	fs.StringVar(&o.password, prefix+"opensearch-password", "", "OpenSearch basic-auth password (prefer "+envName(prefix+"opensearch-password")+"; never logged)")
	fs.StringVar(&o.tlsCA, prefix+"opensearch-tls-ca", "", "PEM file of CAs to verify OpenSearch")
	fs.BoolVar(&o.tlsInsecure, prefix+"opensearch-tls-insecure", false, "skip verification of OpenSearch's certificate (testing only)")
	if prefix == "" {
		fs.BoolVar(&o.compress, "opensearch-gzip", false, "gzip bulk request bodies (saves network, costs CPU on both sides)")
	}
	o.auth.register(fs, prefix)
}

// clients returns an admin client (with the transport's own retries) and a
// bulk client (retries disabled: the indexer retries items itself).
func (o *osFlags) clients(conns int) (admin *opensearchapi.Client, bulk *opensearch.Client, err error) {
	var addrs []string
	for _, u := range strings.Split(o.urls, ",") {
		if u = strings.TrimSpace(u); u != "" {
			if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
				return nil, nil, usageError{fmt.Errorf("flag --%sopensearch: %q must start with http:// or https://", o.prefix, redactURLs(u))}
			}
			addrs = append(addrs, u)
		}
	}
	if len(addrs) == 0 {
		return nil, nil, usageError{fmt.Errorf("flag --%sopensearch is required (or set %s)", o.prefix, envName(o.prefix+"opensearch"))}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = conns + 4
	tr.MaxConnsPerHost = 0
	if o.tlsCA != "" || o.tlsInsecure {
		cfg, err := tlsConfig(o.prefix+"opensearch-tls", o.tlsCA, "", "", o.tlsInsecure)
		if err != nil {
			return nil, nil, err
		}
		tr.TLSClientConfig = cfg
	}
	base := opensearch.Config{
		Addresses: addrs,
		Transport: tr,
	}
	if err := o.auth.apply(&base, o.username, o.password); err != nil {
		return nil, nil, err
	}
	adminCfg := base
	adminCfg.RetryOnStatus = []int{429, 502, 503, 504}
	adminCfg.RetryBackoff = func(attempt int) time.Duration { return time.Duration(attempt) * 250 * time.Millisecond }
	admin, err = opensearchapi.NewClient(opensearchapi.Config{Client: adminCfg})
	if err != nil {
		return nil, nil, fmt.Errorf("opensearch client: %w", err)
	}
	bulkCfg := base
	bulkCfg.DisableRetry = true
	bulkCfg.CompressRequestBody = o.compress
	bulk, err = opensearch.NewClient(bulkCfg)
	if err != nil {
		return nil, nil, fmt.Errorf("opensearch client: %w", err)
	}
	return admin, bulk, nil
}

func tlsConfig(flagPrefix, caFile, certFile, keyFile string, insecure bool) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure} //nolint:gosec // opt-in for testing
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, usageError{fmt.Errorf("flag --%s-ca: %w", flagPrefix, err)}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageError{fmt.Errorf("flag --%s-ca: %s holds no PEM certificate", flagPrefix, caFile)}
		}
		cfg.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, usageError{fmt.Errorf("flags --%s-cert/--%s-key: %w", flagPrefix, flagPrefix, err)}
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// pipelineFlags are the settings shared by run and replay: what to read,
// where to write, how to decode and how to batch.
type pipelineFlags struct {
	kafka    kafkaFlags
	os       osFlags
	topic    string
	group    string
	index    string
	dlqTopic string
	// dead-letter breaker
	dlqMaxRatio float64
	dlqWindow   int

	deleteMode     string
	tombstoneField string
	versionType    string

	decodeFlags

	lanes          int
	batchBytes     int
	batchDocs      int
	linger         time.Duration
	commitInterval time.Duration
	sessionTimeout time.Duration
	instanceID     string
	drainTimeout   time.Duration
	gentle         gentleFlags
	fetchMaxBytes  int

	checkpointIndex    string
	checkpointInterval time.Duration

	metricsAddr string
	memoryLimit string
	pprof       bool
	logLevel    string
	logFormat   string
}

func (p *pipelineFlags) register(fs *flag.FlagSet) {
	registerConfig(fs)
	p.kafka.register(fs)
	p.os.register(fs)
	fs.StringVar(&p.topic, "topic", "", "Kafka topic of document events (required)")
	fs.StringVar(&p.group, "group", "", "Kafka consumer group that holds this job's progress (required)")
	fs.StringVar(&p.index, "index", "", "target OpenSearch index or alias (required)")
	fs.StringVar(&p.dlqTopic, "dlq-topic", "", `dead-letter topic for records that can never be indexed (default "<topic>.dlq"; "none" stops on the first such record instead)`)
	fs.Float64Var(&p.dlqMaxRatio, "dlq-max-ratio", consumer.DefaultDLQMaxRatio, "stop (committing nothing of the batch) when more than this share of the last --dlq-window records must be dead-lettered: a wrong index, mapping or --*-from flag, not bad data; 1 disables")
	fs.IntVar(&p.dlqWindow, "dlq-window", consumer.DefaultDLQWindow, "how many recent records --dlq-max-ratio looks at (it judges after a tenth of them)")
	fs.StringVar(&p.deleteMode, "delete-mode", "delete", "how deletes are written: delete (real versioned deletes) or tombstone (a versioned marker document that can never be resurrected)")
	fs.StringVar(&p.tombstoneField, "tombstone-field", indexer.DefaultTombstoneField, "marker field of tombstone documents (--delete-mode tombstone); filter it out of searches")
	fs.StringVar(&p.versionType, "version-type", "external", "OpenSearch version type: external (equal version = 409, no write) or external_gte (equal version rewrites)")
	p.decodeFlags.register(fs)
	fs.IntVar(&p.lanes, "lanes", consumer.DefaultLanes, "bulk requests in flight; each partition is written by one lane, in order")
	sizeVar(fs, &p.batchBytes, "batch-bytes", consumer.DefaultBatchBytes, "close a bulk request at this many bytes")
	fs.IntVar(&p.batchDocs, "batch-docs", consumer.DefaultBatchDocs, "close a bulk request at this many documents")
	fs.DurationVar(&p.linger, "linger", consumer.DefaultLinger, "how long an idle lane waits for more records before sending a partial bulk")
	fs.DurationVar(&p.commitInterval, "commit-interval", consumer.DefaultCommitInterval, "how often durable offsets are committed")
	fs.DurationVar(&p.sessionTimeout, "session-timeout", 45*time.Second, "consumer group session timeout: how long before a dead member's partitions move")
	fs.StringVar(&p.instanceID, "instance-id", "", instanceIDUsage)
	p.gentle.register(fs)
	fs.DurationVar(&p.drainTimeout, "drain-timeout", consumer.DefaultShutdownTimeout, "on SIGTERM, how long in-flight writes may take before they are abandoned (uncommitted, re-read later); keep the pod's terminationGracePeriodSeconds above it")
	sizeVar(fs, &p.fetchMaxBytes, "fetch-max-bytes", consumer.DefaultFetchMaxBytes, "bytes per Kafka fetch (bounds read-ahead memory)")
	fs.StringVar(&p.checkpointIndex, "checkpoint-index", "reindexer-checkpoints", `index in the target cluster that keeps the checkpoint history (used by --since-snapshot); "none" disables it`)
	fs.DurationVar(&p.checkpointInterval, "checkpoint-interval", 5*time.Second, "how often the checkpoint history is written")
	fs.StringVar(&p.metricsAddr, "metrics-addr", "", "serve /metrics, /healthz and /readyz on this address (e.g. :9090); empty disables")
	fs.StringVar(&p.memoryLimit, "memory-limit", "auto", `soft limit of the Go heap: a size (1GiB, 512MiB, or bytes), "auto" (from lanes, batch and fetch sizes) or "none"; GOMEMLIMIT, if set, wins`)
	fs.BoolVar(&p.pprof, "pprof", false, "also serve Go's /debug/pprof/ profiles on --metrics-addr (do not expose publicly)")
	fs.StringVar(&p.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&p.logFormat, "log-format", "text", "text or json")
}

// validate checks flag values that can be checked without connecting.
func (p *pipelineFlags) validate(needGroup bool) error {
	if err := required("brokers", p.kafka.brokers, "topic", p.topic, "opensearch", p.os.urls, "index", p.index); err != nil {
		return err
	}
	if needGroup {
		if err := required("group", p.group); err != nil {
			return err
		}
	}
	if _, err := indexer.ParseDeleteMode(p.deleteMode); err != nil {
		return usageError{fmt.Errorf("flag --delete-mode: %v", err)}
	}
	switch p.versionType {
	case "external", "external_gte":
	default:
		return usageError{fmt.Errorf("flag --version-type: %q is not external or external_gte", p.versionType)}
	}
	if err := p.decodeFlags.validate(p.batchBytes); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		val  int
	}{{"lanes", p.lanes}, {"batch-bytes", p.batchBytes}, {"batch-docs", p.batchDocs}, {"fetch-max-bytes", p.fetchMaxBytes}, {"dlq-window", p.dlqWindow}} {
		if f.val <= 0 {
			return usageError{fmt.Errorf("flag --%s must be positive, got %d", f.name, f.val)}
		}
	}
	if p.dlqMaxRatio <= 0 {
		return usageError{fmt.Errorf("flag --dlq-max-ratio must be positive (1 disables the breaker), got %g", p.dlqMaxRatio)}
	}
	if p.maxDocBytes < 0 {
		return usageError{fmt.Errorf("flag --max-doc-bytes must not be negative")}
	}
	for _, f := range []struct {
		name string
		val  time.Duration
	}{{"linger", p.linger}, {"commit-interval", p.commitInterval}, {"session-timeout", p.sessionTimeout}, {"checkpoint-interval", p.checkpointInterval}, {"drain-timeout", p.drainTimeout}} {
		if f.val <= 0 {
			return usageError{fmt.Errorf("flag --%s must be positive, got %s", f.name, f.val)}
		}
	}
	if _, err := p.memoryBytes(); err != nil {
		return err
	}
	id, err := resolveInstanceID(p.instanceID, os.Hostname)
	if err != nil {
		return err
	}
	p.instanceID = id
	switch p.logLevel {
	case "debug", "info", "warn", "error":
	default:
		return usageError{fmt.Errorf("flag --log-level: %q is not debug, info, warn or error", p.logLevel)}
	}
	switch p.logFormat {
	case "text", "json":
	default:
		return usageError{fmt.Errorf("flag --log-format: %q is not text or json", p.logFormat)}
	}
	return nil
}

// memoryBytes is the soft heap limit --memory-limit asks for (0: none).
// auto is one and a half times what the worker holds at most: the lanes'
// batches (each lane: one being filled, one ready, one in flight; batches
// keep offsets, not records), two fetches (one arriving, one being
// decoded) and 32 MiB for the rest (runtime, responses, decoders); at
// least 64 MiB. At the defaults (4 lanes, 2 MiB batches, 8 MiB fetches)
// that is 108 MiB: a 256 MiB pod leaves it room.
func (p *pipelineFlags) memoryBytes() (int64, error) {
	switch p.memoryLimit {
	case "auto":
		held := int64(p.lanes)*3*int64(p.batchBytes) + 2*int64(p.fetchMaxBytes) + 32<<20
		return max(held*3/2, 64<<20), nil
	case "none", "":
		return 0, nil
	}
	n, err := parseBytes(p.memoryLimit)
	if err != nil || n <= 0 {
		return 0, usageError{fmt.Errorf("flag --memory-limit: %q is not auto, none or a positive size (e.g. 1GiB)", p.memoryLimit)}
	}
	return n, nil
}

func (p *pipelineFlags) decoderConfig() event.Config { return p.decodeFlags.config(p.batchBytes) }

// decodeFlags say where the id, version, op, document and routing of an
// event come from: the same flags (and variables) wherever events are
// decoded (run, replay, parity --against-topic).
type decodeFlags struct {
	idFrom, versionFrom, opFrom, docFrom, routingFrom string
	tombstoneVersionHeader                            string
	tombstoneRoutingHeader                            string
	idEncoding                                        string
	maxDocBytes                                       int
}

func (p *decodeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.idFrom, "id-from", "json:/id", "where the document id is: json:/pointer, key or header:NAME")
	fs.StringVar(&p.versionFrom, "version-from", "json:/version", "where the version is: json:/pointer, header:NAME, offset (unsafe if keys move between partitions or the topic is recreated) or timestamp (unsafe if two changes of a document can share a millisecond, e.g. LogAppendTime batches: the later one is dropped as a duplicate)")
	fs.StringVar(&p.opFrom, "op-from", "json:/op", "where the op (upsert|delete) is: json:/pointer, header:NAME, or none (every non-null value is an upsert)")
	fs.StringVar(&p.docFrom, "doc-from", "json:/doc", "where the document is: json:/pointer or value (the whole record value)")
	fs.StringVar(&p.routingFrom, "routing-from", "none", "custom routing: json:/pointer, key, header:NAME or none; deletes must carry the same routing as their upserts")
	fs.StringVar(&p.tombstoneRoutingHeader, "tombstone-routing-header", "routing", "header carrying the routing of Kafka tombstones when --routing-from is json:...; a tombstone without it is dead-lettered (missing_routing), an empty value means no routing")
	fs.StringVar(&p.idEncoding, "id-encoding", "strict", "ids and routing values from the key or a header: strict (as they are; not valid UTF-8 is dead-lettered as invalid_id_encoding), hex or base64url (every such id encoded, so binary keys never collide)")
	fs.StringVar(&p.tombstoneVersionHeader, "tombstone-version-header", "version", "header carrying the version of Kafka tombstones (null values) when the version comes from JSON")
	sizeVar(fs, &p.maxDocBytes, "max-doc-bytes", 0, "dead-letter documents larger than this (default: --batch-bytes)")
}

// validate checks the decoding flags; defaultMaxDoc is what
// --max-doc-bytes 0 means.
func (p *decodeFlags) validate(defaultMaxDoc int) error {
	for _, f := range []struct{ name, val string }{{"id-from", p.idFrom}, {"version-from", p.versionFrom}, {"op-from", p.opFrom}, {"doc-from", p.docFrom}, {"routing-from", p.routingFrom}} {
		if _, err := event.ParseSource(f.val); err != nil {
			return usageError{fmt.Errorf("flag --%s: %v", f.name, err)}
		}
	}
	if _, err := event.ParseIDEncoding(p.idEncoding); err != nil {
		return usageError{fmt.Errorf("flag --id-encoding: %v", err)}
	}
	if _, err := event.NewDecoder(p.config(defaultMaxDoc)); err != nil {
		return usageError{fmt.Errorf("flags --*-from: %v", err)}
	}
	return nil
}

// config returns the decoder configuration; --max-doc-bytes 0 means
// defaultMaxDoc.
func (p *decodeFlags) config(defaultMaxDoc int) event.Config {
	src := func(s string) event.Source {
		v, _ := event.ParseSource(s)
		return v
	}
	idEncoding, _ := event.ParseIDEncoding(p.idEncoding) // checked by validate
	maxDoc := p.maxDocBytes
	if maxDoc == 0 {
		maxDoc = defaultMaxDoc
	}
	return event.Config{
		ID: src(p.idFrom), Version: src(p.versionFrom), Op: src(p.opFrom), Doc: src(p.docFrom), Routing: src(p.routingFrom),
		TombstoneVersionHeader: p.tombstoneVersionHeader,
		TombstoneRoutingHeader: p.tombstoneRoutingHeader,
		IDEncoding:             idEncoding,
		MaxDocBytes:            maxDoc,
	}
}

func (p *pipelineFlags) dlq() string {
	switch p.dlqTopic {
	case "":
		return p.topic + ".dlq"
	case "none":
		return ""
	}
	return p.dlqTopic
}

func (p *pipelineFlags) logger(w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(p.logLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if p.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// env bundles what a command builds from pipelineFlags.
type env struct {
	log     *slog.Logger
	reg     *prometheus.Registry
	m       *metrics.Metrics
	admin   *opensearchapi.Client
	ix      *indexer.Indexer
	kafka   []kgo.Opt
	kprom   *kprom.Metrics
	decoder event.Config
	guard   [][]byte // guard search bodies (--guard-query)
}

// build connects nothing yet: it turns flags into clients and configs.
func (p *pipelineFlags) build(stderr io.Writer) (*env, error) {
	e := &env{log: p.logger(stderr), reg: prometheus.NewRegistry()}
	if limit, _ := p.memoryBytes(); limit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(limit)
	}
	e.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	e.m = metrics.New(e.reg)
	registerBuildInfo(e.reg)
	kopts, err := p.kafka.opts()
	if err != nil {
		return nil, err
	}
	e.kafka = kopts
	e.kprom = kprom.NewMetrics("reindexer_kafka", kprom.Registerer(e.reg))
	admin, bulk, err := p.os.clients(p.lanes)
	if err != nil {
		return nil, err
	}
	e.admin = admin
	dm, _ := indexer.ParseDeleteMode(p.deleteMode)
	if e.guard, err = p.gentle.validate(); err != nil {
		return nil, err
	}
	e.ix, err = indexer.New(bulk, indexer.Config{
		Index: p.index, VersionType: p.versionType, DeleteMode: dm, TombstoneField: p.tombstoneField,
		MaxRate: p.gentle.maxRate, MaxBytesRate: p.gentle.maxBytesRate, TargetLatency: p.gentle.targetLatency,
		MaxInFlight: p.lanes, Logger: e.log, Metrics: e.m,
	})
	if err != nil {
		return nil, usageError{err}
	}
	e.decoder = p.decoderConfig()
	if e.decoder.Version.Kind == event.FromOffset {
		e.log.Warn("versions come from Kafka offsets: unsafe if a document's key moves between partitions or the topic is recreated (its offsets restart, so new events look older than indexed ones)")
	}
	if e.decoder.Version.Kind == event.FromTimestamp {
		e.log.Warn("versions come from record timestamps in milliseconds: unsafe when two changes of one document share a millisecond "+
			"(a producer batch under LogAppendTime shares one timestamp): with external versions the later change is dropped as a duplicate "+
			"and the older one stays; with external_gte a replay re-applies whichever came last. Use a version that grows with every change (e.g. --version-from json:/version)",
			"version_type", p.versionType)
	}
	return e, nil
}

// consumerConfig assembles a consumer.Config from the flags and env.
func (p *pipelineFlags) consumerConfig(e *env) consumer.Config {
	return consumer.Config{
		Topic:           p.topic,
		Group:           p.group,
		Kafka:           e.kafka,
		ConsumerKafka:   []kgo.Opt{kgo.WithHooks(e.kprom)},
		Decoder:         e.decoder,
		Indexer:         e.ix,
		DLQTopic:        p.dlq(),
		Lanes:           p.lanes,
		BatchBytes:      p.batchBytes,
		BatchDocs:       p.batchDocs,
		Linger:          p.linger,
		CommitInterval:  p.commitInterval,
		SessionTimeout:  p.sessionTimeout,
		InstanceID:      p.instanceID,
		ShutdownTimeout: p.drainTimeout,
		FetchMaxBytes:   int32(min(p.fetchMaxBytes, 1<<30)),
		DLQMaxRatio:     p.dlqMaxRatio,
		DLQWindow:       p.dlqWindow,
		Logger:          e.log,
		Metrics:         e.m,
	}
}

// serveMetrics serves /metrics, /healthz and /readyz until ctx ends.
// healthy and ready return nil when fine, else the reason.
func serveMetrics(ctx context.Context, addr string, pprofOn bool, reg *prometheus.Registry, log *slog.Logger, healthy, ready func() error) error {
	if addr == "" {
		return nil
	}
	mux := http.NewServeMux()
	if pprofOn {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	probe := func(check func() error) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			if err := check(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ok")
		}
	}
	mux.Handle("/healthz", probe(healthy))
	mux.Handle("/readyz", probe(ready))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return usageError{fmt.Errorf("flag --metrics-addr: %w", err)}
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("serving metrics", "addr", ln.Addr().String())
	return nil
}

// flagUsage renders the flags of fs, sorted, with their env variables.
func flagUsage(fs *flag.FlagSet) string {
	var b strings.Builder
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	for _, n := range names {
		f := fs.Lookup(n)
		def := ""
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(&b, "  --%s\n      %s%s [%s]\n", n, f.Usage, def, envName(n))
	}
	return b.String()
}
