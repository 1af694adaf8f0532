package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"

	"github.com/reindexer/reindexer/checkpoint"
	"github.com/reindexer/reindexer/internal/osreq"
	"github.com/reindexer/reindexer/parity"
)

// CutoverCommand is "reindexer cutover": moves an alias to a new index in
// one atomic request when parity holds, and back with --rollback.
type CutoverCommand struct {
	stdout, stderr io.Writer
	getenv         func(string) string

	os              osFlags
	alias           string
	toIndex         string
	rollback        bool
	dryRun          bool
	jsonOut         bool
	checkpointIndex string

	check checkFlags

	now func() time.Time
}

func (c *CutoverCommand) register(fs *flag.FlagSet) {
	c.os.register(fs)
	fs.StringVar(&c.alias, "alias", "", "the alias to move (required); it must point at exactly one index")
	fs.StringVar(&c.toIndex, "to-index", "", "the index to move the alias to (one of --to-index and --rollback)")
	fs.BoolVar(&c.rollback, "rollback", false, "move the alias back to the index the last cutover took it from, with the settings it had there")
	fs.BoolVar(&c.dryRun, "dry-run", false, "check everything (parity too) and print the request that would be sent; change nothing")
	fs.BoolVar(&c.jsonOut, "json", false, "print the report as JSON")
	c.check.register(fs)
	fs.StringVar(&c.checkpointIndex, "checkpoint-index", checkpoint.DefaultIndex, "index in the cluster that records each cutover, so that --rollback can undo it")
}

// Usage returns the help text.
func (c *CutoverCommand) Usage() string {
	fs := flag.NewFlagSet("cutover", flag.ContinueOnError)
	(&CutoverCommand{}).register(fs)
	return `Usage: reindexer cutover --opensearch URL --alias A --to-index NEW [flags]
       reindexer cutover --opensearch URL --alias A --rollback [flags]

Moves an alias inside one cluster (a reindex for a new mapping, a snapshot
restored under a new name) from the one index it points at to NEW, only when
parity holds between the two (the same check and flags as 'reindexer
parity'). The move is one atomic _aliases request (remove from the old
index, add to NEW), so searches through the alias never fail and never see
both or neither; the alias keeps its filter, index and search routing, write
index and hidden settings. The request only succeeds while the alias is
still on the index that was checked.

Before the move, what it replaces is recorded in --checkpoint-index;
'--rollback' moves the alias back to that index, with the settings it had
there, in one request, without a parity check (it is the way back).

Refuses (exit 2) when the alias does not exist or points at several indices,
or NEW is missing. Exit codes: 0 moved, rolled back, nothing to do, or a dry
run that would; 1 parity shows drift (the alias is unchanged) or the move
failed; 2 could not check, or refused.

Examples:
  # What would happen? Checks parity, prints the request, changes nothing.
  reindexer cutover --opensearch http://search:9200 --alias messages --to-index messages-v2 --dry-run

  # Move the alias if every id and version match.
  reindexer cutover --opensearch http://search:9200 --alias messages --to-index messages-v2 --mode full

  # Undo it.
  reindexer cutover --opensearch http://search:9200 --alias messages --rollback

Flags:
` + flagUsage(fs)
}

// cutoverReport is what cutover did or would do.
type cutoverReport struct {
	// Action is "cutover" or "rollback".
	Action string `json:"action"`
	// Alias is the alias.
	Alias string `json:"alias"`
	// From and To are the indices the alias moves from and to.
	From string `json:"from"`
	To   string `json:"to"`
	// Settings are the alias's settings kept across the move.
	Settings checkpoint.AliasSettings `json:"settings"`
	// Parity is the check a cutover made (nil for a rollback).
	Parity *cutoverParity `json:"parity,omitempty"`
	// Request is the _aliases body sent (or that a dry run would send).
	Request json.RawMessage `json:"request,omitempty"`
	// DryRun is set for --dry-run.
	DryRun bool `json:"dry_run"`
	// Outcome is one of the outcome constants.
	Outcome string `json:"outcome"`
	// Record is the checkpoint index holding the cutover record.
	Record string `json:"record,omitempty"`
	// RecordedAt is when the cutover being rolled back was made.
	RecordedAt *time.Time `json:"recorded_at,omitempty"`
}

