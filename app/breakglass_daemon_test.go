package app

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/elevatehq/elevate/breakglass"
	"github.com/elevatehq/elevate/policies"
)

func TestAuditSourceConfig(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "elevate.hcl")
	write := func(src string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := envMap(map[string]string{"ELEVATE_STATIC_TOKENS": "dev=user:dev@example.com:" + hashA})
	write(`
audit_source "aws-trail" {
  type   = "file"
  path   = "audit/aws"
  format = "cloudtrail"
}
audit_source "entra" {
  type   = "file"
  path   = "/srv/audit/entra"
  format = "azure-signin"
  poll   = "5s"
}
`)
	cfg, err := LoadConfig(p, env)
	if err != nil {
		t.Fatal(err)
	}
	want := []AuditSourceConfig{
		{Name: "aws-trail", Type: "file", Path: filepath.Join(dir, "audit/aws"), Format: "cloudtrail"},
		{Name: "entra", Type: "file", Path: "/srv/audit/entra", Format: "azure-signin", Poll: 5 * time.Second},
	}
	if d := cmp.Diff(want, cfg.AuditSources); d != "" {
		t.Fatalf("audit sources (-want +got):\n%s", d)
	}

	bad := []struct{ src, want string }{
		{`audit_source "x" {
  type   = "sqs"
  path   = "/a"
  format = "cloudtrail"
}`, `use "file"`},
		{`audit_source "x" {
  type   = "file"
  path   = "/a"
  format = "syslog"
}`, "use one of cloudtrail, gcp-audit, azure-activity, azure-signin"},
		{`audit_source "x" {
  type   = "file"
  format = "cloudtrail"
}`, `The argument "path" is required`},
		{`audit_source "x" {
  type   = "file"
  path   = "/a"
  format = "cloudtrail"
  poll   = "0s"
}`, "must be more than zero"},
		{`audit_source "x" {
  type   = "file"
  path   = "/a"
  format = "cloudtrail"
}
audit_source "x" {
  type   = "file"
  path   = "/b"
  format = "gcp-audit"
}`, `Another audit_source is named "x"`},
	}
	for _, c := range bad {
		write(c.src)
		_, err := LoadConfig(p, env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config %s\nerror %v, want %q", c.src, err, c.want)
		}
	}
	for _, c := range []struct{ env, want string }{
		{"x=cloudtrail", "write NAME=FORMAT:PATH"},
		{"x=syslog:/a", "unknown format"},
		{"x=cloudtrail:/a;every=1s", "unknown option"},
		{"x=cloudtrail:/a;poll=10ms", "invalid duration"},
		{"x=cloudtrail:/a,x=gcp-audit:/b", `two audit sources are named "x"`},
	} {
		if _, err := ParseAuditSourcesEnv(c.env); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ELEVATE_AUDIT_SOURCES=%s: error %v, want %q", c.env, err, c.want)
		}
	}
}

// TestDevSampleSignIns checks that the sample sign-in elevate dev offers
// for each kind of account is a record its dev source reads as a use of
// that account.
func TestDevSampleSignIns(t *testing.T) {
	for _, account := range []string{
		"aws:arn:aws:iam::998877665544:user/breakglass-1",
		"aws:arn:aws:iam::998877665544:root",
		"gcp:user:breakglass-1@acme.example",
		"azure:user:breakglass1@acmecorp.onmicrosoft.com",
	} {
		dir := t.TempDir()
		src := `
notifier "n" {
  type    = "webhook"
  url_env = "N_URL"
}
break_glass "bg" {
  description       = "x"
  reasons           = ["x"]
  accounts          = ["` + account + `"]
  session_recording = true
  review_within     = "24h"
  notify            = ["n"]
}`
		if err := os.WriteFile(filepath.Join(dir, "p.hcl"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		set, diags := policies.Load(dir)
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		rec, format, got, ok := sampleSignIn(set, time.Now())
		if !ok || got != account {
			t.Fatalf("%s: no sample (%v, %q)", account, ok, got)
		}
		sc := &breakglass.Scanner{Source: format, Matcher: breakglass.NewMatcher(set)}
		res, err := sc.Scan(bytes.NewReader([]byte(rec)), "sample")
		if err != nil || res.Malformed != 0 || len(res.Detections) != 1 || res.Detections[0].Account.Principal.String() != account ||
			res.Detections[0].Event.Outcome != breakglass.OutcomeSuccess {
			t.Fatalf("%s: the %s sample %s scans as %+v (%v)", account, format, rec, res, err)
		}
	}
}
