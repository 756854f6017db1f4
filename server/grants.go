package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/server/auth"
	"github.com/elevatehq/elevate/state"
)

// Clock tells the time. The service reads it for request, approval and
// window times; tests inject a fixed clock.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
var SystemClock Clock = systemClock{}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now().UTC() }

// Limits on free text fields, so one request cannot fill the store.
const (
	MaxJustificationLen = 1000
	MaxTicketLen        = 200
	MaxCommentLen       = 1000
	MaxRoleLen          = 200
)

// maxUpdateAttempts bounds the re-read-and-retry rounds of one change
// when concurrent writers keep moving the grant's version.
const maxUpdateAttempts = 25

// ServiceConfig configures a Service.
type ServiceConfig struct {
	Store state.Grants
	// Policies returns the current policy set (nil until one is loaded).
	Policies func() *policies.Set
	// Clock defaults to SystemClock.
	Clock Clock
	// Trigger is called after a grant became approved, was extended or was
	// revoked while live, with the cloud scopes of its role (none when the
	// role is no longer in the policy set: then all scopes). May be nil. It
	// must not block.
	Trigger func(scopes ...model.ScopeKey)
}

// Service implements the grant workflow of the API contract on top of
// policies.Evaluate, server/auth's decisions and the state store. It is
// safe for concurrent use.
type Service struct {
	store    state.Grants
	policies func() *policies.Set
	clock    Clock
	trigger  func(scopes ...model.ScopeKey)
}

// NewService returns a service.
func NewService(cfg ServiceConfig) *Service {
	s := &Service{store: cfg.Store, policies: cfg.Policies, clock: cfg.Clock, trigger: cfg.Trigger}
	if s.clock == nil {
		s.clock = SystemClock
	}
	if s.policies == nil {
		s.policies = func() *policies.Set { return nil }
	}
	return s
}

// newID returns a new grant ID: a ULID in lowercase (26 letters and
// digits, sortable by creation time, unique across replicas by its 80
// random bits), since grant IDs are written cloud-side where some clouds
// accept only letters and digits.
func (s *Service) newID(now time.Time) (string, error) {
	id, err := ulid.New(ulid.Timestamp(now), ulid.DefaultEntropy())
	if err != nil {
		return "", fmt.Errorf("generating grant ID: %w", err)
	}
	return strings.ToLower(id.String()), nil
}

func (s *Service) now() time.Time { return s.clock.Now().UTC() }

// Outcome is the result of a service call that changes or creates a grant.
type Outcome struct {
	Grant model.Grant
	// Decision is the policy evaluation the call made (requests and
	// extensions), nil otherwise.
	Decision *policies.Result
}

// RequestInput is an access request. Duration 0 asks for the policy's
// default; a zero NotBefore means "as soon as approved".
type RequestInput struct {
	Role          string
	Duration      time.Duration
	Justification string
	Ticket        string
	NotBefore     time.Time
}

// currentSet returns the loaded policy set or a 503.
func (s *Service) currentSet() (*policies.Set, error) {
	set := s.policies()
	if set == nil {
		return nil, errorf(http.StatusServiceUnavailable, CodePoliciesUnavailable,
			"no policy set is loaded yet, so requests cannot be evaluated; try again shortly, and check the daemon log for policy errors")
	}
	return set, nil
}

// decision turns a false auth decision into an API error.
func decision(ok bool, code, msg string) error {
	if ok {
		return nil
	}
	return &Error{Status: auth.HTTPStatus(code), Code: code, Message: msg}
}

func checkText(field, v string, max int) error {
	if len(v) > max {
		return badRequest("%s is %d bytes long; keep it to %d", field, len(v), max)
	}
	if strings.ContainsRune(v, 0) {
		return badRequest("%s contains a NUL character", field)
	}
	return nil
}

