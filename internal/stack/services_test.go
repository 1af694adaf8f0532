//go:build integration

package stack

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// services runs scripts/services.sh with the stack's versions and ports.
func services(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	root := repoRoot(t)
	cmd := exec.Command(filepath.Join(root, "scripts", "services.sh"), args...)
	cmd.Dir = root
	_, kport, _ := strings.Cut(env["KAFKA_BROKERS"], ":")
	ou, err := url.Parse(env["OPENSEARCH_URL"])
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(),
		"KAFKA_VERSION="+env["KAFKA_VERSION"], "OPENSEARCH_VERSION="+env["OPENSEARCH_VERSION"],
		"KAFKA_PORT="+kport, "OPENSEARCH_PORT="+ou.Port())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

var pidRe = regexp.MustCompile(`(?m)^(kafka|opensearch)\s+UP\s+pid (\d+)`)

func statusPids(t *testing.T, env map[string]string) map[string]string {
	t.Helper()
	out, err := services(t, env, "status")
	if err != nil {
		t.Fatalf("scripts/services.sh status: %v\n%s", err, out)
	}
	pids := map[string]string{}
	for _, m := range pidRe.FindAllStringSubmatch(out, -1) {
		pids[m[1]] = m[2]
	}
	if len(pids) != 2 {
		t.Fatalf("status does not show both services up:\n%s", out)
	}
	return pids
}

// TestServicesUpIsIdempotent: `services-up` on a running healthy stack starts nothing new.
func TestServicesUpIsIdempotent(t *testing.T) {
	env := stackEnv(t)
	before := statusPids(t, env)
	out, err := services(t, env, "up")
	if err != nil {
		t.Fatalf("second `up` failed: %v\n%s", err, out)
	}
	for _, svc := range []string{"kafka", "opensearch"} {
		if !strings.Contains(out, "["+svc+"] already running") {
			t.Errorf("second `up` did not reuse %s:\n%s", svc, out)
		}
	}
	after := statusPids(t, env)
	for svc, pid := range before {
		if after[svc] != pid {
			t.Errorf("%s pid changed from %s to %s after a second `up`", svc, pid, after[svc])
		}
	}
	// The env file is rewritten with the same contract.
	file, err := readEnvFile(envFilePath(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range envKeys {
		if file[k] != env[k] {
			t.Errorf("env file %s=%q, want %q", k, file[k], env[k])
		}
	}
}
