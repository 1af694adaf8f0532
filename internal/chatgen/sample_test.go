package chatgen

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/chat-events.jsonl from the generator")

const samplePath = "../../testdata/chat-events.jsonl"

// TestSampleFileReproducible checks that the committed sample equals the
// generator's output byte for byte. Run with -update to rewrite it.
func TestSampleFileReproducible(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSONL(&buf, Sample()); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(filepath.FromSlash(samplePath), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", samplePath, buf.Len())
	}
	got, err := os.ReadFile(filepath.FromSlash(samplePath))
	if err != nil {
		t.Fatalf("read sample (regenerate with: go test ./internal/chatgen -run TestSampleFileReproducible -update): %v", err)
	}
	if !bytes.Equal(got, buf.Bytes()) {
		gl, wl := bytes.Split(got, []byte("\n")), bytes.Split(buf.Bytes(), []byte("\n"))
		for i := 0; i < len(gl) && i < len(wl); i++ {
			if !bytes.Equal(gl[i], wl[i]) {
				t.Fatalf("%s differs from the generator at line %d:\nfile:      %s\ngenerator: %s\n(regenerate with -update if the change is intended)", samplePath, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("%s has %d lines, the generator %d (regenerate with -update if intended)", samplePath, len(gl), len(wl))
	}
}

// TestSampleCoverage checks that the sample shows every case it is for.
func TestSampleCoverage(t *testing.T) {
	evs := Sample()
	kinds := map[Kind]int{}
	rooms, senders, langs := map[string]bool{}, map[string]bool{}, map[string]bool{}
	lastOp := map[string]string{}
	lateAfterDelete, multiLine := 0, 0
	for _, e := range evs {
		kinds[e.Kind]++
		if e.Kind == KindLate && lastOp[e.ID] == OpDelete {
			lateAfterDelete++
		}
		if e.Kind != KindLate && e.Kind != KindDuplicate {
			lastOp[e.ID] = e.Op
		}
		if e.Op != OpUpsert {
			continue
		}
		var d chatDoc
		if err := json.Unmarshal(e.Doc, &d); err != nil {
			t.Fatal(err)
		}
		rooms[*d.RoomID], senders[*d.SenderID], langs[*d.Lang] = true, true, true
		if bytes.Contains(e.Doc, []byte(`\n`)) {
			multiLine++
		}
	}
	t.Logf("kinds %v, rooms %d, senders %d, late after delete %d, multi-line %d", kinds, len(rooms), len(senders), lateAfterDelete, multiLine)
	for k := KindCreate; k <= KindLate; k++ {
		if kinds[k] == 0 {
			t.Errorf("sample has no %v event", k)
		}
	}
	if len(rooms) < 3 || len(senders) < 5 || !langs["ja"] || !langs["en"] || multiLine == 0 {
		t.Errorf("sample lacks variety: rooms %d, senders %d, langs %v, multi-line %d", len(rooms), len(senders), langs, multiLine)
	}
	if lateAfterDelete == 0 {
		t.Error("sample has no older upsert arriving after a delete")
	}
}
