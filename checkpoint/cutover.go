package checkpoint

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
)

// kindCutover marks the document that records an alias's last cutover.
const kindCutover = "cutover"

// AliasSettings are an alias's settings on one index, as GET _alias shows
// them and an _aliases add action takes them.
type AliasSettings struct {
	// Filter is the alias's query filter (nil: none).
	Filter json.RawMessage `json:"filter,omitempty"`
	// IndexRouting routes writes through the alias.
	IndexRouting string `json:"index_routing,omitempty"`
	// SearchRouting routes searches through the alias.
	SearchRouting string `json:"search_routing,omitempty"`
	// IsWriteIndex marks the index that takes the alias's writes.
	IsWriteIndex *bool `json:"is_write_index,omitempty"`
	// IsHidden hides the alias from wildcard expressions.
	IsHidden *bool `json:"is_hidden,omitempty"`
}

// Cutover records one move of an alias from one index to another, so that
// it can be undone.
type Cutover struct {
	// Alias is the alias moved.
	Alias string `json:"alias"`
	// From is the index the alias pointed at before.
	From string `json:"from"`
	// To is the index the alias was moved to.
	To string `json:"to"`
	// Settings are the alias's settings on From, carried over to To and
	// restored on From by a rollback.
	Settings AliasSettings `json:"settings"`
	// Parity summarises the check that allowed the move.
	Parity string `json:"parity,omitempty"`
	// Time is when the move was recorded (just before it was made).
	Time time.Time `json:"time"`
	// Host and PID identify the process that made it.
	Host string `json:"host,omitempty"`
	PID  int    `json:"pid,omitempty"`
	// RolledBack is when the move was undone (nil while it stands).
	RolledBack *time.Time `json:"rolled_back,omitempty"`
}

// cutoverDoc is the stored form of a Cutover. The index field holds the
// alias (a mapped keyword, so the records can be searched); the record
// itself is kept in _source only.
type cutoverDoc struct {
	Kind    string  `json:"kind"`
	Index   string  `json:"index"`
	Time    string  `json:"time"`
	Host    string  `json:"host,omitempty"`
	PID     int     `json:"pid,omitempty"`
	Cutover Cutover `json:"cutover"`
}

// cutoverID is the document id of alias's cutover record: one per alias,
// the last cutover replacing the one before.
func cutoverID(alias string) string {
	return "cutover-" + keyHash(kindCutover, alias)
}

// SaveCutover stores c as the last cutover of c.Alias, replacing any
// earlier record of that alias. The record is readable by LoadCutover as
// soon as SaveCutover returns (gets are real-time). The checkpoint index is
// created first if this Store has not yet ensured it.
func (s *Store) SaveCutover(ctx context.Context, c Cutover) error {
	if c.Alias == "" || c.From == "" || c.To == "" {
		return fmt.Errorf("save cutover to %s: a cutover needs alias, from and to (got %q, %q, %q)", s.index, c.Alias, c.From, c.To)
	}
	if c.Time.IsZero() {
		c.Time = time.Now()
	}
	c.Time = c.Time.UTC()
	body, err := json.Marshal(cutoverDoc{Kind: kindCutover, Index: c.Alias, Time: formatTime(c.Time), Host: c.Host, PID: c.PID, Cutover: c})
	if err != nil {
		return fmt.Errorf("save cutover of alias %s to %s: encode: %w", c.Alias, s.index, err)
	}
	if err := s.ensureOnce(ctx); err != nil {
		return fmt.Errorf("save cutover of alias %s to %s: %w", c.Alias, s.index, err)
	}
	if _, err := s.client.Index(ctx, opensearchapi.IndexReq{Index: s.index, DocumentID: cutoverID(c.Alias), Body: bytes.NewReader(body)}); err != nil {
		return fmt.Errorf("save cutover of alias %s to %s: %w", c.Alias, s.index, err)
	}
	return nil
}

// LoadCutover returns the last cutover recorded for alias; ok is false
// when there is none (or no checkpoint index).
func (s *Store) LoadCutover(ctx context.Context, alias string) (c Cutover, ok bool, err error) {
	res, err := s.client.Document.Get(ctx, opensearchapi.DocumentGetReq{Index: s.index, DocumentID: cutoverID(alias)})
	if err != nil {
		if isNotFound(err) {
			return Cutover{}, false, nil
		}
		return Cutover{}, false, fmt.Errorf("load cutover of alias %s from %s: %w", alias, s.index, err)
	}
	if !res.Found {
		return Cutover{}, false, nil
	}
	c, err = decodeCutover(res.Source, alias)
	if err != nil {
		return Cutover{}, false, fmt.Errorf("load cutover of alias %s from %s: %w", alias, s.index, err)
	}
	return c, true, nil
}

// decodeCutover reads a cutover record's _source and checks that it is the
// record of alias.
func decodeCutover(src json.RawMessage, alias string) (Cutover, error) {
	var d cutoverDoc
	if err := json.Unmarshal(src, &d); err != nil {
		return Cutover{}, fmt.Errorf("decode: %w", err)
	}
	switch {
	case d.Kind != kindCutover:
		return Cutover{}, fmt.Errorf("not a cutover record (kind %q)", d.Kind)
	case d.Cutover.Alias != alias || d.Index != alias:
		return Cutover{}, fmt.Errorf("the record is of alias %q", d.Cutover.Alias)
	case d.Cutover.From == "" || d.Cutover.To == "":
		return Cutover{}, errors.New("the record names no from or to index")
	}
	return d.Cutover, nil
}
