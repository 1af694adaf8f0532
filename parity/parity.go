// Package parity decides whether two sides hold the same live documents: two
// OpenSearch indices (on one cluster or two), or an index and the Kafka topic
// that feeds it.
//
// A live document is one that is not a tombstone: a document carrying the
// tombstone marker field (Config.TombstoneField, default
// "reindexer_tombstone") stands for a deleted document, so a tombstone on one
// side and no document on the other are equal. Tombstones are counted per
// side and reported, never compared.
//
// Three modes, each more thorough and more expensive:
//
//   - ModeCount: exact live-document counts of both sides after a refresh
//     (optionally broken down into buckets with Config.Bucket).
//   - ModeSample: the counts, plus Config.Sample ids drawn at random from the
//     left side and looked up on the right side with mget; missing ids and
//     ids whose _version differs are listed.
//   - ModeFull: every live id and _version of both sides, read with scrolls
//     (_source off) and sorted on disk in runs of bounded size, then merged:
//     exact counts of the ids only on the left, only on the right, and at
//     different versions, with capped lists of them.
//
// An answer built from part of the data (failed shards, a timed-out search)
// is never trusted: Compare returns an error and the verdict VerdictError.
package parity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/reindexer/reindexer/event"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Mode is how thoroughly the sides are compared.
type Mode string

// The comparison modes.
const (
	ModeCount  Mode = "count"  // live-document counts (the default)
	ModeSample Mode = "sample" // counts plus a random sample of ids and versions
	ModeFull   Mode = "full"   // every id and version
)

// ParseMode returns the Mode named s ("" is ModeCount).
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case "", ModeCount:
		return ModeCount, nil
	case ModeSample, ModeFull:
		return Mode(s), nil
	}
	return "", fmt.Errorf("mode %q is not count, sample or full", s)
}

// Verdicts of a Result.
const (
	VerdictEqual = "equal" // the sides differ by at most Config.Tolerance documents
	VerdictDrift = "drift" // they differ by more
	VerdictError = "error" // the comparison could not be made (see Result.Error)
)

// Defaults of Config's zero fields.
const (
	DefaultTombstoneField = "reindexer_tombstone"
	DefaultSample         = 1000
	DefaultMaxIDs         = 100
	DefaultMaxBuckets     = 100
	DefaultMemoryBytes    = 64 << 20
	DefaultPageSize       = 10000
)

// Side is one side of a comparison: an OpenSearch index (Client and Index),
// or, when Topic is set, the documents a Kafka topic implies.
type Side struct {
	// Client talks to the side's cluster.
	Client *opensearchapi.Client
	// Index is an index, alias or comma-separated index pattern.
	Index string
	// Name labels the side in reports (default: Index, or the topic).
	Name string
	// Topic, when not nil, makes this side a Kafka topic instead of an
	// index (the right side only; Client and Index are then unused).
	Topic *Topic
}

// Topic is a Kafka topic read as a side: every record from the start of
// each partition up to the end offsets captured when the comparison starts,
// decoded as the indexer decodes it. The live documents it implies are,
// per id, the operation with the greatest version (on a tie the first read),
// when that operation is an upsert. Records that cannot be decoded are the
// ones the indexer dead-letters; they are counted and otherwise ignored.
type Topic struct {
	// Kafka are the client options (brokers, TLS, SASL).
	Kafka []kgo.Opt
	// Topic is the topic name.
	Topic string
	// Decoder says where the id, version, op and document come from.
	Decoder event.Config
}

