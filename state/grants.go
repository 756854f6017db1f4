package state

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/elevatehq/elevate/model"
)

// grantIDRE is what a grant ID may look like: it is written cloud-side as the
// ownership marker, where some clouds allow only letters and digits, so
// generated IDs use only those.
var grantIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newGrantID returns "g" and 16 random base32 characters (80 bits).
func newGrantID() string {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("reading random bytes for a grant ID: %v", err))
	}
	return "g" + idEncoding.EncodeToString(b[:])
}

func validStatus(s model.GrantStatus) bool {
	switch s {
	case model.StatusPending, model.StatusApproved, model.StatusActive, model.StatusExpired,
		model.StatusRevoked, model.StatusDenied, model.StatusFailed:
		return true
	}
	return false
}

func checkChange(c Change) error {
	if c.Actor == "" || c.Action == "" {
		return fmt.Errorf("recording grant change: actor and action are required: %w", ErrInvalid)
	}
	return nil
}

// normGrant puts a grant's times in the stored form.
func normGrant(g model.Grant) model.Grant {
	g.RequestedAt = normTime(g.RequestedAt)
	g.NotBefore = normTime(g.NotBefore)
	g.Starts = normTime(g.Starts)
	g.Expires = normTime(g.Expires)
	g.Updated = normTime(g.Updated)
	if len(g.Approvals) == 0 {
		g.Approvals = nil
	} else {
		as := make([]model.Approval, len(g.Approvals))
		for i, a := range g.Approvals {
			a.At = normTime(a.At)
			as[i] = a
		}
		g.Approvals = as
	}
	return g
}

// checkGrantFields validates what every stored grant must have.
func checkGrantFields(g model.Grant) error {
	var problems []string
	if g.Kind != model.KindJIT && g.Kind != model.KindTemporary {
		problems = append(problems, fmt.Sprintf("kind %q is not jit or temporary", g.Kind))
	}
	if g.Principal.IsZero() {
		problems = append(problems, "principal is missing")
	}
	if g.Role == "" {
		problems = append(problems, "role is missing")
	}
	if !validStatus(g.Status) {
		problems = append(problems, fmt.Sprintf("status %q is not a grant status", g.Status))
	}
	if g.Duration < 0 {
		problems = append(problems, "duration is negative")
	}
	if g.Renewals < 0 {
		problems = append(problems, "renewals is negative")
	}
	if !g.Starts.IsZero() && !g.Expires.IsZero() && !g.Expires.After(g.Starts) {
		problems = append(problems, "expires is not after starts")
	}
	seen := map[string]bool{}
	for _, a := range g.Approvals {
		if a.Approver.IsZero() {
			problems = append(problems, "an approval has no approver")
			continue
		}
		if seen[a.Approver.Key()] {
			return fmt.Errorf("grant %s: %s decided more than once: %w", g.ID, a.Approver, ErrExists)
		}
		seen[a.Approver.Key()] = true
	}
	for _, p := range g.RequesterGroups {
		if p.IsZero() {
			problems = append(problems, "a requester group is empty")
			break
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("grant %s: %s: %w", g.ID, strings.Join(problems, "; "), ErrInvalid)
	}
	return nil
}

// prepareCreate validates a new grant and fills in what the store owns.
func prepareCreate(g model.Grant, c Change, now time.Time) (model.Grant, error) {
	if err := checkChange(c); err != nil {
		return g, err
	}
	if g.ID == "" {
		g.ID = newGrantID()
	} else if !grantIDRE.MatchString(g.ID) {
		return g, fmt.Errorf("creating grant: ID %q may hold only letters, digits, '.', '_' and '-' (at most 128): %w", g.ID, ErrInvalid)
	}
	now = normTime(now)
	if g.RequestedAt.IsZero() {
		g.RequestedAt = now
	}
	for i := range g.Approvals {
		if g.Approvals[i].At.IsZero() {
			g.Approvals[i].At = now
		}
	}
	// The store's copy, so that the caller changing its list later changes
	// neither what is stored nor what is returned; nil stays nil.
	g.RequesterGroups = slices.Clip(slices.Clone(g.RequesterGroups))
	g.Version = 1
	g.Updated = now
	g = normGrant(g)
	if err := checkGrantFields(g); err != nil {
		return g, fmt.Errorf("creating grant: %w", err)
	}
	return g, nil
}

// prepareUpdate validates an update of old to g and returns g as it will be
// stored and the approvals it adds.
func prepareUpdate(old, g model.Grant, c Change, now time.Time) (model.Grant, []model.Approval, error) {
	if err := checkChange(c); err != nil {
		return g, nil, err
	}
	if g.Version != old.Version {
		return g, nil, fmt.Errorf("updating grant %s: it is at version %d, the update was made from version %d: %w", g.ID, old.Version, g.Version, ErrConflict)
	}
	if old.Status.Terminal() {
		return g, nil, fmt.Errorf("updating grant %s: it is %s, and a grant in a terminal status cannot change: %w", g.ID, old.Status, ErrInvalid)
	}
	now = normTime(now)
	for i := range g.Approvals {
		if g.Approvals[i].At.IsZero() {
			g.Approvals[i].At = now
		}
	}
	g = normGrant(g)
	var changed []string
	if g.Kind != old.Kind {
		changed = append(changed, "kind")
	}
	if g.Principal.String() != old.Principal.String() {
		changed = append(changed, "principal")
	}
	if g.Role != old.Role {
		changed = append(changed, "role")
	}
	if g.Policy != old.Policy {
		changed = append(changed, "policy")
	}
	if !g.RequestedAt.Equal(old.RequestedAt) {
		changed = append(changed, "requested_at")
	}
	if !sameGroups(g.RequesterGroups, old.RequesterGroups) {
		changed = append(changed, "requester_groups")
	}
	if len(changed) > 0 {
		return g, nil, fmt.Errorf("updating grant %s: %s cannot change after the request: %w", g.ID, strings.Join(changed, ", "), ErrInvalid)
	}
	if err := checkGrantFields(g); err != nil {
		return g, nil, fmt.Errorf("updating grant: %w", err)
	}
	added, err := mergeApprovals(g.ID, old.Approvals, g.Approvals)
	if err != nil {
		return g, nil, err
	}
	g.Approvals = append(append([]model.Approval(nil), old.Approvals...), added...)
	if len(g.Approvals) == 0 {
		g.Approvals = nil
	}
	g.Version = old.Version + 1
	g.Updated = now
	return g, added, nil
}

// sameGroups reports whether two recorded group lists are the same record:
// both not recorded, or both recorded with the same principals in the same
// order.
func sameGroups(a, b []model.Principal) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	return slices.EqualFunc(a, b, func(x, y model.Principal) bool { return x.String() == y.String() })
}

