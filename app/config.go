package app

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/server/auth"
)

// This file reads the daemon configuration: an HCL file (elevate.hcl) whose
// every setting can also come from an ELEVATE_* environment variable. The
// environment overrides the file, the file overrides the defaults.
// docs/operations.md is the reference; keep it in step with configEnv.

// Configuration defaults.
const (
	DefaultListen          = "127.0.0.1:8200"
	DefaultState           = "sqlite:elevate.db"
	DefaultPolicies        = "policies"
	DefaultResyncInterval  = 5 * time.Minute
	DefaultLeaseTTL        = 15 * time.Second
	DefaultShutdownTimeout = 30 * time.Second
	DefaultServiceName     = "elevate"
)

// Modes of the daemon.
const (
	// ModeEnforce applies plans: the clouds are made to match the grants.
	ModeEnforce = "enforce"
	// ModeReport plans every pass and reports the changes, writing nothing
	// to any cloud.
	ModeReport = "report"
)

// Config is the daemon configuration, defaults filled in.
type Config struct {
	// File is the configuration file read, "" when there was none.
	File string
	// Policies is the policy directory (or file).
	Policies string
	// Listen is the API's host:port.
	Listen string
	// State is the store URL (state.Open). It may hold a password: log
	// it only through RedactedState.
	State string
	// Mode is ModeEnforce or ModeReport.
	Mode string
	// ShutdownTimeout bounds how long in-flight requests and the running
	// reconcile pass may take after SIGTERM.
	ShutdownTimeout time.Duration

	Auth      AuthConfig
	Reconcile ReconcileConfig
	// Memory configures the in-memory provider; nil when absent.
	Memory *MemoryConfig
	// GCP configures the GCP provider and its audit source (gcp.go); nil
	// when absent.
	GCP       *GCPConfig
	Telemetry TelemetryConfig
	// AuditSources are the audit_source blocks: what the break-glass
	// watchers read (breakglass_daemon.go).
	AuditSources []AuditSourceConfig
}

// AuthConfig says how API callers authenticate.
type AuthConfig struct {
	// OIDC is nil when OIDC is not configured.
	OIDC         *OIDCSettings
	StaticTokens []auth.StaticToken
	// Admins are principals and groups with administrator rights.
	Admins []model.Principal
}

// OIDCSettings are the settings of the auth.oidc block.
type OIDCSettings struct {
	Issuer         string
	Audience       string
	GroupsClaim    string
	PrincipalClaim string
	JWKSURL        string
}

// ReconcileConfig tunes the reconcile loop.
type ReconcileConfig struct {
	// ResyncInterval is the time between two full passes when nothing
	// else triggers one.
	ResyncInterval time.Duration
	// LeaseTTL is how long the leader's lease lasts unrenewed: the longest
	// a failover waits.
	LeaseTTL time.Duration
}

// MemoryConfig configures the in-memory provider (tests, demos, and the
// clouds whose real providers have not landed yet).
type MemoryConfig struct {
	// Clouds are the clouds the memory provider stands in for; default
	// every cloud (gcp, aws, azure and memory).
	Clouds []model.Cloud
	// Endpoint is the URL of a memory emulator process (elevate
	// emulator); empty means an in-process provider that forgets its
	// bindings when the daemon stops.
	Endpoint string
	// DaemonEnforced makes the provider behave like a cloud without
	// native expiry (AWS Identity Center, Azure plain assignments).
	DaemonEnforced bool
}

// TelemetryConfig configures logs, traces and metrics.
type TelemetryConfig struct {
	ServiceName string
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// LogFormat is json or text.
	LogFormat string
}

// RedactedState returns the state URL with any password replaced, for logs.
func (c *Config) RedactedState() string { return redactURL(c.State) }

// redactURL hides the password of a URL with userinfo ("postgres://u:p@h").
func redactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	at := strings.LastIndex(rest, "@")
	slash := strings.Index(rest, "/")
	if at < 0 || (slash >= 0 && slash < at) {
		return raw
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return raw
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}

