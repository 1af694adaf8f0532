package consumer

import (
	"context"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// assigned creates state for newly assigned partitions and spreads them over
// the lanes. A partition given to a lane that is already full is paused at
// once, like the lane's other partitions, so no lane's batch grows past its
// byte budget whatever the assignment.
func (p *pipeline) assigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := assigned[p.cfg.Topic]
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var paused []int32
	for _, id := range ids {
		if old := p.parts[id]; old != nil {
			old.dead.Store(true)
			old.lane.nparts--
			old.lane.mu.Lock()
			delete(old.lane.parts, id)
			old.lane.mu.Unlock()
		}
		ln := p.lanes[0]
		for _, l := range p.lanes[1:] {
			if l.nparts < ln.nparts {
				ln = l
			}
		}
		ln.nparts++
		end := int64(-1)
		if p.ends != nil {
			e, ok := p.ends[id]
			if !ok {
				e = 0 // not in the plan: read nothing
			}
			end = e
		}
		pt := &part{id: id, lane: ln, end: end, durable: -1, committed: -1}
		pt.polled.Store(-1)
		pt.base.Store(-1)
		p.parts[id] = pt
		ln.mu.Lock()
		ln.parts[id] = pt
		if ln.saturated {
			paused = append(paused, id)
		}
		ln.mu.Unlock()
	}
	p.pause(paused, true)
	p.m.Rebalances.WithLabelValues("assigned").Add(float64(len(ids)))
	if len(ids) > 0 {
		p.log.Info("partitions assigned", "topic", p.cfg.Topic, "partitions", ids, "owned", len(p.parts))
	}
}

// revoked finishes (or, after RevokeTimeout, abandons) the in-flight work of
// revoked partitions, commits what is durable, and forgets them.
func (p *pipeline) revoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	ids := revoked[p.cfg.Topic]
	parts := p.lookup(ids)
	if len(parts) == 0 {
		return
	}
	lanes := map[*lane]uint64{}
	for _, pt := range parts {
		if _, ok := lanes[pt.lane]; !ok {
			lanes[pt.lane] = pt.lane.flush()
		}
	}
	// One deadline for every lane: a context's Done channel stays closed
	// for all of them (a one-shot timer channel would fire for one only).
	wctx, cancel := context.WithTimeout(context.Background(), p.cfg.RevokeTimeout)
	finished := true
	for l, target := range lanes {
		if !l.waitDone(wctx, target) {
			finished = false
		}
	}
	cancel()
	p.commitMu.Lock()
	for _, pt := range parts {
		pt.dead.Store(true) // late completions no longer count
	}
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	err := p.commitLocked(cctx, parts)
	ccancel()
	p.commitMu.Unlock()
	p.forget(parts)
	p.m.Rebalances.WithLabelValues("revoked").Add(float64(len(parts)))
	switch {
	case !finished:
		p.log.Warn("partitions revoked before their writes finished; the unfinished records are left to the next owner",
			"partitions", ids, "timeout", p.cfg.RevokeTimeout)
	case err != nil:
		p.log.Warn("partitions revoked; final commit failed, the next owner re-reads from the previous commit", "partitions", ids, "err", err)
	default:
		p.log.Info("partitions revoked", "topic", p.cfg.Topic, "partitions", ids)
	}
}

// lost drops partitions whose ownership is already gone: no commit.
func (p *pipeline) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	parts := p.lookup(lost[p.cfg.Topic])
	for _, pt := range parts {
		pt.dead.Store(true)
	}
	p.forget(parts)
	p.m.Rebalances.WithLabelValues("lost").Add(float64(len(parts)))
	if len(parts) > 0 {
		p.log.Warn("partitions lost (session expired); uncommitted records will be re-read by their next owner",
			"partitions", lost[p.cfg.Topic])
	}
}

func (p *pipeline) lookup(ids []int32) []*part {
	p.mu.Lock()
	defer p.mu.Unlock()
	var parts []*part
	for _, id := range ids {
		if pt := p.parts[id]; pt != nil {
			parts = append(parts, pt)
		}
	}
	return parts
}

// forget drops parts no longer owned, folding what they read into the
// summary's per-partition counts (so memory does not grow with every
// rebalance).
func (p *pipeline) forget(parts []*part) {
	var ids []int32
	p.mu.Lock()
	for _, pt := range parts {
		if p.parts[pt.id] == pt {
			delete(p.parts, pt.id)
			pt.lane.nparts--
		}
		ids = append(ids, pt.id)
		p.m.Forget(p.cfg.Topic, pt.id)
		pt.lane.mu.Lock()
		if pt.lane.parts[pt.id] == pt {
			delete(pt.lane.parts, pt.id)
		}
		p.retired[pt.id] = pt.fold(p.retired[pt.id])
		pt.count = 0 // folded: a second forget must not count it again
		pt.lane.mu.Unlock()
	}
	p.mu.Unlock()
	// Pauses outlive assignments; a later owner must fetch again.
	p.pause(ids, false)
}

// pause pauses (or resumes) fetching of partitions of the topic.
func (p *pipeline) pause(ids []int32, on bool) {
	if len(ids) == 0 {
		return
	}
	tp := map[string][]int32{p.cfg.Topic: ids}
	if on {
		p.cl.PauseFetchPartitions(tp)
	} else {
		p.cl.ResumeFetchPartitions(tp)
	}
}
