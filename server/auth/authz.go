package auth

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
)

// Codes of authorization decisions. They appear in HTTP error bodies
// ({"error": {"code": ...}}) and never change meaning.
const (
	// CodeOK is the code of an allowed decision.
	CodeOK = "ok"
	// CodeUnauthenticated: no identity (HTTP 401).
	CodeUnauthenticated = "unauthenticated"
	// CodeBreakglassAccount: the caller is a break-glass account, which
	// can do nothing through elevate.
	CodeBreakglassAccount = "breakglass-account"
	// CodeSelfApproval: the requester tried to approve or deny their own
	// request, directly or through a group.
	CodeSelfApproval = "self-approval"
	// CodeAlreadyApproved: the approver has already decided this grant.
	CodeAlreadyApproved = "already-approved"
	// CodeNotApprover: the caller is not among the policy's approvers.
	CodeNotApprover = "not-approver"
	// CodeNoApproval: the grant's policy has no approval block, or no
	// longer exists, so nobody can approve it.
	CodeNoApproval = "no-approval"
	// CodeNotPending: approve or deny on a grant that is not pending
	// (HTTP 409).
	CodeNotPending = "not-pending"
	// CodeNotGrantee: the caller is neither the grantee nor an admin.
	CodeNotGrantee = "not-grantee"
	// CodeNotRevocable: revoke on a grant that has already ended (HTTP 409).
	CodeNotRevocable = "not-revocable"
	// CodeNotExtendable: extend on a grant that is not live or not
	// just-in-time (HTTP 409).
	CodeNotExtendable = "not-extendable"
	// CodeNotVisible: the caller may not see the grant. Handlers may
	// answer 404 instead, so as not to reveal that it exists.
	CodeNotVisible = "not-visible"
	// CodeAdminOnly: the action is reserved to administrators.
	CodeAdminOnly = "admin-only"
)

// HTTPStatus returns the HTTP status for a decision code: 200 for CodeOK,
// 401 for CodeUnauthenticated, 409 for actions on a grant in the wrong
// state, 403 otherwise.
func HTTPStatus(code string) int {
	switch code {
	case CodeOK:
		return http.StatusOK
	case CodeUnauthenticated:
		return http.StatusUnauthorized
	case CodeNotPending, CodeNotRevocable, CodeNotExtendable:
		return http.StatusConflict
	}
	return http.StatusForbidden
}

func allow() (bool, string, string) { return true, CodeOK, "" }

func deny(code, format string, args ...any) (bool, string, string) {
	return false, code, fmt.Sprintf(format, args...)
}

// gate is the check every decision starts with: an identity is present
// and is not a break-glass account.
func gate(set *policies.Set, id *Identity) (bool, string, string) {
	if id == nil || id.Principal.IsZero() {
		return deny(CodeUnauthenticated, "authentication required: send an Authorization: Bearer header")
	}
	if bg := BreakGlassPolicy(set, id.Principal); bg != nil {
		return deny(CodeBreakglassAccount,
			"%s is a break-glass account of %q: break-glass accounts can do nothing through elevate; they are used directly in an emergency and every use becomes an incident",
			id.Principal, bg.Name)
	}
	return allow()
}

// BreakGlassPolicy returns the break_glass block listing p as an account,
// or nil. Besides the exact principal it matches the same mailbox written
// another way: user:X, serviceAccount:X, gcp:user:X, gcp:serviceAccount:X
// and azure:user:X, since a break-glass account that signs in to the
// identity provider arrives as user:EMAIL.
func BreakGlassPolicy(set *policies.Set, p model.Principal) *policies.BreakGlass {
	if set == nil || p.IsZero() {
		return nil
	}
	key, mail := p.Key(), mailbox(p)
	for _, bg := range set.BreakGlass {
		for _, a := range bg.Accounts {
			if a.Key() == key || (mail != "" && mailbox(a.Principal) == mail) {
				return bg
			}
		}
	}
	return nil
}

// mailbox returns the lowercase email address a principal names, or "".
func mailbox(p model.Principal) string {
	v := p.Value
	switch p.Kind {
	case model.KindUser, model.KindServiceAccount:
	case model.KindGCP:
		kind, rest, _ := strings.Cut(v, ":")
		if kind != "user" && kind != "serviceAccount" {
			return ""
		}
		v = rest
	case model.KindAzure:
		kind, rest, _ := strings.Cut(v, ":")
		if kind != "user" {
			return ""
		}
		v = rest
	default:
		return ""
	}
	if !strings.Contains(v, "@") {
		return ""
	}
	return strings.ToLower(v)
}

