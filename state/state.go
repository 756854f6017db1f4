// Package state is elevate's durable store: grants with their full history,
// the bindings the daemon believes it made, the hash-chained audit log,
// leader leases with fencing tokens, audit-source cursors, and break-glass
// incidents with their declarations, reviews and alert outbox.
//
// A store is chosen by URL with Open: "sqlite:PATH" (the default; embedded,
// pure Go), "postgres://…" (for several replicas), or "mem:" (tests). All
// three pass the same conformance suite (package storetest).
//
// The store never reads the wall clock on its own: record times come from the
// clock given to Open (WithClock), and lease operations take "now" explicitly.
// Times are kept in UTC to the microsecond.
package state

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/elevatehq/elevate/model"
)

// Errors every store returns, wrapped with detail; test with errors.Is.
var (
	// ErrNotFound: no grant, lease or cursor with that name.
	ErrNotFound = errors.New("not found")
	// ErrExists: a grant with that ID exists, or that approver already
	// decided on the grant.
	ErrExists = errors.New("already exists")
	// ErrConflict: an update carried a version that is no longer current;
	// read the grant again and retry.
	ErrConflict = errors.New("version conflict")
	// ErrInvalid: the request itself is wrong (missing field, immutable field
	// changed, terminal grant changed); retrying will not help.
	ErrInvalid = errors.New("invalid")
	// ErrFenced: a write through a fenced view (WithFence) carried a lease
	// token that is no longer current: another replica has become leader.
	ErrFenced = errors.New("fenced: lease token is stale")
	// ErrLeaseHeld: TryAcquireLease found the lease held by another holder
	// and not yet expired.
	ErrLeaseHeld = errors.New("lease held by another holder")
	// ErrLeaseLost: RenewLease or ReleaseLease was called with a lease that
	// has since been taken over or released.
	ErrLeaseLost = errors.New("lease lost")
)

// Store is the whole state store. Consumers should depend on the narrowest
// of the embedded interfaces they need.
//
// Writes are not fenced unless made through WithFence: API replicas write
// grants freely (optimistic concurrency keeps them safe), while the leader
// makes its writes through a fenced view so a deposed leader cannot write.
//
// Break-glass incidents, declarations, the alert outbox and audit source
// health are the Incidents interface (incidents.go), backed by migration
// 0002 in each SQL backend and maps in the memory store.
type Store interface {
	Grants
	Bindings
	Audit
	Leases
	Cursors
	Incidents

	// WithFence returns a view of the store whose every write first checks,
	// in the same transaction, that f is still the current holder and token
	// of its lease, and fails with ErrFenced otherwise. Reads and lease
	// operations are not fenced. The view shares the store: closing either
	// closes both.
	WithFence(f Fence) Store
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	// Close releases the store's connections.
	Close() error
}

// Change says who changed a grant and why; it becomes the grant's history
// event and an audit log entry, written in the same transaction as the grant.
type Change struct {
	// Actor is who made the change: a principal ("user:alice@example.com")
	// or a component ("elevate:reconcile").
	Actor string
	// Action is a short verb: "request", "approve", "deny", "activate",
	// "extend", "revoke", "expire", "fail".
	Action string
	// Note is free text: a reason, a comment.
	Note string
}

