package checkpoint

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
)

// DefaultIndex is the default name of the checkpoint index.
const DefaultIndex = "reindexer-checkpoints"

// TimeLayout is how checkpoint times are written: RFC 3339, UTC, with
// milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// Document kinds in the checkpoint index.
const (
	kindCheckpoint = "checkpoint"
	kindPlan       = "plan"
)

// compositePage is how many partitions one page of Before's aggregation
// returns.
const compositePage = 1000

// indexBody is the checkpoint index's settings and explicit mapping. Unknown
// fields are kept in _source but not indexed (dynamic: false), so a newer
// writer cannot break an older index.
const indexBody = `{
  "settings": {"index": {"number_of_shards": 1, "auto_expand_replicas": "0-1"}},
  "mappings": {
    "dynamic": false,
    "_meta": {"created_by": "reindexer", "schema": 1},
    "properties": {
      "kind":      {"type": "keyword"},
      "group":     {"type": "keyword"},
      "topic":     {"type": "keyword"},
      "index":     {"type": "keyword"},
      "partition": {"type": "integer"},
      "offset":    {"type": "long"},
      "topic_id":  {"type": "keyword"},
      "complete":  {"type": "boolean"},
      "time":      {"type": "date", "format": "strict_date_optional_time||epoch_millis"},
      "host":      {"type": "keyword"},
      "pid":       {"type": "integer"},
      "plan":      {"type": "object", "enabled": false}
    }
  }
}`

// requiredFields are the mapped types Before, Prune and LoadPlan rely on;
// Ensure refuses an existing index that maps them otherwise (for example
// one created by dynamic mapping).
var requiredFields = map[string]string{
	"kind":      "keyword",
	"group":     "keyword",
	"topic":     "keyword",
	"index":     "keyword",
	"partition": "integer",
	"offset":    "long",
	"time":      "date",
	"topic_id":  "keyword",
	"complete":  "boolean",
}

// addedFields are required fields a checkpoint index created by an earlier
// version lacks; Ensure adds them to its mapping (adding a field is
// compatible). Documents written before have neither, so Before never
// trusts them.
var addedFields = map[string]bool{"topic_id": true, "complete": true}

// Checkpoint says that at Time, consumer group Group had durably written
// into index Index every record of Topic's partition Partition from where
// the group began up to Offset; when Complete, the group began at (or
// continues a lineage that began at) the log start, so Index held every
// record below Offset.
type Checkpoint struct {
	// Group is the consumer group whose commit this is.
	Group string
	// Topic is the Kafka topic.
	Topic string
	// TopicID is the Kafka topic ID ("" if the brokers report none): a
	// topic deleted and created again under the same name has a new one,
	// and checkpoints of the old topic say nothing about the new.
	TopicID string
	// Complete reports that the group's coverage of the partition is
	// complete from the log start: every record below Offset is in Index,
	// not only those the group wrote since it started mid-stream. Only
	// complete checkpoints are used by Before; see the package
	// documentation for when a writer may set it.
	Complete bool
	// Index is the OpenSearch index the group writes.
	Index string
	// Partition is the topic partition.
	Partition int32
	// Offset is the committed offset: the next record to read; every
	// record below it is durable in Index.
	Offset int64
	// Time is the wall-clock time of the checkpoint (stored with
	// millisecond precision, rounded up).
	Time time.Time
	// Host is the writer's host name (optional).
	Host string
	// PID is the writer's process id (optional).
	PID int
}

// doc is a document of the checkpoint index, either kind.
type doc struct {
	Kind      string          `json:"kind"`
	Group     string          `json:"group"`
	Topic     string          `json:"topic"`
	Index     string          `json:"index"`
	Partition *int32          `json:"partition,omitempty"`
	Offset    *int64          `json:"offset,omitempty"`
	TopicID   string          `json:"topic_id,omitempty"`
	Complete  *bool           `json:"complete,omitempty"`
	Time      string          `json:"time"`
	Host      string          `json:"host,omitempty"`
	PID       int             `json:"pid,omitempty"`
	Plan      json.RawMessage `json:"plan,omitempty"`
}

