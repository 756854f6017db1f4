package reconcile

import (
	"slices"
	"strings"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
)

// Desired returns the bindings that should exist at now: one per target of
// the role of every grant active at now (approved or active, inside its
// window), owned by the grant. Just-in-time and temporary grants are
// treated alike. Grants whose role is not in set yield nothing, so their
// bindings are removed. Bindings come in grant order, then target order.
//
// Times are cut to whole seconds, the precision clouds store: the expiry is
// rounded down and the start up, so a binding never outlasts its grant.
func Desired(set *policies.Set, grants []*model.Grant, now time.Time) []model.Binding {
	out := make([]model.Binding, 0, len(grants))
	eachDesired(set, grants, now, func(b model.Binding) { out = append(out, b) })
	return out
}

// eachDesired calls yield with each binding Desired returns, in order.
func eachDesired(set *policies.Set, grants []*model.Grant, now time.Time, yield func(model.Binding)) {
	targets := make(map[string][]model.Target)
	for _, g := range grants {
		if g == nil || !g.ActiveAt(now) {
			continue
		}
		ts, ok := targets[g.Role]
		if !ok {
			if r := set.Role(g.Role); r != nil {
				ts = uniqueTargets(r.Targets())
			}
			targets[g.Role] = ts
		}
		notBefore, expires, ok := desiredWindow(g)
		if !ok {
			continue
		}
		for _, t := range ts {
			yield(model.Binding{
				Target:    t,
				Principal: g.Principal,
				Owner:     g.ID,
				NotBefore: notBefore,
				Expires:   expires,
			})
		}
	}
}

// desiredWindow returns the window of the bindings of an active grant g in
// whole seconds; false when less than a second of it is left.
func desiredWindow(g *model.Grant) (notBefore, expires time.Time, ok bool) {
	notBefore, expires = ceilSecond(g.Starts), g.Expires.UTC().Truncate(time.Second)
	// Less than a whole second of the window is left once rounded: the
	// cloud cannot hold it, and writing it would be refused.
	return notBefore, expires, notBefore.Before(expires)
}

func ceilSecond(t time.Time) time.Time {
	t = t.UTC()
	if c := t.Truncate(time.Second); !c.Equal(t) {
		return c.Add(time.Second)
	}
	return t
}

func uniqueTargets(ts []model.Target) []model.Target {
	out := ts[:0:0]
	for _, t := range ts {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// Governance says which just-in-time roles include a target and what to do
// with standing access to it.
type Governance struct {
	// Roles are the roles named by a jit policy that include the target,
	// in declaration order.
	Roles []string
	// Remove is set when every one of those roles says standing = "remove";
	// one role that only reports keeps the binding (never clobber on a
	// disagreement).
	Remove bool
	// Exempt are break-glass accounts whose break_glass block declares
	// that they hold one of these roles standing: their standing access is
	// by design, neither reported nor removed.
	Exempt []model.Principal
}

// exempts reports whether p is one of the exempt accounts.
func (g Governance) exempts(p model.Principal) bool {
	if len(g.Exempt) == 0 {
		return false
	}
	k := identityKey(p)
	for _, e := range g.Exempt {
		if identityKey(e) == k {
			return true
		}
	}
	return false
}

// identityKey is Principal.Key with the cloud-qualified spellings of
// people and service accounts folded into the generic ones, so that
// "gcp:user:bg@example.com" in a break_glass block matches the member
// "user:bg@example.com" a provider reports.
func identityKey(p model.Principal) string {
	switch p.Kind {
	case model.KindGCP:
		for _, k := range []model.PrincipalKind{model.KindUser, model.KindServiceAccount, model.KindGroup} {
			if v, ok := strings.CutPrefix(p.Value, string(k)+":"); ok {
				return model.Principal{Kind: k, Value: v}.Key()
			}
		}
	case model.KindAzure:
		if v, ok := strings.CutPrefix(p.Value, "user:"); ok {
			return model.Principal{Kind: model.KindUser, Value: v}.Key()
		}
	}
	return p.Key()
}

// Governed maps each target of a role that a jit policy grants to its
// governance: the targets where standing access is a finding.
type Governed map[model.Target]Governance

// GovernedTargets returns the targets of every role some jit policy names,
// with the break-glass accounts declared to hold them standing.
func GovernedTargets(set *policies.Set) Governed {
	out := make(Governed)
	for _, r := range set.Roles {
		if set.Role(r.Name) != r || len(set.JITForRole(r.Name)) == 0 {
			continue // a duplicate declaration, or not granted just in time
		}
		remove := r.Standing == policies.StandingRemove
		for _, t := range uniqueTargets(r.Targets()) {
			g, seen := out[t]
			g.Roles = append(g.Roles, r.Name)
			g.Remove = remove && (!seen || g.Remove)
			out[t] = g
		}
	}
	for _, bg := range set.BreakGlass {
		for _, ref := range bg.Roles {
			r := set.Role(ref.Name)
			if r == nil {
				continue
			}
			for _, t := range uniqueTargets(r.Targets()) {
				g, ok := out[t]
				if !ok {
					continue
				}
				for _, a := range bg.Accounts {
					if !g.exempts(a.Principal) {
						g.Exempt = append(g.Exempt, a.Principal)
					}
				}
				out[t] = g
			}
		}
	}
	return out
}

func (g Governance) roleList() string {
	if len(g.Roles) == 1 {
		return "role " + g.Roles[0] + " is"
	}
	return "roles " + strings.Join(g.Roles, ", ") + " are"
}
