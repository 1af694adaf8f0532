//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reindexer/reindexer/internal/itest"
	"github.com/reindexer/reindexer/probe/probetest"
)

// runBin runs the reindexer binary to completion and returns its exit
// code, stdout and stderr.
func runBin(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "REINDEXER_LOG_LEVEL=warn")
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// osJSON sends a request to the test node and decodes the answer.
func osJSON(t *testing.T, env *itest.Env, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, env.OpenSearchURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if out != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return res.StatusCode
}

// aliasState returns GET _alias/alias as index -> settings (as JSON text).
func aliasState(t *testing.T, env *itest.Env, alias string) map[string]string {
	t.Helper()
	var ans map[string]struct {
		Aliases map[string]json.RawMessage `json:"aliases"`
	}
	osJSON(t, env, http.MethodGet, "/_alias/"+alias, "", &ans)
	out := map[string]string{}
	for index, a := range ans {
		out[index] = string(a.Aliases[alias])
	}
	return out
}

// searchLoop searches through alias until stop is called, counting
// failures and which indices answered.
type searchLoop struct {
	searches, failures atomic.Int64
	mu                 sync.Mutex
	seen               map[string]int
	firstFailure       string
	stop               func()
}

func startSearchLoop(t *testing.T, env *itest.Env, alias string) *searchLoop {
	l := &searchLoop{seen: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	l.stop = func() { cancel(); wg.Wait() }
	body := `{"size":1,"query":{"match_all":{}},"sort":[{"message_id":"asc"}]}`
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, env.OpenSearchURL+"/"+alias+"/_search", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				res, err := http.DefaultClient.Do(req)
				if ctx.Err() != nil {
					return
				}
				l.searches.Add(1)
				var ans struct {
					Shards struct{ Failed int } `json:"_shards"`
					Hits   struct {
						Hits []struct {
							Index string `json:"_index"`
						} `json:"hits"`
					} `json:"hits"`
				}
				fail := ""
				switch {
				case err != nil:
					fail = err.Error()
				default:
					data, _ := io.ReadAll(res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK || json.Unmarshal(data, &ans) != nil || ans.Shards.Failed > 0 || len(ans.Hits.Hits) == 0 {
						fail = fmt.Sprintf("HTTP %d: %.300s", res.StatusCode, data)
					}
				}
				l.mu.Lock()
				if fail != "" {
					l.failures.Add(1)
					if l.firstFailure == "" {
						l.firstFailure = fail
					}
				} else {
					l.seen[ans.Hits.Hits[0].Index]++
				}
				l.mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	t.Cleanup(l.stop)
	return l
}

// waitSearches waits until the loop has made n more searches.
func (l *searchLoop) waitSearches(t *testing.T, n int64) {
	t.Helper()
	want := l.searches.Load() + n
	deadline := time.Now().Add(30 * time.Second)
	for l.searches.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("the search loop made %d searches, want %d", l.searches.Load(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCutoverSwapAndRollback: through the binary against the local node.
// With injected drift the cutover refuses (exit 1) and the alias stays; a
// dry run changes nothing; with parity the alias moves in one request,
// keeping its filter, routing and write-index settings; --rollback moves it
// back; a loop searching through the alias the whole time never fails.
func TestCutoverSwapAndRollback(t *testing.T) {
	env := itest.Services(t)
	cl := itest.OpenSearch(t, env)
	docs := probetest.Docs(t)
	oldIndex, newIndex, drifted := itest.Name(t, "cutover-v1"), itest.Name(t, "cutover-v2"), itest.Name(t, "cutover-drift")
	alias, ckpt := itest.Name(t, "cutover-alias"), itest.Name(t, "cutover-ckpt")
	itest.CleanupIndex(t, env, ckpt)
	probetest.Load(t, env, cl, oldIndex, docs)
	probetest.Load(t, env, cl, newIndex, docs)
	probetest.Load(t, env, cl, drifted, probetest.Drift(docs))
	settings := `{"filter":{"bool":{"must_not":{"exists":{"field":"reindexer_tombstone"}}}},"index_routing":"r1","search_routing":"r1","is_write_index":true}`
	var add map[string]any
	json.Unmarshal([]byte(settings), &add)
	add["index"], add["alias"] = oldIndex, alias
	actions, _ := json.Marshal(map[string]any{"actions": []any{map[string]any{"add": add}}})
	if code := osJSON(t, env, http.MethodPost, "/_aliases", string(actions), nil); code != http.StatusOK {
		t.Fatalf("create alias: HTTP %d", code)
	}
	before := aliasState(t, env, alias)
	if len(before) != 1 || before[oldIndex] == "" {
		t.Fatalf("alias before: %v", before)
	}
	wantSettings := before[oldIndex]
	loop := startSearchLoop(t, env, alias)
	loop.waitSearches(t, 20)
	base := []string{"cutover", "--opensearch", env.OpenSearchURL, "--alias", alias, "--checkpoint-index", ckpt}
	cut := func(extra ...string) (int, string, string) {
		return runBin(t, append(append([]string{}, base...), extra...)...)
	}

	code, out, errb := cut("--to-index", drifted, "--mode", "full")
	if code != exitFailure || !strings.Contains(errb, "shows drift") || !strings.Contains(out, "refused, parity shows drift") {
		t.Fatalf("drifted: exit %d\nstdout %s\nstderr %s\nwant exit 1 and the drift", code, out, errb)
	}
	if got := aliasState(t, env, alias); len(got) != 1 || got[oldIndex] != wantSettings {
		t.Fatalf("after the refused cutover the alias is %v, want it unchanged on %s", got, oldIndex)
	}

	code, out, errb = cut("--to-index", newIndex, "--dry-run")
	if code != exitOK || !strings.Contains(out, "dry run, would swap; nothing changed") {
		t.Fatalf("dry run: exit %d\nstdout %s\nstderr %s", code, out, errb)
	}
	if got := aliasState(t, env, alias); len(got) != 1 || got[oldIndex] == "" {
		t.Fatalf("after the dry run the alias is %v, want it on %s", got, oldIndex)
	}

	code, out, errb = cut("--to-index", newIndex, "--mode", "full")
	if code != exitOK || !strings.Contains(out, "now points at "+newIndex) {
		t.Fatalf("cutover: exit %d\nstdout %s\nstderr %s", code, out, errb)
	}
	t.Logf("cutover:\n%s", out)
	if got := aliasState(t, env, alias); len(got) != 1 || got[newIndex] != wantSettings {
		t.Fatalf("after the cutover the alias is %v, want it on %s with %s", got, newIndex, wantSettings)
	}
	loop.waitSearches(t, 20)

	code, out, errb = cut("--rollback", "--json")
	var rep cutoverReport
	if code != exitOK || json.Unmarshal([]byte(out), &rep) != nil || rep.Outcome != outcomeRolledBack || rep.To != oldIndex {
		t.Fatalf("rollback: exit %d\nstdout %s\nstderr %s", code, out, errb)
	}
	if got := aliasState(t, env, alias); len(got) != 1 || got[oldIndex] != wantSettings {
		t.Fatalf("after the rollback the alias is %v, want it back on %s with %s", got, oldIndex, wantSettings)
	}
	code, out, _ = cut("--rollback")
	if code != exitOK || !strings.Contains(out, "already rolled back") {
		t.Fatalf("second rollback: exit %d, stdout %s; want 0, nothing to do", code, out)
	}
	loop.waitSearches(t, 20)
	loop.stop()
	loop.mu.Lock()
	defer loop.mu.Unlock()
	t.Logf("search loop: %d searches, %d failures, answered by %v", loop.searches.Load(), loop.failures.Load(), loop.seen)
	if loop.failures.Load() != 0 {
		t.Fatalf("%d of %d searches through the alias failed, first: %s", loop.failures.Load(), loop.searches.Load(), loop.firstFailure)
	}
	if loop.seen[oldIndex] == 0 || loop.seen[newIndex] == 0 {
		t.Fatalf("searches were answered by %v, want both %s and %s", loop.seen, oldIndex, newIndex)
	}
}

// TestCutoverRefuses: an alias over two indices, a missing NEW index, a
// missing alias and a rollback without a record are refused with exit 2,
// changing nothing.
func TestCutoverRefuses(t *testing.T) {
	env := itest.Services(t)
	a, b := itest.Name(t, "cutover-a"), itest.Name(t, "cutover-b")
	alias, ckpt := itest.Name(t, "cutover-alias"), itest.Name(t, "cutover-ckpt")
	itest.CleanupIndex(t, env, ckpt)
	itest.CreateIndex(t, env, a, probetest.Mapping)
	itest.CreateIndex(t, env, b, probetest.Mapping)
	base := []string{"cutover", "--opensearch", env.OpenSearchURL, "--checkpoint-index", ckpt}
	cut := func(extra ...string) (int, string, string) {
		return runBin(t, append(append([]string{}, base...), extra...)...)
	}

	code, _, errb := cut("--alias", alias, "--to-index", b)
	if code != exitUsage || !strings.Contains(errb, "alias "+alias+" does not exist") {
		t.Fatalf("missing alias: exit %d, stderr %s", code, errb)
	}
	osJSON(t, env, http.MethodPost, "/_aliases", fmt.Sprintf(`{"actions":[{"add":{"index":%q,"alias":%q}}]}`, a, alias), nil)
	code, _, errb = cut("--alias", alias, "--to-index", itest.Name(t, "cutover-missing"))
	if code != exitUsage || !strings.Contains(errb, "does not exist") {
		t.Fatalf("missing new index: exit %d, stderr %s", code, errb)
	}
	code, _, errb = cut("--alias", alias, "--rollback")
	if code != exitUsage || !strings.Contains(errb, "no cutover of alias "+alias+" is recorded") {
		t.Fatalf("rollback without record: exit %d, stderr %s", code, errb)
	}
	osJSON(t, env, http.MethodPost, "/_aliases", fmt.Sprintf(`{"actions":[{"add":{"index":%q,"alias":%q}}]}`, b, alias), nil)
	code, _, errb = cut("--alias", alias, "--to-index", b)
	if code != exitUsage || !strings.Contains(errb, "points at 2 indices ("+a+", "+b+")") {
		t.Fatalf("alias over two indices: exit %d, stderr %s", code, errb)
	}
	if got := aliasState(t, env, alias); len(got) != 2 {
		t.Fatalf("alias after the refusals: %v, want it on both indices still", got)
	}
}