// Request evaluates an access request by id and stores the grant it gives:
// approved (allowed: the window starts now, or at NotBefore), pending
// (needs approval) or denied (with the reasons). Break-glass accounts are
// refused before anything is stored.
func (s *Service) Request(ctx context.Context, id *auth.Identity, in RequestInput) (Outcome, error) {
	set, err := s.currentSet()
	if err != nil {
		return Outcome{}, err
	}
	if err := decision(auth.CanRequest(set, id)); err != nil {
		return Outcome{}, err
	}
	in.Role = strings.TrimSpace(in.Role)
	switch {
	case in.Role == "":
		return Outcome{}, badRequest("role is required: name the role to request, such as \"prod-db-admin\"")
	case in.Duration < 0:
		return Outcome{}, badRequest("duration must be positive")
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"role", in.Role, MaxRoleLen}, {"justification", in.Justification, MaxJustificationLen}, {"ticket", in.Ticket, MaxTicketLen}} {
		if err := checkText(f.name, f.v, f.max); err != nil {
			return Outcome{}, err
		}
	}
	now := s.now()
	res := policies.Evaluate(set, policies.Request{
		Requester:     id.Principal,
		Groups:        id.Groups,
		Role:          in.Role,
		Duration:      in.Duration,
		Justification: in.Justification,
		Ticket:        in.Ticket,
	})
	gid, err := s.newID(now)
	if err != nil {
		return Outcome{}, asAPIError(err)
	}
	g := model.Grant{
		ID:            gid,
		Kind:          model.KindJIT,
		Principal:     id.Principal,
		Role:          in.Role,
		Policy:        res.Policy,
		Justification: in.Justification,
		Ticket:        in.Ticket,
		Duration:      res.Duration,
		RequestedAt:   now,
		// What the evaluation just saw, so a later policy change is judged
		// by the same groups (reconcile.ReviewJIT).
		RequesterGroups: requesterGroups(id.Groups),
	}
	if g.Duration == 0 {
		g.Duration = in.Duration // denied before a policy fixed it: keep what was asked
	}
	if in.NotBefore.After(now) {
		g.NotBefore = in.NotBefore.UTC()
	}
	switch res.Decision {
	case policies.DecisionAllowed:
		g.Status = model.StatusApproved
		openWindow(&g, now)
	case policies.DecisionNeedsApproval:
		g.Status = model.StatusPending
	default:
		g.Status = model.StatusDenied
		g.Reason = reasonsText(res.Reasons)
	}
	stored, err := s.store.CreateGrant(ctx, g, state.Change{Actor: id.Principal.String(), Action: "request", Note: decisionNote(res)})
	if err != nil {
		return Outcome{}, storeError(err, "storing the request")
	}
	if stored.Status == model.StatusApproved {
		s.fire(set, stored.Role)
	}
	return Outcome{Grant: stored, Decision: &res}, nil
}

// requesterGroups returns groups as a grant records them: sorted, without
// duplicates (principals that are Equal count once), and a non-nil list
// even when there are none, since nil means "not recorded".
func requesterGroups(groups []model.Principal) []model.Principal {
	out := make([]model.Principal, 0, len(groups))
	seen := make(map[string]bool, len(groups))
	for _, g := range groups {
		if g.IsZero() || seen[g.Key()] {
			continue
		}
		seen[g.Key()] = true
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b model.Principal) int {
		return cmp.Or(strings.Compare(a.Key(), b.Key()), strings.Compare(a.String(), b.String()))
	})
	return out
}

// openWindow starts g's window at now, or at its NotBefore if later.
func openWindow(g *model.Grant, now time.Time) {
	g.Starts = now
	if g.NotBefore.After(now) {
		g.Starts = g.NotBefore
	}
	g.Expires = g.Starts.Add(g.Duration)
}

func reasonsText(rs []policies.Reason) string {
	msgs := make([]string, len(rs))
	for i, r := range rs {
		msgs[i] = r.Message
	}
	return strings.Join(msgs, "; ")
}

func reasonCodes(rs []policies.Reason) string {
	codes := make([]string, len(rs))
	for i, r := range rs {
		codes[i] = string(r.Code)
	}
	return strings.Join(codes, ", ")
}