// Config is one comparison.
type Config struct {
	// Left and Right are the two sides. Left must be an index; Right may be
	// an index or a topic.
	Left, Right Side
	// Mode is how thoroughly to compare (default ModeCount).
	Mode Mode
	// Sample is how many ids ModeSample draws from the left side
	// (default DefaultSample).
	Sample int
	// Tolerance is how many differing documents still count as equal
	// (default 0). What counts (Result.Drift): in ModeFull the exact
	// only_left + only_right + version_differs; in ModeCount the count
	// difference or, when Bucket is set and larger, the sum of the
	// per-bucket differences (a document that moved between buckets counts
	// twice); in ModeSample the largest of those and the sampled
	// differences.
	Tolerance int64
	// TombstoneField marks tombstone documents (default
	// DefaultTombstoneField). A document that has the field is not live.
	TombstoneField string
	// Bucket breaks the live counts down: "field" (terms) or
	// "field:interval" (date histogram, e.g. created_at:1d; 1m, 1h, 1d, 1w,
	// 1M, 1q, 1y are calendar intervals, anything else such as 6h or 90m is
	// a fixed one). Empty: no buckets. Index sides only.
	Bucket string
	// Settle, with TimeField, leaves out documents whose TimeField is at or
	// after (now - Settle) on both sides, so indexing lag is not drift.
	// Documents without the field are kept. Zero: nothing is left out.
	Settle time.Duration
	// TimeField is the date field Settle filters on.
	TimeField string
	// Now returns the current time (default time.Now); the cutoff is taken
	// once, so both sides use the same one.
	Now func() time.Time
	// MaxIDs caps each id list of the Result (default DefaultMaxIDs);
	// counts are never capped.
	MaxIDs int
	// MaxBuckets caps Result.Buckets (default DefaultMaxBuckets); the
	// number of differing buckets is never capped.
	MaxBuckets int
	// MemoryBytes bounds the memory ModeFull and a topic side use to sort
	// ids (default DefaultMemoryBytes); beyond it sorted runs spill to
	// files in TempDir.
	MemoryBytes int64
	// TempDir holds the spilled runs (default os.TempDir()); they are
	// removed before Compare returns.
	TempDir string
	// PageSize is the number of hits per search page (default
	// DefaultPageSize).
	PageSize int
	// Logger receives progress at debug level (default: discard).
	Logger *slog.Logger
}

// SideCounts are one side's totals.
type SideCounts struct {
	// Name labels the side.
	Name string `json:"name"`
	// Count is the number of live documents.
	Count int64 `json:"count"`
	// Tombstones is the number of tombstone documents (for a topic: ids
	// whose latest operation is a delete).
	Tombstones int64 `json:"tombstones"`
	// Undecodable counts topic records the indexer would dead-letter.
	Undecodable int64 `json:"undecodable,omitempty"`
	// EndOffsets are, for a topic side, the offsets (per partition) the
	// topic was read up to: its last stable offsets when the check began.
	EndOffsets map[int32]int64 `json:"end_offsets,omitempty"`
}

// Diff counts the differing documents. In ModeFull the counts are exact;
// in ModeSample they count the sampled ids; in ModeCount OnlyLeft and
// OnlyRight are the net count difference (one of them is zero).
type Diff struct {
	OnlyLeft       int64 `json:"only_left"`
	OnlyRight      int64 `json:"only_right"`
	VersionDiffers int64 `json:"version_differs"`
	// Buckets is how many buckets differ (Config.Bucket).
	Buckets int64 `json:"buckets,omitempty"`
}

// Bucket is one bucket whose live counts differ.
type Bucket struct {
	// Key is the bucket's key: the term, or the start of the date
	// interval in RFC 3339 (UTC); "(missing)" for documents without the
	// field.
	Key   string `json:"key"`
	Left  int64  `json:"left"`
	Right int64  `json:"right"`
}

// VersionDiff is an id live on both sides at different versions.
type VersionDiff struct {
	ID    string `json:"id"`
	Left  int64  `json:"left"`
	Right int64  `json:"right"`
}

// IDs lists differing ids, each list capped at Config.MaxIDs, in id order
// (ModeFull) or sample order (ModeSample).
type IDs struct {
	OnlyLeft       []string      `json:"only_left"`
	OnlyRight      []string      `json:"only_right"`
	VersionDiffers []VersionDiff `json:"version_differs"`
}

// Result is the outcome of a comparison.
type Result struct {
	// Verdict is VerdictEqual, VerdictDrift or VerdictError.
	Verdict string `json:"verdict"`
	// Mode is the mode that ran.
	Mode Mode `json:"mode"`
	// Left and Right are the sides' totals.
	Left  SideCounts `json:"left"`
	Right SideCounts `json:"right"`
	// Diff counts the differences.
	Diff Diff `json:"diff"`
	// Drift is the number compared with Tolerance (see Config.Tolerance).
	Drift int64 `json:"drift"`
	// Tolerance is Config.Tolerance.
	Tolerance int64 `json:"tolerance"`
	// Sampled is how many ids ModeSample looked up.
	Sampled int `json:"sampled,omitempty"`
	// Bucket is Config.Bucket; Buckets the differing buckets (capped).
	Bucket  string   `json:"bucket,omitempty"`
	Buckets []Bucket `json:"buckets"`
	// IDs lists differing ids (ModeSample, ModeFull).
	IDs IDs `json:"ids"`
	// SpilledRuns is how many sorted runs went to disk because the ids did
	// not fit in Config.MemoryBytes.
	SpilledRuns int `json:"spilled_runs,omitempty"`
	// SettledBefore is the cutoff of Config.Settle, when set.
	SettledBefore *time.Time `json:"settled_before,omitempty"`
	// Started is when the comparison started; Seconds how long it took.
	Started time.Time `json:"started"`
	Seconds float64   `json:"seconds"`
	// Error says why the comparison could not be made (VerdictError).
	Error string `json:"error,omitempty"`
}

