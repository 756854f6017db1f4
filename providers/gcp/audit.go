package gcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/logging"
	"cloud.google.com/go/logging/logadmin"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/time/rate"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/genproto/googleapis/cloud/audit"
	iamlogging "google.golang.org/genproto/googleapis/iam/v1/logging"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/providers"
)

// MetricAuditLag is the gauge of how far the audit source's reading lags
// behind now, in seconds.
const MetricAuditLag = "elevate_audit_source_lag_seconds"

const instrumentationName = "github.com/elevatehq/elevate/providers/gcp"

// Defaults of AuditConfig.
const (
	DefaultLookback    = 400 * 24 * time.Hour // the longest Cloud Logging retention
	DefaultSettle      = 30 * time.Second
	DefaultMinInterval = time.Second // entries.list allows 60 calls a minute
	maxPageSize        = 1000
)

// auditLogFilter selects Cloud Audit Logs of every kind (activity,
// data_access, system_event, policy).
const auditLogFilter = `logName:"cloudaudit.googleapis.com"`

// AuditConfig configures an AuditSource.
type AuditConfig struct {
	// Endpoint overrides the Cloud Logging endpoint (host:port).
	Endpoint string
	// ClientOptions are passed to the client after the endpoint; empty
	// means Application Default Credentials.
	ClientOptions []option.ClientOption
	// Parents are the resource names read, in one entries.list call per
	// poll: best one log bucket view that an organization-wide aggregated
	// sink fills (projects/P/locations/L/buckets/B/views/V), or
	// organizations/O, folders/F, projects/P. Required.
	Parents []string
	// Principals, when set, limits events to those whose actor
	// (authenticationInfo.principalEmail) is one of these emails (the
	// break-glass accounts), plus SetIamPolicy calls by anyone, which
	// trigger reconciles. Empty reads every audit entry.
	Principals []string
	// Self are elevate's own identities (its service account email): their
	// policy changes trigger no reconcile.
	Self []string
	// OnPolicyChange is called, during Read, for every successful
	// SetIamPolicy on a project, folder or organization by someone not in
	// Self that Managed accepts: the daemon passes the engine's Trigger.
	OnPolicyChange func(model.ScopeKey)
	// Managed reports whether elevate manages a scope; nil means all.
	Managed func(model.ScopeKey) bool
	// Clock is the source's notion of now; default time.Now.
	Clock func() time.Time
	// Lookback is how far back an empty cursor starts; default 400 days.
	Lookback time.Duration
	// Settle keeps reads this far behind now, so entries Cloud Logging
	// receives late are still read in timestamp order; default 30s,
	// negative for none.
	Settle time.Duration
	// MinInterval spaces entries.list calls (60 a minute per project is
	// the quota); default 1s, negative for none.
	MinInterval time.Duration
	// MeterProvider receives elevate_audit_source_lag_seconds; nil uses the
	// global one.
	MeterProvider metric.MeterProvider
}

// AuditSource reads Cloud Audit Logs as normalised events. It implements
// providers.AuditSource; its cursor is the timestamp of the last event read
// and the insert IDs read at that timestamp, so a restart from a stored
// cursor neither skips nor repeats an entry.
type AuditSource struct {
	client  *logadmin.Client
	cfg     AuditConfig
	limiter *rate.Limiter
	self    map[string]bool

	// covered is the instant (unix ns) up to which every entry has been
	// read; the lag gauge reports now minus it.
	covered atomic.Int64
	reg     metric.Registration
	mu      sync.Mutex // one Read at a time: the cursor is the caller's, the limiter and gauge are shared
}

