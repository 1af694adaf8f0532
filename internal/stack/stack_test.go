//go:build integration

package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKafkaAnswers checks the broker the way the worker uses it: metadata, the single-broker
// settings the consumer group depends on, produce, a consumer group that consumes and commits.
func TestKafkaAnswers(t *testing.T) {
	env := stackEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	cl, err := kgo.NewClient(kgo.SeedBrokers(env["KAFKA_BROKERS"]))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	brokers, err := adm.ListBrokers(ctx)
	if err != nil {
		t.Fatalf("metadata request to %s: %v", env["KAFKA_BROKERS"], err)
	}
	if len(brokers) != 1 {
		t.Fatalf("want exactly one broker, got %v", brokers)
	}
	want := env["KAFKA_BROKERS"]
	if got := fmt.Sprintf("%s:%d", brokers[0].Host, brokers[0].Port); got != want {
		t.Errorf("broker advertises %s, want %s (KAFKA_BROKERS)", got, want)
	}

	// Settings a one-broker cluster needs for consumer groups to work promptly.
	rcs, err := adm.DescribeBrokerConfigs(ctx, brokers[0].NodeID)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(fmt.Sprint(brokers[0].NodeID), nil)
	if err != nil {
		t.Fatal(err)
	}
	wantCfg := map[string]string{
		"offsets.topic.replication.factor":         "1",
		"transaction.state.log.replication.factor": "1",
		"group.initial.rebalance.delay.ms":         "0",
		"process.roles":                            "broker,controller",
		"auto.create.topics.enable":                "true",
		"transaction.state.log.min.isr":            "1",
		"offsets.topic.num.partitions":             "1",
		"log.cleaner.dedupe.buffer.size":           "16777216",
		"default.replication.factor":               "1",
		"min.insync.replicas":                      "1",
	}
	for _, c := range rc.Configs {
		if w, ok := wantCfg[c.Key]; ok {
			if c.MaybeValue() != w {
				t.Errorf("broker config %s=%q, want %q", c.Key, c.MaybeValue(), w)
			}
			delete(wantCfg, c.Key)
		}
	}
	for k := range wantCfg {
		t.Errorf("broker config %s not reported", k)
	}

	topic := fmt.Sprintf("stack-check-%d", time.Now().UnixNano())
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, topic); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	defer adm.DeleteTopics(context.Background(), topic)

	const n = 300
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%d", i%17)), Value: []byte(fmt.Sprintf(`{"i":%d}`, i))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	group := topic + "-g"
	start := time.Now()
	cons, err := kgo.NewClient(
		kgo.SeedBrokers(env["KAFKA_BROKERS"]),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
	)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for got < n {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			cons.Close()
			t.Fatalf("consumed %d of %d records: %v", got, n, err)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Errorf("fetch %s/%d: %v", tp, p, err) })
		got += fs.NumRecords()
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	t.Logf("group joined, consumed and committed %d records in %v", got, time.Since(start).Round(time.Millisecond))
	cons.Close()

	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch committed offsets: %v", err)
	}
	var committed int64
	for p := int32(0); p < 3; p++ {
		if o, ok := offs.Lookup(topic, p); ok && o.Err == nil {
			committed += o.At
		}
	}
	if committed != n {
		t.Errorf("committed offsets sum to %d, want %d", committed, n)
	}
	adm.DeleteGroups(context.Background(), group)
}

// osDo performs an OpenSearch request and decodes the JSON answer into out (if non-nil).
func osDo(t *testing.T, method, url, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	c := &http.Client{Timeout: 60 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, url, resp.StatusCode, b, err)
		}
	}
	if resp.StatusCode >= 300 {
		t.Logf("%s %s -> %d %s", method, url, resp.StatusCode, b)
	}
	return resp.StatusCode
}

