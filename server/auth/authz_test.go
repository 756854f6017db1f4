package auth_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/server/auth"
)

const authzPolicies = `
role "db" {
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/cloudsql.admin"
  }
}

role "logs" {
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/logging.viewer"
  }
}

role "org-admin" {
  gcp {
    resource = "organizations/123"
    role     = "roles/resourcemanager.organizationAdmin"
  }
}

jit "db-jit" {
  roles        = ["db"]
  requesters   = ["group:sre@example.com", "user:bob@example.com"]
  max_duration = "1h"
  approval {
    approvers     = ["group:sre-leads@example.com", "user:carol@example.com"]
    min_approvals = 2
  }
}

jit "logs-self-service" {
  roles         = ["logs"]
  requesters    = ["group:sre@example.com"]
  max_duration  = "1h"
  justification = false
}

temporary "migration" {
  role          = "db"
  principals    = ["user:contractor@partner.example"]
  expires       = "2026-12-15T00:00:00Z"
  justification = "CHG-1234"
  approved_by   = ["user:cto@example.com"]
}

notifier "pager" {
  type    = "webhook"
  url_env = "PAGER_URL"
}

break_glass "idp-outage" {
  reasons  = ["identity-provider-outage"]
  accounts = [
    "gcp:user:breakglass-1@example.com",
    "aws:arn:aws:iam::123456789012:user/breakglass-alice",
    "azure:user:breakglass1@contoso.onmicrosoft.com",
  ]
  roles             = ["org-admin"]
  session_recording = true
  review_within     = "24h"
  notify            = ["pager"]
}
`

func loadAuthzSet(t *testing.T) *policies.Set {
	t.Helper()
	set, diags := policies.LoadSources([]string{"authz.hcl"}, map[string][]byte{"authz.hcl": []byte(authzPolicies)})
	if diags.HasErrors() {
		t.Fatalf("fixture policies do not load: %v", diags)
	}
	return set
}

func ident(p string, admin bool, groups ...string) *auth.Identity {
	return &auth.Identity{Principal: model.MustPrincipal(p), Groups: principals(groups...), Method: auth.MethodOIDC, Admin: admin}
}

// The identities of the authorization matrix.
var (
	requester      = ident("user:alice@example.com", false, "group:sre@example.com", "group:sre-leads@example.com")
	otherRequester = ident("user:bob@example.com", false, "group:sre@example.com")
	groupApprover  = ident("user:dave@example.com", false, "group:sre-leads@example.com")
	directApprover = ident("user:carol@example.com", false)
	admin          = ident("user:root@example.com", true)
	// A break-glass account signing in to the identity provider arrives as
	// user:EMAIL; it is refused even if configured as an admin.
	breakGlass = ident("user:breakglass-1@example.com", true, "group:sre-leads@example.com")
	// A static token configured (wrongly) for a break-glass AWS user.
	breakGlassAWS = &auth.Identity{Principal: model.MustPrincipal("aws:arn:aws:iam::123456789012:user/breakglass-alice"), Method: auth.MethodStatic}
)

var now = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func pendingGrant() *model.Grant {
	return &model.Grant{ID: "g-pending", Kind: model.KindJIT, Principal: requester.Principal, Role: "db",
		Policy: "db-jit", Status: model.StatusPending, Duration: 30 * time.Minute, RequestedAt: now}
}

func activeGrant() *model.Grant {
	return &model.Grant{ID: "g-active", Kind: model.KindJIT, Principal: requester.Principal, Role: "db",
		Policy: "db-jit", Status: model.StatusActive, Starts: now, Expires: now.Add(30 * time.Minute),
		Approvals: []model.Approval{
			{Approver: groupApprover.Principal, At: now, Approve: true},
			{Approver: directApprover.Principal, At: now, Approve: true},
		}}
}

// TestAuthorizationMatrix is every decision × every kind of caller, with
// the code each gets.
func TestAuthorizationMatrix(t *testing.T) {
	set := loadAuthzSet(t)
	policy := set.JITPolicy("db-jit")
	type decision func(*auth.Identity) (bool, string, string)
	actions := []struct {
		name string
		do   decision
	}{
		{"request", func(id *auth.Identity) (bool, string, string) { return auth.CanRequest(set, id) }},
		{"list grants", func(id *auth.Identity) (bool, string, string) { return auth.CanList(set, id) }},
		{"view", func(id *auth.Identity) (bool, string, string) { return auth.CanView(set, id, pendingGrant()) }},
		{"approve", func(id *auth.Identity) (bool, string, string) {
			return auth.CanApprove(set, id, pendingGrant(), policy)
		}},
		{"deny", func(id *auth.Identity) (bool, string, string) { return auth.CanDeny(set, id, pendingGrant(), policy) }},
		{"revoke", func(id *auth.Identity) (bool, string, string) { return auth.CanRevoke(set, id, activeGrant()) }},
		{"extend", func(id *auth.Identity) (bool, string, string) { return auth.CanExtend(set, id, activeGrant()) }},
		{"declare", func(id *auth.Identity) (bool, string, string) { return auth.CanDeclare(set, id) }},
		{"view incidents", func(id *auth.Identity) (bool, string, string) { return auth.CanViewIncidents(set, id) }},
		{"review incident", func(id *auth.Identity) (bool, string, string) { return auth.CanReviewIncident(set, id) }},
		{"read policies", func(id *auth.Identity) (bool, string, string) { return auth.CanReadPolicies(set, id) }},
	}
	callers := []struct {
		name string
		id   *auth.Identity
	}{
		{"anonymous", nil}, {"requester", requester}, {"other requester", otherRequester},
		{"group approver", groupApprover}, {"direct approver", directApprover}, {"admin", admin},
		{"break-glass", breakGlass}, {"break-glass aws", breakGlassAWS},
	}
	const (
		ok    = auth.CodeOK
		unau  = auth.CodeUnauthenticated
		bg    = auth.CodeBreakglassAccount
		self  = auth.CodeSelfApproval
		notAp = auth.CodeNotApprover
		notGr = auth.CodeNotGrantee
		notVi = auth.CodeNotVisible
		admOn = auth.CodeAdminOnly
	)
	// Columns in the order of callers.
	want := map[string][]string{
		"request":         {unau, ok, ok, ok, ok, ok, bg, bg},
		"list grants":     {unau, ok, ok, ok, ok, ok, bg, bg},
		"view":            {unau, ok, notVi, ok, ok, ok, bg, bg},
		"approve":         {unau, self, notAp, ok, ok, notAp, bg, bg},
		"deny":            {unau, self, notAp, ok, ok, notAp, bg, bg},
		"revoke":          {unau, ok, notGr, notGr, notGr, ok, bg, bg},
		"extend":          {unau, ok, notGr, notGr, notGr, notGr, bg, bg},
		"declare":         {unau, ok, ok, ok, ok, ok, bg, bg},
		"view incidents":  {unau, admOn, admOn, admOn, admOn, ok, bg, bg},
		"review incident": {unau, admOn, admOn, admOn, admOn, ok, bg, bg},
		"read policies":   {unau, ok, ok, ok, ok, ok, bg, bg},
	}
	for _, a := range actions {
		for i, c := range callers {
			t.Run(a.name+"/"+c.name, func(t *testing.T) {
				allowed, code, msg := a.do(c.id)
				if code != want[a.name][i] {
					t.Fatalf("code = %q (%s), want %q", code, msg, want[a.name][i])
				}
				if allowed != (code == auth.CodeOK) {
					t.Errorf("allowed = %v with code %q", allowed, code)
				}
				if !allowed && msg == "" {
					t.Error("a refusal without a message")
				}
				wantStatus := map[string]int{ok: 200, unau: 401}[code]
				if wantStatus == 0 {
					wantStatus = 403
				}
				if got := auth.HTTPStatus(code); got != wantStatus {
					t.Errorf("HTTPStatus(%q) = %d, want %d", code, got, wantStatus)
				}
			})
		}
	}
}

func TestCanApproveStatesAndPolicies(t *testing.T) {
	set := loadAuthzSet(t)
	policy := set.JITPolicy("db-jit")
	withStatus := func(s model.GrantStatus) *model.Grant { g := pendingGrant(); g.Status = s; return g }
	withApprovals := func(as ...model.Approval) *model.Grant { g := pendingGrant(); g.Approvals = as; return g }
	cases := []struct {
		name   string
		id     *auth.Identity
		grant  *model.Grant
		policy *policies.JIT
		code   string
		msg    string
	}{
		{"approver on a pending grant", groupApprover, pendingGrant(), policy, auth.CodeOK, ""},
		{"approved grant", groupApprover, withStatus(model.StatusApproved), policy, auth.CodeNotPending, "is approved, not pending"},
		{"active grant", directApprover, withStatus(model.StatusActive), policy, auth.CodeNotPending, "not pending"},
		{"denied grant", directApprover, withStatus(model.StatusDenied), policy, auth.CodeNotPending, "not pending"},
		{"requester through an approver group", requester, pendingGrant(), policy, auth.CodeSelfApproval, "you requested grant g-pending"},
		{"requester on a grant no longer pending", requester, withStatus(model.StatusApproved), policy, auth.CodeSelfApproval, ""},
		{"requester with another spelling", ident("user:Alice@Example.com", false, "group:sre-leads@example.com"), pendingGrant(), policy, auth.CodeSelfApproval, ""},
		{"approving twice", groupApprover, withApprovals(model.Approval{Approver: groupApprover.Principal, Approve: true}), policy, auth.CodeAlreadyApproved, "already approved"},
		{"approving twice, other case", groupApprover, withApprovals(model.Approval{Approver: model.MustPrincipal("user:DAVE@example.com"), Approve: true}), policy, auth.CodeAlreadyApproved, ""},
		{"second distinct approver", directApprover, withApprovals(model.Approval{Approver: groupApprover.Principal, Approve: true}), policy, auth.CodeOK, ""},
		{"policy gone from the set", groupApprover, pendingGrant(), nil, auth.CodeNoApproval, "not in the loaded policy set"},
		{"policy of another name", groupApprover, pendingGrant(), set.JITPolicy("logs-self-service"), auth.CodeNoApproval, "not in the loaded policy set"},
		{"self-service policy", groupApprover, func() *model.Grant { g := pendingGrant(); g.Policy = "logs-self-service"; return g }(), set.JITPolicy("logs-self-service"), auth.CodeNoApproval, "no approval block"},
		{"requester of another grant is no approver", otherRequester, pendingGrant(), policy, auth.CodeNotApprover, "group:sre-leads@example.com, user:carol@example.com"},
	}
	for _, tc := range cases {
		for verb, fn := range map[string]func(*policies.Set, *auth.Identity, *model.Grant, *policies.JIT) (bool, string, string){
			"approve": auth.CanApprove, "deny": auth.CanDeny,
		} {
			t.Run(verb+"/"+tc.name, func(t *testing.T) {
				ok, code, msg := fn(set, tc.id, tc.grant, tc.policy)
				if code != tc.code || ok != (tc.code == auth.CodeOK) {
					t.Fatalf("= %v %q (%s), want code %q", ok, code, msg, tc.code)
				}
				if !strings.Contains(msg, tc.msg) {
					t.Errorf("message %q does not say %q", msg, tc.msg)
				}
			})
		}
	}
	// A denial is also a decision already taken.
	g := withApprovals(model.Approval{Approver: directApprover.Principal, Approve: false})
	if _, code, msg := auth.CanApprove(set, directApprover, g, policy); code != auth.CodeAlreadyApproved || !strings.Contains(msg, "already denied") {
		t.Errorf("approve after own denial: %q %s", code, msg)
	}
}

func TestCanRevokeAndExtendStates(t *testing.T) {
	set := loadAuthzSet(t)
	grant := func(kind model.GrantKind, s model.GrantStatus) *model.Grant {
		g := activeGrant()
		g.Kind, g.Status = kind, s
		return g
	}
	for _, s := range []model.GrantStatus{model.StatusPending, model.StatusApproved, model.StatusActive} {
		for _, id := range []*auth.Identity{requester, admin} {
			if ok, code, msg := auth.CanRevoke(set, id, grant(model.KindJIT, s)); !ok {
				t.Errorf("%s revoking a %s grant: %s %s", id, s, code, msg)
			}
		}
	}
	for _, s := range []model.GrantStatus{model.StatusExpired, model.StatusRevoked, model.StatusDenied, model.StatusFailed} {
		for _, id := range []*auth.Identity{requester, admin} {
			if _, code, _ := auth.CanRevoke(set, id, grant(model.KindJIT, s)); code != auth.CodeNotRevocable {
				t.Errorf("%s revoking a %s grant: code %q, want %q", id, s, code, auth.CodeNotRevocable)
			}
		}
		// Someone else still learns nothing about the state.
		if _, code, _ := auth.CanRevoke(set, otherRequester, grant(model.KindJIT, s)); code != auth.CodeNotGrantee {
			t.Errorf("other requester revoking a %s grant: code %q, want %q", s, code, auth.CodeNotGrantee)
		}
	}
	if got := auth.HTTPStatus(auth.CodeNotRevocable); got != http.StatusConflict {
		t.Errorf("HTTPStatus(not-revocable) = %d, want 409", got)
	}

	extend := []struct {
		kind   model.GrantKind
		status model.GrantStatus
		code   string
	}{
		{model.KindJIT, model.StatusActive, auth.CodeOK},
		{model.KindJIT, model.StatusApproved, auth.CodeOK},
		{model.KindJIT, model.StatusPending, auth.CodeNotExtendable},
		{model.KindJIT, model.StatusExpired, auth.CodeNotExtendable},
		{model.KindJIT, model.StatusRevoked, auth.CodeNotExtendable},
		{model.KindTemporary, model.StatusActive, auth.CodeNotExtendable},
	}
	for _, tc := range extend {
		if _, code, msg := auth.CanExtend(set, requester, grant(tc.kind, tc.status)); code != tc.code {
			t.Errorf("extend %s %s: code %q (%s), want %q", tc.kind, tc.status, code, msg, tc.code)
		}
	}
}