// NewAuditSource connects to Cloud Logging.
func NewAuditSource(cfg AuditConfig) (*AuditSource, error) {
	if len(cfg.Parents) == 0 {
		return nil, errors.New("GCP audit source: no parents to read: set parents to the log bucket view of an aggregated sink, or to organizations/ORG_ID")
	}
	for _, p := range cfg.Parents {
		if !strings.HasPrefix(p, "projects/") && !strings.HasPrefix(p, "folders/") &&
			!strings.HasPrefix(p, "organizations/") && !strings.HasPrefix(p, "billingAccounts/") {
			return nil, fmt.Errorf("GCP audit source: parent %q is not a resource name: write organizations/ORG_ID, folders/ID, projects/ID or a log bucket view", p)
		}
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Lookback <= 0 {
		cfg.Lookback = DefaultLookback
	}
	if cfg.Settle == 0 {
		cfg.Settle = DefaultSettle
	}
	if cfg.MinInterval == 0 {
		cfg.MinInterval = DefaultMinInterval
	}
	var opts []option.ClientOption
	if cfg.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(cfg.Endpoint))
	}
	opts = append(opts, cfg.ClientOptions...)
	client, err := logadmin.NewClient(context.Background(), cfg.Parents[0], opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to Cloud Logging: %w", err)
	}
	s := &AuditSource{client: client, cfg: cfg, self: make(map[string]bool)}
	if cfg.MinInterval > 0 {
		s.limiter = rate.NewLimiter(rate.Every(cfg.MinInterval), 1)
	}
	for _, id := range cfg.Self {
		s.self[strings.ToLower(id)] = true
	}
	mp := cfg.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	gauge, err := mp.Meter(instrumentationName).Float64ObservableGauge(MetricAuditLag,
		metric.WithDescription("How far the audit source's reading lags behind now."), metric.WithUnit("s"))
	if err == nil {
		s.reg, err = mp.Meter(instrumentationName).RegisterCallback(func(_ context.Context, o metric.Observer) error {
			if lag, ok := s.Lag(); ok {
				o.ObserveFloat64(gauge, lag.Seconds(), metric.WithAttributes(attribute.String("cloud", string(model.CloudGCP))))
			}
			return nil
		}, gauge)
	}
	if err != nil {
		otel.Handle(err)
	}
	return s, nil
}

// Close closes the client and unregisters the lag gauge.
func (s *AuditSource) Close() error {
	if s.reg != nil {
		s.reg.Unregister()
	}
	return s.client.Close()
}

// Lag returns how far behind now the source has read everything, and
// false before the first successful Read.
func (s *AuditSource) Lag() (time.Duration, bool) {
	c := s.covered.Load()
	if c == 0 {
		return 0, false
	}
	return max(s.cfg.Clock().Sub(time.Unix(0, c)), 0), true
}

// auditCursor is the position of a Read: every entry before T and the
// entries at T whose insert IDs are listed have been returned.
type auditCursor struct {
	T   time.Time `json:"t"`
	IDs []string  `json:"ids,omitempty"`
}

func parseCursor(s string) (auditCursor, error) {
	var c auditCursor
	if s == "" {
		return c, nil
	}
	if err := json.Unmarshal([]byte(s), &c); err != nil || c.T.IsZero() {
		return c, fmt.Errorf("invalid GCP audit cursor %q: pass the cursor a previous Read returned, or \"\" to start over", s)
	}
	c.T = c.T.UTC()
	return c, nil
}

func (c auditCursor) String() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// quote renders s as a Logging query string literal.
func quote(s string) string { return strconv.Quote(s) }

// Filter returns the Logging query for entries from 'from' (inclusive) to
// 'until' (exclusive; zero for no upper bound). It always has a timestamp
// lower bound: without one entries.list silently searches only the last
// 24 hours.
func (s *AuditSource) Filter(from, until time.Time) string {
	var b strings.Builder
	b.WriteString(auditLogFilter)
	b.WriteString(` AND timestamp>=` + quote(formatTime(from)))
	if !until.IsZero() {
		b.WriteString(` AND timestamp<` + quote(formatTime(until)))
	}
	if len(s.cfg.Principals) > 0 {
		b.WriteString(` AND (`)
		for _, p := range s.cfg.Principals {
			b.WriteString(`protoPayload.authenticationInfo.principalEmail=` + quote(p) + ` OR `)
		}
		b.WriteString(`protoPayload.methodName:"SetIamPolicy")`)
	}
	return b.String()
}

