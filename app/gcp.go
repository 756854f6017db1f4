package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"
	"go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/api/option"

	"github.com/elevatehq/elevate/breakglass"
	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/providers"
	"github.com/elevatehq/elevate/providers/gcp"
	"github.com/elevatehq/elevate/providers/gcp/gcpemu"
	"github.com/elevatehq/elevate/state"
)

// This file wires Google Cloud into the daemon: the gcp block of the
// configuration (and its ELEVATE_GCP_* variables), the GCP audit source
// that the break-glass watcher reads and whose SetIamPolicy events trigger
// reconcile passes, and the GCP emulator of elevate dev.

// Defaults of the gcp block.
const (
	// DefaultGCPAuditPoll is the time between two reads of Cloud Audit
	// Logs: 6 entries.list calls a minute of the 60 the quota allows.
	DefaultGCPAuditPoll = 10 * time.Second
	// DefaultGCPAuditSettle is how far behind now the audit source reads.
	DefaultGCPAuditSettle = gcp.DefaultSettle
)

// gcpAuditSourceName is the name of the gcp block's audit source: its
// cursor in the store, its row in `breakglass check`, and the source of its
// incidents.
const gcpAuditSourceName = "gcp"

// GCPConfig is the gcp block: the real GCP provider (in place of the memory
// provider for cloud gcp) and, with Parents, the Cloud Audit Logs source.
// The names are those of the settings gcp.Factory and gcp.AuditFactory read.
type GCPConfig struct {
	// Endpoint is host:port of another Resource Manager and Cloud Logging
	// endpoint (an emulator); empty means Google's, with Application
	// Default Credentials.
	Endpoint string
	// Insecure connects to Endpoint over plain gRPC without credentials;
	// a loopback endpoint implies it.
	Insecure bool
	// Parents are the resource names the audit source reads (a log bucket
	// view, organizations/ID, folders/ID, projects/ID); none means no
	// audit source.
	Parents []string
	// Principals limits the entries read to these actors' emails (the
	// break-glass accounts) plus every SetIamPolicy; empty reads all.
	Principals []string
	// Self are elevate's own identities (service account emails): their
	// policy writes trigger no reconcile pass.
	Self []string
	// AuditPoll is the time between two reads of the audit logs.
	AuditPoll time.Duration
	// AuditSettle keeps reads this far behind now, for entries Cloud
	// Logging receives late; 0 for none (an emulator).
	AuditSettle time.Duration
}

func newGCPConfig() *GCPConfig {
	return &GCPConfig{AuditPoll: DefaultGCPAuditPoll, AuditSettle: DefaultGCPAuditSettle}
}

var gcpSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: gcp.SettingEndpoint}, {Name: gcp.SettingInsecure}, {Name: gcp.SettingParents},
		{Name: gcp.SettingPrincipals}, {Name: gcp.SettingSelf}, {Name: "audit_poll"}, {Name: "audit_settle"},
	},
}

// decodeGCPBlock reads the gcp block.
func decodeGCPBlock(b *hcl.Block) (*GCPConfig, hcl.Diagnostics) {
	content, diags := b.Body.Content(gcpSchema)
	g := newGCPConfig()
	attrs := content.Attributes
	diags = append(diags, stringAttr(attrs, gcp.SettingEndpoint, &g.Endpoint)...)
	diags = append(diags, boolAttr(attrs, gcp.SettingInsecure, &g.Insecure)...)
	diags = append(diags, listAttr(attrs, gcp.SettingParents, &g.Parents)...)
	diags = append(diags, listAttr(attrs, gcp.SettingPrincipals, &g.Principals)...)
	diags = append(diags, listAttr(attrs, gcp.SettingSelf, &g.Self)...)
	diags = append(diags, durationAttr(attrs, "audit_poll", &g.AuditPoll)...)
	var settle string
	diags = append(diags, stringAttr(attrs, "audit_settle", &settle)...)
	if diags.HasErrors() {
		return g, diags
	}
	check := func(name string, err error) {
		if err != nil && attrs[name] != nil {
			diags = append(diags, attrError(attrs[name], "Invalid gcp "+name, err.Error()))
		}
	}
	check(gcp.SettingEndpoint, checkGCPEndpoint(g.Endpoint))
	check(gcp.SettingParents, checkGCPParents(g.Parents))
	check(gcp.SettingPrincipals, checkEmails(g.Principals))
	check(gcp.SettingSelf, checkEmails(g.Self))
	if attrs["audit_poll"] != nil && g.AuditPoll < minPoll {
		check("audit_poll", fmt.Errorf("audit_poll must be at least %s (Cloud Logging allows 60 reads a minute)", minPoll))
	}
	if attrs["audit_settle"] != nil {
		d, err := parseSettle(settle)
		check("audit_settle", err)
		g.AuditSettle = d
	}
	return g, diags
}

