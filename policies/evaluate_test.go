package policies

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/elevatehq/elevate/model"
)

// loadSet decodes src as one policy file and fails the test on any error.
func loadSet(t *testing.T, src string) *Set {
	t.Helper()
	set, diags := LoadSources([]string{"test.hcl"}, map[string][]byte{"test.hcl": []byte(src)})
	if diags.HasErrors() {
		t.Fatalf("loading policy: %v", diags)
	}
	return set
}

const evalPolicies = `
role "db" {}
role "web" {}
role "orphan" {}

jit "db-self" {
  roles            = ["db"]
  requesters       = ["user:bob@example.com"]
  max_duration     = "1h"
  default_duration = "30m"
}

jit "db-oncall" {
  roles          = ["db", "web"]
  requesters     = ["group:sre@example.com", "user:carol@example.com"]
  max_duration   = "4h"
  ticket_pattern = "^INC-[0-9]+$"
  max_renewals   = 2
  approval {
    approvers     = ["group:sre-leads@example.com", "user:dave@example.com"]
    min_approvals = 2
    auto_approve  = request.duration <= 900 && contains(requester.groups, "group:oncall@example.com")
  }
}

jit "web-quiet" {
  roles         = ["web"]
  requesters    = ["group:devs@example.com"]
  max_duration  = "2h"
  justification = false
}

break_glass "idp-outage" {
  accounts      = ["gcp:user:breakglass-1@example.com", "user:bg-admin@example.com"]
  review_within = "24h"
}
`

var (
	bob   = model.MustPrincipal("user:bob@example.com")
	alice = model.MustPrincipal("user:alice@example.com")
	carol = model.MustPrincipal("user:carol@example.com")
	eve   = model.MustPrincipal("user:eve@example.com")
	sre   = model.MustPrincipal("group:sre@example.com")
	oncal = model.MustPrincipal("group:oncall@example.com")
	devs  = model.MustPrincipal("group:devs@example.com")
)

// want is the part of a Result a table case checks; Trace is checked
// separately.
type want struct {
	Decision     Decision
	Policy       string
	Duration     time.Duration
	Approvers    []string
	MinApprovals int
	AutoApproved bool
	Reasons      []ReasonCode
	// AutoApproveErrors lists the policies whose auto_approve failed.
	AutoApproveErrors []string
}

func summarize(r Result) want {
	w := want{Decision: r.Decision, Policy: r.Policy, Duration: r.Duration, MinApprovals: r.MinApprovals, AutoApproved: r.AutoApproved}
	for _, a := range r.Approvers {
		w.Approvers = append(w.Approvers, a.String())
	}
	for _, x := range r.Reasons {
		w.Reasons = append(w.Reasons, x.Code)
	}
	for _, e := range r.AutoApproveErrors {
		w.AutoApproveErrors = append(w.AutoApproveErrors, e.Policy)
	}
	return w
}

