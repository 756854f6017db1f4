package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	bglass "github.com/elevatehq/elevate/breakglass"
	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/server/auth"
	"github.com/elevatehq/elevate/state"
)

// Break-glass endpoints: incidents and their reviews, declarations, the
// readiness check and the access report. The watcher (bglass.Watcher,
// on the leader) writes incidents; these endpoints read them and file
// reviews, from any replica.

// Codes of the break-glass endpoints.
const (
	CodeAlreadyReviewed = "already-reviewed"  // 409: the incident's review is filed
	CodeUnknownPolicy   = "unknown-policy"    // 400: no break_glass block of that name
	CodeReasonNotListed = "reason-not-listed" // 400: the policy lists its reasons and this is not one
)

// Limits of the break-glass endpoints.
const (
	MaxReviewNotesLen          = 10000
	DefaultDeclarationDuration = 4 * time.Hour
	MaxDeclarationDuration     = 72 * time.Hour
	DefaultReportPeriod        = 30 * 24 * time.Hour
	MaxReportPeriod            = 366 * 24 * time.Hour
	DefaultIncidentLimit       = 100
)

// IncidentService implements the break-glass endpoints on top of the
// state store and server/auth's decisions.
type IncidentService struct {
	store    state.Store
	policies func() *policies.Set
	clock    Clock
	sources  []bglass.SourceInfo
	getenv   func(string) string
}

func (s *IncidentService) now() time.Time { return s.clock.Now().UTC() }

// incidentNotFound is the 404 of an unknown incident.
func incidentNotFound(id string) *Error {
	return errorf(http.StatusNotFound, CodeNotFound, "no incident %q: elevate incidents lists them", clip(id))
}

func (s *IncidentService) storeErr(err error, doing string) *Error {
	if errors.Is(err, state.ErrNotFound) {
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: "not found while " + doing, Cause: err}
	}
	if errors.Is(err, state.ErrConflict) {
		return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: "the incident kept changing while " + doing + "; try again", Cause: err}
	}
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeStoreUnavailable, Message: "the state store failed while " + doing + "; try again shortly", Cause: err}
}

// viewIncidents checks that id may read incidents.
func (s *IncidentService) viewIncidents(id *auth.Identity) error {
	return decision(auth.CanViewIncidents(s.policies(), id))
}

// ListIncidents returns incidents, oldest first; with more than limit,
// the limit most recently opened.
func (s *IncidentService) ListIncidents(ctx context.Context, id *auth.Identity, f state.IncidentFilter, limit int) ([]state.Incident, error) {
	if err := s.viewIncidents(id); err != nil {
		return nil, err
	}
	incs, err := s.store.ListIncidents(ctx, f)
	if err != nil {
		return nil, s.storeErr(err, "listing incidents")
	}
	if len(incs) > limit {
		incs = incs[len(incs)-limit:]
	}
	return incs, nil
}

// GetIncident returns an incident and its alerts.
func (s *IncidentService) GetIncident(ctx context.Context, id *auth.Identity, incID string) (state.Incident, []state.Alert, error) {
	if err := s.viewIncidents(id); err != nil {
		return state.Incident{}, nil, err
	}
	inc, err := s.store.GetIncident(ctx, incID)
	if errors.Is(err, state.ErrNotFound) {
		return state.Incident{}, nil, incidentNotFound(incID)
	}
	if err != nil {
		return state.Incident{}, nil, s.storeErr(err, "reading the incident")
	}
	alerts, err := s.store.ListAlerts(ctx, state.AlertFilter{Incident: inc.ID})
	if err != nil {
		return state.Incident{}, nil, s.storeErr(err, "reading the incident's alerts")
	}
	return inc, alerts, nil
}

