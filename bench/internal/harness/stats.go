package harness

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Summary is the median and range of a set of durations.
type Summary struct {
	N                int
	Median, Min, Max time.Duration
}

// Summarize computes a Summary; the median of an even count is the mean of the middle two.
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Summary{N: len(s), Median: m, Min: s[0], Max: s[len(s)-1]}
}

// Secs formats a duration as seconds with millisecond precision.
func Secs(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// Ms formats a duration as whole milliseconds.
func Ms(d time.Duration) string { return fmt.Sprintf("%d", d.Round(time.Millisecond).Milliseconds()) }

// Table prints rows as aligned columns; the first row is the header.
func Table(rows [][]string) string {
	width := map[int]int{}
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	var b strings.Builder
	for k, r := range rows {
		for i, c := range r {
			if i > 0 {
				b.WriteString("  ")
			}
			if i == len(r)-1 {
				b.WriteString(c)
			} else {
				fmt.Fprintf(&b, "%-*s", width[i], c)
			}
		}
		b.WriteString("\n")
		if k == 0 {
			for i := range r {
				if i > 0 {
					b.WriteString("  ")
				}
				b.WriteString(strings.Repeat("-", width[i]))
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// Ratio formats a/b with a verdict against goal (a/b must be <= goal), or explains why
// there is no ratio.
func Ratio(a, b Summary, goal float64) (ratio, verdict string) {
	if a.N == 0 || b.N == 0 || b.Median == 0 {
		return "n/a", "not measured"
	}
	r := a.Median.Seconds() / b.Median.Seconds()
	v := "MET"
	if r > goal {
		v = "NOT MET"
	}
	return fmt.Sprintf("%.2fx", r), v
}

// Latencies are the p50, p99 and maximum of a set of durations (zero when empty); the
// pth percentile is the value at index n*p/100 of the sorted set.
type Latencies struct{ P50, P99, Max time.Duration }

// LatenciesOf sorts ds in place and reads its percentiles.
func LatenciesOf(ds []time.Duration) Latencies {
	if len(ds) == 0 {
		return Latencies{}
	}
	slices.Sort(ds)
	return Latencies{ds[len(ds)/2], ds[len(ds)*99/100], ds[len(ds)-1]}
}

// Millis formats a duration as milliseconds with two decimals.
func Millis(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }
