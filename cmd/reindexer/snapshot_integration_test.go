//go:build integration

package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reindexer/reindexer/checkpoint"
	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/reindexer/reindexer/internal/refmodel"
	"github.com/reindexer/reindexer/replay"
	"github.com/twmb/franz-go/pkg/kadm"
)

// snapshotRepo registers an fs snapshot repository in a new directory under
// the node's path.repo; both go away when the test ends.
func snapshotRepo(t *testing.T, env *itest.Env) string {
	t.Helper()
	if env.SnapshotDir == "" {
		t.Fatalf("OPENSEARCH_SNAPSHOT_DIR is not set (process environment or %s): the snapshot tests need the node's path.repo", itest.ServicesEnvFile)
	}
	repo := itest.Name(t, "repo")
	location := filepath.Join(env.SnapshotDir, repo)
	osOK(t, env, http.MethodPut, "/_snapshot/"+repo, fmt.Sprintf(`{"type":"fs","settings":{"location":%q}}`, location))
	t.Cleanup(func() {
		if env.KeepTestData {
			return
		}
		if status, body := osDo(t, env, http.MethodDelete, "/_snapshot/"+repo, ""); status != http.StatusOK {
			t.Errorf("unregister repository %s: HTTP %d %s", repo, status, body)
		}
		if err := os.RemoveAll(location); err != nil {
			t.Errorf("remove %s: %v", location, err)
		}
	})
	return repo
}

// takeSnapshot snapshots indices (and not the global state) and waits for
// it to complete successfully.
func takeSnapshot(t *testing.T, env *itest.Env, repo, snap string, indices ...string) {
	t.Helper()
	body := fmt.Sprintf(`{"indices":%q,"include_global_state":false}`, strings.Join(indices, ","))
	data := osOK(t, env, http.MethodPut, "/_snapshot/"+repo+"/"+snap+"?wait_for_completion=true", body)
	var ans struct {
		Snapshot struct {
			State  string `json:"state"`
			Shards struct {
				Total, Failed int
			} `json:"shards"`
		} `json:"snapshot"`
	}
	if err := json.Unmarshal(data, &ans); err != nil || ans.Snapshot.State != "SUCCESS" || ans.Snapshot.Shards.Failed != 0 {
		t.Fatalf("snapshot %s/%s: %v %s", repo, snap, err, data)
	}
}

// restoreAs restores indices from the snapshot under their names plus
// suffix and waits until the restore is complete; the copies are deleted
// when the test ends.
func restoreAs(t *testing.T, env *itest.Env, repo, snap, suffix string, indices ...string) {
	t.Helper()
	for _, ix := range indices {
		itest.CleanupIndex(t, env, ix+suffix)
	}
	body := fmt.Sprintf(`{"indices":%q,"rename_pattern":"(.+)","rename_replacement":"$1%s","include_global_state":false,"include_aliases":false}`,
		strings.Join(indices, ","), suffix)
	data := osOK(t, env, http.MethodPost, "/_snapshot/"+repo+"/"+snap+"/_restore?wait_for_completion=true", body)
	var ans struct {
		Snapshot struct {
			Indices []string `json:"indices"`
			Shards  struct {
				Total, Failed int
			} `json:"shards"`
		} `json:"snapshot"`
	}
	if err := json.Unmarshal(data, &ans); err != nil || ans.Snapshot.Shards.Failed != 0 || len(ans.Snapshot.Indices) != len(indices) {
		t.Fatalf("restore %s/%s as *%s: %v %s", repo, snap, suffix, err, data)
	}
}

// seededOffsets reads the offsets a `run --start snapshot:` logged when it
// seeded its group.
func seededOffsets(t *testing.T, log string) map[int32]int64 {
	t.Helper()
	m := regexp.MustCompile(`msg="group seeded".* offsets="?map\[([^\]]*)\]`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("the run did not log its seeded offsets")
	}
	out := map[int32]int64{}
	for _, kv := range strings.Fields(m[1]) {
		k, v, _ := strings.Cut(kv, ":")
		p, err1 := strconv.ParseInt(k, 10, 32)
		o, err2 := strconv.ParseInt(v, 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("seeded offsets %q", m[1])
		}
		out[int32(p)] = o
	}
	return out
}