// Review files the post-incident review of an open incident.
func (s *IncidentService) Review(ctx context.Context, id *auth.Identity, incID, notes string) (state.Incident, error) {
	if err := decision(auth.CanReviewIncident(s.policies(), id)); err != nil {
		return state.Incident{}, err
	}
	notes = strings.TrimSpace(notes)
	if notes == "" {
		return state.Incident{}, badRequest("notes are required: say what happened, who used the account and why, and what changes (credentials rotated, a jit policy added)")
	}
	if err := checkText("notes", notes, MaxReviewNotesLen); err != nil {
		return state.Incident{}, err
	}
	for range maxUpdateAttempts {
		inc, err := s.store.GetIncident(ctx, incID)
		if errors.Is(err, state.ErrNotFound) {
			return state.Incident{}, incidentNotFound(incID)
		}
		if err != nil {
			return state.Incident{}, s.storeErr(err, "reading the incident")
		}
		if inc.Status == state.IncidentReviewed {
			return state.Incident{}, errorf(http.StatusConflict, CodeAlreadyReviewed, "incident %s was reviewed by %s at %s", inc.ID, inc.ReviewedBy, formatTime(inc.ReviewedAt))
		}
		inc.Status, inc.ReviewedBy, inc.ReviewedAt, inc.ReviewNotes = state.IncidentReviewed, id.Principal.String(), s.now(), notes
		out, err := s.store.UpdateIncident(ctx, inc, state.Change{Actor: id.Principal.String(), Action: "review", Note: clipNote(notes)}, nil)
		if errors.Is(err, state.ErrConflict) {
			continue // the watcher added events meanwhile
		}
		if err != nil {
			return state.Incident{}, s.storeErr(err, "filing the review")
		}
		return out, nil
	}
	return state.Incident{}, errorf(http.StatusConflict, CodeConflict, "incident %s kept changing; try again", incID)
}

// clipNote keeps audit notes short.
func clipNote(s string) string {
	if len(s) <= 200 {
		return s
	}
	return s[:200] + "…"
}

// DeclareInput is a declaration request.
type DeclareInput struct {
	Policy   string
	Reason   string
	Incident string
	For      time.Duration
}

// Declare records a declaration of the break_glass policy.
func (s *IncidentService) Declare(ctx context.Context, id *auth.Identity, in DeclareInput) (state.Declaration, error) {
	set := s.policies()
	if err := decision(auth.CanDeclare(set, id)); err != nil {
		return state.Declaration{}, err
	}
	if set == nil {
		return state.Declaration{}, errorf(http.StatusServiceUnavailable, CodePoliciesUnavailable, "no policy set is loaded yet; try again shortly")
	}
	if in.Policy == "" {
		return state.Declaration{}, badRequest("policy is required: name the break_glass policy whose accounts will be used")
	}
	bg := set.BreakGlassPolicy(in.Policy)
	if bg == nil {
		var names []string
		for _, b := range set.BreakGlass {
			names = append(names, b.Name)
		}
		return state.Declaration{}, errorf(http.StatusBadRequest, CodeUnknownPolicy, "there is no break_glass policy %q; the policies are: %s", clip(in.Policy), strings.Join(names, ", "))
	}
	in.Reason = strings.TrimSpace(in.Reason)
	if in.Reason == "" {
		return state.Declaration{}, badRequest("reason is required: say what the emergency is")
	}
	if err := checkText("reason", in.Reason, MaxJustificationLen); err != nil {
		return state.Declaration{}, err
	}
	if len(bg.Reasons) > 0 && !slices.Contains(bg.Reasons, in.Reason) {
		return state.Declaration{}, errorf(http.StatusBadRequest, CodeReasonNotListed, "policy %s accepts these reasons: %s", bg.Name, strings.Join(bg.Reasons, ", "))
	}
	if err := checkText("incident", in.Incident, MaxTicketLen); err != nil {
		return state.Declaration{}, err
	}
	if in.For == 0 {
		in.For = DefaultDeclarationDuration
	}
	if in.For > MaxDeclarationDuration {
		return state.Declaration{}, badRequest("for is %s; a declaration lasts at most %s (declare again if the emergency goes on)", model.FormatDuration(in.For), model.FormatDuration(MaxDeclarationDuration))
	}
	now := s.now()
	d, err := s.store.CreateDeclaration(ctx, state.Declaration{ID: newDeclarationID(now), Policy: bg.Name, Reason: in.Reason,
		Incident: in.Incident, DeclaredBy: id.Principal.String(), At: now, Expires: now.Add(in.For)})
	if err != nil {
		return state.Declaration{}, s.storeErr(err, "recording the declaration")
	}
	return d, nil
}

// newDeclarationID returns "dcl-" and a lowercase ULID.
func newDeclarationID(now time.Time) string {
	return "dcl-" + strings.ToLower(ulid.MustNew(ulid.Timestamp(now), ulid.DefaultEntropy()).String())
}

