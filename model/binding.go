package model

import "time"

// Binding is one cloud-side assignment: a principal holding a target role,
// optionally bounded in time. Bindings elevate made carry their grant ID as
// the ownership marker (Owner); bindings with an empty Owner are not ours.
type Binding struct {
	Target    Target    `json:"target"`
	Principal Principal `json:"principal"`
	// Owner is the grant ID recorded cloud-side, or "" for unmanaged bindings.
	Owner string `json:"owner,omitempty"`
	// NotBefore and Expires are the cloud-side time bounds; zero means
	// unbounded. An unmanaged binding with zero Expires is standing access.
	NotBefore time.Time `json:"not_before,omitempty"`
	Expires   time.Time `json:"expires,omitempty"`
	// Native reports whether the cloud enforces Expires itself.
	Native bool `json:"native,omitempty"`
	// Raw is provider-specific opaque data (a condition title, a Sid, a
	// schedule request name) that the provider needs to find it again.
	Raw string `json:"raw,omitempty"`
}

// Key identifies a binding within its scope for diffing: the same target,
// principal and owner.
func (b Binding) Key() BindingKey {
	return BindingKey{Target: b.Target, Principal: b.Principal.Key(), Owner: b.Owner}
}

// Managed reports whether elevate owns the binding.
func (b Binding) Managed() bool { return b.Owner != "" }

// BindingKey is a comparable identity for a binding.
type BindingKey struct {
	Target    Target
	Principal string
	Owner     string
}