// decisionNote is the history note of an evaluated request.
func decisionNote(res policies.Result) string {
	switch res.Decision {
	case policies.DecisionAllowed:
		if res.AutoApproved {
			return fmt.Sprintf("allowed by policy %q (auto-approved)", res.Policy)
		}
		return fmt.Sprintf("allowed by policy %q (self-service)", res.Policy)
	case policies.DecisionNeedsApproval:
		approvers := make([]string, len(res.Approvers))
		for i, a := range res.Approvers {
			approvers[i] = a.String()
		}
		return fmt.Sprintf("needs %d approval(s) from %s under policy %q", max(res.MinApprovals, 1), strings.Join(approvers, ", "), res.Policy)
	}
	return "denied: " + reasonCodes(res.Reasons)
}

// fire triggers a reconcile pass for the scopes of role.
func (s *Service) fire(set *policies.Set, role string) {
	if s.trigger == nil {
		return
	}
	var scopes []model.ScopeKey
	if r := set.Role(role); r != nil {
		for _, t := range r.Targets() {
			if k := t.ScopeKey(); !slices.Contains(scopes, k) {
				scopes = append(scopes, k)
			}
		}
	}
	s.trigger(scopes...)
}

// mutation changes a freshly read grant in place and says how to record
// it. It runs again, on a fresh read, after every version conflict.
type mutation func(g *model.Grant, set *policies.Set, now time.Time) (state.Change, error)

// update applies m to grant id with optimistic concurrency: read, change,
// write with the version read; on a conflict (another writer got there
// first) read again and redo the change, a bounded number of times. It
// returns the stored grant and the policy set the change was decided on.
func (s *Service) update(ctx context.Context, id string, doing string, m mutation) (model.Grant, *policies.Set, error) {
	for attempt := 1; ; attempt++ {
		g, err := s.store.GetGrant(ctx, id)
		if err != nil {
			return model.Grant{}, nil, storeError(err, doing)
		}
		set, err := s.currentSet()
		if err != nil {
			return model.Grant{}, nil, err
		}
		now := s.now()
		change, err := m(&g, set, now)
		if err != nil {
			return model.Grant{}, nil, err
		}
		stored, err := s.store.UpdateGrant(ctx, g, change)
		if err == nil {
			return stored, set, nil
		}
		// ErrExists: the same approver decided concurrently; the next
		// read sees it and the decision says so.
		if !errors.Is(err, state.ErrConflict) && !errors.Is(err, state.ErrExists) {
			return model.Grant{}, nil, storeError(err, doing)
		}
		if attempt >= maxUpdateAttempts {
			return model.Grant{}, nil, storeError(err, doing)
		}
		// Jittered pause so the contenders do not collide again in step.
		pause := time.Duration(rand.Int64N(int64(attempt)*int64(time.Millisecond) + 1))
		select {
		case <-ctx.Done():
			return model.Grant{}, nil, storeError(ctx.Err(), doing)
		case <-time.After(pause):
		}
	}
}

// Approve records id's approval of a pending grant. When min_approvals
// distinct approvers (never the requester) have approved, the grant
// becomes approved with its window starting now (or at its not_before),
// and a reconcile pass is triggered.
func (s *Service) Approve(ctx context.Context, id *auth.Identity, grantID, comment string) (Outcome, error) {
	if err := checkText("comment", comment, MaxCommentLen); err != nil {
		return Outcome{}, err
	}
	var approved bool
	stored, set, err := s.update(ctx, grantID, "approving", func(g *model.Grant, set *policies.Set, now time.Time) (state.Change, error) {
		approved = false
		policy := set.JITPolicy(g.Policy)
		if err := decision(auth.CanApprove(set, id, g, policy)); err != nil {
			return state.Change{}, err
		}
		g.Approvals = append(g.Approvals, model.Approval{Approver: id.Principal, At: now, Approve: true, Comment: comment})
		note := comment
		if auth.ApprovalsSatisfied(g, policy) {
			approved = true
			g.Status = model.StatusApproved
			openWindow(g, now)
			note = fmt.Sprintf("%d of %d approvals", auth.DistinctApprovals(g), max(policy.Approval.MinApprovals, 1))
			if comment != "" {
				note += ": " + comment
			}
		}
		return state.Change{Actor: id.Principal.String(), Action: "approve", Note: note}, nil
	})
	if err != nil {
		return Outcome{}, err
	}
	if approved {
		s.fire(set, stored.Role)
	}
	return Outcome{Grant: stored}, nil
}