// TestOpenSearchAnswers checks the node: the expected version, health, the ingest role (a
// pipeline really runs), disabled disk watermarks, and an fs snapshot repository under
// OPENSEARCH_SNAPSHOT_DIR (path.repo).
func TestOpenSearchAnswers(t *testing.T) {
	env := stackEnv(t)
	u := env["OPENSEARCH_URL"]

	var root struct {
		Version struct {
			Number       string `json:"number"`
			Distribution string `json:"distribution"`
		} `json:"version"`
	}
	if code := osDo(t, "GET", u+"/", "", &root); code != 200 {
		t.Fatalf("GET / -> %d", code)
	}
	if root.Version.Number != env["OPENSEARCH_VERSION"] || root.Version.Distribution != "opensearch" {
		t.Errorf("node is %s %s, want opensearch %s", root.Version.Distribution, root.Version.Number, env["OPENSEARCH_VERSION"])
	}

	var health struct {
		Status string `json:"status"`
	}
	if code := osDo(t, "GET", u+"/_cluster/health?wait_for_status=yellow&timeout=30s", "", &health); code != 200 {
		t.Fatalf("cluster health -> %d (%s)", code, health.Status)
	}

	var nodes struct {
		Nodes map[string]struct {
			Roles    []string       `json:"roles"`
			Settings map[string]any `json:"settings"`
		} `json:"nodes"`
	}
	osDo(t, "GET", u+"/_nodes/_local/settings", "", &nodes)
	if len(nodes.Nodes) != 1 {
		t.Fatalf("want one node, got %d", len(nodes.Nodes))
	}
	for _, n := range nodes.Nodes {
		for _, r := range []string{"ingest", "data", "cluster_manager"} {
			if !slices.Contains(n.Roles, r) {
				t.Errorf("node roles %v lack %q", n.Roles, r)
			}
		}
		b, _ := json.Marshal(n.Settings["path"])
		if !strings.Contains(string(b), env["OPENSEARCH_SNAPSHOT_DIR"]) {
			t.Errorf("node path settings %s do not include path.repo %s", b, env["OPENSEARCH_SNAPSHOT_DIR"])
		}
	}

	var cs map[string]any
	osDo(t, "GET", u+"/_cluster/settings?include_defaults=true&flat_settings=true", "", &cs)
	found := false
	for _, sect := range []string{"persistent", "transient", "defaults"} {
		if m, ok := cs[sect].(map[string]any); ok {
			if v, ok := m["cluster.routing.allocation.disk.threshold_enabled"]; ok {
				found = true
				if v != "false" {
					t.Errorf("cluster.routing.allocation.disk.threshold_enabled=%v in %s, want false", v, sect)
				}
			}
		}
	}
	if !found {
		t.Error("cluster.routing.allocation.disk.threshold_enabled not reported")
	}

	suffix := fmt.Sprint(time.Now().UnixNano())
	index, pipeline, repo := "stack-check-"+suffix, "stack-check-"+suffix, "stack-check-"+suffix
	defer func() {
		osDo(t, "DELETE", u+"/"+index, "", nil)
		osDo(t, "DELETE", u+"/_ingest/pipeline/"+pipeline, "", nil)
		osDo(t, "DELETE", u+"/_snapshot/"+repo+"/s1", "", nil)
		osDo(t, "DELETE", u+"/_snapshot/"+repo, "", nil)
	}()

	// Ingest role: a pipeline runs on index.
	if code := osDo(t, "PUT", u+"/_ingest/pipeline/"+pipeline, `{"processors":[{"set":{"field":"via","value":"pipeline"}}]}`, nil); code != 200 {
		t.Fatalf("put pipeline -> %d", code)
	}
	if code := osDo(t, "PUT", u+"/"+index, `{"settings":{"number_of_shards":1,"number_of_replicas":0}}`, nil); code != 200 {
		t.Fatalf("create index -> %d", code)
	}
	if code := osDo(t, "PUT", u+"/"+index+"/_doc/1?pipeline="+pipeline+"&refresh=true&version=7&version_type=external", `{"body":"こんにちは"}`, nil); code != 201 {
		t.Fatalf("index through pipeline -> %d", code)
	}
	var doc struct {
		Version int64          `json:"_version"`
		Source  map[string]any `json:"_source"`
	}
	osDo(t, "GET", u+"/"+index+"/_doc/1", "", &doc)
	if doc.Source["via"] != "pipeline" || doc.Version != 7 {
		t.Errorf("doc = %+v, want via=pipeline and _version 7", doc)
	}

	// Snapshots into an fs repository under path.repo.
	loc := filepath.Join(env["OPENSEARCH_SNAPSHOT_DIR"], repo)
	if code := osDo(t, "PUT", u+"/_snapshot/"+repo, fmt.Sprintf(`{"type":"fs","settings":{"location":%q}}`, loc), nil); code != 200 {
		t.Fatalf("register fs repository at %s -> %d", loc, code)
	}
	var snap struct {
		Snapshot struct {
			State       string `json:"state"`
			StartMillis int64  `json:"start_time_in_millis"`
		} `json:"snapshot"`
	}
	if code := osDo(t, "PUT", u+"/_snapshot/"+repo+"/s1?wait_for_completion=true", fmt.Sprintf(`{"indices":%q}`, index), &snap); code != 200 {
		t.Fatalf("snapshot -> %d", code)
	}
	if snap.Snapshot.State != "SUCCESS" || snap.Snapshot.StartMillis == 0 {
		t.Errorf("snapshot = %+v, want SUCCESS with a start time", snap.Snapshot)
	}
}
