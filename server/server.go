package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	bglass "github.com/elevatehq/elevate/breakglass"
	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/server/auth"
	"github.com/elevatehq/elevate/state"
)

// PolicyStatus describes the loaded policy set for GET /v1/policies.
type PolicyStatus struct {
	// LoadedAt is when the set in use was loaded.
	LoadedAt time.Time
	// LastReload is the outcome of the latest load attempt; a failed
	// reload keeps the previous set in use.
	LastReload ReloadStatus
}

// ReloadStatus is the outcome of one policy load.
type ReloadStatus struct {
	OK          bool
	At          time.Time
	Diagnostics policies.Diagnostics
}

// Options configures a Server. Store, Policies and Authenticator are
// required for a useful server; the rest have defaults.
type Options struct {
	Store state.Store
	// Policies returns the current policy set, nil until one is loaded.
	Policies func() *policies.Set
	// PolicyStatus reports load times and the last reload's diagnostics;
	// nil reports the set's counts and ok when a set is loaded.
	PolicyStatus func() PolicyStatus
	// Authenticator establishes callers' identities (normally an
	// *auth.Chain); nil rejects every authenticated endpoint with 401.
	Authenticator auth.Authenticator
	// Admins are marked admin on top of what the authenticator says.
	Admins auth.Admins
	// Clock defaults to SystemClock.
	Clock Clock
	// Trigger is called after a grant became approved, was extended or was
	// revoked while live, with its role's scopes (none: all scopes). May be
	// nil; must not block.
	Trigger func(scopes ...model.ScopeKey)
	// Ready returns the failing readiness checks beyond the server's own
	// (store reachable, policies loaded), such as "leader: unknown"; nil
	// adds none.
	Ready func(ctx context.Context) []string
	// Metrics serves /metrics; nil answers 404.
	Metrics http.Handler
	// Logger receives one line per request and internal errors; nil
	// discards. Tokens and Authorization headers are never logged.
	Logger *slog.Logger
	// AuditSources are the configured audit sources, which GET
	// /v1/breakglass/check expects to be healthy.
	AuditSources []bglass.SourceInfo
	// Getenv reads the notifiers' environment variables for the readiness
	// check; nil leaves notifiers out of it.
	Getenv func(string) string
}

// Server is elevate's HTTP API.
type Server struct {
	opts      Options
	svc       *Service
	incidents *IncidentService
	log       *slog.Logger
	handler   http.Handler
	routes    []route
}

// route is one endpoint: the method and path pattern registered on the mux.
type route struct {
	Method  string
	Path    string
	handler http.HandlerFunc
}