// stoppedRecords reads the record count a run logs when it stops.
func stoppedRecords(t *testing.T, log string) int64 {
	t.Helper()
	m := regexp.MustCompile(`msg=stopped records=(\d+)`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("the run did not log its summary when it stopped")
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// gapVariant is one form of TestSnapshotGap.
type gapVariant struct {
	name string
	mode refmodel.DeleteMode
	// ordered streams have no duplicates and no late events, so every
	// document's records arrive in version order: the condition under
	// which delete mode converges after a restore.
	ordered bool
	// weak is delete mode with out-of-order events, delete mode's hard
	// case after a restore: the restored index has no delete tombstones,
	// so a late older upsert would bring a deleted document back unless the
	// plan replays the forgotten deletes (it starts index.gc_deletes early).
	// B is checked against a record-by-record prediction and the reference.
	weak bool
}

// TestSnapshotGap is issue #4's snapshot scenario: a live `run` indexes A
// while events arrive and writes checkpoint history; A and the history are
// snapshotted mid-stream; more events follow; the snapshot is restored as B.
// Then
//
//	(a) `replay --since-snapshot` brings B to the reference state of the
//	    topic up to the replay's end offsets, starting at the last
//	    checkpoint before the snapshot, and A equals it once the live run
//	    has caught up;
//	(a') the same replay again, on a new group, writes nothing and leaves
//	    B's dump identical;
//	(b) `run --start snapshot:` on a new group brings a second restored
//	    copy C to the reference state and keeps following.
//
// It runs in tombstone mode with every kind of event (duplicates and late
// events included), in delete mode with events in version order, and in
// delete mode with out-of-order events, delete mode's hard case after a
// restore: there (a) only, without checkpoint history (the replay falls back
// to record timestamps), with B checked against a record-by-record
// prediction of the replay and against the reference state.
func TestSnapshotGap(t *testing.T) {
	for _, v := range []gapVariant{
		// With -parallel 2 (two cores) the second waits for a free slot;
		// it is the one that needs no minute boundary.
		{name: "tombstone", mode: refmodel.ModeTombstone},
		{name: "delete-out-of-order", mode: refmodel.ModeDelete, weak: true},
		{name: "delete-ordered", mode: refmodel.ModeDelete, ordered: true},
	} {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			snapshotGap(t, v)
		})
	}
}

