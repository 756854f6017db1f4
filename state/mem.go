package state

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/elevatehq/elevate/model"
)

// memStore is the "mem:" store: everything in maps behind one mutex. It
// keeps the same rules as the SQL stores (the conformance suite checks), and
// copies values in and out so callers cannot alias its state.
type memStore struct {
	db    *memDB
	fence *Fence
}

type memDB struct {
	mu       sync.Mutex
	now      func() time.Time
	closed   bool
	grants   map[string]*model.Grant
	order    []string // grant IDs in creation order
	history  map[string][]GrantEvent
	bindings map[model.BindingKey]BindingRecord
	audit    []AuditEvent
	headSeq  int64
	headHash string
	leases   map[string]Lease
	cursors  map[string]Cursor

	incidents     map[string]*Incident
	incidentOrder []string // incident IDs in creation order
	declarations  map[string]Declaration
	alerts        map[alertID]*Alert
	sources       map[string]SourceStatus
}

// alertID is an alert's identity: its key and notifier.
type alertID struct{ key, notifier string }

func newMem(o options) *memStore {
	return &memStore{db: &memDB{
		now:      o.now,
		grants:   map[string]*model.Grant{},
		history:  map[string][]GrantEvent{},
		bindings: map[model.BindingKey]BindingRecord{},
		leases:   map[string]Lease{},
		cursors:  map[string]Cursor{},

		incidents:    map[string]*Incident{},
		declarations: map[string]Declaration{},
		alerts:       map[alertID]*Alert{},
		sources:      map[string]SourceStatus{},
	}}
}

var errClosed = errors.New("state store is closed")

// lock takes the store's lock for a read.
func (s *memStore) lock() (func(), error) {
	s.db.mu.Lock()
	if s.db.closed {
		s.db.mu.Unlock()
		return nil, errClosed
	}
	return s.db.mu.Unlock, nil
}

// lockWrite takes the lock and checks the fence, as the SQL stores do in
// their write transactions.
func (s *memStore) lockWrite() (func(), error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	if f := s.fence; f != nil {
		l, ok := s.db.leases[f.Lease]
		if !ok || l.Holder != f.Holder || l.Token != f.Token {
			unlock()
			return nil, fencedError(*f, l.Holder, l.Token)
		}
	}
	return unlock, nil
}

func fencedError(f Fence, holder string, token int64) error {
	if holder == "" {
		return fmt.Errorf("writing under lease %s token %d: the lease is not held: %w", f.Lease, f.Token, ErrFenced)
	}
	return fmt.Errorf("writing under lease %s token %d: %s now holds it with token %d: %w", f.Lease, f.Token, holder, token, ErrFenced)
}

func (s *memStore) WithFence(f Fence) Store { return &memStore{db: s.db, fence: &f} }

func (s *memStore) Ping(ctx context.Context) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	unlock()
	return nil
}

func (s *memStore) Close() error {
	s.db.mu.Lock()
	s.db.closed = true
	s.db.mu.Unlock()
	return nil
}

func cloneGrant(g model.Grant) model.Grant {
	g.Approvals = slices.Clone(g.Approvals)
	g.RequesterGroups = slices.Clone(g.RequesterGroups) // nil stays nil: not recorded
	return g
}

func (s *memStore) CreateGrant(ctx context.Context, g model.Grant, c Change) (model.Grant, error) {
	unlock, err := s.lockWrite()
	if err != nil {
		return model.Grant{}, err
	}
	defer unlock()
	g, err = prepareCreate(cloneGrant(g), c, s.db.now())
	if err != nil {
		return model.Grant{}, err
	}
	if _, ok := s.db.grants[g.ID]; ok {
		return model.Grant{}, fmt.Errorf("creating grant %s: %w", g.ID, ErrExists)
	}
	stored := cloneGrant(g)
	s.db.grants[g.ID] = &stored
	s.db.order = append(s.db.order, g.ID)
	ev := grantEvent(nil, cloneGrant(g), c)
	s.db.history[g.ID] = append(s.db.history[g.ID], ev)
	if _, err := s.appendLocked(grantAudit(ev)); err != nil {
		return model.Grant{}, err
	}
	return g, nil
}

