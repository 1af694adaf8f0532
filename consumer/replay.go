package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Span is one partition's part of a bounded run: the offsets [Start, End).
// Planning (package replay) decides the spans; the group's commits must
// already be at the starts.
type Span struct {
	Partition  int32
	Start, End int64
}

// Progress is reported while a replay runs.
type Progress struct {
	Done, Total int64 // offsets behind the group's commits / in the spans
	Partitions  int   // partitions not yet at their end
	Elapsed     time.Duration
}

// ErrInterrupted is returned by Replay when its context ends before every
// span is complete; running the same replay again in the same group
// resumes it.
var ErrInterrupted = errors.New("replay interrupted before reaching its end offsets")

// Replay reads spans of cfg.Topic into the index through the consumer group
// cfg.Group, whose commits must already be at the starts (package replay
// seeds them), and returns when the group's committed offsets have reached
// every end. It calls progress, if not nil, about once a second.
func Replay(ctx context.Context, cfg Config, spans []Span, progress func(Progress)) (Summary, error) {
	start := time.Now()
	ends := map[int32]int64{}
	for _, s := range spans {
		ends[s.Partition] = s.End
	}
	p, err := newPipeline(cfg, ends)
	if err != nil {
		return Summary{}, err
	}
	adm := kadm.NewClient(p.cl)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	complete := make(chan bool, 1)
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
			}
			pr, done, err := groupProgress(runCtx, adm, cfg.Group, cfg.Topic, spans)
			if err != nil {
				continue // transient; the next tick retries
			}
			pr.Elapsed = time.Since(start)
			if progress != nil {
				progress(pr)
			}
			if done {
				complete <- true
				cancel()
				return
			}
		}
	}()
	err = p.run(runCtx)
	sum := p.summary()
	sum.Duration = time.Since(start)
	if err != nil {
		return sum, err
	}
	total := spanOffsets(spans)
	select {
	case <-complete:
		if progress != nil {
			progress(Progress{Done: total, Total: total, Elapsed: sum.Duration})
		}
		return sum, nil
	default:
	}
	// The context ended first; a last look at the commits decides.
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	if admin, aerr := kadm.NewOptClient(cfg.Kafka...); aerr == nil {
		_, done, err := groupProgress(cctx, admin, cfg.Group, cfg.Topic, spans)
		admin.Close()
		if err == nil && done {
			return sum, nil
		}
	}
	return sum, ErrInterrupted
}

// spanOffsets is the number of offsets the spans cover.
func spanOffsets(spans []Span) int64 {
	var n int64
	for _, s := range spans {
		n += max(s.End-s.Start, 0)
	}
	return n
}

// groupProgress compares the group's committed offsets with the spans.
func groupProgress(ctx context.Context, adm *kadm.Client, group, topic string, spans []Span) (Progress, bool, error) {
	fetched, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = fetched.Error()
	}
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return Progress{}, false, fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	pr := Progress{Total: spanOffsets(spans)}
	for _, s := range spans {
		at := s.Start
		if o, ok := fetched.Lookup(topic, s.Partition); ok && o.At >= 0 {
			at = o.At
		}
		at = min(max(at, s.Start), s.End)
		pr.Done += at - s.Start
		if at < s.End {
			pr.Partitions++
		}
	}
	return pr, pr.Partitions == 0, nil
}