func TestEvaluate(t *testing.T) {
	set := loadSet(t, evalPolicies)
	reason := func(codes ...ReasonCode) []ReasonCode { return codes }
	approvers := []string{"group:sre-leads@example.com", "user:dave@example.com"}
	tests := []struct {
		name string
		req  Request
		want want
	}{
		{
			name: "self-service with the default duration",
			req:  Request{Requester: bob, Role: "db", Justification: "INC-1 slow queries"},
			want: want{Decision: DecisionAllowed, Policy: "db-self", Duration: 30 * time.Minute},
		},
		{
			name: "requester matched case-insensitively",
			req:  Request{Requester: model.MustPrincipal("user:Bob@Example.com"), Role: "db", Justification: "x", Duration: time.Hour},
			want: want{Decision: DecisionAllowed, Policy: "db-self", Duration: time.Hour},
		},
		{
			name: "duration over max_duration",
			req:  Request{Requester: bob, Role: "db", Justification: "x", Duration: 61 * time.Minute},
			want: want{Decision: DecisionDenied, Policy: "db-self", Duration: 61 * time.Minute, Reasons: reason(ReasonDurationExceedsMax)},
		},
		{
			name: "justification missing",
			req:  Request{Requester: bob, Role: "db"},
			want: want{Decision: DecisionDenied, Policy: "db-self", Duration: 30 * time.Minute, Reasons: reason(ReasonJustificationMissing)},
		},
		{
			name: "whitespace justification is missing",
			req:  Request{Requester: bob, Role: "db", Justification: " \t\n"},
			want: want{Decision: DecisionDenied, Policy: "db-self", Duration: 30 * time.Minute, Reasons: reason(ReasonJustificationMissing)},
		},
		{
			name: "every failed check is reported",
			req:  Request{Requester: bob, Role: "db", Duration: 2 * time.Hour, Renewal: true},
			want: want{Decision: DecisionDenied, Policy: "db-self", Duration: 2 * time.Hour,
				Reasons: reason(ReasonDurationExceedsMax, ReasonJustificationMissing, ReasonRenewalsExhausted)},
		},
		{
			name: "justification = false needs none",
			req:  Request{Requester: eve, Groups: []model.Principal{devs}, Role: "web"},
			want: want{Decision: DecisionAllowed, Policy: "web-quiet", Duration: 2 * time.Hour},
		},
		{
			name: "group member needs approval; no default means max_duration",
			req:  Request{Requester: alice, Groups: []model.Principal{sre}, Role: "db", Justification: "x", Ticket: "INC-7"},
			want: want{Decision: DecisionNeedsApproval, Policy: "db-oncall", Duration: 4 * time.Hour, Approvers: approvers, MinApprovals: 2},
		},
		{
			name: "user requester of a policy that also lists groups",
			req:  Request{Requester: carol, Role: "db", Justification: "x", Ticket: "INC-7", Duration: time.Hour},
			want: want{Decision: DecisionNeedsApproval, Policy: "db-oncall", Duration: time.Hour, Approvers: approvers, MinApprovals: 2},
		},
		{
			name: "missing ticket",
			req:  Request{Requester: alice, Groups: []model.Principal{sre}, Role: "db", Justification: "x"},
			want: want{Decision: DecisionDenied, Policy: "db-oncall", Duration: 4 * time.Hour, Reasons: reason(ReasonTicketInvalid)},
		},
		{
			name: "ticket not matching the pattern",
			req:  Request{Requester: alice, Groups: []model.Principal{sre}, Role: "db", Justification: "x", Ticket: "CHG-7"},
			want: want{Decision: DecisionDenied, Policy: "db-oncall", Duration: 4 * time.Hour, Reasons: reason(ReasonTicketInvalid)},
		},
		{
			name: "auto_approve true",
			req: Request{Requester: alice, Groups: []model.Principal{sre, oncal}, Role: "db", Justification: "x", Ticket: "INC-7",
				Duration: 15 * time.Minute},
			want: want{Decision: DecisionAllowed, Policy: "db-oncall", Duration: 15 * time.Minute, AutoApproved: true},
		},
		{
			name: "auto_approve false: too long",
			req: Request{Requester: alice, Groups: []model.Principal{sre, oncal}, Role: "db", Justification: "x", Ticket: "INC-7",
				Duration: 16 * time.Minute},
			want: want{Decision: DecisionNeedsApproval, Policy: "db-oncall", Duration: 16 * time.Minute, Approvers: approvers, MinApprovals: 2},
		},
		{
			name: "renewal within max_renewals",
			req: Request{Requester: alice, Groups: []model.Principal{sre}, Role: "db", Justification: "x", Ticket: "INC-7",
				Duration: time.Hour, Renewal: true, Renewals: 1},
			want: want{Decision: DecisionNeedsApproval, Policy: "db-oncall", Duration: time.Hour, Approvers: approvers, MinApprovals: 2},
		},
		{
			name: "renewals exhausted",
			req: Request{Requester: alice, Groups: []model.Principal{sre}, Role: "db", Justification: "x", Ticket: "INC-7",
				Duration: time.Hour, Renewal: true, Renewals: 2},
			want: want{Decision: DecisionDenied, Policy: "db-oncall", Duration: time.Hour, Reasons: reason(ReasonRenewalsExhausted)},
		},
		{
			name: "renewal count ignored for a new request",
			req:  Request{Requester: bob, Role: "db", Justification: "x", Renewals: 9},
			want: want{Decision: DecisionAllowed, Policy: "db-self", Duration: 30 * time.Minute},
		},
		{
			name: "not eligible anywhere: one reason per policy",
			req:  Request{Requester: eve, Groups: []model.Principal{devs}, Role: "db", Justification: "x"},
			want: want{Decision: DecisionDenied, Reasons: reason(ReasonNotEligible, ReasonNotEligible)},
		},
		{
			name: "a group never matches a user requester",
			req:  Request{Requester: eve, Groups: []model.Principal{bob}, Role: "db", Justification: "x"},
			want: want{Decision: DecisionDenied, Reasons: reason(ReasonNotEligible, ReasonNotEligible)},
		},
		{
			name: "role without jit policies",
			req:  Request{Requester: bob, Role: "orphan", Justification: "x"},
			want: want{Decision: DecisionDenied, Reasons: reason(ReasonNotEligible)},
		},
		{
			name: "unknown role",
			req:  Request{Requester: bob, Role: "dbx", Justification: "x"},
			want: want{Decision: DecisionDenied, Reasons: reason(ReasonUnknownRole)},
		},
		{
			name: "negative duration",
			req:  Request{Requester: bob, Role: "db", Justification: "x", Duration: -time.Minute},
			want: want{Decision: DecisionDenied, Reasons: reason(ReasonInvalidRequest)},
		},
		{
			name: "most permissive: needs_approval beats a denial in an earlier policy",
			req:  Request{Requester: bob, Groups: []model.Principal{sre}, Role: "db", Justification: "x", Ticket: "INC-1", Duration: 3 * time.Hour},
			want: want{Decision: DecisionNeedsApproval, Policy: "db-oncall", Duration: 3 * time.Hour, Approvers: approvers, MinApprovals: 2},
		},
		{
			name: "most permissive: allowed beats needs_approval",
			req:  Request{Requester: bob, Groups: []model.Principal{sre}, Role: "db", Justification: "x", Ticket: "INC-1", Duration: time.Hour},
			want: want{Decision: DecisionAllowed, Policy: "db-self", Duration: time.Hour},
		},
		{
			name: "auto-approved later policy beats self-service denial",
			req: Request{Requester: bob, Groups: []model.Principal{sre, oncal}, Role: "db", Justification: "x", Ticket: "INC-1",
				Duration: 10 * time.Minute, Renewal: true},
			want: want{Decision: DecisionAllowed, Policy: "db-oncall", Duration: 10 * time.Minute, AutoApproved: true},
		},
		{
			name: "all eligible policies deny: the first declared decides",
			req:  Request{Requester: bob, Groups: []model.Principal{sre}, Role: "db", Duration: 5 * time.Hour},
			want: want{Decision: DecisionDenied, Policy: "db-self", Duration: 5 * time.Hour, Reasons: reason(ReasonDurationExceedsMax, ReasonJustificationMissing)},
		},
		{
			name: "break-glass account denied even where a policy would allow",
			req:  Request{Requester: model.MustPrincipal("user:BG-Admin@example.com"), Groups: []model.Principal{devs}, Role: "web"},
			want: want{Decision: DecisionDenied, Reasons: reason(ReasonBreakglassAccount)},
		},
		{
			name: "break-glass account asking for an unknown role",
			req:  Request{Requester: model.MustPrincipal("gcp:user:breakglass-1@example.com"), Role: "nope"},
			want: want{Decision: DecisionDenied, Reasons: reason(ReasonBreakglassAccount, ReasonUnknownRole)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Evaluate(set, tt.req)
			if diff := cmp.Diff(tt.want, summarize(got)); diff != "" {
				t.Errorf("Evaluate mismatch (-want +got):\n%s\nreasons: %+v", diff, got.Reasons)
			}
			for _, r := range got.Reasons {
				if r.Message == "" {
					t.Errorf("reason %s has no message", r.Code)
				}
			}
		})
	}
}