// defaultConfig returns the configuration with no file and no environment.
func defaultConfig() *Config {
	return &Config{
		Policies:        DefaultPolicies,
		Listen:          DefaultListen,
		State:           DefaultState,
		Mode:            ModeEnforce,
		ShutdownTimeout: DefaultShutdownTimeout,
		Reconcile: ReconcileConfig{
			ResyncInterval: DefaultResyncInterval,
			LeaseTTL:       DefaultLeaseTTL,
		},
		Telemetry: TelemetryConfig{ServiceName: DefaultServiceName, LogLevel: "info", LogFormat: "json"},
	}
}

// ConfigError is a configuration that cannot be used: HCL diagnostics with
// source positions, and problems with environment variables.
type ConfigError struct {
	Diags hcl.Diagnostics
	files map[string]*hcl.File
}

func (e *ConfigError) Error() string {
	var msgs []string
	for _, d := range e.Diags {
		if d.Severity == hcl.DiagError {
			msgs = append(msgs, diagString(d))
		}
	}
	return strings.Join(msgs, "\n")
}

func diagString(d *hcl.Diagnostic) string {
	s := d.Summary
	if d.Detail != "" {
		s += ": " + d.Detail
	}
	if d.Subject != nil {
		s = fmt.Sprintf("%s:%d,%d: %s", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, s)
	}
	return s
}

// Render writes the diagnostics with the offending source lines.
func (e *ConfigError) Render(w io.Writer, color bool) {
	wr := hcl.NewDiagnosticTextWriter(w, e.files, 100, color)
	_ = wr.WriteDiagnostics(e.Diags)
}

// LoadConfig reads the configuration file at path ("" for none) and then
// the environment (getenv, normally os.Getenv). Relative paths in the file
// (the policy directory, a sqlite: state path) are relative to the file's
// directory; relative paths from the environment to the working directory.
func LoadConfig(path string, getenv func(string) string) (*Config, error) {
	cfg := defaultConfig()
	parser := hclparse.NewParser()
	var diags hcl.Diagnostics
	if path != "" {
		src, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading configuration: %w (pass --config with the path of your elevate.hcl, or leave it out to configure elevate from ELEVATE_* variables alone)", err)
		}
		cfg.File = path
		f, ds := parser.ParseHCL(src, path)
		diags = append(diags, ds...)
		if !ds.HasErrors() {
			diags = append(diags, decodeConfigFile(f.Body, cfg)...)
			dir := filepath.Dir(path)
			cfg.Policies = relativeTo(dir, cfg.Policies)
			for i := range cfg.AuditSources {
				cfg.AuditSources[i].Path = relativeTo(dir, cfg.AuditSources[i].Path)
			}
			if p, ok := strings.CutPrefix(cfg.State, "sqlite:"); ok && p != ":memory:" && !strings.HasPrefix(p, "//") {
				cfg.State = "sqlite:" + relativeTo(dir, p)
			}
		}
	}
	if !diags.HasErrors() {
		diags = append(diags, applyEnv(cfg, getenv)...)
	}
	if !diags.HasErrors() {
		diags = append(diags, cfg.check()...)
	}
	if diags.HasErrors() {
		return nil, &ConfigError{Diags: diags, files: parser.Files()}
	}
	return cfg, nil
}

// relativeTo resolves a relative path against dir; defaults stay as they
// are when dir is ".".
func relativeTo(dir, p string) string {
	if p == "" || filepath.IsAbs(p) || dir == "." || dir == "" {
		return p
	}
	return filepath.Join(dir, p)
}

var configSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "policies"},
		{Name: "listen"},
		{Name: "state"},
		{Name: "mode"},
		{Name: "shutdown_timeout"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "auth"},
		{Type: "reconcile"},
		{Type: "telemetry"},
		{Type: "memory"},
		{Type: "gcp"},
		{Type: "aws"},
		{Type: "azure"},
		{Type: "audit_source", LabelNames: []string{"name"}},
	},
}