// ListDeclarations returns declarations, oldest first; active ones only
// when asked.
func (s *IncidentService) ListDeclarations(ctx context.Context, id *auth.Identity, active bool, policy string) ([]state.Declaration, error) {
	if err := s.viewIncidents(id); err != nil {
		return nil, err
	}
	f := state.DeclarationFilter{Policy: policy}
	if active {
		f.ExpiresAfter = s.now()
	}
	ds, err := s.store.ListDeclarations(ctx, f)
	if err != nil {
		return nil, s.storeErr(err, "listing declarations")
	}
	return ds, nil
}

// Check runs the readiness check.
func (s *IncidentService) Check(ctx context.Context, id *auth.Identity) (bglass.CheckReport, error) {
	if ok, code, msg := auth.CanViewIncidents(s.policies(), id); !ok {
		if code == auth.CodeAdminOnly {
			msg = "the break-glass readiness check is reserved to elevate admins"
		}
		return bglass.CheckReport{}, decision(ok, code, msg)
	}
	set := s.policies()
	now := s.now()
	status, err := s.store.ListSourceStatus(ctx)
	if err != nil {
		return bglass.CheckReport{}, s.storeErr(err, "reading audit source status")
	}
	open, err := s.store.ListIncidents(ctx, state.IncidentFilter{Open: true})
	if err != nil {
		return bglass.CheckReport{}, s.storeErr(err, "listing incidents")
	}
	incidents := open
	if set != nil {
		var reach time.Duration
		for _, bg := range set.BreakGlass {
			reach = max(reach, bg.UseWindow)
		}
		if reach > 0 {
			recent, err := s.store.ListIncidents(ctx, state.IncidentFilter{LastEventSince: now.Add(-reach)})
			if err != nil {
				return bglass.CheckReport{}, s.storeErr(err, "listing incidents")
			}
			for _, inc := range recent {
				if inc.Status != state.IncidentOpen {
					incidents = append(incidents, inc)
				}
			}
		}
	}
	alerts, err := s.store.ListAlerts(ctx, state.AlertFilter{Status: []state.AlertStatus{state.AlertPending, state.AlertFailed}})
	if err != nil {
		return bglass.CheckReport{}, s.storeErr(err, "reading the alert outbox")
	}
	return bglass.Check(bglass.CheckInput{Now: now, Set: set, Sources: s.sources, Status: status, Incidents: incidents,
		Alerts: alerts, Getenv: s.getenv}), nil
}

// Report builds the access report of the period.
func (s *IncidentService) Report(ctx context.Context, id *auth.Identity, period time.Duration) (bglass.Report, error) {
	if ok, code, msg := auth.CanViewIncidents(s.policies(), id); !ok {
		if code == auth.CodeAdminOnly {
			msg = "the access report is reserved to elevate admins"
		}
		return bglass.Report{}, decision(ok, code, msg)
	}
	now := s.now()
	since := now.Add(-period)
	grants, err := s.store.ListGrants(ctx, state.GrantFilter{UpdatedSince: since})
	if err != nil {
		return bglass.Report{}, s.storeErr(err, "listing grants")
	}
	incs, err := s.store.ListIncidents(ctx, state.IncidentFilter{LastEventSince: since})
	if err != nil {
		return bglass.Report{}, s.storeErr(err, "listing incidents")
	}
	return bglass.BuildReport(bglass.ReportInput{Since: since, Now: now, Set: s.policies(), Grants: grants, Incidents: incs}), nil
}

// Handlers.

// checkParams rejects query parameters the endpoint does not take.
func checkParams(q url.Values, allowed ...string) error {
	for k := range q {
		if !slices.Contains(allowed, k) {
			if len(allowed) == 0 {
				return badRequest("unknown query parameter %q: this endpoint takes none", clip(k))
			}
			return badRequest("unknown query parameter %q: use %s", clip(k), strings.Join(allowed, ", "))
		}
	}
	return nil
}

func boolParam(q url.Values, name string) (bool, error) {
	v := q.Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest("%s must be true or false, not %q", name, clip(v))
	}
	return b, nil
}

