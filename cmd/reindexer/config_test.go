package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeConfigFile writes content to name in a temporary directory.
func writeConfigFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// parseRun parses args with env as the environment into a fresh run
// command's flags.
func parseRun(t *testing.T, env map[string]string, args ...string) (*RunCommand, error) {
	t.Helper()
	c := &RunCommand{}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	c.register(fs)
	err := parseFlags(fs, args, func(k string) string { return env[k] })
	return c, err
}

const yamlConfig = `# reindexer run settings
brokers:
  - kafka-1:9092
  - kafka-2:9092
topic: chat-events
group: chat-indexer
opensearch: https://search.example:9200
index: messages
lanes: 6
batch-bytes: 8MiB
fetch_max_bytes: 32MiB
session-timeout: 2m
kafka-tls: true
run:
  stall-timeout: 7d
  lanes: 3
replay:
  from: 2d
`

// TestConfigPrecedence: command line > REINDEXER_<FLAG> > file > default,
// for each kind of value.
func TestConfigPrecedence(t *testing.T) {
	path := writeConfigFile(t, "reindexer.yaml", yamlConfig)

	c, err := parseRun(t, nil, "--config", path)
	if err != nil {
		t.Fatal(err)
	}
	p := c.flags
	if p.kafka.brokers != "kafka-1:9092,kafka-2:9092" || p.topic != "chat-events" || p.index != "messages" || !p.kafka.tls {
		t.Errorf("file values not applied: brokers %q topic %q index %q tls %v", p.kafka.brokers, p.topic, p.index, p.kafka.tls)
	}
	if p.lanes != 3 {
		t.Errorf("lanes %d, want 3 (the run section overrides the top level)", p.lanes)
	}
	if p.batchBytes != 8<<20 || p.fetchMaxBytes != 32<<20 {
		t.Errorf("sizes: batch %d fetch %d", p.batchBytes, p.fetchMaxBytes)
	}
	if p.sessionTimeout != 2*time.Minute || c.stallTimeout != 7*24*time.Hour {
		t.Errorf("durations: session %s stall %s", p.sessionTimeout, c.stallTimeout)
	}
	if p.linger != 5*time.Millisecond || p.batchDocs != 5000 {
		t.Errorf("defaults not kept: linger %s batch-docs %d", p.linger, p.batchDocs)
	}

	// The environment beats the file; the command line beats both.
	env := map[string]string{"REINDEXER_LANES": "5", "REINDEXER_BATCH_BYTES": "1MiB", "REINDEXER_TOPIC": "from-env"}
	c, err = parseRun(t, env, "--config", path, "--lanes", "2", "--session-timeout", "1d")
	if err != nil {
		t.Fatal(err)
	}
	p = c.flags
	if p.lanes != 2 || p.batchBytes != 1<<20 || p.topic != "from-env" || p.sessionTimeout != 24*time.Hour || p.index != "messages" {
		t.Errorf("precedence: lanes %d (want 2, flag) batch %d (want 1MiB, env) topic %q (want env) session %s (want 24h, flag) index %q (want file)",
			p.lanes, p.batchBytes, p.topic, p.sessionTimeout, p.index)
	}

	// REINDEXER_CONFIG names the file too.
	c, err = parseRun(t, map[string]string{"REINDEXER_CONFIG": path})
	if err != nil || c.flags.topic != "chat-events" {
		t.Fatalf("REINDEXER_CONFIG: topic %q, %v", c.flags.topic, err)
	}
}

func TestConfigTOML(t *testing.T) {
	path := writeConfigFile(t, "reindexer.toml", `
brokers = ["kafka-1:9092", "kafka-2:9092"]
topic = "chat-events"
batch-bytes = "512KiB"
lanes = 2
kafka-tls = true
[run]
stall-timeout = "36h"
`)
	c, err := parseRun(t, nil, "--config", path)
	if err != nil {
		t.Fatal(err)
	}
	if c.flags.kafka.brokers != "kafka-1:9092,kafka-2:9092" || c.flags.batchBytes != 512<<10 || c.flags.lanes != 2 ||
		!c.flags.kafka.tls || c.stallTimeout != 36*time.Hour {
		t.Errorf("TOML values: %+v stall %s", c.flags, c.stallTimeout)
	}
}

