package policies

// Validate loads the policy set under paths and runs every lint rule over
// whatever decoded, so one schema error does not hide the design problems
// elsewhere. The diagnostics are sorted by position.
func Validate(paths ...string) (*Set, Diagnostics) {
	set, diags := Load(paths...)
	if !diags.HasIOErrors() || len(set.Files) > 0 {
		diags = append(diags, Lint(set)...)
	}
	diags.Sort()
	return set, diags
}
