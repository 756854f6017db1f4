package state

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Incidents stores break-glass incidents, emergency declarations, the
// alert outbox and the health of the audit sources that feed them.
//
// Incidents are updated with optimistic concurrency, like grants: the
// daemon's watcher adds events and reminders while API replicas file
// reviews. Every incident write and every declaration appends an audit
// entry ("incident.ACTION" with subject "incident/ID", "declaration.create"
// with subject "declaration/ID") in the same transaction. Alerts passed to
// an incident write are queued in that transaction too (an outbox): an
// incident is never stored without its alerts, and a crash between the
// write and the delivery only delays the delivery.
type Incidents interface {
	// CreateIncident stores a new incident at version 1 (an empty ID gets a
	// generated one; an existing ID is ErrExists), with the alerts to
	// deliver about it, and returns it as stored.
	CreateIncident(ctx context.Context, inc Incident, c Change, alerts []Alert) (Incident, error)
	// UpdateIncident replaces the incident if inc.Version is the stored
	// version (ErrConflict otherwise) and queues alerts; it returns the
	// incident with the next version. Policy, account, declaration and
	// open time cannot change, and a reviewed incident stays reviewed
	// (ErrInvalid).
	UpdateIncident(ctx context.Context, inc Incident, c Change, alerts []Alert) (Incident, error)
	// GetIncident returns the incident, or ErrNotFound.
	GetIncident(ctx context.Context, id string) (Incident, error)
	// ListIncidents returns the incidents matching f, ordered by open time
	// then ID.
	ListIncidents(ctx context.Context, f IncidentFilter) ([]Incident, error)

	// CreateDeclaration stores a new declaration (an empty ID gets a
	// generated one). Declarations are never changed or deleted.
	CreateDeclaration(ctx context.Context, d Declaration) (Declaration, error)
	// ListDeclarations returns the declarations matching f, ordered by
	// declaration time then ID.
	ListDeclarations(ctx context.Context, f DeclarationFilter) ([]Declaration, error)

	// ListAlerts returns the queued alerts matching f, ordered by creation
	// time, key and notifier.
	ListAlerts(ctx context.Context, f AlertFilter) ([]Alert, error)
	// UpdateAlert records a delivery attempt of the alert with a's key and
	// notifier: its status, attempts, last error, next attempt and delivery
	// time. ErrNotFound if no such alert is queued.
	UpdateAlert(ctx context.Context, a Alert) (Alert, error)

	// PutSourceStatus inserts or replaces the status of an audit source.
	PutSourceStatus(ctx context.Context, st SourceStatus) error
	// ListSourceStatus returns every source's status, by name.
	ListSourceStatus(ctx context.Context) ([]SourceStatus, error)
}

// IncidentStatus is where an incident is in its life.
type IncidentStatus string

// Incident statuses.
const (
	// IncidentOpen: detected, the post-incident review is not filed yet.
	IncidentOpen IncidentStatus = "open"
	// IncidentReviewed: the review is filed; the incident is closed.
	IncidentReviewed IncidentStatus = "reviewed"
)

// Severities of incidents.
const (
	// SeverityCritical: break-glass use nobody declared.
	SeverityCritical = "critical"
	// SeverityWarning: break-glass use covered by a declaration.
	SeverityWarning = "warning"
)