// ErrCouldNotCheck wraps every error Compare returns.
var ErrCouldNotCheck = errors.New("could not check")

// Compare compares cfg.Left with cfg.Right. It returns an error only when
// the comparison could not be made (a bad Config, an unreachable cluster, a
// missing index, failed shards, a timed-out search, an unreadable topic);
// the error wraps ErrCouldNotCheck and the Result then has Verdict
// VerdictError, Error set, and whatever was counted before the failure.
// Compare reads only; the one thing it changes is a refresh of each index
// side, so that every write so far is counted.
func Compare(ctx context.Context, cfg Config) (Result, error) {
	c, err := newComparison(cfg)
	res := Result{
		Mode: c.cfg.Mode, Verdict: VerdictError, Tolerance: cfg.Tolerance, Bucket: cfg.Bucket,
		Left: SideCounts{Name: c.cfg.Left.Name}, Right: SideCounts{Name: c.cfg.Right.Name},
		Buckets: []Bucket{}, IDs: IDs{OnlyLeft: []string{}, OnlyRight: []string{}, VersionDiffers: []VersionDiff{}},
	}
	if err == nil {
		res.Started = time.Now().UTC() // the wall clock, whatever Config.Now says
		if !c.f.cutoff.IsZero() {
			cut := c.f.cutoff.UTC()
			res.SettledBefore = &cut
		}
		err = c.run(ctx, &res)
		res.Seconds = time.Since(res.Started).Seconds()
	}
	if err != nil {
		res.Verdict = VerdictError
		res.Error = err.Error()
		return res, fmt.Errorf("%w: %w", ErrCouldNotCheck, err)
	}
	abs := res.Left.Count - res.Right.Count
	if abs < 0 {
		abs = -abs
	}
	switch res.Mode {
	case ModeFull:
		res.Drift = res.Diff.OnlyLeft + res.Diff.OnlyRight + res.Diff.VersionDiffers
	case ModeSample:
		res.Drift = max(abs, c.bucketSum, res.Diff.OnlyLeft+res.Diff.VersionDiffers)
	default:
		res.Drift = max(abs, c.bucketSum)
		res.Diff.OnlyLeft, res.Diff.OnlyRight = max(res.Left.Count-res.Right.Count, 0), max(res.Right.Count-res.Left.Count, 0)
	}
	res.Verdict = VerdictEqual
	if res.Drift > res.Tolerance {
		res.Verdict = VerdictDrift
	}
	return res, nil
}

// comparison is one run of Compare.
type comparison struct {
	cfg       Config
	f         filters
	spec      bucketSpec
	now       func() time.Time
	log       *slog.Logger
	left      indexSide
	right     indexSide // unused when the right side is a topic
	bucketSum int64
	tmp       string // created on first use
}