func decodeConfigFile(body hcl.Body, cfg *Config) hcl.Diagnostics {
	content, diags := body.Content(configSchema)
	diags = append(diags, stringAttr(content.Attributes, "policies", &cfg.Policies)...)
	diags = append(diags, stringAttr(content.Attributes, "listen", &cfg.Listen)...)
	diags = append(diags, stringAttr(content.Attributes, "state", &cfg.State)...)
	diags = append(diags, stringAttr(content.Attributes, "mode", &cfg.Mode)...)
	diags = append(diags, durationAttr(content.Attributes, "shutdown_timeout", &cfg.ShutdownTimeout)...)
	if a := content.Attributes["mode"]; a != nil && !diags.HasErrors() && !validMode(cfg.Mode) {
		diags = append(diags, attrError(a, "Invalid mode", fmt.Sprintf("mode is %q: use \"enforce\" (apply changes to the clouds) or \"report\" (plan and report, write nothing).", cfg.Mode)))
	}
	if a := content.Attributes["listen"]; a != nil && !diags.HasErrors() {
		if err := checkListen(cfg.Listen); err != nil {
			diags = append(diags, attrError(a, "Invalid listen address", err.Error()))
		}
	}
	seen := map[string]*hcl.Block{}
	for _, b := range content.Blocks {
		if b.Type == "audit_source" {
			diags = append(diags, decodeAuditSourceBlock(b, cfg)...)
			continue
		}
		if prev := seen[b.Type]; prev != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Duplicate %s block", b.Type),
				Detail:   fmt.Sprintf("Only one %s block is allowed; the first is at %s. Merge them.", b.Type, prev.DefRange),
				Subject:  b.DefRange.Ptr(),
			})
			continue
		}
		seen[b.Type] = b
		switch b.Type {
		case "auth":
			diags = append(diags, decodeAuthBlock(b, &cfg.Auth)...)
		case "reconcile":
			diags = append(diags, decodeReconcileBlock(b, &cfg.Reconcile)...)
		case "telemetry":
			diags = append(diags, decodeTelemetryBlock(b, &cfg.Telemetry)...)
		case "memory":
			m, ds := decodeMemoryBlock(b)
			diags = append(diags, ds...)
			cfg.Memory = m
		case "gcp":
			g, ds := decodeGCPBlock(b)
			diags = append(diags, ds...)
			cfg.GCP = g
		case "aws", "azure":
			diags = append(diags, decodeCloudBlock(b)...)
		}
	}
	return diags
}

var authSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "admins"}},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "oidc"},
		{Type: "static_token", LabelNames: []string{"name"}},
	},
}

func decodeAuthBlock(b *hcl.Block, a *AuthConfig) hcl.Diagnostics {
	content, diags := b.Body.Content(authSchema)
	if attr := content.Attributes["admins"]; attr != nil {
		var texts []string
		ds := listAttr(content.Attributes, "admins", &texts)
		diags = append(diags, ds...)
		if !ds.HasErrors() {
			for _, t := range texts {
				p, err := model.ParsePrincipal(t)
				if err != nil {
					diags = append(diags, attrError(attr, "Invalid admin principal", err.Error()))
					continue
				}
				a.Admins = append(a.Admins, p)
			}
		}
	}
	for _, blk := range content.Blocks {
		switch blk.Type {
		case "oidc":
			if a.OIDC != nil {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate oidc block",
					Detail: "elevate trusts one OIDC issuer; keep one oidc block.", Subject: blk.DefRange.Ptr()})
				continue
			}
			o, ds := decodeOIDCBlock(blk)
			diags = append(diags, ds...)
			a.OIDC = o
		case "static_token":
			t, ds := decodeStaticTokenBlock(blk)
			diags = append(diags, ds...)
			if !ds.HasErrors() {
				a.StaticTokens = append(a.StaticTokens, t)
			}
		}
	}
	return diags
}

var oidcSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "issuer", Required: true},
		{Name: "audience", Required: true},
		{Name: "groups_claim"},
		{Name: "principal_claim"},
		{Name: "jwks_url"},
	},
}

func decodeOIDCBlock(b *hcl.Block) (*OIDCSettings, hcl.Diagnostics) {
	content, diags := b.Body.Content(oidcSchema)
	o := &OIDCSettings{}
	diags = append(diags, stringAttr(content.Attributes, "issuer", &o.Issuer)...)
	diags = append(diags, stringAttr(content.Attributes, "audience", &o.Audience)...)
	diags = append(diags, stringAttr(content.Attributes, "groups_claim", &o.GroupsClaim)...)
	diags = append(diags, stringAttr(content.Attributes, "principal_claim", &o.PrincipalClaim)...)
	diags = append(diags, stringAttr(content.Attributes, "jwks_url", &o.JWKSURL)...)
	return o, diags
}

var staticTokenSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "principal", Required: true},
		{Name: "groups"},
		{Name: "admin"},
		{Name: "sha256", Required: true},
	},
}

func decodeStaticTokenBlock(b *hcl.Block) (auth.StaticToken, hcl.Diagnostics) {
	content, diags := b.Body.Content(staticTokenSchema)
	t := auth.StaticToken{Name: b.Labels[0]}
	var principal string
	var groups []string
	diags = append(diags, stringAttr(content.Attributes, "principal", &principal)...)
	diags = append(diags, listAttr(content.Attributes, "groups", &groups)...)
	diags = append(diags, boolAttr(content.Attributes, "admin", &t.Admin)...)
	diags = append(diags, stringAttr(content.Attributes, "sha256", &t.SHA256)...)
	if diags.HasErrors() {
		return t, diags
	}
	p, err := model.ParsePrincipal(principal)
	if err != nil {
		diags = append(diags, attrError(content.Attributes["principal"], "Invalid token principal", err.Error()))
	}
	t.Principal = p
	for _, g := range groups {
		gp, err := model.ParsePrincipal(g)
		if err != nil || gp.Kind != model.KindGroup {
			diags = append(diags, attrError(content.Attributes["groups"], "Invalid token group",
				fmt.Sprintf("%q is not a group principal: write group:NAME.", g)))
			continue
		}
		t.Groups = append(t.Groups, gp)
	}
	if looksLikeToken(t.SHA256) {
		diags = append(diags, attrError(content.Attributes["sha256"], "Token in place of its hash",
			"sha256 holds the token itself: store only its SHA-256 (printf %s TOKEN | sha256sum), and revoke this token, since it is now in a file."))
	}
	return t, diags
}

// looksLikeToken reports whether a sha256 setting holds an elevate token
// rather than a hash.
func looksLikeToken(s string) bool {
	return strings.HasPrefix(strings.TrimSpace(s), auth.StaticTokenPrefix)
}

var reconcileSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "resync_interval"}, {Name: "lease_ttl"}},
}

func decodeReconcileBlock(b *hcl.Block, r *ReconcileConfig) hcl.Diagnostics {
	content, diags := b.Body.Content(reconcileSchema)
	diags = append(diags, durationAttr(content.Attributes, "resync_interval", &r.ResyncInterval)...)
	diags = append(diags, durationAttr(content.Attributes, "lease_ttl", &r.LeaseTTL)...)
	return diags
}

var telemetrySchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "service_name"}, {Name: "log_level"}, {Name: "log_format"}},
}

func decodeTelemetryBlock(b *hcl.Block, t *TelemetryConfig) hcl.Diagnostics {
	content, diags := b.Body.Content(telemetrySchema)
	diags = append(diags, stringAttr(content.Attributes, "service_name", &t.ServiceName)...)
	diags = append(diags, stringAttr(content.Attributes, "log_level", &t.LogLevel)...)
	diags = append(diags, stringAttr(content.Attributes, "log_format", &t.LogFormat)...)
	if a := content.Attributes["log_level"]; a != nil && !diags.HasErrors() {
		if _, err := parseLogLevel(t.LogLevel); err != nil {
			diags = append(diags, attrError(a, "Invalid log level", err.Error()))
		}
	}
	if a := content.Attributes["log_format"]; a != nil && !diags.HasErrors() && !validLogFormat(t.LogFormat) {
		diags = append(diags, attrError(a, "Invalid log format", fmt.Sprintf("log_format is %q: use \"json\" or \"text\".", t.LogFormat)))
	}
	return diags
}

var memorySchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "clouds"}, {Name: "endpoint"}, {Name: "daemon_enforced"}},
}

