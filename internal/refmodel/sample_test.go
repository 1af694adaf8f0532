package refmodel_test

import (
	"os"
	"testing"

	"github.com/reindexer/reindexer/internal/chatgen"
	"github.com/reindexer/reindexer/internal/refmodel"
)

// TestSampleFile checks the model on testdata/chat-events.jsonl against a
// second, differently written computation: the last event of each id in
// version order.
func TestSampleFile(t *testing.T) {
	f, err := os.Open("../../testdata/chat-events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	evs, err := chatgen.ReadJSONL(f)
	if err != nil {
		t.Fatal(err)
	}
	newest := map[string]chatgen.Event{}
	for _, e := range evs {
		if cur, ok := newest[e.ID]; !ok || e.Version > cur.Version {
			newest[e.ID] = e
		}
	}
	for _, mode := range []refmodel.DeleteMode{refmodel.ModeDelete, refmodel.ModeTombstone} {
		m, err := refmodel.New(mode)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if err := m.Apply(e.ID, e.Op, e.Version, e.Doc); err != nil {
				t.Fatal(err)
			}
		}
		got := m.Expected()
		want := 0
		for id, e := range newest {
			d, ok := got[id]
			switch {
			case e.Op == chatgen.OpDelete && mode == refmodel.ModeDelete:
				if ok {
					t.Errorf("%s: %s deleted at %d but expected present: %+v", mode, id, e.Version, d)
				}
				continue
			case !ok:
				t.Errorf("%s: %s missing", mode, id)
			case d.Version != e.Version || d.Tombstone != (e.Op == chatgen.OpDelete):
				t.Errorf("%s: %s: got version %d tombstone %v, want %d %s", mode, id, d.Version, d.Tombstone, e.Version, e.Op)
			case e.Op == chatgen.OpUpsert && string(d.Source) != string(e.Doc):
				t.Errorf("%s: %s: source differs", mode, id)
			}
			want++
		}
		if len(got) != want {
			t.Errorf("%s: %d documents expected, model has %d", mode, want, len(got))
		}
		t.Logf("%s mode: %d events, %d ids, %d documents expected, %d live", mode, len(evs), len(newest), len(got), m.Live())
	}
}