// Store reads and writes the checkpoint index of one cluster. It is safe
// for concurrent use.
type Store struct {
	client  *opensearchapi.Client
	index   string
	ensured atomic.Bool
}

// NewStore returns a Store for the checkpoint index named index (DefaultIndex
// if empty) in client's cluster. It does not contact the cluster.
func NewStore(client *opensearchapi.Client, index string) *Store {
	if index == "" {
		index = DefaultIndex
	}
	return &Store{client: client, index: index}
}

// Index returns the checkpoint index's name.
func (s *Store) Index() string { return s.index }

// Ensure creates the checkpoint index with its explicit mapping if it does
// not exist. A concurrent creator winning the race is fine. An existing
// index whose mapping does not give the fields the types the history relies
// on is an error.
func (s *Store) Ensure(ctx context.Context) error {
	res, err := s.client.Indices.Exists(ctx, opensearchapi.IndicesExistsReq{Indices: []string{s.index}})
	status := 0
	if res != nil {
		status = res.StatusCode
	}
	switch {
	case status == http.StatusOK:
		if err := s.checkMapping(ctx); err != nil {
			return err
		}
		s.ensured.Store(true)
		return nil
	case status == http.StatusNotFound:
	case err != nil:
		return fmt.Errorf("check checkpoint index %s: %w", s.index, err)
	default:
		return fmt.Errorf("check checkpoint index %s: unexpected HTTP %d", s.index, status)
	}
	_, err = s.client.Indices.Create(ctx, opensearchapi.IndicesCreateReq{Index: s.index, Body: strings.NewReader(indexBody)})
	if err != nil {
		if _, typ := errorInfo(err); typ != "resource_already_exists_exception" {
			return fmt.Errorf("create checkpoint index %s: %w", s.index, err)
		}
		// Someone else created it between our check and our create.
		if err := s.checkMapping(ctx); err != nil {
			return err
		}
	}
	s.ensured.Store(true)
	return nil
}

// checkMapping verifies that the existing index (or every index behind the
// alias) maps the required fields with the required types, and adds the
// fields an index created by an earlier version lacks.
func (s *Store) checkMapping(ctx context.Context) error {
	data, err := perform(ctx, s.client, http.MethodGet, "/"+url.PathEscape(s.index)+"/_mapping", nil)
	if err != nil {
		return fmt.Errorf("read mapping of checkpoint index %s: %w", s.index, err)
	}
	missing, err := checkMappingBody(s.index, data)
	if err != nil || len(missing) == 0 {
		return err
	}
	props := map[string]any{}
	for _, f := range missing {
		props[f] = map[string]string{"type": requiredFields[f]}
	}
	body, err := json.Marshal(map[string]any{"properties": props})
	if err != nil {
		return fmt.Errorf("extend mapping of checkpoint index %s: %w", s.index, err)
	}
	if _, err := perform(ctx, s.client, http.MethodPut, "/"+url.PathEscape(s.index)+"/_mapping", body); err != nil {
		return fmt.Errorf("extend mapping of checkpoint index %s with %s: %w", s.index, strings.Join(missing, ", "), err)
	}
	return nil
}