// Incident is one episode of break-glass account use: the events of one
// account of one break_glass policy close together in time, all declared by
// the same declaration or all undeclared.
type Incident struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
	Policy  string `json:"policy"`
	// Account is the break-glass account as the policy writes it.
	Account string `json:"account"`
	Cloud   string `json:"cloud"`
	// Declaration is the ID of the declaration covering the events; empty
	// for undeclared use.
	Declaration string         `json:"declaration,omitempty"`
	Severity    string         `json:"severity"`
	Status      IncidentStatus `json:"status"`
	// Opened is when elevate opened the incident; the review deadline runs
	// from it.
	Opened     time.Time `json:"opened"`
	FirstEvent time.Time `json:"first_event"`
	LastEvent  time.Time `json:"last_event"`
	ReviewDue  time.Time `json:"review_due"`
	// EventCount counts every distinct event, also those beyond the ones
	// kept in Events.
	EventCount int `json:"event_count"`
	Successes  int `json:"successes"`
	Failures   int `json:"failures"`
	// Events are the incident's events, oldest first, at most
	// MaxIncidentEvents of them.
	Events []IncidentEvent `json:"events"`

	ReviewedBy  string    `json:"reviewed_by,omitempty"`
	ReviewedAt  time.Time `json:"reviewed_at"`
	ReviewNotes string    `json:"review_notes,omitempty"`

	// Reminders counts the overdue-review alerts sent; LastReminder is the
	// latest one.
	Reminders    int       `json:"reminders"`
	LastReminder time.Time `json:"last_reminder"`
	// Updated is set from the store's clock on every write.
	Updated time.Time `json:"updated"`
}

// MaxIncidentEvents is how many events an incident keeps; later events
// are counted but not kept.
const MaxIncidentEvents = 500

// IncidentEvent is one audit record of an incident.
type IncidentEvent struct {
	// Key identifies the event across re-reads: the cloud's event ID, or a
	// digest of the record when it has none.
	Key      string    `json:"key"`
	ID       string    `json:"id,omitempty"`
	Name     string    `json:"name,omitempty"`
	Time     time.Time `json:"time"`
	SourceIP string    `json:"source_ip,omitempty"`
	// Outcome is "success" or "failure".
	Outcome string `json:"outcome"`
	// Source is the audit source that delivered the record, Where the
	// record's place in it (file, record, line).
	Source string `json:"source,omitempty"`
	Where  string `json:"where,omitempty"`
}

// IncidentFilter selects incidents; zero fields match everything.
type IncidentFilter struct {
	// Open matches incidents not yet reviewed.
	Open    bool
	Policy  string
	Account string
	// LastEventSince matches incidents with an event at or after the time.
	LastEventSince time.Time
	// OpenedSince matches incidents opened at or after the time.
	OpenedSince time.Time
	// Limit caps the result; 0 means no limit.
	Limit int
}

// Declaration announces an emergency before a break-glass account is used:
// detections of the policy's accounts whose event time falls in
// [At-DeclarationLeeway, Expires) are declared, not critical.
type Declaration struct {
	ID     string `json:"id"`
	Policy string `json:"policy"`
	Reason string `json:"reason"`
	// Incident is the caller's own reference for the emergency (a ticket
	// or pager incident ID).
	Incident   string    `json:"incident,omitempty"`
	DeclaredBy string    `json:"declared_by"`
	At         time.Time `json:"at"`
	Expires    time.Time `json:"expires"`
}

// DeclarationLeeway is how long before its declaration time a declaration
// still covers an event: audit timestamps and the daemon's clock disagree
// by a little.
const DeclarationLeeway = 2 * time.Minute

// Covers reports whether the declaration covers an event at t.
func (d Declaration) Covers(t time.Time) bool {
	return !t.Before(d.At.Add(-DeclarationLeeway)) && t.Before(d.Expires)
}

// DeclarationFilter selects declarations; zero fields match everything.
type DeclarationFilter struct {
	Policy string
	// ExpiresAfter matches declarations that expire after the time.
	ExpiresAfter time.Time
	// Limit caps the result; 0 means no limit.
	Limit int
}

// AlertStatus is where an alert's delivery to one notifier stands.
type AlertStatus string

// Alert statuses.
const (
	// AlertPending: not delivered yet; NextAttempt says when to try.
	AlertPending AlertStatus = "pending"
	// AlertDelivered: the notifier accepted it.
	AlertDelivered AlertStatus = "delivered"
	// AlertFailed: delivery was given up; LastError says why.
	AlertFailed AlertStatus = "failed"
)