func (s *memStore) GetGrant(ctx context.Context, id string) (model.Grant, error) {
	unlock, err := s.lock()
	if err != nil {
		return model.Grant{}, err
	}
	defer unlock()
	g, ok := s.db.grants[id]
	if !ok {
		return model.Grant{}, fmt.Errorf("reading grant %s: %w", id, ErrNotFound)
	}
	return cloneGrant(*g), nil
}

func (s *memStore) UpdateGrant(ctx context.Context, g model.Grant, c Change) (model.Grant, error) {
	unlock, err := s.lockWrite()
	if err != nil {
		return model.Grant{}, err
	}
	defer unlock()
	old, ok := s.db.grants[g.ID]
	if !ok {
		return model.Grant{}, fmt.Errorf("updating grant %s: %w", g.ID, ErrNotFound)
	}
	g, _, err = prepareUpdate(cloneGrant(*old), cloneGrant(g), c, s.db.now())
	if err != nil {
		return model.Grant{}, err
	}
	ev := grantEvent(old, cloneGrant(g), c)
	stored := cloneGrant(g)
	s.db.grants[g.ID] = &stored
	s.db.history[g.ID] = append(s.db.history[g.ID], ev)
	if _, err := s.appendLocked(grantAudit(ev)); err != nil {
		return model.Grant{}, err
	}
	return g, nil
}

func (s *memStore) ListGrants(ctx context.Context, f GrantFilter) ([]model.Grant, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	var out []model.Grant
	for _, id := range s.db.order {
		if g := s.db.grants[id]; matchGrant(g, f) {
			out = append(out, cloneGrant(*g))
		}
	}
	slices.SortStableFunc(out, func(a, b model.Grant) int {
		return cmp.Or(a.RequestedAt.Compare(b.RequestedAt), cmp.Compare(a.ID, b.ID))
	})
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

func (s *memStore) GrantHistory(ctx context.Context, id string) ([]GrantEvent, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	h, ok := s.db.history[id]
	if !ok {
		return nil, fmt.Errorf("reading history of grant %s: %w", id, ErrNotFound)
	}
	out := make([]GrantEvent, len(h))
	for i, ev := range h {
		ev.Grant = cloneGrant(ev.Grant)
		out[i] = ev
	}
	return out, nil
}

func (s *memStore) PutBinding(ctx context.Context, r BindingRecord) error {
	unlock, err := s.lockWrite()
	if err != nil {
		return err
	}
	defer unlock()
	r, err = checkBinding(r, s.db.now())
	if err != nil {
		return err
	}
	s.db.bindings[r.Binding.Key()] = r
	return nil
}

func (s *memStore) DeleteBinding(ctx context.Context, b model.Binding) error {
	unlock, err := s.lockWrite()
	if err != nil {
		return err
	}
	defer unlock()
	delete(s.db.bindings, b.Key())
	return nil
}

func (s *memStore) ListBindings(ctx context.Context, f BindingFilter) ([]BindingRecord, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	var out []BindingRecord
	for _, r := range s.db.bindings {
		b := r.Binding
		if (f.Scope != model.ScopeKey{} && b.Target.ScopeKey() != f.Scope) || (f.Owner != "" && b.Owner != f.Owner) {
			continue
		}
		out = append(out, r)
	}
	slices.SortFunc(out, compareBindings)
	return out, nil
}

// compareBindings is the stable order of ListBindings (the SQL stores'
// ORDER BY).
func compareBindings(x, y BindingRecord) int {
	a, b := x.Binding, y.Binding
	pim := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	return cmp.Or(
		cmp.Compare(a.Target.Cloud, b.Target.Cloud),
		cmp.Compare(a.Target.Scope, b.Target.Scope),
		cmp.Compare(a.Target.Role, b.Target.Role),
		cmp.Compare(a.Target.InstanceARN, b.Target.InstanceARN),
		cmp.Compare(pim(a.Target.PIM), pim(b.Target.PIM)),
		cmp.Compare(a.Principal.Key(), b.Principal.Key()),
		cmp.Compare(a.Owner, b.Owner),
	)
}

func (s *memStore) AppendAudit(ctx context.Context, e AuditEvent) (AuditEvent, error) {
	unlock, err := s.lockWrite()
	if err != nil {
		return AuditEvent{}, err
	}
	defer unlock()
	return s.appendLocked(e)
}

func (s *memStore) appendLocked(e AuditEvent) (AuditEvent, error) {
	e, err := prepareAudit(e)
	if err != nil {
		return AuditEvent{}, err
	}
	prev := s.db.headHash
	if s.db.headSeq == 0 {
		prev = GenesisHash
	}
	e = sealAudit(e, s.db.headSeq+1, prev, s.db.now())
	s.db.audit = append(s.db.audit, e)
	s.db.headSeq, s.db.headHash = e.Seq, e.Hash
	return e, nil
}

func (s *memStore) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	var out []AuditEvent
	for _, e := range s.db.audit {
		if e.Seq <= f.AfterSeq || (f.Subject != "" && e.Subject != f.Subject) || (f.Action != "" && e.Action != f.Action) {
			continue
		}
		out = append(out, e)
		if f.Limit > 0 && len(out) == f.Limit && !f.Tail {
			break
		}
	}
	if f.Tail && f.Limit > 0 && len(out) > f.Limit {
		out = out[len(out)-f.Limit:]
	}
	return out, nil
}

