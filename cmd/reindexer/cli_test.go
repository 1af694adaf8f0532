package main

import (
	"bytes"
	"context"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got with testdata/name.golden (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/reindexer -run %s -update)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

func runMain(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelpGolden(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
	}{
		{"root", []string{"--help"}},
		{"run", []string{"run", "-h"}},
		{"replay", []string{"replay", "-h"}},
		{"probe", []string{"probe", "-h"}},
		{"parity", []string{"parity", "-h"}},
		{"cutover", []string{"cutover", "-h"}},
		{"version", []string{"version", "-h"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errb := runMain(t, nil, c.args...)
			if code != 0 {
				t.Fatalf("exit %d, want 0", code)
			}
			golden(t, "help-"+c.name, out+errb)
		})
	}
}

// TestBadFlags: every command-line mistake exits 2 with a message naming
// the flag (and, for environment variables, the variable).
func TestBadFlags(t *testing.T) {
	base := []string{"--brokers", "127.0.0.1:1", "--topic", "t", "--group", "g", "--opensearch", "http://127.0.0.1:1", "--index", "i"}
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"unknown command", nil, []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown flag", nil, []string{"run", "--nope"}, "flag provided but not defined: -nope"},
		{"missing topic", nil, []string{"run", "--brokers", "b:1"}, "flag --topic is required (or set REINDEXER_TOPIC)"},
		{"bad delete mode", nil, append([]string{"run", "--delete-mode", "soft"}, base...), "flag --delete-mode"},
		{"bad version type", nil, append([]string{"run", "--version-type", "internal"}, base...), "flag --version-type"},
		{"bad id source", nil, append([]string{"run", "--id-from", "json:id"}, base...), "flag --id-from"},
		{"bad lanes", nil, append([]string{"run", "--lanes", "0"}, base...), "flag --lanes must be positive"},
		{"bad start", nil, append([]string{"run", "--start", "yesterday"}, base...), "flag --start"},
		{"bad brokers", nil, []string{"run", "--brokers", "nohostport", "--topic", "t", "--group", "g", "--opensearch", "http://x:1", "--index", "i"}, "flag --brokers"},
		{"bad opensearch url", nil, []string{"run", "--brokers", "b:1", "--topic", "t", "--group", "g", "--opensearch", "x:9200", "--index", "i"}, "flag --opensearch"},
		{"env value", map[string]string{"REINDEXER_BATCH_DOCS": "many"}, append([]string{"run"}, base...), "flag --batch-docs (from REINDEXER_BATCH_DOCS)"},
		{"replay without range", nil, append([]string{"replay"}, base...), "exactly one of --from, --from-offsets and --since-snapshot"},
		{"replay two ranges", nil, append([]string{"replay", "--from", "1h", "--from-offsets", "0:1"}, base...), "exactly one of"},
		{"replay bad offsets", nil, append([]string{"replay", "--from-offsets", "0=5"}, base...), "flag --from-offsets"},
		{"replay bad from", nil, append([]string{"replay", "--from", "last tuesday"}, base...), "flag --from"},
		{"replay bad to", nil, append([]string{"replay", "--from", "1h", "--to", "soon"}, base...), "flag --to"},
		{"replay bad snapshot", nil, append([]string{"replay", "--since-snapshot", "nosnap"}, base...), "flag --since-snapshot"},
		{"stray argument", nil, []string{"version", "extra"}, `unexpected argument "extra"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errb := runMain(t, c.env, c.args...)
			if code != 2 || !strings.Contains(errb, c.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 and %q", code, errb, c.want)
			}
		})
	}
}

// TestSignalDuringStartup: a SIGTERM that arrives while run is still
// connecting (here OpenSearch accepts connections and never answers) ends
// the process cleanly with exit 0.
func TestSignalDuringStartup(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, say nothing
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var out, errb bytes.Buffer
	code := Main(ctx, []string{"run", "--brokers", "127.0.0.1:1", "--topic", "t", "--group", "g",
		"--opensearch", "http://" + ln.Addr().String(), "--index", "i", "--log-level", "error"}, &out, &errb)
	if code != 0 || !strings.Contains(errb.String(), "stopped by signal") {
		t.Fatalf("exit %d, stderr %q; want 0 after a signal during startup", code, errb.String())
	}
}
