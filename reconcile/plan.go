package reconcile

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/elevatehq/elevate/model"
)

// Plan is the input of one reconcile decision. Compute is a pure function
// of it: no I/O, no clock, the same Changes for the same inputs in any
// order.
type Plan struct {
	// Desired are the bindings that should exist (see Desired).
	Desired []model.Binding
	// Observed are the bindings the providers reported for the scopes
	// being reconciled.
	Observed []model.Binding
	// Governed are the targets where unmanaged standing access is a
	// finding (see GovernedTargets).
	Governed Governed
	// Grants are the grants by ID, including ended ones, so a managed
	// binding's removal can say why.
	Grants map[string]*model.Grant
	// Now is the time the plan is for.
	Now time.Time
	// Scopes, when non-nil, limits the plan to these scopes: the ones that
	// were observed in this pass. Desired bindings elsewhere are left for a
	// pass that observes their scope.
	Scopes map[model.ScopeKey]bool
}

// Compute returns the changes that make the observed bindings match the
// desired ones, and the findings:
//
//   - a desired binding with no observed counterpart is created (granted);
//   - a managed binding whose window differs from the desired one is
//     replaced: tampered when the cloud-side window is wider than the
//     grant's, window-changed when it is narrower (a renewal);
//   - a managed binding that should not exist is deleted, with the reason
//     read from its grant: expired, revoked, inactive, not-started,
//     unknown-grant, or, for a live grant, tampered (another principal or
//     target) or not-desired (the role no longer includes the target); when
//     the grant has a desired binding in the same scope the stray one is
//     replaced by it instead;
//   - an unmanaged binding without expiry on a governed target is a
//     standing finding, and is deleted (standing-removed) when its roles say
//     standing = "remove", unless it belongs to a break-glass account
//     declared to hold the role.
//
// No other unmanaged binding is ever deleted or replaced. Every list is
// sorted.
func (p Plan) Compute() model.Changes {
	var out model.Changes
	inScope := func(t model.Target) bool { return p.Scopes == nil || p.Scopes[t.ScopeKey()] }

	// Index the desired bindings by owner: a grant has one binding per
	// target, so a chain per owner is short and the map hashes one string.
	// Of duplicates (same owner, target and principal) keep the least.
	ix := newDesiredIndex(len(p.Desired))
	for i := range p.Desired {
		d := &p.Desired[i]
		if !d.Managed() || !inScope(d.Target) {
			continue
		}
		if s := ix.insert(p.Desired, int32(i)); s >= 0 && compareBindings(*d, p.Desired[ix.desired[s]]) < 0 {
			ix.desired[s] = int32(i)
		}
	}

	// Match observed managed bindings to desired ones. Among several
	// observed with one key, the one with the desired window wins, then the
	// least; the others are duplicates to delete.
	best := make([]int32, len(ix.desired))
	for i := range best {
		best[i] = -1
	}
	var leftovers []int32 // managed, no desired binding with its key
	for i := range p.Observed {
		o := &p.Observed[i]
		if !inScope(o.Target) {
			continue
		}
		if !o.Managed() {
			p.unmanaged(o, &out)
			continue
		}
		s := ix.find(p.Desired, o)
		if s < 0 {
			leftovers = append(leftovers, int32(i))
			continue
		}
		switch cur := best[s]; {
		case cur < 0:
			best[s] = int32(i)
		case better(o, &p.Observed[cur], &p.Desired[ix.desired[s]]):
			out.Delete = append(out.Delete, change(model.ReasonTampered, &p.Observed[cur], nil))
			best[s] = int32(i)
		default:
			out.Delete = append(out.Delete, change(model.ReasonTampered, o, nil))
		}
	}

	var unmatched []int32 // desired indices with no observed binding
	for s, oi := range best {
		d := &p.Desired[ix.desired[s]]
		switch {
		case oi < 0:
			unmatched = append(unmatched, ix.desired[s])
		case !sameWindow(&p.Observed[oi], d):
			o := &p.Observed[oi]
			reason := model.ReasonWindowChanged
			if wider(o, d) {
				reason = model.ReasonTampered
			}
			out.Replace = append(out.Replace, change(reason, o, d))
		}
	}

	// Managed bindings with no desired counterpart: delete, or pair with a
	// desired binding of the same live grant in the same scope.
	var strays []int32
	for _, oi := range leftovers {
		o := &p.Observed[oi]
		g := p.Grants[o.Owner]
		if g == nil {
			out.Delete = append(out.Delete, change(model.ReasonUnknownOwner, o, nil))
			continue
		}
		if r := p.endReason(g); r != "" {
			out.Delete = append(out.Delete, change(r, o, nil))
			continue
		}
		strays = append(strays, oi)
	}
	used := p.pairStrays(strays, unmatched, &out)
	for _, di := range unmatched {
		if !used[di] {
			out.Create = append(out.Create, change(model.ReasonGranted, nil, &p.Desired[di]))
		}
	}

	sortChanges(out.Create)
	sortChanges(out.Delete)
	sortChanges(out.Replace)
	slices.SortFunc(out.Findings, func(a, b model.Finding) int {
		if c := compareBindings(a.Binding, b.Binding); c != 0 {
			return c
		}
		return cmp.Compare(a.Reason, b.Reason)
	})
	return out
}

