package gcp

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"
	"google.golang.org/protobuf/proto"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/providers"
)

// PolicyVersion is the allow policy version elevate reads and writes: the
// only one that shows conditions. A version 1 read hides them (conditional
// roles come back as roles/X_withcond_HASH) and writing such a view back
// would destroy every condition on the resource.
const PolicyVersion = 3

// ErrPolicyLimit means a change would take an allow policy past one of
// IAM's limits. It is permanent: room appears only when other bindings go.
var ErrPolicyLimit = errors.New("allow policy limit reached")

// Limits are IAM's limits on one allow policy. elevate checks them before
// writing, so a full policy fails the change that overflows it with a
// clear message instead of the whole write.
type Limits struct {
	// Principals counts every member appearance in every binding; IAM
	// allows 1,500.
	Principals int
	// Groups counts the group: appearances among them; IAM allows 250.
	Groups int
	// Conditional counts bindings with a condition; IAM allows 100.
	Conditional int
	// SameRoleMember counts conditional bindings of one role that name one
	// member; IAM allows 20.
	SameRoleMember int
}

// DefaultLimits are IAM's documented limits.
var DefaultLimits = Limits{Principals: 1500, Groups: 250, Conditional: 100, SameRoleMember: 20}

func (l Limits) orDefault() Limits {
	if l.Principals <= 0 {
		l.Principals = DefaultLimits.Principals
	}
	if l.Groups <= 0 {
		l.Groups = DefaultLimits.Groups
	}
	if l.Conditional <= 0 {
		l.Conditional = DefaultLimits.Conditional
	}
	if l.SameRoleMember <= 0 {
		l.SameRoleMember = DefaultLimits.SameRoleMember
	}
	return l
}

// checkReadable refuses a policy that must not be written back: a version 1
// view of a conditional policy, or a version this code does not know.
func checkReadable(p *iampb.Policy) error {
	if p.GetVersion() > PolicyVersion {
		return fmt.Errorf("the allow policy has version %d; elevate understands versions up to %d and will not rewrite it", p.GetVersion(), PolicyVersion)
	}
	for _, b := range p.GetBindings() {
		if strings.Contains(b.GetRole(), "_withcond_") {
			return fmt.Errorf("the allow policy came back as a version 1 view (role %s hides a condition); refusing to write it back, which would destroy every condition", b.GetRole())
		}
	}
	return nil
}

// window returns the time window of a binding's condition: the canonical
// form for elevate's own bindings, the readable time clauses for others.
// ok is false when no window can be read.
func window(b *iampb.Binding) (notBefore, expires time.Time, ok bool) {
	c := b.GetCondition()
	if c == nil {
		return time.Time{}, time.Time{}, false
	}
	if ownerOf(c) != "" {
		return parseCanonical(c.GetExpression())
	}
	return parseWindow(c.GetExpression())
}

// observe turns an allow policy into bindings: every managed binding (any
// role, one per member; one whose condition was edited out of band comes
// with a zero window so the planner replaces it), and, on the targets asked
// for (all roles when targets is nil), every unconditional binding
// (standing access, zero Expires) and every other conditional binding
// whose time window can be read. Conditional bindings of others without a
// readable window are neither elevate's nor standing access and are left
// out.
func observe(scope model.ScopeKey, p *iampb.Policy, targets []model.Target) []model.Binding {
	byRole := make(map[string]model.Target, len(targets))
	for _, t := range targets {
		if t.ScopeKey() == scope {
			if _, dup := byRole[t.Role]; !dup {
				byRole[t.Role] = t
			}
		}
	}
	targetOf := func(role string) (model.Target, bool) {
		if t, ok := byRole[role]; ok {
			return t, true
		}
		return model.Target{Cloud: scope.Cloud, Scope: scope.Scope, Role: role}, targets == nil
	}
	var out []model.Binding
	for _, b := range p.GetBindings() {
		t, asked := targetOf(b.GetRole())
		c := b.GetCondition()
		owner := ownerOf(c)
		switch {
		case owner != "":
			nb, exp, ok := window(b)
			if !ok {
				nb, exp = time.Time{}, time.Time{}
			}
			for _, m := range b.GetMembers() {
				out = append(out, model.Binding{
					Target: t, Principal: principalFromDescription(c, m), Owner: owner,
					NotBefore: nb, Expires: exp, Native: ok, Raw: c.GetTitle(),
				})
			}
		case !asked:
		case c == nil:
			for _, m := range b.GetMembers() {
				out = append(out, model.Binding{Target: t, Principal: principalOf(m)})
			}
		default:
			nb, exp, ok := window(b)
			if !ok {
				continue
			}
			for _, m := range b.GetMembers() {
				out = append(out, model.Binding{
					Target: t, Principal: principalOf(m), NotBefore: nb, Expires: exp, Native: true, Raw: c.GetTitle(),
				})
			}
		}
	}
	return out
}