// New returns a server for opts.
func New(opts Options) *Server {
	s := &Server{opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.opts.Clock == nil {
		s.opts.Clock = SystemClock
	}
	if s.opts.Policies == nil {
		s.opts.Policies = func() *policies.Set { return nil }
	}
	s.svc = NewService(ServiceConfig{Store: opts.Store, Policies: s.opts.Policies, Clock: s.opts.Clock, Trigger: opts.Trigger})
	s.incidents = &IncidentService{store: opts.Store, policies: s.opts.Policies, clock: s.opts.Clock, sources: opts.AuditSources, getenv: opts.Getenv}
	s.routes = []route{
		{"POST", "/v1/requests", s.handleRequest},
		{"GET", "/v1/grants", s.handleList},
		{"GET", "/v1/grants/{id}", s.handleGet},
		{"POST", "/v1/grants/{id}/approve", s.handleApprove},
		{"POST", "/v1/grants/{id}/deny", s.handleDeny},
		{"POST", "/v1/grants/{id}/extend", s.handleExtend},
		{"POST", "/v1/grants/{id}/revoke", s.handleRevoke},
		{"GET", "/v1/incidents", s.handleListIncidents},
		{"GET", "/v1/incidents/{id}", s.handleGetIncident},
		{"POST", "/v1/incidents/{id}/review", s.handleReviewIncident},
		{"POST", "/v1/declarations", s.handleDeclare},
		{"GET", "/v1/declarations", s.handleListDeclarations},
		{"GET", "/v1/breakglass/check", s.handleBreakglassCheck},
		{"GET", "/v1/report", s.handleReport},
		{"GET", "/v1/policies", s.handlePolicies},
		{"GET", "/v1/whoami", s.handleWhoami},
		{"GET", "/v1/openapi.json", s.handleOpenAPI},
		{"GET", "/healthz", s.handleHealthz},
		{"GET", "/readyz", s.handleReadyz},
		{"GET", "/metrics", s.handleMetrics},
	}
	mux := http.NewServeMux()
	allowed := map[string][]string{}
	var paths []string
	for _, rt := range s.routes {
		mux.HandleFunc(rt.Method+" "+rt.Path, rt.handler)
		if _, ok := allowed[rt.Path]; !ok {
			paths = append(paths, rt.Path)
		}
		allowed[rt.Path] = append(allowed[rt.Path], rt.Method)
	}
	// The mux's own 404 and 405 answers are plain text; these give the
	// API's JSON errors instead.
	for _, p := range paths {
		allow := strings.Join(allowed[p], ", ")
		if slices.Contains(allowed[p], "GET") {
			allow += ", HEAD"
		}
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, errorf(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "%s is not allowed on %s; use %s", r.Method, p, allow))
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errorf(http.StatusNotFound, CodeNotFound, "no endpoint %s; GET /v1/openapi.json lists them", clip(r.URL.Path)))
	})

	var authn auth.Authenticator = rejectAll{}
	if opts.Authenticator != nil {
		authn = opts.Authenticator
	}
	authn = adminMarker{inner: authn, admins: opts.Admins}
	var h http.Handler = mux
	h = notePrincipal(h)
	h = auth.Middleware(authn)(h)
	h = s.recoverPanics(h)
	h = s.logRequests(h)
	s.handler = h
	return s
}

// Handler returns the API's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Service returns the grant service the handlers use.
func (s *Server) Service() *Service { return s.svc }

// rejectAll is the authenticator of a server configured with none.
type rejectAll struct{}

func (rejectAll) Authenticate(context.Context, *http.Request) (*auth.Identity, error) {
	return nil, &auth.Error{Kind: auth.ErrInvalidToken, Reason: "this server has no authentication configured: set up OIDC or static tokens in the daemon configuration"}
}

// adminMarker marks the configured admins.
type adminMarker struct {
	inner  auth.Authenticator
	admins auth.Admins
}

func (a adminMarker) Authenticate(ctx context.Context, r *http.Request) (*auth.Identity, error) {
	id, err := a.inner.Authenticate(ctx, r)
	if err == nil && id != nil && a.admins.Match(id) {
		id.Admin = true
	}
	return id, err
}

// identity returns the authenticated caller; the auth middleware lets no
// request reach a protected handler without one.
func identity(r *http.Request) *auth.Identity {
	id, _ := auth.FromContext(r.Context())
	return id
}

// Request bodies.

type requestBody struct {
	Role          string `json:"role"`
	Duration      string `json:"duration"`
	Justification string `json:"justification"`
	Ticket        string `json:"ticket"`
	NotBefore     string `json:"not_before"`
}

type approveBody struct {
	Comment string `json:"comment"`
}

type reasonBody struct {
	Reason string `json:"reason"`
}

type extendBody struct {
	By            string `json:"by"`
	Justification string `json:"justification"`
}

func parseDuration(field, v string) (time.Duration, error) {
	d, err := model.ParseDuration(v)
	if err != nil {
		return 0, badRequest("%s: %v", field, err)
	}
	if d <= 0 {
		return 0, badRequest("%s must be longer than 0s", field)
	}
	return d, nil
}

