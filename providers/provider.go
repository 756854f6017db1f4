package providers

import (
	"context"
	"time"

	"github.com/elevatehq/elevate/model"
)

// Provider reads and writes role bindings in one cloud. All calls work on a
// single scope (a GCP resource, an AWS account, an Azure scope): the unit a
// cloud reads and writes as one document or one batch.
//
// Implementations must be safe for concurrent use. Two Apply calls for the
// same scope must not lose each other's writes: use the cloud's concurrency
// control (an etag) or serialise and re-read to verify.
type Provider interface {
	// Cloud names the cloud this provider serves; scopes passed to it carry
	// the same cloud.
	Cloud() model.Cloud

	// Observe reports the bindings in scope: every binding, managed or not,
	// on the given targets, plus any managed binding on other targets of the
	// scope that the provider can find without extra calls (providers that
	// read a whole allow policy return them all). A nil targets slice asks for
	// every binding the provider can enumerate in the scope. Returned
	// bindings carry the Target value the caller passed in when they match
	// one, so they compare equal with desired bindings; managed bindings have
	// Owner set to the grant ID read from the cloud-side marker, unmanaged
	// ones have an empty Owner.
	Observe(ctx context.Context, scope model.ScopeKey, targets []model.Target) ([]model.Binding, error)

	// Apply applies every change for one scope as one batch (one
	// read-modify-write of a shared document where the cloud has one). It
	// returns one Result per change, in order. A non-nil error means the
	// batch failed as a whole and no change is known to be applied; results
	// are then nil. Per-change failures are reported in Result.Err with a
	// nil error.
	//
	// Changes are idempotent: a create of a binding that already exists
	// with the same owner sets it to the requested form; a delete of a
	// binding that is already gone succeeds. The provider re-checks
	// ownership in its write path: it refuses (ErrNotOwned) to delete or
	// replace a binding whose cloud-side marker does not name the owner the
	// change claims, with one exception: a delete with reason
	// model.ReasonStandingFixed may remove an unmanaged binding that has no
	// expiry (standing access of a role whose policy says remove).
	Apply(ctx context.Context, scope model.ScopeKey, changes []model.Change) ([]Result, error)
}

// Result is the outcome of one change of an Apply batch.
type Result struct {
	Change model.Change
	// Binding is the binding as written cloud-side (with Raw and Native
	// filled in) for creates and replaces that succeeded; nil otherwise.
	Binding *model.Binding
	// Err is why this change failed; classify it with IsTransient.
	Err error
}

// AuditSource reads a cloud's audit trail (CloudTrail, Cloud Audit Logs,
// Entra sign-in and Activity logs) as normalised events.
type AuditSource interface {
	// Read returns up to limit events after cursor, oldest first, and the
	// cursor to resume from. An empty cursor starts at the oldest event the
	// source keeps. When no new events exist it returns no events and the
	// same cursor. Cursors are opaque to callers and survive restarts (the
	// caller stores them).
	Read(ctx context.Context, cursor string, limit int) (events []AuditEvent, next string, err error)
}

// AuditCategory is a coarse, cloud-independent kind of audit event.
type AuditCategory string

// Audit event categories.
const (
	AuditSignIn     AuditCategory = "sign-in"     // console or IdP sign-in
	AuditAssumeRole AuditCategory = "assume-role" // a session obtained for a role
	AuditIAMChange  AuditCategory = "iam-change"  // a write to role bindings or policies
	AuditOther      AuditCategory = "other"
)

// AuditEvent is one normalised audit record.
type AuditEvent struct {
	// ID is the cloud's event ID, unique within the source.
	ID    string      `json:"id"`
	Cloud model.Cloud `json:"cloud"`
	Time  time.Time   `json:"time"`
	// Actor is the identity that acted, in the cloud-qualified form that
	// break_glass accounts are written in (aws:ARN, gcp:user:EMAIL,
	// azure:user:UPN); zero when the record names none.
	Actor model.Principal `json:"actor"`
	// ActorID is the cloud's own identifier of the actor (an ARN, an
	// email, an object ID), kept when Actor cannot be parsed.
	ActorID  string        `json:"actor_id,omitempty"`
	Category AuditCategory `json:"category"`
	// Action is the cloud's operation name (ConsoleLogin, SetIamPolicy, …).
	Action  string         `json:"action"`
	Scope   model.ScopeKey `json:"scope"`
	Success bool           `json:"success"`
	// SourceIP is the caller's address when the record has one.
	SourceIP string `json:"source_ip,omitempty"`
	// Attrs holds other normalised details (mfa, user_agent, session).
	Attrs map[string]string `json:"attrs,omitempty"`
	// Raw is the record as the cloud delivered it.
	Raw []byte `json:"raw,omitempty"`
}
