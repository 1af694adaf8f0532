// Command reindexer replays Kafka document events into OpenSearch so the
// index converges on the same state however often, and from wherever, the
// replay runs.
//
//	reindexer run      the long-running consumer-group indexer
//	reindexer replay   a bounded, resumable replay (from a time, offsets, or a snapshot's gap)
//	reindexer parity   a verdict on whether two indices, or an index and its topic, hold the same documents
//	reindexer probe    replay sample searches in rising rate steps, old side against new
//	reindexer cutover  move an alias to a new index atomically when parity holds; --rollback undoes it
//	reindexer version  print the version
//
// The contract these commands keep (flags, exit codes, what each promises)
// is docs/design.md §7.
//
// Run "reindexer <command> -h" for a command's flags and examples. Every flag
// can also be set with an environment variable REINDEXER_<FLAG> (upper case,
// dashes as underscores); a flag on the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed (parity, cutover: drift; probe: a step broke a limit)
	exitUsage   = 2 // bad flags or arguments (parity, probe: could not check; cutover: refused)
)

// command is one subcommand: a small type with Run and Usage.
type command interface {
	// Run parses args and runs the command.
	Run(ctx context.Context, args []string) error
	// Usage returns the help text, with examples.
	Usage() string
}

// usageError marks an error in the command line: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitError carries a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Main runs the command line args and returns the exit code. No secret of
// args or of the REINDEXER_* environment reaches stdout or stderr.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	secrets := secretsIn(args, os.Environ())
	stdout, stderr = scrub(stdout, secrets), scrub(stderr, secrets)
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, rootUsage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	var cmd command
	env := os.Getenv
	switch args[0] {
	case "run":
		cmd = &RunCommand{stdout: stdout, stderr: stderr, getenv: env}
	case "replay":
		cmd = &ReplayCommand{stdout: stdout, stderr: stderr, getenv: env}
	case "probe":
		cmd = &ProbeCommand{stdout: stdout, stderr: stderr, getenv: env}
	case "parity":
		cmd = &ParityCommand{stdout: stdout, stderr: stderr, getenv: env}
	case "cutover":
		cmd = &CutoverCommand{stdout: stdout, stderr: stderr, getenv: env}
	case "version":
		cmd = &VersionCommand{stdout: stdout}
	default:
		fmt.Fprintf(stderr, "reindexer: unknown command %q\n\n%s", args[0], rootUsage)
		return exitUsage
	}
	err := cmd.Run(ctx, args[1:])
	var ue usageError
	var ee exitError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stderr, cmd.Usage())
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "reindexer %s: %v\nRun 'reindexer %s -h' for usage.\n", args[0], ue.err, args[0])
		return exitUsage
	case errors.As(err, &ee):
		if ee.err != nil {
			fmt.Fprintf(stderr, "reindexer %s: %v\n", args[0], ee.err)
		}
		return ee.code
	default:
		fmt.Fprintf(stderr, "reindexer %s: %v\n", args[0], err)
		return exitFailure
	}
}

const rootUsage = `reindexer replays Kafka document events into OpenSearch, converging on the
same index state however often and from wherever the replay runs.

Usage:
  reindexer <command> [flags]

Commands:
  run       follow a topic as a consumer group and index every event (long-running)
  replay    replay a bounded range: from a time, from offsets, or the gap a snapshot is missing
  parity    are two indices (or an index and its topic) equal? counts, a sample or every id and version
  probe     replay sample searches in rising rate steps, old vs new; stop where the new side fails
  cutover   swap an alias to a new index atomically when parity holds; --rollback undoes it
  version   print the version

Every flag also reads REINDEXER_<FLAG> from the environment (e.g. REINDEXER_BROKERS).
Run 'reindexer <command> -h' for flags and examples.
`
