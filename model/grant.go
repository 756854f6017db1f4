package model

import "time"

// GrantKind says which path created a grant.
type GrantKind string

// Grant kinds; break-glass use is not a grant (it is an incident).
const (
	KindJIT       GrantKind = "jit"
	KindTemporary GrantKind = "temporary"
)

// GrantStatus is a grant's lifecycle state.
type GrantStatus string

// Grant statuses: pending → approved → active → expired | revoked, or
// pending → denied, or failed when the cloud refused it permanently.
const (
	StatusPending  GrantStatus = "pending"
	StatusApproved GrantStatus = "approved"
	StatusActive   GrantStatus = "active"
	StatusExpired  GrantStatus = "expired"
	StatusRevoked  GrantStatus = "revoked"
	StatusDenied   GrantStatus = "denied"
	StatusFailed   GrantStatus = "failed"
)

// Live reports whether a grant in this status may have bindings that should
// exist (approved grants become active when their window starts).
func (s GrantStatus) Live() bool { return s == StatusApproved || s == StatusActive }

// Terminal reports whether the status can no longer change.
func (s GrantStatus) Terminal() bool {
	return s == StatusExpired || s == StatusRevoked || s == StatusDenied || s == StatusFailed
}

// Grant is one elevation: a principal holding a role for the window
// [Starts, Expires). Grants are never deleted; history is kept in Events.
type Grant struct {
	ID            string      `json:"id"`
	Kind          GrantKind   `json:"kind"`
	Principal     Principal   `json:"principal"`
	Role          string      `json:"role"`
	Policy        string      `json:"policy"`
	Status        GrantStatus `json:"status"`
	Justification string      `json:"justification,omitempty"`
	Ticket        string      `json:"ticket,omitempty"`
	// Duration is what was asked for; the window starts at activation.
	Duration    time.Duration `json:"duration_ns"`
	RequestedAt time.Time     `json:"requested_at"`
	// NotBefore is a requested later start; zero means "when approved".
	NotBefore time.Time  `json:"not_before,omitempty"`
	Starts    time.Time  `json:"starts,omitempty"`
	Expires   time.Time  `json:"expires,omitempty"`
	Renewals  int        `json:"renewals"`
	Approvals []Approval `json:"approvals,omitempty"`
	// RequesterGroups are the groups the requester's authenticated identity
	// had when the grant was requested, sorted and without duplicates; the
	// policy re-evaluation after a policy change judges group requesters by
	// them. Nil means not recorded (grants stored before groups were, and
	// grants without a requester identity, such as temporary ones); a
	// non-nil empty list means recorded, no groups. Set at creation only.
	// Treat it as read-only: stores may share one list among grants.
	RequesterGroups []Principal `json:"requester_groups,omitzero"`
	// Reason explains the last status change (denial reason, failure cause).
	Reason  string    `json:"reason,omitempty"`
	Updated time.Time `json:"updated"`
	// Version is the store's optimistic-concurrency counter: 1 when the
	// grant is created, one more on every update. An update must carry the
	// version it read, so concurrent changes cannot silently overwrite each
	// other.
	Version int64 `json:"version"`
}

// ActiveAt reports whether the grant should have bindings at time now.
func (g *Grant) ActiveAt(now time.Time) bool {
	return g.Status.Live() && !g.Starts.IsZero() && !now.Before(g.Starts) && now.Before(g.Expires)
}

// Approval is one approver's decision on a grant.
type Approval struct {
	Approver Principal `json:"approver"`
	At       time.Time `json:"at"`
	Approve  bool      `json:"approve"`
	Comment  string    `json:"comment,omitempty"`
}