// parseSettle reads audit_settle: a duration of zero or more.
func parseSettle(s string) (time.Duration, error) {
	if strings.TrimSpace(s) == "0" {
		return 0, nil
	}
	d, err := model.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, fmt.Errorf("audit_settle %q must not be negative: use \"0s\" to read up to now", s)
	}
	return d, nil
}

func checkGCPEndpoint(s string) error {
	if s == "" {
		return nil
	}
	if strings.Contains(s, "://") {
		return fmt.Errorf("%q is a URL: write host:port, such as 127.0.0.1:8085 (the APIs are gRPC)", s)
	}
	if _, _, err := net.SplitHostPort(s); err != nil {
		return fmt.Errorf("%q is not host:port: write an address such as 127.0.0.1:8085", s)
	}
	return nil
}

func checkGCPParents(parents []string) error {
	for _, p := range parents {
		if !strings.HasPrefix(p, "projects/") && !strings.HasPrefix(p, "folders/") &&
			!strings.HasPrefix(p, "organizations/") && !strings.HasPrefix(p, "billingAccounts/") {
			return fmt.Errorf("parent %q is not a resource name: write the log bucket view of an org-wide sink (projects/P/locations/L/buckets/B/views/V), organizations/ORG_ID, folders/ID or projects/ID", p)
		}
	}
	return nil
}

func checkEmails(emails []string) error {
	for _, e := range emails {
		if strings.Contains(e, ":") || !strings.Contains(e, "@") {
			return fmt.Errorf("%q is not an email: write the account's email alone, such as breakglass-1@acme.example or elevate@PROJECT.iam.gserviceaccount.com", e)
		}
	}
	return nil
}

// applyGCPEnv overrides the gcp block with the ELEVATE_GCP_* variables. Any
// of them turns the GCP provider on; ELEVATE_GCP_ENABLED=false turns it off
// even when the file has a gcp block.
func applyGCPEnv(cfg *Config, getenv func(string) string) hcl.Diagnostics {
	var diags hcl.Diagnostics
	bad := func(name string, err error) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid environment variable " + name, Detail: err.Error()})
	}
	get := func(name string) (string, bool) {
		v := strings.TrimSpace(getenv(name))
		return v, v != ""
	}
	g := newGCPConfig()
	if cfg.GCP != nil {
		c := *cfg.GCP
		g = &c
	}
	set := false
	if v, ok := get("ELEVATE_GCP_ENABLED"); ok {
		on, err := strconv.ParseBool(v)
		if err != nil {
			bad("ELEVATE_GCP_ENABLED", fmt.Errorf("%q is not a boolean: use true or false", v))
		} else if !on {
			cfg.GCP = nil
			return diags
		}
		set = true
	}
	if v, ok := get("ELEVATE_GCP_ENDPOINT"); ok {
		set, g.Endpoint = true, v
		if err := checkGCPEndpoint(v); err != nil {
			bad("ELEVATE_GCP_ENDPOINT", err)
		}
	}
	if v, ok := get("ELEVATE_GCP_INSECURE"); ok {
		set = true
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad("ELEVATE_GCP_INSECURE", fmt.Errorf("%q is not a boolean: use true or false", v))
		}
		g.Insecure = b
	}
	for _, l := range []struct {
		name  string
		dst   *[]string
		check func([]string) error
	}{
		{"ELEVATE_GCP_PARENTS", &g.Parents, checkGCPParents},
		{"ELEVATE_GCP_PRINCIPALS", &g.Principals, checkEmails},
		{"ELEVATE_GCP_SELF", &g.Self, checkEmails},
	} {
		if v, ok := get(l.name); ok {
			set, *l.dst = true, splitList(v)
			if err := l.check(*l.dst); err != nil {
				bad(l.name, err)
			}
		}
	}
	if v, ok := get("ELEVATE_GCP_AUDIT_POLL"); ok {
		set = true
		d, err := parseConfigDuration(v)
		if err == nil && d < minPoll {
			err = fmt.Errorf("the poll interval must be at least %s", minPoll)
		}
		if err != nil {
			bad("ELEVATE_GCP_AUDIT_POLL", err)
		}
		g.AuditPoll = d
	}
	if v, ok := get("ELEVATE_GCP_AUDIT_SETTLE"); ok {
		set = true
		d, err := parseSettle(v)
		if err != nil {
			bad("ELEVATE_GCP_AUDIT_SETTLE", err)
		}
		g.AuditSettle = d
	}
	if set || cfg.GCP != nil {
		cfg.GCP = g
	}
	return diags
}