// Read implements providers.AuditSource with one entries.list call in the
// usual case (more only when limit exceeds a page): entries from the
// cursor's timestamp on, oldest first, skipping those the cursor says were
// returned already.
func (s *AuditSource) Read(ctx context.Context, cursor string, limit int) ([]providers.AuditEvent, string, error) {
	if limit <= 0 {
		return nil, cursor, fmt.Errorf("reading GCP audit logs: limit must be positive, got %d", limit)
	}
	cur, err := parseCursor(cursor)
	if err != nil {
		return nil, cursor, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Clock().UTC()
	from := cur.T
	if from.IsZero() {
		from = now.Add(-s.cfg.Lookback)
	}
	var until time.Time
	if s.cfg.Settle > 0 {
		until = now.Add(-s.cfg.Settle)
		if !until.After(from) {
			return nil, cursor, nil
		}
	}
	if s.limiter != nil {
		if err := s.limiter.Wait(ctx); err != nil {
			return nil, cursor, fmt.Errorf("waiting for the Cloud Logging rate limit: %w", err)
		}
	}
	seen := make(map[string]bool, len(cur.IDs))
	for _, id := range cur.IDs {
		seen[id] = true
	}
	page := min(limit+len(cur.IDs), maxPageSize)
	it := s.client.Entries(ctx,
		logadmin.ResourceNames(s.cfg.Parents),
		logadmin.Filter(s.Filter(from, until)),
		logadmin.PageSize(int32(page)))
	var events []providers.AuditEvent
	next := auditCursor{T: cur.T, IDs: slices.Clone(cur.IDs)}
	full := false
	for {
		if len(events) == limit {
			full = true
			break
		}
		e, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, cursor, callErr(ctx, "reading GCP audit logs", err)
		}
		ts := e.Timestamp.UTC()
		if ts.Equal(cur.T) && seen[e.InsertID] {
			continue
		}
		ev, err := s.normalise(e)
		if err != nil {
			return nil, cursor, fmt.Errorf("reading GCP audit log entry %s: %w", e.InsertID, err)
		}
		events = append(events, ev)
		if !ts.Equal(next.T) {
			next = auditCursor{T: ts}
		}
		next.IDs = append(next.IDs, e.InsertID)
	}
	switch {
	case full && len(events) > 0:
		s.covered.Store(events[len(events)-1].Time.UnixNano())
	case until.IsZero():
		s.covered.Store(now.UnixNano())
	default:
		s.covered.Store(until.UnixNano())
	}
	for _, ev := range events {
		s.trigger(ev)
	}
	if len(events) == 0 {
		return nil, cursor, nil
	}
	return events, next.String(), nil
}

// normalise turns a Cloud Audit Logs entry into an event.
func (s *AuditSource) normalise(e *logging.Entry) (providers.AuditEvent, error) {
	ev := providers.AuditEvent{
		ID:       e.InsertID,
		Cloud:    model.CloudGCP,
		Time:     e.Timestamp.UTC(),
		Category: providers.AuditOther,
		Attrs:    map[string]string{"log": logKind(e.LogName)},
	}
	al, ok := e.Payload.(*audit.AuditLog)
	if !ok {
		return ev, fmt.Errorf("payload is %T, not a google.cloud.audit.AuditLog: read only cloudaudit.googleapis.com logs", e.Payload)
	}
	email := al.GetAuthenticationInfo().GetPrincipalEmail()
	ev.ActorID = email
	ev.Actor = actorOf(email)
	ev.Action = al.GetMethodName()
	ev.Success = al.GetStatus().GetCode() == 0
	ev.SourceIP = al.GetRequestMetadata().GetCallerIp()
	ev.Category = categoryOf(al.GetServiceName(), al.GetMethodName())
	resource := al.GetResourceName()
	if scope, ok := resourceScope(resource); ok {
		ev.Scope = model.ScopeKey{Cloud: model.CloudGCP, Scope: scope}
	}
	setAttr(ev.Attrs, "service", al.GetServiceName())
	setAttr(ev.Attrs, "resource", resource)
	setAttr(ev.Attrs, "user_agent", al.GetRequestMetadata().GetCallerSuppliedUserAgent())
	if !ev.Success {
		setAttr(ev.Attrs, "error", al.GetStatus().GetMessage())
	}
	if sd := al.GetServiceData(); sd != nil {
		var data iamlogging.AuditData
		if sd.UnmarshalTo(&data) == nil {
			var deltas []string
			for _, d := range data.GetPolicyDelta().GetBindingDeltas() {
				deltas = append(deltas, fmt.Sprintf("%s %s %s", d.GetAction(), d.GetRole(), d.GetMember()))
			}
			setAttr(ev.Attrs, "binding_deltas", strings.Join(deltas, "; "))
		}
	}
	if _, ok := s.policyChange(ev); ok {
		ev.Attrs["reconcile"] = "true"
	}
	payload, err := protojson.Marshal(al)
	if err != nil {
		return ev, fmt.Errorf("encoding the audit payload: %w", err)
	}
	raw, err := json.Marshal(struct {
		LogName      string          `json:"logName"`
		InsertID     string          `json:"insertId"`
		Timestamp    time.Time       `json:"timestamp"`
		ProtoPayload json.RawMessage `json:"protoPayload"`
	}{e.LogName, e.InsertID, ev.Time, payload})
	if err != nil {
		return ev, fmt.Errorf("encoding the audit entry: %w", err)
	}
	ev.Raw = raw
	return ev, nil
}

