package policies

import (
	"fmt"
	"strconv"

	"github.com/hashicorp/hcl/v2"
)

// Design lint rule IDs of POLICY.md. They are stable: users grep for them and
// suppress them, so never rename one.
const (
	RuleUnknownReference             = "unknown-reference"
	RuleDuplicateName                = "duplicate-name"
	RuleJITMissingMaxDuration        = "jit-missing-max-duration"
	RuleDefaultExceedsMax            = "default-exceeds-max"
	RuleTemporaryMissingExpiry       = "temporary-missing-expiry"
	RuleTemporaryMissingApproval     = "temporary-missing-approval"
	RuleRoleSharedJITBreakglass      = "role-shared-jit-breakglass"
	RuleBreakglassAccountShared      = "breakglass-account-shared"
	RuleBreakglassTooManyAccounts    = "breakglass-too-many-accounts"
	RuleBreakglassAccountRequestable = "breakglass-account-requestable"
	RuleBreakglassMissingReview      = "breakglass-missing-review"
	RuleBreakglassMissingAlert       = "breakglass-missing-alert"
	RuleSelfApproval                 = "self-approval"
	RuleJITDurationTooLong           = "jit-duration-too-long"
	RuleUnlimitedRenewals            = "unlimited-renewals"
	RuleTemporaryTooLong             = "temporary-too-long"
	RuleTemporaryRenewalChain        = "temporary-renewal-chain"
	RulePrivilegedWithoutApproval    = "privileged-without-approval"
	RuleJustificationNotRequired     = "justification-not-required"
	RuleBreakglassWithoutRecording   = "breakglass-without-recording"
	// RuleGCPBasicRoleConditional extends POLICY.md's table: GCP refuses
	// IAM Conditions on basic roles, so a time-bound grant of one can never
	// be made.
	RuleGCPBasicRoleConditional = "gcp-basic-role-conditional"
)

// LintRules lists every design rule ID with its severity, in POLICY.md order.
var LintRules = []struct {
	Rule     string
	Severity Severity
}{
	{RuleUnknownReference, SeverityError},
	{RuleDuplicateName, SeverityError},
	{RuleJITMissingMaxDuration, SeverityError},
	{RuleDefaultExceedsMax, SeverityError},
	{RuleTemporaryMissingExpiry, SeverityError},
	{RuleTemporaryMissingApproval, SeverityError},
	{RuleRoleSharedJITBreakglass, SeverityError},
	{RuleBreakglassAccountShared, SeverityError},
	{RuleBreakglassTooManyAccounts, SeverityError},
	{RuleBreakglassAccountRequestable, SeverityError},
	{RuleBreakglassMissingReview, SeverityError},
	{RuleBreakglassMissingAlert, SeverityError},
	{RuleSelfApproval, SeverityError},
	{RuleJITDurationTooLong, SeverityWarning},
	{RuleUnlimitedRenewals, SeverityWarning},
	{RuleTemporaryTooLong, SeverityWarning},
	{RuleTemporaryRenewalChain, SeverityWarning},
	{RulePrivilegedWithoutApproval, SeverityWarning},
	{RuleJustificationNotRequired, SeverityWarning},
	{RuleBreakglassWithoutRecording, SeverityWarning},
	{RuleGCPBasicRoleConditional, SeverityError},
}

// Lint runs the design rules of POLICY.md over a decoded set and returns
// their findings sorted by position. It is a pure function of the set.
//
// Lint works on partially decoded sets (Validate lints whatever decoded next
// to the schema errors): a missing or invalid attribute is skipped by every
// rule except the one about its absence. Every rule is linear (or n log n)
// in the size of the set: large organisations have tens of thousands of
// blocks.
func Lint(set *Set) Diagnostics {
	if set == nil {
		return nil
	}
	l := newLinter(set)
	l.duplicateNames()
	l.unknownReferences()
	for _, j := range set.JIT {
		if j != nil {
			l.lintJIT(j)
		}
	}
	l.lintTemporaries()
	l.lintBreakGlass()
	l.gcpBasicRoles()
	l.diags.Sort()
	return l.diags
}

// linter holds the set being linted, lookup tables shared by the rules and
// the findings so far.
type linter struct {
	set      *Set
	settings Settings
	diags    Diagnostics

	roles     map[string]*Role     // first declaration of each name
	notifiers map[string]*Notifier // first declaration of each name
	jits      map[string]*JIT      // first declaration of each name

	// privilegedWhy caches privilegeReason per role.
	privilegedWhy map[*Role]string
}

func newLinter(set *Set) *linter {
	l := &linter{
		set:           set,
		settings:      set.Settings,
		roles:         make(map[string]*Role, len(set.Roles)),
		notifiers:     make(map[string]*Notifier, len(set.Notifiers)),
		jits:          make(map[string]*JIT, len(set.JIT)),
		privilegedWhy: make(map[*Role]string),
	}
	// The loader fills in defaults; a Set built by hand may not have.
	s := &l.settings
	if s.JITDurationCap <= 0 {
		s.JITDurationCap = DefaultJITDurationCap
	}
	if s.TemporaryDurationCap <= 0 {
		s.TemporaryDurationCap = DefaultTemporaryDurationCap
	}
	if s.RenewalCap < 0 {
		s.RenewalCap = DefaultRenewalCap
	}
	if s.BreakglassMaxAccounts <= 0 {
		s.BreakglassMaxAccounts = DefaultBreakglassMaxAccounts
	}
	for _, r := range set.Roles {
		if r != nil {
			if _, ok := l.roles[r.Name]; !ok {
				l.roles[r.Name] = r
			}
		}
	}
	for _, n := range set.Notifiers {
		if n != nil {
			if _, ok := l.notifiers[n.Name]; !ok {
				l.notifiers[n.Name] = n
			}
		}
	}
	for _, j := range set.JIT {
		if j != nil {
			if _, ok := l.jits[j.Name]; !ok {
				l.jits[j.Name] = j
			}
		}
	}
	return l
}

// firstRange returns the first range that points into a file: the precise one
// when the decoder recorded it, else the fallbacks (usually a DeclRange).
func firstRange(ranges ...hcl.Range) hcl.Range {
	for _, r := range ranges {
		if r.Filename != "" {
			return r
		}
	}
	if len(ranges) > 0 {
		return ranges[len(ranges)-1]
	}
	return hcl.Range{}
}

// lineOf renders a range as "file:line" for messages that point elsewhere.
func lineOf(r hcl.Range) string {
	if r.Filename == "" {
		return "an unknown position"
	}
	return fmt.Sprintf("%s:%d", r.Filename, r.Start.Line)
}

// quoted renders a user-supplied name for a one-line summary: escapes keep
// a name with a newline from breaking the line.
func quoted(s string) string { return strconv.Quote(s) }
