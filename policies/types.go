package policies

import (
	"regexp"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/elevatehq/elevate/model"
)

// Default thresholds of the settings block.
const (
	DefaultJITDurationCap        = 8 * time.Hour
	DefaultTemporaryDurationCap  = 90 * 24 * time.Hour
	DefaultRenewalCap            = 3
	DefaultBreakglassMaxAccounts = 5
)

// Set is one loaded policy set: every block of every file, in file order
// (files in lexical path order). A Set is immutable once loaded; the daemon
// swaps whole sets on reload.
type Set struct {
	Settings   Settings
	Roles      []*Role
	JIT        []*JIT
	Temporary  []*Temporary
	BreakGlass []*BreakGlass
	Notifiers  []*Notifier
	Tests      []*Test

	// Files lists the loaded files in load order; Sources holds their bytes
	// so diagnostics can show the offending line.
	Files   []string
	Sources map[string][]byte

	rolesByName      map[string]*Role
	notifiersByName  map[string]*Notifier
	jitByName        map[string]*JIT
	breakglassByName map[string]*BreakGlass
	jitByRole        map[string][]*JIT
}

// Role returns the first role declared with name, or nil.
func (s *Set) Role(name string) *Role { return s.rolesByName[name] }

// Notifier returns the first notifier declared with name, or nil.
func (s *Set) Notifier(name string) *Notifier { return s.notifiersByName[name] }

// JITPolicy returns the first jit policy declared with name, or nil.
func (s *Set) JITPolicy(name string) *JIT { return s.jitByName[name] }

// BreakGlassPolicy returns the first break_glass block declared with name, or nil.
func (s *Set) BreakGlassPolicy(name string) *BreakGlass { return s.breakglassByName[name] }

// JITForRole returns the jit policies naming role, in declaration order.
func (s *Set) JITForRole(role string) []*JIT { return s.jitByRole[role] }

// index builds the lookup maps; the first declaration of a name wins (the
// duplicate-name rule reports the others).
func (s *Set) index() {
	s.rolesByName = make(map[string]*Role, len(s.Roles))
	for _, r := range s.Roles {
		if _, ok := s.rolesByName[r.Name]; !ok {
			s.rolesByName[r.Name] = r
		}
	}
	s.notifiersByName = make(map[string]*Notifier, len(s.Notifiers))
	for _, n := range s.Notifiers {
		if _, ok := s.notifiersByName[n.Name]; !ok {
			s.notifiersByName[n.Name] = n
		}
	}
	s.jitByName = make(map[string]*JIT, len(s.JIT))
	s.jitByRole = make(map[string][]*JIT)
	for _, j := range s.JIT {
		if _, ok := s.jitByName[j.Name]; !ok {
			s.jitByName[j.Name] = j
		}
		for _, r := range j.Roles {
			s.jitByRole[r.Name] = append(s.jitByRole[r.Name], j)
		}
	}
	s.breakglassByName = make(map[string]*BreakGlass, len(s.BreakGlass))
	for _, b := range s.BreakGlass {
		if _, ok := s.breakglassByName[b.Name]; !ok {
			s.breakglassByName[b.Name] = b
		}
	}
}

// Settings holds the lint thresholds.
type Settings struct {
	JITDurationCap        time.Duration
	TemporaryDurationCap  time.Duration
	RenewalCap            int
	BreakglassMaxAccounts int
	// DeclRange is the settings block's header, zero when absent.
	DeclRange hcl.Range
	Attrs     map[string]hcl.Range
}

// Block is what every named block carries: its name and where it was declared.
type Block struct {
	Name string
	// DeclRange covers the block type and labels (`role "x"`).
	DeclRange hcl.Range
	// NameRange covers the name label.
	NameRange hcl.Range
	// Attrs maps each attribute that was set to its whole range.
	Attrs map[string]hcl.Range
}

// AttrRange returns the range of attribute name, or the block's declaration
// when it was not set (so a "missing X" diagnostic points at the block).
func (b *Block) AttrRange(name string) hcl.Range {
	if r, ok := b.Attrs[name]; ok {
		return r
	}
	return b.DeclRange
}

// Has reports whether attribute name was set.
func (b *Block) Has(name string) bool {
	_, ok := b.Attrs[name]
	return ok
}

// NameRef is a reference to a named block, with its source range.
type NameRef struct {
	Name  string
	Range hcl.Range
}

// PrincipalRef is a principal written in a policy, with its source range.
type PrincipalRef struct {
	model.Principal
	Range hcl.Range
}

// Standing modes of a role.
const (
	StandingReport = "report"
	StandingRemove = "remove"
)

// Role is a named capability with cloud targets.
type Role struct {
	Block
	Description string
	Privileged  bool
	Standing    string // StandingReport (default) or StandingRemove
	GCP         []*GCPTarget
	AWS         []*AWSTarget
	Azure       []*AzureTarget
}