func TestEvaluateReasonsNamePolicies(t *testing.T) {
	set := loadSet(t, evalPolicies)
	got := Evaluate(set, Request{Requester: eve, Role: "db", Justification: "x"})
	var policies []string
	for _, r := range got.Reasons {
		policies = append(policies, r.Policy)
	}
	if diff := cmp.Diff([]string{"db-self", "db-oncall"}, policies); diff != "" {
		t.Errorf("not-eligible reasons name the wrong policies (-want +got):\n%s", diff)
	}
	if !strings.Contains(got.Reasons[1].Message, "group:sre@example.com") {
		t.Errorf("not-eligible message should list the requesters: %q", got.Reasons[1].Message)
	}

	got = Evaluate(set, Request{Requester: model.MustPrincipal("gcp:user:breakglass-1@example.com"), Role: "db"})
	if len(got.Reasons) != 1 || got.Reasons[0].Policy != "idp-outage" || got.Policy != "" {
		t.Errorf("break-glass denial should name the break_glass block in its reason only: policy %q, reasons %+v", got.Policy, got.Reasons)
	}

	got = Evaluate(set, Request{Requester: bob, Role: "db", Justification: "x", Duration: 2 * time.Hour})
	if len(got.Reasons) != 1 || !strings.Contains(got.Reasons[0].Message, "2h") || !strings.Contains(got.Reasons[0].Message, "1h") {
		t.Errorf("duration reason should give both durations: %+v", got.Reasons)
	}
}