func snapshotGap(t *testing.T, v gapVariant) {
	margin := 3 * time.Second // --skew-margin: one clock here
	const feederLag = time.Second
	if v.weak {
		margin = 10 * time.Second // no history: the start comes from record timestamps
	}
	ids, chunk, after := 4000, 40, 2000
	if short() {
		ids, chunk, after = 2000, 20, 800
	}
	mode := v.mode
	env := itest.Services(t)
	ctx := t.Context()
	cl := itest.OpenSearch(t, env)
	topic, a, ck := itest.Name(t, "gap"), itest.Name(t, "gap-a"), itest.Name(t, "ck")
	createTopicDLQ(t, env, topic, 4)
	// In delete mode the plan starts index.gc_deletes before the usual
	// cutoff, to replay the deletes the restore forgot. The ordered variant
	// uses a short gc_deletes so that its lookback fits in the test and its
	// plan still comes from checkpoint history; the out-of-order one keeps
	// the default (its late events need the live index's full minute).
	var lookback time.Duration
	settings := `{"settings":{"number_of_shards":2,"number_of_replicas":0}}`
	switch {
	case mode == refmodel.ModeDelete && v.ordered:
		lookback = time.Second
		settings = `{"settings":{"number_of_shards":2,"number_of_replicas":0,"index.gc_deletes":"1s"}}`
	case mode == refmodel.ModeDelete:
		lookback = time.Minute
	}
	itest.CreateIndex(t, env, a, settings)
	itest.CleanupIndex(t, env, ck)
	cfg := chatConfig(int64(len(v.name)), ids)
	if v.ordered {
		cfg.DuplicateProb, cfg.OutOfOrderProb = 0, 0
	}
	f := newFeed(t, env, topic, chatgen.MustNew(cfg))
	f.produce(1000)

	// The live run, with its checkpoint history in ck, while events arrive.
	runGroup := itest.Name(t, "g-run")
	if v.weak {
		ck = "none" // the weak-spot variant also covers planning without history
	}
	live := start(t, "live-run", runArgs(env, topic, runGroup, a, "--delete-mode", string(mode), "--checkpoint-index", ck)...)
	f.startSlowly(chunk, 100*time.Millisecond)

	waitFrom := time.Now()
	adm := kadm.NewClient(itest.Kafka(t, env))
	topicID, err := replay.TopicID(ctx, adm, topic)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(150 * time.Second); ; {
		if live.exited() {
			t.Fatalf("the live run exited: %v", live.err)
		}
		var ready bool
		var cps map[int32]checkpoint.Checkpoint
		if v.weak {
			// A must hold every record older than the snapshot's cutoff:
			// wait until the run has committed all records older than now
			// less the margin (and a second).
			cut := time.Now().Add(-margin - time.Second)
			need := map[int32]int64{}
			for p, rs := range f.records() {
				for _, r := range rs {
					if r.Time.Before(cut) {
						need[p] = max(need[p], r.Offset+1)
					}
				}
			}
			c := commits(t, adm, runGroup, topic)
			ready = len(need) == 4
			for p, n := range need {
				ready = ready && c[p] >= n
			}
		} else {
			// Wait until the history holds, for every partition, a
			// complete checkpoint of A old enough for the snapshot's
			// cutoff, with a second to spare: OpenSearch stamps a
			// snapshot's start from a cached clock (refreshed every
			// 200ms), which can be a little earlier than the request.
			cps, err = checkpoint.NewStore(cl, ck).Before(ctx, topic, topicID, a, time.Now().Add(-margin-lookback-time.Second))
			ready = err == nil && len(cps) == 4
		}
		if ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A not ready for the snapshot within 150s (history %v, %v)", cps, err)
		}
		time.Sleep(250 * time.Millisecond) // poll interval
	}
	t.Logf("A ready for the snapshot after %s of live run", time.Since(waitFrom).Round(time.Second))

	// Snapshot A and the history mid-stream.
	repo := snapshotRepo(t, env)
	snap := "gap-1"
	atSnap, countAtSnap := f.ends(), f.count()
	snapIndices := []string{a, ck}
	if v.weak {
		snapIndices = []string{a}
	}
	takeSnapshot(t, env, repo, snap, snapIndices...)
	info, err := checkpoint.SnapshotInfo(ctx, cl, repo, snap)
	if err != nil {
		t.Fatal(err)
	}
	// More events follow, then the producers stop.
	for deadline := time.Now().Add(2 * time.Minute); f.count() < countAtSnap+after; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d events produced after the snapshot within 2 minutes", f.count()-countAtSnap)
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
	final := f.stopSlowly()
	all := f.model(t, mode, below(final))

	// (a) Restore as B (with the history, as on a new cluster) and replay
	// what the snapshot is missing.
	restoreAs(t, env, repo, snap, "-b", snapIndices...)
	b, ckB := a+"-b", ck+"-b"
	if v.weak {
		ckB = "none"
	}
	var restored map[string]itest.DocState
	if v.weak {
		restored = itest.DumpIndex(t, env, b)
	}
	gapArgs := func(group string) []string {
		args := replayArgs(env, topic, group, b, ckB, "--since-snapshot", repo+"/"+snap, "--snapshot-index", a,
			"--skew-margin", margin.String(), "--delete-mode", string(mode))
		if v.weak {
			// Without history the operator states the feeder's lag: the
			// wait above kept it under a second.
			args = append(args, "--max-feeder-lag", feederLag.String())
		}
		return args
	}
	r1 := runReplay(t, "replay-b", 3*time.Minute, gapArgs(itest.Name(t, "g-replay"))...)
	starts := map[int32]int64{}
	for _, r := range r1.Sum.Plan.Partitions {
		starts[r.Partition] = r.Start
	}
	checkReadExactly(t, "replay into B", r1.Sum, starts, final)
	want := map[int32]int64{}
	if v.weak {
		if !strings.Contains(r1.Sum.Plan.From, "partitions 0-3 (checkpoint history disabled) fall back to the first record with a timestamp at or after") ||
			!strings.Contains(r1.Sum.Plan.From, "the cutoff less the stated feeder lag 1s") {
			t.Errorf("the replay without history did not say it fell back to timestamps: %s", r1.Sum.Plan.From)
		}
		cutoff := info.Start.Add(-margin - lookback - feederLag).UnixMilli()
		for p, rs := range f.records() {
			i := slices.IndexFunc(rs, func(r fedRec) bool { return r.Time.UnixMilli() >= cutoff })
			want[p] = rs[i].Offset
		}
	} else {
		if !strings.Contains(r1.Sum.Plan.From, "partitions 0-3 start at the last durable offset recorded before the cutoff in checkpoint history "+ckB) ||
			strings.Contains(r1.Sum.Plan.From, "fall back") {
			t.Errorf("the replay did not plan every partition from the checkpoint history: %s", r1.Sum.Plan.From)
		}
		cps, err := checkpoint.NewStore(cl, ckB).Before(ctx, topic, topicID, a, info.Start.Add(-margin-lookback))
		if err != nil {
			t.Fatal(err)
		}
		for p, cp := range cps {
			want[p] = cp.Offset
		}
	}
	for p, s := range starts {
		if w, ok := want[p]; !ok || w != s {
			t.Errorf("partition %d starts at %d, want %d (the last checkpoint before the cutoff, or without history the first record at or after it)", p, s, w)
		}
		if s < 0 || s > atSnap[p] {
			t.Errorf("partition %d starts at %d: want at or before %d (produced before the snapshot)", p, s, atSnap[p])
		}
	}
	checkDeleteWarnings(t, "replay", r1.Log, mode, true)
	dumpB := itest.DumpIndex(t, env, b)
	if v.weak {
		weakSpot(t, f, restored, dumpB, all, starts, final)
	} else {
		itest.CompareToModel(t, dumpB, all)
	}

	// The numbers.
	recs := f.records()
	var before int64
	oldest, newest := time.Duration(0), time.Duration(1<<62)
	for p, s := range starts {
		before += atSnap[p] - s
		i := slices.IndexFunc(recs[p], func(r fedRec) bool { return r.Offset == s })
		if i < 0 {
			t.Fatalf("partition %d: no record at the start offset %d", p, s)
		}
		d := info.Start.Sub(recs[p][i].Time)
		oldest, newest = max(oldest, d), min(newest, d)
	}
	span := activeSpan(r1.Log)
	t.Logf("%s: snapshot started %s; the replay started %d records (over 4 partitions) produced before the snapshot request, "+
		"%s to %s before the snapshot's start; the gap: %d records (%d produced after the snapshot request), replayed in %dms, %.0f records/s by the summary, "+
		"%s records/s over the %s it held the partitions (process %s): created %d updated %d deleted %d not_found %d stale %d duplicate %d; B holds %d documents",
		v.name, info.Start.Format(time.RFC3339Nano), before, newest.Round(time.Millisecond), oldest.Round(time.Millisecond),
		r1.Sum.Records, sum64(final)-sum64(atSnap), r1.Sum.DurationMS, r1.Sum.RatePerSec, rate(r1.Sum.Records, span), span.Round(time.Millisecond),
		r1.Took.Round(time.Millisecond), r1.Sum.Created, r1.Sum.Updated, r1.Sum.Deleted, r1.Sum.NotFound, r1.Sum.Stale, r1.Sum.Duplicate, len(dumpB))
	if v.weak {
		live.term(60 * time.Second)
		return
	}

	// A equals it once the live run has caught up.
	waitGroupAt(t, env, runGroup, topic, final, 2*time.Minute)
	dumpA := itest.DumpIndex(t, env, a)
	itest.CompareToModel(t, dumpA, all)
	sameDump(t, "A and B", dumpA, dumpB)

	// (a') The same range again, on a new group, changes nothing.
	r2 := runReplay(t, "replay-b-again", 2*time.Minute, gapArgs(itest.Name(t, "g-again"))...)
	if !slices.Equal(r2.Sum.Plan.Partitions, r1.Sum.Plan.Partitions) {
		t.Errorf("the second replay planned %+v, the first %+v", r2.Sum.Plan.Partitions, r1.Sum.Plan.Partitions)
	}
	checkReadExactly(t, "replay into B again", r2.Sum, starts, final)
	s := r2.Sum
	// In delete mode with this variant's 1s index.gc_deletes the first
	// replay's deletes are forgotten by now, so a document created and
	// deleted within the range is briefly re-created and deleted again
	// (writes, same end state); with the default gc_deletes, or tombstones,
	// nothing is written at all.
	forgets := mode == refmodel.ModeDelete && lookback < time.Minute
	if (!forgets && s.Created+s.Updated+s.Deleted != 0) || s.DeadLettered != 0 ||
		(!forgets && s.Stale+s.Duplicate+s.NotFound != s.Records) || (mode == refmodel.ModeTombstone && s.NotFound != 0) {
		t.Errorf("replaying the same range again wrote: created %d updated %d deleted %d not_found %d dead_lettered %d (stale %d duplicate %d of %d records)",
			s.Created, s.Updated, s.Deleted, s.NotFound, s.DeadLettered, s.Stale, s.Duplicate, s.Records)
	}
	sameDump(t, "B before and after the second replay", dumpB, itest.DumpIndex(t, env, b))
	t.Logf("%s: the same range again: %d records, stale %d duplicate %d not_found %d, created %d updated %d deleted %d; end state unchanged",
		v.name, s.Records, s.Stale, s.Duplicate, s.NotFound, s.Created, s.Updated, s.Deleted)

	// (b) A second restored copy C, fed by `run --start snapshot:` on a new
	// group, which then keeps following.
	restoreAs(t, env, repo, snap, "-c", a, ck)
	c, ckC := a+"-c", ck+"-c"
	groupC := itest.Name(t, "g-c")
	runC := start(t, "run-c", runArgs(env, topic, groupC, c, "--delete-mode", string(mode), "--checkpoint-index", ckC,
		"--start", "snapshot:"+repo+"/"+snap, "--snapshot-index", a, "--skew-margin", margin.String())...)
	waitGroupAt(t, env, groupC, topic, final, 2*time.Minute)
	logC := readLog(runC)
	if !strings.Contains(logC, "starting at the snapshot's gap") || !strings.Contains(logC, "partitions 0-3 start at the last durable offset recorded before the cutoff") {
		t.Errorf("run --start snapshot: did not plan the gap from the checkpoint history")
	}
	checkDeleteWarnings(t, "run --start snapshot:", logC, mode, false)
	if seeded := seededOffsets(t, logC); !maps.Equal(seeded, starts) {
		t.Errorf("run --start snapshot: seeded %v, the replay of the same snapshot started at %v", seeded, starts)
	}
	itest.CompareToModel(t, itest.DumpIndex(t, env, c), all)
	more := f.produce(300)
	waitGroupAt(t, env, groupC, topic, more, 2*time.Minute)
	waitGroupAt(t, env, runGroup, topic, more, 2*time.Minute)
	allMore := f.model(t, mode, below(more))
	itest.CompareToModel(t, itest.DumpIndex(t, env, c), allMore)
	itest.CompareToModel(t, itest.DumpIndex(t, env, a), allMore)
	runC.term(60 * time.Second)
	live.term(60 * time.Second)
	// C's group started at a gap start taken from complete history: its own
	// checkpoints are complete, so a later snapshot of C can plan from them.
	cpsC, err := checkpoint.NewStore(cl, ckC).Search(ctx, checkpoint.Query{Topic: topic, TopicID: topicID, Index: c, Group: groupC})
	if err != nil || len(cpsC) != 4 {
		t.Errorf("checkpoints of C's group: %+v, %v; want 4 partitions", cpsC, err)
	}
	for p, cp := range cpsC {
		if !cp.Complete || cp.Offset != more[p] {
			t.Errorf("C's group wrote %+v for partition %d: want complete, at %d", cp, p, more[p])
		}
	}
	var wantRead int64
	for p, e := range more {
		wantRead += e - starts[p]
	}
	if got := stoppedRecords(t, readLog(runC)); got != wantRead {
		t.Errorf("run --start snapshot: read %d records, want %d (the gap and the 300 that followed)", got, wantRead)
	}
	t.Logf("%s: run --start snapshot: read %d records (gap %d + 300 new), C equals the reference state and follows the topic", v.name, wantRead, sum64(final)-sum64(starts))
}

