package policies

// gcpBasicRoles are the roles GCP refuses to bind with an IAM Condition.
var gcpBasicRoles = map[string]bool{"roles/owner": true, "roles/editor": true, "roles/viewer": true}

// gcpBasicRoles reports GCP targets of basic roles in roles that jit or
// temporary blocks grant: elevate grants GCP access as conditional bindings
// (the condition carries the expiry), and GCP rejects conditions on basic
// roles, so every such grant would fail at the cloud. Break-glass roles are
// held standing and are not affected.
func (l *linter) gcpBasicRoles() {
	granted := make(map[string]bool)
	for _, j := range l.set.JIT {
		if j == nil {
			continue
		}
		for _, r := range j.Roles {
			granted[r.Name] = true
		}
	}
	for _, t := range l.set.Temporary {
		if t != nil {
			granted[t.Role.Name] = true
		}
	}
	for name := range granted {
		r := l.roles[name]
		if r == nil {
			continue
		}
		for _, t := range r.GCP {
			if t == nil || !gcpBasicRoles[t.Role] {
				continue
			}
			l.diags.errorf(RuleGCPBasicRoleConditional, firstRange(t.RoleRange, t.DeclRange),
				"GCP cannot grant "+quoted(t.Role)+" for a limited time",
				"Role %s is granted by jit or temporary access, which elevate writes as a conditional binding with an expiry, and GCP refuses IAM Conditions on basic roles (roles/owner, roles/editor, roles/viewer). Use predefined or custom roles that carry just the permissions needed (e.g. roles/iam.securityReviewer, roles/logging.viewer).",
				quoted(r.Name))
		}
	}
}