func TestEvaluateTrace(t *testing.T) {
	set := loadSet(t, evalPolicies)
	got := Evaluate(set, Request{Requester: bob, Groups: []model.Principal{sre}, Role: "db", Justification: "x", Ticket: "INC-1", Duration: 3 * time.Hour})
	type row struct {
		Policy   string
		Eligible bool
		Match    string
		Decision Decision
		Line     int
		Reasons  []ReasonCode
	}
	var rows []row
	for _, tr := range got.Trace {
		r := row{Policy: tr.Policy, Eligible: tr.Eligible, Match: tr.Match, Decision: tr.Decision, Line: tr.Range.Start.Line}
		for _, x := range tr.Reasons {
			r.Reasons = append(r.Reasons, x.Code)
		}
		rows = append(rows, r)
	}
	wantRows := []row{
		{Policy: "db-self", Eligible: true, Match: "user:bob@example.com is listed", Decision: DecisionDenied, Line: 6,
			Reasons: []ReasonCode{ReasonDurationExceedsMax}},
		{Policy: "db-oncall", Eligible: true, Match: "member of group:sre@example.com", Decision: DecisionNeedsApproval, Line: 13},
	}
	if diff := cmp.Diff(wantRows, rows); diff != "" {
		t.Errorf("trace mismatch (-want +got):\n%s", diff)
	}
	if got.Trace[1].AutoApprove != AutoApproveFalse {
		t.Errorf("db-oncall auto_approve = %q, want false", got.Trace[1].AutoApprove)
	}

	// A break-glass denial still traces the policies, for explain.
	bg := Evaluate(set, Request{Requester: model.MustPrincipal("user:bg-admin@example.com"), Groups: []model.Principal{devs}, Role: "web"})
	if len(bg.Trace) != 2 || bg.Trace[1].Decision != DecisionAllowed {
		t.Errorf("break-glass trace = %+v, want web-quiet allowed in it", bg.Trace)
	}
}

