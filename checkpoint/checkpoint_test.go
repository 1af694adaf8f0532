package checkpoint

import (
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"
)

func TestCeilMilli(t *testing.T) {
	base := time.Date(2026, 11, 26, 20, 0, 0, 0, time.UTC)
	for _, tc := range []struct{ in, want time.Time }{
		{base, base},
		{base.Add(5 * time.Millisecond), base.Add(5 * time.Millisecond)},
		{base.Add(1), base.Add(time.Millisecond)},
		{base.Add(999_999), base.Add(time.Millisecond)},
		{base.Add(time.Millisecond + 1), base.Add(2 * time.Millisecond)},
	} {
		if got := ceilMilli(tc.in); !got.Equal(tc.want) {
			t.Errorf("ceilMilli(%s) = %s, want %s", tc.in.Format(time.RFC3339Nano), got.Format(time.RFC3339Nano), tc.want.Format(time.RFC3339Nano))
		}
	}
}

func TestCheckpointID(t *testing.T) {
	at := time.Date(2026, 11, 26, 20, 0, 10, 0, time.UTC)
	cp := Checkpoint{Group: "g", Topic: "t", Index: "x", Partition: 3, Offset: 10, Time: at}
	id := cp.ID()
	if !strings.HasPrefix(id, "cp-") || !strings.Contains(id, "-p3-o10") {
		t.Errorf("ID() = %q, want cp-<hash>-p3-o10", id)
	}
	same := cp
	same.Time = at.Add(40 * time.Second) // the same offset written again later
	if same.ID() != id {
		t.Errorf("the same offset gave %q and %q", id, same.ID())
	}
	for name, other := range map[string]Checkpoint{
		// A later write in the same minute with a new offset must not
		// replace the earlier checkpoint (a snapshot's cutoff may need it).
		"next offset, same minute": {Group: "g", Topic: "t", Index: "x", Partition: 3, Offset: 11, Time: at.Add(time.Second)},
		"group":                    {Group: "g2", Topic: "t", Index: "x", Partition: 3, Offset: 10, Time: at},
		"topic":                    {Group: "g", Topic: "t2", Index: "x", Partition: 3, Offset: 10, Time: at},
		"topic id":                 {Group: "g", Topic: "t", TopicID: "new", Index: "x", Partition: 3, Offset: 10, Time: at},
		"index":                    {Group: "g", Topic: "t", Index: "x2", Partition: 3, Offset: 10, Time: at},
		"partition":                {Group: "g", Topic: "t", Index: "x", Partition: 4, Offset: 10, Time: at},
		// Length-prefixed hashing: moving a character between names differs.
		"split": {Group: "gt", Topic: "", Index: "x", Partition: 3, Offset: 10, Time: at},
	} {
		if other.ID() == id {
			t.Errorf("%s: different checkpoint has the same id %q", name, id)
		}
	}
	if long := (Checkpoint{Group: "g", Topic: "t", Index: "x", Partition: 1 << 30, Offset: 1<<63 - 1}).ID(); len(long) > 100 {
		t.Errorf("id too long: %d bytes", len(long))
	}
}

