//go:build integration

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/reindexer/reindexer/internal/itest"
	"github.com/twmb/franz-go/pkg/kgo"
)

// produceRecords writes recs to partition 0 of topic, in order.
func produceRecords(t *testing.T, env *itest.Env, recs ...*kgo.Record) {
	t.Helper()
	prod := itest.Kafka(t, env, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := prod.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// deadLetters reads n records of topic's dead-letter topic and returns
// the reason header of each, by record key.
func deadLetters(t *testing.T, env *itest.Env, topic string, n int) map[string]string {
	t.Helper()
	cl := itest.Kafka(t, env, kgo.ConsumeTopics(topic+".dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	got := map[string]string{}
	for len(got) < n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			for _, h := range r.Headers {
				if h.Key == "reindexer.error.reason" {
					got[string(r.Key)] = string(h.Value)
				}
			}
		})
	}
	return got
}

// shardOf returns the shard of index that a routing value (or an id
// without routing) maps to.
func shardOf(t *testing.T, env *itest.Env, index, routing string) int {
	t.Helper()
	var res struct {
		Shards [][]struct {
			Shard int `json:"shard"`
		} `json:"shards"`
	}
	if err := json.Unmarshal(osOK(t, env, "GET", "/"+index+"/_search_shards?routing="+routing, ""), &res); err != nil || len(res.Shards) != 1 {
		t.Fatalf("search_shards %s: %v %+v", routing, err, res)
	}
	return res.Shards[0][0].Shard
}

// TestTombstoneRoutingReachesDocument (issue 13 item 6): with routing from
// the JSON value, a Kafka tombstone takes its routing from the routing
// header and its delete reaches the document on its shard; a tombstone
// without the header is dead-lettered (missing_routing) instead of
// missing the shard and counting not_found. Real OpenSearch, 6 shards.
func TestTombstoneRoutingReachesDocument(t *testing.T) {
	env := itest.Services(t)
	topic, index := itest.Name(t, "dec-rt"), itest.Name(t, "dec-rt")
	createTopicDLQ(t, env, topic, 1)
	itest.CreateIndex(t, env, index, `{"settings":{"number_of_shards":6,"number_of_replicas":0}}`)
	// Rooms whose shard differs from their message's: a delete sent
	// without routing looks on the wrong shard.
	room := func(id string) string {
		for i := 0; i < 100; i++ {
			r := fmt.Sprintf("room-%d", i)
			if shardOf(t, env, index, r) != shardOf(t, env, index, id) {
				return r
			}
		}
		t.Fatalf("no room on another shard than %s", id)
		return ""
	}
	r1, r2 := room("m1"), room("m2")
	upsert := func(id, room string) *kgo.Record {
		return &kgo.Record{Topic: topic, Key: []byte(id), Value: []byte(fmt.Sprintf(`{"op":"upsert","id":%q,"version":1,"room":%q,"doc":{"room":%q,"body":"hi"}}`, id, room, room))}
	}
	tomb := func(id string, headers ...string) *kgo.Record {
		r := &kgo.Record{Topic: topic, Key: []byte(id), Headers: []kgo.RecordHeader{{Key: "version", Value: []byte("2")}}}
		for i := 0; i+1 < len(headers); i += 2 {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: headers[i], Value: []byte(headers[i+1])})
		}
		return r
	}
	r4 := room("m4")
	produceRecords(t, env, upsert("m1", r1), upsert("m2", r2), upsert("m3", r1),
		tomb("m1", "routing", r1), // deletes m1 on r1's shard
		tomb("m2"),                // no routing header: dead-lettered, m2 stays (loudly)
		tomb("m3", "x-room", r1),  // routing in another header than the one configured: dead-lettered
		upsert("m4", r4),
		&kgo.Record{Topic: topic, Key: []byte("m4"), Value: []byte(`{"op":"delete","id":"m4","version":2}`)}, // an envelope delete without routing: dead-lettered
		&kgo.Record{Topic: topic, Key: []byte("m5"), Value: []byte(`{"op":"upsert","id":"m5","version":1,"doc":{"body":"unrouted"}}`)},
		&kgo.Record{Topic: topic, Key: []byte("m5"), Value: []byte(`{"op":"delete","id":"m5","version":2,"room":null}`)}, // explicitly unrouted: deleted
	)
	run := runReplay(t, "replay", 2*time.Minute, replayArgs(env, topic, itest.Name(t, "dec-g"), index, itest.Name(t, "dec-ck"),
		"--from-offsets", "0:0", "--routing-from", "json:/room")...)
	docs := itest.DumpIndex(t, env, index)
	if _, ok := docs["m1"]; ok {
		t.Errorf("m1 is still indexed after its tombstone (routed %s): the delete missed its shard", r1)
	}
	for _, id := range []string{"m2", "m3", "m4"} {
		if _, ok := docs[id]; !ok {
			t.Errorf("%s is gone, want it kept (its delete has no routing and is dead-lettered)", id)
		}
	}
	if _, ok := docs["m5"]; ok {
		t.Errorf("m5 is still indexed after an explicitly unrouted delete")
	}
	if got := deadLetters(t, env, topic, 3); got["m2"] != "missing_routing" || got["m3"] != "missing_routing" || got["m4"] != "missing_routing" {
		t.Errorf("dead letters %v, want m2, m3 and m4 with missing_routing", got)
	}
	if run.Sum.DeadLettered != 3 {
		t.Errorf("summary: %d dead-lettered, want 3", run.Sum.DeadLettered)
	}

	// The same tombstone, routed by --tombstone-routing-header x-room, deletes m3.
	produceRecords(t, env, tomb("m3", "x-room", r1))
	runReplay(t, "replay2", 2*time.Minute, replayArgs(env, topic, itest.Name(t, "dec-g2"), index, itest.Name(t, "dec-ck2"),
		"--from-offsets", "0:10", "--routing-from", "json:/room", "--tombstone-routing-header", "x-room")...)
	if _, ok := itest.DumpIndex(t, env, index)["m3"]; ok {
		t.Errorf("m3 is still indexed after a tombstone routed by --tombstone-routing-header")
	}
}