func setAttr(m map[string]string, k, v string) {
	if v != "" {
		m[k] = v
	}
}

// logKind names the audit log an entry came from: activity, data_access,
// system_event or policy.
func logKind(logName string) string {
	_, id, ok := strings.Cut(logName, "/logs/")
	if !ok {
		return ""
	}
	id = strings.ReplaceAll(id, "%2F", "/")
	return strings.TrimPrefix(id, "cloudaudit.googleapis.com/")
}

// actorOf maps principalEmail to the form break_glass accounts are written
// in: gcp:serviceAccount:EMAIL for service accounts, gcp:user:EMAIL for
// the rest; zero when the entry names nobody or something else.
func actorOf(email string) model.Principal {
	if email == "" {
		return model.Principal{}
	}
	kind := "user"
	if strings.HasSuffix(strings.ToLower(email), ".gserviceaccount.com") {
		kind = "serviceAccount"
	}
	p, err := model.ParsePrincipal("gcp:" + kind + ":" + email)
	if err != nil {
		return model.Principal{}
	}
	return p
}

// categoryOf classifies an audited call.
func categoryOf(service, method string) providers.AuditCategory {
	short := method[strings.LastIndex(method, ".")+1:]
	switch {
	case service == "login.googleapis.com" || strings.HasPrefix(method, "google.login."):
		return providers.AuditSignIn
	case service == "iamcredentials.googleapis.com" && (strings.HasPrefix(short, "Generate") || strings.HasPrefix(short, "Sign")):
		return providers.AuditAssumeRole
	case short == "SetIamPolicy" || strings.HasSuffix(method, ".setIamPolicy"):
		return providers.AuditIAMChange
	}
	return providers.AuditOther
}

// resourceScope returns the Resource Manager resource a resource name
// lives in (projects/P for projects/P/buckets/B) and whether the name is
// that resource itself.
func resourceScope(resource string) (string, bool) {
	parts := strings.SplitN(resource, "/", 3)
	if len(parts) < 2 || parts[1] == "" {
		return "", false
	}
	switch parts[0] {
	case "projects", "folders", "organizations":
		return parts[0] + "/" + parts[1], true
	}
	return "", false
}

// PolicyChangeScope returns the scope a successful SetIamPolicy event
// changed, when that is a project, folder or organization: the scope to
// reconcile.
func PolicyChangeScope(ev providers.AuditEvent) (model.ScopeKey, bool) {
	if ev.Category != providers.AuditIAMChange || !ev.Success || ev.Scope.Scope == "" {
		return model.ScopeKey{}, false
	}
	if ev.Attrs["resource"] != ev.Scope.Scope {
		return model.ScopeKey{}, false // a bucket's or a service account's policy
	}
	return ev.Scope, true
}

// policyChange reports the scope to reconcile for ev, leaving out
// elevate's own writes and unmanaged scopes.
func (s *AuditSource) policyChange(ev providers.AuditEvent) (model.ScopeKey, bool) {
	scope, ok := PolicyChangeScope(ev)
	if !ok || s.self[strings.ToLower(ev.ActorID)] {
		return model.ScopeKey{}, false
	}
	if s.cfg.Managed != nil && !s.cfg.Managed(scope) {
		return model.ScopeKey{}, false
	}
	return scope, true
}

func (s *AuditSource) trigger(ev providers.AuditEvent) {
	if s.cfg.OnPolicyChange == nil {
		return
	}
	if scope, ok := s.policyChange(ev); ok {
		s.cfg.OnPolicyChange(scope)
	}
}

// Interface check.
var _ providers.AuditSource = (*AuditSource)(nil)
