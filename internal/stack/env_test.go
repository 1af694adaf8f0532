//go:build integration

package stack

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// envKeys is the contract of .cache/services/env (and of the environment `make test` exports).
var envKeys = []string{"KAFKA_BROKERS", "KAFKA_VERSION", "OPENSEARCH_URL", "OPENSEARCH_VERSION", "OPENSEARCH_SNAPSHOT_DIR"}

// repoRoot finds the module root (the directory holding go.mod) above the test's directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// envFilePath is where scripts/services.sh writes the stack's env.
func envFilePath(t *testing.T) string {
	if d := os.Getenv("SERVICES_DIR"); d != "" {
		return filepath.Join(d, "env")
	}
	return filepath.Join(repoRoot(t), ".cache", "services", "env")
}

// readEnvFile parses the shell KEY=value lines scripts/services.sh writes: values are bare,
// or single-quoted when they need it (a quote inside is written as the usual shell escape).
func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = strings.ReplaceAll(v[1:len(v)-1], `'\''`, "'")
		} else if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		}
		m[k] = v
	}
	return m, sc.Err()
}

// stackEnv returns the stack's env: the process environment first (what `make test`
// exports), completed from the env file. Missing keys fail the test: a test that needs the
// services never skips.
func stackEnv(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	file, ferr := readEnvFile(envFilePath(t))
	for _, k := range envKeys {
		if v := os.Getenv(k); v != "" {
			m[k] = v
		} else if v := file[k]; v != "" {
			m[k] = v
		}
	}
	var missing []string
	for _, k := range envKeys {
		if m[k] == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("real services are required but not configured: %s unset and not in %s (%v); start them with `make services-up` or run `make test` (REQUIRE_REAL_SERVICES=%q)",
			strings.Join(missing, ", "), envFilePath(t), ferr, os.Getenv("REQUIRE_REAL_SERVICES"))
	}
	return m
}

// scriptDefaults parses the `: "${NAME:=value}"` default lines of scripts/services.sh, the
// single source of the stack's default versions and ports.
func scriptDefaults(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "scripts", "services.sh"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^: "\$\{([A-Z_]+):=([^}]*)\}"`)
	m := map[string]string{}
	for _, g := range re.FindAllStringSubmatch(string(b), -1) {
		m[g[1]] = g[2]
	}
	for _, k := range []string{"KAFKA_VERSION", "OPENSEARCH_VERSION", "KAFKA_PORT", "KAFKA_CONTROLLER_PORT", "OPENSEARCH_PORT", "OPENSEARCH_TRANSPORT_PORT"} {
		if m[k] == "" {
			t.Fatalf("scripts/services.sh has no default for %s (parsed %v)", k, m)
		}
	}
	return m
}

func TestEnvContract(t *testing.T) {
	env := stackEnv(t)
	if !regexp.MustCompile(`^[^,\s]+:\d+$`).MatchString(env["KAFKA_BROKERS"]) {
		t.Errorf("KAFKA_BROKERS=%q, want host:port", env["KAFKA_BROKERS"])
	}
	if !regexp.MustCompile(`^http://[^/\s]+:\d+$`).MatchString(env["OPENSEARCH_URL"]) {
		t.Errorf("OPENSEARCH_URL=%q, want http://host:port", env["OPENSEARCH_URL"])
	}
	for _, k := range []string{"KAFKA_VERSION", "OPENSEARCH_VERSION"} {
		if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(env[k]) {
			t.Errorf("%s=%q, want x.y.z", k, env[k])
		}
	}
	dir := env["OPENSEARCH_SNAPSHOT_DIR"]
	if !filepath.IsAbs(dir) {
		t.Errorf("OPENSEARCH_SNAPSHOT_DIR=%q is not absolute", dir)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Errorf("OPENSEARCH_SNAPSHOT_DIR=%q is not a directory: %v", dir, err)
	}
}
