package policies

import "slices"

// duplicateNames reports the second and later blocks of one kind that share
// a name (duplicate-name). Lookups resolve a name to its first declaration,
// so the later ones are silently shadowed otherwise.
func (l *linter) duplicateNames() {
	s := l.set
	l.duplicatesOf("role", blocksOf(s.Roles, func(r *Role) *Block { return &r.Block }))
	l.duplicatesOf("jit", blocksOf(s.JIT, func(j *JIT) *Block { return &j.Block }))
	l.duplicatesOf("temporary", blocksOf(s.Temporary, func(t *Temporary) *Block { return &t.Block }))
	l.duplicatesOf("break_glass", blocksOf(s.BreakGlass, func(b *BreakGlass) *Block { return &b.Block }))
	l.duplicatesOf("notifier", blocksOf(s.Notifiers, func(n *Notifier) *Block { return &n.Block }))
	l.duplicatesOf("test", blocksOf(s.Tests, func(t *Test) *Block { return &t.Block }))
}

func blocksOf[T any](items []*T, block func(*T) *Block) []*Block {
	out := make([]*Block, 0, len(items))
	for _, it := range items {
		if it != nil {
			out = append(out, block(it))
		}
	}
	return out
}

func (l *linter) duplicatesOf(kind string, blocks []*Block) {
	first := make(map[string]*Block, len(blocks))
	for _, b := range blocks {
		if b.Name == "" {
			continue
		}
		f, ok := first[b.Name]
		if !ok {
			first[b.Name] = b
			continue
		}
		l.diags.errorf(RuleDuplicateName, firstRange(b.NameRange, b.DeclRange),
			"Duplicate "+kind+" name "+quoted(b.Name),
			"A %s named %q is already declared at %s, and names are global across all policy files. Rename or remove one of them.",
			kind, b.Name, lineOf(f.DeclRange))
	}
}

// unknownReferences reports names of roles, notifiers and jit policies that
// no block declares (unknown-reference).
func (l *linter) unknownReferences() {
	for _, j := range l.set.JIT {
		if j == nil {
			continue
		}
		for _, ref := range j.Roles {
			l.checkRole(ref, "jit", j.Name)
		}
	}
	for _, t := range l.set.Temporary {
		if t == nil || t.Role.Name == "" {
			continue
		}
		l.checkRole(NameRef{Name: t.Role.Name, Range: firstRange(t.Role.Range, t.AttrRange("role"))}, "temporary", t.Name)
	}
	for _, b := range l.set.BreakGlass {
		if b == nil {
			continue
		}
		for _, ref := range b.Roles {
			l.checkRole(ref, "break_glass", b.Name)
		}
		for _, ref := range b.Notify {
			if _, ok := l.notifiers[ref.Name]; !ok {
				l.diags.errorf(RuleUnknownReference, firstRange(ref.Range, b.AttrRange("notify")),
					"Unknown notifier "+quoted(ref.Name),
					"break_glass %q notifies %q, but no notifier block has that name. Declare notifier %q or fix the name.",
					b.Name, ref.Name, ref.Name)
			}
		}
	}
	for _, t := range l.set.Tests {
		if t == nil {
			continue
		}
		if t.ExpectPolicy != "" {
			if _, ok := l.jits[t.ExpectPolicy]; !ok {
				l.diags.errorf(RuleUnknownReference, t.AttrRange("expect_policy"),
					"Unknown jit policy "+quoted(t.ExpectPolicy),
					"test %q expects the decision to come from jit %q, but no jit block has that name. Fix the name or remove expect_policy.",
					t.Name, t.ExpectPolicy)
			}
		}
		// A test may deliberately assert that an unknown role is denied.
		role := t.Request.Role
		if role != "" && !slices.Contains(t.ExpectReasons, "unknown-role") {
			if _, ok := l.roles[role]; !ok {
				l.diags.errorf(RuleUnknownReference, firstRange(t.Request.Attrs["role"], t.Request.DeclRange, t.DeclRange),
					"Unknown role "+quoted(role),
					"test %q requests role %q, but no role block has that name. Fix the name, or assert the denial with expect = \"denied\" and expect_reasons = [\"unknown-role\"].",
					t.Name, role)
			}
		}
	}
}

func (l *linter) checkRole(ref NameRef, kind, name string) {
	if _, ok := l.roles[ref.Name]; ok {
		return
	}
	l.diags.errorf(RuleUnknownReference, ref.Range,
		"Unknown role "+quoted(ref.Name),
		"%s %q names role %q, but no role block has that name. Declare role %q or fix the name.",
		kind, name, ref.Name, ref.Name)
}