// Grants stores grants. Grants are never deleted; every create and update
// appends a history event (GrantEvent) and an audit entry ("grant.ACTION",
// subject "grant/ID") in the same transaction.
//
// Approvals are part of the grant and append-only: an update stores each
// approval in g.Approvals whose approver has none yet, rejects a second,
// different decision by the same approver with ErrExists, and rejects an
// update that drops a stored approval with ErrInvalid. So "approve" is a
// read, an append to Approvals (plus a status change when the quorum is
// met) and one UpdateGrant: atomic, and safe under concurrent approvers.
type Grants interface {
	// CreateGrant stores a new grant at version 1 and returns it as stored.
	// An empty g.ID gets a generated one; an existing ID is ErrExists.
	// g.Updated is set from the store's clock.
	CreateGrant(ctx context.Context, g model.Grant, c Change) (model.Grant, error)
	// GetGrant returns the grant with its approvals, or ErrNotFound.
	GetGrant(ctx context.Context, id string) (model.Grant, error)
	// UpdateGrant replaces the grant if g.Version is the stored version,
	// and returns it with the next version; otherwise ErrConflict. Kind,
	// principal, role, policy and request time cannot change, and a grant in
	// a terminal status cannot change at all (ErrInvalid).
	UpdateGrant(ctx context.Context, g model.Grant, c Change) (model.Grant, error)
	// ListGrants returns the grants matching f, ordered by request time then ID.
	ListGrants(ctx context.Context, f GrantFilter) ([]model.Grant, error)
	// GrantHistory returns every version of the grant, oldest first, or
	// ErrNotFound.
	GrantHistory(ctx context.Context, id string) ([]GrantEvent, error)
}

// GrantFilter selects grants; zero fields match everything, and set fields
// must all match.
type GrantFilter struct {
	// Status matches any of the listed statuses.
	Status []model.GrantStatus
	// Principal matches grants to an Equal principal.
	Principal model.Principal
	Role      string
	// ActiveAt matches grants that should have bindings at that time
	// (model.Grant.ActiveAt).
	ActiveAt time.Time
	// UpdatedSince matches grants updated at or after that time.
	UpdatedSince time.Time
	// Limit caps the result; 0 means no limit.
	Limit int
}

// GrantEvent is one version of a grant in its history.
type GrantEvent struct {
	GrantID string            `json:"grant_id"`
	Version int64             `json:"version"`
	At      time.Time         `json:"at"`
	Actor   string            `json:"actor"`
	Action  string            `json:"action"`
	Note    string            `json:"note,omitempty"`
	From    model.GrantStatus `json:"from,omitempty"`
	To      model.GrantStatus `json:"to"`
	// Grant is the grant as it was stored at this version.
	Grant model.Grant `json:"grant"`
}

// Bindings stores the cloud-side bindings the daemon believes it made, keyed
// by model.Binding.Key within their scope.
type Bindings interface {
	// PutBinding inserts or replaces the record with the same key.
	PutBinding(ctx context.Context, r BindingRecord) error
	// DeleteBinding removes the record with b's key; deleting a record that
	// is not there is not an error (reconcile passes are retried).
	DeleteBinding(ctx context.Context, b model.Binding) error
	// ListBindings returns the records matching f, in a stable order.
	ListBindings(ctx context.Context, f BindingFilter) ([]BindingRecord, error)
}

// BindingState says what the daemon last saw of a binding.
type BindingState string

// Binding states.
const (
	// BindingApplied: the cloud accepted the binding.
	BindingApplied BindingState = "applied"
	// BindingFailed: the cloud refused it permanently; Detail says why.
	BindingFailed BindingState = "failed"
)

// BindingRecord is a binding with what the daemon knows about it.
type BindingRecord struct {
	Binding model.Binding `json:"binding"`
	State   BindingState  `json:"state"`
	Detail  string        `json:"detail,omitempty"`
	// Updated is set from the store's clock on every put.
	Updated time.Time `json:"updated"`
}

// BindingFilter selects binding records; zero fields match everything.
type BindingFilter struct {
	Scope model.ScopeKey
	// Owner matches records made for that grant ID.
	Owner string
}

// Audit is the append-only, hash-chained audit log.
type Audit interface {
	// AppendAudit appends e and returns it with Seq, Time, PrevHash and Hash
	// filled in. Appends are linearised: Seq has no gaps and every entry
	// chains to the one before it.
	AppendAudit(ctx context.Context, e AuditEvent) (AuditEvent, error)
	// ListAudit returns entries matching f in sequence order.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
	// VerifyAudit walks the whole chain and reports the first entry that
	// does not verify. The error is for failures to read, not for tampering.
	VerifyAudit(ctx context.Context) (VerifyResult, error)
}

