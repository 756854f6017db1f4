package policies

import (
	"slices"
	"strings"
	"time"

	"github.com/elevatehq/elevate/model"
)

// lintTemporaries runs the rules about temporary blocks.
func (l *linter) lintTemporaries() {
	for _, t := range l.set.Temporary {
		if t != nil {
			l.lintTemporary(t)
		}
	}
	l.renewalChains()
}

func (l *linter) lintTemporary(t *Temporary) {
	name := quoted(t.Name)
	switch {
	case !t.Has("expires"):
		l.diags.errorf(RuleTemporaryMissingExpiry, t.DeclRange,
			"temporary "+name+" has no expires",
			"Temporary access needs a hard end: add expires, for example expires = \"2026-12-15T00:00:00Z\".")
	case !t.Starts.IsZero() && !t.Expires.IsZero() && !t.Expires.After(t.Starts):
		l.diags.errorf(RuleTemporaryMissingExpiry, t.AttrRange("expires"),
			"temporary "+name+" expires before it starts",
			"expires (%s) must be later than starts (%s). Fix whichever of the two is wrong.",
			t.Expires.Format(time.RFC3339), t.Starts.Format(time.RFC3339))
	}
	if len(t.ApprovedBy) == 0 {
		l.diags.errorf(RuleTemporaryMissingApproval, t.AttrRange("approved_by"),
			"temporary "+name+" has no approved_by",
			"Access declared in git must name who approved it: add approved_by = [\"user:APPROVER\"] with at least one approver.")
	}
	if strings.TrimSpace(t.Justification) == "" {
		l.diags.errorf(RuleTemporaryMissingApproval, t.AttrRange("justification"),
			"temporary "+name+" has no justification",
			"Access declared in git must say why it exists: add justification = \"...\", ideally with the change or ticket ID.")
	}
	if window := t.Expires.Sub(t.Starts); !t.Starts.IsZero() && !t.Expires.IsZero() && window > l.settings.TemporaryDurationCap {
		l.diags.warnf(RuleTemporaryTooLong, t.AttrRange("expires"),
			"temporary "+name+" lasts "+model.FormatDuration(window)+", over the temporary_duration_cap of "+model.FormatDuration(l.settings.TemporaryDurationCap),
			"Access this long is standing access: shorten the window and renew deliberately when it ends, make it a role assignment managed elsewhere, or raise temporary_duration_cap in settings.")
	}
}

// tempWindow is one temporary grant of a role to a principal.
type tempWindow struct {
	t         *Temporary
	principal PrincipalRef
}

// renewalChains reports temporary blocks for the same principal and role
// whose windows touch or overlap (temporary-renewal-chain): a new block
// written to start when the old one ends is re-approval by reflex.
//
// A temporary without starts begins when it is loaded, which is no later
// than its expiry, so its window is treated as open towards the past: it
// touches every other window of the pair that starts before it expires.
// Blocks without a valid window (no expires, or expires <= starts) are left
// to temporary-missing-expiry. The check sorts each (principal, role) group
// by start and sweeps it once, so it is n log n overall.
func (l *linter) renewalChains() {
	type pairKey struct{ principal, role string }
	groups := make(map[pairKey][]tempWindow)
	var order []pairKey
	for _, t := range l.set.Temporary {
		if t == nil || t.Role.Name == "" || t.Expires.IsZero() || (!t.Starts.IsZero() && !t.Expires.After(t.Starts)) {
			continue
		}
		seen := make(map[string]bool, len(t.Principals))
		for _, p := range t.Principals {
			k := pairKey{p.Key(), t.Role.Name}
			if seen[k.principal] {
				continue
			}
			seen[k.principal] = true
			if _, ok := groups[k]; !ok {
				order = append(order, k)
			}
			groups[k] = append(groups[k], tempWindow{t: t, principal: p})
		}
	}
	reported := make(map[*Temporary]bool)
	for _, k := range order {
		ws := groups[k]
		if len(ws) < 2 {
			continue
		}
		// Zero starts sort first: open towards the past.
		slices.SortStableFunc(ws, func(a, b tempWindow) int { return a.t.Starts.Compare(b.t.Starts) })
		latest := ws[0] // the window reaching furthest so far
		for _, w := range ws[1:] {
			if !w.t.Starts.After(latest.t.Expires) && !reported[w.t] {
				reported[w.t] = true
				l.diags.warnf(RuleTemporaryRenewalChain, firstRange(w.t.AttrRange("starts"), w.t.DeclRange),
					"temporary "+quoted(w.t.Name)+" continues temporary "+quoted(latest.t.Name)+" for "+quoted(w.principal.String()),
					"Both grant role %q to %s and their windows touch or overlap (%s expires %s), so access never lapses for a fresh decision. Extend the original block deliberately instead, or leave a gap so the need is re-examined.",
					k.role, w.principal, latest.t.Name, latest.t.Expires.Format(time.RFC3339))
			}
			if w.t.Expires.After(latest.t.Expires) {
				latest = w
			}
		}
	}
}
