package gcpemu

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"cloud.google.com/go/iam/apiv1/iampb"
	"google.golang.org/genproto/googleapis/type/expr"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// GCP's allow policy limits.
const (
	// MaxPrincipals is the most principals a policy may hold, counting
	// every appearance in every binding (and audit-log exemptions).
	MaxPrincipals = 1500
	// MaxConditionsPerRoleMember is the most bindings of one role for one
	// principal that differ only by condition.
	MaxConditionsPerRoleMember = 20
	// MaxConditionalBindings is the most conditional role bindings a
	// policy may hold.
	MaxConditionalBindings = 100
)

// withcondMarker joins a role name and the condition hash in the version 1
// view of a conditional binding.
const withcondMarker = "_withcond_"

// service is one of the emulated Resource Manager services.
type service struct {
	kind string // "projects", "folders", "organizations"
	full string // "google.cloud.resourcemanager.v3.Projects"
}

var (
	projectsService      = service{"projects", "google.cloud.resourcemanager.v3.Projects"}
	foldersService       = service{"folders", "google.cloud.resourcemanager.v3.Folders"}
	organizationsService = service{"organizations", "google.cloud.resourcemanager.v3.Organizations"}
)

// checkName validates a resource name for the service.
func (s service) checkName(name string) error {
	id, ok := strings.CutPrefix(name, s.kind+"/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return status.Errorf(codes.InvalidArgument, "Invalid resource name %q: %s expects %s/ID.", name, s.full, s.kind)
	}
	return nil
}

// getIamPolicy serves GetIamPolicy for service s.
func (e *Emulator) getIamPolicy(ctx context.Context, s service, req *iampb.GetIamPolicyRequest) (*iampb.Policy, error) {
	res := req.GetResource()
	if err := s.checkName(res); err != nil {
		return nil, err
	}
	if err := e.inject(ctx, MethodGetIamPolicy, res); err != nil {
		return nil, err
	}
	call := callerOf(ctx)
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.lookupLocked(res, e.autoCreate)
	if r == nil {
		return nil, permissionDenied(MethodGetIamPolicy, res)
	}
	out, err := e.viewLocked(r, req.GetOptions().GetRequestedPolicyVersion())
	e.auditLocked(auditRecord{
		service: s, method: MethodGetIamPolicy, resource: res, caller: call,
		request: req, err: err,
	})
	return out, err
}

// viewLocked returns r's policy as a caller asking for version requested
// sees it; the caller holds mu.
func (e *Emulator) viewLocked(r *resource, requested int32) (*iampb.Policy, error) {
	switch requested {
	case 0, 1, 3:
	default:
		return nil, status.Errorf(codes.InvalidArgument, "Invalid requested policy version %d: valid values are 0, 1 and 3.", requested)
	}
	p := proto.Clone(r.policy).(*iampb.Policy)
	if requested >= 3 || !hasConditions(p) {
		return p, nil
	}
	// The version 1 view: conditions are hidden and each conditional
	// binding's role names a hash of its condition.
	p.Version = 1
	for _, b := range p.Bindings {
		if b.Condition != nil {
			b.Role = b.Role + withcondMarker + conditionHash(b.Role, b.Condition)
			b.Condition = nil
		}
	}
	return p, nil
}

// conditionHash is the 20-hex-digit hash GCP appends to a conditional
// binding's role in version 1 views.
func conditionHash(role string, c *expr.Expr) string {
	h := sha256.New()
	for _, s := range []string{role, c.GetTitle(), c.GetDescription(), c.GetExpression()} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:20]
}

// setIamPolicy serves SetIamPolicy for service s.
func (e *Emulator) setIamPolicy(ctx context.Context, s service, req *iampb.SetIamPolicyRequest) (*iampb.Policy, error) {
	res := req.GetResource()
	if err := s.checkName(res); err != nil {
		return nil, err
	}
	if err := e.inject(ctx, MethodSetIamPolicy, res); err != nil {
		return nil, err
	}
	call := callerOf(ctx)
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.lookupLocked(res, e.autoCreate)
	if r == nil {
		return nil, permissionDenied(MethodSetIamPolicy, res)
	}
	if len(req.GetPolicy().GetEtag()) > 0 {
		e.counters.SetWithEtag++
	} else {
		e.counters.SetWithoutEtag++
	}
	out, delta, err := e.setLocked(r, req.GetPolicy(), req.GetUpdateMask().GetPaths(), true)
	e.auditLocked(auditRecord{
		service: s, method: MethodSetIamPolicy, resource: res, caller: call,
		request: req, err: err, delta: delta,
	})
	return out, err
}

