//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reindexer/reindexer/checkpoint"
	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/faultproxy"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/reindexer/reindexer/internal/refmodel"
	"github.com/reindexer/reindexer/replay"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ---- helpers shared by the replay and snapshot tests ----

// waitExit waits up to timeout for p to exit; it kills p and fails the test
// when it does not.
func waitExit(t testing.TB, p *proc, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.kill()
		b, _ := os.ReadFile(p.log)
		t.Fatalf("%s did not exit within %s; log tail:\n%s", p.name, timeout, tail(b, 3000))
	}
}

// readLog returns p's log so far.
func readLog(p *proc) string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// replayArgs are the flags of a replay of topic into index through group,
// with its checkpoint history (and stored plan) in ck, printing --json.
func replayArgs(env *itest.Env, topic, group, index, ck string, extra ...string) []string {
	return append([]string{"replay",
		"--brokers", strings.Join(env.KafkaBrokers, ","),
		"--opensearch", env.OpenSearchURL,
		"--topic", topic, "--group", group, "--index", index,
		"--checkpoint-index", ck,
		"--session-timeout", "6s", "--commit-interval", "200ms", "--checkpoint-interval", "1s",
		"--json", "--progress", "log",
	}, extra...)
}

// replayRun is one finished replay process.
type replayRun struct {
	Sum  summaryJSON
	Log  string
	Took time.Duration // process start to exit
}

// runReplay runs a replay to its exit, requires exit code 0 and a complete
// --json summary, and returns it.
func runReplay(t testing.TB, name string, timeout time.Duration, args ...string) replayRun {
	t.Helper()
	began := time.Now()
	p, out := startSplit(t, name, args...)
	return finishReplay(t, p, out, began, timeout)
}

func finishReplay(t testing.TB, p *proc, out string, began time.Time, timeout time.Duration) replayRun {
	t.Helper()
	waitExit(t, p, timeout)
	r := replayRun{Log: readLog(p), Took: time.Since(began)}
	if p.err != nil {
		t.Fatalf("%s exited with %v, want 0; log tail:\n%s", p.name, p.err, tail([]byte(r.Log), 3000))
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &r.Sum); err != nil {
		t.Fatalf("%s: stdout is not the --json summary: %v\n%s", p.name, err, data)
	}
	if !r.Sum.Complete {
		t.Fatalf("%s: summary says incomplete:\n%s", p.name, data)
	}
	return r
}

// activeSpan returns how long a replay held its partitions: from the first
// "partitions assigned" to the last "partitions revoked" log line (the
// replay's own work, without start-up and group joins).
func activeSpan(log string) time.Duration {
	var from, to time.Time
	for _, line := range strings.Split(log, "\n") {
		ts, _, ok := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		if !ok {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			continue
		}
		switch {
		case strings.Contains(line, `msg="partitions assigned"`) && from.IsZero():
			from = at
		case strings.Contains(line, `msg="partitions revoked"`):
			to = at
		}
	}
	if from.IsZero() || to.Before(from) {
		return 0
	}
	return to.Sub(from)
}

// rate renders records per second over d.
func rate(records int64, d time.Duration) string {
	if d <= 0 {
		return "?"
	}
	return fmt.Sprintf("%.0f", float64(records)/d.Seconds())
}

// ranges maps a plan's rows by partition.
func ranges(rows []planRow) map[int32]planRow {
	out := map[int32]planRow{}
	for _, r := range rows {
		out[r.Partition] = r
	}
	return out
}

