package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/elevatehq/elevate/state"
)

// openIncident stores an open, undeclared incident of the test policies'
// break-glass account, as the watcher would.
func (e *env) openIncident() state.Incident {
	e.t.Helper()
	now := e.clock.Now()
	inc, err := e.store.CreateIncident(e.t.Context(), state.Incident{
		Policy: "idp-outage", Account: "gcp:user:breakglass-1@example.com", Cloud: "gcp",
		Severity: state.SeverityCritical, Status: state.IncidentOpen, Opened: now, FirstEvent: now.Add(-time.Minute),
		LastEvent: now.Add(-time.Minute), ReviewDue: now.Add(24 * time.Hour), EventCount: 1, Successes: 1,
		Events: []state.IncidentEvent{{Key: "gcp:ins-1", ID: "ins-1", Name: "SetIamPolicy", Time: now.Add(-time.Minute), Outcome: "success",
			SourceIP: "198.51.100.4", Source: "gcp-sink", Where: "logs/a.json: record 3 (line 3, byte 812)"}},
	}, state.Change{Actor: "elevate:breakglass", Action: "open"}, []state.Alert{{Key: "incident-opened/x", Notifier: "security-pager",
		Kind: "incident-opened", Payload: []byte(`{"kind":"incident-opened"}`)}})
	if err != nil {
		e.t.Fatal(err)
	}
	return inc
}

func TestIncidentEndpoints(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t, b)
			inc := e.openIncident()

			r := e.call("GET", "/v1/incidents?open=true", admin, nil)
			var list IncidentList
			r.decode(t, &list)
			if r.status != 200 || len(list.Incidents) != 1 || list.Incidents[0].ID != inc.ID || list.Incidents[0].Events != nil ||
				list.Incidents[0].Severity != "critical" || list.Incidents[0].Declared || list.Incidents[0].Overdue {
				t.Fatalf("GET /v1/incidents?open=true = %d %s", r.status, r.body)
			}
			r = e.call("GET", "/v1/incidents/"+inc.ID, admin, nil)
			var detail IncidentDetail
			r.decode(t, &detail)
			if r.status != 200 || len(detail.Incident.Events) != 1 || detail.Incident.Events[0].Where == "" || len(detail.Alerts) != 1 ||
				detail.Alerts[0].Status != "pending" || detail.Alerts[0].NextAttempt == "" {
				t.Fatalf("GET /v1/incidents/{id} = %d %s", r.status, r.body)
			}
			if r := e.call("GET", "/v1/incidents/nope", admin, nil); r.status != 404 || r.errCode() != "not-found" {
				t.Fatalf("unknown incident: %d %s", r.status, r.body)
			}

			// The deadline passes: the incident shows as overdue, and the
			// check says so.
			e.clock.Advance(25 * time.Hour)
			r = e.call("GET", "/v1/incidents/"+inc.ID, admin, nil)
			r.decode(t, &detail)
			if !detail.Incident.Overdue {
				t.Fatalf("incident past its deadline is not overdue: %s", r.body)
			}
			r = e.call("GET", "/v1/breakglass/check", admin, nil)
			var check CheckView
			r.decode(t, &check)
			if r.status != 200 || check.Ready || len(check.OverdueReviews) != 1 || check.OverdueReviews[0].Incident != inc.ID ||
				len(check.Accounts) != 1 || check.Accounts[0].Covered {
				t.Fatalf("check = %d %s", r.status, r.body)
			}

			// Review: notes required; filed once.
			if r := e.call("POST", "/v1/incidents/"+inc.ID+"/review", admin, map[string]any{"notes": "  "}); r.status != 400 {
				t.Fatalf("review without notes: %d %s", r.status, r.body)
			}
			r = e.call("POST", "/v1/incidents/"+inc.ID+"/review", admin, map[string]any{"notes": "IdP outage INC-9; credentials rotated"})
			var reviewed IncidentView
			r.decode(t, &reviewed)
			if r.status != 200 || reviewed.Status != "reviewed" || reviewed.Review == nil || reviewed.Review.By != principalOf[admin] || reviewed.Overdue {
				t.Fatalf("review = %d %s", r.status, r.body)
			}
			if r := e.call("POST", "/v1/incidents/"+inc.ID+"/review", admin, map[string]any{"notes": "again"}); r.status != 409 || r.errCode() != "already-reviewed" {
				t.Fatalf("second review: %d %s", r.status, r.body)
			}
			if r := e.call("POST", "/v1/incidents/"+inc.ID+"/review", admin, map[string]any{"notes": "x", "severity": "low"}); r.status != 400 || r.errCode() != "unknown-field" {
				t.Fatalf("review with an unknown field: %d %s", r.status, r.body)
			}
			r = e.call("GET", "/v1/incidents?open=true", admin, nil)
			r.decode(t, &list)
			if len(list.Incidents) != 0 {
				t.Fatalf("reviewed incident still listed as open: %s", r.body)
			}
			hist, _ := e.store.ListAudit(t.Context(), state.AuditFilter{Subject: "incident/" + inc.ID})
			if len(hist) != 2 || hist[1].Actor != principalOf[admin] || hist[1].Action != "incident.review" {
				t.Fatalf("audit entries %+v", hist)
			}
		})
	}
}