func TestCheckpointDocRoundTrip(t *testing.T) {
	cp := Checkpoint{
		Group: "g", Topic: "t", TopicID: "AAAAAAAAAAAAAAAAAAAAAQ", Complete: true, Index: "x", Partition: 7, Offset: 1<<62 + 1,
		Time: time.Date(2026, 11, 26, 20, 0, 10, 123_400_000, time.FixedZone("JST", 9*3600)), Host: "h", PID: 42,
	}
	b, err := json.Marshal(cp.doc())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"checkpoint","group":"g","topic":"t","index":"x","partition":7,"offset":4611686018427387905,"topic_id":"AAAAAAAAAAAAAAAAAAAAAQ","complete":true,"time":"2026-11-26T11:00:10.124Z","host":"h","pid":42}`
	if string(b) != want {
		t.Errorf("doc =\n %s\nwant\n %s", b, want)
	}
	got, err := decodeCheckpoint(b)
	if err != nil {
		t.Fatal(err)
	}
	wantCP := cp
	wantCP.Time = time.Date(2026, 11, 26, 11, 0, 10, 124_000_000, time.UTC)
	if got != wantCP {
		t.Errorf("decoded %+v, want %+v", got, wantCP)
	}
	// A checkpoint written before topic IDs and completeness were recorded
	// decodes as incomplete, with no topic ID.
	old, err := decodeCheckpoint([]byte(`{"kind":"checkpoint","group":"g","topic":"t","index":"x","partition":1,"offset":5,"time":"2026-11-26T11:00:10.124Z"}`))
	if err != nil || old.Complete || old.TopicID != "" {
		t.Errorf("old checkpoint decoded as %+v, %v", old, err)
	}
	if _, err := decodeCheckpoint([]byte(`{"kind":"plan","group":"g"}`)); err == nil {
		t.Error("decoding a plan document as a checkpoint should fail")
	}
}

func TestCheckpointValidate(t *testing.T) {
	ok := Checkpoint{Group: "g", Topic: "t", Index: "x", Partition: 0, Offset: 0, Time: time.Now()}
	if err := ok.validate(); err != nil {
		t.Errorf("valid checkpoint: %v", err)
	}
	for name, mutate := range map[string]func(*Checkpoint){
		"no group":           func(c *Checkpoint) { c.Group = "" },
		"no topic":           func(c *Checkpoint) { c.Topic = "" },
		"no index":           func(c *Checkpoint) { c.Index = "" },
		"negative partition": func(c *Checkpoint) { c.Partition = -1 },
		"negative offset":    func(c *Checkpoint) { c.Offset = -1 },
		"zero time":          func(c *Checkpoint) { c.Time = time.Time{} },
	} {
		c := ok
		mutate(&c)
		if err := c.validate(); err == nil {
			t.Errorf("%s: validate accepted %+v", name, c)
		}
	}
}

func TestChanged(t *testing.T) {
	got := changed(map[int32]int64{0: 10, 1: 20, 2: 30}, map[int32]int64{0: 10, 1: 19, 5: 1})
	want := map[int32]int64{1: 20, 2: 30}
	if !maps.Equal(got, want) {
		t.Errorf("changed = %v, want %v", got, want)
	}
	if got := changed(map[int32]int64{0: 1}, map[int32]int64{0: 1}); len(got) != 0 {
		t.Errorf("nothing changed, got %v", got)
	}
}

func TestObserveCopiesAndMerges(t *testing.T) {
	w := NewWriter(NewStore(nil, ""), "g", "t", "x", 0, 0, nil)
	if w.interval != DefaultInterval || w.retention != DefaultRetention || w.store.Index() != DefaultIndex {
		t.Errorf("defaults: interval %s retention %s index %s", w.interval, w.retention, w.store.Index())
	}
	in := map[int32]int64{0: 5, 1: 6}
	w.Observe(in)
	in[0] = 1000 // the caller reuses its map
	w.Observe(map[int32]int64{1: 7, 2: 8})
	want := map[int32]int64{0: 5, 1: 7, 2: 8}
	if !maps.Equal(w.latest, want) {
		t.Errorf("latest = %v, want %v", w.latest, want)
	}
}

// snapshot219 is the answer of OpenSearch 2.19.1 to GET _snapshot/r/s1.
const snapshot219 = `{"snapshots":[{"snapshot":"s1","uuid":"Uaxpfv-rQj2wf5whdTj4fQ","version_id":136407927,"version":"2.19.1","remote_store_index_shallow_copy":false,"indices":["ckpt-test-probe-idx"],"data_streams":[],"include_global_state":false,"state":"SUCCESS","start_time":"2026-11-26T20:10:19.571Z","start_time_in_millis":1795723819571,"end_time":"2026-11-26T20:10:19.580Z","end_time_in_millis":1795723819580,"duration_in_millis":9,"failures":[],"shards":{"total":1,"failed":0,"successful":1}}]}`

func TestParseSnapshot(t *testing.T) {
	s, err := parseSnapshot("r", "s1", []byte(snapshot219))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "s1" || s.Repo != "r" || s.State != SnapshotSuccess || s.Version != "2.19.1" ||
		!s.Start.Equal(time.UnixMilli(1795723819571)) || !s.End.Equal(time.UnixMilli(1795723819580)) ||
		len(s.Indices) != 1 || s.Indices[0] != "ckpt-test-probe-idx" || s.ShardsTotal != 1 || s.ShardsSuccessful != 1 {
		t.Errorf("parsed %+v", s)
	}
	if err := s.Usable("ckpt-test-probe-idx"); err != nil {
		t.Errorf("Usable: %v", err)
	}
	if err := s.Usable("other"); err == nil || !strings.Contains(err.Error(), "does not hold index other") {
		t.Errorf("Usable(other) = %v", err)
	}

	// 3.x: same envelope, more fields (non-string user metadata, pinned
	// timestamps); an in-progress snapshot has no end time.
	s, err = parseSnapshot("r", "s2", []byte(`{"snapshots":[
		{"snapshot":"s2","uuid":"u","version":"3.1.0","indices":["a","b"],"state":"IN_PROGRESS",
		 "metadata":{"taken_by":"ops","n":3,"nested":{"x":true}},"pinned_timestamp":0,
		 "start_time":"2026-11-26T20:00:00.000Z","start_time_in_millis":1795723200000,
		 "end_time_in_millis":0,"shards":{"total":0,"failed":0,"successful":0}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.State != SnapshotInProgress || !s.End.IsZero() || !s.Start.Equal(time.UnixMilli(1795723200000)) {
		t.Errorf("parsed %+v", s)
	}
	if err := s.Usable(""); err == nil {
		t.Error("an in-progress snapshot should not be usable")
	}

	// A date-math name resolves to one snapshot with another name.
	if s, err := parseSnapshot("r", "<nightly-{now/d}>", []byte(snapshot219)); err != nil || s.Name != "s1" {
		t.Errorf("single answer under another name: %+v, %v", s, err)
	}
	two := `{"snapshots":[{"snapshot":"a","start_time_in_millis":1},{"snapshot":"b","start_time_in_millis":2}]}`
	if _, err := parseSnapshot("r", "*", []byte(two)); err == nil || !strings.Contains(err.Error(), "matches 2 snapshots") {
		t.Errorf("wildcard: %v", err)
	}
	if s, err := parseSnapshot("r", "b", []byte(two)); err != nil || s.Name != "b" {
		t.Errorf("exact among several: %+v, %v", s, err)
	}
	if _, err := parseSnapshot("r", "x", []byte(`{"snapshots":[]}`)); !errors.Is(err, ErrSnapshotMissing) {
		t.Errorf("empty answer: %v", err)
	}
	if _, err := parseSnapshot("r", "x", []byte(`{"snapshots":[{"snapshot":"x","state":"SUCCESS"}]}`)); err == nil {
		t.Error("an answer without start_time_in_millis must fail")
	}
}

func TestCheckMappingBody(t *testing.T) {
	var m struct {
		Mappings json.RawMessage `json:"mappings"`
	}
	if err := json.Unmarshal([]byte(indexBody), &m); err != nil {
		t.Fatalf("indexBody is not JSON: %v", err)
	}
	good := `{"reindexer-checkpoints":{"mappings":` + string(m.Mappings) + `}}`
	if missing, err := checkMappingBody("reindexer-checkpoints", []byte(good)); err != nil || len(missing) != 0 {
		t.Errorf("own mapping rejected: %v (missing %v)", err, missing)
	}
	// An index created before topic_id and complete existed: they are added.
	older := `{"cp":{"mappings":{"properties":{"kind":{"type":"keyword"},"group":{"type":"keyword"},"topic":{"type":"keyword"},
		"index":{"type":"keyword"},"partition":{"type":"integer"},"offset":{"type":"long"},"time":{"type":"date"}}}}}`
	if missing, err := checkMappingBody("cp", []byte(older)); err != nil || strings.Join(missing, ",") != "complete,topic_id" {
		t.Errorf("older mapping: missing %v, %v; want complete,topic_id", missing, err)
	}
	// What dynamic mapping makes of a checkpoint document.
	dynamic := `{"cp":{"mappings":{"properties":{"kind":{"type":"text"},"group":{"type":"text"},"topic":{"type":"text"},
		"index":{"type":"text"},"partition":{"type":"long"},"offset":{"type":"long"},"time":{"type":"date"}}}}}`
	_, err := checkMappingBody("cp", []byte(dynamic))
	if err == nil || !strings.Contains(err.Error(), "field partition is long, want integer") || !strings.Contains(err.Error(), "field kind is text") {
		t.Errorf("dynamic mapping: %v", err)
	}
}

func TestParseBefore(t *testing.T) {
	aggs := `{"partitions":{"after_key":{"partition":2},"buckets":[
		{"key":{"partition":0},"doc_count":3,"best":{"hits":{"total":{"value":3,"relation":"eq"},"hits":[
			{"_id":"a","_source":{"kind":"checkpoint","group":"g","topic":"t","index":"x","partition":0,"offset":9007199254740993,"time":"2026-11-26T20:00:00.000Z"},"sort":[9007199254740993,1]}]}}},
		{"key":{"partition":2},"doc_count":1,"best":{"hits":{"hits":[
			{"_id":"b","_source":{"kind":"checkpoint","group":"h","topic":"t","index":"x","partition":2,"offset":5,"time":"2026-11-26T20:00:01.500Z"}}]}}}]}}`
	cps, after, err := parseBefore([]byte(aggs))
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) != 2 || cps[0].Offset != 9007199254740993 || cps[1].Partition != 2 || cps[1].Group != "h" || string(after) != `{"partition":2}` {
		t.Errorf("parsed %+v, after %s", cps, after)
	}
	if _, _, err := parseBefore([]byte(`{}`)); err == nil {
		t.Error("missing aggregation should fail")
	}
}

func TestBeforeQueryCutoff(t *testing.T) {
	// t with a sub-millisecond part: stored ms s < t ⇔ s < ceil(t).
	at := time.UnixMilli(1795723819571).Add(300 * time.Microsecond)
	body, err := beforeQuery("t", "TID", "x", at, json.RawMessage(`{"partition":5}`))
	if err != nil {
		t.Fatal(err)
	}
	s := string(body)
	for _, want := range []string{`"lt":1795723819572`, `"after":{"partition":5}`, `"size":1000`, `{"offset":{"order":"desc"}}`, `{"term":{"kind":"checkpoint"}}`,
		`{"term":{"topic_id":"TID"}}`, `{"term":{"complete":true}}`} {
		if !strings.Contains(s, want) {
			t.Errorf("query lacks %s:\n%s", want, s)
		}
	}
}

func TestDecodePlan(t *testing.T) {
	raw := json.RawMessage(`{"topic":"t","group":"g","partitions":[{"partition":0,"start":1,"end":1152921504606846976}]}`)
	src, _ := json.Marshal(doc{Kind: kindPlan, Group: "g", Topic: "t", Index: "x", Time: "2026-11-26T00:00:00.000Z", Plan: raw})
	got, err := decodePlan(src, "g", "t", "x")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Body) != string(raw) || !got.Created.Equal(time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)) || got.Index != "x" {
		t.Errorf("decoded %+v", got)
	}
	if _, err := decodePlan(src, "g", "t", "other"); err == nil {
		t.Error("a plan of another index must not load")
	}
	if planID("g", "t", "x") == planID("g", "t", "y") || !strings.HasPrefix(planID("g", "t", "x"), "plan-") {
		t.Error("plan ids must differ per index")
	}
}