func TestCanViewAndFilterVisible(t *testing.T) {
	set := loadAuthzSet(t)
	mine := pendingGrant()
	bobs := &model.Grant{ID: "g-bob", Kind: model.KindJIT, Principal: otherRequester.Principal, Policy: "db-jit", Status: model.StatusActive}
	selfService := &model.Grant{ID: "g-logs", Kind: model.KindJIT, Principal: requester.Principal, Policy: "logs-self-service", Status: model.StatusActive}
	temporary := &model.Grant{ID: "g-tmp", Kind: model.KindTemporary, Principal: model.MustPrincipal("user:contractor@partner.example"), Policy: "migration", Status: model.StatusActive}
	orphan := &model.Grant{ID: "g-orphan", Kind: model.KindJIT, Principal: otherRequester.Principal, Policy: "deleted-policy", Status: model.StatusExpired}
	all := []*model.Grant{mine, bobs, selfService, temporary, orphan}
	ids := func(gs []*model.Grant) []string {
		var out []string
		for _, g := range gs {
			out = append(out, g.ID)
		}
		return out
	}
	cases := []struct {
		name string
		id   *auth.Identity
		want []string
	}{
		{"requester who is also an approver sees her grants and those she may approve", requester, []string{"g-pending", "g-bob", "g-logs"}},
		{"other requester sees only his", otherRequester, []string{"g-bob", "g-orphan"}},
		{"approver sees the grants of policies they approve", groupApprover, []string{"g-pending", "g-bob"}},
		{"direct approver likewise", directApprover, []string{"g-pending", "g-bob"}},
		{"contractor sees the temporary grant", ident("user:contractor@partner.example", false), []string{"g-tmp"}},
		{"admin sees all", admin, []string{"g-pending", "g-bob", "g-logs", "g-tmp", "g-orphan"}},
		{"break-glass sees nothing", breakGlass, nil},
		{"anonymous sees nothing", nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, ids(auth.FilterVisible(set, tc.id, all))); diff != "" {
				t.Errorf("visible grants (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBreakGlassPolicyMatchesTheSameMailbox(t *testing.T) {
	set := loadAuthzSet(t)
	cases := map[string]bool{
		"gcp:user:breakglass-1@example.com":                   true,
		"user:breakglass-1@example.com":                       true,
		"user:BreakGlass-1@Example.com":                       true,
		"serviceAccount:breakglass-1@example.com":             true,
		"azure:user:BREAKGLASS1@contoso.onmicrosoft.com":      true,
		"user:breakglass1@contoso.onmicrosoft.com":            true,
		"aws:arn:aws:iam::123456789012:user/breakglass-alice": true,
		"aws:arn:aws:iam::123456789012:user/breakglass-bob":   false,
		"user:breakglass-2@example.com":                       false,
		"user:alice@example.com":                              false,
		"gcp:group:breakglass-1@example.com":                  false,
	}
	for p, want := range cases {
		got := auth.BreakGlassPolicy(set, model.MustPrincipal(p))
		if (got != nil) != want {
			t.Errorf("BreakGlassPolicy(%s) = %v, want a match: %v", p, got, want)
		}
		if got != nil && got.Name != "idp-outage" {
			t.Errorf("BreakGlassPolicy(%s) = %q, want idp-outage", p, got.Name)
		}
	}
	if auth.BreakGlassPolicy(nil, requester.Principal) != nil {
		t.Error("a nil set has no break-glass accounts")
	}
}

func TestApprovalsSatisfied(t *testing.T) {
	set := loadAuthzSet(t)
	two := set.JITPolicy("db-jit")
	approve := func(p string) model.Approval {
		return model.Approval{Approver: model.MustPrincipal(p), At: now, Approve: true}
	}
	zeroMin := &policies.JIT{Block: policies.Block{Name: "db-jit"}, Approval: &policies.Approval{MinApprovals: 0}}
	cases := []struct {
		name      string
		policy    *policies.JIT
		approvals []model.Approval
		distinct  int
		want      bool
	}{
		{"none", two, nil, 0, false},
		{"one of two", two, []model.Approval{approve("user:dave@example.com")}, 1, false},
		{"one approver twice", two, []model.Approval{approve("user:dave@example.com"), approve("user:dave@example.com")}, 1, false},
		{"one approver in two spellings", two, []model.Approval{approve("user:dave@example.com"), approve("user:Dave@EXAMPLE.com")}, 1, false},
		{"the requester does not count", two, []model.Approval{approve("user:alice@example.com"), approve("user:dave@example.com")}, 1, false},
		{"a denial does not count", two, []model.Approval{approve("user:dave@example.com"), {Approver: model.MustPrincipal("user:carol@example.com"), Approve: false}}, 1, false},
		{"two distinct approvers", two, []model.Approval{approve("user:dave@example.com"), approve("user:carol@example.com")}, 2, true},
		{"three distinct approvers", two, []model.Approval{approve("user:dave@example.com"), approve("user:carol@example.com"), approve("user:erin@example.com")}, 3, true},
		{"min_approvals 0 means 1: none", zeroMin, nil, 0, false},
		{"min_approvals 0 means 1: one", zeroMin, []model.Approval{approve("user:dave@example.com")}, 1, true},
		{"self-service policy", set.JITPolicy("logs-self-service"), nil, 0, true},
		{"policy gone", nil, []model.Approval{approve("user:dave@example.com"), approve("user:carol@example.com")}, 2, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := pendingGrant()
			g.Approvals = tc.approvals
			if got := auth.DistinctApprovals(g); got != tc.distinct {
				t.Errorf("DistinctApprovals = %d, want %d", got, tc.distinct)
			}
			if got := auth.ApprovalsSatisfied(g, tc.policy); got != tc.want {
				t.Errorf("ApprovalsSatisfied = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestApprovalFlow walks a request through to satisfied approvals the way
// the API will: only CanApprove admits approvals, and the refused attempts
// (the requester through her approver group, a repeat, a non-approver, an
// admin, a break-glass account) leave the count unchanged.
func TestApprovalFlow(t *testing.T) {
	set := loadAuthzSet(t)
	policy := set.JITPolicy(pendingGrant().Policy)
	g := pendingGrant()
	for i, id := range []*auth.Identity{requester, groupApprover, groupApprover, otherRequester, admin, breakGlass, directApprover} {
		ok, code, _ := auth.CanApprove(set, id, g, policy)
		if ok {
			g.Approvals = append(g.Approvals, model.Approval{Approver: id.Principal, At: now.Add(time.Duration(i) * time.Minute), Approve: true})
		}
		t.Logf("%s: %s", id, code)
	}
	want := []string{"user:dave@example.com", "user:carol@example.com"}
	var got []string
	for _, a := range g.Approvals {
		got = append(got, a.Approver.String())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("admitted approvals (-want +got):\n%s", diff)
	}
	if !auth.ApprovalsSatisfied(g, policy) {
		t.Errorf("two distinct approvers should satisfy min_approvals = 2 (%d counted)", auth.DistinctApprovals(g))
	}
}

func TestIdentityHelpers(t *testing.T) {
	var anon *auth.Identity
	if anon.String() != "anonymous" || anon.Is(requester.Principal) || anon.Matches(requester.Principal) {
		t.Error("a nil identity must match nothing")
	}
	if !requester.Matches(model.MustPrincipal("group:SRE@example.com")) {
		t.Error("group membership should match case-insensitively")
	}
	if requester.Matches(model.Principal{}) {
		t.Error("the zero principal matches nobody")
	}
	if got := fmt.Sprint(requester); got != "user:alice@example.com" {
		t.Errorf("String = %q", got)
	}
}
