package server

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elevatehq/elevate/model"
)

// forEachBackend runs f on every store backend.
func forEachBackend(t *testing.T, f func(t *testing.T, e *env)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { f(t, newEnv(t, b)) })
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	return tm
}

func reasonCodesOf(g GrantView) []string {
	var codes []string
	if g.Decision != nil {
		for _, r := range g.Decision.Reasons {
			codes = append(codes, r.Code)
		}
	}
	return codes
}

func TestSelfServiceRequest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		now := e.clock.Now()
		r := e.call("POST", "/v1/requests", requester, map[string]any{"role": "db-read", "justification": "slow query", "ticket": "INC-1"})
		if r.status != http.StatusCreated {
			t.Fatalf("status %d %s", r.status, r.body)
		}
		g := r.grant(t)
		if g.Status != "approved" || g.Kind != "jit" || g.Principal != "user:alice@example.com" || g.Policy != "self-read" || g.Role != "db-read" {
			t.Errorf("grant = %+v", g)
		}
		if g.Duration != "30m" || g.DurationSeconds != 1800 {
			t.Errorf("duration %s/%d, want the policy default 30m", g.Duration, g.DurationSeconds)
		}
		if !mustTime(t, g.Starts).Equal(now) || !mustTime(t, g.Expires).Equal(now.Add(30*time.Minute)) {
			t.Errorf("window %s..%s, want %s + 30m", g.Starts, g.Expires, now)
		}
		if g.Decision == nil || g.Decision.Decision != "allowed" || g.Decision.AutoApproved || len(g.Decision.Reasons) != 0 {
			t.Errorf("decision = %+v", g.Decision)
		}
		if loc := r.header.Get("Location"); loc != "/v1/grants/"+g.ID {
			t.Errorf("Location %q", loc)
		}
		if len(g.ID) != 26 || strings.ToLower(g.ID) != g.ID {
			t.Errorf("ID %q is not a lowercase ULID", g.ID)
		}
		if got := e.lastTrigger(); !slices.Equal(got, []model.ScopeKey{{Cloud: model.CloudGCP, Scope: "projects/acme-prod"}}) {
			t.Errorf("trigger scopes %v", got)
		}

		// A later start: the window starts then, and lasts what was asked.
		later := now.Add(2 * time.Hour)
		g = e.request(requester, map[string]any{"role": "db-read", "duration": "1h", "justification": "maintenance", "not_before": later.Format(time.RFC3339)})
		if g.Status != "approved" || g.NotBefore != later.Format(time.RFC3339) || !mustTime(t, g.Starts).Equal(later) || !mustTime(t, g.Expires).Equal(later.Add(time.Hour)) {
			t.Errorf("not_before grant = %+v", g)
		}

		// IDs sort by creation time.
		e.clock.Advance(time.Millisecond)
		g2 := e.request(requester, map[string]any{"role": "db-read", "justification": "again"})
		if g2.ID <= g.ID {
			t.Errorf("ID %s sorts before the earlier %s", g2.ID, g.ID)
		}
	})
}

func TestDeniedRequestsAreStored(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		triggers := e.triggerCount()
		for _, c := range []struct {
			who   string
			body  map[string]any
			codes []string
		}{
			{requester, map[string]any{"role": "db-read"}, []string{"justification-missing"}},
			{requester, map[string]any{"role": "db-read", "duration": "3h", "justification": "x"}, []string{"duration-exceeds-max"}},
			{requester, map[string]any{"role": "no-such-role", "justification": "x"}, []string{"unknown-role"}},
			{approver, map[string]any{"role": "db-read", "justification": "x"}, []string{"not-eligible"}},
			{requester, map[string]any{"role": "db-admin", "justification": "x", "ticket": "nope"}, []string{"ticket-invalid"}},
		} {
			g := e.request(c.who, c.body)
			if g.Status != "denied" || !slices.Equal(reasonCodesOf(g), c.codes) || g.Reason == "" || g.Decision.Decision != "denied" {
				t.Errorf("request %v as %s = %s %v (reason %q); want denied %v", c.body, c.who, g.Status, reasonCodesOf(g), g.Reason, c.codes)
			}
			if g.Starts != "" || g.Expires != "" {
				t.Errorf("denied grant has a window: %+v", g)
			}
			d := e.call("GET", "/v1/grants/"+g.ID, c.who, nil)
			var detail GrantDetail
			d.decode(t, &detail)
			if d.status != 200 || detail.Grant.Status != "denied" || len(detail.History) != 1 || detail.History[0].Action != "request" ||
				!strings.HasPrefix(detail.History[0].Note, "denied: ") {
				t.Errorf("stored denied grant: %d %s", d.status, d.body)
			}
		}
		if e.triggerCount() != triggers {
			t.Errorf("denied requests triggered a reconcile pass")
		}
		// Input errors are 400s and store nothing.
		before := len(e.listAs(t, admin, ""))
		for _, body := range []map[string]any{
			{"role": ""},
			{"role": "db-read", "duration": "soon"},
			{"role": "db-read", "duration": "0s"},
			{"role": "db-read", "not_before": "tomorrow"},
			{"role": "db-read", "not_before": "2026-12-01T00:00:00+01:00"},
			{"role": "db-read", "justification": strings.Repeat("x", MaxJustificationLen+1)},
		} {
			if r := e.call("POST", "/v1/requests", requester, body); r.status != 400 || r.errCode() != CodeInvalidRequest {
				t.Errorf("request %v = %d %s, want 400 invalid-request", body, r.status, r.body)
			}
		}
		if after := len(e.listAs(t, admin, "")); after != before {
			t.Errorf("invalid requests stored grants: %d -> %d", before, after)
		}
	})
}

// listAs lists grants with the query as who.
func (e *env) listAs(t *testing.T, who, query string) []GrantView {
	t.Helper()
	r := e.call("GET", "/v1/grants"+query, who, nil)
	if r.status != 200 {
		t.Fatalf("GET /v1/grants%s as %s = %d %s", query, who, r.status, r.body)
	}
	var l GrantList
	r.decode(t, &l)
	return l.Grants
}

func TestApprovalWorkflow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		g := e.pendingAdmin()
		if g.Decision == nil || g.Decision.Decision != "needs_approval" || g.Decision.MinApprovals != 1 ||
			!slices.Equal(g.Decision.Approvers, []string{"group:sre-leads@example.com"}) || g.Starts != "" {
			t.Fatalf("pending grant = %+v decision %+v", g, g.Decision)
		}
		triggers := e.triggerCount()
		e.clock.Advance(5 * time.Minute)
		approvedAt := e.clock.Now()
		r := e.call("POST", "/v1/grants/"+g.ID+"/approve", approver, map[string]any{"comment": "go ahead"})
		a := r.grant(t)
		if r.status != 200 || a.Status != "approved" {
			t.Fatalf("approve = %d %s", r.status, r.body)
		}
		// The window starts at approval, not at the request.
		if !mustTime(t, a.Starts).Equal(approvedAt) || !mustTime(t, a.Expires).Equal(approvedAt.Add(45*time.Minute)) {
			t.Errorf("window %s..%s, want from %s for 45m", a.Starts, a.Expires, approvedAt)
		}
		if len(a.Approvals) != 1 || a.Approvals[0].Approver != "user:carol@example.com" || !a.Approvals[0].Approve || a.Approvals[0].Comment != "go ahead" {
			t.Errorf("approvals %+v", a.Approvals)
		}
		if e.triggerCount() != triggers+1 {
			t.Errorf("approval did not trigger a pass")
		}
		want := []model.ScopeKey{{Cloud: model.CloudGCP, Scope: "projects/acme-prod"}, {Cloud: model.CloudAWS, Scope: "123456789012"}}
		if got := e.lastTrigger(); !slices.Equal(got, want) {
			t.Errorf("trigger scopes %v, want %v", got, want)
		}
		// Approving again: not pending any more.
		if r := e.call("POST", "/v1/grants/"+g.ID+"/approve", approver2, nil); r.status != 409 || r.errCode() != "not-pending" {
			t.Errorf("approve of an approved grant = %d %s", r.status, r.body)
		}

		// History, oldest first.
		d := e.call("GET", "/v1/grants/"+g.ID, requester, nil)
		var detail GrantDetail
		d.decode(t, &detail)
		if len(detail.History) != 2 {
			t.Fatalf("history %s", d.body)
		}
		h0, h1 := detail.History[0], detail.History[1]
		if h0.Version != 1 || h0.Action != "request" || h0.Actor != "user:alice@example.com" || h0.From != "" || h0.To != "pending" {
			t.Errorf("history[0] = %+v", h0)
		}
		if h1.Version != 2 || h1.Action != "approve" || h1.Actor != "user:carol@example.com" || h1.From != "pending" || h1.To != "approved" ||
			!strings.Contains(h1.Note, "go ahead") || h1.At != approvedAt.Format(time.RFC3339) {
			t.Errorf("history[1] = %+v", h1)
		}
	})
}

