package osreq

import (
	"errors"
	"strings"
	"testing"
)

func TestParseError(t *testing.T) {
	e := ParseError(404, []byte(`{"error":{"root_cause":[{"type":"snapshot_missing_exception","reason":"[r:x] is missing"}],"type":"snapshot_missing_exception","reason":"[r:x] is missing"},"status":404}`))
	if e.Status != 404 || e.Type != "snapshot_missing_exception" || e.Reason != "[r:x] is missing" {
		t.Errorf("parsed %+v", e)
	}
	if status, typ := Info(errors.Join(errors.New("ctx"), e)); status != 404 || typ != "snapshot_missing_exception" {
		t.Errorf("Info = %d %q", status, typ)
	}
	if !IsNotFound(e) {
		t.Error("a 404 is not found")
	}
	e = ParseError(502, []byte(strings.Repeat("x", 3000)))
	if e.Type != "" || len(e.Body) > MaxErrorBody+3 || !strings.Contains(e.Error(), "HTTP 502") {
		t.Errorf("plain body: %v", e)
	}
	if IsNotFound(e) {
		t.Error("a 502 is not a 404")
	}
}

func TestTruncate(t *testing.T) {
	if got := Truncate([]byte("あいう"), 4); got != "あ..." {
		t.Errorf("Truncate split a UTF-8 sequence: %q", got)
	}
	if got := Truncate([]byte("abc"), 3); got != "abc" {
		t.Errorf("Truncate(abc, 3) = %q", got)
	}
}
