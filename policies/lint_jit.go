package policies

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/elevatehq/elevate/model"
)

// lintJIT runs the rules about one jit policy.
func (l *linter) lintJIT(j *JIT) {
	durationCap := l.settings.JITDurationCap
	if !j.Has("max_duration") {
		l.diags.errorf(RuleJITMissingMaxDuration, j.DeclRange,
			"jit "+quoted(j.Name)+" has no max_duration",
			"Every jit grant needs a hard expiry: add max_duration, for example max_duration = \"1h\".")
	}
	if j.MaxDuration > 0 && j.DefaultDuration > j.MaxDuration {
		l.diags.errorf(RuleDefaultExceedsMax, j.AttrRange("default_duration"),
			"default_duration "+model.FormatDuration(j.DefaultDuration)+" exceeds max_duration "+model.FormatDuration(j.MaxDuration),
			"A request without a duration would be refused by its own policy. Lower default_duration to at most %s, or remove it.",
			model.FormatDuration(j.MaxDuration))
	}
	if j.MaxDuration > durationCap {
		l.diags.warnf(RuleJITDurationTooLong, j.AttrRange("max_duration"),
			"max_duration "+model.FormatDuration(j.MaxDuration)+" exceeds the jit_duration_cap of "+model.FormatDuration(durationCap),
			"Just-in-time access this long is standing access in disguise. Shorten max_duration, use a temporary block for a fixed window, or raise jit_duration_cap in settings if this is deliberate.")
	}
	l.renewals(j)
	l.selfApproval(j)
	l.privilegedJIT(j)
}

// renewals reports renewal allowances that stretch a grant past the caps
// (unlimited-renewals). With no renewals the chain is max_duration itself,
// which jit-duration-too-long already covers.
func (l *linter) renewals(j *JIT) {
	s := l.settings
	if j.MaxRenewals <= 0 {
		return
	}
	rng := j.AttrRange("max_renewals")
	if j.MaxRenewals > s.RenewalCap {
		l.diags.warnf(RuleUnlimitedRenewals, rng,
			"max_renewals "+strconv.Itoa(j.MaxRenewals)+" exceeds the renewal_cap of "+strconv.Itoa(s.RenewalCap),
			"Each renewal extends access without a fresh look at why it is needed. Lower max_renewals to at most %d and ask for a new request instead, or raise renewal_cap in settings.",
			s.RenewalCap)
		return
	}
	if j.MaxDuration <= 0 {
		return
	}
	total, ok := chainLength(j.MaxDuration, j.MaxRenewals)
	if !ok || total > s.JITDurationCap {
		l.diags.warnf(RuleUnlimitedRenewals, rng,
			"max_duration "+model.FormatDuration(j.MaxDuration)+" with "+strconv.Itoa(j.MaxRenewals)+" renewals reaches "+formatChain(total, ok)+", over the jit_duration_cap of "+model.FormatDuration(s.JITDurationCap),
			"Renewals chain into standing access: keep max_duration * (1 + max_renewals) within %s by lowering either, or raise jit_duration_cap in settings.",
			model.FormatDuration(s.JITDurationCap))
	}
}

// chainLength returns max*(1+renewals), or false when it overflows.
func chainLength(max time.Duration, renewals int) (time.Duration, bool) {
	n := time.Duration(renewals) + 1
	if max > math.MaxInt64/n {
		return 0, false
	}
	return max * n, true
}

func formatChain(d time.Duration, ok bool) string {
	if !ok {
		return "an unrepresentable length"
	}
	return model.FormatDuration(d)
}

// selfApproval reports approvals that only the requester could satisfy, or
// that nobody can (self-approval). The requester never counts as an
// approver, so a requester who is also one of n individual approvers has
// n-1 possible approvers. Group approvers are opaque here (their members
// are unknown), so an approval naming a group is given the benefit of the
// doubt.
func (l *linter) selfApproval(j *JIT) {
	a := j.Approval
	if a == nil || !hasKey(a.Attrs, "approvers") {
		return // self-service, or a schema error already reported
	}
	approversRange := firstRange(a.Attrs["approvers"], a.DeclRange)
	need := max(a.MinApprovals, 1)
	approvers := make(map[string]PrincipalRef, len(a.Approvers))
	for _, p := range a.Approvers {
		if p.IsGroupLike() {
			return
		}
		if _, ok := approvers[p.Key()]; !ok {
			approvers[p.Key()] = p
		}
	}
	if len(approvers) == 0 {
		l.diags.errorf(RuleSelfApproval, approversRange,
			"Approval in jit "+quoted(j.Name)+" has no approvers",
			"Nobody can approve these requests. List who may approve in approvers, or remove the approval block if the policy is meant to be self-service.")
		return
	}
	if need > len(approvers) {
		l.diags.errorf(RuleSelfApproval, firstRange(a.Attrs["min_approvals"], approversRange),
			"min_approvals "+strconv.Itoa(need)+" exceeds the "+plural(len(approvers), "listed approver"),
			"The approval can never be satisfied. Lower min_approvals to at most %d, or add approvers (a group lets anyone in it approve).",
			len(approvers))
		return
	}
	if len(approvers)-1 >= need {
		return
	}
	for _, r := range j.Requesters {
		p, ok := approvers[r.Key()]
		if !ok {
			continue
		}
		others := len(approvers) - 1
		summary := "Requests from " + quoted(r.String()) + " can only be approved by the requester"
		if others > 0 {
			summary = "Requests from " + quoted(r.String()) + " need " + strconv.Itoa(need) + " approvals but the policy lists " + plural(others, "other approver")
		}
		l.diags.errorf(RuleSelfApproval, firstRange(p.Range, approversRange), summary,
			"%s is both a requester and an approver, and the requester never counts as an approver, so their requests can never be approved by someone else. Add approvers (or a group of approvers), or lower min_approvals.",
			r)
		return
	}
}

