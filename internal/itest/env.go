// Package itest holds helpers for integration tests against the real Kafka
// and OpenSearch services of docs/design.md §6: finding and checking the services,
// unique resource names, topics, producing chatgen events, dumping an index
// and comparing it with the reference model.
//
// The helpers build without tags; the tests that call them carry the
// "integration" build tag. A missing service fails the test with a message
// naming it and how to start it (`make services-up`); nothing here skips.
//
// Environment (process environment first, then .cache/services/env at the
// repository root, then defaults):
//
//	KAFKA_BROKERS            comma-separated seed brokers (127.0.0.1:9092)
//	OPENSEARCH_URL           OpenSearch base URL (http://127.0.0.1:9200)
//	OPENSEARCH_SNAPSHOT_DIR  path.repo of the local node, for snapshot tests
//	REQUIRE_REAL_SERVICES    1 under the project's test command
//	KEEP_TEST_DATA           1 keeps topics and indices created by tests
package itest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Default service addresses.
const (
	DefaultKafkaBrokers  = "127.0.0.1:9092"
	DefaultOpenSearchURL = "http://127.0.0.1:9200"
)

// ServicesEnvFile is where the local services write their addresses,
// relative to the repository root.
const ServicesEnvFile = ".cache/services/env"

// Env is where the real services are.
type Env struct {
	// KafkaBrokers are the seed brokers.
	KafkaBrokers []string
	// OpenSearchURL is the base URL of OpenSearch, without a trailing slash.
	OpenSearchURL string
	// SnapshotDir is the OpenSearch node's path.repo (may be empty).
	SnapshotDir string
	// RequireRealServices is set by the project's test command.
	RequireRealServices bool
	// KeepTestData keeps the topics and indices tests create.
	KeepTestData bool
	// EnvFile is the services file that was read, if any.
	EnvFile string
	// OpenSearchVersion is the server version, filled in by Services.
	OpenSearchVersion string
	// KafkaBrokerCount is the number of brokers, filled in by Services.
	KafkaBrokerCount int
}

// LoadEnv reads the environment contract from the process environment and,
// for unset variables, from ServicesEnvFile at the repository root (found
// from the working directory). A missing services file is not an error.
func LoadEnv() (*Env, error) {
	var file map[string]string
	var path string
	wd, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("itest: working directory: %w", err)
	}
	if root, err := FindRepoRoot(wd); err == nil {
		path = filepath.Join(root, filepath.FromSlash(ServicesEnvFile))
		f, err := os.Open(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			path = ""
		case err != nil:
			return nil, fmt.Errorf("itest: open %s: %w", path, err)
		default:
			defer f.Close()
			if file, err = ParseEnvFile(f); err != nil {
				return nil, fmt.Errorf("itest: %s: %w", path, err)
			}
		}
	}
	env := EnvFrom(os.LookupEnv, file)
	env.EnvFile = path
	return env, nil
}

// EnvFrom builds an Env from lookup (the process environment) and file (the
// services file; may be nil); lookup wins when a variable is set in it.
func EnvFrom(lookup func(string) (string, bool), file map[string]string) *Env {
	get := func(key, def string) string {
		if v, ok := lookup(key); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		if v, ok := file[key]; ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return def
	}
	env := &Env{
		OpenSearchURL:       strings.TrimRight(get("OPENSEARCH_URL", DefaultOpenSearchURL), "/"),
		SnapshotDir:         get("OPENSEARCH_SNAPSHOT_DIR", ""),
		RequireRealServices: truthy(get("REQUIRE_REAL_SERVICES", "")),
		KeepTestData:        truthy(get("KEEP_TEST_DATA", "")),
	}
	for _, b := range strings.Split(get("KAFKA_BROKERS", DefaultKafkaBrokers), ",") {
		if b = strings.TrimSpace(b); b != "" {
			env.KafkaBrokers = append(env.KafkaBrokers, b)
		}
	}
	if len(env.KafkaBrokers) == 0 {
		env.KafkaBrokers = []string{DefaultKafkaBrokers}
	}
	return env
}

func truthy(s string) bool {
	if b, err := strconv.ParseBool(s); err == nil {
		return b
	}
	return strings.EqualFold(s, "yes") || strings.EqualFold(s, "on")
}

// ParseEnvFile parses KEY=value lines. Blank lines and lines starting with #
// are ignored; a leading "export " is allowed; values may be wrapped in
// single or double quotes.
func ParseEnvFile(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		key, val, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" || strings.ContainsAny(key, " \t") {
			return nil, fmt.Errorf("line %d: want KEY=value, got %q", n, line)
		}
		val = strings.TrimSpace(val)
		if len(val) >= 2 && (val[0] == '"' || val[0] == '\'') && val[len(val)-1] == val[0] {
			val = val[1 : len(val)-1]
		}
		out[key] = val
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read env file: %w", err)
	}
	return out, nil
}

// FindRepoRoot walks up from dir to the first directory holding go.mod.
func FindRepoRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("itest: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("itest: no go.mod above the working directory")
		}
		dir = parent
	}
}
