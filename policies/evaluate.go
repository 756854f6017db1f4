package policies

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/elevatehq/elevate/model"
)

// Request is an access request as the evaluator sees it: who asks, with
// which groups, for which role and how long. The caller resolves groups
// (from the identity provider, a token claim or the command line).
type Request struct {
	Requester model.Principal
	// Groups are the requester's group memberships; they match group
	// requesters of a jit policy.
	Groups []model.Principal
	Role   string
	// Duration is the length asked for; 0 means the policy's
	// default_duration, or its max_duration when it has no default.
	Duration      time.Duration
	Justification string
	Ticket        string
	// Renewal marks a request to extend an existing grant; Renewals is how
	// many renewals that grant has had already.
	Renewal  bool
	Renewals int
}

// ReasonCode is a stable identifier for why a request was denied. The codes
// surface in the API, in `elevate explain` and in test blocks'
// expect_reasons, so they never change meaning.
type ReasonCode string

// Reason codes of request evaluation (POLICY.md, "Request evaluation").
const (
	ReasonNotEligible          ReasonCode = "not-eligible"
	ReasonDurationExceedsMax   ReasonCode = "duration-exceeds-max"
	ReasonJustificationMissing ReasonCode = "justification-missing"
	ReasonTicketInvalid        ReasonCode = "ticket-invalid"
	ReasonRenewalsExhausted    ReasonCode = "renewals-exhausted"
	ReasonBreakglassAccount    ReasonCode = "breakglass-account"
	ReasonUnknownRole          ReasonCode = "unknown-role"
	// ReasonInvalidRequest is a request no policy can judge: a negative
	// duration or renewal count. It is an extension of POLICY.md's list for
	// callers (the API) that build requests from untrusted input.
	ReasonInvalidRequest ReasonCode = "invalid-request"
)

// ReasonCodes lists every reason code, in the order POLICY.md gives them.
var ReasonCodes = []ReasonCode{
	ReasonNotEligible, ReasonDurationExceedsMax, ReasonJustificationMissing, ReasonTicketInvalid,
	ReasonRenewalsExhausted, ReasonBreakglassAccount, ReasonUnknownRole, ReasonInvalidRequest,
}

// Reason is one cause of a denial: a stable code, a sentence for people, and
// the policy (jit or break_glass block) it came from, if any.
type Reason struct {
	Code    ReasonCode
	Message string
	Policy  string
}

// AutoApproveStatus is what a policy's auto_approve expression said.
type AutoApproveStatus string

// Auto-approve outcomes. AutoApproveNotEvaluated covers policies without an
// expression and requests denied before it mattered.
const (
	AutoApproveNotEvaluated AutoApproveStatus = ""
	AutoApproveTrue         AutoApproveStatus = "true"
	AutoApproveFalse        AutoApproveStatus = "false"
	AutoApproveFailed       AutoApproveStatus = "error"
)

// AutoApproveError is an auto_approve expression that failed to evaluate or
// did not give true or false; the request was then not auto-approved.
type AutoApproveError struct {
	Policy  string
	Message string
	// Range is the expression's source, so the error can point at the line.
	Range hcl.Range
}

// PolicyTrace is how one jit policy naming the requested role judged the
// request; `elevate explain` prints it.
type PolicyTrace struct {
	Policy string
	// Range is the jit block's declaration.
	Range hcl.Range
	// Eligible reports whether the requester matched the policy's
	// requesters; Match says how (or lists who would have).
	Eligible bool
	Match    string
	Decision Decision
	// Duration is the effective duration under this policy.
	Duration     time.Duration
	Approvers    []model.Principal
	MinApprovals int
	AutoApprove  AutoApproveStatus
	// AutoApproveError is set when AutoApprove is AutoApproveFailed.
	AutoApproveError string
	Reasons          []Reason
}

// Result is the outcome of evaluating a request against a policy set.
type Result struct {
	Decision Decision
	// Policy names the jit policy that decided. It is empty when no jit
	// policy applied: unknown role, no policy the requester is eligible
	// for, or a break-glass account (the breakglass-account reason names
	// the break_glass block).
	Policy string
	// Duration is the effective duration under the deciding jit policy.
	Duration time.Duration
	// Approvers and MinApprovals are set for DecisionNeedsApproval. The
	// requester never counts toward MinApprovals.
	Approvers    []model.Principal
	MinApprovals int
	// AutoApproved reports whether an auto_approve expression made the
	// decision allowed.
	AutoApproved bool
	// Reasons explain a denial: the deciding policy's failed checks, or one
	// not-eligible reason per policy when the requester matched none.
	Reasons []Reason
	// Trace has one entry per jit policy naming the role, in declaration order.
	Trace []PolicyTrace
	// AutoApproveErrors lists every auto_approve expression that failed
	// while evaluating this request.
	AutoApproveErrors []AutoApproveError
}

// HasReason reports whether the result carries a reason with code.
func (r Result) HasReason(code ReasonCode) bool {
	for _, x := range r.Reasons {
		if x.Code == code {
			return true
		}
	}
	return false
}

