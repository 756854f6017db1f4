package model

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// ParseDuration parses elevate's duration syntax: one or more
// <integer><unit> pairs with units s, m, h and d ("90m", "1h30m", "7d").
// Unlike time.ParseDuration it accepts days and rejects fractions, signs and
// sub-second units, so policy files mean the same thing everywhere.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("empty duration: write a number and a unit, such as \"30m\", \"1h30m\" or \"7d\"")
	}
	var total time.Duration
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("invalid duration %q: expected a number at %q (units are s, m, h, d; for example \"1h30m\")", s, rest)
		}
		if i == len(rest) {
			return 0, fmt.Errorf("invalid duration %q: %q has no unit (use s, m, h or d)", s, rest)
		}
		var unit time.Duration
		switch rest[i] {
		case '.', ',':
			return 0, fmt.Errorf("invalid duration %q: use whole numbers of each unit (write \"1h30m\", not \"1.5h\")", s)
		case 's':
			unit = time.Second
		case 'm':
			unit = time.Minute
		case 'h':
			unit = time.Hour
		case 'd':
			unit = 24 * time.Hour
		default:
			return 0, fmt.Errorf("invalid duration %q: unknown unit %q (use s, m, h or d)", s, string(rest[i]))
		}
		var n int64
		for _, c := range rest[:i] {
			if n > math.MaxInt64/10 {
				return 0, fmt.Errorf("invalid duration %q: too large", s)
			}
			n = n*10 + int64(c-'0')
		}
		if n > int64(math.MaxInt64/unit) || total > math.MaxInt64-time.Duration(n)*unit {
			return 0, fmt.Errorf("invalid duration %q: too large", s)
		}
		total += time.Duration(n) * unit
		rest = rest[i+1:]
	}
	return total, nil
}

// FormatDuration renders d in the syntax ParseDuration reads, using the
// largest units that divide it exactly ("1h30m", "7d").
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	if d < 0 {
		b.WriteByte('-')
		d = -d
	}
	for _, u := range []struct {
		d time.Duration
		s string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.d; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.s)
			d -= n * u.d
		}
	}
	if d > 0 { // sub-second remainder: not expressible, show it exactly
		fmt.Fprintf(&b, "%s", d)
	}
	return b.String()
}

// ParseTime parses an RFC 3339 time in UTC ("2026-12-01T00:00:00Z").
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid time %q: write RFC 3339 in UTC, such as \"2026-12-01T00:00:00Z\"", s)
	}
	if !strings.HasSuffix(s, "Z") {
		return time.Time{}, fmt.Errorf("invalid time %q: times must be in UTC and end in Z, such as \"2026-12-01T00:00:00Z\"", s)
	}
	return t.UTC(), nil
}