// Outcomes of a cutover report.
const (
	outcomeSwapped        = "swapped"
	outcomeWouldSwap      = "would swap"
	outcomeDrift          = "refused: parity shows drift"
	outcomeAlreadyThere   = "nothing to do: the alias already points there"
	outcomeRolledBack     = "rolled back"
	outcomeWouldRollBack  = "would roll back"
	outcomeAlreadyRolled  = "nothing to do: already rolled back"
	outcomeSwapFailed     = "failed: the alias was not moved"
	parityErrorSuggestion = "fix the cause and run it again; the alias is unchanged"
)

// cutoverParity is the parity check in a report.
type cutoverParity struct {
	Mode      string `json:"mode"`
	Verdict   string `json:"verdict"`
	Left      int64  `json:"left_count"`
	Right     int64  `json:"right_count"`
	OnlyLeft  int64  `json:"only_left"`
	OnlyRight int64  `json:"only_right"`
	Versions  int64  `json:"version_differs"`
	Drift     int64  `json:"drift"`
	Tolerance int64  `json:"tolerance"`
	Sampled   int    `json:"sampled,omitempty"`
}

// summary is one line about the check.
func (p *cutoverParity) summary(from, to string) string {
	s := fmt.Sprintf("%s: %d live documents in %s, %d in %s", p.Mode, p.Left, from, p.Right, to)
	if p.Mode != string(parity.ModeCount) {
		s += fmt.Sprintf("; %d only in %s, %d only in %s, %d at other versions", p.OnlyLeft, from, p.OnlyRight, to, p.Versions)
		if p.Sampled > 0 {
			s += fmt.Sprintf(" (of %d sampled)", p.Sampled)
		}
	}
	return s + fmt.Sprintf("; drift %d, tolerance %d: %s", p.Drift, p.Tolerance, p.Verdict)
}

// Run parses args and moves the alias (or rolls it back).
func (c *CutoverCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("cutover", flag.ContinueOnError)
	c.register(fs)
	if err := parseFlags(fs, args, c.getenv); err != nil {
		return err
	}
	if c.now == nil {
		c.now = time.Now
	}
	check, err := c.validate()
	if err != nil {
		return err
	}
	admin, _, err := c.os.clients(1)
	if err != nil {
		return err
	}
	defer admin.Close()
	store := checkpoint.NewStore(admin, c.checkpointIndex)
	var rep cutoverReport
	if c.rollback {
		rep, err = c.runRollback(ctx, admin, store)
	} else {
		rep, err = c.runCutover(ctx, admin, store, check)
	}
	if rep.Outcome != "" {
		if perr := c.print(rep); perr != nil && err == nil {
			err = fmt.Errorf("print report: %w", perr)
		}
	}
	return err
}

// validate checks the flags that need no connection.
func (c *CutoverCommand) validate() (parity.Config, error) {
	if err := required("opensearch", c.os.urls, "alias", c.alias); err != nil {
		return parity.Config{}, err
	}
	if strings.ContainsAny(c.alias, "*,") {
		return parity.Config{}, usageError{fmt.Errorf("flag --alias: %q is a pattern; name one alias", c.alias)}
	}
	switch {
	case c.rollback && c.toIndex != "":
		return parity.Config{}, usageError{errors.New("flags --to-index and --rollback exclude each other")}
	case !c.rollback && c.toIndex == "":
		return parity.Config{}, usageError{fmt.Errorf("give --to-index (or set %s) or --rollback", envName("to-index"))}
	case strings.ContainsAny(c.toIndex, "*,"):
		return parity.Config{}, usageError{fmt.Errorf("flag --to-index: %q is a pattern; name one index", c.toIndex)}
	case c.toIndex == c.alias && c.toIndex != "":
		return parity.Config{}, usageError{errors.New("flag --to-index names the alias itself")}
	}
	if c.checkpointIndex == "" || c.checkpointIndex == "none" {
		return parity.Config{}, usageError{errors.New("flag --checkpoint-index: cutover records what it replaces there; name an index")}
	}
	return c.check.config()
}