func (s *memStore) VerifyAudit(ctx context.Context) (VerifyResult, error) {
	unlock, err := s.lock()
	if err != nil {
		return VerifyResult{}, err
	}
	defer unlock()
	v := newChainVerifier()
	for _, e := range s.db.audit {
		if !v.next(e) {
			break
		}
	}
	return v.finish(s.db.headSeq, s.db.headHash), nil
}

func (s *memStore) TryAcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (Lease, error) {
	if err := checkLeaseArgs(name, holder, ttl); err != nil {
		return Lease{}, err
	}
	unlock, err := s.lock()
	if err != nil {
		return Lease{}, err
	}
	defer unlock()
	l, err := acquire(s.db.leases[name], name, holder, ttl, now)
	if err != nil {
		return l, err
	}
	s.db.leases[name] = l
	return l, nil
}

// acquire decides a TryAcquireLease on the current lease cur (the zero
// Lease when there is none); every store applies this same rule.
func acquire(cur Lease, name, holder string, ttl time.Duration, now time.Time) (Lease, error) {
	now = normTime(now)
	switch {
	case cur.Holder == holder && now.Before(cur.Expires):
		cur.Expires = normTime(now.Add(ttl))
		return cur, nil
	case cur.Holder != "" && now.Before(cur.Expires):
		return cur, fmt.Errorf("acquiring lease %s for %s: %s holds it until %s: %w", name, holder, cur.Holder, cur.Expires.Format(time.RFC3339Nano), ErrLeaseHeld)
	}
	return Lease{Name: name, Holder: holder, Token: cur.Token + 1, Acquired: now, Expires: normTime(now.Add(ttl))}, nil
}

// checkHeld reports whether l is still the current lease cur.
func checkHeld(cur, l Lease, doing string) error {
	if cur.Holder == "" || cur.Holder != l.Holder || cur.Token != l.Token {
		return fmt.Errorf("%s lease %s for %s (token %d): it is now held by %q with token %d: %w", doing, l.Name, l.Holder, l.Token, cur.Holder, cur.Token, ErrLeaseLost)
	}
	return nil
}

func (s *memStore) RenewLease(ctx context.Context, l Lease, ttl time.Duration, now time.Time) (Lease, error) {
	if err := checkLeaseArgs(l.Name, l.Holder, ttl); err != nil {
		return Lease{}, err
	}
	unlock, err := s.lock()
	if err != nil {
		return Lease{}, err
	}
	defer unlock()
	cur := s.db.leases[l.Name]
	if err := checkHeld(cur, l, "renewing"); err != nil {
		return Lease{}, err
	}
	cur.Expires = normTime(now.Add(ttl))
	s.db.leases[l.Name] = cur
	return cur, nil
}