func (s *Server) handleRequest(w http.ResponseWriter, r *http.Request) {
	var body requestBody
	if err := decodeJSON(w, r, &body, false); err != nil {
		writeError(w, err)
		return
	}
	in := RequestInput{Role: body.Role, Justification: body.Justification, Ticket: body.Ticket}
	var err error
	if body.Duration != "" {
		if in.Duration, err = parseDuration("duration", body.Duration); err != nil {
			writeError(w, err)
			return
		}
	}
	if body.NotBefore != "" {
		if in.NotBefore, err = model.ParseTime(body.NotBefore); err != nil {
			writeError(w, badRequest("not_before: %v", err))
			return
		}
	}
	out, err := s.svc.Request(r.Context(), identity(r), in)
	if err != nil {
		s.writeServiceError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/grants/"+url.PathEscape(out.Grant.ID))
	writeJSON(w, http.StatusCreated, NewGrantView(out.Grant, out.Decision))
}

// listParams are the query parameters GET /v1/grants takes.
var listParams = []string{"status", "mine", "role", "principal", "limit"}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		if !slices.Contains(listParams, k) {
			writeError(w, badRequest("unknown query parameter %q: use %s", clip(k), strings.Join(listParams, ", ")))
			return
		}
	}
	var in ListInput
	for _, v := range q["status"] {
		for _, st := range strings.Split(v, ",") {
			status := model.GrantStatus(strings.TrimSpace(st))
			if !validStatus(status) {
				writeError(w, badRequest("status %q is not a grant status: use pending, approved, active, expired, revoked, denied or failed", clip(string(status))))
				return
			}
			if !slices.Contains(in.Status, status) {
				in.Status = append(in.Status, status)
			}
		}
	}
	if v := q.Get("mine"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, badRequest("mine must be true or false, not %q", clip(v)))
			return
		}
		in.Mine = b
	}
	in.Role = q.Get("role")
	if v := q.Get("principal"); v != "" {
		p, err := model.ParsePrincipal(v)
		if err != nil {
			writeError(w, badRequest("principal: %v", err))
			return
		}
		in.Principal = p
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxListLimit {
			writeError(w, badRequest("limit must be a whole number from 1 to %d, not %q", MaxListLimit, clip(v)))
			return
		}
		in.Limit = n
	}
	grants, err := s.svc.List(r.Context(), identity(r), in)
	if err != nil {
		s.writeServiceError(w, r, err)
		return
	}
	out := GrantList{Grants: make([]GrantView, 0, len(grants))}
	for _, g := range grants {
		out.Grants = append(out.Grants, NewGrantView(g, nil))
	}
	writeJSON(w, http.StatusOK, out)
}

