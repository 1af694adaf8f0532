package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestReadQueries(t *testing.T) {
	qs, err := ReadQueries(strings.NewReader("{\"query\": {\"match_all\": {}}}\n\n  {\"size\":1}  "))
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 2 || qs[0].Line != 1 || qs[1].Line != 3 || string(qs[0].Body) != `{"query":{"match_all":{}}}` {
		t.Fatalf("got %+v", qs)
	}
	for _, c := range []struct{ in, want string }{
		{"{\"size\":1}\nnot json\n", "line 2 is not a JSON object"},
		{"{\"size\":1}\n[1,2]\n", "line 2 is not a JSON object"},
		{"{\"size\":\n", "line 1 is not a JSON object"},
		{"\n\n", "holds no search body"},
	} {
		if _, err := ReadQueries(strings.NewReader(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ReadQueries(%q) = %v, want %q", c.in, err, c.want)
		}
	}
}

func TestParseSteps(t *testing.T) {
	got, err := ParseSteps("5%, 10%,30%,100%,150%")
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{0.05, 0.1, 0.3, 1, 1.5}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"", "5", "0%", "-5%", "x%", "2000%", "5%,,abc"} {
		if _, err := ParseSteps(bad); err == nil {
			t.Errorf("ParseSteps(%q) accepted", bad)
		}
	}
}