func TestEvaluateAutoApprove(t *testing.T) {
	const tmpl = `
role "db" {}
jit "p" {
  roles            = ["db"]
  requesters       = ["group:sre@example.com"]
  max_duration     = "1h"
  default_duration = "10m"
  justification    = false
  max_renewals     = 1
  approval {
    approvers    = ["user:lead@example.com"]
    auto_approve = EXPR
  }
}
`
	req := Request{Requester: alice, Groups: []model.Principal{sre, oncal}, Role: "db", Justification: "INC-9 outage", Ticket: "INC-9"}
	tests := []struct {
		name     string
		expr     string
		req      Request
		status   AutoApproveStatus
		errMatch string
	}{
		{name: "constant true", expr: "true", req: req, status: AutoApproveTrue},
		{name: "constant false", expr: "false", req: req, status: AutoApproveFalse},
		{name: "sees the default duration in seconds", expr: "request.duration == 600", req: req, status: AutoApproveTrue},
		{
			name: "sees every field",
			expr: `requester.id == "user:alice@example.com" && request.role == "db" && !request.renewal && ` +
				`request.justification == "INC-9 outage" && request.ticket == "INC-9" && length(requester.groups) == 2`,
			req: req, status: AutoApproveTrue,
		},
		{name: "renewal flag", expr: "!request.renewal", req: Request{Requester: alice, Groups: []model.Principal{sre}, Role: "db", Renewal: true}, status: AutoApproveFalse},
		{name: "no groups is an empty list", expr: "length(requester.groups) == 1", req: Request{Requester: alice, Groups: []model.Principal{sre}, Role: "db"}, status: AutoApproveTrue},
		{name: "regex without a match fails", expr: `regex("^CHG-", request.ticket) != ""`, req: req, status: AutoApproveFailed, errMatch: "did not match"},
		{name: "can() turns failure into false", expr: `can(regex("^CHG-", request.ticket))`, req: req, status: AutoApproveFalse},
		{name: "null result", expr: `request.ticket == "INC-9" ? null : true`, req: req, status: AutoApproveFailed, errMatch: "null"},
		{name: "string that converts to bool", expr: `request.ticket == "INC-9" ? "true" : "false"`, req: req, status: AutoApproveTrue},
		{name: "string that does not convert", expr: `request.ticket == "INC-9" ? "yes" : "false"`, req: req, status: AutoApproveFailed, errMatch: "not true or false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := loadSet(t, strings.Replace(tmpl, "EXPR", tt.expr, 1))
			if set.JIT[0].Approval.AutoApprove == nil {
				t.Fatalf("auto_approve %q was rejected by the decoder", tt.expr)
			}
			got := Evaluate(set, tt.req)
			if got.Trace[0].AutoApprove != tt.status {
				t.Fatalf("auto_approve status = %q, want %q (error %q)", got.Trace[0].AutoApprove, tt.status, got.Trace[0].AutoApproveError)
			}
			wantDecision := DecisionNeedsApproval
			if tt.status == AutoApproveTrue {
				wantDecision = DecisionAllowed
			}
			if got.Decision != wantDecision || got.AutoApproved != (tt.status == AutoApproveTrue) {
				t.Errorf("decision = %s auto-approved=%v, want %s", got.Decision, got.AutoApproved, wantDecision)
			}
			if tt.status == AutoApproveFailed {
				if len(got.AutoApproveErrors) != 1 || got.AutoApproveErrors[0].Policy != "p" {
					t.Fatalf("AutoApproveErrors = %+v, want one for policy p", got.AutoApproveErrors)
				}
				e := got.AutoApproveErrors[0]
				if !strings.Contains(e.Message, tt.errMatch) || e.Message != got.Trace[0].AutoApproveError {
					t.Errorf("error message %q should contain %q and match the trace", e.Message, tt.errMatch)
				}
				if e.Range.Filename != "test.hcl" || e.Range.Start.Line != 12 {
					t.Errorf("error range = %v, want test.hcl line 12", e.Range)
				}
			} else if len(got.AutoApproveErrors) != 0 {
				t.Errorf("unexpected AutoApproveErrors %+v", got.AutoApproveErrors)
			}
		})
	}
}