func decodeMemoryBlock(b *hcl.Block) (*MemoryConfig, hcl.Diagnostics) {
	content, diags := b.Body.Content(memorySchema)
	m := &MemoryConfig{}
	var clouds []string
	diags = append(diags, listAttr(content.Attributes, "clouds", &clouds)...)
	diags = append(diags, stringAttr(content.Attributes, "endpoint", &m.Endpoint)...)
	diags = append(diags, boolAttr(content.Attributes, "daemon_enforced", &m.DaemonEnforced)...)
	if a := content.Attributes["clouds"]; a != nil && !diags.HasErrors() {
		cs, err := parseClouds(clouds)
		if err != nil {
			diags = append(diags, attrError(a, "Invalid cloud", err.Error()))
		}
		m.Clouds = cs
	}
	if a := content.Attributes["endpoint"]; a != nil && !diags.HasErrors() {
		if err := checkEndpoint(m.Endpoint); err != nil {
			diags = append(diags, attrError(a, "Invalid endpoint", err.Error()))
		}
	}
	return m, diags
}

var cloudSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "endpoint"}}}

// decodeCloudBlock reserves the aws and azure blocks: their providers come
// with the cloud issues.
func decodeCloudBlock(b *hcl.Block) hcl.Diagnostics {
	content, diags := b.Body.Content(cloudSchema)
	var endpoint string
	diags = append(diags, stringAttr(content.Attributes, "endpoint", &endpoint)...)
	return append(diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("The %s provider is not yet supported", b.Type),
		Detail: fmt.Sprintf("This elevate build has no %[1]s provider yet. To run %[1]s targets against the in-memory provider meanwhile, remove this block and add memory { clouds = [%[1]q] }.",
			b.Type),
		Subject: b.DefRange.Ptr(),
	})
}

func parseClouds(names []string) ([]model.Cloud, error) {
	var out []model.Cloud
	for _, n := range names {
		c := model.Cloud(strings.TrimSpace(n))
		switch c {
		case model.CloudGCP, model.CloudAWS, model.CloudAzure, model.CloudMemory:
		default:
			return nil, fmt.Errorf("unknown cloud %q: use gcp, aws, azure or memory", n)
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// allClouds are the clouds a memory block without clouds stands in for.
var allClouds = []model.Cloud{model.CloudGCP, model.CloudAWS, model.CloudAzure, model.CloudMemory}

func validMode(m string) bool { return m == ModeEnforce || m == ModeReport }

func validLogFormat(f string) bool { return f == "json" || f == "text" }

func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: write an address such as 127.0.0.1:8200 or :8200 (all interfaces)", addr)
	}
	_ = host
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q has an invalid port: use a number from 0 to 65535", addr)
	}
	return nil
}

func checkEndpoint(s string) error {
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		return fmt.Errorf("%q is not an http(s) URL: write http://HOST:PORT", s)
	}
	return nil
}

// attribute helpers: evaluate without variables or functions (the config
// is data), convert, and report errors at the attribute's range.

func attrValue(attrs hcl.Attributes, name string, ty cty.Type) (cty.Value, *hcl.Attribute, hcl.Diagnostics) {
	a := attrs[name]
	if a == nil {
		return cty.NilVal, nil, nil
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() {
		return cty.NilVal, a, diags
	}
	if v.IsNull() {
		return cty.NilVal, a, hcl.Diagnostics{attrError(a, "Null value", fmt.Sprintf("%s must not be null: remove the line to use the default.", name))}
	}
	cv, err := convert.Convert(v, ty)
	if err != nil {
		return cty.NilVal, a, hcl.Diagnostics{attrError(a, "Wrong type", fmt.Sprintf("%s must be %s: %v.", name, ty.FriendlyName(), err))}
	}
	if !cv.IsWhollyKnown() {
		return cty.NilVal, a, hcl.Diagnostics{attrError(a, "Unknown value", name+" must be a constant.")}
	}
	return cv, a, nil
}

func stringAttr(attrs hcl.Attributes, name string, dst *string) hcl.Diagnostics {
	v, a, diags := attrValue(attrs, name, cty.String)
	if a == nil || diags.HasErrors() {
		return diags
	}
	*dst = v.AsString()
	return nil
}

func boolAttr(attrs hcl.Attributes, name string, dst *bool) hcl.Diagnostics {
	v, a, diags := attrValue(attrs, name, cty.Bool)
	if a == nil || diags.HasErrors() {
		return diags
	}
	*dst = v.True()
	return nil
}

func listAttr(attrs hcl.Attributes, name string, dst *[]string) hcl.Diagnostics {
	v, a, diags := attrValue(attrs, name, cty.List(cty.String))
	if a == nil || diags.HasErrors() {
		return diags
	}
	out := []string{}
	for _, e := range v.AsValueSlice() {
		if e.IsNull() {
			return hcl.Diagnostics{attrError(a, "Null element", name+" must not contain null.")}
		}
		out = append(out, e.AsString())
	}
	*dst = out
	return nil
}

func durationAttr(attrs hcl.Attributes, name string, dst *time.Duration) hcl.Diagnostics {
	var s string
	diags := stringAttr(attrs, name, &s)
	if attrs[name] == nil || diags.HasErrors() {
		return diags
	}
	d, err := parseConfigDuration(s)
	if err != nil {
		return hcl.Diagnostics{attrError(attrs[name], "Invalid duration", err.Error())}
	}
	*dst = d
	return nil
}

// parseConfigDuration reads elevate's duration syntax and requires a
// positive value.
func parseConfigDuration(s string) (time.Duration, error) {
	d, err := model.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, fmt.Errorf("duration %q must be more than zero", s)
	}
	return d, nil
}

