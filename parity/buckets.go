package parity

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/reindexer/reindexer/internal/osreq"
)

// bucketSpec is a parsed Config.Bucket.
type bucketSpec struct {
	field    string
	interval string // empty: terms
	calendar bool   // calendar_interval rather than fixed_interval
}

var intervalRE = regexp.MustCompile(`^([0-9]+)(ms|s|m|h|d|w|M|q|y)$`)

// ParseBucket checks a Config.Bucket value: "field" or "field:interval".
func ParseBucket(s string) error {
	_, err := parseBucket(s)
	return err
}

func parseBucket(s string) (bucketSpec, error) {
	field, interval, hasInterval := strings.Cut(s, ":")
	field = strings.TrimSpace(field)
	if field == "" {
		return bucketSpec{}, fmt.Errorf("bucket %q: no field", s)
	}
	if !hasInterval {
		return bucketSpec{field: field}, nil
	}
	m := intervalRE.FindStringSubmatch(interval)
	if m == nil {
		return bucketSpec{}, fmt.Errorf("bucket %q: interval %q is not a number and a unit (ms, s, m, h, d, w, M, q, y), e.g. 1d or 6h", s, interval)
	}
	n, _ := strconv.Atoi(m[1])
	if n <= 0 {
		return bucketSpec{}, fmt.Errorf("bucket %q: interval %q must be positive", s, interval)
	}
	switch unit := m[2]; {
	case n == 1 && strings.Contains("mhdwMqy", unit) && unit != "ms":
		return bucketSpec{field: field, interval: interval, calendar: true}, nil
	case unit == "w" || unit == "M" || unit == "q" || unit == "y":
		return bucketSpec{}, fmt.Errorf("bucket %q: calendar units (w, M, q, y) take only 1, e.g. 1M", s)
	}
	return bucketSpec{field: field, interval: interval}, nil
}

// resolveField returns the field to aggregate on: a text field cannot be
// aggregated, so its keyword sub-field (dynamic mapping's "field.keyword")
// is used when it has one.
func (s indexSide) resolveField(ctx context.Context, field string) (string, error) {
	var ans map[string]struct {
		Mappings map[string]struct {
			Mapping map[string]struct {
				Type   string                     `json:"type"`
				Fields map[string]json.RawMessage `json:"fields"`
			} `json:"mapping"`
		} `json:"mappings"`
	}
	if err := osreq.JSON(ctx, s.side.Client, http.MethodGet, s.path("/_mapping/field/"+field), nil, &ans); err != nil {
		return "", s.wrap("read mapping", err)
	}
	leaf := field[strings.LastIndexByte(field, '.')+1:]
	text, keyword := false, true
	for _, idx := range ans {
		m, ok := idx.Mappings[field]
		if !ok {
			continue
		}
		fm := m.Mapping[leaf]
		if fm.Type == "text" {
			text = true
			if _, ok := fm.Fields["keyword"]; !ok {
				keyword = false
			}
		}
	}
	if text && keyword {
		return field + ".keyword", nil
	}
	return field, nil
}

// bucketPager pages through one side's composite aggregation.
type bucketPager struct {
	side  indexSide
	body  map[string]any
	spec  bucketSpec
	page  []rawBucket
	i     int
	after json.RawMessage
	done  bool
}

type rawBucket struct {
	Key struct {
		K json.RawMessage `json:"k"`
	} `json:"key"`
	DocCount int64 `json:"doc_count"`
}

// bucketPageSize is the number of composite buckets per request.
const bucketPageSize = 1000

func (f filters) bucketBody(spec bucketSpec, field string) map[string]any {
	var src map[string]any
	if spec.interval == "" {
		src = map[string]any{"terms": map[string]any{"field": field, "missing_bucket": true}}
	} else {
		dh := map[string]any{"field": field, "missing_bucket": true, "time_zone": "UTC"}
		if spec.calendar {
			dh["calendar_interval"] = spec.interval
		} else {
			dh["fixed_interval"] = spec.interval
		}
		src = map[string]any{"date_histogram": dh}
	}
	return map[string]any{
		"size":             0,
		"track_total_hits": false,
		"query":            f.live(),
		"aggs": map[string]any{"b": map[string]any{"composite": map[string]any{
			"size":    bucketPageSize,
			"sources": []any{map[string]any{"k": src}},
		}}},
	}
}

