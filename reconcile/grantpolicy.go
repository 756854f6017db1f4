package reconcile

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
)

// Actors the engine records in grant history and the audit log.
const (
	// ActorReconcile makes the status changes that follow the cloud:
	// activate, expire, fail, and every binding write.
	ActorReconcile = "elevate:reconcile"
	// ActorPolicy makes the changes the policy set asks for: temporary
	// grants declared, updated and withdrawn, jit grants revoked or clamped
	// after a policy change.
	ActorPolicy = "elevate:policy"
)

// ReasonTemporaryRemoved starts the Reason of a temporary grant revoked
// because its block (or its principal in the block) left the policy set.
// Such a grant is declared again, as a new generation, if the block comes
// back; a grant revoked by a person is not.
const ReasonTemporaryRemoved = "temporary block removed from the policy set"

// GrantOpKind says what a GrantOp does to the store.
type GrantOpKind string

// Kinds of grant operations.
const (
	OpCreate GrantOpKind = "create"
	OpUpdate GrantOpKind = "update"
	OpRevoke GrantOpKind = "revoke"
)

// GrantOp is one change the policy set asks of the stored grants. Grant is
// the grant as it should be stored: for updates and revokes the live grant
// with its Version, so the store's optimistic concurrency refuses the
// change if someone else changed the grant first.
type GrantOp struct {
	Kind  GrantOpKind
	Grant model.Grant
	// Action and Note become the history event (actor ActorPolicy).
	Action string
	Note   string
}

// TemporaryDecl is one principal of one temporary block: one grant.
type TemporaryDecl struct {
	Block     *policies.Temporary
	Principal model.Principal
	// BaseID is the ID of the first generation of the grant.
	BaseID string
}

// TemporaryGrantID returns the ID of generation gen (1, 2, …) of the grant
// that temporary block block declares for p: "tmp-" and 16 hex digits of a
// hash of the two, then ".gen" from the second generation on. The same
// block and principal always give the same ID, so re-syncs are idempotent
// and two replicas syncing at once collide on the ID instead of doubling
// the grant. A new generation is made only when the previous grant has
// ended and the block asks for a new window.
func TemporaryGrantID(block string, p model.Principal, gen int) string {
	sum := sha256.Sum256([]byte(block + "\x00" + p.String()))
	id := "tmp-" + hex.EncodeToString(sum[:8])
	if gen > 1 {
		id += "." + strconv.Itoa(gen)
	}
	return id
}

// temporaryBase returns the first-generation ID of a temporary grant ID and
// its generation.
func temporaryBase(id string) (string, int) {
	base, gen, ok := strings.Cut(id, ".")
	if !ok {
		return id, 1
	}
	n, err := strconv.Atoi(gen)
	if err != nil || n < 2 {
		return id, 1
	}
	return base, n
}

// TemporaryDecls lists every principal of every temporary block of set, in
// declaration order. Of blocks sharing a name (an error the loader reports)
// the first counts, as everywhere else in a set; a principal listed twice
// counts once.
func TemporaryDecls(set *policies.Set) []TemporaryDecl {
	var out []TemporaryDecl
	seenBlock := map[string]bool{}
	for _, t := range set.Temporary {
		if seenBlock[t.Name] {
			continue
		}
		seenBlock[t.Name] = true
		seen := map[string]bool{}
		for _, p := range t.Principals {
			if seen[p.Key()] {
				continue
			}
			seen[p.Key()] = true
			out = append(out, TemporaryDecl{Block: t, Principal: p.Principal, BaseID: TemporaryGrantID(t.Name, p.Principal, 1)})
		}
	}
	return out
}

// TemporaryHistory is what the store holds for a temporary declaration that
// has no live grant: the newest stored generation (nil when there is none)
// and its generation number (0 when none).
type TemporaryHistory struct {
	Latest *model.Grant
	Gen    int
}