func attrError(a *hcl.Attribute, summary, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: a.Expr.Range().Ptr(), Context: a.Range.Ptr()}
}

// configEnv lists every environment variable the configuration reads, in
// the order of docs/operations.md.
var configEnv = []string{
	"ELEVATE_POLICIES", "ELEVATE_LISTEN", "ELEVATE_STATE", "ELEVATE_MODE", "ELEVATE_SHUTDOWN_TIMEOUT",
	"ELEVATE_OIDC_ISSUER", "ELEVATE_OIDC_AUDIENCE", "ELEVATE_OIDC_GROUPS_CLAIM", "ELEVATE_OIDC_PRINCIPAL_CLAIM", "ELEVATE_OIDC_JWKS_URL",
	"ELEVATE_STATIC_TOKENS", "ELEVATE_ADMINS",
	"ELEVATE_RESYNC_INTERVAL", "ELEVATE_LEASE_TTL",
	"ELEVATE_MEMORY_CLOUDS", "ELEVATE_MEMORY_ENDPOINT", "ELEVATE_MEMORY_DAEMON_ENFORCED",
	"ELEVATE_SERVICE_NAME", "ELEVATE_LOG_LEVEL", "ELEVATE_LOG_FORMAT",
	"ELEVATE_AUDIT_SOURCES",
	"ELEVATE_GCP_ENABLED", "ELEVATE_GCP_ENDPOINT", "ELEVATE_GCP_INSECURE", "ELEVATE_GCP_PARENTS",
	"ELEVATE_GCP_PRINCIPALS", "ELEVATE_GCP_SELF", "ELEVATE_GCP_AUDIT_POLL", "ELEVATE_GCP_AUDIT_SETTLE",
}