// decisionRank orders decisions from most permissive (lowest) to least.
func decisionRank(d Decision) int {
	switch d {
	case DecisionAllowed:
		return 0
	case DecisionNeedsApproval:
		return 1
	}
	return 2
}

// Evaluate decides a request against set: of the jit policies naming the
// role whose requesters match, the most permissive decision wins (allowed,
// then needs_approval, then denied), and among equals the first declared.
// A break-glass account is always denied, whatever the policies say. It is
// a pure function: the same set and request always give the same result.
func Evaluate(set *Set, req Request) Result {
	var res Result
	var denials []Reason
	if bg := breakGlassAccount(set, req.Requester); bg != nil {
		denials = append(denials, Reason{
			Code:   ReasonBreakglassAccount,
			Policy: bg.Name,
			Message: fmt.Sprintf("%s is a break-glass account of %q; break-glass accounts can never request access, they are used directly in an emergency",
				req.Requester, bg.Name),
		})
	}
	if req.Duration < 0 || req.Renewals < 0 {
		denials = append(denials, Reason{Code: ReasonInvalidRequest,
			Message: fmt.Sprintf("the request is malformed: duration (%s) and renewals (%d) must not be negative", req.Duration, req.Renewals)})
	}
	if set.Role(req.Role) == nil {
		denials = append(denials, Reason{Code: ReasonUnknownRole,
			Message: fmt.Sprintf("no role %q is defined; check the spelling or add a role block", req.Role)})
	}
	if len(denials) > 0 {
		// The trace still shows what each policy would have said, so
		// explain can answer "and otherwise?".
		if set.Role(req.Role) != nil {
			res.Trace, res.AutoApproveErrors = traceAll(set, req)
		}
		res.Decision = DecisionDenied
		res.Reasons = denials
		return res
	}

	res.Trace, res.AutoApproveErrors = traceAll(set, req)
	best := -1
	for i, t := range res.Trace {
		if !t.Eligible {
			continue
		}
		if best < 0 || decisionRank(t.Decision) < decisionRank(res.Trace[best].Decision) {
			best = i
		}
	}
	if best < 0 {
		res.Decision = DecisionDenied
		for _, t := range res.Trace {
			res.Reasons = append(res.Reasons, t.Reasons...)
		}
		if len(res.Trace) == 0 {
			res.Reasons = []Reason{{Code: ReasonNotEligible,
				Message: fmt.Sprintf("no jit policy grants role %q, so nobody can request it", req.Role)}}
		}
		return res
	}
	t := res.Trace[best]
	res.Decision = t.Decision
	res.Policy = t.Policy
	res.Duration = t.Duration
	res.Reasons = t.Reasons
	res.AutoApproved = t.AutoApprove == AutoApproveTrue && t.Decision == DecisionAllowed
	if t.Decision == DecisionNeedsApproval {
		res.Approvers = t.Approvers
		res.MinApprovals = t.MinApprovals
	}
	return res
}

// breakGlassAccount returns the break_glass block listing p as an account.
func breakGlassAccount(set *Set, p model.Principal) *BreakGlass {
	if p.IsZero() {
		return nil
	}
	key := p.Key()
	for _, bg := range set.BreakGlass {
		for _, a := range bg.Accounts {
			if a.Key() == key {
				return bg
			}
		}
	}
	return nil
}

func traceAll(set *Set, req Request) ([]PolicyTrace, []AutoApproveError) {
	policies := set.JITForRole(req.Role)
	traces := make([]PolicyTrace, 0, len(policies))
	var errs []AutoApproveError
	for _, j := range policies {
		t, aerr := evaluatePolicy(j, req)
		traces = append(traces, t)
		if aerr != nil {
			errs = append(errs, *aerr)
		}
	}
	return traces, errs
}