// TestBinaryKeysIntegration (issue 13 item 3): keys ff78 and fe78 used to
// become the same document "\ufffdx" (one overwrote the other, a
// tombstone of one deleted both). By default both are dead-lettered
// (invalid_id_encoding); with --id-encoding hex each is its own document.
func TestBinaryKeysIntegration(t *testing.T) {
	env := itest.Services(t)
	topic := itest.Name(t, "dec-bin")
	createTopicDLQ(t, env, topic, 1)
	rec := func(key, body string, version int) *kgo.Record {
		r := &kgo.Record{Topic: topic, Key: []byte(key), Headers: []kgo.RecordHeader{{Key: "v", Value: []byte(fmt.Sprint(version))}}}
		if body != "" {
			r.Value = []byte(`{"body":"` + body + `"}`)
		}
		return r
	}
	produceRecords(t, env, rec("\xffx", "first", 1), rec("\xfex", "second", 1), rec("ok", "plain", 1), rec("\xfex", "", 2))
	flags := []string{"--from-offsets", "0:0", "--id-from", "key", "--version-from", "header:v", "--tombstone-version-header", "v",
		"--op-from", "none", "--doc-from", "value"}

	strict := itest.Name(t, "dec-strict")
	itest.CreateIndex(t, env, strict, `{"settings":{"number_of_shards":1,"number_of_replicas":0}}`)
	run := runReplay(t, "strict", 2*time.Minute, replayArgs(env, topic, itest.Name(t, "dec-g1"), strict, itest.Name(t, "dec-ck1"), flags...)...)
	docs := itest.DumpIndex(t, env, strict)
	if len(docs) != 1 || docs["ok"].Source == nil {
		t.Errorf("strict: index holds %v, want only \"ok\"", keys(docs))
	}
	if run.Sum.DeadLettered != 3 {
		t.Errorf("strict: %d dead-lettered, want the 3 records with binary keys", run.Sum.DeadLettered)
	}
	if got := deadLetters(t, env, topic, 2); got["\xffx"] != "invalid_id_encoding" || got["\xfex"] != "invalid_id_encoding" {
		t.Errorf("strict: dead letters %q, want both binary keys with invalid_id_encoding", got)
	}

	hexIndex := itest.Name(t, "dec-hex")
	itest.CreateIndex(t, env, hexIndex, `{"settings":{"number_of_shards":1,"number_of_replicas":0}}`)
	runReplay(t, "hex", 2*time.Minute, replayArgs(env, topic, itest.Name(t, "dec-g2"), hexIndex, itest.Name(t, "dec-ck2"),
		append(flags, "--id-encoding", "hex")...)...)
	docs = itest.DumpIndex(t, env, hexIndex)
	if len(docs) != 2 || !strings.Contains(string(docs["ff78"].Source), "first") || !strings.Contains(string(docs["6f6b"].Source), "plain") {
		t.Errorf("hex: index holds %v, want ff78 (first) and 6f6b (ok); fe78 was deleted by its tombstone", keys(docs))
	}
}