// applyEnv overrides cfg with the ELEVATE_* variables that are set and not
// empty. List variables replace the file's list.
func applyEnv(cfg *Config, getenv func(string) string) hcl.Diagnostics {
	var diags hcl.Diagnostics
	bad := func(name, detail string) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
			Summary: "Invalid environment variable " + name, Detail: detail})
	}
	str := func(name string, dst *string) bool {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			*dst = v
			return true
		}
		return false
	}
	dur := func(name string, dst *time.Duration) {
		var s string
		if str(name, &s) {
			d, err := parseConfigDuration(s)
			if err != nil {
				bad(name, err.Error())
				return
			}
			*dst = d
		}
	}
	boolean := func(name string, dst *bool) {
		var s string
		if str(name, &s) {
			b, err := strconv.ParseBool(s)
			if err != nil {
				bad(name, fmt.Sprintf("%q is not a boolean: use true or false.", s))
				return
			}
			*dst = b
		}
	}

	str("ELEVATE_POLICIES", &cfg.Policies)
	if str("ELEVATE_LISTEN", &cfg.Listen) {
		if err := checkListen(cfg.Listen); err != nil {
			bad("ELEVATE_LISTEN", err.Error())
		}
	}
	str("ELEVATE_STATE", &cfg.State)
	if str("ELEVATE_MODE", &cfg.Mode) && !validMode(cfg.Mode) {
		bad("ELEVATE_MODE", fmt.Sprintf("%q is not a mode: use enforce or report.", cfg.Mode))
	}
	dur("ELEVATE_SHUTDOWN_TIMEOUT", &cfg.ShutdownTimeout)

	var o OIDCSettings
	if cfg.Auth.OIDC != nil {
		o = *cfg.Auth.OIDC
	}
	set := str("ELEVATE_OIDC_ISSUER", &o.Issuer)
	set = str("ELEVATE_OIDC_AUDIENCE", &o.Audience) || set
	set = str("ELEVATE_OIDC_GROUPS_CLAIM", &o.GroupsClaim) || set
	set = str("ELEVATE_OIDC_PRINCIPAL_CLAIM", &o.PrincipalClaim) || set
	set = str("ELEVATE_OIDC_JWKS_URL", &o.JWKSURL) || set
	if set || cfg.Auth.OIDC != nil {
		cfg.Auth.OIDC = &o
	}

	var s string
	if str("ELEVATE_AUDIT_SOURCES", &s) {
		srcs, err := ParseAuditSourcesEnv(s)
		if err != nil {
			bad("ELEVATE_AUDIT_SOURCES", err.Error())
		} else {
			cfg.AuditSources = srcs
		}
	}
	if str("ELEVATE_STATIC_TOKENS", &s) {
		toks, err := ParseStaticTokensEnv(s)
		if err != nil {
			bad("ELEVATE_STATIC_TOKENS", err.Error())
		} else {
			cfg.Auth.StaticTokens = toks
		}
	}
	if str("ELEVATE_ADMINS", &s) {
		cfg.Auth.Admins = nil
		for _, t := range splitList(s) {
			p, err := model.ParsePrincipal(t)
			if err != nil {
				bad("ELEVATE_ADMINS", err.Error())
				continue
			}
			cfg.Auth.Admins = append(cfg.Auth.Admins, p)
		}
	}

	dur("ELEVATE_RESYNC_INTERVAL", &cfg.Reconcile.ResyncInterval)
	dur("ELEVATE_LEASE_TTL", &cfg.Reconcile.LeaseTTL)

	memSet := false
	m := MemoryConfig{}
	if cfg.Memory != nil {
		m = *cfg.Memory
	}
	if str("ELEVATE_MEMORY_CLOUDS", &s) {
		memSet = true
		cs, err := parseClouds(splitList(s))
		if err != nil {
			bad("ELEVATE_MEMORY_CLOUDS", err.Error())
		}
		m.Clouds = cs
	}
	if str("ELEVATE_MEMORY_ENDPOINT", &m.Endpoint) {
		memSet = true
		if err := checkEndpoint(m.Endpoint); err != nil {
			bad("ELEVATE_MEMORY_ENDPOINT", err.Error())
		}
	}
	if getenv("ELEVATE_MEMORY_DAEMON_ENFORCED") != "" {
		memSet = true
		boolean("ELEVATE_MEMORY_DAEMON_ENFORCED", &m.DaemonEnforced)
	}
	if memSet || cfg.Memory != nil {
		cfg.Memory = &m
	}

	str("ELEVATE_SERVICE_NAME", &cfg.Telemetry.ServiceName)
	if str("ELEVATE_LOG_LEVEL", &cfg.Telemetry.LogLevel) {
		if _, err := parseLogLevel(cfg.Telemetry.LogLevel); err != nil {
			bad("ELEVATE_LOG_LEVEL", err.Error())
		}
	}
	if str("ELEVATE_LOG_FORMAT", &cfg.Telemetry.LogFormat) && !validLogFormat(cfg.Telemetry.LogFormat) {
		bad("ELEVATE_LOG_FORMAT", fmt.Sprintf("%q is not a log format: use json or text.", cfg.Telemetry.LogFormat))
	}
	return append(diags, applyGCPEnv(cfg, getenv)...)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ParseStaticTokensEnv parses ELEVATE_STATIC_TOKENS: comma-separated