// pairStrays handles managed bindings of active grants that match no
// desired binding: one whose grant has an unmatched desired binding in the
// same scope is replaced by it (its member or role was changed out of
// band); the others are deleted. It returns the desired indices it used.
func (p *Plan) pairStrays(strays, unmatched []int32, out *model.Changes) map[int32]bool {
	if len(strays) == 0 {
		return nil
	}
	type ownerScope struct {
		owner string
		scope model.ScopeKey
	}
	owners := make(map[string]bool, len(strays))
	for _, oi := range strays {
		owners[p.Observed[oi].Owner] = true
	}
	pool := make(map[ownerScope][]int32)
	for _, di := range unmatched {
		if d := &p.Desired[di]; owners[d.Owner] {
			k := ownerScope{d.Owner, d.Target.ScopeKey()}
			pool[k] = append(pool[k], di)
		}
	}
	for _, c := range pool {
		slices.SortFunc(c, func(a, b int32) int { return compareBindings(p.Desired[a], p.Desired[b]) })
	}
	slices.SortFunc(strays, func(a, b int32) int { return compareBindings(p.Observed[a], p.Observed[b]) })
	used := make(map[int32]bool)
	for _, oi := range strays {
		o := &p.Observed[oi]
		cands := pool[ownerScope{o.Owner, o.Target.ScopeKey()}]
		pick := int32(-1)
		for _, di := range cands { // prefer the same target (a changed member)
			if !used[di] && p.Desired[di].Target == o.Target {
				pick = di
				break
			}
		}
		if pick < 0 {
			for _, di := range cands {
				if !used[di] {
					pick = di
					break
				}
			}
		}
		if pick >= 0 {
			used[pick] = true
			out.Replace = append(out.Replace, change(model.ReasonTampered, o, &p.Desired[pick]))
			continue
		}
		reason := model.ReasonNotDesired
		if !o.Principal.Equal(p.Grants[o.Owner].Principal) {
			reason = model.ReasonTampered
		}
		out.Delete = append(out.Delete, change(reason, o, nil))
	}
	return used
}

// desiredIndex finds desired bindings by owner, target and principal
// without building a composite key per binding: slots chain per owner.
type desiredIndex struct {
	head    map[string]int32 // owner -> first slot
	next    []int32          // slot -> next slot of the same owner, or -1
	desired []int32          // slot -> index into Plan.Desired
}

func newDesiredIndex(n int) *desiredIndex {
	return &desiredIndex{head: make(map[string]int32, n), next: make([]int32, 0, n), desired: make([]int32, 0, n)}
}

// insert adds desired[di] unless a binding with its owner, target and
// principal is indexed already; it returns that binding's slot, or -1.
func (ix *desiredIndex) insert(desired []model.Binding, di int32) int32 {
	d := &desired[di]
	h, ok := ix.head[d.Owner]
	if !ok {
		h = -1
	}
	for s := h; s >= 0; s = ix.next[s] {
		if x := &desired[ix.desired[s]]; x.Target == d.Target && x.Principal.Equal(d.Principal) {
			return s
		}
	}
	ix.head[d.Owner] = int32(len(ix.desired))
	ix.next = append(ix.next, h)
	ix.desired = append(ix.desired, di)
	return -1
}

// find returns the slot of the desired binding with b's owner, target and
// principal, or -1.
func (ix *desiredIndex) find(desired []model.Binding, b *model.Binding) int32 {
	s, ok := ix.head[b.Owner]
	if !ok {
		return -1
	}
	for ; s >= 0; s = ix.next[s] {
		d := &desired[ix.desired[s]]
		if d.Target == b.Target && d.Principal.Equal(b.Principal) {
			return s
		}
	}
	return -1
}

