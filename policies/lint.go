package policies

// Lint runs the design rules of POLICY.md over a decoded set.
// PLACEHOLDER: the rules are being written.
func Lint(set *Set) Diagnostics { return nil }