// TestConfigErrors: every bad value names the setting and where it came
// from (flag, environment variable, or file and key).
func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		file string // YAML content; "" = no file
		env  map[string]string
		args []string
		want []string
	}{
		{name: "bad size in file", file: "batch-bytes: 4 MiBs\n", want: []string{"setting batch-bytes", "key batch-bytes", "reindexer.yaml", `unknown unit "MiBs"`}},
		{name: "bad duration in section", file: "run:\n  stall-timeout: 7 days\n", want: []string{"setting stall-timeout", "key run.stall-timeout"}},
		{name: "unknown key", file: "bach-bytes: 4MiB\n", want: []string{"key bach-bytes is not a setting of reindexer run"}},
		{name: "replay key at the top", file: "from: 2d\n", want: []string{"key from is not a setting of reindexer run"}},
		{name: "nested value", file: "kafka:\n  brokers: x\n", want: []string{"key kafka", "unsupported value"}},
		{name: "yaml syntax", file: "lanes: [1\n", want: []string{"flag --config: config file", "reindexer.yaml"}},
		{name: "duplicate key", file: "lanes: 1\nlanes: 2\n", want: []string{"reindexer.yaml", "lanes"}},
		{name: "secret not echoed", file: "opensearch-password: 12\nlanes: x\n", want: []string{"setting lanes"}},
		{name: "bad size in env", env: map[string]string{"REINDEXER_FETCH_MAX_BYTES": "lots"}, want: []string{"flag --fetch-max-bytes (from REINDEXER_FETCH_MAX_BYTES)"}},
		{name: "bad duration flag", args: []string{"--session-timeout", "3x"}, want: []string{"flag -session-timeout"}},
		{name: "missing file", args: []string{"--config", "/nonexistent/reindexer.yaml"}, want: []string{"flag --config", "no such file"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := c.args
			if c.file != "" {
				args = append([]string{"--config", writeConfigFile(t, "reindexer.yaml", c.file)}, args...)
			}
			_, err := parseRun(t, c.env, args...)
			var ue usageError
			if err == nil || !errors.As(err, &ue) {
				t.Fatalf("err = %v, want a usage error", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	// A file holding a password that fails does not print it.
	_, err := parseRun(t, nil, "--config", writeConfigFile(t, "reindexer.yaml", "kafka-password: hunter2\nlanes: x\n"))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v", err)
	}
	if got := redactSetting("opensearch-password", "hunter2"); got != "<redacted>" {
		t.Fatalf("redactSetting = %q", got)
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "4194304": 4 << 20, "4MiB": 4 << 20, "4mib": 4 << 20, "4 MiB": 4 << 20, "4M": 4 << 20,
		"512KiB": 512 << 10, "1GB": 1e9, "1.5GiB": 3 << 29, "10MB": 1e7, "2TiB": 2 << 40, "100B": 100,
	} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "4 parsecs", "1.2.3MiB", "99999999999TiB"} {
		if got, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) = %d, want an error", in, got)
		}
	}
	for n, want := range map[int64]string{4 << 20: "4MiB", 1 << 30: "1GiB", 1000: "1000", 3 << 10: "3KiB", 0: "0"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"7d": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour, "1.5d": 36 * time.Hour, "90m": 90 * time.Minute, "-1d": -24 * time.Hour, "0d": 0,
	} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"d", "7days", "1d-2h", "x", "+1d", "1dd"} {
		if got, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) = %s, want an error", in, got)
		}
	}
}

// TestValidationNamesSource: a value that parses but is rejected later
// (here --lanes 0) is reported with where it came from.
func TestValidationNamesSource(t *testing.T) {
	base := []string{"--brokers", "127.0.0.1:1", "--topic", "t", "--group", "g", "--opensearch", "http://127.0.0.1:1", "--index", "i"}
	path := writeConfigFile(t, "reindexer.yaml", "run:\n  lanes: 0\n")
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"file", nil, append([]string{"run", "--config", path}, base...), "flag --lanes must be positive, got 0 (set by config file " + path + ", key run.lanes)"},
		{"env", map[string]string{"REINDEXER_LANES": "0"}, append([]string{"run"}, base...), "flag --lanes must be positive, got 0 (set by REINDEXER_LANES)"},
		{"flag", nil, append([]string{"replay", "--lanes", "0", "--from", "1h"}, base...), "flag --lanes must be positive, got 0\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errb := runMain(t, c.env, c.args...)
			if code != 2 || !strings.Contains(errb, c.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 and %q", code, errb, c.want)
			}
		})
	}
}