// Deny records id's denial of a pending grant, which ends it.
func (s *Service) Deny(ctx context.Context, id *auth.Identity, grantID, reason string) (Outcome, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return Outcome{}, badRequest("reason is required: say why the request is denied, so the requester knows what to change")
	}
	if err := checkText("reason", reason, MaxCommentLen); err != nil {
		return Outcome{}, err
	}
	stored, _, err := s.update(ctx, grantID, "denying", func(g *model.Grant, set *policies.Set, now time.Time) (state.Change, error) {
		if err := decision(auth.CanDeny(set, id, g, set.JITPolicy(g.Policy))); err != nil {
			return state.Change{}, err
		}
		g.Approvals = append(g.Approvals, model.Approval{Approver: id.Principal, At: now, Approve: false, Comment: reason})
		g.Status = model.StatusDenied
		g.Reason = reason
		return state.Change{Actor: id.Principal.String(), Action: "deny", Note: reason}, nil
	})
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Grant: stored}, nil
}

// ExtendInput is a renewal request. An empty Justification reuses the
// grant's.
type ExtendInput struct {
	By            time.Duration
	Justification string
}

// Extend renews a live grant by in.By. The renewal is evaluated like a
// request (Renewal set, the grant's renewals so far, Duration = By):
// allowed moves Expires by By and counts a renewal; needs_approval is a
// 409 renewal-needs-approval (renewals with approval are not supported
// yet: request the role again); denied is a 403 with the first reason's
// code.
func (s *Service) Extend(ctx context.Context, id *auth.Identity, grantID string, in ExtendInput) (Outcome, error) {
	if in.By <= 0 {
		return Outcome{}, badRequest("by is required and must be positive, such as \"30m\"")
	}
	if err := checkText("justification", in.Justification, MaxJustificationLen); err != nil {
		return Outcome{}, err
	}
	var res policies.Result
	stored, set, err := s.update(ctx, grantID, "extending", func(g *model.Grant, set *policies.Set, now time.Time) (state.Change, error) {
		if err := decision(auth.CanExtend(set, id, g)); err != nil {
			return state.Change{}, err
		}
		if !g.Expires.IsZero() && !now.Before(g.Expires) {
			return state.Change{}, errorf(http.StatusConflict, auth.CodeNotExtendable,
				"grant %s expired at %s; request the role again", g.ID, g.Expires.Format(time.RFC3339))
		}
		justification := in.Justification
		if strings.TrimSpace(justification) == "" {
			justification = g.Justification
		}
		res = policies.Evaluate(set, policies.Request{
			Requester:     id.Principal,
			Groups:        id.Groups,
			Role:          g.Role,
			Duration:      in.By,
			Justification: justification,
			Ticket:        g.Ticket,
			Renewal:       true,
			Renewals:      g.Renewals,
		})
		switch res.Decision {
		case policies.DecisionAllowed:
		case policies.DecisionNeedsApproval:
			return state.Change{}, errorf(http.StatusConflict, CodeRenewalNeedsApproval,
				"extending grant %s needs approval under policy %q, which the API does not support yet; request the role again instead", g.ID, res.Policy)
		default:
			code := string(policies.ReasonNotEligible)
			if len(res.Reasons) > 0 {
				code = string(res.Reasons[0].Code)
			}
			return state.Change{}, errorf(http.StatusForbidden, code, "%s", reasonsText(res.Reasons))
		}
		if g.Starts.IsZero() {
			openWindow(g, now)
		}
		g.Expires = g.Expires.Add(in.By)
		g.Renewals++
		note := fmt.Sprintf("+%s (renewal %d, policy %q)", model.FormatDuration(in.By), g.Renewals, res.Policy)
		if strings.TrimSpace(in.Justification) != "" {
			note += ": " + in.Justification
		}
		return state.Change{Actor: id.Principal.String(), Action: "extend", Note: note}, nil
	})
	if err != nil {
		return Outcome{}, err
	}
	s.fire(set, stored.Role)
	return Outcome{Grant: stored, Decision: &res}, nil
}

