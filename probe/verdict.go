package probe

import (
	"fmt"
	"strconv"
	"time"
)

// Limits are what a step must hold. Zero values switch a limit off.
type Limits struct {
	// MaxP99Ratio bounds the new side's p99 latency as a multiple of the
	// old side's p99 in the same step (needs an old side).
	MaxP99Ratio float64
	// RatioFloor: the ratio is not judged while the new side's p99 is at
	// or below it; a few milliseconds against one is noise, not overload.
	RatioFloor time.Duration
	// MaxP99 bounds the new side's p99 latency.
	MaxP99 time.Duration
	// MaxErrorRate bounds the share of the new side's scheduled requests
	// that failed (errors, rejections and unsent requests); negative
	// switches it off, 0 allows no failure at all.
	MaxErrorRate float64
	// MinOverlap is the least mean top-k overlap of the step's answers
	// (needs an old side).
	MinOverlap float64
}

// Breach names one limit a step broke.
type Breach struct {
	// Limit is the limit's name: "max-p99-ratio", "max-p99",
	// "max-error-rate" or "min-overlap".
	Limit string
	// Message says what was measured against which limit.
	Message string
}

// judge returns the limits step breaks, in a fixed order.
func (l Limits) judge(step StepResult) []Breach {
	var out []Breach
	n := step.New
	if l.MaxP99Ratio > 0 && step.Old != nil && n.P99 > l.RatioFloor {
		o := *step.Old
		switch {
		case o.Sent == 0 || o.OK == 0:
			out = append(out, Breach{"max-p99-ratio", "the old side answered no query, so the p99 ratio cannot be checked"})
		case float64(n.P99) > l.MaxP99Ratio*float64(o.P99):
			out = append(out, Breach{"max-p99-ratio", fmt.Sprintf("new p99 %s is %.1f× the old side's %s (limit %g×)",
				Round(n.P99), float64(n.P99)/float64(max(o.P99, time.Microsecond)), Round(o.P99), l.MaxP99Ratio)})
		}
	}
	if l.MaxP99 > 0 && n.P99 > l.MaxP99 {
		out = append(out, Breach{"max-p99", fmt.Sprintf("new p99 %s is above %s", Round(n.P99), l.MaxP99)})
	}
	if l.MaxErrorRate >= 0 && n.ErrorRate() > l.MaxErrorRate {
		out = append(out, Breach{"max-error-rate", fmt.Sprintf("new error rate %s is above %s (%d errors, %d rejected, %d unsent of %d)",
			Percent(n.ErrorRate()), limitPercent(l.MaxErrorRate), n.Errors, n.Rejected, n.Unsent, n.Scheduled)})
	}
	if l.MinOverlap > 0 && step.Old != nil && step.Overlap.Compared > 0 && step.Overlap.Mean() < l.MinOverlap {
		out = append(out, Breach{"min-overlap", fmt.Sprintf("answers overlap %s, below %s (%d of %d differ)",
			Percent(step.Overlap.Mean()), limitPercent(l.MinOverlap), step.Overlap.Differing, step.Overlap.Compared)})
	}
	return out
}

// Round rounds d for display: to 10µs below 10ms, to 100µs below 100ms,
// to the millisecond above.
func Round(d time.Duration) time.Duration {
	switch {
	case d < 10*time.Millisecond:
		return d.Round(10 * time.Microsecond)
	case d < 100*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

// Percent renders a fraction as a percentage with one decimal ("12.5%").
func Percent(f float64) string {
	return fmt.Sprintf("%.1f%%", f*100)
}

// limitPercent renders a limit given as a fraction as a percentage with as
// many decimals as it needs ("0.25%", "1%").
func limitPercent(f float64) string {
	return strconv.FormatFloat(f*100, 'g', 6, 64) + "%"
}
