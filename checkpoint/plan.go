package checkpoint

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
)

// planID is the document id of the plan of group, topic and index.
func planID(group, topic, index string) string {
	return "plan-" + keyHash(group, topic, index)
}

// Plan is a stored replay plan: its owner (group, topic, index), when it
// was made, and its body, the planner's own JSON, which this package stores
// and returns untouched (the storage does not depend on what a plan holds).
type Plan struct {
	Group, Topic, Index string
	// Created is when the plan was made.
	Created time.Time
	// Body is the plan as JSON.
	Body json.RawMessage
}

// SavePlan stores plan as the replay plan of its group, topic and index,
// replacing any earlier one. The document is readable by LoadPlan as soon
// as SavePlan returns (gets are real-time).
func (s *Store) SavePlan(ctx context.Context, plan Plan) error {
	if plan.Group == "" || plan.Topic == "" || plan.Index == "" {
		return fmt.Errorf("save replay plan to %s: plan needs group, topic and index (got %q, %q, %q)", s.index, plan.Group, plan.Topic, plan.Index)
	}
	if !json.Valid(plan.Body) {
		return fmt.Errorf("save replay plan to %s: the plan body is not JSON", s.index)
	}
	created := plan.Created
	if created.IsZero() {
		created = time.Now()
	}
	body, err := json.Marshal(doc{Kind: kindPlan, Group: plan.Group, Topic: plan.Topic, Index: plan.Index, Time: formatTime(created), Plan: plan.Body})
	if err != nil {
		return fmt.Errorf("save replay plan to %s: encode document: %w", s.index, err)
	}
	if err := s.ensureOnce(ctx); err != nil {
		return fmt.Errorf("save replay plan to %s: %w", s.index, err)
	}
	id := planID(plan.Group, plan.Topic, plan.Index)
	if _, err := s.client.Index(ctx, opensearchapi.IndexReq{Index: s.index, DocumentID: id, Body: bytes.NewReader(body)}); err != nil {
		return fmt.Errorf("save replay plan of group %s, topic %s, index %s to %s: %w", plan.Group, plan.Topic, plan.Index, s.index, err)
	}
	return nil
}

// LoadPlan returns the replay plan SavePlan stored for group, topic and
// index; ok is false when there is none (or no checkpoint index).
func (s *Store) LoadPlan(ctx context.Context, group, topic, index string) (plan Plan, ok bool, err error) {
	id := planID(group, topic, index)
	res, err := s.client.Document.Get(ctx, opensearchapi.DocumentGetReq{Index: s.index, DocumentID: id})
	if err != nil {
		if isNotFound(err) {
			return Plan{}, false, nil
		}
		return Plan{}, false, fmt.Errorf("load replay plan of group %s, topic %s, index %s from %s: %w", group, topic, index, s.index, err)
	}
	if !res.Found {
		return Plan{}, false, nil
	}
	plan, err = decodePlan(res.Source, group, topic, index)
	if err != nil {
		return Plan{}, false, fmt.Errorf("load replay plan %s from %s: %w", id, s.index, err)
	}
	return plan, true, nil
}

// decodePlan reads a plan document's _source and checks that it is the plan
// of group, topic and index.
func decodePlan(src json.RawMessage, group, topic, index string) (Plan, error) {
	var d doc
	if err := json.Unmarshal(src, &d); err != nil {
		return Plan{}, fmt.Errorf("decode: %w", err)
	}
	if d.Kind != kindPlan || len(d.Plan) == 0 {
		return Plan{}, fmt.Errorf("not a plan (kind %q)", d.Kind)
	}
	if d.Group != group || d.Topic != topic || d.Index != index {
		return Plan{}, fmt.Errorf("document is the plan of group %s, topic %s, index %s", d.Group, d.Topic, d.Index)
	}
	created, err := time.Parse(time.RFC3339Nano, d.Time)
	if err != nil {
		return Plan{}, fmt.Errorf("time %q: %w", d.Time, err)
	}
	return Plan{Group: d.Group, Topic: d.Topic, Index: d.Index, Created: created.UTC(), Body: d.Plan}, nil
}

// DeletePlan removes the replay plan of group, topic and index. A completed
// replay keeps its plan, so running it again with the same group resumes it
// and finds nothing left to do (a new replay takes a new group); `reindexer
// replay` deletes a plan it stored when seeding its group then fails. A
// missing plan or index is not an error.
func (s *Store) DeletePlan(ctx context.Context, group, topic, index string) error {
	id := planID(group, topic, index)
	if _, err := s.client.Document.Delete(ctx, opensearchapi.DocumentDeleteReq{Index: s.index, DocumentID: id}); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete replay plan of group %s, topic %s, index %s from %s: %w", group, topic, index, s.index, err)
	}
	return nil
}