func (s *Server) handleListIncidents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := checkParams(q, "open", "policy", "limit"); err != nil {
		writeError(w, err)
		return
	}
	open, err := boolParam(q, "open")
	if err != nil {
		writeError(w, err)
		return
	}
	limit := DefaultIncidentLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxListLimit {
			writeError(w, badRequest("limit must be a whole number from 1 to %d, not %q", MaxListLimit, clip(v)))
			return
		}
		limit = n
	}
	incs, err := s.incidents.ListIncidents(r.Context(), identity(r), state.IncidentFilter{Open: open, Policy: q.Get("policy")}, limit)
	if err != nil {
		s.writeServiceError(w, r, err)
		return
	}
	now := s.opts.Clock.Now()
	out := IncidentList{Incidents: make([]IncidentView, 0, len(incs))}
	for _, inc := range incs {
		out.Incidents = append(out.Incidents, newIncidentView(inc, now, false))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGetIncident(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r.URL.Query()); err != nil {
		writeError(w, err)
		return
	}
	inc, alerts, err := s.incidents.GetIncident(r.Context(), identity(r), r.PathValue("id"))
	if err != nil {
		s.writeServiceError(w, r, err)
		return
	}
	out := IncidentDetail{Incident: newIncidentView(inc, s.opts.Clock.Now(), true), Alerts: make([]AlertView, 0, len(alerts))}
	for _, a := range alerts {
		out.Alerts = append(out.Alerts, newAlertView(a))
	}
	writeJSON(w, http.StatusOK, out)
}

type reviewBody struct {
	Notes string `json:"notes"`
}

func (s *Server) handleReviewIncident(w http.ResponseWriter, r *http.Request) {
	var body reviewBody
	if err := decodeJSON(w, r, &body, false); err != nil {
		writeError(w, err)
		return
	}
	inc, err := s.incidents.Review(r.Context(), identity(r), r.PathValue("id"), body.Notes)
	if err != nil {
		s.writeServiceError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newIncidentView(inc, s.opts.Clock.Now(), true))
}

type declareBody struct {
	Policy   string `json:"policy"`
	Reason   string `json:"reason"`
	Incident string `json:"incident"`
	For      string `json:"for"`
}

func (s *Server) handleDeclare(w http.ResponseWriter, r *http.Request) {
	var body declareBody
	if err := decodeJSON(w, r, &body, false); err != nil {
		writeError(w, err)
		return
	}
	in := DeclareInput{Policy: body.Policy, Reason: body.Reason, Incident: strings.TrimSpace(body.Incident)}
	if body.For != "" {
		d, err := parseDuration("for", body.For)
		if err != nil {
			writeError(w, err)
			return
		}
		in.For = d
	}
	d, err := s.incidents.Declare(r.Context(), identity(r), in)
	if err != nil {
		s.writeServiceError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/declarations")
	writeJSON(w, http.StatusCreated, newDeclarationView(d, s.opts.Clock.Now()))
}

func (s *Server) handleListDeclarations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := checkParams(q, "active", "policy"); err != nil {
		writeError(w, err)
		return
	}
	active, err := boolParam(q, "active")
	if err != nil {
		writeError(w, err)
		return
	}
	ds, err := s.incidents.ListDeclarations(r.Context(), identity(r), active, q.Get("policy"))
	if err != nil {
		s.writeServiceError(w, r, err)
		return
	}
	now := s.opts.Clock.Now()
	out := DeclarationList{Declarations: make([]DeclarationView, 0, len(ds))}
	for _, d := range ds {
		out.Declarations = append(out.Declarations, newDeclarationView(d, now))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleBreakglassCheck(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r.URL.Query()); err != nil {
		writeError(w, err)
		return
	}
	rep, err := s.incidents.Check(r.Context(), identity(r))
	if err != nil {
		s.writeServiceError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newCheckView(rep, s.opts.Clock.Now()))
}

func (s *Server) handleReport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := checkParams(q, "since"); err != nil {
		writeError(w, err)
		return
	}
	period := DefaultReportPeriod
	if v := q.Get("since"); v != "" {
		d, err := parseDuration("since", v)
		if err != nil {
			writeError(w, err)
			return
		}
		if d > MaxReportPeriod {
			writeError(w, badRequest("since is %s; the report covers at most %s", model.FormatDuration(d), model.FormatDuration(MaxReportPeriod)))
			return
		}
		period = d
	}
	rep, err := s.incidents.Report(r.Context(), identity(r), period)
	if err != nil {
		s.writeServiceError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newReportView(rep))
}