// editor applies one batch of changes to a freshly read allow policy. It
// never rebuilds a binding it does not own: those stay the same objects,
// in the same order, so their conditions and any fields this code does not
// know go back byte for byte. The one exception, removing a standing
// member on request, takes only that member out of that binding.
type editor struct {
	scope    model.ScopeKey
	bindings []*iampb.Binding
	now      time.Time
	limits   Limits
	changed  bool
}

func newEditor(scope model.ScopeKey, p *iampb.Policy, now time.Time, limits Limits) *editor {
	return &editor{scope: scope, bindings: slices.Clone(p.GetBindings()), now: now, limits: limits.orDefault()}
}

// policy returns the edited policy to write: version 3, the etag of the
// read, everything else as read.
func (e *editor) policy(read *iampb.Policy) *iampb.Policy {
	out := proto.CloneOf(read)
	out.Bindings = slices.DeleteFunc(slices.Clone(e.bindings), func(b *iampb.Binding) bool { return b == nil })
	out.Version = PolicyVersion
	return out
}

// prune removes elevate's bindings whose condition expired (they are inert
// but count against the limits) and returns how many it removed. Bindings
// of others, and elevate's own whose condition was edited, stay.
func (e *editor) prune() int {
	n := 0
	for i, b := range e.bindings {
		if b == nil || ownerOf(b.GetCondition()) == "" {
			continue
		}
		if _, exp, ok := parseCanonical(b.GetCondition().GetExpression()); ok && !e.now.Before(exp) {
			e.bindings[i] = nil
			e.changed = true
			n++
		}
	}
	return n
}

func sameMember(a, b string) bool { return strings.EqualFold(a, b) }

func hasMember(b *iampb.Binding, member string) bool {
	return slices.ContainsFunc(b.GetMembers(), func(m string) bool { return sameMember(m, member) })
}

// apply performs one change. It either succeeds whole or leaves the policy
// as it was: every edit goes to a working copy that replaces the bindings
// only when the change and the limit check pass.
func (e *editor) apply(c model.Change) (*model.Binding, error) {
	for _, b := range []*model.Binding{c.Old, c.New} {
		if b != nil && b.Target.ScopeKey() != e.scope {
			return nil, fmt.Errorf("%w: binding on %s is not in scope %s", providers.ErrInvalidChange, b.Target, e.scope)
		}
	}
	w := &work{bindings: slices.Clone(e.bindings)}
	var written *model.Binding
	switch {
	case c.Old == nil && c.New != nil:
		b, err := w.create(*c.New)
		if err != nil {
			return nil, err
		}
		written = b
	case c.Old != nil && c.New == nil:
		if err := w.remove(*c.Old, c.Reason); err != nil {
			return nil, err
		}
	case c.Old != nil && c.New != nil:
		if !c.Old.Managed() {
			return nil, fmt.Errorf("%w: refusing to replace %s of %s: it carries no elevate marker", providers.ErrNotOwned, c.Old.Target, c.Old.Principal)
		}
		if c.Old.Owner != c.New.Owner {
			return nil, fmt.Errorf("%w: a replace keeps the owner (old %q, new %q)", providers.ErrInvalidChange, c.Old.Owner, c.New.Owner)
		}
		if err := checkWritable(*c.New); err != nil {
			return nil, err
		}
		if err := w.removeOwned(*c.Old); err != nil {
			return nil, err
		}
		b, err := w.create(*c.New)
		if err != nil {
			return nil, err
		}
		written = b
	default:
		return nil, fmt.Errorf("%w: a change needs an old or a new binding", providers.ErrInvalidChange)
	}
	if !w.changed {
		return written, nil
	}
	if err := e.limits.check(e.scope, e.bindings, w.bindings); err != nil {
		return nil, err
	}
	e.bindings, e.changed = w.bindings, true
	return written, nil
}

