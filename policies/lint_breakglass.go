package policies

import (
	"github.com/elevatehq/elevate/model"
	"strconv"
)

// bgAccountDecl is the first declaration of a break-glass account.
type bgAccountDecl struct {
	bg  *BreakGlass
	ref PrincipalRef
}

// lintBreakGlass runs the rules about break_glass blocks and their accounts.
func (l *linter) lintBreakGlass() {
	accounts := make(map[string]bgAccountDecl)
	for _, b := range l.set.BreakGlass {
		if b == nil {
			continue
		}
		name := quoted(b.Name)
		if !b.Has("review_within") {
			l.diags.errorf(RuleBreakglassMissingReview, b.DeclRange,
				"break_glass "+name+" has no review_within",
				"Every emergency use needs a post-incident review deadline: add review_within, for example review_within = \"24h\".")
		}
		if len(b.Notify) == 0 {
			l.diags.errorf(RuleBreakglassMissingAlert, b.AttrRange("notify"),
				"break_glass "+name+" alerts nobody",
				"Use of a break-glass account must page someone: add notify = [\"NOTIFIER\"] naming at least one notifier block.")
		}
		if !b.SessionRecording {
			l.diags.warnf(RuleBreakglassWithoutRecording, b.AttrRange("session_recording"),
				"break_glass "+name+" does not record sessions",
				"Emergency sessions bypass approval, so the recording is the audit trail: set session_recording = true.")
		}
		if n, limit := len(b.Accounts), l.settings.BreakglassMaxAccounts; n > limit {
			l.diags.errorf(RuleBreakglassTooManyAccounts, b.AttrRange("accounts"),
				"break_glass "+name+" lists "+strconv.Itoa(n)+" accounts, over the breakglass_max_accounts of "+strconv.Itoa(limit),
				"Every break-glass account is a standing path around approval. Keep at most %d (one or two per cloud is typical), or raise breakglass_max_accounts in settings.",
				limit)
		}
		for _, a := range b.Accounts {
			switch {
			case a.IsGroupLike():
				l.diags.errorf(RuleBreakglassAccountShared, a.Range,
					"Break-glass account "+quoted(a.String())+" names more than one person",
					"A group, domain or wildcard makes emergency use unattributable. List individual emergency accounts, one per person.")
			case a.IsServiceAccount():
				l.diags.errorf(RuleBreakglassAccountShared, a.Range,
					"Break-glass account "+quoted(a.String())+" is a service account",
					"Anything holding a service account's keys can use it, so emergency use is unattributable. List individual emergency user accounts instead.")
			}
			first, ok := accounts[a.Key()]
			if !ok {
				accounts[a.Key()] = bgAccountDecl{bg: b, ref: a}
				continue
			}
			if first.bg != b {
				l.diags.errorf(RuleBreakglassAccountShared, a.Range,
					"Break-glass account "+quoted(a.String())+" is also in break_glass "+quoted(first.bg.Name),
					"It is already listed at %s. Give each break_glass block its own accounts so every alert and review points at one procedure.",
					lineOf(first.ref.Range))
			}
		}
	}
	l.requestableAccounts(accounts)
	l.sharedRoles()
}

// requestableAccounts reports break-glass accounts that also appear as jit
// requesters or approvers, or as temporary principals or approvers
// (breakglass-account-requestable).
func (l *linter) requestableAccounts(accounts map[string]bgAccountDecl) {
	if len(accounts) == 0 {
		return
	}
	check := func(refs []PrincipalRef, where string) {
		for _, p := range refs {
			if a, ok := accounts[p.Key()]; ok {
				l.diags.errorf(RuleBreakglassAccountRequestable, p.Range,
					"Break-glass account "+quoted(p.String())+" is one of the "+where,
					"break_glass %q declares it at %s. Break-glass accounts are for emergencies only and must never request, approve or hold everyday access: remove it here and use the person's regular account.",
					a.bg.Name, lineOf(a.ref.Range))
			}
		}
	}
	for _, j := range l.set.JIT {
		if j == nil {
			continue
		}
		check(j.Requesters, "requesters of jit "+quoted(j.Name))
		if j.Approval != nil {
			check(j.Approval.Approvers, "approvers of jit "+quoted(j.Name))
		}
	}
	for _, t := range l.set.Temporary {
		if t != nil {
			check(t.Principals, "principals of temporary "+quoted(t.Name))
			check(t.ApprovedBy, "approvers of temporary "+quoted(t.Name))
		}
	}
}

// lintTargetKey identifies a cloud target regardless of how it is granted:
// an Azure role is the same access whether it comes through PIM or not.
type lintTargetKey struct {
	cloud                    model.Cloud
	scope, role, instanceARN string
}

func keyOfTarget(t model.Target) lintTargetKey {
	return lintTargetKey{t.Cloud, t.Scope, t.Role, t.InstanceARN}
}

// sharedRoles reports break_glass roles that are also reachable through jit
// or temporary, by name or through an identical cloud target
// (role-shared-jit-breakglass). Emergency access that shares a role or a
// binding with everyday access cannot be told apart from it in the cloud,
// and revoking one revokes the other.
func (l *linter) sharedRoles() {
	if len(l.set.BreakGlass) == 0 {
		return
	}
	type grantedBy struct{ kind, name, role string }
	byRole := make(map[string]grantedBy)
	byTarget := make(map[lintTargetKey]grantedBy)
	add := func(role, kind, name string) {
		if _, ok := byRole[role]; ok || role == "" {
			return
		}
		g := grantedBy{kind, name, role}
		byRole[role] = g
		if r := l.roles[role]; r != nil {
			for _, t := range r.Targets() {
				if _, ok := byTarget[keyOfTarget(t)]; !ok {
					byTarget[keyOfTarget(t)] = g
				}
			}
		}
	}
	for _, j := range l.set.JIT {
		if j != nil {
			for _, ref := range j.Roles {
				add(ref.Name, "jit", j.Name)
			}
		}
	}
	for _, t := range l.set.Temporary {
		if t != nil {
			add(t.Role.Name, "temporary", t.Name)
		}
	}
	for _, b := range l.set.BreakGlass {
		if b == nil {
			continue
		}
		for _, ref := range b.Roles {
			if g, ok := byRole[ref.Name]; ok {
				l.diags.errorf(RuleRoleSharedJITBreakglass, firstRange(ref.Range, b.AttrRange("roles")),
					"Role "+quoted(ref.Name)+" is reachable through both "+g.kind+" "+quoted(g.name)+" and break_glass "+quoted(b.Name),
					"Emergency access must not share a role with everyday access, or its use cannot be told apart and revoking one revokes the other. Give break_glass %q a role of its own, or remove %q from %s %q.",
					b.Name, ref.Name, g.kind, g.name)
				continue
			}
			r := l.roles[ref.Name]
			if r == nil {
				continue
			}
			for _, t := range r.Targets() {
				if g, ok := byTarget[keyOfTarget(t)]; ok {
					l.diags.errorf(RuleRoleSharedJITBreakglass, firstRange(ref.Range, b.AttrRange("roles")),
						"Role "+quoted(ref.Name)+" shares target "+quoted(t.String())+" with role "+quoted(g.role)+" of "+g.kind+" "+quoted(g.name),
						"Emergency access must not share a cloud binding with everyday access, or its use cannot be told apart and revoking one revokes the other. Grant break_glass %q through a distinct cloud role or scope.",
						b.Name)
					break
				}
			}
		}
	}
}