// checkDeleteWarnings checks the delete-mode warnings of a log: the
// restored-index warning always in delete mode, the gc_deletes one (issue
// #4's guard) from bounded replays; neither in tombstone mode.
func checkDeleteWarnings(t *testing.T, what, log string, mode refmodel.DeleteMode, bounded bool) {
	t.Helper()
	restore := strings.Contains(log, "deleted documents can come back after a snapshot restore") &&
		strings.Contains(log, "--delete-mode tombstone for exact convergence")
	gc := deleteRiskLogged(log)
	if mode == refmodel.ModeTombstone {
		if restore || gc {
			t.Errorf("%s in tombstone mode warned about deletes coming back", what)
		}
		return
	}
	if !restore {
		t.Errorf("%s in delete mode did not warn that a restored index holds no delete tombstones", what)
	}
	if bounded && !gc {
		t.Errorf("%s in delete mode did not warn about index.gc_deletes with the remedies (--delete-mode tombstone, raise index.gc_deletes)", what)
	}
}

// weakSpot checks a delete-mode gap replay of a stream with out-of-order
// events. A restored index holds no delete tombstones, so the replay
// applies, with external versions, the records in [starts, ends) in offset
// order to the restored documents, remembering only the deletes it makes
// itself: B must equal exactly that prediction; every id where the
// prediction departs from the reference state must be explained by a
// delete before the replay's start followed by an older upsert in the gap;
// and since the plan starts index.gc_deletes early (re-applying those
// deletes), there must be no such id.
func weakSpot(t *testing.T, f *feed, restored, got map[string]itest.DocState, ref map[string]refmodel.Doc, starts, ends map[int32]int64) {
	t.Helper()
	type state struct {
		known, exists bool
		version       int64
		source        []byte
	}
	st := map[string]*state{}
	for id, d := range restored {
		st[id] = &state{known: true, exists: true, version: d.Version, source: d.Source}
	}
	recs := f.records()
	for p, rs := range recs {
		for _, r := range rs {
			if r.Offset < starts[p] || r.Offset >= ends[p] {
				continue
			}
			s := st[r.Event.ID]
			if s == nil {
				s = &state{}
				st[r.Event.ID] = s
			}
			if s.known && s.version >= r.Event.Version {
				continue // 409
			}
			s.known, s.version, s.exists, s.source = true, r.Event.Version, r.Event.Op == chatgen.OpUpsert, r.Event.Doc
		}
	}
	predicted := map[string]refmodel.Doc{}
	for id, s := range st {
		if s.exists {
			predicted[id] = refmodel.Doc{Version: s.version, Source: s.source}
		}
	}
	if !itest.CompareToModel(t, got, predicted) {
		t.Errorf("B is not the predicted result of a delete-mode replay over a restored index (above)")
	}
	asDocs := map[string]itest.DocState{}
	for id, doc := range predicted {
		asDocs[id] = itest.DocState{Version: doc.Version, Source: doc.Source}
	}
	d := itest.Compare(asDocs, ref)
	var unexplained []string
	for id := range predicted {
		w, ok := ref[id]
		if ok && w.Version == predicted[id].Version {
			continue
		}
		// Explained: the reference state has id deleted by a record before
		// the start, and the gap holds an older upsert of it.
		var delBefore, olderInGap bool
		for p, rs := range recs {
			for _, r := range rs {
				if r.Event.ID != id {
					continue
				}
				if r.Offset < starts[p] && r.Event.Op == chatgen.OpDelete && !ok {
					delBefore = true
				}
				if r.Offset >= starts[p] && r.Offset < ends[p] && r.Event.Op == chatgen.OpUpsert && r.Event.Version == predicted[id].Version {
					olderInGap = true
				}
			}
		}
		if !delBefore || !olderInGap {
			unexplained = append(unexplained, id)
		}
	}
	if d.Missing+d.Version+d.Source != 0 || len(unexplained) > 0 {
		t.Errorf("delete mode departs from the reference state other than by resurrecting documents deleted before the gap: %s; unexplained %v", d, unexplained)
	}
	// The plan starts index.gc_deletes earlier than the snapshot needs, so
	// the deletes the live index still remembered are replayed and every
	// late upsert here (all arrive within seconds of their delete) loses:
	// B must equal the reference state, not only the prediction.
	if d.Extra != 0 {
		t.Errorf("%d documents deleted before the gap came back: the gc_deletes lookback did not re-apply their deletes", d.Extra)
	}
	t.Logf("delete mode with out-of-order events: B equals the prediction and the reference state (%d documents)", len(got))
}