func validStatus(s model.GrantStatus) bool {
	switch s {
	case model.StatusPending, model.StatusApproved, model.StatusActive, model.StatusExpired,
		model.StatusRevoked, model.StatusDenied, model.StatusFailed:
		return true
	}
	return false
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	g, history, err := s.svc.Get(r.Context(), identity(r), r.PathValue("id"))
	if err != nil {
		s.writeServiceError(w, r, err)
		return
	}
	out := GrantDetail{Grant: NewGrantView(g, nil), History: make([]HistoryView, 0, len(history))}
	for _, ev := range history {
		out.History = append(out.History, newHistoryView(ev))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleApprove(w http.ResponseWriter, r *http.Request) {
	var body approveBody
	if err := decodeJSON(w, r, &body, true); err != nil {
		writeError(w, err)
		return
	}
	s.writeOutcome(w, r)(s.svc.Approve(r.Context(), identity(r), r.PathValue("id"), body.Comment))
}

func (s *Server) handleDeny(w http.ResponseWriter, r *http.Request) {
	var body reasonBody
	if err := decodeJSON(w, r, &body, false); err != nil {
		writeError(w, err)
		return
	}
	s.writeOutcome(w, r)(s.svc.Deny(r.Context(), identity(r), r.PathValue("id"), body.Reason))
}

func (s *Server) handleExtend(w http.ResponseWriter, r *http.Request) {
	var body extendBody
	if err := decodeJSON(w, r, &body, false); err != nil {
		writeError(w, err)
		return
	}
	if body.By == "" {
		writeError(w, badRequest("by is required: say how much longer, such as \"30m\""))
		return
	}
	by, err := parseDuration("by", body.By)
	if err != nil {
		writeError(w, err)
		return
	}
	s.writeOutcome(w, r)(s.svc.Extend(r.Context(), identity(r), r.PathValue("id"), ExtendInput{By: by, Justification: body.Justification}))
}

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	var body reasonBody
	if err := decodeJSON(w, r, &body, true); err != nil {
		writeError(w, err)
		return
	}
	s.writeOutcome(w, r)(s.svc.Revoke(r.Context(), identity(r), r.PathValue("id"), body.Reason))
}

// writeOutcome returns a function that writes a service call's result:
// 200 with the grant view, or the error.
func (s *Server) writeOutcome(w http.ResponseWriter, r *http.Request) func(Outcome, error) {
	return func(out Outcome, err error) {
		if err != nil {
			s.writeServiceError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, NewGrantView(out.Grant, out.Decision))
	}
}

// writeServiceError logs server-side failures with their cause and writes
// the JSON error.
func (s *Server) writeServiceError(w http.ResponseWriter, r *http.Request, err error) {
	ae := asAPIError(err)
	if ae.Status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "code", ae.Code, "err", err)
	}
	writeError(w, ae)
}

func (s *Server) handlePolicies(w http.ResponseWriter, r *http.Request) {
	set := s.opts.Policies()
	if err := decision(auth.CanReadPolicies(set, identity(r))); err != nil {
		writeError(w, err)
		return
	}
	out := PolicyView{LastReload: ReloadView{OK: set != nil, Diagnostics: []DiagnosticView{}}}
	if set != nil {
		out.Files, out.Roles, out.JIT, out.Temporary, out.BreakGlass = len(set.Files), len(set.Roles), len(set.JIT), len(set.Temporary), len(set.BreakGlass)
	}
	if s.opts.PolicyStatus != nil {
		st := s.opts.PolicyStatus()
		out.LoadedAt = formatTime(st.LoadedAt)
		out.LastReload.OK = st.LastReload.OK
		out.LastReload.At = formatTime(st.LastReload.At)
		for _, d := range st.LastReload.Diagnostics {
			out.LastReload.Diagnostics = append(out.LastReload.Diagnostics, newDiagnosticView(d))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleWhoami(w http.ResponseWriter, r *http.Request) {
	id := identity(r)
	// whoami is open to every identity that may use the API at all;
	// CanList is exactly that gate (authenticated, not break-glass).
	if err := decision(auth.CanList(s.opts.Policies(), id)); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, newWhoamiView(id))
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(openAPIDocument)
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = fmt.Fprintln(w, "ok")
}

// readyTimeout bounds the readiness checks.
const readyTimeout = 2 * time.Second

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	failing := []string{}
	if s.opts.Store == nil {
		failing = append(failing, "store: not configured")
	} else if err := s.opts.Store.Ping(ctx); err != nil {
		s.log.Warn("readiness: store unreachable", "err", err)
		failing = append(failing, "store: unreachable")
	}
	if s.opts.Policies() == nil {
		failing = append(failing, "policies: no policy set loaded")
	}
	if s.opts.Ready != nil {
		failing = append(failing, s.opts.Ready(ctx)...)
	}
	if len(failing) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, ReadyView{Ready: false, Failing: failing})
		return
	}
	writeJSON(w, http.StatusOK, ReadyView{Ready: true, Failing: failing})
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if s.opts.Metrics == nil {
		writeError(w, errorf(http.StatusNotFound, CodeNotFound, "metrics are not enabled on this server"))
		return
	}
	s.opts.Metrics.ServeHTTP(w, r)
}