// PolicyOps returns the changes the policy set asks of the stored grants at
// now. It is a pure function; the engine applies the result (or, in report
// mode and for `elevate plan`, only shows it).
//
// Temporary blocks: every block × principal is a grant (TemporaryGrantID)
// of kind temporary, approved, over [starts or first seen, expires), with
// the block's approved_by as approvals. A changed window or justification
// updates the live grant; a declaration that is gone revokes it. A
// declaration without a live grant gets one unless its window has ended,
// or the last generation ended and the block still asks for the same
// window (a person revoked it, or it expired: change expires to grant it
// again). history must hold an entry, keyed by BaseID, for every
// declaration without a live grant.
//
// Just-in-time grants are re-evaluated (see ReviewJIT).
//
// live are the live (approved or active) grants. Ops come in a stable order.
func PolicyOps(set *policies.Set, live []model.Grant, history map[string]TemporaryHistory, now time.Time) []GrantOp {
	var ops []GrantOp
	liveTemp := map[string]*model.Grant{} // by base ID
	for i := range live {
		g := &live[i]
		switch g.Kind {
		case model.KindTemporary:
			base, _ := temporaryBase(g.ID)
			liveTemp[base] = g
		case model.KindJIT:
			if op, ok := ReviewJIT(set, *g); ok {
				ops = append(ops, op)
			}
		}
	}
	declared := map[string]bool{}
	for _, d := range TemporaryDecls(set) {
		declared[d.BaseID] = true
		if g := liveTemp[d.BaseID]; g != nil {
			if op, ok := syncLiveTemporary(set, d, *g); ok {
				ops = append(ops, op)
			}
			continue
		}
		if op, ok := declareTemporary(set, d, history[d.BaseID], now); ok {
			ops = append(ops, op)
		}
	}
	var removed []string
	for base := range liveTemp {
		if !declared[base] {
			removed = append(removed, base)
		}
	}
	slices.Sort(removed)
	for _, base := range removed {
		g := *liveTemp[base]
		ops = append(ops, revoke(g, fmt.Sprintf("%s: temporary %q no longer grants %s", ReasonTemporaryRemoved, g.Policy, g.Principal)))
	}
	return ops
}

func revoke(g model.Grant, why string) GrantOp {
	g.Status = model.StatusRevoked
	g.Reason = why
	return GrantOp{Kind: OpRevoke, Grant: g, Action: "revoke", Note: why}
}

// temporaryWindow is the window a declaration asks for, given the start the
// grant was first seen at; ok is false when the block has no usable window.
func temporaryWindow(d TemporaryDecl, firstSeen time.Time) (starts, expires time.Time, ok bool) {
	starts, expires = d.Block.Starts, d.Block.Expires
	if starts.IsZero() {
		starts = firstSeen
	}
	return starts, expires, !expires.IsZero() && expires.After(starts)
}

func approvalsFor(d TemporaryDecl, have []model.Approval, now time.Time) []model.Approval {
	out := slices.Clone(have)
	for _, a := range d.Block.ApprovedBy {
		if slices.ContainsFunc(out, func(x model.Approval) bool { return x.Approver.Key() == a.Key() }) {
			continue
		}
		out = append(out, model.Approval{Approver: a.Principal, At: now, Approve: true,
			Comment: fmt.Sprintf("approved in git (temporary %q)", d.Block.Name)})
	}
	return out
}

// breakGlassAccount returns the break_glass block naming p as an account.
func breakGlassAccount(set *policies.Set, p model.Principal) *policies.BreakGlass {
	for _, bg := range set.BreakGlass {
		for _, a := range bg.Accounts {
			if a.Key() == p.Key() {
				return bg
			}
		}
	}
	return nil
}

// syncLiveTemporary brings a live temporary grant in line with its block.
func syncLiveTemporary(set *policies.Set, d TemporaryDecl, g model.Grant) (GrantOp, bool) {
	if bg := breakGlassAccount(set, d.Principal); bg != nil {
		return revoke(g, fmt.Sprintf("%s is a break-glass account of %q and can never hold temporary access", d.Principal, bg.Name)), true
	}
	if d.Block.Role.Name != g.Role {
		return revoke(g, fmt.Sprintf("temporary %q now names role %q instead of %q; the new role gets a new grant once this one has ended", d.Block.Name, d.Block.Role.Name, g.Role)), true
	}
	starts, expires, ok := temporaryWindow(d, g.Starts)
	if !ok {
		return revoke(g, fmt.Sprintf("temporary %q no longer has a window that ends after it starts", d.Block.Name)), true
	}
	next := g
	next.Starts, next.Expires = starts, expires
	next.NotBefore = d.Block.Starts
	next.Duration = expires.Sub(starts)
	next.Justification = d.Block.Justification
	next.Approvals = approvalsFor(d, g.Approvals, time.Time{})
	var changed []string
	if !next.Starts.Equal(g.Starts) {
		changed = append(changed, fmt.Sprintf("starts %s → %s", fmtTime(g.Starts), fmtTime(next.Starts)))
	}
	if !next.Expires.Equal(g.Expires) {
		changed = append(changed, fmt.Sprintf("expires %s → %s", fmtTime(g.Expires), fmtTime(next.Expires)))
	}
	if next.Justification != g.Justification {
		changed = append(changed, "justification")
	}
	if len(next.Approvals) != len(g.Approvals) {
		changed = append(changed, "approved_by")
	}
	if len(changed) == 0 && next.NotBefore.Equal(g.NotBefore) && next.Duration == g.Duration {
		return GrantOp{}, false
	}
	action := "update"
	if next.Expires.After(g.Expires) {
		action = "extend"
	}
	note := fmt.Sprintf("temporary %q changed: %s", d.Block.Name, strings.Join(changed, ", "))
	if len(changed) == 0 {
		note = fmt.Sprintf("temporary %q: window recorded as declared", d.Block.Name)
	}
	return GrantOp{Kind: OpUpdate, Grant: next, Action: action, Note: note}, true
}