func (s *memStore) ReleaseLease(ctx context.Context, l Lease) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	cur := s.db.leases[l.Name]
	if err := checkHeld(cur, l, "releasing"); err != nil {
		return err
	}
	s.db.leases[l.Name] = released(cur)
	return nil
}

// released is the stored form of a given-up lease: no holder, same token
// (the next acquisition increments it).
func released(l Lease) Lease {
	return Lease{Name: l.Name, Token: l.Token}
}

func (s *memStore) GetLease(ctx context.Context, name string) (Lease, error) {
	unlock, err := s.lock()
	if err != nil {
		return Lease{}, err
	}
	defer unlock()
	l, ok := s.db.leases[name]
	if !ok {
		return Lease{}, fmt.Errorf("reading lease %s: %w", name, ErrNotFound)
	}
	return l, nil
}

func (s *memStore) GetCursor(ctx context.Context, source string) (Cursor, error) {
	unlock, err := s.lock()
	if err != nil {
		return Cursor{}, err
	}
	defer unlock()
	c, ok := s.db.cursors[source]
	if !ok {
		return Cursor{}, fmt.Errorf("reading cursor of audit source %s: %w", source, ErrNotFound)
	}
	return c, nil
}

func (s *memStore) SetCursor(ctx context.Context, source, value string) error {
	if source == "" {
		return fmt.Errorf("storing cursor: source is required: %w", ErrInvalid)
	}
	unlock, err := s.lockWrite()
	if err != nil {
		return err
	}
	defer unlock()
	s.db.cursors[source] = Cursor{Source: source, Value: value, Updated: normTime(s.db.now())}
	return nil
}

// Incidents.

func (s *memStore) CreateIncident(ctx context.Context, inc Incident, c Change, alerts []Alert) (Incident, error) {
	unlock, err := s.lockWrite()
	if err != nil {
		return Incident{}, err
	}
	defer unlock()
	now := s.db.now()
	inc, err = prepareIncidentCreate(cloneIncident(inc), c, now)
	if err != nil {
		return Incident{}, err
	}
	if _, ok := s.db.incidents[inc.ID]; ok {
		return Incident{}, fmt.Errorf("creating incident %s: %w", inc.ID, ErrExists)
	}
	queued, err := prepareAlerts(alerts, inc.ID, now)
	if err != nil {
		return Incident{}, err
	}
	stored := cloneIncident(inc)
	s.db.incidents[inc.ID] = &stored
	s.db.incidentOrder = append(s.db.incidentOrder, inc.ID)
	s.queueLocked(queued)
	if _, err := s.appendLocked(incidentAudit(inc, c)); err != nil {
		return Incident{}, err
	}
	return inc, nil
}

func (s *memStore) queueLocked(alerts []Alert) {
	for _, a := range alerts {
		id := alertID{a.Key, a.Notifier}
		if _, ok := s.db.alerts[id]; ok {
			continue
		}
		s.db.alerts[id] = &a
	}
}

func (s *memStore) UpdateIncident(ctx context.Context, inc Incident, c Change, alerts []Alert) (Incident, error) {
	unlock, err := s.lockWrite()
	if err != nil {
		return Incident{}, err
	}
	defer unlock()
	old, ok := s.db.incidents[inc.ID]
	if !ok {
		return Incident{}, fmt.Errorf("updating incident %s: %w", inc.ID, ErrNotFound)
	}
	now := s.db.now()
	inc, err = prepareIncidentUpdate(*old, cloneIncident(inc), c, now)
	if err != nil {
		return Incident{}, err
	}
	queued, err := prepareAlerts(alerts, inc.ID, now)
	if err != nil {
		return Incident{}, err
	}
	stored := cloneIncident(inc)
	s.db.incidents[inc.ID] = &stored
	s.queueLocked(queued)
	if _, err := s.appendLocked(incidentAudit(inc, c)); err != nil {
		return Incident{}, err
	}
	return inc, nil
}

