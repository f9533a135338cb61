package reports

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FormatDuration renders d with about three significant digits in the largest
// unit that keeps it above 1 (850µs, 12.3ms, 1.25s, 2m3s): tables and failure
// lines stay short and comparable at a glance.
func FormatDuration(d time.Duration) string {
	neg := d < 0
	if neg {
		d = -d
	}
	var s string
	switch {
	case d == 0:
		s = "0s"
	case d < time.Microsecond:
		s = strconv.FormatInt(int64(d), 10) + "ns"
	// Each unit ends where three digits would round up to 1000 of it.
	case d < 999500*time.Nanosecond:
		s = sig3(float64(d)/float64(time.Microsecond)) + "µs"
	case d < 999500*time.Microsecond:
		s = sig3(float64(d)/float64(time.Millisecond)) + "ms"
	case d < time.Minute:
		s = sig3(float64(d)/float64(time.Second)) + "s"
	default:
		s = d.Round(time.Second).String()
	}
	if neg {
		return "-" + s
	}
	return s
}

// sig3 formats v (1 <= v < 1000) with three significant digits and no
// trailing zeros.
func sig3(v float64) string {
	prec := 2
	switch {
	case v >= 100:
		prec = 0
	case v >= 10:
		prec = 1
	}
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// shortID abbreviates a message id for failure lines the way people quote
// them (3EB0…17): long random ids are unreadable in a wall of problems, and
// the full id stays in Problem.Msg for tools.
func shortID(id string) string {
	r := []rune(id)
	if len(r) <= 10 {
		return id
	}
	return string(r[:4]) + "…" + string(r[len(r)-2:])
}

// seconds renders a point on the run's clock ("t=4.20s").
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s"
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
