package probe

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxShare is the largest step share ParseSteps accepts (1000 %).
const MaxShare = 10

// ParseSteps reads a comma-separated list of step shares of the full rate,
// each a percentage ("5%", "12.5%"): "5%,10%,30%,100%" is
// [0.05 0.1 0.3 1]. Every share must be above 0 and at most 1000 %.
func ParseSteps(s string) ([]float64, error) {
	var out []float64
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		num, ok := strings.CutSuffix(part, "%")
		if !ok {
			return nil, fmt.Errorf("step %q is not a percentage (e.g. 30%%)", part)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || v <= 0 || v/100 > MaxShare {
			return nil, fmt.Errorf("step %q is not a percentage above 0%% and at most %d%%", part, MaxShare*100)
		}
		out = append(out, v/100)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no steps in %q", s)
	}
	return out, nil
}

// ParseRatio reads a rate limit given as a percentage ("1%", "0.5%") or a
// fraction ("0.01") and returns the fraction, which must lie in [0, 1].
func ParseRatio(s string) (float64, error) {
	t := strings.TrimSpace(s)
	div := 1.0
	if num, ok := strings.CutSuffix(t, "%"); ok {
		t, div = strings.TrimSpace(num), 100
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a percentage (1%%) or a fraction (0.01)", s)
	}
	v /= div
	if v < 0 || v > 1 {
		return 0, fmt.Errorf("%q is not between 0%% and 100%%", s)
	}
	return v, nil
}
