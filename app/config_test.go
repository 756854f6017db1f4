package app

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/server/auth"
)

const (
	hashA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	hashB = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
)

func writeConfig(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "elevate.hcl")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

const fullConfig = `
policies         = "acme-policies"
listen           = "0.0.0.0:9200"
state            = "postgres://elevate:s3cret@db.internal:5432/elevate"
mode             = "report"
shutdown_timeout = "45s"

auth {
  admins = ["group:platform@acme.example", "user:root@acme.example"]
  oidc {
    issuer          = "https://idp.acme.example"
    audience        = "elevate"
    groups_claim    = "roles"
    principal_claim = "upn"
    jwks_url        = "https://idp.acme.example/keys"
  }
  static_token "ci" {
    principal = "serviceAccount:ci@acme.example"
    groups    = ["group:deployers@acme.example"]
    admin     = true
    sha256    = "` + hashA + `"
  }
}

reconcile {
  resync_interval = "2m"
  lease_ttl       = "20s"
}

memory {
  clouds          = ["aws", "azure"]
  endpoint        = "http://127.0.0.1:9999"
  daemon_enforced = true
}

gcp {
  endpoint     = "127.0.0.1:8085"
  insecure     = true
  parents      = ["organizations/123"]
  principals   = ["breakglass-1@acme.example"]
  self         = ["elevate@acme-admin.iam.gserviceaccount.com"]
  audit_poll   = "30s"
  audit_settle = "1m"
}

telemetry {
  service_name = "elevate-prod"
  log_level    = "debug"
  log_format   = "text"
}
`

