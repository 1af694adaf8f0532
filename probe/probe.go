package probe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"

	"github.com/reindexer/reindexer/internal/osreq"
)

// Defaults of Config's zero values.
const (
	DefaultMaxInFlight = 64
	DefaultTimeout     = 10 * time.Second
	DefaultTopK        = 10
)

// Side is one index that probe sends searches to.
type Side struct {
	// Name labels the side in reports and metrics: "new" or "old".
	Name string
	// Client sends the searches. It must not retry: a retried 429 or
	// timeout would hide a rejection and shorten the latency seen.
	Client *opensearchapi.Client
	// Index is the index (or alias) searched.
	Index string
}

// Config is one probe.
type Config struct {
	// New is the side under test.
	New Side
	// Old, when not nil, receives the same queries at the same moments:
	// the baseline for latency ratios and answer similarity.
	Old *Side
	// Queries are the search bodies, sent in order, round and round.
	Queries []Query
	// Rate is the full rate in queries per second (per side).
	Rate float64
	// Steps are the shares of Rate to run, in order (e.g. 0.05, 0.3, 1).
	Steps []float64
	// StepDuration is how long each step sends.
	StepDuration time.Duration
	// MaxInFlight bounds each side's requests awaiting an answer
	// (DefaultMaxInFlight when 0).
	MaxInFlight int
	// Timeout bounds each request (DefaultTimeout when 0).
	Timeout time.Duration
	// TopK is how many leading hits are compared (DefaultTopK when 0).
	TopK int
	// Limits are what every step must hold.
	Limits Limits
	// Metrics, when not nil, are updated while the probe runs.
	Metrics *Metrics
	// OnStep, when not nil, is called with each step's result as soon as
	// the step ends.
	OnStep func(StepResult)
}

// StepResult is one step's measurements and verdict.
type StepResult struct {
	// Step is the step's number, 1-based.
	Step int
	// Share is the step's share of the full rate.
	Share float64
	// Rate is the step's target rate in queries per second.
	Rate float64
	// Duration is how long the step ran, from its first due request until
	// its last answer.
	Duration time.Duration
	// New is the new side's stats.
	New SideStats
	// Old is the old side's stats (nil without an old side).
	Old *SideStats
	// Overlap compares the two sides' answers (zero without an old side).
	Overlap Overlap
	// Breaches are the limits the step broke; empty when it held.
	Breaches []Breach
	// Interrupted is set when the probe was cancelled during the step:
	// its numbers are partial and it was not judged.
	Interrupted bool
}

// Verdicts of a Report.
const (
	// Pass: every step held its limits.
	Pass = "pass"
	// Fail: a step broke a limit; the probe stopped there.
	Fail = "fail"
	// Interrupted: the probe was cancelled before every step ran.
	Interrupted = "interrupted"
)

// Report is the outcome of a probe.
type Report struct {
	// Verdict is Pass, Fail or Interrupted.
	Verdict string
	// Steps are the steps that ran, in order.
	Steps []StepResult
	// FailedStep is the number of the step that broke a limit (0 unless
	// Verdict is Fail).
	FailedStep int
	// Overlap sums the answer comparisons of every step.
	Overlap Overlap
}

// Failed returns the step that broke a limit, if any.
func (r Report) Failed() (StepResult, bool) {
	if r.FailedStep < 1 || r.FailedStep > len(r.Steps) {
		return StepResult{}, false
	}
	return r.Steps[r.FailedStep-1], true
}

// CheckError is a probe that could not check anything: a side unreachable,
// an index missing, a query rejected before the first step.
type CheckError struct{ Err error }

// Error describes the problem.
func (e *CheckError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *CheckError) Unwrap() error { return e.Err }