// checkReadExactly checks that the replay read exactly [wantStarts,
// wantEnds) per partition: first offset = start and last = end-1 (nothing
// for an empty range), that the plan's ends are wantEnds and, unless it
// resumed an earlier run (whose planned starts lie before what was left),
// that its starts are wantStarts.
func checkReadExactly(t testing.TB, what string, sum summaryJSON, wantStarts, wantEnds map[int32]int64) {
	t.Helper()
	rows := ranges(sum.Plan.Partitions)
	if len(rows) != len(wantEnds) {
		t.Errorf("%s: plan has %d partitions, want %d: %+v", what, len(rows), len(wantEnds), sum.Plan.Partitions)
	}
	var total int64
	for p, end := range wantEnds {
		r, ok := rows[p]
		if !ok {
			t.Errorf("%s: partition %d is not in the plan", what, p)
			continue
		}
		if r.End != end || (!sum.Plan.Resumed && r.Start != wantStarts[p]) {
			t.Errorf("%s: partition %d planned [%d,%d), want [%d,%d)", what, p, r.Start, r.End, wantStarts[p], end)
		}
		total += end - wantStarts[p]
		ps, read := sum.Partitions[p]
		switch {
		case wantStarts[p] >= end && read:
			t.Errorf("%s: partition %d has an empty range but the replay read offsets %d-%d", what, p, ps.First, ps.Last)
		case wantStarts[p] < end && !read:
			t.Errorf("%s: partition %d: nothing read, want offsets %d-%d", what, p, wantStarts[p], end-1)
		case wantStarts[p] < end && (ps.First != wantStarts[p] || ps.Last != end-1 || ps.Records != end-wantStarts[p]):
			t.Errorf("%s: partition %d read offsets %d-%d (%d records), want %d-%d (%d)", what, p, ps.First, ps.Last, ps.Records,
				wantStarts[p], end-1, end-wantStarts[p])
		}
	}
	if sum.Records != total {
		t.Errorf("%s: %d records read, want %d", what, sum.Records, total)
	}
}

// fedRec is one record a feed produced.
type fedRec struct {
	Offset int64
	Event  chatgen.Event
	Time   time.Time // the record's timestamp
}

// feed produces generated events to a topic, synchronously or slowly in the
// background (like produceSlowly, but it can be stopped when a condition is
// met), and records the partition, offset and timestamp of every record.
type feed struct {
	t     testing.TB
	topic string
	cl    *kgo.Client

	genMu sync.Mutex
	gen   *chatgen.Generator

	mu   sync.Mutex
	recs map[int32][]fedRec
	n    int

	stop, done chan struct{}
	err        error
}

func newFeed(t testing.TB, env *itest.Env, topic string, gen *chatgen.Generator) *feed {
	return &feed{
		t: t, topic: topic, gen: gen, recs: map[int32][]fedRec{},
		cl: itest.Kafka(t, env, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20)),
	}
}

func (f *feed) next(n int) []chatgen.Event {
	f.genMu.Lock()
	defer f.genMu.Unlock()
	return f.gen.Stream(n)
}

func (f *feed) send(ctx context.Context, events []chatgen.Event) error {
	recs := make([]*kgo.Record, len(events))
	which := make(map[*kgo.Record]chatgen.Event, len(events))
	for i, e := range events {
		recs[i] = itest.Record(f.topic, e)
		which[recs[i]] = e
	}
	res := f.cl.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range res {
		p := r.Record.Partition
		f.recs[p] = append(f.recs[p], fedRec{Offset: r.Record.Offset, Event: which[r.Record], Time: r.Record.Timestamp})
	}
	f.n += len(res)
	return nil
}

// produce produces n more events synchronously and returns the ends.
func (f *feed) produce(n int) map[int32]int64 {
	f.t.Helper()
	for n > 0 {
		k := min(n, 5000)
		if err := f.send(context.Background(), f.next(k)); err != nil {
			f.t.Fatalf("produce: %v", err)
		}
		n -= k
	}
	return f.ends()
}

// startSlowly produces chunk events every interval until stopSlowly.
func (f *feed) startSlowly(chunk int, interval time.Duration) {
	f.stop, f.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(f.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			if err := f.send(context.Background(), f.next(chunk)); err != nil {
				f.err = err
				return
			}
			select {
			case <-f.stop:
				return
			case <-tick.C:
			}
		}
	}()
}

// stopSlowly stops the background producer and returns the ends.
func (f *feed) stopSlowly() map[int32]int64 {
	f.t.Helper()
	close(f.stop)
	<-f.done
	if f.err != nil {
		f.t.Fatalf("producing: %v", f.err)
	}
	return f.ends()
}

func (f *feed) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// ends returns, per partition, one past the last offset produced.
func (f *feed) ends() map[int32]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[int32]int64{}
	for p, rs := range f.recs {
		for _, r := range rs {
			out[p] = max(out[p], r.Offset+1)
		}
	}
	return out
}