// Targets returns the role's cloud targets as model values.
func (r *Role) Targets() []model.Target {
	out := make([]model.Target, 0, len(r.GCP)+len(r.AWS)+len(r.Azure))
	for _, t := range r.GCP {
		out = append(out, t.Target())
	}
	for _, t := range r.AWS {
		out = append(out, t.Target())
	}
	for _, t := range r.Azure {
		out = append(out, t.Target())
	}
	return out
}

// GCPTarget is a role binding on a GCP resource's allow policy.
type GCPTarget struct {
	DeclRange hcl.Range
	Resource  string // projects/ID | folders/ID | organizations/ID
	Role      string // roles/… or a custom role name
	// RoleRange is the role attribute's value, for diagnostics.
	RoleRange hcl.Range
}

// Target returns the model form.
func (t *GCPTarget) Target() model.Target {
	return model.Target{Cloud: model.CloudGCP, Scope: t.Resource, Role: t.Role}
}

// AWSTarget is either an IAM role (assume-role mode: RoleName set) or an
// Identity Center permission set (InstanceARN and PermissionSet set).
type AWSTarget struct {
	DeclRange     hcl.Range
	Account       string
	RoleName      string
	InstanceARN   string
	PermissionSet string
}

// IdentityCenter reports whether the target is an Identity Center assignment.
func (t *AWSTarget) IdentityCenter() bool { return t.PermissionSet != "" }

// Target returns the model form.
func (t *AWSTarget) Target() model.Target {
	if t.IdentityCenter() {
		return model.Target{Cloud: model.CloudAWS, Scope: t.Account, Role: t.PermissionSet, InstanceARN: t.InstanceARN}
	}
	return model.Target{Cloud: model.CloudAWS, Scope: t.Account, Role: t.RoleName}
}

// AzureTarget is a role assignment at an Azure scope.
type AzureTarget struct {
	DeclRange      hcl.Range
	Scope          string
	RoleDefinition string
	PIM            bool // default true
}

// Target returns the model form.
func (t *AzureTarget) Target() model.Target {
	return model.Target{Cloud: model.CloudAzure, Scope: t.Scope, Role: t.RoleDefinition, PIM: t.PIM}
}

// JIT is a just-in-time policy: who may request which roles, for how long,
// with what approval.
type JIT struct {
	Block
	Description     string
	Roles           []NameRef
	Requesters      []PrincipalRef
	MaxDuration     time.Duration // 0 when missing (an error)
	DefaultDuration time.Duration // 0 when not set
	Justification   bool          // default true
	TicketPattern   *regexp.Regexp
	MaxRenewals     int
	Approval        *Approval // nil = self-service
}

// Approval says who must approve a jit request and when it is automatic.
type Approval struct {
	DeclRange    hcl.Range
	Attrs        map[string]hcl.Range
	Approvers    []PrincipalRef
	MinApprovals int // default 1
	// AutoApprove is evaluated per request with `request` and `requester`;
	// nil when not set.
	AutoApprove hcl.Expression
}

// Temporary is access declared in git for a fixed window.
type Temporary struct {
	Block
	Role          NameRef
	Principals    []PrincipalRef
	Starts        time.Time // zero: when loaded
	Expires       time.Time // zero when missing (an error)
	Justification string
	ApprovedBy    []PrincipalRef
}

// BreakGlass declares named emergency accounts and how their use is watched.
type BreakGlass struct {
	Block
	Description      string
	Reasons          []string
	Accounts         []PrincipalRef
	Roles            []NameRef
	SessionRecording bool
	ReviewWithin     time.Duration // 0 when missing (an error)
	MaxUses          int           // 0 = no limit
	UseWindow        time.Duration
	Notify           []NameRef
}

// Notifier types.
const (
	NotifierWebhook = "webhook"
	NotifierSlack   = "slack"
)

// Notifier is an alert destination; its secrets come from the environment.
type Notifier struct {
	Block
	Type      string
	URLEnv    string
	SecretEnv string
}

// Test is a policy unit test run by `elevate test`.
type Test struct {
	Block
	Request       TestRequest
	Expect        Decision
	ExpectPolicy  string
	ExpectReasons []string
}

// TestRequest is the request a test block evaluates.
type TestRequest struct {
	DeclRange hcl.Range
	// Attrs maps each attribute that was set to its whole range.
	Attrs         map[string]hcl.Range
	Requester     model.Principal
	Groups        []model.Principal
	Role          string
	Duration      time.Duration // 0 = the policy's default
	Justification string
	Ticket        string
	Renewal       bool
	Renewals      int // renewals already made, for renewal requests
}

// Decision is the outcome of evaluating a request.
type Decision string

// Decisions of request evaluation, ordered from most to least permissive.
const (
	DecisionAllowed       Decision = "allowed"
	DecisionNeedsApproval Decision = "needs_approval"
	DecisionDenied        Decision = "denied"
)