// runCutover checks the alias, NEW and parity, records the move and makes
// it.
func (c *CutoverCommand) runCutover(ctx context.Context, cl *opensearchapi.Client, store *checkpoint.Store, check parity.Config) (cutoverReport, error) {
	rep := cutoverReport{Action: "cutover", Alias: c.alias, To: c.toIndex, DryRun: c.dryRun}
	from, settings, err := singleTarget(ctx, cl, c.alias)
	if err != nil {
		return rep, err
	}
	rep.From, rep.Settings = from, settings
	if from == c.toIndex {
		rep.Outcome = outcomeAlreadyThere
		return rep, nil
	}
	if err := concreteIndex(ctx, cl, c.toIndex, "--to-index"); err != nil {
		return rep, err
	}
	check.Left, check.Right, check.Now = parity.Side{Client: cl, Index: from}, parity.Side{Client: cl, Index: c.toIndex}, c.now
	res, err := parity.Compare(ctx, check)
	if err != nil {
		return rep, exitError{exitUsage, fmt.Errorf("could not check parity between %s and %s: %w; %s", from, c.toIndex, err, parityErrorSuggestion)}
	}
	rep.Parity = &cutoverParity{Mode: string(res.Mode), Verdict: res.Verdict, Left: res.Left.Count, Right: res.Right.Count,
		OnlyLeft: res.Diff.OnlyLeft, OnlyRight: res.Diff.OnlyRight, Versions: res.Diff.VersionDiffers,
		Drift: res.Drift, Tolerance: res.Tolerance, Sampled: res.Sampled}
	if res.Verdict != parity.VerdictEqual {
		rep.Outcome = outcomeDrift
		return rep, exitError{exitFailure, fmt.Errorf("parity between %s and %s shows drift (%s); alias %s unchanged",
			from, c.toIndex, rep.Parity.summary(from, c.toIndex), c.alias)}
	}
	rep.Request = swapBody(c.alias, from, c.toIndex, settings)
	if c.dryRun {
		rep.Outcome = outcomeWouldSwap
		return rep, nil
	}
	host, _ := os.Hostname()
	rec := checkpoint.Cutover{Alias: c.alias, From: from, To: c.toIndex, Settings: settings,
		Parity: rep.Parity.summary(from, c.toIndex), Time: c.now(), Host: host, PID: os.Getpid()}
	// Recorded before the move: a move that happened is always undoable.
	// A record of a move that then failed is harmless: --rollback checks
	// that the alias is where the record says it was moved to.
	if err := store.SaveCutover(ctx, rec); err != nil {
		return rep, exitError{exitFailure, fmt.Errorf("record the cutover (nothing was moved): %w", err)}
	}
	rep.Record = store.Index()
	if err := swap(ctx, cl, c.alias, c.toIndex, rep.Request); err != nil {
		rep.Outcome = outcomeSwapFailed
		return rep, exitError{exitFailure, err}
	}
	rep.Outcome = outcomeSwapped
	return rep, nil
}

// runRollback moves the alias back to where the last cutover took it from.
func (c *CutoverCommand) runRollback(ctx context.Context, cl *opensearchapi.Client, store *checkpoint.Store) (cutoverReport, error) {
	rep := cutoverReport{Action: "rollback", Alias: c.alias, DryRun: c.dryRun}
	rec, ok, err := store.LoadCutover(ctx, c.alias)
	if err != nil {
		return rep, exitError{exitUsage, fmt.Errorf("could not read the cutover record: %w", err)}
	}
	if !ok {
		return rep, exitError{exitUsage, fmt.Errorf("no cutover of alias %s is recorded in %s: nothing to roll back", c.alias, store.Index())}
	}
	// Back from where the cutover moved it to where it was.
	rep.From, rep.To, rep.Settings, rep.Record = rec.To, rec.From, rec.Settings, store.Index()
	recorded := rec.Time
	rep.RecordedAt = &recorded
	current, _, err := singleTarget(ctx, cl, c.alias)
	if err != nil {
		return rep, err
	}
	if current == rec.From && rec.RolledBack != nil {
		rep.Outcome = outcomeAlreadyRolled
		return rep, nil
	}
	if current != rec.To {
		return rep, exitError{exitUsage, fmt.Errorf("alias %s points at %s, not at %s where the cutover of %s moved it: it was moved since; refusing to roll back",
			c.alias, current, rec.To, rec.Time.UTC().Format(time.RFC3339))}
	}
	if err := concreteIndex(ctx, cl, rec.From, "the recorded previous index"); err != nil {
		return rep, err
	}
	rep.Request = swapBody(c.alias, rec.To, rec.From, rec.Settings)
	if c.dryRun {
		rep.Outcome = outcomeWouldRollBack
		return rep, nil
	}
	if err := swap(ctx, cl, c.alias, rec.From, rep.Request); err != nil {
		rep.Outcome = outcomeSwapFailed
		return rep, exitError{exitFailure, err}
	}
	now := c.now().UTC()
	rec.RolledBack = &now
	rep.Outcome = outcomeRolledBack
	if err := store.SaveCutover(ctx, rec); err != nil {
		return rep, exitError{exitFailure, fmt.Errorf("alias %s is back on %s, but marking the cutover record rolled back failed: %w", c.alias, rec.From, err)}
	}
	return rep, nil
}