// checkGCP checks the gcp block against the rest of the configuration.
func (c *Config) checkGCP() hcl.Diagnostics {
	if c.GCP == nil {
		return nil
	}
	var diags hcl.Diagnostics
	if c.Memory != nil && slices.Contains(c.Memory.Clouds, model.CloudGCP) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Two providers for gcp",
			Detail: "The gcp block serves cloud gcp with the GCP provider, and memory { clouds } (or ELEVATE_MEMORY_CLOUDS) lists gcp too: remove gcp from the memory clouds, or remove the gcp block (and ELEVATE_GCP_*) to keep gcp in memory."})
	}
	if len(c.GCP.Parents) > 0 {
		for _, src := range c.AuditSources {
			if src.Name == gcpAuditSourceName {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Audit source name taken",
					Detail: fmt.Sprintf("The gcp block's audit source is named %q; rename the audit_source %q.", gcpAuditSourceName, src.Name)})
			}
		}
	}
	return diags
}

// emulator reports whether the endpoint is reached without TLS or
// credentials, by the rule gcp.Factory applies: insecure, or a loopback
// address.
func (g *GCPConfig) emulator() bool {
	if g.Endpoint == "" {
		return false
	}
	if g.Insecure {
		return true
	}
	host, _, err := net.SplitHostPort(g.Endpoint)
	if err != nil {
		host = g.Endpoint
	}
	ip := net.ParseIP(host)
	return strings.EqualFold(host, "localhost") || (ip != nil && ip.IsLoopback())
}

// providerConfig is the configuration gcp.Factory reads.
func (g *GCPConfig) providerConfig() providers.Config {
	return providers.Config{Cloud: model.CloudGCP, Endpoint: g.Endpoint, Settings: map[string]string{
		gcp.SettingInsecure:   strconv.FormatBool(g.Insecure),
		gcp.SettingParents:    strings.Join(g.Parents, ","),
		gcp.SettingPrincipals: strings.Join(g.Principals, ","),
		gcp.SettingSelf:       strings.Join(g.Self, ","),
	}}
}

// clientOptions returns the endpoint and client options of the audit
// source, as gcp.Factory chooses them for the provider.
func (g *GCPConfig) clientOptions() (string, []option.ClientOption) {
	if g.emulator() {
		return "", gcp.EmulatorOptions(g.Endpoint)
	}
	return g.Endpoint, nil
}

// gcpAuditSetup is what newGCPAuditSource needs from the daemon.
type gcpAuditSetup struct {
	cfg      *GCPConfig
	store    state.Store
	policies func() *policies.Set
	// changed reports a scope whose allow policy someone else changed:
	// outsideChanges.record, which gets it reconciled by whichever replica
	// leads.
	changed func(context.Context, model.ScopeKey)
	logger  *slog.Logger
}

