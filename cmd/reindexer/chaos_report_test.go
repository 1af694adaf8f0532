//go:build integration

package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reindexer/reindexer/internal/chaosreport"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/reindexer/reindexer/internal/refmodel"
	"github.com/twmb/franz-go/pkg/kadm"
)

// faultRun collects what one fault scenario injects and measures, and
// files it for the reliability report (when REINDEXER_CHAOS_RESULTS names a
// directory; make chaos sets it).
type faultRun struct {
	t     *testing.T
	began time.Time
	res   chaosreport.Result
}

func newFaultRun(t *testing.T, order int, fault, setup, injection string) *faultRun {
	return &faultRun{t: t, began: time.Now(), res: chaosreport.Result{
		Order: order, Fault: fault, Test: t.Name(), Setup: setup, Injection: injection, Long: longChaos(),
	}}
}

// note adds a measurement to the report and the test log.
func (f *faultRun) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	f.res.Notes = append(f.res.Notes, s)
	f.t.Logf("%s", s)
}

// compare dumps index, compares it with want and records the counts. Unless
// lossExpected, a difference fails the test.
func (f *faultRun) compare(env *itest.Env, index string, want map[string]refmodel.Doc, lossExpected bool) itest.Diff {
	f.t.Helper()
	d := itest.Compare(itest.DumpIndex(f.t, env, index), want)
	f.res.Expected, f.res.Found = d.Expected, d.Indexed
	f.res.Lost, f.res.Extra, f.res.WrongVersion = d.Missing, d.Extra, d.Version+d.Source
	f.res.Equal = d.OK()
	f.res.LossExpected = lossExpected
	if !d.OK() && !lossExpected {
		f.t.Errorf("%s", d)
	}
	return d
}

// deadLettered counts the records in topic's dead-letter topic.
func (f *faultRun) deadLettered(env *itest.Env, topic string) {
	f.t.Helper()
	adm := kadm.NewClient(itest.Kafka(f.t, env))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic+".dlq")
	if err != nil {
		f.t.Errorf("end offsets of %s.dlq: %v", topic, err)
		return
	}
	n := 0
	ends.Each(func(o kadm.ListedOffset) { n += int(o.Offset) })
	f.res.DeadLettered = n
}

// done files the result.
func (f *faultRun) done() {
	f.res.Duration = time.Since(f.began).Seconds()
	f.res.At = time.Now().UTC()
	f.t.Logf("%s: injected %d, produced %d, expected %d, found %d, lost %d, extra %d, wrong version %d, dead-lettered %d, longest stall %.1fs, equal %v",
		f.res.Fault, f.res.Injected, f.res.Produced, f.res.Expected, f.res.Found, f.res.Lost, f.res.Extra,
		f.res.WrongVersion, f.res.DeadLettered, f.res.LongestStall, f.res.Equal)
	dir := os.Getenv(chaosreport.ResultsEnv)
	if dir == "" {
		return
	}
	if err := chaosreport.Save(dir, f.res); err != nil {
		f.t.Error(err)
	}
}

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// scrape reads a worker's /metrics into series -> value, the series named
// as printed (e.g. `reindexer_writes_total{result="created"}`).
func scrape(addr string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	defer res.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	return out, nil
}

// sum adds the series of metric name whose labels contain every one of
// labels (e.g. `result="created"`).
func sum(m map[string]float64, name string, labels ...string) float64 {
	var n float64
	for k, v := range m {
		if k != name && !strings.HasPrefix(k, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(k, l) {
				ok = false
			}
		}
		if ok {
			n += v
		}
	}
	return n
}

// blockWatch samples a worker's reindexer_blocked gauge every 200ms.
type blockWatch struct {
	mu          sync.Mutex
	blockedFor  time.Duration // total time seen blocked
	firstBlock  time.Time
	lastBlock   time.Time
	last        map[string]float64
	scrapeFails int
	stop, done  chan struct{}
}

func watchBlocked(addr string) *blockWatch {
	w := &blockWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		prev := time.Now()
		for {
			select {
			case <-w.stop:
				return
			case now := <-tick.C:
				m, err := scrape(addr)
				w.mu.Lock()
				if err != nil {
					w.scrapeFails++
				} else {
					w.last = m
					if m["reindexer_blocked"] > 0 {
						if w.firstBlock.IsZero() {
							w.firstBlock = now
						}
						w.lastBlock = now
						w.blockedFor += now.Sub(prev)
					}
				}
				prev = now
				w.mu.Unlock()
			}
		}
	}()
	return w
}

// blocked reports whether the last sample showed reindexer_blocked = 1.
func (w *blockWatch) blocked() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last["reindexer_blocked"] > 0
}

// metrics returns the last sample.
func (w *blockWatch) metrics() map[string]float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

func (w *blockWatch) close() {
	close(w.stop)
	<-w.done
}