// aliasAction is one action of an _aliases request.
type aliasAction struct {
	Index     string `json:"index"`
	Alias     string `json:"alias"`
	MustExist *bool  `json:"must_exist,omitempty"`
	checkpoint.AliasSettings
}

// swapBody is the _aliases request that moves alias from one index to
// another with settings. must_exist makes the whole request fail when the
// alias has left from in the meantime (a concurrent move), instead of
// silently adding a second target.
func swapBody(alias, from, to string, settings checkpoint.AliasSettings) json.RawMessage {
	yes := true
	body, _ := json.Marshal(map[string]any{"actions": []any{
		map[string]aliasAction{"remove": {Index: from, Alias: alias, MustExist: &yes}},
		map[string]aliasAction{"add": {Index: to, Alias: alias, AliasSettings: settings}},
	}})
	return body
}

// swap sends body and checks that alias now points at exactly to. An
// error answer after which the alias is nevertheless on to (a retried
// request whose first try went through) is success.
func swap(ctx context.Context, cl *opensearchapi.Client, alias, to string, body json.RawMessage) error {
	var ack struct {
		Acknowledged bool `json:"acknowledged"`
	}
	sendErr := osreq.JSON(ctx, cl, http.MethodPost, "/_aliases", body, &ack)
	if sendErr == nil && !ack.Acknowledged {
		sendErr = errors.New("the cluster did not acknowledge the request")
	}
	now, err := aliasTargets(ctx, cl, alias)
	if err != nil {
		if sendErr != nil {
			return fmt.Errorf("move alias %s to %s: %w (and reading the alias back: %v)", alias, to, sendErr, err)
		}
		return fmt.Errorf("moved alias %s to %s, but reading it back failed: %w", alias, to, err)
	}
	if _, ok := now[to]; ok && len(now) == 1 {
		return nil
	}
	if sendErr == nil {
		sendErr = errors.New("acknowledged, yet the alias is elsewhere")
	}
	return fmt.Errorf("move alias %s to %s: %w; the alias now points at %s", alias, to, sendErr, strings.Join(sortedKeys(now), ", "))
}

// aliasTargets returns the indices alias points at, with its settings on
// each; an empty map when the alias does not exist.
func aliasTargets(ctx context.Context, cl *opensearchapi.Client, alias string) (map[string]checkpoint.AliasSettings, error) {
	var ans map[string]struct {
		Aliases map[string]checkpoint.AliasSettings `json:"aliases"`
	}
	err := osreq.JSON(ctx, cl, http.MethodGet, "/_alias/"+url.PathEscape(alias), nil, &ans)
	if err != nil {
		if osreq.IsNotFound(err) {
			return map[string]checkpoint.AliasSettings{}, nil
		}
		return nil, fmt.Errorf("read alias %s: %w", alias, err)
	}
	out := map[string]checkpoint.AliasSettings{}
	for index, a := range ans {
		if s, ok := a.Aliases[alias]; ok {
			out[index] = s
		}
	}
	return out, nil
}

