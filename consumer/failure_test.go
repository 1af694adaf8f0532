package consumer

import (
	"context"
	"errors"
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
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/reindexer/reindexer/indexer"
	"github.com/reindexer/reindexer/internal/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Failure paths of the pipeline, each asking "what is committed now?",
// against kfake and a scripted bulk endpoint. The shutdown-under-block
// replay is proven against real services in cmd/reindexer too.

// answerAll is a bulk endpoint answering every item with item.
type answerAll struct {
	item     atomic.Value // string: one item's JSON, e.g. {"index":{"status":201,"result":"created"}}
	requests atomic.Int64
}

func (a *answerAll) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	a.requests.Add(1)
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		if strings.HasPrefix(line, `{"index":`) || strings.HasPrefix(line, `{"delete":`) {
			n++
		}
	}
	it := a.item.Load().(string)
	items := make([]string, n)
	for i := range items {
		items[i] = it
	}
	io.WriteString(w, `{"items":[`+strings.Join(items, ",")+`]}`)
}

const (
	itemCreated = `{"index":{"status":201,"result":"created"}}`
	itemBlocked = `{"index":{"status":429,"error":{"type":"cluster_block_exception","reason":"index [i] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has read-only-allow-delete block];"}}}`
	itemMapping = `{"index":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [n]"}}}`
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// scriptedIndexer returns an indexer writing to a scripted endpoint that
// answers every item with item.
func scriptedIndexer(t *testing.T, item string, m *metrics.Metrics) (*indexer.Indexer, *answerAll) {
	t.Helper()
	a := &answerAll{}
	a.item.Store(item)
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	oc, err := opensearch.NewClient(opensearch.Config{Addresses: []string{srv.URL}, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	ix, err := indexer.New(oc, indexer.Config{Index: "i", Logger: quietLog(), Metrics: m,
		RetryInitial: time.Millisecond, RetryMax: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return ix, a
}

func committedOffset(t *testing.T, opts []kgo.Opt, group string, p int32) int64 {
	t.Helper()
	adm, err := kadm.NewOptClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	o, err := adm.FetchOffsets(context.Background(), group)
	if err != nil {
		return -1
	}
	r, ok := o.Lookup("t", p)
	if !ok {
		return -1
	}
	return r.At
}

// waitFor polls cond (an awaited condition, not a fixed sleep) until it
// holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestNoCommitPastFailedBatch: with no dead-letter topic, a bad record at
// offset 3 fails its batch and stops the pipeline; the next batch of the
// same partition (offsets 10-39), written fine during shutdown, must not
// move the commit past the bad record.
func TestNoCommitPastFailedBatch(t *testing.T) {
	_, opts := fakeKafka(t, "t", 1)
	var recs []*kgo.Record
	for i := 0; i < 40; i++ {
		v := envelope(fmt.Sprintf("d%d", i), 1)
		if i == 3 {
			v = []byte(`{"op":"upsert","id":"bad",`) // malformed
		}
		recs = append(recs, &kgo.Record{Topic: "t", Partition: 0, Value: v})
	}
	produce(t, opts, recs...)
	m := metrics.New(nil)
	ix, _ := scriptedIndexer(t, itemCreated, m)
	svc, err := New(Config{Topic: "t", Group: "g", Kafka: opts, Indexer: ix, BatchDocs: 10, Lanes: 1,
		CommitInterval: 5 * time.Millisecond, Logger: quietLog(), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	err = svc.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no dead-letter topic") {
		t.Fatalf("Run returned %v, want the no-dead-letter-topic error", err)
	}
	if c := committedOffset(t, opts, "g", 0); c > 3 {
		t.Fatalf("committed %d: past the record at offset 3 that was never written or dead-lettered", c)
	}
	if f := testutil.ToFloat64(m.Writes.WithLabelValues(metrics.Failed)); f < 1 {
		t.Errorf("writes_total{failed} = %v, want the abandoned records counted", f)
	}
}

// TestShutdownUnderBlockCommitsNothing: a bounded run (a replay) whose
// writes are all refused by a cluster block is stopped; the shutdown
// abandons the in-flight batch after ShutdownTimeout. The batch that holds
// only the end mark must not commit the end offsets: nothing was written.
// It also checks that every lane gets the shutdown deadline (two lanes
// stuck on the block), so the shutdown ends.
func TestShutdownUnderBlockCommitsNothing(t *testing.T) {
	_, opts := fakeKafka(t, "t", 2)
	var recs []*kgo.Record
	for i := 0; i < 20; i++ {
		for p := int32(0); p < 2; p++ {
			recs = append(recs, &kgo.Record{Topic: "t", Partition: p, Value: envelope(fmt.Sprintf("p%d-%d", p, i), 1)})
		}
	}
	produce(t, opts, recs...)
	m := metrics.New(nil)
	ix, a := scriptedIndexer(t, itemBlocked, m)
	p, err := newPipeline(Config{Topic: "t", Group: "g", Kafka: opts, Indexer: ix, BatchDocs: 8, Lanes: 2,
		CommitInterval: 5 * time.Millisecond, ShutdownTimeout: 200 * time.Millisecond, Logger: quietLog(), Metrics: m},
		map[int32]int64{0: 20, 1: 20})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.run(ctx) }()
	waitFor(t, 10*time.Second, "both partitions polled to their end and blocked bulks retried", func() bool {
		return a.requests.Load() > 10 && p.stats.records.Load() == 40
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after cancel: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("shutdown hung: a lane never got the shutdown deadline")
	}
	for part := int32(0); part < 2; part++ {
		if c := committedOffset(t, opts, "g", part); c > 0 {
			t.Errorf("partition %d committed %d though nothing was written (block)", part, c)
		}
	}
}

// TestDLQBreaker: every document rejected with a mapping error (a wrong
// index or mapping) must not empty the topic into the dead-letter topic:
// the breaker stops the pipeline, and its batch is not committed.
func TestDLQBreaker(t *testing.T) {
	c, opts := fakeKafka(t, "t", 1)
	if err := c.CreateTopic("t.dlq", 1, nil); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := 0; i < 300; i++ {
		recs = append(recs, &kgo.Record{Topic: "t", Partition: 0, Value: envelope(fmt.Sprintf("d%d", i), 1)})
	}
	produce(t, opts, recs...)
	m := metrics.New(nil)
	ix, _ := scriptedIndexer(t, itemMapping, m)
	svc, err := New(Config{Topic: "t", Group: "g", Kafka: opts, Indexer: ix, BatchDocs: 150, Lanes: 1, DLQTopic: "t.dlq",
		CommitInterval: 5 * time.Millisecond, Logger: quietLog(), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	err = svc.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "dead-letter breaker") {
		t.Fatalf("Run returned %v, want the breaker to stop it", err)
	}
	if c := committedOffset(t, opts, "g", 0); c > 0 {
		t.Fatalf("committed %d: the breaker's batch must not be committed", c)
	}
	if d := testutil.ToFloat64(m.Writes.WithLabelValues(metrics.DeadLettered)); d != 0 {
		t.Fatalf("%v records dead-lettered, want none once the breaker trips", d)
	}
}

func TestBreakerWindow(t *testing.T) {
	b := newBreaker(0.5, 100)
	if err := b.add(9, 9); err != nil {
		t.Fatalf("judged before window/10 records: %v", err)
	}
	if err := b.add(1, 0); err == nil {
		t.Fatal("9 of 10 dead-lettered did not trip")
	}
	b = newBreaker(0.5, 100)
	for i := 0; i < 50; i++ {
		if err := b.add(10, 4); err != nil {
			t.Fatalf("40%% dead-lettered tripped at batch %d: %v", i, err)
		}
	}
	// The window slides: 100 clean records erase the history.
	if err := b.add(100, 0); err != nil {
		t.Fatal(err)
	}
	if b.dead != 0 || b.n != 100 {
		t.Fatalf("window holds %d dead of %d", b.dead, b.n)
	}
	if err := (&breaker{}).add(10, 10); err != nil {
		t.Fatal("the zero breaker tripped")
	}
}

// TestStallVisible: with every write blocked, Status must show lag and a
// LastCommit that stops moving, so /healthz can report the stall.
func TestStallVisible(t *testing.T) {
	_, opts := fakeKafka(t, "t", 1)
	var recs []*kgo.Record
	for i := 0; i < 30; i++ {
		recs = append(recs, &kgo.Record{Topic: "t", Partition: 0, Value: envelope(fmt.Sprintf("d%d", i), 1)})
	}
	produce(t, opts, recs...)
	ix, a := scriptedIndexer(t, itemBlocked, nil)
	svc, err := New(Config{Topic: "t", Group: "g", Kafka: opts, Indexer: ix, Lanes: 1,
		CommitInterval: 5 * time.Millisecond, ShutdownTimeout: 50 * time.Millisecond, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, 10*time.Second, "records polled and writes blocked", func() bool {
		return a.requests.Load() > 3 && svc.Status().Lag > 0
	})
	first := svc.Status().LastCommit
	waitFor(t, 10*time.Second, "20 commit intervals", func() bool { return a.requests.Load() > 20 })
	time.Sleep(100 * time.Millisecond) // 20 commit intervals pass; LastCommit must not move
	st := svc.Status()
	if st.Lag != 30 || !st.LastCommit.Equal(first) {
		t.Fatalf("status %+v (first LastCommit %v): want lag 30 and LastCommit frozen while writes are blocked", st, first)
	}
}

// handDriven is the topic of the tests that call the pipeline's rebalance
// callbacks themselves: the fake cluster does not have it, so its group never
// assigns anything behind the test's back (which would race with it).
const handDriven = "hand-driven"

// TestAssignToSaturatedLanePauses: a partition assigned to a lane that is
// already full is paused at once.
func TestAssignToSaturatedLanePauses(t *testing.T) {
	_, opts := fakeKafka(t, "t", 3)
	ix, _ := scriptedIndexer(t, itemCreated, nil)
	p, err := newPipeline(Config{Topic: handDriven, Group: "g", Kafka: opts, Indexer: ix, Lanes: 1, Logger: quietLog()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.cl.Close()
	p.lanes[0].saturated = true
	p.assigned(context.Background(), p.cl, map[string][]int32{handDriven: {2}})
	paused := p.cl.PauseFetchPartitions(map[string][]int32{})
	if len(paused[handDriven]) != 1 || paused[handDriven][0] != 2 {
		t.Fatalf("paused %v: partition 2 joined a saturated lane and must be paused", paused)
	}
	// A batch of records that failed to decode counts its record bytes.
	b := &batch{bytes: p.cfg.BatchBytes}
	if !p.full(b) {
		t.Fatal("a batch holding BatchBytes of undecodable records is not full")
	}
}

// TestRetiredBounded: rebalances do not grow the summary's memory.
func TestRetiredBounded(t *testing.T) {
	_, opts := fakeKafka(t, "t", 2)
	ix, _ := scriptedIndexer(t, itemCreated, nil)
	p, err := newPipeline(Config{Topic: handDriven, Group: "g", Kafka: opts, Indexer: ix, Lanes: 2, Logger: quietLog()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.cl.Close()
	for i := 0; i < 100; i++ {
		p.assigned(context.Background(), p.cl, map[string][]int32{handDriven: {0, 1}})
		parts := p.lookup([]int32{0, 1})
		for _, pt := range parts {
			pt.count, pt.first, pt.last = 1, int64(i), int64(i)
		}
		p.forget(parts)
	}
	if len(p.retired) != 2 {
		t.Fatalf("retired holds %d entries after 100 rebalances of 2 partitions", len(p.retired))
	}
	if s := p.summary(); s.Partitions[0].Records != 100 || s.Partitions[0].First != 0 || s.Partitions[0].Last != 99 {
		t.Fatalf("summary %+v", s.Partitions)
	}
}

// TestDeadLetterGivesUpOnRevoked: a dead-letter outage must not hold a
// revoked partition's records forever.
func TestDeadLetterGivesUpOnRevoked(t *testing.T) {
	_, opts := fakeKafka(t, "t", 1)
	ix, _ := scriptedIndexer(t, itemCreated, nil)
	p, err := newPipeline(Config{Topic: "t", Group: "g", Kafka: opts, Indexer: ix, DLQTopic: "missing-dlq",
		Logger: quietLog()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.cl.Close()
	defer p.dlq.Close()
	pt := &part{id: 0}
	go func() {
		time.Sleep(300 * time.Millisecond) // the revocation happens while the produce keeps failing
		pt.dead.Store(true)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = p.deadLetter(ctx, []deadRec{{part: pt, rec: &kgo.Record{Topic: "t", Value: []byte("x")}, class: "decode", reason: "malformed_json"}})
	if !errors.Is(err, errRevoked) {
		t.Fatalf("deadLetter = %v, want errRevoked once the partition is revoked", err)
	}
}

// overflowingLane returns a one-lane pipeline (batches of 10 documents)
// whose lane was handed a 95-record poll of partition 0: 10 sealed, 10
// open, 75 in its overflow.
func overflowingLane(t *testing.T) (*pipeline, *lane, *part) {
	t.Helper()
	_, opts := fakeKafka(t, "t", 1)
	ix, _ := scriptedIndexer(t, itemCreated, nil)
	p, err := newPipeline(Config{Topic: handDriven, Group: "g", Kafka: opts, Indexer: ix, Lanes: 1, BatchDocs: 10,
		Linger: time.Hour, RevokeTimeout: 10 * time.Millisecond, Logger: quietLog()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.cl.Close)
	l := p.lanes[0]
	pt := &part{id: 0, lane: l, end: -1, durable: -1, committed: -1}
	l.parts[0] = pt
	var recs []*kgo.Record
	for i := 0; i < 95; i++ {
		recs = append(recs, &kgo.Record{Topic: "t", Partition: 0, Offset: int64(i), Value: envelope(fmt.Sprintf("d%d", i), 1)})
	}
	l.append(pt, recs)
	return p, l, pt
}

// TestLaneOverflowBoundsBatches: a poll bigger than a full lane can take
// waits, undecoded, in the lane's overflow; batches never outgrow their
// budget and the records still go out in offset order.
func TestLaneOverflowBoundsBatches(t *testing.T) {
	p, l, _ := overflowingLane(t)
	if !l.saturated || len(l.overflow) != 75 || l.open.ib.Len() != 10 || l.sealed.ib.Len() != 10 {
		t.Fatalf("after a 95-record poll: saturated %v, overflow %d, open %d, sealed %d; want true, 75, 10, 10",
			l.saturated, len(l.overflow), l.open.ib.Len(), l.sealed.ib.Len())
	}
	if paused := p.cl.PauseFetchPartitions(map[string][]int32{}); len(paused[handDriven]) != 1 {
		t.Fatalf("a saturated lane's partition is not paused: %v", paused)
	}
	next := int64(0)
	for next < 95 {
		l.flush() // the open batch goes without lingering
		b := l.next()
		if n := b.ib.Len(); n > 10 {
			t.Fatalf("a batch of %d items, over BatchDocs 10", n)
		}
		for _, r := range b.refs {
			if r.offset != next {
				t.Fatalf("record %d came out where %d was due", r.offset, next)
			}
			next++
		}
		p.putBatch(b)
	}
	if next != 95 || l.saturated {
		t.Fatalf("%d records came out (saturated %v), want all 95 and the lane resumed", next, l.saturated)
	}
}

// TestLaneCloseDropsBuffered: shutdown's close drops what the lane still
// buffers (sealed and open batches, the overflow) instead of sending it:
// a throttled worker would otherwise keep writing long past its drain
// deadline. Nothing of it was written, so the partition's durable offset
// (what a commit may claim) does not move.
func TestLaneCloseDropsBuffered(t *testing.T) {
	p, l, pt := overflowingLane(t)
	l.close()
	if b := l.next(); b != nil {
		t.Fatalf("a closed lane sent a batch of %d records; want everything buffered dropped", b.ib.Len())
	}
	if pt.durable != -1 {
		t.Fatalf("durable offset %d after dropping unsent records, want -1", pt.durable)
	}
	if got := testutil.ToFloat64(p.m.BufferedBytes); got != 0 {
		t.Fatalf("buffered bytes gauge %v after close, want 0", got)
	}
}

// TestRejectedRecordReadBack: batches keep only offsets, so a record that
// OpenSearch rejects is read back from Kafka for the dead-letter topic:
// key, value and headers byte for byte, and its source coordinates.
func TestRejectedRecordReadBack(t *testing.T) {
	c, opts := fakeKafka(t, "t", 2)
	if err := c.CreateTopic("t.dlq", 1, nil); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := 0; i < 40; i++ {
		recs = append(recs, &kgo.Record{Topic: "t", Partition: int32(i % 2), Key: []byte(fmt.Sprintf("k%d", i)),
			Value: envelope(fmt.Sprintf("d%d", i), 1), Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte(fmt.Sprintf("t%d", i))}}})
	}
	produce(t, opts, recs...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var items []string
		for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
			switch {
			case strings.Contains(line, `"_id":"d7"`), strings.Contains(line, `"_id":"d30"`):
				items = append(items, itemMapping)
			case strings.HasPrefix(line, `{"index":`):
				items = append(items, itemCreated)
			}
		}
		io.WriteString(w, `{"items":[`+strings.Join(items, ",")+`]}`)
	}))
	defer srv.Close()
	oc, err := opensearch.NewClient(opensearch.Config{Addresses: []string{srv.URL}, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	ix, err := indexer.New(oc, indexer.Config{Index: "i", Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Config{Topic: "t", Group: "g", Kafka: opts, Indexer: ix, BatchDocs: 8, Lanes: 2, DLQTopic: "t.dlq",
		CommitInterval: 5 * time.Millisecond, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	waitFor(t, 20*time.Second, "both partitions committed to 20", func() bool {
		return committedOffset(t, opts, "g", 0) == 20 && committedOffset(t, opts, "g", 1) == 20
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics("t.dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string]*kgo.Record{}
	pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer pcancel()
	for len(got) < 2 && pctx.Err() == nil {
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) { got[string(r.Key)] = r })
	}
	for _, i := range []int{7, 30} {
		r := got[fmt.Sprintf("k%d", i)]
		if r == nil {
			t.Fatalf("record k%d is not in the dead-letter topic (got %d records)", i, len(got))
		}
		if string(r.Value) != string(envelope(fmt.Sprintf("d%d", i), 1)) || headerValue(r, "trace") != fmt.Sprintf("t%d", i) ||
			headerValue(r, HeaderSourceOffset) != fmt.Sprint(i/2) || headerValue(r, HeaderErrorReason) != "mapper_parsing_exception" {
			t.Errorf("dead letter k%d: value %s, headers %v", i, r.Value, r.Headers)
		}
	}
}