// Revoke ends a grant early (the grantee, who may also withdraw a pending
// request, or an admin). A live grant's bindings are removed by the
// reconcile pass this triggers.
func (s *Service) Revoke(ctx context.Context, id *auth.Identity, grantID, reason string) (Outcome, error) {
	if err := checkText("reason", reason, MaxCommentLen); err != nil {
		return Outcome{}, err
	}
	var wasLive bool
	stored, set, err := s.update(ctx, grantID, "revoking", func(g *model.Grant, set *policies.Set, now time.Time) (state.Change, error) {
		if err := decision(auth.CanRevoke(set, id, g)); err != nil {
			return state.Change{}, err
		}
		wasLive = g.Status.Live()
		g.Status = model.StatusRevoked
		g.Reason = strings.TrimSpace(reason)
		if g.Reason == "" {
			g.Reason = "revoked by " + id.Principal.String()
		}
		return state.Change{Actor: id.Principal.String(), Action: "revoke", Note: strings.TrimSpace(reason)}, nil
	})
	if err != nil {
		return Outcome{}, err
	}
	if wasLive {
		s.fire(set, stored.Role)
	}
	return Outcome{Grant: stored}, nil
}

// Get returns a grant and its history, if id may view it.
func (s *Service) Get(ctx context.Context, id *auth.Identity, grantID string) (model.Grant, []state.GrantEvent, error) {
	g, err := s.store.GetGrant(ctx, grantID)
	if err != nil {
		return model.Grant{}, nil, storeError(err, "reading the grant")
	}
	if err := decision(auth.CanView(s.policies(), id, &g)); err != nil {
		return model.Grant{}, nil, err
	}
	h, err := s.store.GrantHistory(ctx, grantID)
	if err != nil {
		return model.Grant{}, nil, storeError(err, "reading the grant's history")
	}
	return g, h, nil
}

// ListInput selects grants to list. Zero fields match everything.
type ListInput struct {
	Status []model.GrantStatus
	// Mine restricts the list to the caller's own grants.
	Mine      bool
	Role      string
	Principal model.Principal
	// Limit keeps the most recently requested grants; 0 means DefaultListLimit.
	Limit int
}

// Limits of listing.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// List returns the grants matching in that id may view (its own, those
// whose policy lists it as an approver, or all for admins), ordered by
// request time; with more than Limit, the Limit most recent.
func (s *Service) List(ctx context.Context, id *auth.Identity, in ListInput) ([]model.Grant, error) {
	set := s.policies()
	if err := decision(auth.CanList(set, id)); err != nil {
		return nil, err
	}
	limit := in.Limit
	switch {
	case limit == 0:
		limit = DefaultListLimit
	case limit < 0 || limit > MaxListLimit:
		return nil, badRequest("limit must be between 1 and %d", MaxListLimit)
	}
	f := state.GrantFilter{Status: in.Status, Role: in.Role, Principal: in.Principal}
	if in.Mine {
		if !in.Principal.IsZero() && !in.Principal.Equal(id.Principal) {
			return []model.Grant{}, nil // mine and someone else's: nothing
		}
		f.Principal = id.Principal
	}
	grants, err := s.store.ListGrants(ctx, f)
	if err != nil {
		return nil, storeError(err, "listing grants")
	}
	out := make([]model.Grant, 0, min(len(grants), limit))
	// Walk newest first so the limit keeps the most recent, then restore
	// the store's oldest-first order.
	for i := len(grants) - 1; i >= 0 && len(out) < limit; i-- {
		if ok, _, _ := auth.CanView(set, id, &grants[i]); ok {
			out = append(out, grants[i])
		}
	}
	slices.Reverse(out)
	return out, nil
}