// unmanaged reports standing access on a governed target, and removes it
// where the roles say so.
func (p *Plan) unmanaged(o *model.Binding, out *model.Changes) {
	gov, ok := p.Governed[o.Target]
	if !ok || !o.Expires.IsZero() || gov.exempts(o.Principal) {
		return
	}
	out.Findings = append(out.Findings, model.Finding{
		Reason:  model.ReasonStanding,
		Binding: *o,
		Message: fmt.Sprintf("%s holds %s on %s without an expiry, but %s granted just in time: remove the assignment or set standing = \"remove\"",
			o.Principal, o.Target.Role, o.Target.Scope, gov.roleList()),
	})
	if gov.Remove {
		out.Delete = append(out.Delete, change(model.ReasonStandingFixed, o, nil))
	}
}

// endReason says why a grant should have no bindings at p.Now, or "" when
// it is active.
func (p *Plan) endReason(g *model.Grant) model.Reason {
	switch g.Status {
	case model.StatusRevoked:
		return model.ReasonRevoked
	case model.StatusExpired:
		return model.ReasonExpired
	case model.StatusApproved, model.StatusActive:
		switch {
		case !g.Expires.IsZero() && !p.Now.Before(g.Expires):
			return model.ReasonExpired
		case g.Starts.IsZero() || p.Now.Before(g.Starts):
			return model.ReasonNotStarted
		}
		return ""
	default: // pending, denied, failed
		return model.ReasonInactive
	}
}

func change(r model.Reason, old, new *model.Binding) model.Change {
	c := model.Change{Reason: r}
	if old != nil {
		b := *old
		c.Old = &b
	}
	if new != nil {
		b := *new
		c.New = &b
	}
	return c
}

func sameWindow(a, b *model.Binding) bool {
	return a.NotBefore.Equal(b.NotBefore) && a.Expires.Equal(b.Expires)
}

// wider reports whether o's window reaches outside d's: it starts earlier or
// ends later (an unbounded side counts as infinitely wide).
func wider(o, d *model.Binding) bool {
	earlier := !d.NotBefore.IsZero() && (o.NotBefore.IsZero() || o.NotBefore.Before(d.NotBefore))
	later := o.Expires.IsZero() || (!d.Expires.IsZero() && o.Expires.After(d.Expires))
	return earlier || later
}

// better reports whether observed a is a better match for desired d than
// observed b.
func better(a, b, d *model.Binding) bool {
	if sa, sb := sameWindow(a, d), sameWindow(b, d); sa != sb {
		return sa
	}
	return compareBindings(*a, *b) < 0
}

// compareBindings is a total order on every field of a binding. It returns
// at the first difference (cmp.Or would evaluate every comparison), which
// matters when sorting thousands of changes.
func compareBindings(a, b model.Binding) int {
	if c := strings.Compare(a.Target.Scope, b.Target.Scope); c != 0 {
		return c
	}
	if c := strings.Compare(a.Target.Role, b.Target.Role); c != 0 {
		return c
	}
	if c := strings.Compare(a.Principal.Value, b.Principal.Value); c != 0 {
		return c
	}
	if c := strings.Compare(a.Owner, b.Owner); c != 0 {
		return c
	}
	if c := a.Expires.Compare(b.Expires); c != 0 {
		return c
	}
	if c := a.NotBefore.Compare(b.NotBefore); c != 0 {
		return c
	}
	return cmp.Or(
		cmp.Compare(a.Target.Cloud, b.Target.Cloud),
		cmp.Compare(a.Principal.Kind, b.Principal.Kind),
		cmp.Compare(a.Target.InstanceARN, b.Target.InstanceARN),
		compareBool(a.Target.PIM, b.Target.PIM),
		compareBool(a.Native, b.Native),
		cmp.Compare(a.Raw, b.Raw),
	)
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	default:
		return 1
	}
}

func compareOpt(a, b *model.Binding) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return compareBindings(*a, *b)
}

func sortChanges(cs []model.Change) {
	slices.SortFunc(cs, func(a, b model.Change) int {
		if c := compareOpt(a.Old, b.Old); c != 0 {
			return c
		}
		if c := compareOpt(a.New, b.New); c != 0 {
			return c
		}
		return cmp.Compare(a.Reason, b.Reason)
	})
}

// ByScope groups changes by the scope they apply to, for the executor's one
// batch per scope. Within a scope deletes come first, then replaces, then
// creates, so size-limited documents (AWS trust policies) make room before
// they grow. Findings are not changes and are left out.
func ByScope(c model.Changes) map[model.ScopeKey][]model.Change {
	out := make(map[model.ScopeKey][]model.Change)
	for _, ch := range c.Delete {
		k := ch.Old.Target.ScopeKey()
		out[k] = append(out[k], ch)
	}
	for _, ch := range c.Replace {
		k := ch.Old.Target.ScopeKey()
		out[k] = append(out[k], ch)
	}
	for _, ch := range c.Create {
		k := ch.New.Target.ScopeKey()
		out[k] = append(out[k], ch)
	}
	return out
}