func TestSelfApproval(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		// Directly: the requester is not an approver at all.
		g := e.pendingAdmin()
		if r := e.call("POST", "/v1/grants/"+g.ID+"/approve", requester, nil); r.status != 403 || r.errCode() != "self-approval" {
			t.Errorf("requester approving own request = %d %s", r.status, r.body)
		}
		// Through a group: carol is an approver by group sre-leads and
		// also a requester of the same policy.
		own := e.request(approver, map[string]any{"role": "db-admin", "justification": "INC-9", "ticket": "INC-9"})
		if own.Status != "pending" {
			t.Fatalf("carol's request is %s", own.Status)
		}
		for _, path := range []string{"/approve", "/deny"} {
			r := e.call("POST", "/v1/grants/"+own.ID+path, approver, map[string]any{})
			if path == "/deny" {
				r = e.call("POST", "/v1/grants/"+own.ID+path, approver, map[string]any{"reason": "withdrawn"})
			}
			if r.status != 403 || r.errCode() != "self-approval" {
				t.Errorf("approver deciding own request via %s = %d %s", path, r.status, r.body)
			}
		}
		d := e.call("GET", "/v1/grants/"+own.ID, approver, nil)
		var detail GrantDetail
		d.decode(t, &detail)
		if detail.Grant.Status != "pending" || len(detail.Grant.Approvals) != 0 || len(detail.History) != 1 {
			t.Errorf("a refused self-approval changed the grant: %s", d.body)
		}
	})
}

func TestTwoDistinctApprovers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		g := e.request(requester, map[string]any{"role": "db-super", "duration": "20m", "justification": "vacuum"})
		if g.Status != "pending" || g.Decision.MinApprovals != 2 {
			t.Fatalf("db-super request = %+v %+v", g, g.Decision)
		}
		path := "/v1/grants/" + g.ID + "/approve"
		r := e.call("POST", path, approver, nil)
		if a := r.grant(t); r.status != 200 || a.Status != "pending" || len(a.Approvals) != 1 || a.Starts != "" {
			t.Fatalf("first approval = %d %s", r.status, r.body)
		}
		// The same approver twice does not count.
		if r := e.call("POST", path, approver, map[string]any{"comment": "really"}); r.status != 403 || r.errCode() != "already-approved" {
			t.Errorf("second approval by the same approver = %d %s", r.status, r.body)
		}
		r = e.call("POST", path, approver2, map[string]any{"comment": "second"})
		a := r.grant(t)
		if r.status != 200 || a.Status != "approved" || len(a.Approvals) != 2 || a.Starts == "" {
			t.Fatalf("second approver = %d %s", r.status, r.body)
		}
		d := e.call("GET", "/v1/grants/"+g.ID, requester, nil)
		var detail GrantDetail
		d.decode(t, &detail)
		if n := len(detail.History); n != 3 || detail.History[1].To != "pending" || detail.History[2].To != "approved" ||
			!strings.HasPrefix(detail.History[2].Note, "2 of 2 approvals") {
			t.Errorf("history %s", d.body)
		}
	})
}

