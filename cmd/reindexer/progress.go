// Replay progress: a bar on a terminal, log lines otherwise.

package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/reindexer/reindexer/consumer"
)

// reporter shows replay progress: a bar on a terminal, log lines otherwise.
type reporter struct {
	w       io.Writer
	mode    string
	log     interface{ Info(string, ...any) }
	lastLog time.Time
	drawn   bool
	// throttle, if set, reports the adaptive concurrency limit and the
	// reason of its last decrease (--target-latency), shown with progress.
	throttle func() (float64, string)
	// guardRate, if set, reports the documents per second the guard
	// allows (--guard-query), shown with progress.
	guardRate func() float64
}

func newReporter(w io.Writer, mode string, log interface{ Info(string, ...any) }) *reporter {
	if mode == "auto" {
		mode = "log"
		if f, ok := unwrapWriter(w).(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				mode = "bar"
			}
		}
	}
	return &reporter{w: w, mode: mode, log: log}
}

func (r *reporter) update(p consumer.Progress) {
	rate := 0.0
	if p.Elapsed > 0 {
		rate = float64(p.Done) / p.Elapsed.Seconds()
	}
	eta := "?"
	if rate > 0 {
		eta = (time.Duration(float64(p.Total-p.Done)/rate) * time.Second).Round(time.Second).String()
	}
	pct := 100.0
	if p.Total > 0 {
		pct = 100 * float64(p.Done) / float64(p.Total)
	}
	limit, why := "", ""
	if r.throttle != nil {
		l, reason := r.throttle()
		limit, why = strconv.FormatFloat(l, 'f', 1, 64), reason
		if why == "" {
			why = "none"
		}
	}
	switch r.mode {
	case "bar":
		const width = 30
		filled := int(pct / 100 * width)
		extra := ""
		if limit != "" {
			extra = fmt.Sprintf("  limit %s (last cut: %s)", limit, why)
		}
		if r.guardRate != nil {
			extra += fmt.Sprintf("  guard %.0f docs/s", r.guardRate())
		}
		fmt.Fprintf(r.w, "\r[%s%s] %5.1f%% %d/%d  %.0f rec/s  ETA %s%s   ",
			strings.Repeat("=", filled), strings.Repeat(" ", width-filled), pct, p.Done, p.Total, rate, eta, extra)
		r.drawn = true
	case "log":
		if time.Since(r.lastLog) >= 5*time.Second {
			r.lastLog = time.Now()
			args := []any{"done", p.Done, "total", p.Total, "percent", fmt.Sprintf("%.1f", pct),
				"rate", fmt.Sprintf("%.0f/s", rate), "eta", eta, "partitions_left", p.Partitions}
			if limit != "" {
				args = append(args, "throttle_limit", limit, "throttle_last_cut", why)
			}
			if r.guardRate != nil {
				args = append(args, "guard_rate", fmt.Sprintf("%.0f/s", r.guardRate()))
			}
			r.log.Info("replay progress", args...)
		}
	}
}

func (r *reporter) finish() {
	if r.drawn {
		fmt.Fprintln(r.w)
	}
}
