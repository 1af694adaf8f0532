//go:build integration

package indexer_test

import (
	"strings"
	"testing"
	"time"

	"github.com/reindexer/reindexer/indexer"
	"github.com/reindexer/reindexer/internal/itest"
)

// TestClusterCompat checks, on whatever OpenSearch the stack runs (2.x in
// make test, 3.x and 2.x in make test-compat), the cluster facts the
// reindexer reads in indexer/admin.go: the version, and index.gc_deletes
// explicit, defaulted, through an alias, and for a missing index.
func TestClusterCompat(t *testing.T) {
	env := itest.Services(t)
	cl := itest.OpenSearch(t, env)
	ctx := t.Context()
	c, err := indexer.ClusterInfo(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if ok, why := c.Supported(); !ok || c.Version != env.OpenSearchVersion || !strings.HasPrefix(c.Version, string(rune('0'+c.Major))+".") {
		t.Fatalf("cluster %+v (supported %v %s), stack says %s", c, ok, why, env.OpenSearchVersion)
	}

	explicit := itest.Name(t, "gc")
	itest.CreateIndex(t, env, explicit, `{"settings":{"number_of_shards":1,"number_of_replicas":0,"index.gc_deletes":"1500ms"},
		"aliases":{"`+explicit+`-alias":{}}}`)
	plain := itest.Name(t, "plain")
	itest.CreateIndex(t, env, plain, `{"settings":{"number_of_shards":1,"number_of_replicas":0}}`)
	for _, c := range []struct {
		index  string
		exists bool
		gc     time.Duration
	}{
		{explicit, true, 1500 * time.Millisecond},
		{explicit + "-alias", true, 1500 * time.Millisecond},
		{plain, true, indexer.DefaultGCDeletes},
		{plain + "-missing", false, 0},
	} {
		s, err := indexer.ReadIndexSettings(ctx, cl, c.index)
		if err != nil {
			t.Fatalf("%s: %v", c.index, err)
		}
		if s.Exists != c.exists || (c.exists && s.GCDeletes != c.gc) {
			t.Errorf("%s: %+v, want exists=%v gc_deletes=%s", c.index, s, c.exists, c.gc)
		}
	}
}