// privilegedJIT reports privileged roles handed out without a human in the
// loop (privileged-without-approval) or without a stated reason
// (justification-not-required).
func (l *linter) privilegedJIT(j *JIT) {
	var priv []NameRef
	var why string
	for _, ref := range j.Roles {
		if r := l.roles[ref.Name]; r != nil {
			if reason := l.privilegeReason(r); reason != "" {
				if priv == nil {
					why = reason
				}
				priv = append(priv, ref)
			}
		}
	}
	if len(priv) == 0 {
		return
	}
	role := quoted(priv[0].Name)
	switch {
	case j.Approval == nil:
		l.diags.warnf(RulePrivilegedWithoutApproval, priv[0].Range,
			"Privileged role "+role+" is self-service in jit "+quoted(j.Name),
			"Role %s is admin-level (%s), and anyone in requesters gets it without a second person. Add an approval block, or an auto_approve condition that bounds request.duration.",
			role, why)
	case j.Approval.AutoApprove != nil && !boundsDuration(j.Approval.AutoApprove):
		l.diags.warnf(RulePrivilegedWithoutApproval, firstRange(j.Approval.Attrs["auto_approve"], j.Approval.DeclRange),
			"auto_approve grants privileged role "+role+" without a duration bound",
			"Role %s is admin-level (%s). Bound automatic approval to short sessions, for example request.duration <= 900 && ..., so longer access needs a human approver.",
			role, why)
	}
	if j.Has("justification") && !j.Justification {
		l.diags.warnf(RuleJustificationNotRequired, j.AttrRange("justification"),
			"jit "+quoted(j.Name)+" grants privileged role "+role+" without a justification",
			"Role %s is admin-level (%s): remove justification = false so every request says why it needs that access.",
			role, why)
	}
}

// privilegeReason says why role is admin-level ("privileged = true", or its
// first known admin target), or returns "" when it is not.
func (l *linter) privilegeReason(r *Role) string {
	if why, ok := l.privilegedWhy[r]; ok {
		return why
	}
	why := ""
	if r.Privileged {
		why = "privileged = true"
	} else {
		for _, t := range r.Targets() {
			if isAdminTarget(t) {
				why = "it grants " + t.Role + " on " + t.Scope
				break
			}
		}
	}
	l.privilegedWhy[r] = why
	return why
}

// Azure built-in role definition IDs of the admin roles, for targets that
// name the role by ID rather than by display name.
const (
	azureOwnerID                   = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
	azureUserAccessAdministratorID = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
)

// isAdminTarget reports whether t is one of POLICY.md's known admin roles:
// roles/owner, roles/editor and roles/iam.securityAdmin on GCP,
// AdministratorAccess (as the IAM role or permission set name suffix) on AWS,
// and Owner or User Access Administrator on Azure.
func isAdminTarget(t model.Target) bool {
	switch t.Cloud {
	case model.CloudGCP:
		switch t.Role {
		case "roles/owner", "roles/editor", "roles/iam.securityAdmin":
			return true
		}
	case model.CloudAWS:
		return strings.HasSuffix(t.Role, "AdministratorAccess")
	case model.CloudAzure:
		r := strings.ToLower(strings.TrimSpace(t.Role))
		return r == "owner" || r == "user access administrator" ||
			strings.HasSuffix(r, azureOwnerID) || strings.HasSuffix(r, azureUserAccessAdministratorID)
	}
	return false
}

// boundsDuration reports whether an auto_approve expression looks at
// request.duration (or request["duration"]) at all: the condition then
// limits how long automatically approved access lasts.
func boundsDuration(e hcl.Expression) bool {
	for _, tr := range e.Variables() {
		if tr.RootName() != "request" || len(tr) < 2 {
			continue
		}
		switch step := tr[1].(type) {
		case hcl.TraverseAttr:
			if step.Name == "duration" {
				return true
			}
		case hcl.TraverseIndex:
			k := step.Key
			if k.IsKnown() && !k.IsNull() && k.Type() == cty.String && k.AsString() == "duration" {
				return true
			}
		}
	}
	return false
}

// plural renders "1 thing" or "n things".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return strconv.Itoa(n) + " " + thing + "s"
}
