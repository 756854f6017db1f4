package reconcile

import (
	"slices"

	"github.com/elevatehq/elevate/model"
)

// ownerScopes maps a grant ID to the scopes its bindings were last seen or
// recorded in: a grant whose role lost a target still has its binding
// there. The leader keeps it between passes for every grant with a
// binding, so it is compact: scopes are numbered once, and almost every
// grant has exactly one, held as a number in a map of numbers (a slice
// or a map per grant costs several times the memory).
type ownerScopes struct {
	keys  []model.ScopeKey
	index map[model.ScopeKey]int32
	// one maps a grant with one scope to it; more maps a grant with
	// several to them. A grant is in at most one of the two.
	one  map[string]int32
	more map[string][]int32
}

func newOwnerScopes() *ownerScopes {
	return &ownerScopes{index: make(map[model.ScopeKey]int32), one: make(map[string]int32), more: make(map[string][]int32)}
}

// id returns the number of scope k, numbering it if it is new.
func (o *ownerScopes) id(k model.ScopeKey) int32 {
	if i, ok := o.index[k]; ok {
		return i
	}
	i := int32(len(o.keys))
	o.keys = append(o.keys, k)
	o.index[k] = i
	return i
}

// len returns how many grants have a scope.
func (o *ownerScopes) len() int { return len(o.one) + len(o.more) }

// add records that owner has a binding in k. The map keeps owner, so pass
// the grant's own ID string where there is one, not a copy.
func (o *ownerScopes) add(owner string, k model.ScopeKey) {
	i := o.id(k)
	if m, ok := o.more[owner]; ok {
		if !slices.Contains(m, i) {
			o.more[owner] = append(m, i)
		}
		return
	}
	if j, ok := o.one[owner]; ok {
		if j != i {
			delete(o.one, owner)
			o.more[owner] = []int32{j, i}
		}
		return
	}
	o.one[owner] = i
}

// appendTo appends owner's scopes that are not in dst yet to dst.
func (o *ownerScopes) appendTo(dst []model.ScopeKey, owner string) []model.ScopeKey {
	if i, ok := o.one[owner]; ok {
		if k := o.keys[i]; !slices.Contains(dst, k) {
			dst = append(dst, k)
		}
		return dst
	}
	for _, i := range o.more[owner] {
		if k := o.keys[i]; !slices.Contains(dst, k) {
			dst = append(dst, k)
		}
	}
	return dst
}

// has reports whether owner is recorded in k.
func (o *ownerScopes) has(owner string, k model.ScopeKey) bool {
	i, ok := o.index[k]
	if !ok {
		return false
	}
	if j, ok := o.one[owner]; ok {
		return j == i
	}
	return slices.Contains(o.more[owner], i)
}

// observed brings the map up to date with the scopes a pass read: in each,
// the owners of the managed bindings present after the pass are exactly
// the grants recorded there (owners maps each scope read to its owners).
// Scopes the pass did not read keep what was known of them.
func (o *ownerScopes) observed(owners map[model.ScopeKey]map[string]ownerState) {
	if len(owners) == 0 {
		return
	}
	byID := make(map[int32]map[string]ownerState, len(owners))
	for k, m := range owners {
		byID[o.id(k)] = m
	}
	stale := func(owner string, i int32) bool {
		m, ok := byID[i]
		return ok && m[owner]&ownerPresent == 0
	}
	for owner, i := range o.one {
		if stale(owner, i) {
			delete(o.one, owner)
		}
	}
	for owner, m := range o.more {
		kept := slices.DeleteFunc(slices.Clone(m), func(i int32) bool { return stale(owner, i) })
		switch len(kept) {
		case len(m):
		case 0:
			delete(o.more, owner)
		case 1:
			delete(o.more, owner)
			o.one[owner] = kept[0]
		default:
			o.more[owner] = kept
		}
	}
	for k, m := range owners {
		for owner, st := range m {
			if st&ownerPresent != 0 {
				o.add(owner, k)
			}
		}
	}
}

// ownerState is what a pass learned of one grant's bindings in one scope
// it read.
type ownerState uint8

const (
	// ownerPresent: the grant has a managed binding in the scope after
	// the pass's writes.
	ownerPresent ownerState = 1 << iota
	// ownerComplete: every binding desired for the grant in the scope is
	// present with the desired window.
	ownerComplete
)

// ownerStates summarises the managed bindings present in a scope after a
// pass, by owner: which grants have one, and which have every binding
// desired there (the scope's desired bindings) with its window. The keys are the grants' own
// ID strings where the snapshot has the grant, so the summary holds no
// copy of what the cloud returned.
func ownerStates(s *snapshot, desired []model.Binding, present map[model.BindingKey]*model.Binding) map[string]ownerState {
	out := make(map[string]ownerState, max(len(present), len(desired)))
	for _, b := range present {
		owner := b.Owner
		if g := s.grant(owner); g != nil {
			owner = g.ID
		}
		out[owner] |= ownerPresent
	}
	for i := range desired {
		out[desired[i].Owner] |= ownerComplete
	}
	for i := range desired {
		d := &desired[i]
		if b := present[d.Key()]; b == nil || !sameWindow(b, d) {
			out[d.Owner] &^= ownerComplete
		}
	}
	for owner, st := range out {
		if st == 0 {
			delete(out, owner)
		}
	}
	return out
}