// AuditEvent is one entry of the audit log.
type AuditEvent struct {
	Seq     int64     `json:"seq"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Subject string    `json:"subject,omitempty"`
	// Data is any JSON value; it is stored compacted and hashed as stored.
	Data json.RawMessage `json:"data,omitempty"`
	// PrevHash is the previous entry's Hash (GenesisHash for the first).
	PrevHash string `json:"prev_hash"`
	// Hash is AuditHash of this entry, lowercase hex SHA-256.
	Hash string `json:"hash"`
}

// AuditFilter selects audit entries.
type AuditFilter struct {
	// AfterSeq returns entries with a greater sequence number.
	AfterSeq int64
	Subject  string
	// Action, if set, selects entries of that action only.
	Action string
	// Limit caps the result; 0 means no limit.
	Limit int
	// Tail selects the last Limit matching entries instead of the first
	// (still returned in sequence order): Limit 1 gives the newest.
	Tail bool
}

// VerifyResult is what VerifyAudit found.
type VerifyResult struct {
	// OK reports whether the whole chain verified.
	OK bool `json:"ok"`
	// Checked is how many entries were examined.
	Checked int64 `json:"checked"`
	// HeadSeq and HeadHash identify the last verified entry; keep them
	// somewhere else to detect a later truncation of the log.
	HeadSeq  int64  `json:"head_seq"`
	HeadHash string `json:"head_hash"`
	// BrokenSeq is the first entry that does not verify (0 when OK).
	BrokenSeq int64 `json:"broken_seq,omitempty"`
	// Problem says what is wrong with it.
	Problem string `json:"problem,omitempty"`
}

// Leases are named leader leases with fencing tokens.
//
// Times are the caller's: every replica passes its own clock's "now", so
// replicas' clocks must agree to well within the TTL.
type Leases interface {
	// TryAcquireLease takes the lease for holder until now+ttl when it is
	// free, released or expired, or renews it when holder already holds it.
	// The returned token is greater than every token the lease had before
	// whenever the holder changes (or re-acquires after expiry or release).
	// Held by another holder: ErrLeaseHeld, with the current lease returned.
	TryAcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (Lease, error)
	// RenewLease extends l to now+ttl if l's holder and token are still
	// current (even if it had expired, as long as nobody took it over);
	// otherwise ErrLeaseLost.
	RenewLease(ctx context.Context, l Lease, ttl time.Duration, now time.Time) (Lease, error)
	// ReleaseLease gives the lease up so another replica can take it at
	// once; writes fenced with it fail from then on. ErrLeaseLost if l is
	// no longer current.
	ReleaseLease(ctx context.Context, l Lease) error
	// GetLease returns the lease as stored (the holder is empty when
	// released), or ErrNotFound if it was never acquired.
	GetLease(ctx context.Context, name string) (Lease, error)
}

// Lease is one holder's claim on a named lease.
type Lease struct {
	Name   string `json:"name"`
	Holder string `json:"holder"`
	// Token is the fencing token: it grows every time the lease changes hands.
	Token    int64     `json:"token"`
	Acquired time.Time `json:"acquired"`
	Expires  time.Time `json:"expires"`
}

// Fence returns the fence that guards writes made under this lease.
func (l Lease) Fence() Fence { return Fence{Lease: l.Name, Holder: l.Holder, Token: l.Token} }

// ValidAt reports whether the lease is held and unexpired at now.
func (l Lease) ValidAt(now time.Time) bool { return l.Holder != "" && now.Before(l.Expires) }

// Fence identifies the lease a write is made under (see Store.WithFence).
type Fence struct {
	Lease  string
	Holder string
	Token  int64
}

// Cursors remember how far each audit source has been read.
type Cursors interface {
	// GetCursor returns the cursor of source, or ErrNotFound.
	GetCursor(ctx context.Context, source string) (Cursor, error)
	// SetCursor stores value as the cursor of source.
	SetCursor(ctx context.Context, source, value string) error
}

// Cursor is an audit source's opaque resume position.
type Cursor struct {
	Source string `json:"source"`
	Value  string `json:"value"`
	// Updated is set from the store's clock.
	Updated time.Time `json:"updated"`
}