// newGCPAuditSource builds the audit source of the gcp block, as a source
// for the break-glass watcher (which runs it on the replica that holds the
// watcher lease and keeps its cursor in the store). A SetIamPolicy on a
// scope elevate manages, by anyone but Self, triggers a reconcile pass of
// that scope. It returns nil when the block names no parents.
func newGCPAuditSource(s gcpAuditSetup) (*breakglass.WatchedSource, func() error, error) {
	if s.cfg == nil || len(s.cfg.Parents) == 0 {
		return nil, func() error { return nil }, nil
	}
	log := s.logger.With("component", "audit-source", "source", gcpAuditSourceName)
	managed := &managedScopes{store: s.store, policies: s.policies, now: time.Now, log: log}
	endpoint, opts := s.cfg.clientOptions()
	settle := s.cfg.AuditSettle
	if settle == 0 {
		settle = -1 // AuditConfig: negative for none, zero for the default
	}
	src, err := gcp.NewAuditSource(gcp.AuditConfig{
		Endpoint: endpoint, ClientOptions: opts,
		Parents: s.cfg.Parents, Principals: s.cfg.Principals, Self: s.cfg.Self,
		Managed: managed.Managed,
		OnPolicyChange: func(scope model.ScopeKey) {
			log.Info("allow policy changed outside elevate; reconciling the scope", "scope", scope.String())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s.changed(ctx, scope)
		},
		Settle: settle,
		// The break-glass watcher reports elevate_audit_source_lag_seconds
		// for every source, this one included.
		MeterProvider: noop.NewMeterProvider(),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("building the GCP audit source: %w", err)
	}
	return &breakglass.WatchedSource{
		Name: gcpAuditSourceName, Type: "gcp", Format: breakglass.SourceGCPAudit, Cloud: model.CloudGCP,
		Poll: s.cfg.AuditPoll, Source: src,
	}, src.Close, nil
}

// managedCacheTTL is how long a yes of managedScopes is reused: the audit
// source asks about one event twice, and a burst of changes to one policy
// asks many times. A no is never reused: the scope may gain a grant the
// next moment, and a stale no would leave tampering in place.
const managedCacheTTL = 2 * time.Second

// managedScopes reports whether elevate manages a scope: whether the store
// holds a binding elevate made there, or a live grant has a target there.
type managedScopes struct {
	store    state.Store
	policies func() *policies.Set
	now      func() time.Time
	log      *slog.Logger

	mu    sync.Mutex
	cache map[model.ScopeKey]time.Time // when the scope was last found managed
}

// Managed implements gcp.AuditConfig.Managed. When the store cannot
// answer it says yes: a pass too many costs a policy read, a pass too few
// leaves tampering in place until the next resync.
func (m *managedScopes) Managed(scope model.ScopeKey) bool {
	now := m.now()
	m.mu.Lock()
	if at, ok := m.cache[scope]; ok && now.Sub(at) < managedCacheTTL {
		m.mu.Unlock()
		return true
	}
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	managed, err := m.lookup(ctx, scope, now)
	if err != nil {
		m.log.Warn("cannot tell whether elevate manages the scope; reconciling it anyway", "scope", scope.String(), "error", err)
		return true
	}
	if managed {
		m.mu.Lock()
		if m.cache == nil {
			m.cache = map[model.ScopeKey]time.Time{}
		}
		m.cache[scope] = now
		m.mu.Unlock()
	}
	return managed
}

func (m *managedScopes) lookup(ctx context.Context, scope model.ScopeKey, now time.Time) (bool, error) {
	recs, err := m.store.ListBindings(ctx, state.BindingFilter{Scope: scope})
	if err != nil {
		return false, fmt.Errorf("listing bindings: %w", err)
	}
	if len(recs) > 0 {
		return true, nil
	}
	set := m.policies()
	if set == nil {
		return false, nil
	}
	for _, r := range set.Roles {
		if !slices.ContainsFunc(r.Targets(), func(t model.Target) bool { return t.ScopeKey() == scope }) {
			continue
		}
		gs, err := m.store.ListGrants(ctx, state.GrantFilter{Role: r.Name, ActiveAt: now, Limit: 1})
		if err != nil {
			return false, fmt.Errorf("listing grants of role %s: %w", r.Name, err)
		}
		if len(gs) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// gcpScopes returns the GCP resources the roles of set have targets on,
// sorted: what elevate dev's audit source reads (the emulator keeps each
// resource's audit log apart, like GCP without an aggregated sink).
func gcpScopes(set *policies.Set) []string {
	var out []string
	for _, r := range set.Roles {
		for _, t := range r.Targets() {
			if t.Cloud == model.CloudGCP && !slices.Contains(out, t.Scope) {
				out = append(out, t.Scope)
			}
		}
	}
	slices.Sort(out)
	return out
}

// devGCP is elevate dev's GCP emulator.
type devGCP struct {
	emu  *gcpemu.Emulator
	addr string
	stop func()
}

// devGCPAuditPoll is how often elevate dev reads the emulator's audit logs.
const devGCPAuditPoll = 2 * time.Second

// startDevGCP starts a GCP emulator on a loopback port, creating resources
// on first use and keeping real time.
func startDevGCP() (*devGCP, error) {
	emu := gcpemu.New(gcpemu.Options{Clock: time.Now, AutoCreate: true, Seed: time.Now().UnixNano()})
	addr, stop, err := emu.Listen("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return &devGCP{emu: emu, addr: addr, stop: stop}, nil
}

// config points the GCP provider and its audit source at the emulator:
// the audit source reads the logs of every resource set names, and
// elevate's own writes (the emulator's default caller) trigger nothing.
func (d *devGCP) config(set *policies.Set) *GCPConfig {
	return &GCPConfig{
		Endpoint: d.addr, Insecure: true,
		Parents:   gcpScopes(set),
		Self:      []string{gcpemu.DefaultPrincipal},
		AuditPoll: devGCPAuditPoll,
	}
}
