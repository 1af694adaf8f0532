package throttle

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestWarnPassesOnePerInterval(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	var l Log
	for i := 0; i < 100; i++ {
		l.Warn(log, "retrying")
	}
	if n := strings.Count(buf.String(), "retrying"); n != 1 {
		t.Fatalf("%d lines logged, want 1", n)
	}
}