func TestParseRatio(t *testing.T) {
	for in, want := range map[string]float64{"1%": 0.01, "0.5%": 0.005, "0.02": 0.02, "0": 0, "100%": 1} {
		if got, err := ParseRatio(in); err != nil || got != want {
			t.Errorf("ParseRatio(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"x", "150%", "-1%", "2"} {
		if _, err := ParseRatio(bad); err == nil {
			t.Errorf("ParseRatio(%q) accepted", bad)
		}
	}
}

func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	if p := percentile(lat, 0.5); p != 50*time.Millisecond {
		t.Errorf("p50 %s", p)
	}
	if p := percentile(lat, 0.99); p != 99*time.Millisecond {
		t.Errorf("p99 %s", p)
	}
	if p := percentile(lat[:1], 0.99); p != time.Millisecond {
		t.Errorf("p99 of one %s", p)
	}
	if p := percentile(nil, 0.99); p != 0 {
		t.Errorf("p99 of none %s", p)
	}
}

func TestTopKOverlap(t *testing.T) {
	for _, c := range []struct {
		a, b []string
		want float64
	}{
		{nil, nil, 1},
		{[]string{"a", "b"}, []string{"b", "a"}, 1},
		{[]string{"a", "b", "c", "d"}, []string{"a", "b"}, 0.5},
		{[]string{"a"}, nil, 0},
		{[]string{"a", "x"}, []string{"a", "y"}, 0.5},
	} {
		if got := TopKOverlap(c.a, c.b); got != c.want {
			t.Errorf("TopKOverlap(%v, %v) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

func TestJudge(t *testing.T) {
	ms := time.Millisecond
	old := &SideStats{Scheduled: 100, Sent: 100, OK: 100, P99: 10 * ms}
	for _, c := range []struct {
		name   string
		limits Limits
		step   StepResult
		want   string // comma-separated breached limits
	}{
		{"holds", Limits{MaxP99Ratio: 2, MaxErrorRate: 0.01},
			StepResult{New: SideStats{Scheduled: 100, Sent: 100, OK: 100, P99: 15 * ms}, Old: old}, ""},
		{"ratio", Limits{MaxP99Ratio: 2, MaxErrorRate: -1},
			StepResult{New: SideStats{Scheduled: 100, Sent: 100, OK: 100, P99: 25 * ms}, Old: old}, "max-p99-ratio"},
		{"ratio below floor", Limits{MaxP99Ratio: 2, RatioFloor: 30 * ms, MaxErrorRate: -1},
			StepResult{New: SideStats{Scheduled: 100, Sent: 100, OK: 100, P99: 25 * ms}, Old: old}, ""},
		{"ratio without old", Limits{MaxP99Ratio: 2, MaxErrorRate: -1},
			StepResult{New: SideStats{Scheduled: 100, Sent: 100, OK: 100, P99: 25 * ms}}, ""},
		{"old answered nothing", Limits{MaxP99Ratio: 2, MaxErrorRate: -1},
			StepResult{New: SideStats{Scheduled: 1, Sent: 1, OK: 1, P99: 25 * ms}, Old: &SideStats{Scheduled: 1, Unsent: 1}}, "max-p99-ratio"},
		{"p99", Limits{MaxP99: 20 * ms, MaxErrorRate: -1},
			StepResult{New: SideStats{Scheduled: 100, Sent: 100, OK: 100, P99: 25 * ms}}, "max-p99"},
		{"errors count unsent and rejected", Limits{MaxErrorRate: 0.05},
			StepResult{New: SideStats{Scheduled: 100, Sent: 97, OK: 94, Errors: 1, Rejected: 2, Unsent: 3}}, "max-error-rate"},
		{"error rate at the limit holds", Limits{MaxErrorRate: 0.05},
			StepResult{New: SideStats{Scheduled: 100, Sent: 100, OK: 95, Errors: 5}}, ""},
		{"zero allows none", Limits{MaxErrorRate: 0},
			StepResult{New: SideStats{Scheduled: 100, Sent: 100, OK: 99, Errors: 1}}, "max-error-rate"},
		{"overlap", Limits{MinOverlap: 0.9, MaxErrorRate: -1},
			StepResult{New: SideStats{Scheduled: 10, Sent: 10, OK: 10}, Old: old, Overlap: Overlap{Compared: 10, Differing: 5, Sum: 8}}, "min-overlap"},
		{"all", Limits{MaxP99Ratio: 2, MaxP99: 20 * ms, MaxErrorRate: 0, MinOverlap: 1},
			StepResult{New: SideStats{Scheduled: 10, Sent: 10, OK: 9, Errors: 1, P99: 50 * ms}, Old: old, Overlap: Overlap{Compared: 9, Differing: 1, Sum: 8.5}},
			"max-p99-ratio,max-p99,max-error-rate,min-overlap"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, b := range c.limits.judge(c.step) {
				got = append(got, b.Limit)
			}
			if strings.Join(got, ",") != c.want {
				t.Fatalf("breaches %v, want %q", c.limits.judge(c.step), c.want)
			}
		})
	}
}

// fakeSearch is a stand-in for a search endpoint: it answers every
// _search after delay with hits ids, or with status when not 0.
type fakeSearch struct {
	delay  atomic.Int64 // nanoseconds
	status atomic.Int32
	ids    string
	count  atomic.Int64
}

func (f *fakeSearch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.count.Add(1)
	if strings.Contains(string(body), "no_such_query") {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":{"type":"parsing_exception","reason":"unknown query [no_such_query]"},"status":400}`)
		return
	}
	if !strings.HasSuffix(r.URL.Path, "/_search") {
		http.NotFound(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/missing/") {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":{"type":"index_not_found_exception","reason":"no such index [missing]"},"status":404}`)
		return
	}
	select {
	case <-time.After(time.Duration(f.delay.Load())):
	case <-r.Context().Done():
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if s := f.status.Load(); s != 0 {
		w.WriteHeader(int(s))
		fmt.Fprintf(w, `{"error":{"type":"rejected_execution_exception","reason":"busy"},"status":%d}`, s)
		return
	}
	fmt.Fprintf(w, `{"took":1,"timed_out":false,"_shards":{"total":1,"successful":1,"skipped":0,"failed":0},"hits":{"hits":[%s]}}`, f.ids)
}

func hits(ids ...string) string {
	var parts []string
	for _, id := range ids {
		parts = append(parts, fmt.Sprintf(`{"_index":"x","_id":%q}`, id))
	}
	return strings.Join(parts, ",")
}

func fakeClient(t *testing.T, h http.Handler) *opensearchapi.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cl, err := opensearchapi.NewClient(opensearchapi.Config{Client: opensearch.Config{Addresses: []string{srv.URL}, DisableRetry: true}})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

var oneQuery = []Query{{Line: 1, Body: []byte(`{"query":{"match_all":{}}}`)}}

// TestOpenLoopCountsUnsent: a side that answers in 200ms with at most 2
// requests in flight serves 10 queries/s; asked for 40/s it must not slow
// the schedule down (closed loop) but count what it could not send, and its
// latency includes no time spent waiting to be sent.
func TestOpenLoopCountsUnsent(t *testing.T) {
	f := &fakeSearch{ids: hits("a")}
	f.delay.Store(int64(200 * time.Millisecond))
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	rep, err := Run(t.Context(), Config{
		New:     Side{Client: fakeClient(t, f), Index: "x"},
		Queries: oneQuery, Rate: 40, Steps: []float64{1}, StepDuration: time.Second,
		MaxInFlight: 2, Limits: Limits{MaxErrorRate: 0.5}, Metrics: m,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Steps[0].New
	t.Logf("%+v", s)
	if s.Scheduled != 40 || s.Sent+s.Unsent != 40 {
		t.Fatalf("scheduled %d (sent %d, unsent %d), want 40 on the fixed schedule", s.Scheduled, s.Sent, s.Unsent)
	}
	if s.Sent > 14 || s.Unsent < 26 {
		t.Fatalf("sent %d, unsent %d: 2 in flight at 200ms serve about 10 of 40", s.Sent, s.Unsent)
	}
	if s.P50 < 200*time.Millisecond {
		t.Fatalf("p50 %s below the server's 200ms", s.P50)
	}
	if rep.Verdict != Fail || rep.FailedStep != 1 || rep.Steps[0].Breaches[0].Limit != "max-error-rate" {
		t.Fatalf("verdict %s at step %d, breaches %v; want fail on max-error-rate", rep.Verdict, rep.FailedStep, rep.Steps[0].Breaches)
	}
	if got := testutil.ToFloat64(m.Requests.WithLabelValues("new", "unsent")); int(got) != s.Unsent {
		t.Fatalf("unsent metric %v, want %d", got, s.Unsent)
	}
}

// TestStopsAtFirstBreachingStep: the node slows down after step 2; the
// probe stops at step 3 and never runs step 4.
func TestStopsAtFirstBreachingStep(t *testing.T) {
	f := &fakeSearch{ids: hits("a", "b")}
	var steps []int
	rep, err := Run(t.Context(), Config{
		New:     Side{Client: fakeClient(t, f), Index: "x"},
		Queries: oneQuery, Rate: 20, Steps: []float64{0.25, 0.5, 1, 1}, StepDuration: 400 * time.Millisecond,
		Limits: Limits{MaxP99: 100 * time.Millisecond, MaxErrorRate: 0.01},
		OnStep: func(s StepResult) {
			steps = append(steps, s.Step)
			if s.Step == 2 {
				f.delay.Store(int64(150 * time.Millisecond)) // the node gets slow from step 3
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verdict != Fail || rep.FailedStep != 3 || len(rep.Steps) != 3 || fmt.Sprint(steps) != "[1 2 3]" {
		t.Fatalf("verdict %s, failed step %d, steps run %v; want fail at step 3 and no step 4", rep.Verdict, rep.FailedStep, steps)
	}
	if b := rep.Steps[2].Breaches; len(b) != 1 || b[0].Limit != "max-p99" {
		t.Fatalf("breaches %v, want max-p99", b)
	}
	if got := rep.Steps[1].New; got.Scheduled != 4 || got.OK != 4 {
		t.Fatalf("step 2: %+v; want 4 scheduled and answered (10/s for 0.4s)", got)
	}
}

func TestRejectionsAndOverlap(t *testing.T) {
	newSide := &fakeSearch{ids: hits("a", "b", "c", "x")}
	oldSide := &fakeSearch{ids: hits("a", "b", "c", "d")}
	rep, err := Run(t.Context(), Config{
		New:     Side{Client: fakeClient(t, newSide), Index: "x"},
		Old:     &Side{Client: fakeClient(t, oldSide), Index: "x"},
		Queries: oneQuery, Rate: 20, Steps: []float64{1, 1}, StepDuration: 300 * time.Millisecond,
		Limits: Limits{MaxErrorRate: 0.1},
		OnStep: func(StepResult) { newSide.status.Store(http.StatusTooManyRequests) },
	})
	if err != nil {
		t.Fatal(err)
	}
	first, second := rep.Steps[0], rep.Steps[1]
	if first.Overlap.Compared != 6 || first.Overlap.Mean() != 0.75 || first.Overlap.Differing != 6 {
		t.Fatalf("step 1 overlap %+v, want 6 compared at 75%%", first.Overlap)
	}
	if second.New.Rejected != 6 || second.New.RejectionRate() != 1 || second.Old.OK != 6 || second.Overlap.Compared != 0 {
		t.Fatalf("step 2 new %+v old %+v overlap %+v; want 6 rejections and nothing compared", second.New, second.Old, second.Overlap)
	}
	if rep.Verdict != Fail || rep.FailedStep != 2 || rep.Overlap.Compared != 6 {
		t.Fatalf("report %+v", rep)
	}
}

func TestPreflight(t *testing.T) {
	f := &fakeSearch{}
	_, err := Run(t.Context(), Config{
		New:     Side{Client: fakeClient(t, f), Index: "missing"},
		Queries: oneQuery, Rate: 1, Steps: []float64{1}, StepDuration: time.Second,
	})
	var ce *CheckError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "index_not_found_exception") || !strings.Contains(err.Error(), "new side (index missing)") {
		t.Fatalf("err %v, want a CheckError naming the side and the missing index", err)
	}
	cl, err2 := opensearchapi.NewClient(opensearchapi.Config{Client: opensearch.Config{Addresses: []string{"http://127.0.0.1:1"}, DisableRetry: true}})
	if err2 != nil {
		t.Fatal(err2)
	}
	_, err = Run(t.Context(), Config{
		New:     Side{Client: fakeClient(t, f), Index: "x"},
		Old:     &Side{Client: cl, Index: "x"},
		Queries: oneQuery, Rate: 1, Steps: []float64{1}, StepDuration: time.Second,
	})
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "old side") {
		t.Fatalf("err %v, want a CheckError for the unreachable old side", err)
	}
}

func TestInterrupted(t *testing.T) {
	f := &fakeSearch{ids: hits("a")}
	ctx, cancel := context.WithCancel(t.Context())
	rep, err := Run(ctx, Config{
		New:     Side{Client: fakeClient(t, f), Index: "x"},
		Queries: oneQuery, Rate: 10, Steps: []float64{1, 1}, StepDuration: 300 * time.Millisecond,
		Limits: Limits{MaxErrorRate: 0},
		OnStep: func(StepResult) { cancel() },
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verdict != Interrupted || len(rep.Steps) != 2 || !rep.Steps[1].Interrupted || len(rep.Steps[1].Breaches) != 0 {
		t.Fatalf("report %+v, want interrupted in step 2, unjudged", rep)
	}
}

// TestMalformedQueryCouldNotCheck: a query the cluster rejects as
// malformed (400) in the middle of a step ends the probe as "could not
// check", naming the line, instead of counting as the cluster's errors.
func TestMalformedQueryCouldNotCheck(t *testing.T) {
	f := &fakeSearch{ids: hits("a")}
	queries := []Query{oneQuery[0], {Line: 2, Body: []byte(`{"query":{"no_such_query":{}}}`)}}
	rep, err := Run(t.Context(), Config{
		New:     Side{Client: fakeClient(t, f), Index: "x"},
		Queries: queries, Rate: 20, Steps: []float64{1}, StepDuration: 500 * time.Millisecond,
	})
	var ce *CheckError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "query on line 2") || !strings.Contains(err.Error(), "parsing_exception") {
		t.Fatalf("err %v, report %+v; want a CheckError naming line 2", err, rep)
	}
}