// work is the working copy of the bindings for one change. A binding is
// copied (proto.Clone keeps unknown fields) before it is changed, so a
// failed change leaves the editor's bindings untouched.
type work struct {
	bindings []*iampb.Binding
	changed  bool
}

// withoutMember removes member from the binding at i (a copy of it), or
// drops the binding when it was the last member.
func (w *work) withoutMember(i int, member string) {
	b := proto.CloneOf(w.bindings[i])
	b.Members = slices.DeleteFunc(b.Members, func(m string) bool { return sameMember(m, member) })
	if len(b.Members) == 0 {
		b = nil
	}
	w.bindings[i] = b
	w.changed = true
}

func checkWritable(b model.Binding) error {
	if err := checkOwner(b.Owner); err != nil {
		return fmt.Errorf("%w: %w", providers.ErrInvalidChange, err)
	}
	switch {
	case b.Principal.IsZero():
		return fmt.Errorf("%w: binding on %s has no principal", providers.ErrInvalidChange, b.Target)
	case b.Target.Role == "":
		return fmt.Errorf("%w: binding for %s has no role", providers.ErrInvalidChange, b.Principal)
	case b.Expires.IsZero():
		return fmt.Errorf("%w: binding on %s for %s has no expiry: elevate never writes unbounded bindings", providers.ErrInvalidChange, b.Target, b.Principal)
	case !b.NotBefore.IsZero() && !b.NotBefore.Before(b.Expires):
		return fmt.Errorf("%w: binding on %s for %s starts at or after it expires", providers.ErrInvalidChange, b.Target, b.Principal)
	}
	if basicRoles[b.Target.Role] {
		return fmt.Errorf("%w: IAM Conditions cannot be used with the basic role %s, and elevate grants only with a condition: target a predefined or custom role instead", providers.ErrInvalidChange, b.Target.Role)
	}
	m, err := Member(b.Principal)
	if err != nil {
		return fmt.Errorf("%w: %w", providers.ErrInvalidChange, err)
	}
	if m == "allUsers" || m == "allAuthenticatedUsers" {
		return fmt.Errorf("%w: IAM Conditions cannot be used when granting to %s", providers.ErrInvalidChange, m)
	}
	return nil
}

// basicRoles are the legacy roles IAM refuses conditions on.
var basicRoles = map[string]bool{"roles/owner": true, "roles/editor": true, "roles/viewer": true}

// create makes b exist in its requested form: one binding of b's role with
// b's member alone and elevate's condition. An existing binding of the
// same owner, role and member is set to that form in place; any other
// holding the member under the same title loses it.
func (w *work) create(b model.Binding) (*model.Binding, error) {
	if err := checkWritable(b); err != nil {
		return nil, err
	}
	member, _ := Member(b.Principal)
	want := condition(b)
	var holders []int
	for i, x := range w.bindings {
		if x != nil && x.GetRole() == b.Target.Role && x.GetCondition().GetTitle() == want.Title && hasMember(x, member) {
			holders = append(holders, i)
		}
	}
	written := b
	written.Native, written.Raw = true, want.Title
	if len(holders) == 1 && len(w.bindings[holders[0]].GetMembers()) == 1 {
		x := w.bindings[holders[0]]
		if proto.Equal(x.GetCondition(), want) {
			return &written, nil
		}
		x = proto.CloneOf(x)
		x.Condition = want
		w.bindings[holders[0]] = x
		w.changed = true
		return &written, nil
	}
	for _, i := range holders {
		w.withoutMember(i, member)
	}
	w.bindings = append(w.bindings, &iampb.Binding{Role: b.Target.Role, Members: []string{member}, Condition: want})
	w.changed = true
	return &written, nil
}

// remove performs a delete: of elevate's binding when the change names an
// owner, of a standing member when the change says standing-removed.
func (w *work) remove(old model.Binding, reason model.Reason) error {
	if old.Managed() {
		return w.removeOwned(old)
	}
	member, err := Member(old.Principal)
	if err != nil {
		return fmt.Errorf("%w: %w", providers.ErrInvalidChange, err)
	}
	if reason != model.ReasonStandingFixed {
		return fmt.Errorf("%w: refusing to delete %s of %s: it carries no elevate marker", providers.ErrNotOwned, old.Target, old.Principal)
	}
	if !old.Expires.IsZero() || !old.NotBefore.IsZero() {
		return fmt.Errorf("%w: refusing to remove %s of %s as standing access: it is time-bounded", providers.ErrNotOwned, old.Target, old.Principal)
	}
	found, conditional := false, false
	for i, x := range w.bindings {
		if x == nil || x.GetRole() != old.Target.Role || !hasMember(x, member) {
			continue
		}
		if x.GetCondition() != nil {
			conditional = true
			continue
		}
		w.withoutMember(i, member)
		found = true
	}
	if !found && conditional {
		return fmt.Errorf("%w: refusing to remove %s of %s as standing access: the member holds the role only under a condition elevate did not write", providers.ErrNotOwned, old.Target, old.Principal)
	}
	return nil
}

