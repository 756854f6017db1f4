package breakglass

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/state"
)

func TestCheck(t *testing.T) {
	set := loadSet(t, detectorPolicies)
	now := t0.Add(48 * time.Hour)
	trail := SourceInfo{Name: "trail", Type: "file", Format: "cloudtrail", Cloud: model.CloudAWS, Poll: time.Second}
	gcpLogs := SourceInfo{Name: "gcp-logs", Type: "file", Format: "gcp-audit", Cloud: model.CloudGCP, Poll: time.Second}
	fresh := func(name string) state.SourceStatus {
		return state.SourceStatus{Name: name, LastPoll: now.Add(-time.Second), CaughtUp: now.Add(-time.Second)}
	}
	env := map[string]string{"PAGER_URL": "https://hooks.example.com/x", "PAGER_SECRET": "s", "SLACK_URL": "https://hooks.slack.com/services/x"}
	getenv := func(k string) string { return env[k] }

	// Everything in order.
	r := Check(CheckInput{Now: now, Set: set, Sources: []SourceInfo{trail, gcpLogs}, Status: []state.SourceStatus{fresh("trail"), fresh("gcp-logs")}, Getenv: getenv})
	if !r.Ready || len(r.Problems) != 0 || len(r.Accounts) != 3 || len(r.Notifiers) != 2 || len(r.Uses) != 1 {
		t.Fatalf("healthy setup: %+v", r)
	}
	for _, a := range r.Accounts {
		if !a.Covered || len(a.Healthy) != 1 {
			t.Errorf("account %+v", a)
		}
	}
	if r.Sources[0].Lag != time.Second || !r.Sources[0].Healthy {
		t.Fatalf("source check %+v", r.Sources[0])
	}

	// Each problem on its own.
	lagging := fresh("gcp-logs")
	lagging.CaughtUp = now.Add(-2 * time.Minute)
	failing := fresh("trail")
	failing.Error = "directory /logs does not exist"
	overdue := state.Incident{ID: "inc-1", Policy: "idp-outage", Account: "aws:arn:aws:iam::123456789012:user/breakglass-alice",
		Status: state.IncidentOpen, Successes: 1, FirstEvent: now.Add(-30 * time.Hour), ReviewDue: now.Add(-time.Hour)}
	use := func(id string, at time.Time) state.Incident {
		return state.Incident{ID: id, Policy: "idp-outage", Status: state.IncidentReviewed, Successes: 1, FirstEvent: at, ReviewDue: at.Add(24 * time.Hour)}
	}
	cases := []struct {
		name string
		in   CheckInput
		want string
	}{
		{"no source for a cloud", CheckInput{Sources: []SourceInfo{trail}, Status: []state.SourceStatus{fresh("trail")}},
			"account gcp:user:breakglass-1@example.com of idp-outage is not watched: no audit source reads gcp logs (add an audit_source with format gcp-audit)"},
		{"a lagging source", CheckInput{Sources: []SourceInfo{trail, gcpLogs}, Status: []state.SourceStatus{fresh("trail"), lagging}},
			"audit source gcp-logs is 2m0s behind"},
		{"a failing source", CheckInput{Sources: []SourceInfo{trail, gcpLogs}, Status: []state.SourceStatus{failing, fresh("gcp-logs")}},
			"audit source trail fails: directory /logs does not exist"},
		{"a source never read", CheckInput{Sources: []SourceInfo{trail, gcpLogs}, Status: []state.SourceStatus{fresh("trail")}},
			"audit source gcp-logs has never been read"},
		{"an overdue review", CheckInput{Sources: []SourceInfo{trail, gcpLogs}, Status: []state.SourceStatus{fresh("trail"), fresh("gcp-logs")},
			Incidents: []state.Incident{overdue}}, "the review of incident inc-1"},
		{"too many uses", CheckInput{Sources: []SourceInfo{trail, gcpLogs}, Status: []state.SourceStatus{fresh("trail"), fresh("gcp-logs")},
			Incidents: []state.Incident{use("u1", now.Add(-20*24*time.Hour)), use("u2", now.Add(-10*24*time.Hour)), use("u3", now.Add(-time.Hour)), use("old", now.Add(-40*24*time.Hour))}},
			"break-glass policy idp-outage was used 3 times in the last 30d, more than its max_uses of 2"},
		{"a stuck alert", CheckInput{Sources: []SourceInfo{trail, gcpLogs}, Status: []state.SourceStatus{fresh("trail"), fresh("gcp-logs")},
			Alerts: []state.Alert{{Key: "incident-opened/inc-1", Notifier: "pager", Status: state.AlertPending, Attempts: 3, LastError: `notifier "pager" answered 404 Not Found`}}},
			`alert incident-opened/inc-1 is not delivered to notifier pager yet (3 failed attempts)`},
		{"a notifier without its URL", CheckInput{Sources: []SourceInfo{trail, gcpLogs}, Status: []state.SourceStatus{fresh("trail"), fresh("gcp-logs")},
			Getenv: func(k string) string {
				if k == "SLACK_URL" {
					return ""
				}
				return env[k]
			}}, `notifier "sec-slack": environment variable SLACK_URL is not set`},
	}
	for _, c := range cases {
		c.in.Now, c.in.Set = now, set
		r := Check(c.in)
		if r.Ready || !slices.ContainsFunc(r.Problems, func(p string) bool { return strings.Contains(p, c.want) }) {
			t.Errorf("%s: ready %v, problems %q; want one containing %q", c.name, r.Ready, r.Problems, c.want)
		}
	}

	// An account no audit log can name.
	odd := loadSet(t, `
notifier "pager" {
  type    = "webhook"
  url_env = "PAGER_URL"
}
break_glass "odd" {
  description       = "x"
  reasons           = ["x"]
  accounts          = ["aws:arn:aws:iam::123456789012:group/admins"]
  session_recording = true
  review_within     = "24h"
  notify            = ["pager"]
}`)
	r = Check(CheckInput{Now: now, Set: odd, Sources: []SourceInfo{trail}, Status: []state.SourceStatus{fresh("trail")}})
	if r.Ready || len(r.Accounts) != 1 || !strings.Contains(r.Accounts[0].Problem, "cannot be watched") {
		t.Fatalf("unwatchable account: %+v", r.Accounts)
	}
}