func TestLoadConfigFile(t *testing.T) {
	p := writeConfig(t, fullConfig)
	cfg, err := LoadConfig(p, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		File:            p,
		Policies:        filepath.Join(filepath.Dir(p), "acme-policies"),
		Listen:          "0.0.0.0:9200",
		State:           "postgres://elevate:s3cret@db.internal:5432/elevate",
		Mode:            ModeReport,
		ShutdownTimeout: 45 * time.Second,
		Auth: AuthConfig{
			OIDC: &OIDCSettings{Issuer: "https://idp.acme.example", Audience: "elevate", GroupsClaim: "roles",
				PrincipalClaim: "upn", JWKSURL: "https://idp.acme.example/keys"},
			StaticTokens: []auth.StaticToken{{Name: "ci", Principal: model.MustPrincipal("serviceAccount:ci@acme.example"),
				Groups: []model.Principal{model.MustPrincipal("group:deployers@acme.example")}, Admin: true, SHA256: hashA}},
			Admins: []model.Principal{model.MustPrincipal("group:platform@acme.example"), model.MustPrincipal("user:root@acme.example")},
		},
		Reconcile: ReconcileConfig{ResyncInterval: 2 * time.Minute, LeaseTTL: 20 * time.Second},
		Memory:    &MemoryConfig{Clouds: []model.Cloud{model.CloudAWS, model.CloudAzure}, Endpoint: "http://127.0.0.1:9999", DaemonEnforced: true},
		GCP: &GCPConfig{Endpoint: "127.0.0.1:8085", Insecure: true, Parents: []string{"organizations/123"},
			Principals: []string{"breakglass-1@acme.example"}, Self: []string{"elevate@acme-admin.iam.gserviceaccount.com"},
			AuditPoll: 30 * time.Second, AuditSettle: time.Minute},
		Telemetry: TelemetryConfig{ServiceName: "elevate-prod", LogLevel: "debug", LogFormat: "text"},
	}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if got := cfg.RedactedState(); strings.Contains(got, "s3cret") || !strings.Contains(got, "db.internal") {
		t.Errorf("RedactedState() = %q: want the password hidden and the host kept", got)
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := LoadConfig("", envMap(map[string]string{"ELEVATE_STATIC_TOKENS": "dev=user:dev@example.com:" + hashA}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != DefaultListen || cfg.State != DefaultState || cfg.Mode != ModeEnforce || cfg.Policies != DefaultPolicies ||
		cfg.Reconcile.LeaseTTL != DefaultLeaseTTL || cfg.Reconcile.ResyncInterval != DefaultResyncInterval ||
		cfg.Telemetry.ServiceName != DefaultServiceName || cfg.Memory != nil || cfg.Auth.OIDC != nil {
		t.Errorf("defaults not applied: %+v", cfg)
	}
}

// TestLoadConfigEnvOverrides sets each variable over a file that sets the
// same setting differently and checks the variable wins.
func TestLoadConfigEnvOverrides(t *testing.T) {
	p := writeConfig(t, fullConfig)
	cases := []struct {
		env   string
		value string
		check func(*Config) any
		want  any
	}{
		{"ELEVATE_POLICIES", "/srv/policies", func(c *Config) any { return c.Policies }, "/srv/policies"},
		{"ELEVATE_LISTEN", "127.0.0.1:8300", func(c *Config) any { return c.Listen }, "127.0.0.1:8300"},
		{"ELEVATE_STATE", "sqlite:/var/lib/elevate.db", func(c *Config) any { return c.State }, "sqlite:/var/lib/elevate.db"},
		{"ELEVATE_MODE", "enforce", func(c *Config) any { return c.Mode }, ModeEnforce},
		{"ELEVATE_SHUTDOWN_TIMEOUT", "5s", func(c *Config) any { return c.ShutdownTimeout }, 5 * time.Second},
		{"ELEVATE_OIDC_ISSUER", "https://other.example", func(c *Config) any { return c.Auth.OIDC.Issuer }, "https://other.example"},
		{"ELEVATE_OIDC_AUDIENCE", "aud2", func(c *Config) any { return c.Auth.OIDC.Audience }, "aud2"},
		{"ELEVATE_OIDC_GROUPS_CLAIM", "grp", func(c *Config) any { return c.Auth.OIDC.GroupsClaim }, "grp"},
		{"ELEVATE_OIDC_PRINCIPAL_CLAIM", "email", func(c *Config) any { return c.Auth.OIDC.PrincipalClaim }, "email"},
		{"ELEVATE_OIDC_JWKS_URL", "https://other.example/jwks", func(c *Config) any { return c.Auth.OIDC.JWKSURL }, "https://other.example/jwks"},
		{"ELEVATE_ADMINS", "user:a@x.example, group:b@x.example", func(c *Config) any { return principalStrings(c.Auth.Admins) },
			[]string{"user:a@x.example", "group:b@x.example"}},
		{"ELEVATE_STATIC_TOKENS", "bot=user:bot@x.example:" + hashB, func(c *Config) any { return c.Auth.StaticTokens[0].Name + "/" + c.Auth.StaticTokens[0].SHA256 },
			"bot/" + hashB},
		{"ELEVATE_RESYNC_INTERVAL", "30s", func(c *Config) any { return c.Reconcile.ResyncInterval }, 30 * time.Second},
		{"ELEVATE_LEASE_TTL", "1m", func(c *Config) any { return c.Reconcile.LeaseTTL }, time.Minute},
		{"ELEVATE_MEMORY_CLOUDS", "azure", func(c *Config) any { return c.Memory.Clouds }, []model.Cloud{model.CloudAzure}},
		{"ELEVATE_MEMORY_ENDPOINT", "http://127.0.0.1:1", func(c *Config) any { return c.Memory.Endpoint }, "http://127.0.0.1:1"},
		{"ELEVATE_MEMORY_DAEMON_ENFORCED", "false", func(c *Config) any { return c.Memory.DaemonEnforced }, false},
		{"ELEVATE_SERVICE_NAME", "svc", func(c *Config) any { return c.Telemetry.ServiceName }, "svc"},
		{"ELEVATE_LOG_LEVEL", "warn", func(c *Config) any { return c.Telemetry.LogLevel }, "warn"},
		{"ELEVATE_LOG_FORMAT", "json", func(c *Config) any { return c.Telemetry.LogFormat }, "json"},
		{"ELEVATE_AUDIT_SOURCES", "trail=cloudtrail:/srv/audit/aws;poll=2s", func(c *Config) any { return c.AuditSources },
			[]AuditSourceConfig{{Name: "trail", Type: "file", Path: "/srv/audit/aws", Format: "cloudtrail", Poll: 2 * time.Second}}},
		{"ELEVATE_GCP_ENABLED", "false", func(c *Config) any { return c.GCP == nil }, true},
		{"ELEVATE_GCP_ENDPOINT", "localhost:9", func(c *Config) any { return c.GCP.Endpoint }, "localhost:9"},
		{"ELEVATE_GCP_INSECURE", "false", func(c *Config) any { return c.GCP.Insecure }, false},
		{"ELEVATE_GCP_PARENTS", "projects/a, folders/b", func(c *Config) any { return c.GCP.Parents }, []string{"projects/a", "folders/b"}},
		{"ELEVATE_GCP_PRINCIPALS", "bg@x.example", func(c *Config) any { return c.GCP.Principals }, []string{"bg@x.example"}},
		{"ELEVATE_GCP_SELF", "sa@p.iam.gserviceaccount.com", func(c *Config) any { return c.GCP.Self }, []string{"sa@p.iam.gserviceaccount.com"}},
		{"ELEVATE_GCP_AUDIT_POLL", "5s", func(c *Config) any { return c.GCP.AuditPoll }, 5 * time.Second},
		{"ELEVATE_GCP_AUDIT_SETTLE", "0s", func(c *Config) any { return c.GCP.AuditSettle }, time.Duration(0)},
	}
	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.env] = true
		t.Run(tc.env, func(t *testing.T) {
			cfg, err := LoadConfig(p, envMap(map[string]string{tc.env: tc.value}))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, tc.check(cfg)); diff != "" {
				t.Errorf("%s=%s (-want +got):\n%s", tc.env, tc.value, diff)
			}
		})
	}
	for _, name := range configEnv {
		if !covered[name] {
			t.Errorf("environment variable %s has no override test", name)
		}
	}
}

