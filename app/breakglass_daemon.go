package app

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"
	"go.opentelemetry.io/otel/metric"

	"github.com/elevatehq/elevate/breakglass"
	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/state"
)

// This file wires break-glass detection into the daemon: the audit_source
// blocks of the configuration (and ELEVATE_AUDIT_SOURCES), and the
// breakglass.Watcher that elevate serve and elevate dev run.

// Audit source types.
const auditSourceFile = "file"

// AuditSourceConfig is one audit_source block.
type AuditSourceConfig struct {
	Name string
	// Type is the kind of source; "file" follows a directory of exported
	// logs.
	Type string
	// Path is the directory (type file).
	Path string
	// Format is the log format (breakglass.Sources).
	Format string
	// Poll is the time between reads; 0 means breakglass.DefaultPoll.
	Poll time.Duration
}

var auditSourceSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "type", Required: true},
		{Name: "path", Required: true},
		{Name: "format", Required: true},
		{Name: "poll"},
	},
}

// minPoll is the shortest poll interval accepted.
const minPoll = time.Second

func logFormatNames() string {
	names := make([]string, len(breakglass.Sources))
	for i, s := range breakglass.Sources {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// decodeAuditSourceBlock reads one audit_source block into cfg.
func decodeAuditSourceBlock(b *hcl.Block, cfg *Config) hcl.Diagnostics {
	content, diags := b.Body.Content(auditSourceSchema)
	src := AuditSourceConfig{Name: b.Labels[0]}
	diags = append(diags, stringAttr(content.Attributes, "type", &src.Type)...)
	diags = append(diags, stringAttr(content.Attributes, "path", &src.Path)...)
	diags = append(diags, stringAttr(content.Attributes, "format", &src.Format)...)
	diags = append(diags, durationAttr(content.Attributes, "poll", &src.Poll)...)
	if diags.HasErrors() {
		return diags
	}
	for _, prev := range cfg.AuditSources {
		if prev.Name == src.Name {
			return append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate audit_source name",
				Detail:  fmt.Sprintf("Another audit_source is named %q; names identify a source's position in the logs, so each must be unique.", src.Name),
				Subject: b.LabelRanges[0].Ptr()})
		}
	}
	if a := content.Attributes["type"]; a != nil && src.Type != auditSourceFile {
		diags = append(diags, attrError(a, "Unknown audit source type",
			fmt.Sprintf("type is %q: use \"file\" (a directory of exported logs; see docs/break-glass.md).", src.Type)))
	}
	if a := content.Attributes["format"]; a != nil {
		if _, err := breakglass.ParseSource(src.Format); err != nil {
			diags = append(diags, attrError(a, "Unknown log format", fmt.Sprintf("format is %q: use one of %s.", src.Format, logFormatNames())))
		}
	}
	if a := content.Attributes["path"]; a != nil && strings.TrimSpace(src.Path) == "" {
		diags = append(diags, attrError(a, "Empty path", "path must name the directory the log files land in."))
	}
	if a := content.Attributes["poll"]; a != nil && src.Poll < minPoll {
		diags = append(diags, attrError(a, "Poll interval too short", fmt.Sprintf("poll must be at least %s.", minPoll)))
	}
	if !diags.HasErrors() {
		cfg.AuditSources = append(cfg.AuditSources, src)
	}
	return diags
}

// ParseAuditSourcesEnv parses ELEVATE_AUDIT_SOURCES: comma-separated
// entries, each
//
//	NAME=FORMAT:PATH[;poll=DURATION]
//
// all of type file.
func ParseAuditSourcesEnv(v string) ([]AuditSourceConfig, error) {
	var out []AuditSourceConfig
	for _, entry := range strings.Split(v, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, rest, ok := strings.Cut(entry, "=")
		format, spec, ok2 := strings.Cut(rest, ":")
		if !ok || !ok2 || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("entry %q: write NAME=FORMAT:PATH[;poll=1s], such as aws-trail=cloudtrail:/var/lib/elevate/audit/aws", entry)
		}
		src := AuditSourceConfig{Name: strings.TrimSpace(name), Type: auditSourceFile, Format: strings.TrimSpace(format)}
		parts := strings.Split(spec, ";")
		src.Path = strings.TrimSpace(parts[0])
		for _, opt := range parts[1:] {
			k, val, _ := strings.Cut(strings.TrimSpace(opt), "=")
			if k != "poll" {
				return nil, fmt.Errorf("entry %q: unknown option %q (only poll=DURATION)", entry, k)
			}
			d, err := parseConfigDuration(val)
			if err != nil {
				return nil, fmt.Errorf("entry %q: poll: %v", entry, err)
			}
			if d < minPoll {
				return nil, fmt.Errorf("entry %q: poll must be at least %s", entry, minPoll)
			}
			src.Poll = d
		}
		if _, err := breakglass.ParseSource(src.Format); err != nil {
			return nil, fmt.Errorf("entry %q: unknown format %q: use one of %s", entry, src.Format, logFormatNames())
		}
		if src.Path == "" {
			return nil, fmt.Errorf("entry %q: the path is empty", entry)
		}
		for _, prev := range out {
			if prev.Name == src.Name {
				return nil, fmt.Errorf("two audit sources are named %q", src.Name)
			}
		}
		out = append(out, src)
	}
	return out, nil
}