// removeOwned takes old's member out of the bindings titled with old's
// owner on old's role. When some of them have exactly old's window only
// those lose it (a duplicate the planner chose to drop); otherwise all do
// (the window was edited since it was observed). Nothing else is touched;
// a binding already gone is success.
func (w *work) removeOwned(old model.Binding) error {
	if !old.Managed() {
		return fmt.Errorf("%w: refusing to change %s of %s: it carries no elevate marker", providers.ErrNotOwned, old.Target, old.Principal)
	}
	member, err := Member(old.Principal)
	if err != nil {
		return fmt.Errorf("%w: %w", providers.ErrInvalidChange, err)
	}
	title := Title(old.Owner)
	var holders, exact []int
	for i, x := range w.bindings {
		if x == nil || x.GetRole() != old.Target.Role || x.GetCondition().GetTitle() != title || !hasMember(x, member) {
			continue
		}
		holders = append(holders, i)
		nb, exp, ok := parseCanonical(x.GetCondition().GetExpression())
		if !ok {
			nb, exp = time.Time{}, time.Time{}
		}
		if nb.Equal(old.NotBefore) && exp.Equal(old.Expires) {
			exact = append(exact, i)
		}
	}
	if len(exact) > 0 {
		holders = exact
	}
	for _, i := range holders {
		w.withoutMember(i, member)
	}
	return nil
}

// usage counts what the limits count.
type usage struct {
	principals, groups, conditional int
}

func usageOf(bs []*iampb.Binding) usage {
	var u usage
	for _, b := range bs {
		if b == nil {
			continue
		}
		u.principals += len(b.Members)
		for _, m := range b.Members {
			if strings.HasPrefix(m, "group:") {
				u.groups++
			}
		}
		if b.Condition != nil {
			u.conditional++
		}
	}
	return u
}

// sameRoleMember returns the largest number of conditional bindings that
// share one role and member in bs, and that role and member.
func sameRoleMember(bs []*iampb.Binding) (int, string, string) {
	type key struct{ role, member string }
	n := make(map[key]int)
	best, bk := 0, key{}
	for _, b := range bs {
		if b == nil || b.Condition == nil {
			continue
		}
		for _, m := range b.Members {
			k := key{b.Role, strings.ToLower(m)}
			n[k]++
			if n[k] > best {
				best, bk = n[k], k
			}
		}
	}
	return best, bk.role, bk.member
}

// check fails when after is over a limit that before was not over, or
// over it by more: a change may not make a full policy fuller, but a
// policy someone else overfilled can still shrink.
func (l Limits) check(scope model.ScopeKey, before, after []*iampb.Binding) error {
	ub, ua := usageOf(before), usageOf(after)
	over := func(what string, b, a, limit int) error {
		if a > limit && a > b {
			return fmt.Errorf("%w: the allow policy of %s would hold %d %s; IAM allows %d: let other grants end or remove bindings from it before granting more", ErrPolicyLimit, scope.Scope, a, what, limit)
		}
		return nil
	}
	if err := over("principals (each member of each binding counts)", ub.principals, ua.principals, l.Principals); err != nil {
		return err
	}
	if err := over("group principals", ub.groups, ua.groups, l.Groups); err != nil {
		return err
	}
	if err := over("conditional role bindings", ub.conditional, ua.conditional, l.Conditional); err != nil {
		return err
	}
	nb, _, _ := sameRoleMember(before)
	if na, role, member := sameRoleMember(after); na > l.SameRoleMember && na > nb {
		return fmt.Errorf("%w: the allow policy of %s would hold %d conditional bindings of %s for %s; IAM allows %d for one role and member: let some of those grants end first", ErrPolicyLimit, scope.Scope, na, role, member, l.SameRoleMember)
	}
	return nil
}