// setLocked validates p and stores it as r's policy, returning the stored
// policy and the binding changes; the caller holds mu. An API call (api)
// is subject to aborted storms and etag checks; an out-of-band edit is not.
func (e *Emulator) setLocked(r *resource, p *iampb.Policy, mask []string, api bool) (*iampb.Policy, *iampb.PolicyDelta, error) {
	if p == nil {
		return nil, nil, status.Error(codes.InvalidArgument, "Request contains an invalid argument: policy is required.")
	}
	switch p.GetVersion() {
	case 0, 1, 3:
	default:
		return nil, nil, status.Errorf(codes.InvalidArgument, "Invalid policy version %d: valid values are 0, 1 and 3.", p.GetVersion())
	}
	if len(mask) == 0 {
		mask = []string{"bindings", "etag"}
	}
	var setBindings, setAudit bool
	for _, path := range mask {
		switch path {
		case "bindings":
			setBindings = true
		case "audit_configs", "auditConfigs":
			setAudit = true
		case "etag", "version":
		default:
			return nil, nil, status.Errorf(codes.InvalidArgument, "Invalid update_mask path %q: allowed paths are bindings, etag, audit_configs and version.", path)
		}
	}
	if api && e.faults.AbortedStorm > 0 {
		e.faults.AbortedStorm--
		e.counters.Aborted++
		return nil, nil, status.Error(codes.Aborted, AbortedMessage)
	}
	if api && len(p.Etag) > 0 && !bytes.Equal(p.Etag, r.policy.Etag) {
		e.counters.Aborted++
		return nil, nil, status.Error(codes.Aborted, AbortedMessage)
	}

	next := proto.Clone(r.policy).(*iampb.Policy)
	if setBindings {
		bindings, err := e.normalizeBindings(r.name, p)
		if err != nil {
			return nil, nil, err
		}
		if p.GetVersion() < 3 && hasConditions(r.policy) {
			// Writing a version 1 policy over one with conditions: with an
			// etag GCP refuses; without one it lets the write destroy every
			// condition on the resource.
			e.counters.V1WriteAttempts++
			if len(p.Etag) > 0 {
				return nil, nil, status.Errorf(codes.InvalidArgument, "The policy of %s has conditional role bindings: set version 3 on the policy to modify it (a version 1 write would drop every condition).", r.name)
			}
		}
		next.Bindings = bindings
	}
	if setAudit {
		next.AuditConfigs = proto.Clone(&iampb.Policy{AuditConfigs: p.GetAuditConfigs()}).(*iampb.Policy).AuditConfigs
	}
	if err := checkLimits(next); err != nil {
		return nil, nil, err
	}
	next.Version = 1
	if hasConditions(next) {
		next.Version = 3
	}
	next.Etag = e.nextEtagLocked()
	delta := policyDelta(r.policy, next)
	r.policy = next
	return proto.Clone(next).(*iampb.Policy), delta, nil
}

// normalizeBindings validates p's bindings and returns them as GCP stores
// them: members deduplicated, bindings with the same role and condition
// merged, empty bindings dropped.
func (e *Emulator) normalizeBindings(res string, p *iampb.Policy) ([]*iampb.Binding, error) {
	type key struct{ role, title, desc, expr string }
	var out []*iampb.Binding
	index := make(map[key]int)
	for _, b := range p.GetBindings() {
		role := b.GetRole()
		if strings.Contains(role, withcondMarker) {
			e.counters.V1WriteAttempts++
			return nil, status.Errorf(codes.InvalidArgument, "Role %s is the version 1 view of a conditional role binding and cannot be written: read the policy with requested_policy_version 3 and write it back with version 3.", role)
		}
		if err := checkRole(role); err != nil {
			return nil, err
		}
		c := b.GetCondition()
		if c != nil {
			if p.GetVersion() < 3 {
				e.counters.V1WriteAttempts++
				return nil, status.Errorf(codes.InvalidArgument, "The policy contains a conditional role binding for %s but has version %d: policies with conditions must set version 3.", role, p.GetVersion())
			}
			if basicRoles[role] && !e.basicConds {
				return nil, status.Errorf(codes.InvalidArgument, "Conditions are not supported for the basic role %s: grant a predefined or custom role with a condition instead.", role)
			}
			for _, m := range b.GetMembers() {
				if m == "allUsers" || m == "allAuthenticatedUsers" {
					return nil, status.Errorf(codes.InvalidArgument, "Conditions are not supported for %s: a conditional role binding must name specific principals.", m)
				}
			}
			if err := e.cel.validate(c); err != nil {
				return nil, status.Errorf(codes.InvalidArgument, "Invalid condition on role binding for %s: %v", role, err)
			}
		}
		k := key{role: role}
		if c != nil {
			k = key{role, c.GetTitle(), c.GetDescription(), c.GetExpression()}
		}
		i, ok := index[k]
		if !ok {
			nb := &iampb.Binding{Role: role}
			if c != nil {
				nb.Condition = &expr.Expr{Title: c.GetTitle(), Description: c.GetDescription(), Expression: c.GetExpression()}
			}
			out = append(out, nb)
			i = len(out) - 1
			index[k] = i
		}
		for _, m := range b.GetMembers() {
			if err := checkMember(m); err != nil {
				return nil, err
			}
			if !slices.Contains(out[i].Members, m) {
				out[i].Members = append(out[i].Members, m)
			}
		}
	}
	return slices.DeleteFunc(out, func(b *iampb.Binding) bool { return len(b.Members) == 0 }), nil
}