// declareTemporary creates the grant of a declaration that has no live one.
func declareTemporary(set *policies.Set, d TemporaryDecl, h TemporaryHistory, now time.Time) (GrantOp, bool) {
	if breakGlassAccount(set, d.Principal) != nil || set.Role(d.Block.Role.Name) == nil {
		return GrantOp{}, false // lint errors; never grant them
	}
	starts, expires, ok := temporaryWindow(d, now)
	if !ok || !now.Before(expires) {
		return GrantOp{}, false
	}
	gen := 1
	if last := h.Latest; last != nil {
		if !last.Status.Terminal() {
			return GrantOp{}, false // live, but not in the caller's list: next sync
		}
		sameWindow := last.Expires.Equal(expires) && (d.Block.Starts.IsZero() || last.Starts.Equal(d.Block.Starts))
		removed := last.Status == model.StatusRevoked && strings.HasPrefix(last.Reason, ReasonTemporaryRemoved)
		if sameWindow && !removed && last.Role == d.Block.Role.Name {
			return GrantOp{}, false
		}
		gen = h.Gen + 1
	}
	g := model.Grant{
		ID:            TemporaryGrantID(d.Block.Name, d.Principal, gen),
		Kind:          model.KindTemporary,
		Principal:     d.Principal,
		Role:          d.Block.Role.Name,
		Policy:        d.Block.Name,
		Status:        model.StatusApproved,
		Justification: d.Block.Justification,
		Duration:      expires.Sub(starts),
		RequestedAt:   now,
		NotBefore:     d.Block.Starts,
		Starts:        starts,
		Expires:       expires,
		Approvals:     approvalsFor(d, nil, now),
	}
	return GrantOp{Kind: OpCreate, Grant: g, Action: "declare",
		Note: fmt.Sprintf("temporary %q in the policy set, approved by %s", d.Block.Name, approverList(d.Block.ApprovedBy))}, true
}

func approverList(ps []policies.PrincipalRef) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// groupList is a grant's recorded groups for a message.
func groupList(ps []model.Principal) string {
	if len(ps) == 0 {
		return "none"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "(unset)"
	}
	return t.UTC().Format(time.RFC3339)
}