// mergeApprovals returns the approvals in next that stored does not have.
// Stored approvals cannot be dropped or changed: an approver decides once.
func mergeApprovals(id string, stored, next []model.Approval) ([]model.Approval, error) {
	byKey := map[string]model.Approval{}
	for _, a := range next {
		byKey[a.Approver.Key()] = a
	}
	have := map[string]bool{}
	for _, s := range stored {
		k := s.Approver.Key()
		have[k] = true
		a, ok := byKey[k]
		if !ok {
			return nil, fmt.Errorf("updating grant %s: the update drops the approval by %s, and approvals are never removed: %w", id, s.Approver, ErrInvalid)
		}
		if a.Approve != s.Approve || a.Comment != s.Comment || !a.At.Equal(s.At) {
			return nil, fmt.Errorf("updating grant %s: %s already decided on it at %s: %w", id, s.Approver, s.At.Format(time.RFC3339), ErrExists)
		}
	}
	var added []model.Approval
	for _, a := range next {
		if !have[a.Approver.Key()] {
			added = append(added, a)
		}
	}
	return added, nil
}

// grantEvent is the history entry for storing g (old is nil on creation).
func grantEvent(old *model.Grant, g model.Grant, c Change) GrantEvent {
	ev := GrantEvent{GrantID: g.ID, Version: g.Version, At: g.Updated, Actor: c.Actor, Action: c.Action, Note: c.Note, To: g.Status, Grant: g}
	if old != nil {
		ev.From = old.Status
	}
	return ev
}

// grantAudit is the audit entry for a grant history event.
func grantAudit(ev GrantEvent) AuditEvent {
	data, _ := json.Marshal(struct {
		Version   int64             `json:"version"`
		From      model.GrantStatus `json:"from,omitempty"`
		To        model.GrantStatus `json:"to"`
		Principal string            `json:"principal"`
		Role      string            `json:"role"`
		Note      string            `json:"note,omitempty"`
	}{ev.Version, ev.From, ev.To, ev.Grant.Principal.String(), ev.Grant.Role, ev.Note})
	return AuditEvent{Actor: ev.Actor, Action: "grant." + ev.Action, Subject: "grant/" + ev.GrantID, Data: data}
}

// matchGrant reports whether g passes f; the memory store's filter, and the
// definition the SQL filters must agree with.
func matchGrant(g *model.Grant, f GrantFilter) bool {
	if len(f.Status) > 0 {
		ok := false
		for _, s := range f.Status {
			ok = ok || g.Status == s
		}
		if !ok {
			return false
		}
	}
	if !f.Principal.IsZero() && g.Principal.Key() != f.Principal.Key() {
		return false
	}
	if f.Role != "" && g.Role != f.Role {
		return false
	}
	if !f.ActiveAt.IsZero() && !g.ActiveAt(normTime(f.ActiveAt)) {
		return false
	}
	if !f.UpdatedSince.IsZero() && g.Updated.Before(normTime(f.UpdatedSince)) {
		return false
	}
	return true
}

// checkBinding validates a record and fills in its defaults.
func checkBinding(r BindingRecord, now time.Time) (BindingRecord, error) {
	b := r.Binding
	if b.Target.Cloud == "" || b.Target.Scope == "" || b.Target.Role == "" || b.Principal.IsZero() {
		return r, fmt.Errorf("storing binding %s for %s: cloud, scope, role and principal are required: %w", b.Target, b.Principal, ErrInvalid)
	}
	if r.State == "" {
		r.State = BindingApplied
	}
	if r.State != BindingApplied && r.State != BindingFailed {
		return r, fmt.Errorf("storing binding %s: state %q is not %q or %q: %w", b.Target, r.State, BindingApplied, BindingFailed, ErrInvalid)
	}
	r.Binding.NotBefore = normTime(b.NotBefore)
	r.Binding.Expires = normTime(b.Expires)
	r.Updated = normTime(now)
	return r, nil
}

func checkLeaseArgs(name, holder string, ttl time.Duration) error {
	if name == "" || holder == "" {
		return fmt.Errorf("acquiring lease: name and holder are required: %w", ErrInvalid)
	}
	if ttl <= 0 {
		return fmt.Errorf("acquiring lease %s: ttl must be positive, got %s: %w", name, ttl, ErrInvalid)
	}
	return nil
}