func TestDeny(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		g := e.pendingAdmin()
		path := "/v1/grants/" + g.ID
		if r := e.call("POST", path+"/deny", approver, map[string]any{"reason": "  "}); r.status != 400 {
			t.Errorf("deny without a reason = %d %s", r.status, r.body)
		}
		if r := e.call("POST", path+"/deny", approver, rawBody{"application/json", nil}); r.status != 400 || r.errCode() != CodeEmptyBody {
			t.Errorf("deny with no body = %d %s", r.status, r.body)
		}
		r := e.call("POST", path+"/deny", approver, map[string]any{"reason": "no incident open"})
		d := r.grant(t)
		if r.status != 200 || d.Status != "denied" || d.Reason != "no incident open" || len(d.Approvals) != 1 || d.Approvals[0].Approve {
			t.Fatalf("deny = %d %s", r.status, r.body)
		}
		if r := e.call("POST", path+"/approve", approver2, nil); r.status != 409 || r.errCode() != "not-pending" {
			t.Errorf("approve after deny = %d %s", r.status, r.body)
		}
		if r := e.call("POST", path+"/revoke", requester, nil); r.status != 409 || r.errCode() != "not-revocable" {
			t.Errorf("revoke after deny = %d %s", r.status, r.body)
		}
		if r := e.call("POST", "/v1/grants/nosuchgrant/deny", approver, map[string]any{"reason": "x"}); r.status != 404 || r.errCode() != CodeNotFound {
			t.Errorf("deny of a missing grant = %d %s", r.status, r.body)
		}
	})
}

func TestExtend(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		g := e.approvedRead()
		expires := mustTime(t, g.Expires)
		path := "/v1/grants/" + g.ID + "/extend"
		triggers := e.triggerCount()
		e.clock.Advance(20 * time.Minute)
		r := e.call("POST", path, requester, map[string]any{"by": "30m", "justification": "still digging"})
		x := r.grant(t)
		if r.status != 200 || x.Renewals != 1 || !mustTime(t, x.Expires).Equal(expires.Add(30*time.Minute)) || x.Starts != g.Starts {
			t.Fatalf("extend = %d %s", r.status, r.body)
		}
		if x.Decision == nil || x.Decision.Decision != "allowed" {
			t.Errorf("extend decision %+v", x.Decision)
		}
		if e.triggerCount() != triggers+1 {
			t.Errorf("extension did not trigger a pass")
		}
		// max_renewals = 1: the second renewal is refused with the reason code.
		r = e.call("POST", path, requester, map[string]any{"by": "10m"})
		if r.status != 403 || r.errCode() != "renewals-exhausted" {
			t.Errorf("second extension = %d %s", r.status, r.body)
		}
		// Longer than max_duration.
		g2 := e.approvedRead()
		if r := e.call("POST", "/v1/grants/"+g2.ID+"/extend", requester, map[string]any{"by": "3h"}); r.status != 403 || r.errCode() != "duration-exceeds-max" {
			t.Errorf("extension beyond max_duration = %d %s", r.status, r.body)
		}
		// db-admin allows no renewals.
		p := e.pendingAdmin()
		a := e.call("POST", "/v1/grants/"+p.ID+"/approve", approver, nil).grant(t)
		if r := e.call("POST", "/v1/grants/"+a.ID+"/extend", requester, map[string]any{"by": "10m", "justification": "INC-7"}); r.status != 403 || r.errCode() != "renewals-exhausted" {
			t.Errorf("extension under a policy without renewals = %d %s", r.status, r.body)
		}
		// Not live.
		pending := e.pendingAdmin()
		if r := e.call("POST", "/v1/grants/"+pending.ID+"/extend", requester, map[string]any{"by": "10m"}); r.status != 409 || r.errCode() != "not-extendable" {
			t.Errorf("extension of a pending grant = %d %s", r.status, r.body)
		}
		// Past its expiry (the reconcile loop has not marked it yet).
		g3 := e.approvedRead()
		e.clock.Advance(31 * time.Minute)
		if r := e.call("POST", "/v1/grants/"+g3.ID+"/extend", requester, map[string]any{"by": "10m"}); r.status != 409 || r.errCode() != "not-extendable" {
			t.Errorf("extension after expiry = %d %s", r.status, r.body)
		}
		// Bad input.
		for _, body := range []map[string]any{{}, {"by": "ages"}, {"by": "0m"}} {
			if r := e.call("POST", "/v1/grants/"+g2.ID+"/extend", requester, body); r.status != 400 {
				t.Errorf("extend %v = %d %s", body, r.status, r.body)
			}
		}
	})
}

