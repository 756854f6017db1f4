package model

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"90m", 90 * time.Minute, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"7d", 7 * 24 * time.Hour, ""},
		{"1d2h3m4s", 24*time.Hour + 2*time.Hour + 3*time.Minute + 4*time.Second, ""},
		{"0s", 0, ""},
		{"", 0, "empty duration"},
		{"10", 0, "has no unit"},
		{"1.5h", 0, "whole numbers"},
		{"-1h", 0, "expected a number"},
		{"1w", 0, "unknown unit"},
		{"h", 0, "expected a number"},
		{"1h ", 0, "expected a number"},
		{"99999999999999999999d", 0, "too large"},
		{"106752d", 0, "too large"},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseDuration(%q) error = %v, want containing %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestFormatDurationRoundTrip(t *testing.T) {
	for _, d := range []time.Duration{time.Second, 90 * time.Minute, 7 * 24 * time.Hour, 25*time.Hour + time.Second} {
		s := FormatDuration(d)
		back, err := ParseDuration(s)
		if err != nil || back != d {
			t.Errorf("FormatDuration(%v) = %q, parses back to %v, %v", d, s, back, err)
		}
	}
	if got := FormatDuration(90 * time.Minute); got != "1h30m" {
		t.Errorf("FormatDuration(90m) = %q, want 1h30m", got)
	}
}

func TestParseTime(t *testing.T) {
	if got, err := ParseTime("2026-12-01T00:00:00Z"); err != nil || !got.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("ParseTime = %v, %v", got, err)
	}
	for _, bad := range []string{"2026-12-01", "2026-12-01T00:00:00+01:00", "yesterday", ""} {
		if _, err := ParseTime(bad); err == nil {
			t.Errorf("ParseTime(%q) accepted", bad)
		}
	}
}

func TestParsePrincipal(t *testing.T) {
	ok := []string{
		"user:alice@example.com", "group:sre@example.com", "serviceAccount:ci@proj.iam.gserviceaccount.com",
		"aws:arn:aws:iam::123456789012:user/breakglass-alice", "aws:arn:aws:iam::123456789012:root",
		"aws:arn:aws:iam::123456789012:role/admin", "gcp:user:bg-1@example.com", "gcp:serviceAccount:x@p.iam.gserviceaccount.com",
		"gcp:domain:example.com", "azure:user:bg1@contoso.onmicrosoft.com", "azure:object:0f8fad5b-d9cb-469f-a165-70867728950e",
	}
	for _, s := range ok {
		p, err := ParsePrincipal(s)
		if err != nil {
			t.Errorf("ParsePrincipal(%q): %v", s, err)
			continue
		}
		if p.String() != s {
			t.Errorf("round trip %q -> %q", s, p.String())
		}
	}
	bad := map[string]string{
		"alice@example.com":          "no kind prefix",
		"user:alice":                 "not an email",
		"robot:x":                    "unknown kind",
		"aws:123456789012":           "IAM ARN",
		"gcp:alice@example.com":      "GCP IAM member",
		"azure:object:not-a-guid":    "GUID",
		"azure:user:":                "azure:user:UPN",
		"user:":                      "no kind prefix",
		" user:alice@example.com":    "spaces",
		"user:Alice <a@example.com>": "not an email",
	}
	for s, want := range bad {
		_, err := ParsePrincipal(s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePrincipal(%q) error = %v, want containing %q", s, err, want)
		}
	}
}

func TestPrincipalEqualityAndKinds(t *testing.T) {
	a, b := MustPrincipal("user:Alice@Example.com"), MustPrincipal("user:alice@example.com")
	if !a.Equal(b) || a.Key() != b.Key() {
		t.Error("emails must compare case-insensitively")
	}
	r1, r2 := MustPrincipal("aws:arn:aws:iam::123456789012:user/Alice"), MustPrincipal("aws:arn:aws:iam::123456789012:user/alice")
	if r1.Equal(r2) {
		t.Error("AWS ARNs compare exactly")
	}
	if !MustPrincipal("group:sre@example.com").IsGroupLike() || !MustPrincipal("gcp:domain:example.com").IsGroupLike() ||
		!MustPrincipal("user:*@example.com").IsGroupLike() || MustPrincipal("user:a@example.com").IsGroupLike() {
		t.Error("IsGroupLike misclassifies")
	}
	if !MustPrincipal("serviceAccount:ci@example.com").IsServiceAccount() || !MustPrincipal("gcp:serviceAccount:x@example.com").IsServiceAccount() ||
		MustPrincipal("gcp:user:x@example.com").IsServiceAccount() {
		t.Error("IsServiceAccount misclassifies")
	}
	var p Principal
	if err := p.UnmarshalText([]byte("user:bob@example.com")); err != nil || p.String() != "user:bob@example.com" {
		t.Errorf("UnmarshalText: %v %v", p, err)
	}
	if err := p.UnmarshalText([]byte("bob")); err == nil {
		t.Error("UnmarshalText accepted an invalid principal")
	}
}

func TestGrantActiveAt(t *testing.T) {
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	g := &Grant{Status: StatusActive, Starts: start, Expires: start.Add(time.Hour)}
	for _, c := range []struct {
		at   time.Time
		want bool
	}{{start.Add(-time.Second), false}, {start, true}, {start.Add(59 * time.Minute), true}, {start.Add(time.Hour), false}} {
		if got := g.ActiveAt(c.at); got != c.want {
			t.Errorf("ActiveAt(%v) = %v, want %v", c.at, got, c.want)
		}
	}
	g.Status = StatusRevoked
	if g.ActiveAt(start) {
		t.Error("a revoked grant is not active")
	}
}