// validate checks cfg and fills defaults.
func (cfg *Config) validate() error {
	switch {
	case cfg.New.Client == nil || cfg.New.Index == "":
		return errors.New("probe: the new side needs a client and an index")
	case cfg.Old != nil && (cfg.Old.Client == nil || cfg.Old.Index == ""):
		return errors.New("probe: the old side needs a client and an index")
	case len(cfg.Queries) == 0:
		return errors.New("probe: no queries")
	case cfg.Rate <= 0:
		return fmt.Errorf("probe: rate must be positive, got %g", cfg.Rate)
	case len(cfg.Steps) == 0:
		return errors.New("probe: no steps")
	case cfg.StepDuration <= 0:
		return fmt.Errorf("probe: step duration must be positive, got %s", cfg.StepDuration)
	}
	for _, s := range cfg.Steps {
		if s <= 0 {
			return fmt.Errorf("probe: step share must be positive, got %g", s)
		}
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.TopK <= 0 {
		cfg.TopK = DefaultTopK
	}
	if cfg.New.Name == "" {
		cfg.New.Name = "new"
	}
	if cfg.Old != nil && cfg.Old.Name == "" {
		cfg.Old.Name = "old"
	}
	return nil
}

// Run checks that every side answers the first query, then runs the steps
// in order and stops after the first that breaks a limit. The error is a
// *CheckError when the probe could not check (a side unreachable or an
// index missing before the first step; a query the cluster rejects as
// malformed, a 4xx other than 408 and 429, at any time: such answers
// measure the query file, not the load), or a configuration error; a
// broken limit is not an error (Report.Verdict is Fail). Cancelling ctx
// ends the probe with the steps run so far (Verdict Interrupted).
func Run(ctx context.Context, cfg Config) (Report, error) {
	if err := cfg.validate(); err != nil {
		return Report{}, err
	}
	r := &runner{cfg: cfg, sides: []*sideRunner{{Side: cfg.New, sem: make(chan struct{}, cfg.MaxInFlight)}}}
	if cfg.Old != nil {
		r.sides = append(r.sides, &sideRunner{Side: *cfg.Old, sem: make(chan struct{}, cfg.MaxInFlight)})
	}
	for _, s := range r.sides {
		if err := r.preflight(ctx, s); err != nil {
			return Report{}, &CheckError{err}
		}
	}
	rep := Report{Verdict: Pass}
	for i, share := range cfg.Steps {
		res, err := r.step(ctx, i+1, share)
		if err != nil {
			return rep, &CheckError{err}
		}
		rep.Steps = append(rep.Steps, res)
		rep.Overlap.merge(res.Overlap)
		if cfg.OnStep != nil {
			cfg.OnStep(res)
		}
		if res.Interrupted {
			rep.Verdict = Interrupted
			return rep, nil
		}
		if len(res.Breaches) > 0 {
			rep.Verdict, rep.FailedStep = Fail, res.Step
			return rep, nil
		}
	}
	return rep, nil
}

// runner runs one probe.
type runner struct {
	cfg   Config
	sides []*sideRunner // new first, then old
	next  int           // index of the next query to send
}

// sideRunner is one side with its in-flight bound.
type sideRunner struct {
	Side
	sem chan struct{}
}

// answer is what one search returned.
type answer struct {
	ids      []string
	outcome  outcome
	errText  string
	finished time.Time
	// bad marks an answer that blames the request, not the load: a 4xx
	// other than 408 and 429 (a malformed body, a missing index, no
	// permission). Sending it again cannot succeed.
	bad bool
}

// preflight sends the first query once (not counted): a missing index, an
// unreachable side or a body the cluster rejects is found before any step.
func (r *runner) preflight(ctx context.Context, s *sideRunner) error {
	q := r.cfg.Queries[0]
	a := r.search(ctx, s, q)
	if a.outcome != outcomeOK && a.outcome != outcomeRejected {
		return fmt.Errorf("%s side (index %s): query on line %d: %s", s.Name, s.Index, q.Line, a.errText)
	}
	return nil
}

// search sends q to s and classifies the answer.
func (r *runner) search(ctx context.Context, s *sideRunner, q Query) answer {
	rctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	data, err := osreq.Do(rctx, s.Client, http.MethodPost, "/"+url.PathEscape(s.Index)+"/_search", q.Body)
	a := answer{finished: time.Now()}
	if err != nil {
		status, _ := osreq.Info(err)
		a.outcome, a.errText = outcomeError, err.Error()
		switch {
		case status == http.StatusTooManyRequests:
			a.outcome = outcomeRejected
		case errors.Is(rctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
			a.errText = fmt.Sprintf("no answer within %s", r.cfg.Timeout)
		case status >= 400 && status < 500 && status != http.StatusRequestTimeout:
			a.bad = true
		}
		return a
	}
	var ans struct {
		TimedOut bool                         `json:"timed_out"`
		Shards   opensearchapi.ResponseShards `json:"_shards"`
		Hits     struct {
			Hits []struct {
				ID string `json:"_id"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(data, &ans); err != nil {
		a.outcome, a.errText = outcomeError, fmt.Sprintf("decode answer: %v", err)
		return a
	}
	if err := osreq.ShardsError(ans.Shards, ans.TimedOut); err != nil {
		a.outcome, a.errText = outcomeError, err.Error()
		return a
	}
	n := min(len(ans.Hits.Hits), r.cfg.TopK)
	a.ids = make([]string, n)
	for i := range n {
		a.ids[i] = ans.Hits.Hits[i].ID
	}
	return a
}

// pair collects the answers of both sides to one scheduled query and
// compares them when the last arrives.
type pair struct {
	sides   int32
	pending atomic.Int32
	answers [2]answer
	done    func(overlap float64)
}

// finish stores side i's answer; the last side to finish compares.
func (p *pair) finish(i int, a answer) {
	p.answers[i] = a
	if p.pending.Add(-1) != 0 {
		return
	}
	if p.sides == 2 && p.answers[0].outcome == outcomeOK && p.answers[1].outcome == outcomeOK {
		p.done(TopKOverlap(p.answers[1].ids, p.answers[0].ids))
	}
}

// step runs step n at share of the full rate and judges it. The error
// reports a query the cluster rejects as malformed (or an index that went
// missing): the step is abandoned, since the numbers would measure the
// query file rather than the load.
func (r *runner) step(ctx context.Context, n int, share float64) (StepResult, error) {
	cfg := r.cfg
	sctx, cancelStep := context.WithCancel(ctx)
	defer cancelStep()
	var (
		badOnce sync.Once
		badErr  error
	)
	rate := cfg.Rate * share
	res := StepResult{Step: n, Share: share, Rate: rate}
	total := max(int(rate*cfg.StepDuration.Seconds()+0.5), 1)
	accs := make([]*sideAcc, len(r.sides))
	for i := range accs {
		accs[i] = &sideAcc{latencies: make([]time.Duration, 0, total)}
	}
	var (
		omu     sync.Mutex
		overlap Overlap
		wg      sync.WaitGroup
	)
	compared := func(v float64) {
		omu.Lock()
		overlap.add(v)
		omu.Unlock()
		if m := cfg.Metrics; m != nil {
			m.Compared.Inc()
			if v < 1 {
				m.Differing.Inc()
			}
		}
	}
	if m := cfg.Metrics; m != nil {
		m.Step.Set(float64(n))
		m.TargetRate.Set(rate)
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	start := time.Now()
	for i := 0; i < total && !res.Interrupted; i++ {
		due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-sctx.Done():
				res.Interrupted = true
				continue
			case <-timer.C:
			}
		}
		q := cfg.Queries[r.next%len(cfg.Queries)]
		r.next++
		p := &pair{sides: int32(len(r.sides)), done: compared}
		p.pending.Store(p.sides)
		for si, s := range r.sides {
			select {
			case s.sem <- struct{}{}:
			default:
				r.record(accs[si], s, outcomeUnsent, 0, fmt.Sprintf("%d requests in flight: not sent", cfg.MaxInFlight))
				p.finish(si, answer{outcome: outcomeUnsent})
				continue
			}
			if m := cfg.Metrics; m != nil {
				m.InFlight.WithLabelValues(s.Name).Inc()
			}
			wg.Go(func() {
				a := r.search(sctx, s, q)
				<-s.sem
				if m := cfg.Metrics; m != nil {
					m.InFlight.WithLabelValues(s.Name).Dec()
				}
				if a.bad {
					badOnce.Do(func() {
						badErr = fmt.Errorf("%s side (index %s): query on line %d: %s", s.Name, s.Index, q.Line, a.errText)
						cancelStep()
					})
				}
				if a.bad || sctx.Err() != nil && a.outcome != outcomeOK {
					// Cancelled, not failed by the cluster's load.
					p.finish(si, a)
					return
				}
				r.record(accs[si], s, a.outcome, a.finished.Sub(due), a.errText)
				p.finish(si, a)
			})
		}
	}
	wg.Wait()
	if badErr != nil {
		return res, badErr
	}
	if ctx.Err() != nil {
		res.Interrupted = true
	}
	res.Duration = time.Since(start)
	// Rates are per second of the step's schedule, so a slow last answer
	// does not dilute them.
	span := cfg.StepDuration
	res.New = accs[0].result(span)
	if len(accs) == 2 {
		old := accs[1].result(span)
		res.Old = &old
	}
	res.Overlap = overlap
	if !res.Interrupted {
		res.Breaches = cfg.Limits.judge(res)
	}
	return res, nil
}

// record adds one request's outcome to acc and the metrics.
func (r *runner) record(acc *sideAcc, s *sideRunner, o outcome, latency time.Duration, errText string) {
	acc.add(o, latency, errText)
	if m := r.cfg.Metrics; m != nil {
		m.Requests.WithLabelValues(s.Name, o.String()).Inc()
		if o != outcomeUnsent {
			m.Latency.WithLabelValues(s.Name).Observe(latency.Seconds())
		}
	}
}