// CanRequest decides whether id may ask for a role (or for a renewal)
// at all. Whether a policy makes it eligible for the role is
// policies.Evaluate's decision.
func CanRequest(set *policies.Set, id *Identity) (bool, string, string) {
	return gate(set, id)
}

// CanList decides whether id may list grants; list only those CanView
// allows (FilterVisible).
func CanList(set *policies.Set, id *Identity) (bool, string, string) {
	return gate(set, id)
}

// CanExtend decides whether id may ask to extend grant: only the grantee,
// only a live just-in-time grant. The extension itself is then evaluated
// like a request (policies.Evaluate with Renewal set).
func CanExtend(set *policies.Set, id *Identity, grant *model.Grant) (bool, string, string) {
	if ok, code, msg := gate(set, id); !ok {
		return ok, code, msg
	}
	if !id.Is(grant.Principal) {
		return deny(CodeNotGrantee, "only %s, who holds grant %s, can extend it; request the role yourself instead", grant.Principal, grant.ID)
	}
	if grant.Kind != model.KindJIT {
		return deny(CodeNotExtendable, "grant %s is %s access declared in git; change its expires in the policy repository instead", grant.ID, grant.Kind)
	}
	if !grant.Status.Live() {
		return deny(CodeNotExtendable, "grant %s is %s; only an approved or active grant can be extended", grant.ID, grant.Status)
	}
	return allow()
}

// CanApprove decides whether id may approve grant under policy (the jit
// policy named by grant.Policy in the current set, nil when it is gone):
// the grant is pending, id is a listed approver (directly or through one
// of its groups), id is not the requester, and id has not approved it yet.
func CanApprove(set *policies.Set, id *Identity, grant *model.Grant, policy *policies.JIT) (bool, string, string) {
	return decide(set, id, grant, policy, "approve")
}

// CanDeny decides whether id may deny grant: the same rules as CanApprove.
func CanDeny(set *policies.Set, id *Identity, grant *model.Grant, policy *policies.JIT) (bool, string, string) {
	return decide(set, id, grant, policy, "deny")
}

func decide(set *policies.Set, id *Identity, grant *model.Grant, policy *policies.JIT, verb string) (bool, string, string) {
	if ok, code, msg := gate(set, id); !ok {
		return ok, code, msg
	}
	if id.Is(grant.Principal) {
		if verb == "deny" {
			return deny(CodeSelfApproval, "you requested grant %s, so you cannot decide it; to withdraw the request, revoke it", grant.ID)
		}
		return deny(CodeSelfApproval, "you requested grant %s, so you cannot approve it, even as a member of an approver group; another approver must", grant.ID)
	}
	if grant.Status != model.StatusPending {
		return deny(CodeNotPending, "grant %s is %s, not pending: only a pending request can be approved or denied", grant.ID, grant.Status)
	}
	if policy == nil || policy.Name != grant.Policy {
		return deny(CodeNoApproval, "policy %q of grant %s is not in the loaded policy set, so nobody can %s it", grant.Policy, grant.ID, verb)
	}
	if policy.Approval == nil {
		return deny(CodeNoApproval, "policy %q has no approval block, so its grants need no approver", policy.Name)
	}
	if !IsApprover(id, policy) {
		return deny(CodeNotApprover, "%s is not among the approvers of policy %q (%s)", id.Principal, policy.Name, approverList(policy))
	}
	for _, a := range grant.Approvals {
		if id.Is(a.Approver) {
			if a.Approve {
				return deny(CodeAlreadyApproved, "%s has already approved grant %s; another approver must add the remaining approvals", id.Principal, grant.ID)
			}
			return deny(CodeAlreadyApproved, "%s has already denied grant %s", id.Principal, grant.ID)
		}
	}
	return allow()
}

// IsApprover reports whether id is listed among policy's approvers, as
// itself or through one of its groups. It does not exclude the requester.
func IsApprover(id *Identity, policy *policies.JIT) bool {
	if id == nil || policy == nil || policy.Approval == nil {
		return false
	}
	for _, a := range policy.Approval.Approvers {
		if id.Matches(a.Principal) {
			return true
		}
	}
	return false
}