// checkRole validates a role name: roles/X, projects/P/roles/X or
// organizations/O/roles/X.
func checkRole(role string) error {
	parts := strings.Split(role, "/")
	switch {
	case len(parts) == 2 && parts[0] == "roles" && parts[1] != "":
	case len(parts) == 4 && (parts[0] == "projects" || parts[0] == "organizations") && parts[1] != "" && parts[2] == "roles" && parts[3] != "":
	default:
		return status.Errorf(codes.InvalidArgument, "Role %q is not a valid role name: use roles/NAME, projects/ID/roles/NAME or organizations/ID/roles/NAME.", role)
	}
	return nil
}

// basicRoles are the legacy basic roles, which GCP refuses to grant with a
// condition.
var basicRoles = map[string]bool{"roles/owner": true, "roles/editor": true, "roles/viewer": true}

// memberPrefixes are the principal types GCP accepts in a binding.
var memberPrefixes = []string{"user:", "serviceAccount:", "group:", "domain:", "deleted:", "principal://", "principalSet://"}

// checkMember validates a principal identifier the way GCP does.
func checkMember(m string) error {
	if m == "allUsers" || m == "allAuthenticatedUsers" {
		return nil
	}
	for _, p := range memberPrefixes {
		if rest, ok := strings.CutPrefix(m, p); ok && rest != "" {
			return nil
		}
	}
	return status.Errorf(codes.InvalidArgument, "The member %s is of an unknown type. Please set a valid type prefix for the member.", m)
}

// checkLimits enforces GCP's size limits on a policy about to be stored.
func checkLimits(p *iampb.Policy) error {
	principals := 0
	conditional := 0
	perRoleMember := make(map[[2]string]int)
	for _, b := range p.Bindings {
		principals += len(b.Members)
		if b.Condition == nil {
			continue
		}
		conditional++
		for _, m := range b.Members {
			perRoleMember[[2]string{b.Role, m}]++
		}
	}
	for _, ac := range p.AuditConfigs {
		for _, lc := range ac.AuditLogConfigs {
			principals += len(lc.ExemptedMembers)
		}
	}
	if principals > MaxPrincipals {
		return status.Errorf(codes.InvalidArgument, "The number of members in the policy (%s) is larger than the maximum allowed size %s.", thousands(principals), thousands(MaxPrincipals))
	}
	if conditional > MaxConditionalBindings {
		return status.Errorf(codes.InvalidArgument, "The number of conditional role bindings in the policy (%d) is larger than the maximum allowed size %d.", conditional, MaxConditionalBindings)
	}
	keys := make([][2]string, 0, len(perRoleMember))
	for k := range perRoleMember {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) })
	for _, k := range keys {
		if n := perRoleMember[k]; n > MaxConditionsPerRoleMember {
			return status.Errorf(codes.InvalidArgument, "The policy binds role %s to member %s with %d different conditions, more than the maximum allowed %d.", k[0], k[1], n, MaxConditionsPerRoleMember)
		}
	}
	return nil
}

// thousands formats n with comma separators, as GCP's messages do.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func hasConditions(p *iampb.Policy) bool {
	for _, b := range p.GetBindings() {
		if b.GetCondition() != nil {
			return true
		}
	}
	return false
}

