// Command render writes docs/reliability.md from the results the fault
// tests left in a directory (see package chaosreport):
//
//	go run ./internal/chaosreport/render -in .cache/chaos-results -out docs/reliability.md
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/reindexer/reindexer/internal/chaosreport"
)

func main() {
	in := flag.String("in", ".cache/chaos-results", "directory of result files")
	out := flag.String("out", "docs/reliability.md", "report to write")
	kafka := flag.String("kafka-version", os.Getenv("KAFKA_VERSION"), "Kafka version tested")
	opensearch := flag.String("opensearch-version", os.Getenv("OPENSEARCH_VERSION"), "OpenSearch version tested")
	command := flag.String("command", "make chaos", "command named in the report")
	flag.Parse()
	if err := run(*in, *out, chaosreport.Meta{
		Generated: time.Now(), KafkaVersion: *kafka, OpenSearchVersion: *opensearch,
		Machine: machine(), Command: *command,
	}); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

func run(in, out string, meta chaosreport.Meta) error {
	results, err := chaosreport.Load(in)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	rerr := chaosreport.Render(&buf, meta, results)
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	fmt.Printf("wrote %s (%d scenarios)\n", out, len(results))
	return rerr // chaosreport.ErrFailed after a complete report: make chaos fails
}

// machine describes the host: cores and memory.
func machine() string {
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			var kb int64
			if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
				mem = fmt.Sprintf(", %d GiB", (kb+512*1024)/(1024*1024))
			}
		}
	}
	return fmt.Sprintf("%d cores%s, %s/%s", runtime.NumCPU(), mem, runtime.GOOS, runtime.GOARCH)
}
