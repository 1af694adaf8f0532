package consumer

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (p *pipeline) commitLoop(ctx context.Context) {
	t := time.NewTicker(p.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.commitNow:
		case <-t.C:
		}
		if err := p.commit(ctx, nil); err != nil && ctx.Err() == nil {
			p.warn("offset commit failed; it is retried at the next interval", "group", p.cfg.Group, "err", err)
		}
	}
}

// commit commits the durable offsets of the given partitions (all owned
// ones if nil) that moved since their last commit.
func (p *pipeline) commit(ctx context.Context, only []*part) error {
	p.commitMu.Lock()
	defer p.commitMu.Unlock()
	return p.commitLocked(ctx, only)
}

func (p *pipeline) commitLocked(ctx context.Context, only []*part) error {
	p.mu.Lock()
	if only == nil {
		for _, pt := range p.parts {
			only = append(only, pt)
		}
	}
	offs := map[int32]kgo.EpochOffset{}
	var list []*part
	for _, pt := range only {
		if pt.durable > pt.committed {
			offs[pt.id] = kgo.EpochOffset{Epoch: pt.epoch, Offset: pt.durable}
			list = append(list, pt)
		}
	}
	idle := len(offs) == 0 && p.caughtUpLocked()
	p.mu.Unlock()
	if len(offs) == 0 {
		if idle {
			// Nothing polled is waiting to become durable and nothing is
			// left to fetch: the pipeline is healthy though it commits
			// nothing. A partition whose writes are stuck is never idle.
			p.lastCommit.Store(time.Now().UnixNano())
		}
		return nil
	}
	var cerr error
	p.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{p.cfg.Topic: offs},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				cerr = err
				return
			}
			for _, t := range resp.Topics {
				for _, pr := range t.Partitions {
					if e := kerr.ErrorForCode(pr.ErrorCode); e != nil && cerr == nil {
						cerr = fmt.Errorf("partition %d: %w", pr.Partition, e)
					}
				}
			}
		})
	if cerr != nil {
		p.m.Commits.WithLabelValues("error").Inc()
		return fmt.Errorf("commit to group %s: %w", p.cfg.Group, cerr)
	}
	p.m.Commits.WithLabelValues("ok").Inc()
	p.lastCommit.Store(time.Now().UnixNano())
	done := make(map[int32]int64, len(list))
	p.mu.Lock()
	for _, pt := range list {
		off := offs[pt.id].Offset
		if off > pt.committed {
			pt.committed = off
		}
		done[pt.id] = off
		p.m.Committed(p.cfg.Topic, pt.id).Set(float64(off))
		if h := pt.hwm.Load(); h > 0 {
			p.m.Lag(p.cfg.Topic, pt.id).Set(float64(max(h-off, 0)))
		}
		if pt.end >= 0 {
			p.m.ReplayRemaining.WithLabelValues(p.cfg.Topic, itoa(pt.id)).Set(float64(max(pt.end-off, 0)))
		}
	}
	p.mu.Unlock()
	if p.cfg.OnCommit != nil {
		p.cfg.OnCommit(done)
	}
	return nil
}

// lagRefresh is how often lagLoop asks the brokers for the partitions'
// end offsets.
const lagRefresh = 10 * time.Second

// lagLoop keeps the lag of owned partitions current even when they are not
// fetched (a paused lane, a write outage): every lagRefresh it reads the
// end offsets (last stable offsets: the pipeline reads committed) and
// updates the high watermarks and the lag gauges.
func (p *pipeline) lagLoop(ctx context.Context) {
	adm := kadm.NewClient(p.cl)
	t := time.NewTicker(lagRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lctx, cancel := context.WithTimeout(ctx, lagRefresh)
		ends, err := adm.ListCommittedOffsets(lctx, p.cfg.Topic)
		cancel()
		if err != nil {
			continue // the next tick tries again; fetches update the lag too
		}
		p.mu.Lock()
		for _, pt := range p.parts {
			if o, ok := ends.Lookup(p.cfg.Topic, pt.id); ok && o.Err == nil && o.Offset > pt.hwm.Load() {
				pt.hwm.Store(o.Offset)
			}
			p.m.Lag(p.cfg.Topic, pt.id).Set(float64(pt.lagLocked()))
		}
		p.mu.Unlock()
	}
}

// lagLocked returns how far pt's durable position is behind its high
// watermark: from the durable offset, or, before anything of it became
// durable, from the first record polled. Unknown (nothing polled yet) is 0.
// Call with p.mu held.
func (pt *part) lagLocked() int64 {
	pos := pt.durable
	if pos < 0 {
		pos = pt.base.Load()
	}
	h := pt.hwm.Load()
	if pos < 0 || h <= 0 {
		return 0
	}
	return max(h-pos, 0)
}

// caughtUpLocked reports whether every owned partition has made durable
// everything it polled and has nothing more to fetch. Call with p.mu held.
func (p *pipeline) caughtUpLocked() bool {
	for _, pt := range p.parts {
		if polled := pt.polled.Load(); polled > 0 && pt.durable < polled {
			return false
		}
		if pt.lagLocked() > 0 {
			return false
		}
	}
	return true
}