func keys(docs map[string]itest.DocState) []string {
	var out []string
	for k, d := range docs {
		out = append(out, fmt.Sprintf("%q=%s", k, d.Source))
	}
	return out
}

// TestSecretsRealNode (issue 13 item 13): a replay against the real
// OpenSearch (reached through a URL with credentials, which the local node
// ignores) and Kafka, with passwords in the URL, --opensearch-password,
// --kafka-password and the environment, at debug level, prints none of
// them: not in the dry-run plan, not in the log, not in the summary.
func TestSecretsRealNode(t *testing.T) {
	env := itest.Services(t)
	topic, index := itest.Name(t, "dec-sec"), itest.Name(t, "dec-sec")
	itest.CreateTopic(t, env, topic, 1)
	produceRecords(t, env, &kgo.Record{Topic: topic, Value: []byte(`{"op":"upsert","id":"a","version":1,"doc":{}}`)},
		&kgo.Record{Topic: topic, Value: []byte(`{"op":"upsert","id":"b","version":1`)}) // malformed: a dead letter
	withAuth := strings.Replace(env.OpenSearchURL, "://", "://admin:"+urlSecret+"@", 1)
	t.Setenv("REINDEXER_KAFKA_PASSWORD", envSecret)
	args := func(extra ...string) []string {
		a := replayArgs(env, topic, itest.Name(t, "dec-g"), index, itest.Name(t, "dec-ck"), "--from-offsets", "0:0",
			"--opensearch-username", "admin", "--opensearch-password", osSecret, "--kafka-username", "u", "--kafka-password", kafkaSecret,
			"--log-level", "debug")
		for i, v := range a {
			if v == env.OpenSearchURL {
				a[i] = withAuth
			}
		}
		return append(a, extra...)
	}
	p, out := startSplit(t, "dry-run", args("--dry-run")...)
	waitExit(t, p, time.Minute)
	plan, _ := os.ReadFile(out)
	if p.err != nil || !strings.Contains(string(plan), topic) {
		t.Fatalf("dry run: %v\n%s\n%s", p.err, plan, readLog(p))
	}
	checkNoSecret(t, "dry run", string(plan)+readLog(p))
	run := runReplay(t, "replay", 2*time.Minute, args()...)
	summary, _ := json.Marshal(run.Sum)
	checkNoSecret(t, "replay", run.Log+string(summary))
	if run.Sum.DeadLettered != 1 {
		t.Errorf("%d dead-lettered, want 1", run.Sum.DeadLettered)
	}
}