// TestEvaluateOrderIndependentDecision checks a property of "most
// permissive wins": reordering the policies may change which of two equally
// permissive policies is named, but never the decision.
func TestEvaluateOrderIndependentDecision(t *testing.T) {
	blocks := []string{
		`jit "a" {
  roles = ["db"]
  requesters = ["group:sre@example.com"]
  max_duration = "1h"
}`,
		`jit "b" {
  roles = ["db"]
  requesters = ["group:sre@example.com", "user:bob@example.com"]
  max_duration = "4h"
  ticket_pattern = "^INC-[0-9]+$"
  approval {
    approvers = ["user:lead@example.com"]
    auto_approve = request.duration <= 600
  }
}`,
		`jit "c" {
  roles = ["db"]
  requesters = ["user:bob@example.com"]
  max_duration = "8h"
  justification = false
  max_renewals = 1
  approval { approvers = ["user:lead@example.com"] }
}`,
	}
	requests := []Request{}
	for _, who := range []Request{
		{Requester: bob}, {Requester: alice, Groups: []model.Principal{sre}}, {Requester: bob, Groups: []model.Principal{sre}}, {Requester: eve},
	} {
		for _, d := range []time.Duration{0, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 6 * time.Hour, 9 * time.Hour} {
			for _, just := range []string{"", "why"} {
				for _, ticket := range []string{"", "INC-1"} {
					for _, renewal := range []bool{false, true} {
						r := who
						r.Role, r.Duration, r.Justification, r.Ticket, r.Renewal = "db", d, just, ticket, renewal
						requests = append(requests, r)
					}
				}
			}
		}
	}
	orders := [][]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}
	var sets []*Set
	for _, o := range orders {
		src := `role "db" {}` + "\n"
		for _, i := range o {
			src += blocks[i] + "\n"
		}
		sets = append(sets, loadSet(t, src))
	}
	seen := map[Decision]bool{}
	for _, req := range requests {
		first := Evaluate(sets[0], req)
		seen[first.Decision] = true
		for i, s := range sets[1:] {
			got := Evaluate(s, req)
			if got.Decision != first.Decision {
				t.Fatalf("order %v gives %s, order %v gives %s for %+v", orders[0], first.Decision, orders[i+1], got.Decision, req)
			}
			if got.Decision != DecisionDenied || got.Policy != "" {
				// The decider is eligible and its decision is the result's.
				idx := slices.IndexFunc(got.Trace, func(tr PolicyTrace) bool { return tr.Policy == got.Policy })
				if idx < 0 || !got.Trace[idx].Eligible || got.Trace[idx].Decision != got.Decision {
					t.Fatalf("deciding policy %q is not an eligible policy with decision %s: %+v", got.Policy, got.Decision, got.Trace)
				}
			}
		}
	}
	if len(seen) != 3 {
		t.Errorf("the request grid should reach all three decisions, got %v", seen)
	}
}

func TestEvaluateDoesNotAliasSet(t *testing.T) {
	set := loadSet(t, evalPolicies)
	got := Evaluate(set, Request{Requester: alice, Groups: []model.Principal{sre}, Role: "db", Justification: "x", Ticket: "INC-7"})
	got.Approvers[0] = eve
	again := Evaluate(set, Request{Requester: alice, Groups: []model.Principal{sre}, Role: "db", Justification: "x", Ticket: "INC-7"})
	if !again.Approvers[0].Equal(model.MustPrincipal("group:sre-leads@example.com")) {
		t.Errorf("changing a result changed the set: approvers now %v", again.Approvers)
	}
}
