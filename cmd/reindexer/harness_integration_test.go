//go:build integration

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// binPath is the reindexer binary the process-level tests run.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "reindexer-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "reindexer")
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the reindexer binary:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func longChaos() bool { return os.Getenv("REINDEXER_CHAOS") == "long" }
func short() bool     { return testing.Short() || os.Getenv("REINDEXER_COMPAT") == "1" }

// proc is one reindexer process.
type proc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// start runs the binary with args; its output goes to a log file that is
// printed if the test fails.
func start(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	p, _ := startSplit(t, name, args...)
	return p
}

// createTopicDLQ creates topic with partitions and its dead-letter topic
// (topic + ".dlq", one partition), as every replay and run under test
// writes malformed events there.
func createTopicDLQ(t testing.TB, env *itest.Env, topic string, partitions int32) {
	t.Helper()
	itest.CreateTopic(t, env, topic, partitions)
	itest.CreateTopic(t, env, topic+".dlq", 1)
}

// startSplit is start() with the process's stdout (a replay's --json
// summary) in a file of its own, whose path it returns; p.log gets stderr
// (the log).
func startSplit(t testing.TB, name string, args ...string) (*proc, string) {
	t.Helper()
	dir := t.TempDir()
	logPath, outPath := filepath.Join(dir, name+".log"), filepath.Join(dir, name+".out")
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	of, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binPath, args...)
	cmd.Stdout, cmd.Stderr = of, lf
	cmd.Env = append(os.Environ(), "REINDEXER_LOG_LEVEL=info")
	// If the test binary dies (timeout, panic), its workers die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		of.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			o, _ := os.ReadFile(outPath)
			t.Logf("---- %s log (last 3000 bytes) ----\n%s\n---- %s stdout ----\n%s", name, tail(b, 3000), name, tail(o, 3000))
		}
	})
	return p, outPath
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// kill sends SIGKILL and waits for the process to die.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// term sends SIGTERM and waits up to timeout for a clean exit; it fails the
// test unless the exit code is 0.
func (p *proc) term(timeout time.Duration) {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.kill()
		p.t.Errorf("%s did not exit within %s of SIGTERM", p.name, timeout)
		return
	}
	if p.err != nil {
		b, _ := os.ReadFile(p.log)
		p.t.Errorf("%s exited with %v after SIGTERM, want 0; log tail:\n%s", p.name, p.err, tail(b, 2000))
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// runArgs are the flags of a worker writing topic into index.
func runArgs(env *itest.Env, topic, group, index string, extra ...string) []string {
	return append([]string{"run",
		"--brokers", strings.Join(env.KafkaBrokers, ","),
		"--opensearch", env.OpenSearchURL,
		"--topic", topic, "--group", group, "--index", index,
		"--session-timeout", "6s", "--commit-interval", "200ms",
		"--checkpoint-interval", "1s",
	}, extra...)
}

// stream produces events while a test runs, recording where each landed.
type stream struct {
	mu     sync.Mutex
	at     map[int32][]chatgen.Event // partition -> events in offset order
	offset map[int32][]int64
	ends   map[int32]int64
	err    error
	done   chan struct{}
}

// produceSlowly produces events in chunks of chunk every interval.
func produceSlowly(t testing.TB, env *itest.Env, topic string, events []chatgen.Event, chunk int, interval time.Duration) *stream {
	s := &stream{at: map[int32][]chatgen.Event{}, offset: map[int32][]int64{}, ends: map[int32]int64{}, done: make(chan struct{})}
	cl := itest.Kafka(t, env, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(time.Millisecond))
	go func() {
		defer close(s.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; i < len(events); i += chunk {
			recs := make([]*kgo.Record, 0, chunk)
			which := map[*kgo.Record]chatgen.Event{}
			for _, e := range events[i:min(i+chunk, len(events))] {
				r := itest.Record(topic, e)
				recs = append(recs, r)
				which[r] = e
			}
			res := cl.ProduceSync(context.Background(), recs...)
			if err := res.FirstErr(); err != nil {
				s.mu.Lock()
				s.err = err
				s.mu.Unlock()
				return
			}
			s.mu.Lock()
			// Results come in completion order, which is offset order
			// within a partition.
			for _, r := range res {
				p := r.Record.Partition
				s.at[p] = append(s.at[p], which[r.Record])
				s.offset[p] = append(s.offset[p], r.Record.Offset)
				s.ends[p] = r.Record.Offset + 1
			}
			s.mu.Unlock()
			<-tick.C
		}
	}()
	return s
}

func (s *stream) wait(t testing.TB) map[int32]int64 {
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		t.Fatalf("producing: %v", s.err)
	}
	out := map[int32]int64{}
	for p, e := range s.ends {
		out[p] = e
	}
	return out
}

// monitor watches the group's commits and checks that every record below a
// committed offset is already applied in the index: its document has at
// least that record's version (the index is in tombstone mode, so deletes
// leave a versioned document too). A commit ahead of an unapplied record
// would show up as an older version in the index.
type monitor struct {
	cl         *opensearchapi.Client
	adm        *kadm.Client
	checked    map[int32]int64
	violations []string
	errors     []string
	commits    int
}

func (m *monitor) check(s *stream, group, topic, index string) {
	adm := m.adm
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fetched, err := adm.FetchOffsets(ctx, group)
	if err != nil || fetched.Error() != nil {
		return
	}
	type want struct {
		id      string
		version int64
		part    int32
		offset  int64
	}
	var wants []want
	s.mu.Lock()
	fetched.Each(func(o kadm.OffsetResponse) {
		if o.Topic != topic || o.At <= m.checked[o.Partition] {
			return
		}
		offs := s.offset[o.Partition]
		upTo := m.checked[o.Partition]
		for i, off := range offs {
			if off < m.checked[o.Partition] {
				continue
			}
			if off >= o.At {
				break
			}
			e := s.at[o.Partition][i]
			wants = append(wants, want{e.ID, e.Version, o.Partition, off})
			upTo = off + 1
		}
		if upTo > m.checked[o.Partition] {
			m.checked[o.Partition] = upTo
			m.commits++
		}
	})
	s.mu.Unlock()
	if len(wants) == 0 {
		return
	}
	ids := make([]string, len(wants))
	for i, w := range wants {
		ids[i] = w.id
	}
	got, err := mget(m.cl, index, ids)
	if err != nil {
		m.errors = append(m.errors, err.Error())
		return
	}
	for _, w := range wants {
		if v, ok := got[w.id]; !ok || v < w.version {
			m.violations = append(m.violations, fmt.Sprintf("partition %d offset %d (%s v%d) committed but index has v%d",
				w.part, w.offset, w.id, w.version, v))
		}
	}
}

// mget reads the realtime _version of ids.
func mget(cl *opensearchapi.Client, index string, ids []string) (map[string]int64, error) {
	out := map[string]int64{}
	for i := 0; i < len(ids); i += 1000 {
		body, _ := json.Marshal(map[string]any{"ids": ids[i:min(i+1000, len(ids))]})
		req, _ := newRequest("POST", "/"+index+"/_mget?realtime=true&_source=false", body)
		res, err := cl.Client.Stream(req)
		if err != nil {
			return nil, fmt.Errorf("mget: %w", err)
		}
		var parsed struct {
			Docs []struct {
				ID      string `json:"_id"`
				Found   bool   `json:"found"`
				Version int64  `json:"_version"`
			} `json:"docs"`
		}
		err = json.NewDecoder(res.Body).Decode(&parsed)
		res.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("mget decode: %w", err)
		}
		for _, d := range parsed.Docs {
			if d.Found {
				out[d.ID] = d.Version
			}
		}
	}
	return out, nil
}
