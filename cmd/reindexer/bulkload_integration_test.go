//go:build integration

package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/itest"
	"github.com/reindexer/reindexer/internal/refmodel"
)

// refreshInterval reads index's explicit refresh_interval ("" when unset).
func refreshInterval(t testing.TB, env *itest.Env, index string) string {
	t.Helper()
	var ans map[string]struct {
		Settings struct {
			Index struct {
				RefreshInterval string `json:"refresh_interval"`
			} `json:"index"`
		} `json:"settings"`
	}
	if err := json.Unmarshal(osOK(t, env, http.MethodGet, "/"+index+"/_settings", ""), &ans); err != nil {
		t.Fatal(err)
	}
	return ans[index].Settings.Index.RefreshInterval
}

// TestBulkLoad: --bulk-load turns refresh off for the replay and restores
// the index's own setting at the end, also when the replay was killed with
// -9 mid-way and resumed; a replay without the flag never touches another
// index's settings; the replayed index equals the reference model.
func TestBulkLoad(t *testing.T) {
	env := itest.Services(t)
	topic, index, other, ck := itest.Name(t, "bl"), itest.Name(t, "bl"), itest.Name(t, "blo"), itest.Name(t, "ck")
	createTopicDLQ(t, env, topic, 2)
	itest.CreateIndex(t, env, index, `{"settings":{"number_of_shards":1,"number_of_replicas":0,"refresh_interval":"7s"}}`)
	itest.CreateIndex(t, env, other, `{"settings":{"number_of_shards":1,"number_of_replicas":0,"refresh_interval":"3s"}}`)
	itest.CleanupIndex(t, env, ck)
	f := newFeed(t, env, topic, chatgen.MustNew(chatConfig(71, 800)))
	ends := f.produce(3000)

	// A write block keeps the first run from finishing; kill it once it
	// has switched refresh off.
	osOK(t, env, http.MethodPut, "/"+index+"/_settings", `{"index.blocks.write":true}`)
	group := itest.Name(t, "g")
	args := replayArgs(env, topic, group, index, ck, "--from-offsets", "0:0,1:0", "--delete-mode", "tombstone", "--bulk-load")
	p, _ := startSplit(t, "replay-killed", args...)
	for deadline := time.Now().Add(time.Minute); refreshInterval(t, env, index) != "-1" || !strings.Contains(readLog(p), "OpenSearch refuses writes"); {
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("refresh not switched off under a running replay (exited %v); log:\n%s", p.exited(), tail([]byte(readLog(p)), 3000))
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
	p.kill()
	if got := refreshInterval(t, env, index); got != "-1" {
		t.Fatalf("after kill -9 the refresh_interval is %q; the test needs the load's -1 still in place", got)
	}
	osOK(t, env, http.MethodPut, "/"+index+"/_settings", `{"index.blocks.write":null}`)

	r := runReplay(t, "replay-resumed", 2*time.Minute, args...)
	if got := refreshInterval(t, env, index); got != "7s" {
		t.Errorf("after the resumed replay the refresh_interval is %q, want the original 7s", got)
	}
	if !strings.Contains(r.Log, "index settings restored") {
		t.Errorf("the resumed replay did not log the restore")
	}
	itest.CompareToModel(t, itest.DumpIndex(t, env, index), f.model(t, refmodel.ModeTombstone, below(ends)))

	// Without the flag: the other index keeps its own setting.
	runReplay(t, "replay-other", 2*time.Minute, replayArgs(env, topic, itest.Name(t, "g2"), other, ck, "--from-offsets", "0:0,1:0")...)
	if got := refreshInterval(t, env, other); got != "3s" {
		t.Errorf("a replay without --bulk-load changed refresh_interval of %s to %q", other, got)
	}
}