func approverList(policy *policies.JIT) string {
	var s []string
	for _, a := range policy.Approval.Approvers {
		s = append(s, a.String())
	}
	if len(s) == 0 {
		return "nobody"
	}
	return strings.Join(s, ", ")
}

// ApprovalsSatisfied reports whether grant has the approvals policy asks
// for: min_approvals (at least 1) distinct approvers who approved,
// not counting the requester. A policy without an approval block needs
// none.
func ApprovalsSatisfied(grant *model.Grant, policy *policies.JIT) bool {
	if policy == nil {
		return false // the policy is gone: nothing can satisfy it
	}
	if policy.Approval == nil {
		return true // self-service
	}
	need := max(policy.Approval.MinApprovals, 1)
	return DistinctApprovals(grant) >= need
}

// DistinctApprovals counts the distinct principals that approved grant,
// excluding its requester.
func DistinctApprovals(grant *model.Grant) int {
	seen := map[string]bool{}
	for _, a := range grant.Approvals {
		if !a.Approve || a.Approver.IsZero() || a.Approver.Equal(grant.Principal) {
			continue
		}
		seen[a.Approver.Key()] = true
	}
	return len(seen)
}

// CanRevoke decides whether id may end grant early: the grantee (who may
// also withdraw a pending request) or an admin, while the grant has not
// ended.
func CanRevoke(set *policies.Set, id *Identity, grant *model.Grant) (bool, string, string) {
	if ok, code, msg := gate(set, id); !ok {
		return ok, code, msg
	}
	if !id.Is(grant.Principal) && !id.Admin {
		return deny(CodeNotGrantee, "only %s, who holds grant %s, or an elevate admin can revoke it", grant.Principal, grant.ID)
	}
	if grant.Status.Terminal() {
		return deny(CodeNotRevocable, "grant %s is already %s", grant.ID, grant.Status)
	}
	return allow()
}

// CanView decides whether id may see grant and its history: the grantee,
// an approver of its policy in set, or an admin.
func CanView(set *policies.Set, id *Identity, grant *model.Grant) (bool, string, string) {
	if ok, code, msg := gate(set, id); !ok {
		return ok, code, msg
	}
	if id.Admin || id.Is(grant.Principal) {
		return allow()
	}
	if grant.Kind == model.KindJIT && set != nil && IsApprover(id, set.JITPolicy(grant.Policy)) {
		return allow()
	}
	return deny(CodeNotVisible, "grant %s is visible to its grantee, the approvers of its policy and admins", grant.ID)
}

// FilterVisible returns the grants of grants that id may view, in order.
func FilterVisible(set *policies.Set, id *Identity, grants []*model.Grant) []*model.Grant {
	var out []*model.Grant
	for _, g := range grants {
		if ok, _, _ := CanView(set, id, g); ok {
			out = append(out, g)
		}
	}
	return out
}

// CanDeclare decides whether id may declare a break-glass emergency: any
// authenticated identity that is not itself a break-glass account (the
// person declaring is normally not the account being used).
func CanDeclare(set *policies.Set, id *Identity) (bool, string, string) {
	return gate(set, id)
}

// CanViewIncidents decides whether id may list and read break-glass
// incidents: admins only, since incidents carry source addresses and
// account details.
func CanViewIncidents(set *policies.Set, id *Identity) (bool, string, string) {
	return adminOnly(set, id, "reading break-glass incidents")
}

// CanReviewIncident decides whether id may file a post-incident review:
// admins only.
func CanReviewIncident(set *policies.Set, id *Identity) (bool, string, string) {
	return adminOnly(set, id, "reviewing break-glass incidents")
}

// CanReadPolicies decides whether id may read the loaded policy set and
// its diagnostics: any authenticated identity that is not a break-glass
// account.
func CanReadPolicies(set *policies.Set, id *Identity) (bool, string, string) {
	return gate(set, id)
}

func adminOnly(set *policies.Set, id *Identity, what string) (bool, string, string) {
	if ok, code, msg := gate(set, id); !ok {
		return ok, code, msg
	}
	if !id.Admin {
		return deny(CodeAdminOnly, "%s is reserved to elevate admins", what)
	}
	return allow()
}
