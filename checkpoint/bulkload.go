package checkpoint

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
)

// kindBulkLoad marks the document that keeps the index settings a bulk
// load (replay --bulk-load) replaced, until they are restored.
const kindBulkLoad = "bulkload"

// BulkLoad records that a replay of Group from Topic changed the settings
// of the concrete indices behind Index for a bulk load, and what they were
// before: so that they are restored at the end even when the process that
// changed them was killed and a later run resumes the replay.
type BulkLoad struct {
	Group, Topic, Index string
	// Originals maps each concrete index to its settings before the load
	// (each value is the JSON its caller stored, e.g. refresh_interval and
	// number_of_replicas; this package keeps it untouched).
	Originals json.RawMessage
	// Time is when the settings were changed.
	Time time.Time
}

type bulkLoadDoc struct {
	Kind      string          `json:"kind"`
	Group     string          `json:"group"`
	Topic     string          `json:"topic"`
	Index     string          `json:"index"`
	Time      string          `json:"time"`
	Originals json.RawMessage `json:"plan"` // stored in the unindexed object field
}

func bulkLoadID(group, topic, index string) string {
	return "bulkload-" + keyHash(kindBulkLoad, group, topic, index)
}

// SaveBulkLoad stores b, replacing an earlier record of its group, topic
// and index. It is readable by LoadBulkLoad as soon as it returns.
func (s *Store) SaveBulkLoad(ctx context.Context, b BulkLoad) error {
	if b.Group == "" || b.Topic == "" || b.Index == "" || !json.Valid(b.Originals) {
		return fmt.Errorf("save bulk-load settings to %s: need group, topic, index and the original settings as JSON", s.index)
	}
	if b.Time.IsZero() {
		b.Time = time.Now()
	}
	body, err := json.Marshal(bulkLoadDoc{Kind: kindBulkLoad, Group: b.Group, Topic: b.Topic, Index: b.Index, Time: formatTime(b.Time), Originals: b.Originals})
	if err != nil {
		return fmt.Errorf("save bulk-load settings to %s: %w", s.index, err)
	}
	if err := s.ensureOnce(ctx); err != nil {
		return fmt.Errorf("save bulk-load settings to %s: %w", s.index, err)
	}
	if _, err := s.client.Index(ctx, opensearchapi.IndexReq{Index: s.index, DocumentID: bulkLoadID(b.Group, b.Topic, b.Index), Body: bytes.NewReader(body)}); err != nil {
		return fmt.Errorf("save bulk-load settings of %s to %s: %w", b.Index, s.index, err)
	}
	return nil
}

// LoadBulkLoad returns the record SaveBulkLoad stored for group, topic and
// index; ok is false when there is none (or no checkpoint index).
func (s *Store) LoadBulkLoad(ctx context.Context, group, topic, index string) (b BulkLoad, ok bool, err error) {
	res, err := s.client.Document.Get(ctx, opensearchapi.DocumentGetReq{Index: s.index, DocumentID: bulkLoadID(group, topic, index)})
	if err != nil {
		if isNotFound(err) {
			return BulkLoad{}, false, nil
		}
		return BulkLoad{}, false, fmt.Errorf("load bulk-load settings of %s from %s: %w", index, s.index, err)
	}
	if !res.Found {
		return BulkLoad{}, false, nil
	}
	var d bulkLoadDoc
	if err := json.Unmarshal(res.Source, &d); err != nil || d.Kind != kindBulkLoad {
		return BulkLoad{}, false, fmt.Errorf("load bulk-load settings of %s from %s: not a bulk-load record (%v)", index, s.index, err)
	}
	t, _ := time.Parse(time.RFC3339Nano, d.Time)
	return BulkLoad{Group: d.Group, Topic: d.Topic, Index: d.Index, Originals: d.Originals, Time: t}, true, nil
}

// DeleteBulkLoad removes the record of group, topic and index, once the
// settings are restored. A missing record is not an error.
func (s *Store) DeleteBulkLoad(ctx context.Context, group, topic, index string) error {
	_, err := s.client.Document.Delete(ctx, opensearchapi.DocumentDeleteReq{Index: s.index, DocumentID: bulkLoadID(group, topic, index)})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("delete bulk-load settings of %s from %s: %w", index, s.index, err)
	}
	return nil
}