// ReviewJIT re-evaluates a live just-in-time grant against set and returns
// the change it needs, if any:
//
//   - revoked when the principal is now a break-glass account, the role is
//     gone, the grant's policy is gone or no longer names the role, the
//     principal is provably no longer a requester, or the policy now
//     requires a justification or ticket the grant does not carry;
//   - clamped when the policy's max_duration shrank: Expires becomes at
//     most Starts + max_duration × (1 + renewals), counting only the
//     renewals the policy still allows (without renewals that is
//     Starts + max_duration).
//
// Groups: the engine cannot ask the identity provider, so a grant is
// judged by the groups its requester had when it was requested
// (model.Grant.RequesterGroups), exactly as the request was: a policy edit
// that takes those groups (and the principal itself) out of the policy's
// requesters revokes the grant, and the reason names the groups. Removal
// of the person from a group is not seen; the grant then lasts until its
// expiry, which max_duration bounds. A grant that did not record its
// groups (stored before elevate recorded them) is judged as before: a
// policy that lists the principal itself is judged exactly, and one whose
// requesters include groups is assumed to still include the principal
// through them (its other rules are still checked).
//
// A change of approval rules never revokes: the grant was approved under
// the rules of its time.
func ReviewJIT(set *policies.Set, g model.Grant) (GrantOp, bool) {
	if bg := breakGlassAccount(set, g.Principal); bg != nil {
		return revoke(g, fmt.Sprintf("policy change: %s is now a break-glass account of %q, and break-glass accounts can never hold granted access", g.Principal, bg.Name)), true
	}
	if set.Role(g.Role) == nil {
		return revoke(g, fmt.Sprintf("policy change: role %q is no longer defined", g.Role)), true
	}
	pol := set.JITPolicy(g.Policy)
	if pol == nil {
		return revoke(g, fmt.Sprintf("policy change: jit policy %q no longer exists", g.Policy)), true
	}
	if !slices.ContainsFunc(pol.Roles, func(r policies.NameRef) bool { return r.Name == g.Role }) {
		return revoke(g, fmt.Sprintf("policy change: jit policy %q no longer grants role %q", g.Policy, g.Role)), true
	}
	recorded := g.RequesterGroups != nil
	groups := g.RequesterGroups
	if !recorded {
		// Not recorded: assume membership of every group the policy names.
		for _, r := range pol.Requesters {
			if r.IsGroupLike() {
				groups = append(groups, r.Principal)
			}
		}
	}
	res := policies.Evaluate(set, policies.Request{
		Requester: g.Principal, Groups: groups, Role: g.Role,
		Justification: g.Justification, Ticket: g.Ticket,
	})
	var trace *policies.PolicyTrace
	for i := range res.Trace {
		if res.Trace[i].Policy == pol.Name {
			trace = &res.Trace[i]
			break
		}
	}
	if trace == nil || !trace.Eligible {
		why := fmt.Sprintf("policy change: %s is no longer among the requesters of %q", g.Principal, pol.Name)
		if recorded {
			why += fmt.Sprintf(" (groups at request time: %s)", groupList(g.RequesterGroups))
		}
		return revoke(g, why), true
	}
	for _, r := range trace.Reasons {
		switch r.Code {
		case policies.ReasonJustificationMissing, policies.ReasonTicketInvalid:
			return revoke(g, "policy change: "+r.Message), true
		}
	}
	if pol.MaxDuration <= 0 {
		return GrantOp{}, false
	}
	next := g
	limit := pol.MaxDuration * time.Duration(1+min(g.Renewals, pol.MaxRenewals))
	if next.Duration > pol.MaxDuration {
		next.Duration = pol.MaxDuration
	}
	if !g.Starts.IsZero() && g.Expires.After(g.Starts.Add(limit)) {
		next.Expires = g.Starts.Add(limit)
	}
	if next.Duration == g.Duration && next.Expires.Equal(g.Expires) {
		return GrantOp{}, false
	}
	note := fmt.Sprintf("policy change: max_duration of %q is now %s", pol.Name, model.FormatDuration(pol.MaxDuration))
	if !next.Expires.Equal(g.Expires) {
		note += fmt.Sprintf("; expiry moved from %s to %s", fmtTime(g.Expires), fmtTime(next.Expires))
	}
	return GrantOp{Kind: OpUpdate, Grant: next, Action: "clamp", Note: note}, true
}

// ApplyOps returns live with ops applied, the way the store would hold the
// grants afterwards (for plans that must not write), and the grants the ops
// ended (revoked), which still matter to a plan: their bindings go.
func ApplyOps(live []model.Grant, ops []GrantOp) (next, ended []model.Grant) {
	byID := make(map[string]int, len(live))
	next = slices.Clone(live)
	for i, g := range next {
		byID[g.ID] = i
	}
	var drop []int
	for _, op := range ops {
		switch op.Kind {
		case OpCreate:
			next = append(next, op.Grant)
		case OpUpdate:
			if i, ok := byID[op.Grant.ID]; ok {
				next[i] = op.Grant
			}
		case OpRevoke:
			if i, ok := byID[op.Grant.ID]; ok {
				drop = append(drop, i)
				ended = append(ended, op.Grant)
			}
		}
	}
	slices.Sort(drop)
	for k := len(drop) - 1; k >= 0; k-- {
		next = slices.Delete(next, drop[k], drop[k]+1)
	}
	return next, ended
}