// singleTarget returns the one index alias points at and its settings
// there; an alias that is missing or points at several indices is refused
// (exit 2).
func singleTarget(ctx context.Context, cl *opensearchapi.Client, alias string) (string, checkpoint.AliasSettings, error) {
	targets, err := aliasTargets(ctx, cl, alias)
	if err != nil {
		return "", checkpoint.AliasSettings{}, exitError{exitUsage, fmt.Errorf("could not check: %w", err)}
	}
	switch len(targets) {
	case 0:
		return "", checkpoint.AliasSettings{}, exitError{exitUsage, fmt.Errorf("alias %s does not exist; cutover moves an existing alias (create it on the current index first)", alias)}
	case 1:
		for index, s := range targets {
			return index, s, nil
		}
	}
	return "", checkpoint.AliasSettings{}, exitError{exitUsage, fmt.Errorf("alias %s points at %d indices (%s); cutover moves an alias from exactly one index, refusing",
		alias, len(targets), strings.Join(sortedKeys(targets), ", "))}
}

// concreteIndex refuses (exit 2) a name that is missing or is not one
// concrete index; what names the name in messages.
func concreteIndex(ctx context.Context, cl *opensearchapi.Client, name, what string) error {
	var ans map[string]json.RawMessage
	err := osreq.JSON(ctx, cl, http.MethodGet, "/"+url.PathEscape(name)+"/_settings?filter_path=*.settings.index.uuid", nil, &ans)
	switch {
	case err != nil && osreq.IsNotFound(err):
		return exitError{exitUsage, fmt.Errorf("%s: index %s does not exist", what, name)}
	case err != nil:
		return exitError{exitUsage, fmt.Errorf("could not check index %s: %w", name, err)}
	}
	if _, ok := ans[name]; !ok || len(ans) != 1 {
		return exitError{exitUsage, fmt.Errorf("%s: %s is not an index but an alias or pattern of %s", what, name, strings.Join(sortedKeys(ans), ", "))}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// print writes the report to stdout, as text or JSON.
func (c *CutoverCommand) print(rep cutoverReport) error {
	if c.jsonOut {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return writeCutoverText(c.stdout, rep)
}

// settingsText describes alias settings in a few words.
func settingsText(s checkpoint.AliasSettings) string {
	var parts []string
	if len(s.Filter) > 0 {
		parts = append(parts, "filter "+string(s.Filter))
	}
	if s.IndexRouting != "" {
		parts = append(parts, "index_routing "+s.IndexRouting)
	}
	if s.SearchRouting != "" {
		parts = append(parts, "search_routing "+s.SearchRouting)
	}
	if s.IsWriteIndex != nil {
		parts = append(parts, fmt.Sprintf("is_write_index %v", *s.IsWriteIndex))
	}
	if s.IsHidden != nil {
		parts = append(parts, fmt.Sprintf("is_hidden %v", *s.IsHidden))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// writeCutoverText prints the report for people.
func writeCutoverText(w io.Writer, rep cutoverReport) error {
	fmt.Fprintf(w, "%s of alias %s: %s -> %s\n", rep.Action, rep.Alias, orDash(rep.From), orDash(rep.To))
	fmt.Fprintf(w, "alias settings kept: %s\n", settingsText(rep.Settings))
	if rep.RecordedAt != nil {
		fmt.Fprintf(w, "undoing the cutover of %s recorded in %s\n", rep.RecordedAt.UTC().Format(time.RFC3339), rep.Record)
	}
	if p := rep.Parity; p != nil {
		fmt.Fprintf(w, "parity %s\n", p.summary(rep.From, rep.To))
	}
	if len(rep.Request) > 0 && rep.Outcome != outcomeDrift {
		fmt.Fprintf(w, "request: POST /_aliases %s\n", rep.Request)
	}
	switch rep.Outcome {
	case outcomeSwapped:
		fmt.Fprintf(w, "result: alias %s now points at %s (one atomic request); recorded in %s, undo with --rollback\n", rep.Alias, rep.To, rep.Record)
	case outcomeRolledBack:
		fmt.Fprintf(w, "result: alias %s points at %s again (one atomic request)\n", rep.Alias, rep.To)
	case outcomeWouldSwap, outcomeWouldRollBack:
		fmt.Fprintf(w, "result: dry run, %s; nothing changed\n", rep.Outcome)
	case outcomeDrift:
		fmt.Fprintf(w, "result: refused, parity shows drift; alias %s still points at %s\n", rep.Alias, rep.From)
	default:
		fmt.Fprintf(w, "result: %s\n", rep.Outcome)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