// records returns the records produced so far, in offset order per
// partition.
func (f *feed) records() map[int32][]fedRec {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[int32][]fedRec{}
	for p, rs := range f.recs {
		c := slices.Clone(rs)
		sort.Slice(c, func(i, j int) bool { return c[i].Offset < c[j].Offset })
		out[p] = c
	}
	return out
}

// model returns the reference state of the records for which in is true.
func (f *feed) model(t testing.TB, mode refmodel.DeleteMode, in func(p int32, off int64) bool) map[string]refmodel.Doc {
	t.Helper()
	m, err := refmodel.New(mode)
	if err != nil {
		t.Fatal(err)
	}
	for p, rs := range f.records() {
		for _, r := range rs {
			if in(p, r.Offset) {
				if err := m.Apply(r.Event.ID, r.Event.Op, r.Event.Version, r.Event.Doc); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return m.Expected()
}

// below selects the records below ends.
func below(ends map[int32]int64) func(int32, int64) bool {
	return func(p int32, off int64) bool { return off < ends[p] }
}

// within selects the records in [starts, ends).
func within(starts, ends map[int32]int64) func(int32, int64) bool {
	return func(p int32, off int64) bool { s, ok := starts[p]; return ok && off >= s && off < ends[p] }
}

// idsOnlyOutside returns the ids whose every record lies outside in: a
// replay of in must leave them out of a fresh index.
func (f *feed) idsOnlyOutside(in func(int32, int64) bool) []string {
	inside, outside := map[string]bool{}, map[string]bool{}
	for p, rs := range f.records() {
		for _, r := range rs {
			if in(p, r.Offset) {
				inside[r.Event.ID] = true
			} else {
				outside[r.Event.ID] = true
			}
		}
	}
	var out []string
	for id := range outside {
		if !inside[id] {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// checkAbsent fails when any of ids is in dump.
func checkAbsent(t testing.TB, what string, dump map[string]itest.DocState, ids []string) {
	t.Helper()
	var found []string
	for _, id := range ids {
		if _, ok := dump[id]; ok {
			found = append(found, id)
		}
	}
	if len(found) > 0 {
		t.Errorf("%s: %d of %d ids that only records outside the range carry are in the index, e.g. %v", what, len(found), len(ids), found[:min(5, len(found))])
	}
}

// sameDump fails unless a and b hold the same ids with the same _version
// and _source.
func sameDump(t testing.TB, what string, a, b map[string]itest.DocState) {
	t.Helper()
	var diffs []string
	for id, da := range a {
		db, ok := b[id]
		switch {
		case !ok:
			diffs = append(diffs, id+": only in the first")
		case da.Version != db.Version:
			diffs = append(diffs, fmt.Sprintf("%s: _version %d vs %d", id, da.Version, db.Version))
		case !bytes.Equal(da.Source, db.Source) && !itest.SameJSON(da.Source, db.Source):
			diffs = append(diffs, id+": _source differs")
		}
	}
	for id := range b {
		if _, ok := a[id]; !ok {
			diffs = append(diffs, id+": only in the second")
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		t.Errorf("%s: %d ids differ (%d vs %d documents), e.g. %v", what, len(diffs), len(a), len(b), diffs[:min(10, len(diffs))])
	}
}

// commits returns group's committed offsets on topic.
func commits(t testing.TB, adm *kadm.Client, group, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fetched, err := replay.FetchCommits(ctx, adm, group)
	// A young broker answers COORDINATOR_NOT_AVAILABLE while it creates
	// __consumer_offsets: retriable errors are retried until the deadline.
	for err != nil && kerr.IsRetriable(err) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond) // retry interval
		fetched, err = replay.FetchCommits(ctx, adm, group)
	}
	if err != nil {
		t.Fatalf("commits of %s: %v", group, err)
	}
	out := map[int32]int64{}
	fetched.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out
}

// osDo sends a JSON request to OpenSearch and returns the status and body.
func osDo(t testing.TB, env *itest.Env, method, path, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, env.OpenSearchURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, data
}

// osOK is osDo that fails the test unless the answer is 2xx.
func osOK(t testing.TB, env *itest.Env, method, path, body string) []byte {
	t.Helper()
	status, data := osDo(t, env, method, path, body)
	if status < 200 || status > 299 {
		t.Fatalf("%s %s: HTTP %d: %s", method, path, status, data)
	}
	return data
}

// deleteRiskLogged reports whether a log holds the gc_deletes warning with
// the risk and both remedies.
func deleteRiskLogged(log string) bool {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "deleted documents can come back") && strings.Contains(line, "gc_deletes") &&
			strings.Contains(line, "--delete-mode tombstone") && strings.Contains(line, "raise index.gc_deletes") {
			return true
		}
	}
	return false
}

// chatConfig is the event mix of these tests: deletes (a third of them as
// Kafka tombstones), re-creates, edits, duplicates and late events.
func chatConfig(seed int64, ids int) chatgen.Config {
	cfg := chatgen.DefaultConfig(seed)
	cfg.IDs = ids
	cfg.DeleteProb = 0.08
	cfg.RecreateProb = 0.03
	cfg.TombstoneProb = 0.3
	return cfg
}

// nextMilli waits for the next millisecond and returns the time then: every
// record produced before the call has an earlier timestamp (Kafka keeps
// milliseconds), every record produced after it one at or after the result.
func nextMilli() time.Time {
	last := time.Now().UnixMilli()
	for {
		if now := time.Now(); now.UnixMilli() > last {
			return now
		}
		time.Sleep(100 * time.Microsecond) // poll interval
	}
}

func sum64(m map[int32]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// ---- the tests ----

// TestReplayKillResume kills a replay of a large range with SIGKILL part
// way, restarts it at once with the same flags and group, and checks that it
// resumes from the committed offsets with the stored plan's end offsets
// (events produced after the first start are not replayed), exits 0, and
// leaves the index equal to the reference state of the records below those
// ends.
func TestReplayKillResume(t *testing.T) {
	n := 60000
	if short() {
		n = 40000 // 20000 is sometimes replayed within one commit interval
	}
	env := itest.Services(t)
	topic, index, ck := itest.Name(t, "kr"), itest.Name(t, "kr"), itest.Name(t, "ck")
	createTopicDLQ(t, env, topic, 4)
	itest.CreateIndex(t, env, index, `{"settings":{"number_of_shards":2,"number_of_replicas":0}}`)
	itest.CleanupIndex(t, env, ck)
	f := newFeed(t, env, topic, chatgen.MustNew(chatConfig(31, n)))
	began := time.Now()
	produced := f.produce(n)
	t.Logf("produced %d events in %s", n, time.Since(began).Round(time.Millisecond))

	cl := itest.OpenSearch(t, env)
	adm := kadm.NewClient(itest.Kafka(t, env))
	store := checkpoint.NewStore(cl, ck)
	group := itest.Name(t, "g")
	// A duration start: a restart would compute another start time, so
	// only the stored plan can make the two runs agree.
	args := replayArgs(env, topic, group, index, ck, "--from", "1h")

	first, _ := startSplit(t, "replay-1", args...)
	firstStart := time.Now()
	var plan replay.Plan
	deadline := time.Now().Add(60 * time.Second)
	for {
		// Errors are expected while the checkpoint index is being created.
		if p, ok, err := replay.LoadPlan(t.Context(), store, group, topic, index); err == nil && ok {
			plan = p
			break
		}
		if first.exited() {
			t.Fatalf("replay-1 exited before storing its plan: %v\n%s", first.err, tail([]byte(readLog(first)), 3000))
		}
		if time.Now().After(deadline) {
			t.Fatal("replay-1 stored no plan within 60s")
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
	ends, starts := map[int32]int64{}, map[int32]int64{}
	for _, r := range plan.Partitions {
		ends[r.Partition], starts[r.Partition] = r.End, r.Start
	}
	if !maps.Equal(ends, produced) {
		t.Fatalf("stored plan ends %v, want the ends when it started %v", ends, produced)
	}
	// New events from now on must not be replayed.
	f.startSlowly(50, 50*time.Millisecond)

	// Kill it once its commits show it part way.
	total := plan.Records()
	var atKill map[int32]int64
	for deadline := time.Now().Add(2 * time.Minute); ; {
		c := commits(t, adm, group, topic)
		var done int64
		for p, s := range starts {
			if at, ok := c[p]; ok {
				done += min(max(at, s), ends[p]) - s
			}
		}
		if first.exited() {
			t.Fatalf("replay-1 exited (%v) before it could be killed part way (done %d of %d); raise n", first.err, done, total)
		}
		if done >= total/10 {
			if done >= total {
				t.Fatalf("replay-1 had committed everything (%d) before it could be killed; raise n", done)
			}
			first.kill()
			atKill = commits(t, adm, group, topic)
			t.Logf("killed replay-1 (SIGKILL) %s after it started, at %d of %d offsets (%.0f%%); commits %v",
				time.Since(firstStart).Round(time.Millisecond), done, total, 100*float64(done)/float64(total), atKill)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replay-1 made no progress to a tenth within 2 minutes (done %d of %d)", done, total)
		}
		time.Sleep(30 * time.Millisecond) // poll interval
	}
	var left int64
	for p, e := range ends {
		left += e - atKill[p]
	}
	if left <= 0 {
		t.Fatalf("nothing left to do after the kill: commits %v, ends %v", atKill, ends)
	}

	// Restart at once: the killed member is still in the group until its
	// session times out.
	second := runReplay(t, "replay-2", 3*time.Minute, args...)
	finalEnds := f.stopSlowly()
	for p, e := range ends {
		if finalEnds[p] <= e {
			t.Errorf("partition %d: no event was produced after the plan (end %d, now %d): the test proves nothing", p, e, finalEnds[p])
		}
	}
	s := second.Sum
	if !s.Plan.Resumed || !strings.Contains(second.Log, "found the plan of an earlier run") {
		t.Errorf("the restart did not resume the stored plan (resumed=%v)", s.Plan.Resumed)
	}
	if !strings.Contains(second.Log, "the replay group still has members") {
		t.Errorf("the restart did not say that the killed run was still a member of the group")
	}
	if !s.Plan.Created.Equal(plan.Created) {
		t.Errorf("restart ran a plan created %s, the stored one was created %s", s.Plan.Created, plan.Created)
	}
	// Same ends as the stored plan; it read from the commits at the kill.
	checkReadExactly(t, "restart", s, atKill, ends)
	rem := ranges(s.Plan.Remaining)
	for p, e := range ends {
		if r := rem[p]; r.Start != atKill[p] || r.End != e {
			t.Errorf("restart: partition %d remaining [%d,%d), want [%d,%d)", p, r.Start, r.End, atKill[p], e)
		}
		if r := ranges(s.Plan.Partitions)[p]; r.Start != starts[p] {
			t.Errorf("restart: partition %d planned start %d, the stored plan's is %d", p, r.Start, starts[p])
		}
	}
	dump := itest.DumpIndex(t, env, index)
	itest.CompareToModel(t, dump, f.model(t, refmodel.ModeDelete, below(ends)))
	late := f.idsOnlyOutside(below(ends))
	if len(late) == 0 {
		t.Errorf("no id was created after the plan: the check of the end offsets proves nothing")
	}
	checkAbsent(t, "restart", dump, late)
	span := activeSpan(second.Log)
	t.Logf("kill/resume: %d offsets planned, %d done at the kill; the restart read %d records in %s (%.0f records/s by its summary, which includes waiting %s for the killed member's session to expire; %s records/s over the %s it held the partitions; process %s): created %d updated %d deleted %d not_found %d stale %d duplicate %d; %d events arrived after the plan and were left out",
		total, total-left, s.Records, time.Duration(s.DurationMS)*time.Millisecond, s.RatePerSec,
		(time.Duration(s.DurationMS)*time.Millisecond - span).Round(time.Millisecond), rate(s.Records, span), span.Round(time.Millisecond),
		second.Took.Round(time.Millisecond), s.Created, s.Updated, s.Deleted, s.NotFound, s.Stale, s.Duplicate, sum64(finalEnds)-sum64(ends))
}

// TestReplayFromBounds checks that --from <RFC3339> and --from-offsets start
// exactly where asked and stop exactly at the end offsets captured at
// start, while new events keep arriving.
func TestReplayFromBounds(t *testing.T) {
	n := 6000
	if short() {
		n = 3000
	}
	env := itest.Services(t)
	topic, ck := itest.Name(t, "fb"), itest.Name(t, "ck")
	createTopicDLQ(t, env, topic, 3)
	itest.CleanupIndex(t, env, ck)
	byTime, byOffsets := itest.Name(t, "fb-time"), itest.Name(t, "fb-offs")
	for _, ix := range []string{byTime, byOffsets} {
		itest.CreateIndex(t, env, ix, `{"settings":{"number_of_shards":1,"number_of_replicas":0}}`)
	}
	f := newFeed(t, env, topic, chatgen.MustNew(chatConfig(41, 3*n)))
	mid := f.produce(n)
	from := nextMilli()
	f.produce(n)
	f.startSlowly(20, 50*time.Millisecond)

	adm := kadm.NewClient(itest.Kafka(t, env))
	listed, err := adm.ListOffsetsAfterMilli(t.Context(), from.UnixMilli(), topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	timeStarts := map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) { timeStarts[o.Partition] = o.Offset })
	for p, s := range timeStarts {
		if s != mid[p] {
			t.Fatalf("partition %d: first offset at or after %s is %d; the second batch began at %d", p, from.Format(time.RFC3339Nano), s, mid[p])
		}
	}
	offStarts := map[int32]int64{0: mid[0] / 2, 1: mid[1] + 7} // partition 2 not listed: not replayed
	fromOffsets := fmt.Sprintf("0:%d,1:%d", offStarts[0], offStarts[1])

	// Both replays at once, while events keep arriving.
	began := time.Now()
	pt, outT := startSplit(t, "replay-from-time", replayArgs(env, topic, itest.Name(t, "g"), byTime, ck,
		"--from", from.UTC().Format(time.RFC3339Nano), "--delete-mode", "tombstone")...)
	po, outO := startSplit(t, "replay-from-offsets", replayArgs(env, topic, itest.Name(t, "g"), byOffsets, ck,
		"--from-offsets", fromOffsets, "--delete-mode", "tombstone")...)
	rt := finishReplay(t, pt, outT, began, 2*time.Minute)
	ro := finishReplay(t, po, outO, began, 2*time.Minute)
	final := f.stopSlowly()

	for _, c := range []struct {
		name   string
		run    replayRun
		index  string
		starts map[int32]int64
	}{{"--from " + from.UTC().Format(time.RFC3339Nano), rt, byTime, timeStarts}, {"--from-offsets " + fromOffsets, ro, byOffsets, offStarts}} {
		ends := map[int32]int64{}
		starts := map[int32]int64{}
		for _, r := range c.run.Sum.Plan.Partitions {
			ends[r.Partition] = r.End
			if s, ok := c.starts[r.Partition]; ok {
				starts[r.Partition] = s
			} else {
				starts[r.Partition] = r.End // not listed: empty range
			}
		}
		for p := range int32(3) {
			if e, ok := ends[p]; !ok || e <= mid[p] || e >= final[p] {
				t.Errorf("%s: partition %d end %d: want one captured while events arrived (after %d, before the final %d)", c.name, p, e, mid[p], final[p])
			}
		}
		checkReadExactly(t, c.name, c.run.Sum, starts, ends)
		in := within(starts, ends)
		dump := itest.DumpIndex(t, env, c.index)
		itest.CompareToModel(t, dump, f.model(t, refmodel.ModeTombstone, in))
		outside := f.idsOnlyOutside(in)
		after := 0 // ids first seen at or after the end: created after the plan
		recs := f.records()
		first := map[string]int64{}
		for p, rs := range recs {
			for _, r := range rs {
				if _, ok := first[r.Event.ID]; !ok {
					first[r.Event.ID] = r.Offset
					if r.Offset >= ends[p] {
						after++
					}
				}
			}
		}
		if after == 0 || len(outside) == 0 {
			t.Errorf("%s: no id lives only outside the range (%d outside, %d created after the ends): the bounds check proves nothing", c.name, len(outside), after)
		}
		checkAbsent(t, c.name, dump, outside)
		t.Logf("%s: plan %+v; read %d records in %dms (%.0f/s); %d ids only outside the range, absent from the index",
			c.name, c.run.Sum.Plan.Partitions, c.run.Sum.Records, c.run.Sum.DurationMS, c.run.Sum.RatePerSec, len(outside))
	}
}

// TestReplayDryRun checks that --dry-run --json prints the plan the real
// replay then runs (partitions, starts, ends, record counts) and writes
// nothing: no index, no checkpoint index, no dead-letter topic, no commit.
func TestReplayDryRun(t *testing.T) {
	n := 3000
	env := itest.Services(t)
	topic, index, ck := itest.Name(t, "dry"), itest.Name(t, "dry"), itest.Name(t, "ck")
	itest.CreateTopic(t, env, topic, 3)
	f := newFeed(t, env, topic, chatgen.MustNew(chatConfig(51, n/2)))
	mid := f.produce(n)
	from := nextMilli()
	ends := f.produce(n)
	group := itest.Name(t, "g")
	args := replayArgs(env, topic, group, index, ck, "--from", from.UTC().Format(time.RFC3339Nano))

	p, out := startSplit(t, "dry-run", append(args, "--dry-run")...)
	waitExit(t, p, time.Minute)
	if p.err != nil {
		t.Fatalf("dry run exited with %v", p.err)
	}
	data, _ := os.ReadFile(out)
	var dry struct {
		Topic, Group, Index, From string
		Resumed                   bool
		Partitions                []planRow
		Records                   int64
	}
	if err := json.Unmarshal(data, &dry); err != nil {
		t.Fatalf("dry run output is not JSON: %v\n%s", err, data)
	}
	t.Logf("dry run plan: %s", data)
	if dry.Topic != topic || dry.Group != group || dry.Index != index || dry.Resumed || len(dry.Partitions) != 3 {
		t.Errorf("dry run plan header: %+v", dry)
	}
	var total int64
	for _, r := range dry.Partitions {
		if r.Start != mid[r.Partition] || r.End != ends[r.Partition] || r.Records != r.End-r.Start {
			t.Errorf("dry run: partition %d [%d,%d) %d records, want [%d,%d)", r.Partition, r.Start, r.End, r.Records, mid[r.Partition], ends[r.Partition])
		}
		total += r.Records
	}
	if dry.Records != total || total != int64(n) {
		t.Errorf("dry run: %d records (rows sum to %d), want %d", dry.Records, total, n)
	}

	// It wrote nothing.
	for _, ix := range []string{index, ck} {
		if status, body := osDo(t, env, http.MethodHead, "/"+ix, ""); status != http.StatusNotFound {
			t.Errorf("after the dry run index %s: HTTP %d %s, want 404", ix, status, body)
		}
	}
	adm := kadm.NewClient(itest.Kafka(t, env))
	if c := commits(t, adm, group, topic); len(c) > 0 {
		t.Errorf("after the dry run group %s has commits %v", group, c)
	}
	if td, err := adm.ListTopics(t.Context(), topic+".dlq"); err != nil {
		t.Fatal(err)
	} else if d, ok := td[topic+".dlq"]; ok && d.Err == nil {
		t.Errorf("the dry run created the dead-letter topic %s", topic+".dlq")
	}

	// The real replay does what the dry run said.
	itest.CreateTopic(t, env, topic+".dlq", 1)
	itest.CleanupIndex(t, env, index)
	itest.CleanupIndex(t, env, ck)
	real := runReplay(t, "replay", 2*time.Minute, args...)
	if !slices.Equal(real.Sum.Plan.Partitions, dry.Partitions) || real.Sum.Planned != dry.Records {
		t.Errorf("the replay ran plan %+v (%d offsets), the dry run printed %+v (%d)", real.Sum.Plan.Partitions, real.Sum.Planned, dry.Partitions, dry.Records)
	}
	starts := map[int32]int64{}
	for _, r := range dry.Partitions {
		starts[r.Partition] = r.Start
	}
	checkReadExactly(t, "replay after dry run", real.Sum, starts, ends)
	itest.CompareToModel(t, itest.DumpIndex(t, env, index), f.model(t, refmodel.ModeDelete, within(starts, ends)))
	// The gc_deletes guard (issue #4): a delete-mode replay names the risk
	// and the remedies.
	if !deleteRiskLogged(real.Log) {
		t.Errorf("the delete-mode replay did not warn about index.gc_deletes with the remedies (--delete-mode tombstone, raise index.gc_deletes)")
	}
}

// TestReplayBlocked runs a replay into an OpenSearch that refuses every
// write for a few seconds, then accepts them: the replay must log the
// block, keep waiting (not exit, not commit), and once the block is lifted
// complete with exit 0 and an index equal to the reference state.
func TestReplayBlocked(t *testing.T) {
	for _, how := range []string{"faultproxy", "index.blocks.write"} {
		t.Run(how, func(t *testing.T) {
			env := itest.Services(t)
			topic, index, ck := itest.Name(t, "blk"), itest.Name(t, "blk"), itest.Name(t, "ck")
			createTopicDLQ(t, env, topic, 2)
			itest.CreateIndex(t, env, index, `{"settings":{"number_of_shards":1,"number_of_replicas":0}}`)
			itest.CleanupIndex(t, env, ck)
			f := newFeed(t, env, topic, chatgen.MustNew(chatConfig(61, 1000)))
			ends := f.produce(4000)

			target := env.OpenSearchURL
			var px *faultproxy.Proxy
			var lift func()
			if how == "faultproxy" {
				var err error
				px, err = faultproxy.New(env.OpenSearchURL, 1)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(px.Close)
				px.Set(faultproxy.Faults{Blocked: true})
				target = px.URL()
				lift = func() { px.Set(faultproxy.Faults{}) }
			} else {
				osOK(t, env, http.MethodPut, "/"+index+"/_settings", `{"index.blocks.write":true}`)
				lift = func() { osOK(t, env, http.MethodPut, "/"+index+"/_settings", `{"index.blocks.write":null}`) }
			}
			group := itest.Name(t, "g")
			args := replayArgs(env, topic, group, index, ck, "--from-offsets", "0:0,1:0", "--delete-mode", "tombstone")
			args[slices.Index(args, "--opensearch")+1] = target
			began := time.Now()
			p, out := startSplit(t, "replay", args...)

			// Wait for the loud log line, then keep the block a few seconds.
			var blockedAt time.Time
			adm := kadm.NewClient(itest.Kafka(t, env))
			for deadline := time.Now().Add(time.Minute); ; {
				if p.exited() {
					t.Fatalf("the replay exited while writes were refused: %v", p.err)
				}
				if blockedAt.IsZero() && strings.Contains(readLog(p), "OpenSearch refuses writes") {
					blockedAt = time.Now()
				}
				if !blockedAt.IsZero() && time.Since(blockedAt) >= 3*time.Second { // the block's duration, not a synchronisation
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no block logged within a minute; log:\n%s", tail([]byte(readLog(p)), 3000))
				}
				time.Sleep(50 * time.Millisecond) // poll interval
			}
			c := commits(t, adm, group, topic)
			for part, at := range c {
				if at != 0 {
					t.Errorf("partition %d committed to %d while every write was refused", part, at)
				}
			}
			if px != nil && px.Stats().BlockedItems == 0 {
				t.Errorf("the proxy refused no bulk item")
			}
			if p.exited() {
				t.Fatalf("the replay exited before the block was lifted: %v", p.err)
			}
			lift()
			lifted := time.Now()
			r := finishReplay(t, p, out, began, 2*time.Minute)
			if !strings.Contains(r.Log, "OpenSearch accepts writes again") {
				t.Errorf("the replay did not log that writes were accepted again")
			}
			checkReadExactly(t, how, r.Sum, map[int32]int64{0: 0, 1: 0}, ends)
			itest.CompareToModel(t, itest.DumpIndex(t, env, index), f.model(t, refmodel.ModeTombstone, below(ends)))
			if testing.Verbose() {
				t.Logf("log:\n%s", r.Log)
			}
			extra := ""
			if px != nil {
				st := px.Stats()
				extra = fmt.Sprintf("; proxy: %d bulk requests, %d items refused with cluster_block_exception", st.Requests, st.BlockedItems)
			}
			t.Logf("%s: blocked for %s after the first write; the replay finished %s after the block was lifted (%d records, %d created, %d updated)%s",
				how, lifted.Sub(blockedAt).Round(time.Millisecond), time.Since(lifted).Round(time.Millisecond), r.Sum.Records, r.Sum.Created, r.Sum.Updated, extra)
		})
	}
}
