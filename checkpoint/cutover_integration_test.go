//go:build integration

package checkpoint

import (
	"testing"
	"time"

	"github.com/reindexer/reindexer/internal/itest"
)

// TestCutoverStore: a cutover record is readable right after it is saved,
// the next one of the same alias replaces it, other aliases and a missing
// checkpoint index have none.
func TestCutoverStore(t *testing.T) {
	env := itest.Services(t)
	cl := itest.OpenSearch(t, env)
	index := itest.Name(t, "cutover-ckpt")
	itest.CleanupIndex(t, env, index)
	store := NewStore(cl, index)
	ctx := t.Context()
	if _, ok, err := store.LoadCutover(ctx, "messages"); err != nil || ok {
		t.Fatalf("missing checkpoint index: ok %v, err %v; want none", ok, err)
	}
	first := Cutover{Alias: "messages", From: "v1", To: "v2", Settings: AliasSettings{SearchRouting: "r1"}, Time: time.Now()}
	if err := store.SaveCutover(ctx, first); err != nil {
		t.Fatal(err)
	}
	got, ok, err := store.LoadCutover(ctx, "messages")
	if err != nil || !ok || got.From != "v1" || got.To != "v2" || got.Settings.SearchRouting != "r1" || got.RolledBack != nil {
		t.Fatalf("load: %+v, %v, %v", got, ok, err)
	}
	now := time.Now().UTC()
	got.RolledBack = &now
	if err := store.SaveCutover(ctx, got); err != nil {
		t.Fatal(err)
	}
	again, ok, err := store.LoadCutover(ctx, "messages")
	if err != nil || !ok || again.RolledBack == nil || !again.RolledBack.Equal(now) {
		t.Fatalf("after rollback: %+v, %v, %v", again, ok, err)
	}
	if _, ok, err := store.LoadCutover(ctx, "other"); err != nil || ok {
		t.Fatalf("other alias: ok %v, err %v; want none", ok, err)
	}
	if err := store.SaveCutover(ctx, Cutover{Alias: "x"}); err == nil {
		t.Fatal("a record without from and to was saved")
	}
}