// Views.

// IncidentView is an incident as the API shows it.
type IncidentView struct {
	ID          string              `json:"id"`
	Policy      string              `json:"policy"`
	Account     string              `json:"account"`
	Cloud       string              `json:"cloud,omitempty"`
	Status      string              `json:"status"`
	Severity    string              `json:"severity"`
	Declared    bool                `json:"declared"`
	Declaration string              `json:"declaration,omitempty"`
	Opened      string              `json:"opened"`
	FirstEvent  string              `json:"first_event"`
	LastEvent   string              `json:"last_event"`
	ReviewDue   string              `json:"review_due,omitempty"`
	Overdue     bool                `json:"overdue"`
	EventCount  int                 `json:"event_count"`
	Successes   int                 `json:"successes"`
	Failures    int                 `json:"failures"`
	Events      []IncidentEventView `json:"events,omitempty"`
	Review      *ReviewView         `json:"review,omitempty"`
	Reminders   int                 `json:"reminders"`
	Updated     string              `json:"updated"`
}

// IncidentEventView is one audit record of an incident.
type IncidentEventView struct {
	ID       string `json:"id,omitempty"`
	Name     string `json:"name,omitempty"`
	Time     string `json:"time"`
	SourceIP string `json:"source_ip,omitempty"`
	Outcome  string `json:"outcome"`
	Source   string `json:"source,omitempty"`
	Where    string `json:"where,omitempty"`
}

// ReviewView is a filed post-incident review.
type ReviewView struct {
	By    string `json:"by"`
	At    string `json:"at"`
	Notes string `json:"notes"`
}

// IncidentList is the body of GET /v1/incidents.
type IncidentList struct {
	Incidents []IncidentView `json:"incidents"`
}

// IncidentDetail is the body of GET /v1/incidents/{id}.
type IncidentDetail struct {
	Incident IncidentView `json:"incident"`
	Alerts   []AlertView  `json:"alerts"`
}

// AlertView is the delivery of one alert to one notifier.
type AlertView struct {
	Key         string `json:"key"`
	Notifier    string `json:"notifier"`
	Kind        string `json:"kind"`
	Status      string `json:"status"`
	Attempts    int    `json:"attempts"`
	LastError   string `json:"last_error,omitempty"`
	Created     string `json:"created"`
	NextAttempt string `json:"next_attempt,omitempty"`
	Delivered   string `json:"delivered,omitempty"`
}

// DeclarationView is a declaration as the API shows it.
type DeclarationView struct {
	ID         string `json:"id"`
	Policy     string `json:"policy"`
	Reason     string `json:"reason"`
	Incident   string `json:"incident,omitempty"`
	DeclaredBy string `json:"declared_by"`
	At         string `json:"at"`
	Expires    string `json:"expires"`
	Active     bool   `json:"active"`
}

// DeclarationList is the body of GET /v1/declarations.
type DeclarationList struct {
	Declarations []DeclarationView `json:"declarations"`
}

func newIncidentView(inc state.Incident, now time.Time, events bool) IncidentView {
	v := IncidentView{
		ID: inc.ID, Policy: inc.Policy, Account: inc.Account, Cloud: inc.Cloud, Status: string(inc.Status), Severity: inc.Severity,
		Declared: inc.Declaration != "", Declaration: inc.Declaration, Opened: formatTime(inc.Opened),
		FirstEvent: formatTime(inc.FirstEvent), LastEvent: formatTime(inc.LastEvent), ReviewDue: formatTime(inc.ReviewDue),
		Overdue: bglass.Overdue(inc, now), EventCount: inc.EventCount, Successes: inc.Successes, Failures: inc.Failures,
		Reminders: inc.Reminders, Updated: formatTime(inc.Updated),
	}
	if events {
		for _, e := range inc.Events {
			v.Events = append(v.Events, IncidentEventView{ID: e.ID, Name: e.Name, Time: formatTime(e.Time), SourceIP: e.SourceIP,
				Outcome: e.Outcome, Source: e.Source, Where: e.Where})
		}
	}
	if inc.Status == state.IncidentReviewed {
		v.Review = &ReviewView{By: inc.ReviewedBy, At: formatTime(inc.ReviewedAt), Notes: inc.ReviewNotes}
	}
	return v
}