func principalStrings(ps []model.Principal) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func TestLoadConfigEnvOnly(t *testing.T) {
	cfg, err := LoadConfig("", envMap(map[string]string{
		"ELEVATE_OIDC_ISSUER":   "https://idp.example",
		"ELEVATE_OIDC_AUDIENCE": "elevate",
		"ELEVATE_MEMORY_CLOUDS": "gcp,aws",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Auth.OIDC == nil || cfg.Auth.OIDC.Issuer != "https://idp.example" {
		t.Errorf("OIDC from the environment: %+v", cfg.Auth.OIDC)
	}
	if cfg.Memory == nil || len(cfg.Memory.Clouds) != 2 {
		t.Errorf("memory from the environment: %+v", cfg.Memory)
	}
	if cfg.GCP != nil {
		t.Errorf("GCP configured without a gcp block or ELEVATE_GCP_*: %+v", cfg.GCP)
	}
}

// TestLoadConfigGCPEnvOnly turns the GCP provider on from the environment
// alone, with the defaults of an empty gcp block.
func TestLoadConfigGCPEnvOnly(t *testing.T) {
	cfg, err := LoadConfig("", envMap(map[string]string{"ELEVATE_GCP_ENABLED": "true"}))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&GCPConfig{AuditPoll: DefaultGCPAuditPoll, AuditSettle: DefaultGCPAuditSettle}, cfg.GCP); diff != "" {
		t.Errorf("gcp from ELEVATE_GCP_ENABLED (-want +got):\n%s", diff)
	}
	cfg, err = LoadConfig(writeConfig(t, "gcp {}\n"), envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GCP == nil || cfg.GCP.AuditPoll != DefaultGCPAuditPoll || cfg.GCP.Endpoint != "" || cfg.GCP.emulator() {
		t.Errorf("empty gcp block = %+v, want Google's endpoints and the defaults", cfg.GCP)
	}
}

// TestLoadConfigErrors checks that each mistake is reported with the right
// summary and, for file mistakes, the line of the offending attribute.
func TestLoadConfigErrors(t *testing.T) {
	okAuth := "auth {\n  static_token \"a\" {\n    principal = \"user:a@x.example\"\n    sha256 = \"" + hashA + "\"\n  }\n}\n"
	cases := []struct {
		name string
		src  string
		env  map[string]string
		want string // substring of the error
		line int    // 0: no file position expected
	}{
		{"unknown attribute", "colour = \"red\"\n" + okAuth, nil, "Unsupported argument", 1},
		{"bad mode", "mode = \"yolo\"\n" + okAuth, nil, "Invalid mode", 1},
		{"bad duration", okAuth + "reconcile {\n  lease_ttl = \"1.5s\"\n}\n", nil, "Invalid duration", 8},
		{"wrong type", "listen = [1]\n" + okAuth, nil, "Wrong type", 1},
		{"bad listen", "listen = \"localhost\"\n" + okAuth, nil, "Invalid listen address", 1},
		{"syntax", "listen = \n" + okAuth, nil, "", 1},
		{"variable", "listen = var.x\n" + okAuth, nil, "Variables not allowed", 1},
		{"gcp endpoint URL", okAuth + "gcp {\n  endpoint = \"http://127.0.0.1:1\"\n}\n", nil, "Invalid gcp endpoint", 8},
		{"gcp bad parent", okAuth + "gcp {\n  parents = [\"acme-org\"]\n}\n", nil, "Invalid gcp parents", 8},
		{"gcp principal not email", okAuth + "gcp {\n  principals = [\"user:bg@x.example\"]\n}\n", nil, "Invalid gcp principals", 8},
		{"gcp zero poll", okAuth + "gcp {\n  audit_poll = \"0s\"\n}\n", nil, "must be more than zero", 8},
		{"gcp and memory", okAuth + "gcp {}\nmemory {\n  clouds = [\"gcp\"]\n}\n", nil, "Two providers for gcp", 0},
		{"gcp source name", okAuth + "gcp {\n  parents = [\"projects/p\"]\n}\naudit_source \"gcp\" {\n  type = \"file\"\n  path = \"x\"\n  format = \"gcp-audit\"\n}\n", nil, "Audit source name taken", 0},
		{"bad env gcp parents", okAuth, map[string]string{"ELEVATE_GCP_PARENTS": "acme"}, "Invalid environment variable ELEVATE_GCP_PARENTS", 0},
		{"bad env gcp enabled", okAuth, map[string]string{"ELEVATE_GCP_ENABLED": "maybe"}, "Invalid environment variable ELEVATE_GCP_ENABLED", 0},
		{"aws not yet", okAuth + "aws {}\n", nil, "The aws provider is not yet supported", 7},
		{"azure not yet", okAuth + "azure {}\n", nil, "The azure provider is not yet supported", 7},
		{"duplicate block", okAuth + "reconcile {}\nreconcile {}\n", nil, "Duplicate reconcile block", 8},
		{"token instead of hash", "auth {\n  static_token \"a\" {\n    principal = \"user:a@x.example\"\n    sha256 = \"elv_abc\"\n  }\n}\n", nil, "Token in place of its hash", 4},
		{"bad admin", "auth {\n  admins = [\"alice\"]\n  static_token \"a\" {\n    principal = \"user:a@x.example\"\n    sha256 = \"" + hashA + "\"\n  }\n}\n", nil, "Invalid admin principal", 2},
		{"bad cloud", okAuth + "memory {\n  clouds = [\"ibm\"]\n}\n", nil, "Invalid cloud", 8},
		{"bad hash", "auth {\n  static_token \"a\" {\n    principal = \"user:a@x.example\"\n    sha256 = \"abc\"\n  }\n}\n", nil, "Invalid static tokens", 0},
		{"incomplete oidc env", okAuth, map[string]string{"ELEVATE_OIDC_ISSUER": "https://idp.example"}, "Incomplete OIDC settings", 0},
		{"bad env mode", okAuth, map[string]string{"ELEVATE_MODE": "dry"}, "Invalid environment variable ELEVATE_MODE", 0},
		{"bad env duration", okAuth, map[string]string{"ELEVATE_RESYNC_INTERVAL": "soon"}, "Invalid environment variable ELEVATE_RESYNC_INTERVAL", 0},
		{"bad env tokens", okAuth, map[string]string{"ELEVATE_STATIC_TOKENS": "nohash"}, "Invalid environment variable ELEVATE_STATIC_TOKENS", 0},
		{"short lease", okAuth, map[string]string{"ELEVATE_LEASE_TTL": "1s"}, "Lease TTL too short", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := writeConfig(t, tc.src)
			_, err := LoadConfig(p, envMap(tc.env))
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("LoadConfig error = %v, want a *ConfigError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if tc.line > 0 {
				found := false
				for _, d := range ce.Diags {
					if d.Subject != nil && d.Subject.Start.Line == tc.line && d.Subject.Filename == p {
						found = true
					}
				}
				if !found {
					t.Errorf("no diagnostic at %s line %d: %v", p, tc.line, err)
				}
				var buf bytes.Buffer
				ce.Render(&buf, false)
				if !strings.Contains(buf.String(), "on "+p+" line ") {
					t.Errorf("rendered diagnostics lack the source position:\n%s", buf.String())
				}
			}
		})
	}
}

func TestConfigCheckServe(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, "listen = \"127.0.0.1:1\"\n"), envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.checkServe(); err == nil || !strings.Contains(err.Error(), "No authentication configured") {
		t.Errorf("checkServe() = %v, want the no-authentication error", err)
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, err := LoadConfig(filepath.Join(t.TempDir(), "nope.hcl"), envMap(nil))
	if err == nil || !strings.Contains(err.Error(), "--config") {
		t.Errorf("missing file error = %v, want one that mentions --config", err)
	}
}

func TestLoadConfigRelativeSQLite(t *testing.T) {
	p := writeConfig(t, "state = \"sqlite:data/e.db\"\nauth {\n  static_token \"a\" {\n    principal = \"user:a@x.example\"\n    sha256 = \""+hashA+"\"\n  }\n}\n")
	cfg, err := LoadConfig(p, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := "sqlite:" + filepath.Join(filepath.Dir(p), "data/e.db"); cfg.State != want {
		t.Errorf("State = %q, want %q (relative to the config file)", cfg.State, want)
	}
	// From the environment, relative paths stay relative to the working directory.
	cfg, err = LoadConfig(p, envMap(map[string]string{"ELEVATE_STATE": "sqlite:x.db", "ELEVATE_POLICIES": "pol"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.State != "sqlite:x.db" || cfg.Policies != "pol" {
		t.Errorf("env paths rewritten: state %q, policies %q", cfg.State, cfg.Policies)
	}
}

func TestParseStaticTokensEnv(t *testing.T) {
	got, err := ParseStaticTokensEnv("ci=serviceAccount:ci@acme.example:" + hashA + ";group=group:deployers@acme.example;group=group:ops@acme.example, ops=user:ops@acme.example:" + hashB + ";admin")
	if err != nil {
		t.Fatal(err)
	}
	want := []auth.StaticToken{
		{Name: "ci", Principal: model.MustPrincipal("serviceAccount:ci@acme.example"), SHA256: hashA,
			Groups: []model.Principal{model.MustPrincipal("group:deployers@acme.example"), model.MustPrincipal("group:ops@acme.example")}},
		{Name: "ops", Principal: model.MustPrincipal("user:ops@acme.example"), SHA256: hashB, Admin: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tokens (-want +got):\n%s", diff)
	}
	for _, bad := range []string{
		"",
		"=user:a@x.example:" + hashA,
		"a=user:a@x.example:elv_secret",
		"a=nobody:" + hashA,
		"a=user:a@x.example:" + hashA + ";group=user:b@x.example",
		"a=user:a@x.example:" + hashA + ";superuser",
	} {
		if _, err := ParseStaticTokensEnv(bad); err == nil {
			t.Errorf("ParseStaticTokensEnv(%q) succeeded, want an error", bad)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:pw@h:5432/db?sslmode=disable": "postgres://u:xxxxx@h:5432/db?sslmode=disable",
		"postgres://u@h/db":                         "postgres://u@h/db",
		"sqlite:/tmp/e.db":                          "sqlite:/tmp/e.db",
		"postgres://h/db?x=a@b":                     "postgres://h/db?x=a@b",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
