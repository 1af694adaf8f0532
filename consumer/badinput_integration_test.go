//go:build integration

package consumer_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/reindexer/reindexer/consumer"
	"github.com/reindexer/reindexer/indexer"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/reindexer/reindexer/internal/metrics"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestBadInput sends every kind of bad record docs/design.md §3 names, between good
// ones, all into one partition: each bad record lands in the dead-letter
// topic with the right reason and its source coordinates, is counted, and
// does not stall its partition; every good record is indexed.
func TestBadInput(t *testing.T) {
	env := itest.Services(t)
	topic := itest.Name(t, "bad")
	index := itest.Name(t, "bad")
	itest.CreateTopic(t, env, topic, 2)
	itest.CreateTopic(t, env, topic+".dlq", 1)
	itest.CreateIndex(t, env, index, `{"settings":{"number_of_shards":1,"number_of_replicas":0},
		"mappings":{"properties":{"edit_count":{"type":"integer"},"body":{"type":"text"}}}}`)

	good := func(i int) string {
		return fmt.Sprintf(`{"op":"upsert","id":"good-%d","version":%d,"doc":{"body":"メッセージ %d","edit_count":%d}}`, i, 100+i, i, i)
	}
	bad := []struct{ value, reason string }{
		{`{"op":"upsert","id":"m1","version":1,"doc":{"body":"unterminated}`, "malformed_json"},
		{`{"op":"upsert","version":1,"doc":{"body":"no id"}}`, "missing_id"},
		{`{"op":"upsert","id":"m3","doc":{"body":"no version"}}`, "missing_version"},
		{`{"op":"upsert","id":"m4","version":-5,"doc":{"body":"negative"}}`, "negative_version"},
		{`{"op":"upsert","id":"m5","version":"twelve","doc":{"body":"not a number"}}`, "invalid_version"},
		{`{"op":"upsert","id":"` + strings.Repeat("長", 171) + `","version":1,"doc":{}}`, "id_too_long"},
		{`{"op":"upsert","id":"m7","version":1,"doc":{"body":"` + strings.Repeat("x", 5000) + `"}}`, "doc_too_large"},
		{`{"op":"upsert","id":"m8","version":1,"doc":{"edit_count":"many"}}`, "mapper_parsing_exception"},
		{`{"op":"merge","id":"m9","version":1,"doc":{}}`, "unknown_op"},
	}
	var recs []*kgo.Record
	var wantGood []string
	g := 0
	for _, b := range bad {
		for k := 0; k < 3; k++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: 0, Key: []byte("good"), Value: []byte(good(g))})
			wantGood = append(wantGood, "good-"+strconv.Itoa(g))
			g++
		}
		recs = append(recs, &kgo.Record{Topic: topic, Partition: 0, Key: []byte("bad"), Value: []byte(b.value),
			Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("t-" + b.reason)}}})
	}
	for k := 0; k < 5; k++ { // partition 1 keeps going too
		recs = append(recs, &kgo.Record{Topic: topic, Partition: 1, Key: []byte("good"), Value: []byte(good(g))})
		wantGood = append(wantGood, "good-"+strconv.Itoa(g))
		g++
	}
	prod := itest.Kafka(t, env, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	res := prod.ProduceSync(t.Context(), recs...)
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	ends := map[int32]int64{}
	srcOffset := map[string]int64{}
	for _, r := range res {
		ends[r.Record.Partition] = max(ends[r.Record.Partition], r.Record.Offset+1)
		if string(r.Record.Key) == "bad" {
			srcOffset[string(r.Record.Value)] = r.Record.Offset
		}
	}

	m := metrics.New(nil)
	ix, err := indexer.New(bulkClient(t, env), indexer.Config{Index: index, Logger: testLogger(t), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(t, env, topic, itest.Name(t, "g"), ix)
	cfg.Metrics = m
	cfg.Decoder.MaxDocBytes = 2000
	sum := runUntilCommitted(t, env, cfg, ends)
	if sum.DeadLettered != int64(len(bad)) {
		t.Errorf("dead-lettered %d, want %d", sum.DeadLettered, len(bad))
	}

	docs := itest.DumpIndex(t, env, index)
	for _, id := range wantGood {
		if _, ok := docs[id]; !ok {
			t.Errorf("good record %s was not indexed", id)
		}
	}
	if len(docs) != len(wantGood) {
		t.Errorf("index holds %d documents, want the %d good ones", len(docs), len(wantGood))
	}

	// Read the dead-letter topic back.
	dl := itest.Kafka(t, env, kgo.ConsumeTopics(topic+".dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	got := map[string]*kgo.Record{}
	for len(got) < len(bad) && ctx.Err() == nil {
		dl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got[string(r.Value)] = r })
	}
	for _, b := range bad {
		r, ok := got[b.value]
		if !ok {
			t.Errorf("%s: not in the dead-letter topic", b.reason)
			continue
		}
		h := map[string]string{}
		for _, kv := range r.Headers {
			h[kv.Key] = string(kv.Value)
		}
		if h[consumer.HeaderErrorReason] != b.reason {
			t.Errorf("%s: reason header %q (message %q)", b.reason, h[consumer.HeaderErrorReason], h[consumer.HeaderErrorMessage])
		}
		wantClass := "decode"
		if b.reason == "mapper_parsing_exception" {
			wantClass = "index"
		}
		if h[consumer.HeaderErrorClass] != wantClass || h[consumer.HeaderErrorMessage] == "" {
			t.Errorf("%s: class %q message %q", b.reason, h[consumer.HeaderErrorClass], h[consumer.HeaderErrorMessage])
		}
		if h[consumer.HeaderSourceTopic] != topic || h[consumer.HeaderSourcePartition] != "0" ||
			h[consumer.HeaderSourceOffset] != strconv.FormatInt(srcOffset[b.value], 10) || h[consumer.HeaderIndex] != index {
			t.Errorf("%s: source headers %v, want %s/0@%d", b.reason, h, topic, srcOffset[b.value])
		}
		if h["trace"] != "t-"+b.reason || string(r.Key) != "bad" {
			t.Errorf("%s: original key/headers not kept: key %q headers %v", b.reason, r.Key, h)
		}
		if v := testutil.ToFloat64(m.DeadLettered.WithLabelValues(b.reason)); v != 1 {
			t.Errorf("%s: dead-letter metric %v, want 1", b.reason, v)
		}
	}
}
