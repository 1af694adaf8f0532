// Package throttle rate-limits log lines that a failure repeats many times a
// second (retries, fetch errors), so a storm does not flood the log; the
// metrics still count every occurrence.
package throttle

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// Every is how often a Log lets a line through.
const Every = 5 * time.Second

// Log passes at most one warning per Every. The zero value is ready to use
// and safe for concurrent use.
type Log struct {
	last atomic.Int64
}

// Warn logs msg on log unless another warning passed less than Every ago.
func (l *Log) Warn(log *slog.Logger, msg string, args ...any) {
	now := time.Now().UnixNano()
	last := l.last.Load()
	if now-last < int64(Every) || !l.last.CompareAndSwap(last, now) {
		return
	}
	log.Warn(msg, args...)
}
