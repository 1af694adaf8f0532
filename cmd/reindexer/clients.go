// Connection flags and what they build: the Kafka and OpenSearch clients
// (TLS, SASL, auth), the indexer and the consumer configuration of run and
// replay.

package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/reindexer/reindexer/consumer"
	"github.com/reindexer/reindexer/event"
	"github.com/reindexer/reindexer/indexer"
	"github.com/reindexer/reindexer/internal/metrics"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
)

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
