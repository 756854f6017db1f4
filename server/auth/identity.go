package auth

import (
	"fmt"
	"strings"

	"github.com/elevatehq/elevate/model"
)

// Authentication methods an Identity can come from.
const (
	MethodOIDC   = "oidc"
	MethodStatic = "static"
	MethodDev    = "dev"
)

// Identity is who made a request, as established by an Authenticator.
type Identity struct {
	// Principal is the caller: user:EMAIL for OIDC, the configured
	// principal for a static token.
	Principal model.Principal
	// Groups are the caller's group memberships (group:NAME principals);
	// they match group requesters and approvers in policies.
	Groups []model.Principal
	// Method is MethodOIDC, MethodStatic or MethodDev.
	Method string
	// Admin reports whether the caller is an elevate administrator (may
	// revoke and view any grant and review incidents).
	Admin bool
	// Subject identifies the credential for audit records without
	// revealing it: the OIDC issuer and "sub" claim, or the static token's
	// configured name.
	Subject string
}

// String returns the principal's text form, for logs and audit records.
func (id *Identity) String() string {
	if id == nil {
		return "anonymous"
	}
	return id.Principal.String()
}

// Is reports whether the identity's principal is p.
func (id *Identity) Is(p model.Principal) bool {
	return id != nil && !p.IsZero() && id.Principal.Equal(p)
}

// Matches reports whether a principal written in a policy (a requester or
// approver entry) designates this identity: the principal itself, or one
// of its groups.
func (id *Identity) Matches(p model.Principal) bool {
	if id.Is(p) {
		return true
	}
	if id == nil || p.IsZero() {
		return false
	}
	for _, g := range id.Groups {
		if g.Equal(p) {
			return true
		}
	}
	return false
}

// Admins is the configured set of administrators: principals and groups.
type Admins struct {
	principals []model.Principal
}

// NewAdmins returns the administrators named by principals (user:…,
// group:…, serviceAccount:… or a cloud identity).
func NewAdmins(principals ...model.Principal) (Admins, error) {
	for _, p := range principals {
		if p.IsZero() {
			return Admins{}, fmt.Errorf("admin list contains an empty principal: write user:EMAIL or group:NAME")
		}
	}
	return Admins{principals: append([]model.Principal(nil), principals...)}, nil
}

// ParseAdmins parses the text form of administrator principals, as written
// in the daemon configuration.
func ParseAdmins(texts ...string) (Admins, error) {
	ps := make([]model.Principal, 0, len(texts))
	for _, t := range texts {
		p, err := model.ParsePrincipal(strings.TrimSpace(t))
		if err != nil {
			return Admins{}, fmt.Errorf("parsing admin principal: %w", err)
		}
		ps = append(ps, p)
	}
	return NewAdmins(ps...)
}

// Principals returns the configured administrator principals.
func (a Admins) Principals() []model.Principal {
	return append([]model.Principal(nil), a.principals...)
}

// Match reports whether id is an administrator by configuration: its
// principal or one of its groups is listed.
func (a Admins) Match(id *Identity) bool {
	for _, p := range a.principals {
		if id.Matches(p) {
			return true
		}
	}
	return false
}
