package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

// VersionCommand prints the version.
type VersionCommand struct {
	stdout io.Writer
}

// Run prints the version, the Go version and the module versions of the
// Kafka and OpenSearch clients.
func (c *VersionCommand) Run(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if err := parseFlags(fs, args, func(string) string { return "" }); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "reindexer %s (%s)\n", version, runtime.Version())
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/twmb/franz-go", "github.com/opensearch-project/opensearch-go/v4":
				fmt.Fprintf(c.stdout, "  %s %s\n", d.Path, d.Version)
			}
		}
	}
	return nil
}

// Usage returns the help text.
func (c *VersionCommand) Usage() string {
	return `Usage: reindexer version

Prints the reindexer version, the Go version it was built with, and the
versions of its Kafka (franz-go) and OpenSearch (opensearch-go) clients.
`
}