func newAlertView(a state.Alert) AlertView {
	v := AlertView{Key: a.Key, Notifier: a.Notifier, Kind: a.Kind, Status: string(a.Status), Attempts: a.Attempts,
		LastError: a.LastError, Created: formatTime(a.Created), Delivered: formatTime(a.Delivered)}
	if a.Status == state.AlertPending {
		v.NextAttempt = formatTime(a.NextAttempt)
	}
	return v
}

func newDeclarationView(d state.Declaration, now time.Time) DeclarationView {
	return DeclarationView{ID: d.ID, Policy: d.Policy, Reason: d.Reason, Incident: d.Incident, DeclaredBy: d.DeclaredBy,
		At: formatTime(d.At), Expires: formatTime(d.Expires), Active: now.Before(d.Expires)}
}

// CheckView is the body of GET /v1/breakglass/check.
type CheckView struct {
	Ready          bool                `json:"ready"`
	Problems       []string            `json:"problems"`
	Accounts       []AccountCheckView  `json:"accounts"`
	Sources        []SourceCheckView   `json:"sources"`
	Notifiers      []NotifierCheckView `json:"notifiers"`
	OverdueReviews []OverdueReviewView `json:"overdue_reviews"`
	Uses           []UseCheckView      `json:"uses"`
	Alerts         []AlertView         `json:"alerts"`
}

// AccountCheckView says whether one break-glass account is watched.
type AccountCheckView struct {
	Policy  string   `json:"policy"`
	Account string   `json:"account"`
	Clouds  []string `json:"clouds"`
	Sources []string `json:"sources"`
	Covered bool     `json:"covered"`
	Problem string   `json:"problem,omitempty"`
}

// SourceCheckView is the health of one audit source.
type SourceCheckView struct {
	Name       string  `json:"name"`
	Type       string  `json:"type"`
	Format     string  `json:"format"`
	Cloud      string  `json:"cloud"`
	Poll       string  `json:"poll"`
	Healthy    bool    `json:"healthy"`
	LastPoll   string  `json:"last_poll,omitempty"`
	CaughtUp   string  `json:"caught_up,omitempty"`
	LastEvent  string  `json:"last_event,omitempty"`
	LagSeconds float64 `json:"lag_seconds"`
	Error      string  `json:"error,omitempty"`
	Problem    string  `json:"problem,omitempty"`
}

// NotifierCheckView says whether one notifier can be used.
type NotifierCheckView struct {
	Name    string `json:"name"`
	Type    string `json:"type,omitempty"`
	OK      bool   `json:"ok"`
	Problem string `json:"problem,omitempty"`
}

// OverdueReviewView is an incident whose review is overdue.
type OverdueReviewView struct {
	Incident  string `json:"incident"`
	Policy    string `json:"policy"`
	Account   string `json:"account"`
	ReviewDue string `json:"review_due"`
}

// UseCheckView counts a policy's uses in its use window.
type UseCheckView struct {
	Policy   string `json:"policy"`
	Uses     int    `json:"uses"`
	MaxUses  int    `json:"max_uses"`
	Window   string `json:"window"`
	Exceeded bool   `json:"exceeded"`
}

func durationText(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	if d%time.Second != 0 {
		return d.String()
	}
	return model.FormatDuration(d)
}