func (s *memStore) GetIncident(ctx context.Context, id string) (Incident, error) {
	unlock, err := s.lock()
	if err != nil {
		return Incident{}, err
	}
	defer unlock()
	inc, ok := s.db.incidents[id]
	if !ok {
		return Incident{}, fmt.Errorf("reading incident %s: %w", id, ErrNotFound)
	}
	return cloneIncident(*inc), nil
}

func (s *memStore) ListIncidents(ctx context.Context, f IncidentFilter) ([]Incident, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	var out []Incident
	for _, id := range s.db.incidentOrder {
		if inc := s.db.incidents[id]; matchIncident(inc, f) {
			out = append(out, cloneIncident(*inc))
		}
	}
	slices.SortStableFunc(out, func(a, b Incident) int {
		return cmp.Or(a.Opened.Compare(b.Opened), cmp.Compare(a.ID, b.ID))
	})
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

func (s *memStore) CreateDeclaration(ctx context.Context, d Declaration) (Declaration, error) {
	unlock, err := s.lockWrite()
	if err != nil {
		return Declaration{}, err
	}
	defer unlock()
	d, err = prepareDeclaration(d)
	if err != nil {
		return Declaration{}, err
	}
	if _, ok := s.db.declarations[d.ID]; ok {
		return Declaration{}, fmt.Errorf("creating declaration %s: %w", d.ID, ErrExists)
	}
	s.db.declarations[d.ID] = d
	if _, err := s.appendLocked(declarationAudit(d)); err != nil {
		return Declaration{}, err
	}
	return d, nil
}

func (s *memStore) ListDeclarations(ctx context.Context, f DeclarationFilter) ([]Declaration, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	var out []Declaration
	for _, d := range s.db.declarations {
		if matchDeclaration(&d, f) {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b Declaration) int { return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.ID, b.ID)) })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

func (s *memStore) ListAlerts(ctx context.Context, f AlertFilter) ([]Alert, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	var out []Alert
	for _, a := range s.db.alerts {
		if matchAlert(a, f) {
			c := *a
			c.Payload = slices.Clone(a.Payload)
			out = append(out, c)
		}
	}
	slices.SortFunc(out, compareAlerts)
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// compareAlerts is the order of ListAlerts (the SQL stores' ORDER BY).
func compareAlerts(a, b Alert) int {
	return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.Key, b.Key), cmp.Compare(a.Notifier, b.Notifier))
}

func (s *memStore) UpdateAlert(ctx context.Context, a Alert) (Alert, error) {
	if err := checkAlertUpdate(a); err != nil {
		return Alert{}, err
	}
	unlock, err := s.lockWrite()
	if err != nil {
		return Alert{}, err
	}
	defer unlock()
	cur, ok := s.db.alerts[alertID{a.Key, a.Notifier}]
	if !ok {
		return Alert{}, fmt.Errorf("updating alert %s for %s: %w", a.Key, a.Notifier, ErrNotFound)
	}
	cur.Status, cur.Attempts, cur.LastError = a.Status, a.Attempts, a.LastError
	cur.NextAttempt, cur.Delivered = normTime(a.NextAttempt), normTime(a.Delivered)
	cur.Updated = normTime(s.db.now())
	out := *cur
	out.Payload = slices.Clone(cur.Payload)
	return out, nil
}

func (s *memStore) PutSourceStatus(ctx context.Context, st SourceStatus) error {
	st, err := prepareSourceStatus(st, s.db.now())
	if err != nil {
		return err
	}
	unlock, err := s.lockWrite()
	if err != nil {
		return err
	}
	defer unlock()
	s.db.sources[st.Name] = st
	return nil
}

func (s *memStore) ListSourceStatus(ctx context.Context) ([]SourceStatus, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	out := make([]SourceStatus, 0, len(s.db.sources))
	for _, st := range s.db.sources {
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b SourceStatus) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}