func TestReport(t *testing.T) {
	set := loadSet(t, detectorPolicies)
	since := t0.Add(-30 * 24 * time.Hour)
	alice := model.MustPrincipal("user:alice@example.com")
	bob := model.MustPrincipal("user:bob@example.com")
	var grants []model.Grant
	add := func(p model.Principal, role string, at time.Time, renewals int, status model.GrantStatus) {
		grants = append(grants, model.Grant{ID: "g" + at.Format("0102150405") + role, Principal: p, Role: role, RequestedAt: at,
			Renewals: renewals, Status: status, Duration: time.Hour})
	}
	// Bob asks for prod-readonly six times over four days (and once
	// before the period, which does not count).
	for i, d := range []int{1, 1, 2, 3, 4, 4} {
		add(bob, "prod-readonly", since.Add(time.Duration(d)*24*time.Hour+time.Duration(i)*time.Minute), 0, model.StatusExpired)
	}
	add(bob, "prod-readonly", since.Add(-time.Hour), 0, model.StatusExpired)
	// Alice renews db-admin: 2 + 1 renewals.
	add(alice, "db-admin", since.Add(5*24*time.Hour), 2, model.StatusExpired)
	add(alice, "db-admin", since.Add(6*24*time.Hour), 1, model.StatusExpired)
	// Alice asks for db-read twice: no pattern.
	add(alice, "db-read", since.Add(7*24*time.Hour), 0, model.StatusExpired)
	add(alice, "db-read", since.Add(8*24*time.Hour), 0, model.StatusDenied)

	inc := func(id string, at time.Time, successes int, decl string) state.Incident {
		return state.Incident{ID: id, Policy: "idp-outage", FirstEvent: at, LastEvent: at, Successes: successes, Failures: 1 - min(successes, 1), Declaration: decl}
	}
	incidents := []state.Incident{
		inc("i1", since.Add(2*24*time.Hour), 1, ""),
		inc("i2", since.Add(9*24*time.Hour), 1, "dcl-1"),
		inc("i3", since.Add(20*24*time.Hour), 2, ""),
		inc("i4", since.Add(21*24*time.Hour), 0, ""),
		inc("old", since.Add(-48*time.Hour), 1, ""),
	}
	r := BuildReport(ReportInput{Since: since, Now: t0, Set: set, Grants: grants, Incidents: incidents})
	if r.Requests != 10 {
		t.Fatalf("%d requests in the period, want 10", r.Requests)
	}
	if len(r.RepeatRequests) != 1 || r.RepeatRequests[0].Principal != "user:bob@example.com" || r.RepeatRequests[0].Requests != 6 || r.RepeatRequests[0].Days != 4 {
		t.Fatalf("repeat requests %+v", r.RepeatRequests)
	}
	if len(r.Renewals) != 1 || r.Renewals[0].Renewals != 3 || r.Renewals[0].Grants != 2 || r.Renewals[0].MostPerGrant != 2 {
		t.Fatalf("renewals %+v", r.Renewals)
	}
	var bg BreakGlassUse
	for _, u := range r.BreakGlass {
		if u.Policy == "idp-outage" {
			bg = u
		}
	}
	if bg.Incidents != 4 || bg.Uses != 3 || bg.Undeclared != 3 || bg.FailedOnly != 1 || bg.MaxUses != 2 {
		t.Fatalf("break-glass use %+v", bg)
	}
	var kinds []string
	for _, f := range r.Findings {
		kinds = append(kinds, f.Kind)
	}
	if !slices.Equal(kinds, []string{"repeated-renewals", "repeated-requests", "breakglass-frequency"}) {
		t.Fatalf("findings %+v", r.Findings)
	}
	if !strings.Contains(r.Findings[2].Message, "idp-outage was used 3 times in 30d (max_uses 2 per 30d), 3 of 4 incidents undeclared") {
		t.Fatalf("break-glass finding %q", r.Findings[2].Message)
	}
	// Nothing to say about a quiet period.
	quiet := BuildReport(ReportInput{Since: t0, Now: t0.Add(time.Hour), Set: set})
	if len(quiet.Findings) != 0 || quiet.Requests != 0 {
		t.Fatalf("quiet report %+v", quiet)
	}
}