func newCheckView(r bglass.CheckReport, now time.Time) CheckView {
	v := CheckView{Ready: r.Ready, Problems: append([]string{}, r.Problems...), Accounts: []AccountCheckView{}, Sources: []SourceCheckView{},
		Notifiers: []NotifierCheckView{}, OverdueReviews: []OverdueReviewView{}, Uses: []UseCheckView{}, Alerts: []AlertView{}}
	for _, a := range r.Accounts {
		clouds := make([]string, len(a.Clouds))
		for i, c := range a.Clouds {
			clouds[i] = string(c)
		}
		v.Accounts = append(v.Accounts, AccountCheckView{Policy: a.Policy, Account: a.Account, Clouds: clouds,
			Sources: append([]string{}, a.Sources...), Covered: a.Covered, Problem: a.Problem})
	}
	for _, s := range r.Sources {
		v.Sources = append(v.Sources, SourceCheckView{Name: s.Name, Type: s.Type, Format: s.Format, Cloud: string(s.Cloud),
			Poll: durationText(s.Poll), Healthy: s.Healthy, LastPoll: formatTime(s.LastPoll), CaughtUp: formatTime(s.CaughtUp),
			LastEvent: formatTime(s.LastEvent), LagSeconds: s.Lag.Seconds(), Error: s.Error, Problem: s.Problem})
	}
	for _, n := range r.Notifiers {
		v.Notifiers = append(v.Notifiers, NotifierCheckView{Name: n.Name, Type: n.Type, OK: n.OK, Problem: n.Problem})
	}
	for _, inc := range r.OverdueReviews {
		v.OverdueReviews = append(v.OverdueReviews, OverdueReviewView{Incident: inc.ID, Policy: inc.Policy, Account: inc.Account,
			ReviewDue: formatTime(inc.ReviewDue)})
	}
	for _, u := range r.Uses {
		v.Uses = append(v.Uses, UseCheckView{Policy: u.Policy, Uses: u.Uses, MaxUses: u.MaxUses, Window: model.FormatDuration(u.Window), Exceeded: u.Exceeded})
	}
	for _, a := range r.Alerts {
		v.Alerts = append(v.Alerts, newAlertView(a))
	}
	return v
}

// ReportView is the body of GET /v1/report.
type ReportView struct {
	Since            string              `json:"since"`
	Until            string              `json:"until"`
	Requests         int                 `json:"requests"`
	Renewals         []RenewalView       `json:"renewals"`
	RepeatedRequests []RepeatRequestView `json:"repeated_requests"`
	BreakGlass       []BreakGlassUseView `json:"breakglass"`
	Findings         []FindingView       `json:"findings"`
}

// RenewalView is one person's renewals of one role.
type RenewalView struct {
	Principal    string `json:"principal"`
	Role         string `json:"role"`
	Grants       int    `json:"grants"`
	Renewals     int    `json:"renewals"`
	MostPerGrant int    `json:"most_per_grant"`
}

// RepeatRequestView is one person's repeated requests of one role.
type RepeatRequestView struct {
	Principal string `json:"principal"`
	Role      string `json:"role"`
	Requests  int    `json:"requests"`
	Days      int    `json:"days"`
	First     string `json:"first"`
	Last      string `json:"last"`
	Granted   string `json:"granted"`
}

// BreakGlassUseView is the use of one break_glass policy in the period.
type BreakGlassUseView struct {
	Policy     string `json:"policy"`
	Incidents  int    `json:"incidents"`
	Uses       int    `json:"uses"`
	Undeclared int    `json:"undeclared"`
	FailedOnly int    `json:"failed_only"`
	MaxUses    int    `json:"max_uses,omitempty"`
	UseWindow  string `json:"use_window,omitempty"`
}

// FindingView is one pattern worth acting on.
type FindingView struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

func newReportView(r bglass.Report) ReportView {
	v := ReportView{Since: formatTime(r.Since), Until: formatTime(r.Until), Requests: r.Requests, Renewals: []RenewalView{},
		RepeatedRequests: []RepeatRequestView{}, BreakGlass: []BreakGlassUseView{}, Findings: []FindingView{}}
	for _, x := range r.Renewals {
		v.Renewals = append(v.Renewals, RenewalView{Principal: x.Principal, Role: x.Role, Grants: x.Grants, Renewals: x.Renewals, MostPerGrant: x.MostPerGrant})
	}
	for _, x := range r.RepeatRequests {
		v.RepeatedRequests = append(v.RepeatedRequests, RepeatRequestView{Principal: x.Principal, Role: x.Role, Requests: x.Requests,
			Days: x.Days, First: formatTime(x.First), Last: formatTime(x.Last), Granted: durationText(x.Total)})
	}
	for _, x := range r.BreakGlass {
		u := BreakGlassUseView{Policy: x.Policy, Incidents: x.Incidents, Uses: x.Uses, Undeclared: x.Undeclared, FailedOnly: x.FailedOnly, MaxUses: x.MaxUses}
		if x.UseWindow > 0 {
			u.UseWindow = model.FormatDuration(x.UseWindow)
		}
		v.BreakGlass = append(v.BreakGlass, u)
	}
	for _, f := range r.Findings {
		v.Findings = append(v.Findings, FindingView{Kind: f.Kind, Message: f.Message})
	}
	return v
}