// next returns the next bucket, or ok false at the end.
func (p *bucketPager) next(ctx context.Context) (rawBucket, bool, error) {
	for p.i >= len(p.page) {
		if p.done {
			return rawBucket{}, false, nil
		}
		comp := p.body["aggs"].(map[string]any)["b"].(map[string]any)["composite"].(map[string]any)
		if p.after != nil {
			comp["after"] = map[string]json.RawMessage{"k": p.after}
		}
		var ans struct {
			shardsAnswer
			Aggregations struct {
				B struct {
					AfterKey *struct {
						K json.RawMessage `json:"k"`
					} `json:"after_key"`
					Buckets []rawBucket `json:"buckets"`
				} `json:"b"`
			} `json:"aggregations"`
		}
		if err := osreq.JSON(ctx, p.side.side.Client, http.MethodPost, p.side.path("/_search"), p.body, &ans); err != nil {
			return rawBucket{}, false, p.side.wrap("bucket aggregation", err)
		}
		if err := osreq.ShardsError(ans.Shards, ans.TimedOut); err != nil {
			return rawBucket{}, false, p.side.wrap("bucket aggregation", err)
		}
		p.page, p.i = ans.Aggregations.B.Buckets, 0
		if ans.Aggregations.B.AfterKey == nil || len(p.page) == 0 {
			p.done = true
		} else {
			p.after = ans.Aggregations.B.AfterKey.K
		}
	}
	b := p.page[p.i]
	p.i++
	return b, true, nil
}

// compareKeys orders composite keys as OpenSearch does (ascending, missing
// first): null < numbers < strings; numbers by value, strings bytewise.
func compareKeys(a, b json.RawMessage) int {
	ka, kb := keyKind(a), keyKind(b)
	if ka != kb {
		return ka - kb
	}
	switch ka {
	case 0:
		return 0
	case 1:
		ia, erra := strconv.ParseInt(string(a), 10, 64)
		ib, errb := strconv.ParseInt(string(b), 10, 64)
		if erra == nil && errb == nil {
			switch {
			case ia < ib:
				return -1
			case ia > ib:
				return 1
			}
			return 0
		}
		fa, _ := strconv.ParseFloat(string(a), 64)
		fb, _ := strconv.ParseFloat(string(b), 64)
		switch {
		case fa < fb:
			return -1
		case fa > fb:
			return 1
		}
		return 0
	}
	var sa, sb string
	_ = json.Unmarshal(a, &sa)
	_ = json.Unmarshal(b, &sb)
	return strings.Compare(sa, sb)
}

func keyKind(k json.RawMessage) int {
	k = bytes.TrimSpace(k)
	switch {
	case len(k) == 0 || string(k) == "null":
		return 0
	case k[0] == '"':
		return 2
	case string(k) == "true":
		return 1
	case string(k) == "false":
		return 1
	}
	return 1
}

// MissingKey is the key of the bucket of documents without the field.
const MissingKey = "(missing)"

func renderKey(spec bucketSpec, k json.RawMessage) string {
	if keyKind(k) == 0 {
		return MissingKey
	}
	if spec.interval != "" {
		if ms, err := strconv.ParseInt(string(k), 10, 64); err == nil {
			return time.UnixMilli(ms).UTC().Format(time.RFC3339)
		}
	}
	var s string
	if json.Unmarshal(k, &s) == nil {
		return s
	}
	return string(k)
}

// compareBuckets pages through both sides' buckets in key order and
// returns the differing ones (capped at maxShown), how many differ and the
// sum of their count differences.
func compareBuckets(ctx context.Context, f filters, spec bucketSpec, left, right indexSide, maxShown int) (shown []Bucket, differing, sum int64, err error) {
	lf, err := left.resolveField(ctx, spec.field)
	if err != nil {
		return nil, 0, 0, err
	}
	rf, err := right.resolveField(ctx, spec.field)
	if err != nil {
		return nil, 0, 0, err
	}
	lp := &bucketPager{side: left, body: f.bucketBody(spec, lf), spec: spec}
	rp := &bucketPager{side: right, body: f.bucketBody(spec, rf), spec: spec}
	lb, lok, err := lp.next(ctx)
	if err != nil {
		return nil, 0, 0, err
	}
	rb, rok, err := rp.next(ctx)
	if err != nil {
		return nil, 0, 0, err
	}
	add := func(key json.RawMessage, l, r int64) {
		if l == r {
			return
		}
		differing++
		sum += max(l-r, r-l)
		if len(shown) < maxShown {
			shown = append(shown, Bucket{Key: renderKey(spec, key), Left: l, Right: r})
		}
	}
	for lok || rok {
		var c int
		switch {
		case !rok:
			c = -1
		case !lok:
			c = 1
		default:
			c = compareKeys(lb.Key.K, rb.Key.K)
		}
		switch {
		case c < 0:
			add(lb.Key.K, lb.DocCount, 0)
			lb, lok, err = lp.next(ctx)
		case c > 0:
			add(rb.Key.K, 0, rb.DocCount)
			rb, rok, err = rp.next(ctx)
		default:
			add(lb.Key.K, lb.DocCount, rb.DocCount)
			if lb, lok, err = lp.next(ctx); err == nil {
				rb, rok, err = rp.next(ctx)
			}
		}
		if err != nil {
			return shown, differing, sum, err
		}
	}
	return shown, differing, sum, nil
}