// TestExtendNeedsApproval pins the documented 409 for a renewal a policy
// would only grant with approval.
func TestExtendNeedsApproval(t *testing.T) {
	e := newEnv(t, memBackend)
	// db-admin's policy allows no renewals, so this is denied; a policy
	// with renewals and approval gives renewal-needs-approval.
	set := loadPolicies(t, testPolicies+`
role "cache-admin" {
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/redis.admin"
  }
}
jit "cache-approved" {
  roles        = ["cache-admin"]
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
  max_renewals = 2
  justification = false
  approval {
    approvers = ["group:sre-leads@example.com"]
  }
}
`)
	e.policies.Store(set)
	g := e.request(requester, map[string]any{"role": "cache-admin"})
	e.call("POST", "/v1/grants/"+g.ID+"/approve", approver, nil)
	r := e.call("POST", "/v1/grants/"+g.ID+"/extend", requester, map[string]any{"by": "10m"})
	if r.status != 409 || r.errCode() != CodeRenewalNeedsApproval {
		t.Errorf("extension needing approval = %d %s", r.status, r.body)
	}
}

func TestRevoke(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		g := e.approvedRead()
		triggers := e.triggerCount()
		if r := e.call("POST", "/v1/grants/"+g.ID+"/revoke", other, nil); r.status != 403 || r.errCode() != "not-grantee" {
			t.Errorf("revoke by another requester = %d %s", r.status, r.body)
		}
		r := e.call("POST", "/v1/grants/"+g.ID+"/revoke", requester, rawBody{"", nil})
		v := r.grant(t)
		if r.status != 200 || v.Status != "revoked" || v.Reason != "revoked by user:alice@example.com" {
			t.Fatalf("revoke by grantee = %d %s", r.status, r.body)
		}
		if e.triggerCount() != triggers+1 {
			t.Errorf("revoking a live grant did not trigger a pass")
		}
		if r := e.call("POST", "/v1/grants/"+g.ID+"/revoke", requester, nil); r.status != 409 || r.errCode() != "not-revocable" {
			t.Errorf("second revoke = %d %s", r.status, r.body)
		}
		g2 := e.approvedRead()
		r = e.call("POST", "/v1/grants/"+g2.ID+"/revoke", admin, map[string]any{"reason": "offboarding"})
		if v := r.grant(t); r.status != 200 || v.Status != "revoked" || v.Reason != "offboarding" {
			t.Errorf("revoke by admin = %d %s", r.status, r.body)
		}
		// Withdrawing a pending request needs no reconcile pass.
		p := e.pendingAdmin()
		triggers = e.triggerCount()
		if r := e.call("POST", "/v1/grants/"+p.ID+"/revoke", requester, map[string]any{"reason": "fixed it"}); r.status != 200 || r.grant(t).Status != "revoked" {
			t.Errorf("withdraw = %d %s", r.status, r.body)
		}
		if e.triggerCount() != triggers {
			t.Errorf("withdrawing a pending request triggered a pass")
		}
	})
}