// evaluatePolicy judges req against one jit policy. Every failed check is
// reported, not just the first, so a requester can fix them all at once.
func evaluatePolicy(j *JIT, req Request) (PolicyTrace, *AutoApproveError) {
	t := PolicyTrace{Policy: j.Name, Range: j.DeclRange, Decision: DecisionDenied}
	deny := func(code ReasonCode, format string, args ...any) {
		t.Reasons = append(t.Reasons, Reason{Code: code, Policy: j.Name, Message: fmt.Sprintf(format, args...)})
	}

	t.Eligible, t.Match = matchRequesters(j, req)
	if !t.Eligible {
		deny(ReasonNotEligible, "%s is not among the requesters of %q (%s)", req.Requester, j.Name, principalList(j.Requesters))
		return t, nil
	}

	t.Duration = req.Duration
	if t.Duration == 0 {
		t.Duration = j.DefaultDuration
		if t.Duration == 0 {
			t.Duration = j.MaxDuration
		}
	}
	switch {
	case j.MaxDuration <= 0:
		deny(ReasonDurationExceedsMax, "%q has no max_duration, so it grants nothing until one is set", j.Name)
	case t.Duration > j.MaxDuration:
		deny(ReasonDurationExceedsMax, "requested %s is longer than the max_duration of %q (%s); ask for %s or less",
			model.FormatDuration(t.Duration), j.Name, model.FormatDuration(j.MaxDuration), model.FormatDuration(j.MaxDuration))
	}
	if j.Justification && strings.TrimSpace(req.Justification) == "" {
		deny(ReasonJustificationMissing, "%q requires a justification: say why you need the role", j.Name)
	}
	if j.TicketPattern != nil && !j.TicketPattern.MatchString(req.Ticket) {
		if req.Ticket == "" {
			deny(ReasonTicketInvalid, "%q requires a ticket matching %s", j.Name, j.TicketPattern)
		} else {
			deny(ReasonTicketInvalid, "ticket %q does not match the ticket_pattern of %q (%s)", req.Ticket, j.Name, j.TicketPattern)
		}
	}
	if req.Renewal && req.Renewals >= j.MaxRenewals {
		if j.MaxRenewals == 0 {
			deny(ReasonRenewalsExhausted, "%q allows no renewals; request the role again instead", j.Name)
		} else {
			deny(ReasonRenewalsExhausted, "the grant has been renewed %d times and %q allows %d; request the role again instead",
				req.Renewals, j.Name, j.MaxRenewals)
		}
	}
	if len(t.Reasons) > 0 {
		return t, nil
	}

	if j.Approval == nil {
		t.Decision = DecisionAllowed // self-service
		return t, nil
	}
	var aerr *AutoApproveError
	if j.Approval.AutoApprove != nil {
		ok, err := autoApprove(j.Approval.AutoApprove, req, t.Duration)
		switch {
		case err != nil:
			t.AutoApprove = AutoApproveFailed
			t.AutoApproveError = err.Error()
			aerr = &AutoApproveError{Policy: j.Name, Message: err.Error(), Range: j.Approval.AutoApprove.Range()}
		case ok:
			t.AutoApprove = AutoApproveTrue
			t.Decision = DecisionAllowed
			return t, nil
		default:
			t.AutoApprove = AutoApproveFalse
		}
	}
	t.Decision = DecisionNeedsApproval
	for _, a := range j.Approval.Approvers {
		t.Approvers = append(t.Approvers, a.Principal)
	}
	t.MinApprovals = j.Approval.MinApprovals
	return t, aerr
}

// matchRequesters reports whether req's requester is listed in j, directly
// or through one of req.Groups, and says how.
func matchRequesters(j *JIT, req Request) (bool, string) {
	if !req.Requester.IsZero() {
		for _, r := range j.Requesters {
			if r.Equal(req.Requester) {
				return true, fmt.Sprintf("%s is listed", r.Principal)
			}
		}
	}
	for _, r := range j.Requesters {
		if !r.IsGroupLike() {
			continue
		}
		for _, g := range req.Groups {
			if r.Equal(g) {
				return true, fmt.Sprintf("member of %s", r.Principal)
			}
		}
	}
	return false, "not listed; the policy lists " + principalList(j.Requesters)
}

func principalList(ps []PrincipalRef) string {
	if len(ps) == 0 {
		return "nobody"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// autoApprove evaluates an auto_approve expression for req with the
// effective duration. Anything but a known true or false is an error.
func autoApprove(expr hcl.Expression, req Request, dur time.Duration) (bool, error) {
	groups := make([]cty.Value, len(req.Groups))
	for i, g := range req.Groups {
		groups[i] = cty.StringVal(g.String())
	}
	groupList := cty.ListValEmpty(cty.String)
	if len(groups) > 0 {
		groupList = cty.ListVal(groups)
	}
	request := cty.ObjectVal(map[string]cty.Value{
		"role":          cty.StringVal(req.Role),
		"duration":      cty.NumberIntVal(int64(dur / time.Second)),
		"justification": cty.StringVal(req.Justification),
		"ticket":        cty.StringVal(req.Ticket),
		"renewal":       cty.BoolVal(req.Renewal),
	})
	requester := cty.ObjectVal(map[string]cty.Value{
		"id":     cty.StringVal(req.Requester.String()),
		"groups": groupList,
	})
	v, diags := expr.Value(autoApproveContext(request, requester))
	if diags.HasErrors() {
		return false, errors.New(diagsText(diags))
	}
	if !v.IsWhollyKnown() || v.IsNull() {
		return false, fmt.Errorf("auto_approve gave no value (null or unknown), not true or false")
	}
	b, err := convert.Convert(v, cty.Bool)
	if err != nil {
		return false, fmt.Errorf("auto_approve gave %s, not true or false", v.Type().FriendlyName())
	}
	if b.IsNull() || !b.IsKnown() {
		return false, fmt.Errorf("auto_approve gave no value (null or unknown), not true or false")
	}
	return b.True(), nil
}

// diagsText joins HCL error diagnostics into one line.
func diagsText(diags hcl.Diagnostics) string {
	var parts []string
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		// HCL's summaries are generic ("Error in function call"); the
		// detail says what went wrong.
		if d.Detail != "" {
			parts = append(parts, d.Detail)
		} else {
			parts = append(parts, d.Summary)
		}
	}
	return strings.Join(parts, "; ")
}