// entries, each
//
//	NAME=PRINCIPAL:SHA256[;group=group:G]...[;admin]
//
// where SHA256 is the 64 hex digits of the token's SHA-256 (the part after
// the principal's last colon). For example
//
//	ci=serviceAccount:ci@acme.example:9f86d0…;group=group:deployers@acme.example,ops=user:ops@acme.example:2c26b4…;admin
func ParseStaticTokensEnv(s string) ([]auth.StaticToken, error) {
	var out []auth.StaticToken
	const form = "write NAME=PRINCIPAL:SHA256[;group=group:G][;admin], entries separated by commas"
	for i, entry := range splitList(s) {
		parts := strings.Split(entry, ";")
		name, rest, ok := strings.Cut(parts[0], "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("entry %d has no NAME=: %s", i+1, form)
		}
		colon := strings.LastIndex(rest, ":")
		if colon < 0 {
			return nil, fmt.Errorf("token %q has no :SHA256 after the principal: %s", name, form)
		}
		hash := strings.TrimSpace(rest[colon+1:])
		if looksLikeToken(hash) {
			return nil, fmt.Errorf("token %q: the variable holds the token itself; give its SHA-256 instead (printf %%s TOKEN | sha256sum), and revoke this token", name)
		}
		p, err := model.ParsePrincipal(strings.TrimSpace(rest[:colon]))
		if err != nil {
			return nil, fmt.Errorf("token %q: %w", name, err)
		}
		t := auth.StaticToken{Name: name, Principal: p, SHA256: hash}
		for _, opt := range parts[1:] {
			opt = strings.TrimSpace(opt)
			switch {
			case opt == "admin":
				t.Admin = true
			case strings.HasPrefix(opt, "group="):
				g, err := model.ParsePrincipal(strings.TrimPrefix(opt, "group="))
				if err != nil || g.Kind != model.KindGroup {
					return nil, fmt.Errorf("token %q: %q is not group=group:NAME", name, opt)
				}
				t.Groups = append(t.Groups, g)
			default:
				return nil, fmt.Errorf("token %q: unknown option %q: use group=group:NAME or admin", name, opt)
			}
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, errors.New("no tokens: " + form)
	}
	return out, nil
}

// check validates the merged configuration as a whole.
func (c *Config) check() hcl.Diagnostics {
	var diags hcl.Diagnostics
	bad := func(summary, detail string) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail})
	}
	if c.Policies == "" {
		bad("No policy directory", "Set policies in the configuration file or ELEVATE_POLICIES.")
	}
	if o := c.Auth.OIDC; o != nil {
		if o.Issuer == "" || o.Audience == "" {
			bad("Incomplete OIDC settings", "OIDC needs both an issuer and an audience (oidc { issuer, audience } or ELEVATE_OIDC_ISSUER and ELEVATE_OIDC_AUDIENCE).")
		}
	}
	if _, err := auth.NewStaticTokens(c.Auth.StaticTokens); err != nil {
		bad("Invalid static tokens", err.Error())
	}
	if c.Reconcile.LeaseTTL < 2*time.Second {
		bad("Lease TTL too short", fmt.Sprintf("lease_ttl is %s: use at least 2s, so the leader can renew the lease before it lapses.", c.Reconcile.LeaseTTL))
	}
	return append(diags, c.checkGCP()...)
}

// checkServe adds the checks that only matter for a daemon that serves
// the API.
func (c *Config) checkServe() error {
	if c.Auth.OIDC == nil && len(c.Auth.StaticTokens) == 0 {
		return &ConfigError{Diags: hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "No authentication configured",
			Detail: "Nobody could call the API: configure auth { oidc { … } } (or ELEVATE_OIDC_ISSUER and ELEVATE_OIDC_AUDIENCE), or at least one static token (auth { static_token \"NAME\" { … } } or ELEVATE_STATIC_TOKENS)."}}}
	}
	return nil
}

// clouds returns the clouds the memory provider serves.
func (m *MemoryConfig) clouds() []model.Cloud {
	if len(m.Clouds) == 0 {
		return allClouds
	}
	return m.Clouds
}