// watcherSetup is what the daemon passes to newWatcher.
type watcherSetup struct {
	cfg      *Config
	store    state.Store
	policies func() *policies.Set
	logger   *slog.Logger
	meters   metric.MeterProvider
	holder   string
	leaseTTL time.Duration
	// leading reports whether this replica leads reconcile: the watchers
	// run on the leader only.
	leading func() bool
	// getenv reads the notifiers' URLs and secrets.
	getenv func(string) string
	// extra is a cloud audit source to watch besides the audit_source
	// blocks (the gcp block's); nil for none.
	extra *breakglass.WatchedSource
}

// newWatcher builds the break-glass watcher of the configured audit
// sources. Missing directories are not an error here: the source reports
// them (breakglass check shows it) until they appear.
func newWatcher(w watcherSetup) (*breakglass.Watcher, error) {
	var sources []breakglass.WatchedSource
	var files []*breakglass.FileSource
	for _, src := range w.cfg.AuditSources {
		format, err := breakglass.ParseSource(src.Format)
		if err != nil {
			return nil, fmt.Errorf("audit source %s: %w", src.Name, err)
		}
		log := w.logger.With("component", "audit-source", "source", src.Name)
		fs := &breakglass.FileSource{Dir: src.Path, Format: format, OnProblem: func(p breakglass.Problem) {
			log.Warn("problem in the audit logs (a malformed record is skipped; an unreadable file is retried)", "problem", p.String())
		}}
		files = append(files, fs)
		sources = append(sources, breakglass.WatchedSource{Name: src.Name, Type: src.Type, Format: format, Cloud: format.Cloud(),
			Poll: src.Poll, Source: fs})
		if st, err := os.Stat(src.Path); err != nil || !st.IsDir() {
			log.Warn("the audit source's directory is not there yet; it is read once it appears", "path", src.Path)
		}
	}
	if w.extra != nil {
		sources = append(sources, *w.extra)
	}
	watcher, err := breakglass.NewWatcher(breakglass.WatcherOptions{
		Store:         w.store,
		Policies:      w.policies,
		Sources:       sources,
		Holder:        w.holder,
		LeaseTTL:      w.leaseTTL,
		Campaign:      w.leading,
		Getenv:        w.getenv,
		Logger:        w.logger.With("component", "breakglass"),
		MeterProvider: w.meters,
	})
	if err != nil {
		return nil, err
	}
	for _, fs := range files {
		fs.Matcher = watcher.Matcher
	}
	return watcher, nil
}

// devAuditSources are the file sources elevate dev watches: one directory
// per log format under dir.
func devAuditSources(dir string) []AuditSourceConfig {
	var out []AuditSourceConfig
	for _, f := range []breakglass.Source{breakglass.SourceCloudTrail, breakglass.SourceGCPAudit, breakglass.SourceAzureSignIn} {
		out = append(out, AuditSourceConfig{Name: "dev-" + string(f), Type: auditSourceFile, Path: filepath.Join(dir, "audit", string(f)),
			Format: string(f)})
	}
	return out
}