// Alert is one alert queued for one notifier. Key is the alert's
// idempotency key, the same for every notifier of the alert; queueing a
// key and notifier that are already queued does nothing, so an alert is
// delivered once per notifier however often it is raised.
type Alert struct {
	Key      string `json:"key"`
	Notifier string `json:"notifier"`
	Incident string `json:"incident,omitempty"`
	Kind     string `json:"kind"`
	// Payload is the alert body (JSON), fixed when queued so that every
	// attempt sends the same bytes.
	Payload     json.RawMessage `json:"payload"`
	Status      AlertStatus     `json:"status"`
	Attempts    int             `json:"attempts"`
	LastError   string          `json:"last_error,omitempty"`
	NextAttempt time.Time       `json:"next_attempt"`
	Created     time.Time       `json:"created"`
	Delivered   time.Time       `json:"delivered"`
	Updated     time.Time       `json:"updated"`
}

// AlertFilter selects alerts; zero fields match everything.
type AlertFilter struct {
	// Status matches any of the listed statuses.
	Status   []AlertStatus
	Incident string
	// DueBy matches alerts whose next attempt is at or before the time.
	DueBy time.Time
	// Limit caps the result; 0 means no limit.
	Limit int
}

// SourceStatus is what the daemon last saw of one audit source.
type SourceStatus struct {
	Name string `json:"name"`
	// Type is the kind of source ("file"); Format the log format it reads.
	Type   string `json:"type"`
	Format string `json:"format"`
	Cloud  string `json:"cloud"`
	// LastPoll is the last read attempt; Error its error ("" when it
	// worked).
	LastPoll time.Time `json:"last_poll"`
	Error    string    `json:"error,omitempty"`
	// CaughtUp is the last time a read found nothing left to read.
	CaughtUp time.Time `json:"caught_up"`
	// LastEvent is the time of the newest event the source delivered.
	LastEvent time.Time `json:"last_event"`
	// Updated is set from the store's clock.
	Updated time.Time `json:"updated"`
}

// newID returns prefix and 16 random base32 characters (80 bits).
func newID(prefix string) string {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("reading random bytes for an ID: %v", err))
	}
	return prefix + idEncoding.EncodeToString(b[:])
}

func validIncidentStatus(s IncidentStatus) bool {
	return s == IncidentOpen || s == IncidentReviewed
}

// normIncident puts an incident's times in the stored form.
func normIncident(inc Incident) Incident {
	inc.Opened = normTime(inc.Opened)
	inc.FirstEvent = normTime(inc.FirstEvent)
	inc.LastEvent = normTime(inc.LastEvent)
	inc.ReviewDue = normTime(inc.ReviewDue)
	inc.ReviewedAt = normTime(inc.ReviewedAt)
	inc.LastReminder = normTime(inc.LastReminder)
	inc.Updated = normTime(inc.Updated)
	if len(inc.Events) == 0 {
		inc.Events = nil
	} else {
		evs := make([]IncidentEvent, len(inc.Events))
		for i, e := range inc.Events {
			e.Time = normTime(e.Time)
			evs[i] = e
		}
		inc.Events = evs
	}
	return inc
}

func checkIncidentFields(inc Incident) error {
	if inc.Policy == "" || inc.Account == "" {
		return fmt.Errorf("storing incident %s: policy and account are required: %w", inc.ID, ErrInvalid)
	}
	if !validIncidentStatus(inc.Status) {
		return fmt.Errorf("storing incident %s: status %q is not open or reviewed: %w", inc.ID, inc.Status, ErrInvalid)
	}
	if inc.Severity != SeverityCritical && inc.Severity != SeverityWarning {
		return fmt.Errorf("storing incident %s: severity %q is not %s or %s: %w", inc.ID, inc.Severity, SeverityCritical, SeverityWarning, ErrInvalid)
	}
	if inc.Opened.IsZero() {
		return fmt.Errorf("storing incident %s: the open time is required: %w", inc.ID, ErrInvalid)
	}
	if len(inc.Events) > MaxIncidentEvents {
		return fmt.Errorf("storing incident %s: %d events, more than the %d kept: %w", inc.ID, len(inc.Events), MaxIncidentEvents, ErrInvalid)
	}
	if inc.Status == IncidentReviewed && (inc.ReviewedBy == "" || inc.ReviewedAt.IsZero()) {
		return fmt.Errorf("storing incident %s: a reviewed incident needs the reviewer and the review time: %w", inc.ID, ErrInvalid)
	}
	return nil
}

