package indexer

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzParseBulkResponse feeds arbitrary bodies to the bulk response parser:
// it must never panic, must call back once per item it counts, and on a
// well-formed response with one "items" key must count exactly the items
// encoding/json sees, with the same statuses.
func FuzzParseBulkResponse(f *testing.F) {
	f.Add([]byte(`{"took":3,"errors":false,"items":[{"index":{"_index":"m","_id":"a","_version":5,"result":"created","status":201}}]}`))
	f.Add([]byte(`{"errors":true,"items":[{"index":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"[a]: version conflict, current version [7] is higher or equal to the one provided [5]"}}},{"delete":{"status":404,"result":"not_found"}}]}`))
	f.Add([]byte(`{"items":[{"index":{"status":429,"error":{"type":"cluster_block_exception","reason":"index [m] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has read-only-allow-delete block];"}}}]}`))
	f.Add([]byte(`{"items":[{"index":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse","caused_by":{"type":"illegal_argument_exception","reason":"x\u00e9\"y"}}}},{"index":{"status":503,"error":"flattened by a proxy"}}]}`))
	f.Add([]byte(`{"items":[]}`))
	f.Add([]byte(`{"items":{}}`))
	f.Add([]byte(`{"items":[{"index":{"status":201}},]}`))
	f.Add([]byte(` { "items" : [ { "index" : { "status" : 2.5e1 } } ] } `))
	f.Fuzz(func(t *testing.T, body []byte) {
		calls := 0
		var statuses []int
		n, err := parseBulkResponse(body, func(i int, it *itemResp) {
			if i != calls {
				t.Fatalf("callback %d got index %d", calls, i)
			}
			calls++
			statuses = append(statuses, it.status)
			_, _, _ = conflictVersions(it.errReason)
			_ = unescape(it.errReason)
			_ = unescape(it.causeReason)
		})
		if n != calls {
			t.Fatalf("returned %d items after %d callbacks", n, calls)
		}
		if err != nil || !json.Valid(body) || bytes.Count(body, []byte(`"items"`)) != 1 {
			return
		}
		// encoding/json matches struct fields case-insensitively: decode
		// into maps to see exactly the keys the parser looks for.
		var top map[string]json.RawMessage
		if json.Unmarshal(body, &top) != nil {
			return
		}
		for k := range top {
			if k != "items" && strings.EqualFold(k, "items") {
				return
			}
		}
		var items []map[string]map[string]json.RawMessage
		if json.Unmarshal(top["items"], &items) != nil {
			return
		}
		if len(items) != n {
			t.Fatalf("parsed %d items, encoding/json sees %d", n, len(items))
		}
		for i, item := range items {
			if len(item) != 1 {
				continue
			}
			for _, fields := range item {
				raw, ok := fields["status"]
				var st int
				if ok && json.Unmarshal(raw, &st) == nil && !bytes.ContainsAny(raw, ".eE-") && st != statuses[i] {
					t.Fatalf("item %d: status %d, encoding/json reads %d", i, statuses[i], st)
				}
			}
		}
	})
}
