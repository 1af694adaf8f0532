package consumer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/reindexer/reindexer/indexer"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Unit tests of the consumer logic against kfake (franz-go's in-process
// Kafka) and a scripted bulk endpoint. The same behaviour is proven against
// real Kafka and OpenSearch in the integration tests.

func fakeKafka(t *testing.T, topic string, partitions int32) (*kfake.Cluster, []kgo.Opt) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
}

func produce(t *testing.T, opts []kgo.Opt, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func envelope(id string, version int) []byte {
	return []byte(fmt.Sprintf(`{"op":"upsert","id":%q,"version":%d,"doc":{"n":%d}}`, id, version, version))
}

// bulkScript answers bulk requests: every item succeeds except those whose
// id is in failing, which get 503 while failing is set.
type bulkScript struct {
	failing atomic.Value // string id
	sent    atomic.Int64
}

func (s *bulkScript) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var out []string
	fail, _ := s.failing.Load().(string)
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		var m map[string]struct {
			ID string `json:"_id"`
		}
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		a, ok := m["index"]
		if !ok {
			continue
		}
		s.sent.Add(1)
		if a.ID == fail {
			out = append(out, `{"index":{"status":503,"error":{"type":"unavailable_shards_exception","reason":"scripted"}}}`)
		} else {
			out = append(out, `{"index":{"status":201,"result":"created"}}`)
		}
	}
	io.WriteString(w, `{"items":[`+strings.Join(out, ",")+`]}`)
}

// TestCommitNeverPassesAFailingRecord: while one record keeps failing, the
// partition's commit stays at its offset though later records succeed;
// once it succeeds the commit reaches the end.
func TestCommitNeverPassesAFailingRecord(t *testing.T) {
	_, opts := fakeKafka(t, "t", 1)
	var recs []*kgo.Record
	for i := 0; i < 50; i++ {
		recs = append(recs, &kgo.Record{Topic: "t", Partition: 0, Value: envelope(fmt.Sprintf("d%d", i), 1)})
	}
	produce(t, opts, recs...)
	script := &bulkScript{}
	script.failing.Store("d20")
	srv := httptest.NewServer(script)
	defer srv.Close()
	oc, err := opensearch.NewClient(opensearch.Config{Addresses: []string{srv.URL}, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ix, err := indexer.New(oc, indexer.Config{Index: "i", Logger: quiet, RetryInitial: time.Millisecond, RetryMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Config{Topic: "t", Group: "g", Kafka: opts, Indexer: ix, BatchDocs: 10, Lanes: 2,
		CommitInterval: 10 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	adm, _ := kadm.NewOptClient(opts...)
	defer adm.Close()
	committed := func() int64 {
		o, err := adm.FetchOffsets(ctx, "g")
		if err != nil {
			return -1
		}
		r, ok := o.Lookup("t", 0)
		if !ok {
			return -1
		}
		return r.At
	}
	// Wait until d20 has been tried many times, then check the commit.
	for script.sent.Load() < 200 {
		time.Sleep(5 * time.Millisecond) // poll interval of an awaited condition
	}
	if c := committed(); c > 20 {
		t.Fatalf("committed %d while the record at offset 20 is still failing", c)
	}
	script.failing.Store("")
	deadline := time.Now().Add(10 * time.Second)
	for committed() != 50 {
		if time.Now().After(deadline) {
			t.Fatalf("commit stuck at %d after the failure cleared", committed())
		}
		time.Sleep(5 * time.Millisecond) // poll interval of an awaited condition
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := svc.Summary(); s.Created != 50 || s.Records != 50 {
		t.Fatalf("summary %+v", s)
	}
}