// prepareIncidentCreate validates a new incident and fills in its ID,
// version and update time.
func prepareIncidentCreate(inc Incident, c Change, now time.Time) (Incident, error) {
	if err := checkChange(c); err != nil {
		return Incident{}, err
	}
	inc = normIncident(inc)
	if inc.ID == "" {
		inc.ID = newID("i")
	} else if !grantIDRE.MatchString(inc.ID) {
		return Incident{}, fmt.Errorf("creating incident: ID %q must be letters, digits, '.', '_' or '-': %w", inc.ID, ErrInvalid)
	}
	if err := checkIncidentFields(inc); err != nil {
		return Incident{}, err
	}
	inc.Version = 1
	inc.Updated = normTime(now)
	return inc, nil
}

// prepareIncidentUpdate checks an update of old to inc and returns the
// incident to store.
func prepareIncidentUpdate(old, inc Incident, c Change, now time.Time) (Incident, error) {
	if err := checkChange(c); err != nil {
		return Incident{}, err
	}
	inc = normIncident(inc)
	if inc.Version != old.Version {
		return Incident{}, fmt.Errorf("updating incident %s: version %d is not the stored %d: %w", inc.ID, inc.Version, old.Version, ErrConflict)
	}
	if inc.Policy != old.Policy || inc.Account != old.Account || inc.Declaration != old.Declaration || !inc.Opened.Equal(old.Opened) {
		return Incident{}, fmt.Errorf("updating incident %s: policy, account, declaration and open time cannot change: %w", inc.ID, ErrInvalid)
	}
	if old.Status == IncidentReviewed && inc.Status != IncidentReviewed {
		return Incident{}, fmt.Errorf("updating incident %s: a reviewed incident cannot be reopened: %w", inc.ID, ErrInvalid)
	}
	if err := checkIncidentFields(inc); err != nil {
		return Incident{}, err
	}
	inc.Version = old.Version + 1
	inc.Updated = normTime(now)
	return inc, nil
}

// incidentAudit is the audit entry of an incident write.
func incidentAudit(inc Incident, c Change) AuditEvent {
	data, _ := json.Marshal(struct {
		Version     int64          `json:"version"`
		Policy      string         `json:"policy"`
		Account     string         `json:"account"`
		Status      IncidentStatus `json:"status"`
		Severity    string         `json:"severity"`
		Declaration string         `json:"declaration,omitempty"`
		Events      int            `json:"events"`
		Note        string         `json:"note,omitempty"`
	}{inc.Version, inc.Policy, inc.Account, inc.Status, inc.Severity, inc.Declaration, inc.EventCount, c.Note})
	return AuditEvent{Actor: c.Actor, Action: "incident." + c.Action, Subject: "incident/" + inc.ID, Data: data}
}

// prepareDeclaration validates a new declaration.
func prepareDeclaration(d Declaration) (Declaration, error) {
	d.At = normTime(d.At)
	d.Expires = normTime(d.Expires)
	if d.ID == "" {
		d.ID = newID("d")
	} else if !grantIDRE.MatchString(d.ID) {
		return d, fmt.Errorf("creating declaration: ID %q must be letters, digits, '.', '_' or '-': %w", d.ID, ErrInvalid)
	}
	if d.Policy == "" || d.Reason == "" || d.DeclaredBy == "" || d.At.IsZero() {
		return d, fmt.Errorf("creating declaration: policy, reason, declarer and time are required: %w", ErrInvalid)
	}
	if !d.Expires.After(d.At) {
		return d, fmt.Errorf("creating declaration: it must expire after it is made: %w", ErrInvalid)
	}
	return d, nil
}

