package indexer

import (
	"slices"
	"strconv"

	"github.com/reindexer/reindexer/event"
)

// Result is the final outcome of one item of a bulk.
type Result uint8

// Item outcomes. Every outcome but Pending and Abandoned is durable: the
// offset of its record may be committed.
const (
	Pending   Result = iota // not yet final
	Created                 // new document (or tombstone document) written
	Updated                 // existing document replaced by a newer version
	Deleted                 // document deleted (delete mode)
	NotFound                // delete of a document that did not exist; the versioned tombstone is recorded
	Stale                   // 409: the index holds a newer version; nothing to do
	Duplicate               // 409: the index holds this exact version; nothing to do
	Permanent               // rejected for good (mapping or parsing error): dead-letter it
	Abandoned               // given up because its partition was revoked; not durable
)

var resultNames = [...]string{"pending", "created", "updated", "deleted", "not_found", "stale", "duplicate", "permanent", "abandoned"}

// String returns the result's metric label.
func (r Result) String() string {
	if int(r) < len(resultNames) {
		return resultNames[r]
	}
	return "result(" + strconv.Itoa(int(r)) + ")"
}

// Item is one document operation of a Batch.
type Item struct {
	Op      event.Op
	Version int64
	Result  Result
	// Error type and reason from OpenSearch for Permanent items (and the last
	// retryable failure while Pending).
	ErrType, ErrReason string

	start, end int // span of the item's lines in the batch body
	tombstone  bool
}

// Batch is a bulk request body under construction: NDJSON action and source
// lines appended as events arrive, plus one Item per event in the same order.
// Reuse a Batch with Reset to keep its buffers.
type Batch struct {
	buf   []byte
	Items []Item
}

// Len returns the number of items.
func (b *Batch) Len() int { return len(b.Items) }

// Size returns the body size in bytes.
func (b *Batch) Size() int { return len(b.buf) }

// Grow makes room for n more body bytes without reallocating.
func (b *Batch) Grow(n int) { b.buf = slices.Grow(b.buf, n) }

// Reset empties the batch and keeps its memory.
func (b *Batch) Reset() {
	b.buf = b.buf[:0]
	clear(b.Items)
	b.Items = b.Items[:0]
}

// Body returns the NDJSON body. It aliases the batch.
func (b *Batch) Body() []byte { return b.buf }

// ItemBody returns the action (and source) lines of item i.
func (b *Batch) ItemBody(i int) []byte { return b.buf[b.Items[i].start:b.Items[i].end] }

// add appends one event, rendered by the Indexer's settings.
func (b *Batch) add(ev *event.Event, versionType string, tombstoneDoc []byte, deleteMode DeleteMode) int {
	start := len(b.buf)
	tomb := ev.Op == event.Delete && deleteMode == Tombstone
	if ev.Op == event.Delete && !tomb {
		b.buf = append(b.buf, `{"delete":{"_id":"`...)
	} else {
		b.buf = append(b.buf, `{"index":{"_id":"`...)
	}
	b.buf = append(b.buf, ev.ID...)
	b.buf = append(b.buf, `","version":`...)
	b.buf = strconv.AppendInt(b.buf, ev.Version, 10)
	b.buf = append(b.buf, `,"version_type":"`...)
	b.buf = append(b.buf, versionType...)
	b.buf = append(b.buf, '"')
	if ev.Routing != nil {
		b.buf = append(b.buf, `,"routing":"`...)
		b.buf = append(b.buf, ev.Routing...)
		b.buf = append(b.buf, '"')
	}
	b.buf = append(b.buf, "}}\n"...)
	switch {
	case tomb:
		b.buf = append(b.buf, tombstoneDoc...)
		b.buf = append(b.buf, '\n')
	case ev.Op != event.Delete:
		b.buf = append(b.buf, ev.Doc...)
		b.buf = append(b.buf, '\n')
	}
	b.Items = append(b.Items, Item{Op: ev.Op, Version: ev.Version, start: start, end: len(b.buf), tombstone: tomb})
	return len(b.Items) - 1
}