func TestListing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		read := e.approvedRead()                                                                                  // alice, approved
		e.clock.Advance(time.Second)                                                                              //
		pend := e.pendingAdmin()                                                                                  // alice, pending
		e.clock.Advance(time.Second)                                                                              //
		bobs := e.request(other, map[string]any{"role": "db-read", "justification": "bob's"})                     // bob, approved
		e.clock.Advance(time.Second)                                                                              //
		bobAdmin := e.request(other, map[string]any{"role": "db-admin", "justification": "x", "ticket": "INC-3"}) // bob, pending
		e.clock.Advance(time.Second)
		e.call("POST", "/v1/grants/"+read.ID+"/revoke", requester, nil)

		ids := func(gs []GrantView) []string {
			var out []string
			for _, g := range gs {
				out = append(out, g.ID)
			}
			return out
		}
		for _, c := range []struct {
			who, query string
			want       []string
		}{
			{requester, "", []string{read.ID, pend.ID}},
			{requester, "?mine=true", []string{read.ID, pend.ID}},
			{requester, "?status=pending", []string{pend.ID}},
			{requester, "?status=revoked&status=pending", []string{read.ID, pend.ID}},
			{requester, "?status=revoked,approved", []string{read.ID}},
			{other, "", []string{bobs.ID, bobAdmin.ID}},
			{other, "?principal=user:alice@example.com", nil},
			// carol approves db-admin: she sees those requests, not db-read ones.
			{approver, "", []string{pend.ID, bobAdmin.ID}},
			{approver, "?mine=true", nil},
			{approver, "?principal=user:bob@example.com", []string{bobAdmin.ID}},
			{admin, "", []string{read.ID, pend.ID, bobs.ID, bobAdmin.ID}},
			{admin, "?role=db-read", []string{read.ID, bobs.ID}},
			{admin, "?status=pending&role=db-admin&principal=user:bob@example.com", []string{bobAdmin.ID}},
			{admin, "?limit=2", []string{bobs.ID, bobAdmin.ID}},
			{admin, "?mine=true", nil},
		} {
			got := ids(e.listAs(t, c.who, c.query))
			if !slices.Equal(got, c.want) {
				t.Errorf("list as %s%s = %v, want %v", c.who, c.query, got, c.want)
			}
		}
		for _, q := range []string{"?status=bogus", "?mine=maybe", "?limit=0", "?limit=5000", "?principal=alice", "?sort=asc"} {
			if r := e.call("GET", "/v1/grants"+q, admin, nil); r.status != 400 || r.errCode() != CodeInvalidRequest {
				t.Errorf("list %s = %d %s", q, r.status, r.body)
			}
		}
		if r := e.call("GET", "/v1/grants/nosuchgrant", admin, nil); r.status != 404 {
			t.Errorf("missing grant = %d", r.status)
		}
	})
}

// TestConcurrentApprovals races approvers on one grant: optimistic
// concurrency must store exactly the quorum and approve exactly once.
func TestConcurrentApprovals(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		const n = numStaticApprovers
		race := func(g GrantView, who func(i int) string) []response {
			var wg sync.WaitGroup
			out := make([]response, n)
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					out[i] = e.call("POST", "/v1/grants/"+g.ID+"/approve", who(i), map[string]any{"comment": fmt.Sprint("approver ", i)})
				}()
			}
			close(start)
			wg.Wait()
			return out
		}
		count := func(rs []response) map[string]int {
			m := map[string]int{}
			for _, r := range rs {
				m[fmt.Sprintf("%d %s", r.status, r.errCode())]++
			}
			return m
		}
		approvedOnce := func(id string, wantApprovals int) {
			t.Helper()
			d := e.call("GET", "/v1/grants/"+id, admin, nil)
			var detail GrantDetail
			d.decode(t, &detail)
			if detail.Grant.Status != "approved" || len(detail.Grant.Approvals) != wantApprovals {
				t.Errorf("grant after the race: %s with %d approvals, want approved with %d", detail.Grant.Status, len(detail.Grant.Approvals), wantApprovals)
			}
			toApproved := 0
			for _, h := range detail.History {
				if h.To == "approved" && h.From == "pending" {
					toApproved++
				}
			}
			if toApproved != 1 || len(detail.History) != 1+wantApprovals {
				t.Errorf("history has %d approvals to approved and %d events; want 1 and %d", toApproved, len(detail.History), 1+wantApprovals)
			}
		}

		// Ten distinct approvers, two needed.
		g := e.request(requester, map[string]any{"role": "db-super", "duration": "20m", "justification": "vacuum"})
		triggers := e.triggerCount()
		got := count(race(g, staticApprover))
		if want := map[string]int{"200 ": 2, "409 not-pending": n - 2}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("distinct approvers: responses %v, want %v", got, want)
		}
		approvedOnce(g.ID, 2)
		if e.triggerCount() != triggers+1 {
			t.Errorf("%d passes triggered, want 1", e.triggerCount()-triggers)
		}

		// One approver ten times, one needed.
		g = e.pendingAdmin()
		got = count(race(g, func(int) string { return staticApprover(0) }))
		if got["200 "] != 1 || got["409 not-pending"]+got["403 already-approved"] != n-1 {
			t.Errorf("same approver: responses %v, want one 200 and the rest refused", got)
		}
		approvedOnce(g.ID, 1)
	})
}
