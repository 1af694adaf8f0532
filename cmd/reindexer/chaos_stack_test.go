//go:build integration

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reindexer/reindexer/internal/itest"
)

// privateStack is a Kafka broker and an OpenSearch node of the fault tests'
// own, started with scripts/services.sh on other ports and in another state
// directory (.cache/chaos-services), reusing the downloaded jars. Faults that
// stop a service or change a cluster-wide setting go here, never to the
// shared stack other tests run against.
//
// Besides its plain listener the broker has a second one, PROXIED, that
// advertises the address of a TCP proxy in front of it (proxyPort): a client
// bootstrapped through the proxy is told to reconnect through the proxy, so
// every byte it exchanges with the broker crosses the proxy.
type privateStack struct {
	root, dir string
	vars      []string // environment of services.sh
	env       *itest.Env
	// proxiedListener is the broker's PROXIED listener (the proxy's
	// target); proxyAddr is what that listener advertises.
	proxiedListener, proxyAddr string
}

// chaosPortBase is the first of the private stack's ports; base+92 is Kafka,
// +93 its controller, +94 the proxied listener, +95 the proxy, +200
// OpenSearch HTTP and +300 its transport. REINDEXER_CHAOS_PORT_BASE moves
// them.
func chaosPortBase() int {
	if v, err := strconv.Atoi(os.Getenv("REINDEXER_CHAOS_PORT_BASE")); err == nil && v > 0 {
		return v
	}
	return 19000
}

// startPrivateStack brings the private stack up (fresh data) and takes it
// down when the test ends.
func startPrivateStack(t *testing.T) *privateStack {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := itest.FindRepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	base := chaosPortBase()
	kafka, ctrl, proxied, proxy := base+92, base+93, base+94, base+95
	osHTTP, osTransport := base+200, base+300
	s := &privateStack{
		root:            root,
		dir:             filepath.Join(root, ".cache", "chaos-services"),
		proxiedListener: fmt.Sprintf("127.0.0.1:%d", proxied),
		proxyAddr:       fmt.Sprintf("127.0.0.1:%d", proxy),
	}
	jars := os.Getenv("SERVICES_JARS")
	if jars == "" {
		jars = filepath.Join(root, ".cache", "services", "jars")
	}
	extra := strings.Join([]string{
		fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d,PROXIED://%s", kafka, ctrl, s.proxiedListener),
		fmt.Sprintf("advertised.listeners=PLAINTEXT://127.0.0.1:%d,PROXIED://%s", kafka, s.proxyAddr),
		"listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PROXIED:PLAINTEXT",
	}, "\n")
	s.vars = []string{
		"SERVICES_DIR=" + s.dir,
		"SERVICES_JARS=" + jars,
		"KAFKA_PORT=" + strconv.Itoa(kafka),
		"KAFKA_CONTROLLER_PORT=" + strconv.Itoa(ctrl),
		"OPENSEARCH_PORT=" + strconv.Itoa(osHTTP),
		"OPENSEARCH_TRANSPORT_PORT=" + strconv.Itoa(osTransport),
		"KAFKA_EXTRA_PROPERTIES=" + extra,
		"SERVICES_STOP_TIMEOUT=60",
	}
	// One test process at a time owns the private stack: a second one (say
	// two go test runs in one checkout) waits for the lock, which the kernel
	// releases when its holder dies.
	unlock := lockStack(t, s.dir)
	// A stack left over by a killed test run is stopped first (by pid).
	_ = s.script(t, "down")
	t.Cleanup(func() {
		if err := s.script(t, "down"); err != nil {
			t.Errorf("private stack down: %v", err)
		}
		unlock()
	})
	began := time.Now()
	if err := s.script(t, "up"); err != nil {
		t.Fatalf("private stack up: %v", err)
	}
	s.env = &itest.Env{
		KafkaBrokers:        []string{fmt.Sprintf("127.0.0.1:%d", kafka)},
		OpenSearchURL:       fmt.Sprintf("http://127.0.0.1:%d", osHTTP),
		SnapshotDir:         filepath.Join(s.dir, "opensearch", "snapshots"),
		RequireRealServices: true,
	}
	t.Logf("private stack up in %s: Kafka %s (proxied listener %s advertised as %s), OpenSearch %s",
		time.Since(began).Round(time.Second), s.env.KafkaBrokers[0], s.proxiedListener, s.proxyAddr, s.env.OpenSearchURL)
	return s
}

// lockStack takes an exclusive flock on dir.lock, waiting up to 30 minutes
// for another holder, and returns its release.
func lockStack(t *testing.T, dir string) func() {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Minute)
	for logged := false; ; {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			t.Fatalf("lock %s.lock: %v", dir, err)
		}
		if !logged {
			t.Logf("another test process holds the private stack (%s.lock); waiting", dir)
			logged = true
		}
		time.Sleep(time.Second) // poll interval of an awaited lock
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}
}

// script runs scripts/services.sh with the private stack's environment.
func (s *privateStack) script(t testing.TB, args ...string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(s.root, "scripts", "services.sh"), args...)
	cmd.Dir = s.root
	cmd.Env = append(os.Environ(), s.vars...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("services.sh %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	if testing.Verbose() {
		t.Logf("services.sh %s:\n%s", strings.Join(args, " "), out.String())
	}
	return nil
}

// svcPid reads the pid file of kafka or opensearch.
func (s *privateStack) svcPid(svc string) (int, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, svc, svc+".pid"))
	if err != nil {
		return 0, fmt.Errorf("pid of %s: %w", svc, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("pid of %s: %w", svc, err)
	}
	return pid, nil
}

// stop stops svc (kafka or opensearch) with sig and waits until its JVM is
// gone; its data stays. SIGTERM is an orderly shutdown, SIGKILL a crash.
func (s *privateStack) stop(t testing.TB, svc string, sig syscall.Signal) {
	t.Helper()
	pid, err := s.svcPid(svc)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatalf("signal %s (pid %d): %v", svc, pid, err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Logf("%s did not stop within 90s of %v; killed", svc, sig)
			deadline = time.Now().Add(30 * time.Second)
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
}

// start starts a stopped svc again on its old data and waits until it
// answers.
func (s *privateStack) start(t testing.TB, svc string) {
	t.Helper()
	if err := s.script(t, "restart", svc); err != nil {
		t.Fatalf("start %s: %v", svc, err)
	}
}

// alive reports whether pid runs (a zombie counts as gone).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z'
	}
	return true
}
