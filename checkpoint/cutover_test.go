package checkpoint

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestCutoverRecordRoundTrip(t *testing.T) {
	yes := true
	c := Cutover{Alias: "messages", From: "messages-v1", To: "messages-v2",
		Settings: AliasSettings{Filter: json.RawMessage(`{"term":{"lang":"ja"}}`), IndexRouting: "1", SearchRouting: "1,2", IsWriteIndex: &yes},
		Parity:   "count: 10 = 10", Time: time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC), Host: "h", PID: 7}
	src, err := json.Marshal(cutoverDoc{Kind: kindCutover, Index: c.Alias, Time: formatTime(c.Time), Cutover: c})
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeCutover(src, "messages")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(c)
	if string(a) != string(b) {
		t.Fatalf("round trip:\n got %s\nwant %s", a, b)
	}
	if _, err := decodeCutover(src, "other"); err == nil || !strings.Contains(err.Error(), `of alias "messages"`) {
		t.Fatalf("another alias's record accepted: %v", err)
	}
	if _, err := decodeCutover(json.RawMessage(`{"kind":"plan","index":"messages"}`), "messages"); err == nil {
		t.Fatal("a plan document accepted as a cutover record")
	}
	if cutoverID("a") == cutoverID("b") || !strings.HasPrefix(cutoverID("a"), "cutover-") {
		t.Fatalf("ids %s, %s", cutoverID("a"), cutoverID("b"))
	}
}