// checkMappingBody checks a GET _mapping answer; see checkMapping. It
// returns the fields of addedFields that are unmapped (to be added).
func checkMappingBody(index string, data []byte) ([]string, error) {
	var ans map[string]struct {
		Mappings struct {
			Properties map[string]struct {
				Type string `json:"type"`
			} `json:"properties"`
		} `json:"mappings"`
	}
	if err := json.Unmarshal(data, &ans); err != nil {
		return nil, fmt.Errorf("read mapping of checkpoint index %s: %w", index, err)
	}
	var problems []string
	missing := map[string]bool{}
	for concrete, m := range ans {
		for field, want := range requiredFields {
			got := m.Mappings.Properties[field].Type
			if got == "" && addedFields[field] {
				missing[field] = true
				continue
			}
			if got == "" {
				got = "unmapped"
			}
			if got != want {
				where := ""
				if concrete != index { // index is an alias
					where = concrete + ": "
				}
				problems = append(problems, fmt.Sprintf("%sfield %s is %s, want %s", where, field, got, want))
			}
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, fmt.Errorf("checkpoint index %s has an incompatible mapping (%s); delete it or choose another checkpoint index",
			index, strings.Join(problems, "; "))
	}
	out := make([]string, 0, len(missing))
	for f := range missing {
		out = append(out, f)
	}
	sort.Strings(out)
	return out, nil
}

// ensureOnce runs Ensure unless it already succeeded on this Store, so that
// writes never let dynamic mapping create the index.
func (s *Store) ensureOnce(ctx context.Context) error {
	if s.ensured.Load() {
		return nil
	}
	return s.Ensure(ctx)
}

// Write stores cps in one bulk request (no refresh). Each checkpoint's time
// is rounded up to the millisecond; its document id is derived from group,
// topic, topic ID, index, partition and offset (see Checkpoint.ID), so a new
// offset is a new document and never replaces an earlier checkpoint, and
// writing the same offset again only moves its time later (the fact stays
// true, and a later time is only more conservative). The index is created
// first if this Store has not yet ensured it.
func (s *Store) Write(ctx context.Context, cps []Checkpoint) error {
	if len(cps) == 0 {
		return nil
	}
	var body bytes.Buffer
	for _, cp := range cps {
		if err := cp.validate(); err != nil {
			return fmt.Errorf("write checkpoints to %s: %w", s.index, err)
		}
		action := map[string]map[string]string{"index": {"_index": s.index, "_id": cp.ID()}}
		if err := json.NewEncoder(&body).Encode(action); err != nil {
			return fmt.Errorf("write checkpoints to %s: encode action: %w", s.index, err)
		}
		if err := json.NewEncoder(&body).Encode(cp.doc()); err != nil {
			return fmt.Errorf("write checkpoints to %s: encode checkpoint: %w", s.index, err)
		}
	}
	if err := s.ensureOnce(ctx); err != nil {
		return fmt.Errorf("write checkpoints to %s: %w", s.index, err)
	}
	res, err := s.client.Bulk(ctx, opensearchapi.BulkReq{Body: &body})
	if err != nil {
		return fmt.Errorf("write checkpoints to %s: %w", s.index, err)
	}
	// A 200 bulk answer can hold failed items; check every one.
	failed, first := 0, ""
	for _, item := range res.Items {
		for _, it := range item {
			if it.Error != nil || it.Status < 200 || it.Status > 299 {
				failed++
				if first == "" {
					if it.Error != nil {
						first = fmt.Sprintf("id %s: HTTP %d %s: %s", it.ID, it.Status, it.Error.Type, it.Error.Reason)
					} else {
						first = fmt.Sprintf("id %s: HTTP %d", it.ID, it.Status)
					}
				}
			}
		}
	}
	if failed > 0 || len(res.Items) != len(cps) {
		return fmt.Errorf("write checkpoints to %s: %d of %d items failed (answer has %d items), first: %s",
			s.index, failed, len(cps), len(res.Items), first)
	}
	return nil
}

// Prune deletes the checkpoints older than olderThan (plans are kept),
// refreshing the index first so that every one written is considered. A
// missing index is not an error.
func (s *Store) Prune(ctx context.Context, olderThan time.Time) error {
	_, err := s.prune(ctx, olderThan)
	return err
}

// prune is Prune, returning how many checkpoints it deleted.
func (s *Store) prune(ctx context.Context, olderThan time.Time) (int, error) {
	// delete_by_query sees only refreshed documents.
	if _, err := s.client.Indices.Refresh(ctx, &opensearchapi.IndicesRefreshReq{Index: []string{s.index}}); err != nil {
		if isNotFound(err) {
			return 0, nil
		}
		return 0, fmt.Errorf("refresh checkpoint index %s: %w", s.index, err)
	}
	body, err := json.Marshal(map[string]any{
		"query": map[string]any{"bool": map[string]any{"filter": []any{
			term("kind", kindCheckpoint),
			map[string]any{"range": map[string]any{"time": map[string]any{"lt": olderThan.UnixMilli(), "format": "epoch_millis"}}},
		}}},
	})
	if err != nil {
		return 0, fmt.Errorf("prune checkpoints in %s: encode query: %w", s.index, err)
	}
	res, err := s.client.Document.DeleteByQuery(ctx, opensearchapi.DocumentDeleteByQueryReq{
		Indices: []string{s.index},
		Body:    bytes.NewReader(body),
		// A concurrent writer may replace a document being deleted; that
		// one is recent, so skipping it is right.
		Params: opensearchapi.DocumentDeleteByQueryParams{Conflicts: "proceed"},
	})
	if err != nil {
		if isNotFound(err) {
			return 0, nil
		}
		return 0, fmt.Errorf("prune checkpoints older than %s in %s: %w", olderThan.UTC().Format(TimeLayout), s.index, err)
	}
	if len(res.Failures) > 0 || res.TimedOut {
		return res.Deleted, fmt.Errorf("prune checkpoints older than %s in %s: %d failures (timed out: %v), %d deleted",
			olderThan.UTC().Format(TimeLayout), s.index, len(res.Failures), res.TimedOut, res.Deleted)
	}
	return res.Deleted, nil
}

// Query selects checkpoints for Search.
type Query struct {
	// Topic, TopicID and Index select the history (required; TopicID is
	// matched exactly, so checkpoints of an earlier topic of the same name,
	// or written before topic IDs were recorded, never match).
	Topic, TopicID, Index string
	// Group, if not empty, keeps only that group's checkpoints.
	Group string
	// Before, if not zero, keeps only checkpoints with a time before it.
	Before time.Time
	// CompleteOnly keeps only complete checkpoints.
	CompleteOnly bool
}

// Before returns, for each partition of topic (with topic ID topicID), the
// complete checkpoint with the greatest offset among those recorded for
// topic and index, by any group, with a time before t. Any group counts
// once its checkpoint is complete: it states that index held every record
// below its offset at its time, whoever wrote them. Incomplete checkpoints
// (a group that started mid-stream vouches only for what it wrote) and
// checkpoints of another topic ID are never used. Partitions with no such
// checkpoint are absent from the map; a missing checkpoint index gives an
// empty map. It refreshes the checkpoint index first, so every Write that
// returned before the call is seen.
func (s *Store) Before(ctx context.Context, topic, topicID, index string, t time.Time) (map[int32]Checkpoint, error) {
	return s.Search(ctx, Query{Topic: topic, TopicID: topicID, Index: index, Before: t, CompleteOnly: true})
}

// Search returns, for each partition, the checkpoint with the greatest
// offset (the latest among equal offsets) that q selects. A missing
// checkpoint index gives an empty map. It refreshes the index first.
func (s *Store) Search(ctx context.Context, q Query) (map[int32]Checkpoint, error) {
	out := map[int32]Checkpoint{}
	if _, err := s.client.Indices.Refresh(ctx, &opensearchapi.IndicesRefreshReq{Index: []string{s.index}}); err != nil {
		if isNotFound(err) {
			return out, nil
		}
		return nil, fmt.Errorf("refresh checkpoint index %s: %w", s.index, err)
	}
	var after json.RawMessage
	for {
		body, err := searchQuery(q, after)
		if err != nil {
			return nil, fmt.Errorf("read checkpoints of %s/%s from %s: %w", q.Topic, q.Index, s.index, err)
		}
		res, err := s.client.Search(ctx, &opensearchapi.SearchReq{Indices: []string{s.index}, Body: bytes.NewReader(body)})
		if err != nil {
			if isNotFound(err) {
				return out, nil
			}
			return nil, fmt.Errorf("read checkpoints of %s/%s from %s: %w", q.Topic, q.Index, s.index, err)
		}
		if err := shardsError(res.Shards, res.Timeout); err != nil {
			return nil, fmt.Errorf("read checkpoints of %s/%s from %s: %w", q.Topic, q.Index, s.index, err)
		}
		page, next, err := parseBefore(res.Aggregations)
		if err != nil {
			return nil, fmt.Errorf("read checkpoints of %s/%s from %s: %w", q.Topic, q.Index, s.index, err)
		}
		for _, cp := range page {
			out[cp.Partition] = cp
		}
		if len(page) < compositePage || next == nil {
			return out, nil
		}
		after = next
	}
}

// beforeQuery builds one page of Before's search; see searchQuery.
func beforeQuery(topic, topicID, index string, t time.Time, after json.RawMessage) ([]byte, error) {
	return searchQuery(Query{Topic: topic, TopicID: topicID, Index: index, Before: t, CompleteOnly: true}, after)
}

// searchQuery builds one page of Search: the checkpoints q selects,
// grouped by partition (composite aggregation, paged by after), keeping the
// one with the greatest offset. top_hits sorts on the long field itself,
// exact for every int64 (a max aggregation would be a double, exact only
// below 2^53).
func searchQuery(q Query, after json.RawMessage) ([]byte, error) {
	composite := map[string]any{
		"size":    compositePage,
		"sources": []any{map[string]any{"partition": map[string]any{"terms": map[string]any{"field": "partition"}}}},
	}
	if after != nil {
		composite["after"] = after
	}
	filter := []any{
		term("kind", kindCheckpoint),
		term("topic", q.Topic),
		term("index", q.Index),
	}
	if q.TopicID != "" {
		filter = append(filter, term("topic_id", q.TopicID))
	} else {
		// No topic ID known: only checkpoints written without one.
		filter = append(filter, map[string]any{"bool": map[string]any{"must_not": map[string]any{"exists": map[string]any{"field": "topic_id"}}}})
	}
	if q.Group != "" {
		filter = append(filter, term("group", q.Group))
	}
	if q.CompleteOnly {
		filter = append(filter, map[string]any{"term": map[string]any{"complete": true}})
	}
	if !q.Before.IsZero() {
		// Stored times are whole milliseconds s; s < t ⇔ s < ceil(t).
		filter = append(filter, map[string]any{"range": map[string]any{"time": map[string]any{"lt": ceilMilli(q.Before).UnixMilli(), "format": "epoch_millis"}}})
	}
	return json.Marshal(map[string]any{
		"size":             0,
		"track_total_hits": false,
		"query":            map[string]any{"bool": map[string]any{"filter": filter}},
		"aggs": map[string]any{"partitions": map[string]any{
			"composite": composite,
			"aggs": map[string]any{"best": map[string]any{"top_hits": map[string]any{
				"size": 1,
				"sort": []any{
					map[string]any{"offset": map[string]any{"order": "desc"}},
					map[string]any{"time": map[string]any{"order": "desc"}},
				},
			}}},
		}},
	})
}

// parseBefore reads one page of Before's aggregation: the best checkpoint
// per partition and the after_key of the next page.
func parseBefore(aggs json.RawMessage) ([]Checkpoint, json.RawMessage, error) {
	var ans struct {
		Partitions *struct {
			AfterKey json.RawMessage `json:"after_key"`
			Buckets  []struct {
				Best struct {
					Hits struct {
						Hits []struct {
							ID     string          `json:"_id"`
							Source json.RawMessage `json:"_source"`
						} `json:"hits"`
					} `json:"hits"`
				} `json:"best"`
			} `json:"buckets"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal(aggs, &ans); err != nil {
		return nil, nil, fmt.Errorf("decode aggregation: %w", err)
	}
	if ans.Partitions == nil {
		return nil, nil, errors.New("answer has no partitions aggregation")
	}
	var out []Checkpoint
	for _, b := range ans.Partitions.Buckets {
		if len(b.Best.Hits.Hits) == 0 {
			continue
		}
		h := b.Best.Hits.Hits[0]
		cp, err := decodeCheckpoint(h.Source)
		if err != nil {
			return nil, nil, fmt.Errorf("checkpoint %s: %w", h.ID, err)
		}
		out = append(out, cp)
	}
	return out, ans.Partitions.AfterKey, nil
}

// term is a term query.
func term(field, value string) map[string]any {
	return map[string]any{"term": map[string]any{field: value}}
}

// validate rejects checkpoints that cannot be stored meaningfully.
func (cp Checkpoint) validate() error {
	switch {
	case cp.Group == "" || cp.Topic == "" || cp.Index == "":
		return fmt.Errorf("checkpoint needs group, topic and index (got %q, %q, %q)", cp.Group, cp.Topic, cp.Index)
	case cp.Partition < 0:
		return fmt.Errorf("checkpoint of %s: negative partition %d", cp.Topic, cp.Partition)
	case cp.Offset < 0:
		return fmt.Errorf("checkpoint of %s/%d: negative offset %d", cp.Topic, cp.Partition, cp.Offset)
	case cp.Time.IsZero():
		return fmt.Errorf("checkpoint of %s/%d: zero time", cp.Topic, cp.Partition)
	}
	return nil
}

// ID returns the checkpoint's document id: a hash of group, topic, topic ID
// and index, the partition and the offset. One document per offset: a
// writer writes a partition only when its offset moved, so the history
// grows by at most one document per partition and writer interval while
// the partition moves (pruned by retention), and no later write can replace
// an earlier checkpoint that a snapshot's cutoff needs.
func (cp Checkpoint) ID() string {
	return fmt.Sprintf("cp-%s-p%d-o%d", keyHash(cp.Group, cp.Topic, cp.TopicID, cp.Index), cp.Partition, cp.Offset)
}

// doc returns the stored form of cp.
func (cp Checkpoint) doc() doc {
	p, o, c := cp.Partition, cp.Offset, cp.Complete
	return doc{
		Kind: kindCheckpoint, Group: cp.Group, Topic: cp.Topic, Index: cp.Index,
		Partition: &p, Offset: &o, TopicID: cp.TopicID, Complete: &c, Time: formatTime(cp.Time), Host: cp.Host, PID: cp.PID,
	}
}

// decodeCheckpoint reads a checkpoint document's _source.
func decodeCheckpoint(src json.RawMessage) (Checkpoint, error) {
	var d doc
	if err := json.Unmarshal(src, &d); err != nil {
		return Checkpoint{}, fmt.Errorf("decode: %w", err)
	}
	if d.Kind != kindCheckpoint || d.Partition == nil || d.Offset == nil {
		return Checkpoint{}, fmt.Errorf("not a checkpoint (kind %q)", d.Kind)
	}
	t, err := time.Parse(time.RFC3339Nano, d.Time)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("time %q: %w", d.Time, err)
	}
	return Checkpoint{
		Group: d.Group, Topic: d.Topic, TopicID: d.TopicID, Complete: d.Complete != nil && *d.Complete,
		Index: d.Index, Partition: *d.Partition, Offset: *d.Offset, Time: t.UTC(), Host: d.Host, PID: d.PID,
	}, nil
}

// keyHash is a short stable hash of parts, for document ids (names can be
// long and hold any character; ids are limited to 512 bytes).
func keyHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write([]byte{':'})
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// ceilMilli rounds t up to the next whole millisecond (a checkpoint's time
// may only move later: the fact it states stays true).
func ceilMilli(t time.Time) time.Time {
	if r := t.Truncate(time.Millisecond); !r.Equal(t) {
		return r.Add(time.Millisecond)
	}
	return t
}

// formatTime renders t as stored: UTC, milliseconds, rounded up.
func formatTime(t time.Time) string {
	return ceilMilli(t).UTC().Format(TimeLayout)
}