// grantKey identifies one (role, member, condition) grant of a policy.
type grantKey struct{ role, member, title, desc, expr string }

func grantsOf(p *iampb.Policy) map[grantKey]*iampb.Binding {
	out := make(map[grantKey]*iampb.Binding)
	for _, b := range p.GetBindings() {
		for _, m := range b.Members {
			c := b.GetCondition()
			out[grantKey{b.Role, m, c.GetTitle(), c.GetDescription(), c.GetExpression()}] = b
		}
	}
	return out
}

// policyDelta lists the grants added and removed between two policies, as
// SetIamPolicy audit entries carry them.
func policyDelta(before, after *iampb.Policy) *iampb.PolicyDelta {
	old, cur := grantsOf(before), grantsOf(after)
	var deltas []*iampb.BindingDelta
	add := func(action iampb.BindingDelta_Action, k grantKey, b *iampb.Binding) {
		d := &iampb.BindingDelta{Action: action, Role: k.role, Member: k.member}
		if b.Condition != nil {
			d.Condition = proto.Clone(b.Condition).(*expr.Expr)
		}
		deltas = append(deltas, d)
	}
	for k, b := range cur {
		if _, ok := old[k]; !ok {
			add(iampb.BindingDelta_ADD, k, b)
		}
	}
	for k, b := range old {
		if _, ok := cur[k]; !ok {
			add(iampb.BindingDelta_REMOVE, k, b)
		}
	}
	slices.SortFunc(deltas, func(a, b *iampb.BindingDelta) int {
		return cmp.Or(cmp.Compare(a.Role, b.Role), cmp.Compare(a.Member, b.Member),
			cmp.Compare(a.Action, b.Action), cmp.Compare(a.GetCondition().GetExpression(), b.GetCondition().GetExpression()))
	})
	return &iampb.PolicyDelta{BindingDeltas: deltas}
}

// testIamPermissions serves TestIamPermissions: the caller holds every
// permission it asks about, except on resources faulted PermissionDenied.
func (e *Emulator) testIamPermissions(ctx context.Context, s service, req *iampb.TestIamPermissionsRequest) (*iampb.TestIamPermissionsResponse, error) {
	res := req.GetResource()
	if err := s.checkName(res); err != nil {
		return nil, err
	}
	if err := e.inject(ctx, MethodTestIamPermissions, res); err != nil {
		if status.Code(err) == codes.PermissionDenied {
			return &iampb.TestIamPermissionsResponse{}, nil
		}
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lookupLocked(res, e.autoCreate) == nil {
		return nil, permissionDenied(MethodTestIamPermissions, res)
	}
	return &iampb.TestIamPermissionsResponse{Permissions: slices.Clone(req.GetPermissions())}, nil
}

// ModifyPolicy edits resource's allow policy out of band, as a person in
// the console or another tool would: edit receives the full (version 3)
// policy, the result is validated like a SetIamPolicy (limits, conditions)
// but never aborted, the etag changes and an audit entry names principal
// as the caller. The resource is created if it does not exist.
func (e *Emulator) ModifyPolicy(resource, principal string, edit func(*iampb.Policy)) error {
	s, err := serviceOf(resource)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.lookupLocked(resource, true)
	p := proto.Clone(r.policy).(*iampb.Policy)
	edit(p)
	p.Version = 3
	p.Etag = nil
	_, delta, err := e.setLocked(r, p, []string{"bindings", "audit_configs"}, false)
	if err != nil {
		return fmt.Errorf("modifying policy of %s: %w", resource, err)
	}
	if principal == "" {
		principal = "someone-else@example.com"
	}
	e.auditLocked(auditRecord{
		service: s, method: MethodSetIamPolicy, resource: resource,
		caller:  caller{principal: principal, ip: "203.0.113.7", userAgent: "Cloud Console"},
		request: &iampb.SetIamPolicyRequest{Resource: resource, Policy: p}, delta: delta,
	})
	return nil
}

// serviceOf returns the service that owns a resource name.
func serviceOf(name string) (service, error) {
	for _, s := range []service{projectsService, foldersService, organizationsService} {
		if s.checkName(name) == nil {
			return s, nil
		}
	}
	return service{}, fmt.Errorf("resolving resource %q: %w: use projects/ID, folders/ID or organizations/ID", name, errNoResource)
}