func declarationAudit(d Declaration) AuditEvent {
	data, _ := json.Marshal(struct {
		Policy   string    `json:"policy"`
		Reason   string    `json:"reason"`
		Incident string    `json:"incident,omitempty"`
		Expires  time.Time `json:"expires"`
	}{d.Policy, d.Reason, d.Incident, d.Expires})
	return AuditEvent{Actor: d.DeclaredBy, Action: "declaration.create", Subject: "declaration/" + d.ID, Data: data}
}

// prepareAlerts validates alerts to queue and stamps them.
func prepareAlerts(alerts []Alert, incident string, now time.Time) ([]Alert, error) {
	out := make([]Alert, 0, len(alerts))
	for _, a := range alerts {
		if a.Key == "" || a.Notifier == "" || a.Kind == "" {
			return nil, fmt.Errorf("queueing alert: key, notifier and kind are required: %w", ErrInvalid)
		}
		if !json.Valid(a.Payload) {
			return nil, fmt.Errorf("queueing alert %s: the payload is not valid JSON: %w", a.Key, ErrInvalid)
		}
		if a.Incident == "" {
			a.Incident = incident
		}
		a.Status = AlertPending
		a.Attempts = 0
		a.LastError = ""
		a.Created = normTime(now)
		a.Updated = a.Created
		a.Delivered = time.Time{}
		if a.NextAttempt.IsZero() {
			a.NextAttempt = a.Created
		}
		a.NextAttempt = normTime(a.NextAttempt)
		a.Payload = slices.Clone(a.Payload)
		out = append(out, a)
	}
	return out, nil
}

func checkAlertUpdate(a Alert) error {
	switch a.Status {
	case AlertPending, AlertDelivered, AlertFailed:
	default:
		return fmt.Errorf("updating alert %s for %s: status %q is not pending, delivered or failed: %w", a.Key, a.Notifier, a.Status, ErrInvalid)
	}
	return nil
}

func matchIncident(inc *Incident, f IncidentFilter) bool {
	if f.Open && inc.Status != IncidentOpen {
		return false
	}
	if f.Policy != "" && inc.Policy != f.Policy {
		return false
	}
	if f.Account != "" && inc.Account != f.Account {
		return false
	}
	if !f.LastEventSince.IsZero() && inc.LastEvent.Before(normTime(f.LastEventSince)) {
		return false
	}
	if !f.OpenedSince.IsZero() && inc.Opened.Before(normTime(f.OpenedSince)) {
		return false
	}
	return true
}

func matchDeclaration(d *Declaration, f DeclarationFilter) bool {
	if f.Policy != "" && d.Policy != f.Policy {
		return false
	}
	if !f.ExpiresAfter.IsZero() && !d.Expires.After(normTime(f.ExpiresAfter)) {
		return false
	}
	return true
}

func matchAlert(a *Alert, f AlertFilter) bool {
	if len(f.Status) > 0 && !slices.Contains(f.Status, a.Status) {
		return false
	}
	if f.Incident != "" && a.Incident != f.Incident {
		return false
	}
	if !f.DueBy.IsZero() && a.NextAttempt.After(normTime(f.DueBy)) {
		return false
	}
	return true
}

func cloneIncident(inc Incident) Incident {
	inc.Events = slices.Clone(inc.Events)
	return inc
}

// prepareSourceStatus validates a source status and stamps it.
func prepareSourceStatus(st SourceStatus, now time.Time) (SourceStatus, error) {
	if st.Name == "" {
		return st, fmt.Errorf("storing audit source status: name is required: %w", ErrInvalid)
	}
	st.LastPoll = normTime(st.LastPoll)
	st.CaughtUp = normTime(st.CaughtUp)
	st.LastEvent = normTime(st.LastEvent)
	st.Updated = normTime(now)
	return st, nil
}