// sampleSignIn returns a sign-in record of the first break-glass account
// of set that one of the dev sources reads, the format's directory name,
// and the account; ok is false when no account fits.
func sampleSignIn(set *policies.Set, at time.Time) (record string, format breakglass.Source, account string, ok bool) {
	ts := at.UTC().Format(time.RFC3339)
	id := fmt.Sprintf("dev-%d", at.UnixNano())
	for _, bg := range set.BreakGlass {
		for _, ref := range bg.Accounts {
			p := ref.Principal
			kind, v, _ := strings.Cut(p.Value, ":")
			switch p.Kind {
			case model.KindAWS:
				parts := strings.SplitN(p.Value, ":", 6)
				if len(parts) != 6 || parts[2] != "iam" {
					continue
				}
				acct, res := parts[4], parts[5]
				ident := ""
				switch {
				case res == "root":
					ident = fmt.Sprintf(`{"type":"Root","principalId":"%s","arn":"%s","accountId":"%s"}`, acct, p.Value, acct)
				case strings.HasPrefix(res, "user/"):
					name := res[strings.LastIndexByte(res, '/')+1:]
					ident = fmt.Sprintf(`{"type":"IAMUser","principalId":"AIDADEVSAMPLE","arn":"%s","accountId":"%s","userName":"%s"}`, p.Value, acct, name)
				default:
					continue
				}
				return fmt.Sprintf(`{"eventVersion":"1.09","userIdentity":%s,"eventTime":"%s","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7","responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"MFAUsed":"Yes"},"eventID":"%s","eventType":"AwsConsoleSignIn"}`+"\n",
					ident, ts, id), breakglass.SourceCloudTrail, p.String(), true
			case model.KindGCP:
				if kind != "user" {
					continue
				}
				return fmt.Sprintf(`{"insertId":"%s","logName":"organizations/0/logs/cloudaudit.googleapis.com%%2Factivity","protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","status":{},"authenticationInfo":{"principalEmail":"%s"},"requestMetadata":{"callerIp":"203.0.113.7"},"serviceName":"cloudresourcemanager.googleapis.com","methodName":"SetIamPolicy","resourceName":"organizations/0"},"timestamp":"%s","severity":"NOTICE"}`+"\n",
					id, v, ts), breakglass.SourceGCPAudit, p.String(), true
			case model.KindAzure:
				if kind != "user" {
					continue
				}
				return fmt.Sprintf(`{"id":"%s","createdDateTime":"%s","userPrincipalName":"%s","userId":"00000000-0000-0000-0000-000000000000","appDisplayName":"Azure Portal","ipAddress":"203.0.113.7","clientAppUsed":"Browser","status":{"errorCode":0}}`+"\n",
					id, ts, v), breakglass.SourceAzureSignIn, p.String(), true
			}
		}
	}
	return "", "", "", false
}

// devBreakglass is elevate dev's break-glass setup: file sources on
// directories under the temporary directory, a sample sign-in to drop into
// one, and a local receiver standing in for every notifier whose URL is
// not in the environment, printing the alerts it gets.
type devBreakglass struct {
	sources []AuditSourceConfig
	getenv  func(string) string
	sample  string // path of the sample record
	into    string // directory to copy it into
	account string
	close   func()
}

// setupDevBreakglass prepares the dev sources and notifier receiver; out
// receives the alerts.
func setupDevBreakglass(dir string, set *policies.Set, out io.Writer) (*devBreakglass, error) {
	d := &devBreakglass{sources: devAuditSources(dir), close: func() {}}
	for _, src := range d.sources {
		if err := os.MkdirAll(src.Path, 0o755); err != nil {
			return nil, fmt.Errorf("creating %s: %w", src.Path, err)
		}
	}
	if rec, format, account, ok := sampleSignIn(set, time.Now()); ok {
		d.sample = filepath.Join(dir, "sample-signin-"+string(format)+".json")
		if err := os.WriteFile(d.sample, []byte(rec), 0o644); err != nil {
			return nil, fmt.Errorf("writing the sample sign-in: %w", err)
		}
		d.into = filepath.Join(dir, "audit", string(format))
		d.account = account
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting the dev notifier receiver: %w", err)
	}
	var mu sync.Mutex
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		var a struct {
			Kind, Severity, Summary, Text string
		}
		_ = json.Unmarshal(body, &a)
		text := a.Summary
		if text == "" {
			text = a.Text // a Slack message
		}
		mu.Lock()
		fmt.Fprintf(out, "\n[dev notifier %s] %s %s: %s\n", strings.TrimPrefix(r.URL.Path, "/"), strings.ToUpper(a.Severity), a.Kind, text)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = srv.Serve(ln) }()
	d.close = func() { _ = srv.Close() }
	base := "http://" + ln.Addr().String()
	overrides := map[string]string{}
	for _, n := range set.Notifiers {
		if n.URLEnv != "" && os.Getenv(n.URLEnv) == "" {
			overrides[n.URLEnv] = base + "/" + n.Name
			if n.SecretEnv != "" && os.Getenv(n.SecretEnv) == "" {
				overrides[n.SecretEnv] = "elevate-dev-secret"
			}
		}
	}
	d.getenv = func(k string) string {
		if v, ok := overrides[k]; ok {
			return v
		}
		return os.Getenv(k)
	}
	return d, nil
}

// printBanner says how to try break-glass detection.
func (d *devBreakglass) printBanner(w io.Writer, e string) {
	if d.sample == "" {
		return
	}
	fmt.Fprintf(w, "Break-glass detection watches %s (one directory per log format).\n", filepath.Dir(d.into))
	fmt.Fprintf(w, "Drop a sign-in of %s into its directory; the alert prints here within seconds:\n\n", d.account)
	fmt.Fprintf(w, "  cp %s %s/\n", d.sample, d.into)
	fmt.Fprintf(w, "  %s incidents --open\n", e)
	fmt.Fprintf(w, "  %s breakglass check\n\n", e)
}