func TestDeclarationEndpoints(t *testing.T) {
	e := newEnv(t, sqliteBackend)
	r := e.call("POST", "/v1/declarations", requester, map[string]any{"policy": "idp-outage", "reason": "identity-provider-outage", "incident": "INC-9"})
	var d DeclarationView
	r.decode(t, &d)
	now := e.clock.Now()
	if r.status != 201 || d.DeclaredBy != principalOf[requester] || d.Policy != "idp-outage" || d.Incident != "INC-9" || !d.Active ||
		d.At != now.Format(time.RFC3339) || d.Expires != now.Add(4*time.Hour).Format(time.RFC3339) || !strings.HasPrefix(d.ID, "dcl-") {
		t.Fatalf("declare = %d %s", r.status, r.body)
	}
	cases := []struct {
		body map[string]any
		code string
		want string
	}{
		{map[string]any{"policy": "nope", "reason": "x"}, "unknown-policy", "the policies are: idp-outage"},
		{map[string]any{"policy": "idp-outage", "reason": "bored"}, "reason-not-listed", "accepts these reasons: identity-provider-outage"},
		{map[string]any{"policy": "idp-outage"}, "invalid-request", "reason is required"},
		{map[string]any{"reason": "x"}, "invalid-request", "policy is required"},
		{map[string]any{"policy": "idp-outage", "reason": "identity-provider-outage", "for": "4d"}, "invalid-request", "at most 3d"},
		{map[string]any{"policy": "idp-outage", "reason": "identity-provider-outage", "for": "4 hours"}, "invalid-request", "for:"},
	}
	for _, c := range cases {
		r := e.call("POST", "/v1/declarations", requester, c.body)
		if r.status != http.StatusBadRequest || r.errCode() != c.code || !strings.Contains(string(r.body), c.want) {
			t.Errorf("declare %v = %d %s; want 400 %s saying %q", c.body, r.status, r.body, c.code, c.want)
		}
	}
	e.clock.Advance(5 * time.Hour)
	e.call("POST", "/v1/declarations", other, map[string]any{"policy": "idp-outage", "reason": "identity-provider-outage", "for": "30m"})
	var list DeclarationList
	e.call("GET", "/v1/declarations", admin, nil).decode(t, &list)
	if len(list.Declarations) != 2 || list.Declarations[0].Active || !list.Declarations[1].Active {
		t.Fatalf("declarations %+v", list)
	}
	e.call("GET", "/v1/declarations?active=true", admin, nil).decode(t, &list)
	if len(list.Declarations) != 1 || list.Declarations[0].DeclaredBy != principalOf[other] {
		t.Fatalf("active declarations %+v", list)
	}
	if r := e.call("GET", "/v1/declarations?mine=true", admin, nil); r.status != 400 || !strings.Contains(string(r.body), "use active, policy") {
		t.Fatalf("unknown parameter: %d %s", r.status, r.body)
	}
}

func TestReportEndpoint(t *testing.T) {
	e := newEnv(t, memBackend)
	for range 5 {
		e.request(other, map[string]any{"role": "db-read", "justification": "slow query", "duration": "30m"})
		e.clock.Advance(time.Hour)
	}
	r := e.call("GET", "/v1/report?since=7d", admin, nil)
	var rep ReportView
	r.decode(t, &rep)
	if r.status != 200 || rep.Requests != 5 || len(rep.RepeatedRequests) != 1 || rep.RepeatedRequests[0].Principal != principalOf[other] ||
		rep.RepeatedRequests[0].Granted != "2h30m" || len(rep.Findings) != 1 || rep.Findings[0].Kind != "repeated-requests" {
		t.Fatalf("report = %d %s", r.status, r.body)
	}
	if r := e.call("GET", "/v1/report?since=400d", admin, nil); r.status != 400 {
		t.Fatalf("a report over 400 days: %d", r.status)
	}
	if r := e.call("GET", "/v1/report", requester, nil); r.status != 403 || !strings.Contains(string(r.body), "access report is reserved to elevate admins") {
		t.Fatalf("report as a requester: %d %s", r.status, r.body)
	}
}
