package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/reindexer/reindexer/checkpoint"
	"github.com/reindexer/reindexer/consumer"
	"github.com/reindexer/reindexer/event"
	"github.com/reindexer/reindexer/indexer"
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
	fs.DurationVar(&p.sessionTimeout, "session-timeout", consumer.DefaultSessionTimeout, "consumer group session timeout: how long before a dead member's partitions move")
	fs.StringVar(&p.instanceID, "instance-id", "", instanceIDUsage)
	p.gentle.register(fs)
	fs.DurationVar(&p.drainTimeout, "drain-timeout", consumer.DefaultShutdownTimeout, "on SIGTERM, how long in-flight writes may take before they are abandoned (uncommitted, re-read later); keep the pod's terminationGracePeriodSeconds above it")
	sizeVar(fs, &p.fetchMaxBytes, "fetch-max-bytes", consumer.DefaultFetchMaxBytes, "bytes per Kafka fetch (bounds read-ahead memory)")
	fs.StringVar(&p.checkpointIndex, "checkpoint-index", checkpoint.DefaultIndex, `index in the target cluster that keeps the checkpoint history (used by --since-snapshot); "none" disables it`)
	fs.DurationVar(&p.checkpointInterval, "checkpoint-interval", checkpoint.DefaultInterval, "how often the checkpoint history is written")
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
	fs.StringVar(&p.routingFrom, "routing-from", "none", "custom routing: json:/pointer, key, header:NAME or none; deletes must carry the same routing as their upserts (a delete without one is dead-lettered as missing_routing; a JSON null or an empty header means unrouted)")
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