// newComparison fills defaults and checks cfg.
func newComparison(cfg Config) (*comparison, error) {
	c := &comparison{cfg: cfg, now: cfg.Now, log: cfg.Logger}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	cf := &c.cfg
	if cf.Mode == "" {
		cf.Mode = ModeCount
	}
	if cf.Sample <= 0 {
		cf.Sample = DefaultSample
	}
	if cf.TombstoneField == "" {
		cf.TombstoneField = DefaultTombstoneField
	}
	if cf.MaxIDs <= 0 {
		cf.MaxIDs = DefaultMaxIDs
	}
	if cf.MaxBuckets <= 0 {
		cf.MaxBuckets = DefaultMaxBuckets
	}
	if cf.MemoryBytes <= 0 {
		cf.MemoryBytes = DefaultMemoryBytes
	}
	if cf.PageSize <= 0 {
		cf.PageSize = DefaultPageSize
	}
	if cf.Left.Name == "" {
		cf.Left.Name = cf.Left.Index
	}
	if cf.Right.Name == "" {
		cf.Right.Name = cf.Right.Index
		if cf.Right.Topic != nil {
			cf.Right.Name = "topic " + cf.Right.Topic.Topic
		}
	}
	if _, err := ParseMode(string(cf.Mode)); err != nil {
		return c, err
	}
	if cf.Left.Topic != nil {
		return c, errors.New("the left side must be an index")
	}
	if cf.Left.Client == nil || (cf.Right.Topic == nil && cf.Right.Client == nil) {
		return c, errMissingClient
	}
	if cf.Left.Index == "" || (cf.Right.Topic == nil && cf.Right.Index == "") {
		return c, errors.New("no index given")
	}
	if cf.Tolerance < 0 {
		return c, errors.New("negative tolerance")
	}
	if cf.Settle < 0 || (cf.Settle > 0) != (cf.TimeField != "") {
		return c, errors.New("settle needs a positive duration and a time field, both or neither")
	}
	if cf.Bucket != "" {
		spec, err := parseBucket(cf.Bucket)
		if err != nil {
			return c, err
		}
		if cf.Right.Topic != nil {
			return c, errors.New("buckets need an index on both sides")
		}
		c.spec = spec
	}
	c.f = filters{tombstone: cf.TombstoneField, timeField: cf.TimeField}
	if cf.Settle > 0 {
		c.f.cutoff = c.now().Add(-cf.Settle)
	}
	c.left = indexSide{which: "left", side: cf.Left}
	c.right = indexSide{which: "right", side: cf.Right}
	return c, nil
}

func (c *comparison) tempDir() (string, error) {
	if c.tmp == "" {
		dir, err := os.MkdirTemp(c.cfg.TempDir, "reindexer-parity-*")
		if err != nil {
			return "", fmt.Errorf("spill directory: %w", err)
		}
		c.tmp = dir
	}
	return c.tmp, nil
}

func (c *comparison) run(ctx context.Context, res *Result) error {
	defer func() {
		if c.tmp != "" {
			os.RemoveAll(c.tmp)
		}
	}()
	topic := c.cfg.Right.Topic != nil
	sides := []indexSide{c.left}
	if !topic {
		sides = append(sides, c.right)
	}
	counts := []*SideCounts{&res.Left, &res.Right}
	for i, s := range sides {
		if err := s.refresh(ctx); err != nil {
			return err
		}
		var err error
		if counts[i].Count, err = s.count(ctx, c.f.live()); err != nil {
			return err
		}
		if counts[i].Tombstones, err = s.count(ctx, c.f.tombstones()); err != nil {
			return err
		}
	}
	var topicSorted *sorter
	if topic {
		// The topic is read once in every mode: its live count needs the
		// latest operation of every id.
		dir, err := c.tempDir()
		if err != nil {
			return err
		}
		budget := c.cfg.MemoryBytes
		if c.cfg.Mode == ModeFull {
			budget /= 2
		}
		topicSorted = newSorter(dir, budget)
		tr, err := readTopic(ctx, c.cfg.Right.Topic, c.f.cutoff, timePath(c.cfg.TimeField), topicSorted)
		if err != nil {
			return err
		}
		res.Right.Undecodable, res.Right.EndOffsets = tr.undecodable, tr.ends
		defer func() { res.SpilledRuns += topicSorted.Spills() }()
		c.log.Debug("read topic", "topic", c.cfg.Right.Topic.Topic, "records", tr.records, "undecodable", tr.undecodable, "spilled_runs", topicSorted.Spills())
	}
	if c.cfg.Bucket != "" {
		shown, n, sum, err := compareBuckets(ctx, c.f, c.spec, c.left, c.right, c.cfg.MaxBuckets)
		if err != nil {
			return err
		}
		res.Buckets, res.Diff.Buckets, c.bucketSum = shown, n, sum
	}
	switch c.cfg.Mode {
	case ModeCount:
		if topic {
			return c.topicCount(topicSorted, res)
		}
	case ModeSample:
		return c.sample(ctx, topicSorted, res)
	case ModeFull:
		return c.full(ctx, topicSorted, res)
	}
	return nil
}
