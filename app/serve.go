package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/metric"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/providers"
	"github.com/elevatehq/elevate/providers/gcp"
	"github.com/elevatehq/elevate/providers/memory"
	"github.com/elevatehq/elevate/reconcile"
	"github.com/elevatehq/elevate/server"
	"github.com/elevatehq/elevate/server/auth"
	"github.com/elevatehq/elevate/state"
)

func newServeCmd(s *streams) *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "serve --config elevate.hcl",
		Short: "Run the daemon: API, reconcile loop, audit watchers and policy reloads",
		Long: `Serve runs the elevate daemon: the HTTP API (with /healthz, /readyz and
/metrics), the reconcile loop that makes the clouds match the grants, and
policy hot reload (on file changes and SIGHUP; a broken reload keeps the
last good set), and the break-glass audit watchers of the audit_source
blocks (docs/break-glass.md) and of the gcp block, whose Cloud Audit Logs
also trigger a reconcile pass when someone else changes the allow policy of
a resource elevate manages (docs/gcp.md).

Every setting of the configuration file can also come from an ELEVATE_*
environment variable, which wins over the file; without --config (or
ELEVATE_CONFIG) the environment alone configures the daemon. See
docs/operations.md.

SIGINT or SIGTERM shuts down gracefully: the API stops accepting, in-flight
requests finish (up to shutdown_timeout), the reconcile loop stops and
releases its lease so another replica takes over at once.

Exit status: 0 after a graceful shutdown, 1 when the daemon failed while
running, 2 when it could not start (configuration, policy errors, store
unreachable, address in use).`,
		Example: `  elevate serve --config /etc/elevate/elevate.hcl
  ELEVATE_STATE=postgres://elevate@db/elevate ELEVATE_POLICIES=./policies elevate serve --config elevate.hcl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfigForCmd(s, configPath)
			if err != nil {
				return err
			}
			if err := cfg.checkServe(); err != nil {
				ce := err.(*ConfigError)
				ce.Render(s.err, useColor(s.err))
				return usageErr("the configuration has errors; fix them and try again")
			}
			setMemoryLimit()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDaemon(ctx, s, cfg, daemonExtras{})
		},
	}
	cmd.Flags().StringVar(&configPath, "config", os.Getenv("ELEVATE_CONFIG"), "the configuration file (default $ELEVATE_CONFIG; without one, ELEVATE_* variables alone)")
	return cmd
}

// defaultMemoryLimit is the daemon's soft memory limit unless GOMEMLIMIT
// sets one (docs/operations.md): the Go runtime collects garbage and
// returns freed memory to the system harder as the heap nears it, so the
// resident size follows the live heap instead of twice its peak. It is a
// soft limit: a live heap above it is never refused memory. At 128 MiB the
// daemon with 100,000 live grants (a live heap of about 90 MiB, 100 MiB at
// the peak of a full pass) stays under 190 MiB resident, with the binary
// and SQLite's own memory (about 45 MiB) on top.
const defaultMemoryLimit = 128 << 20

// setMemoryLimit applies defaultMemoryLimit when GOMEMLIMIT is unset (Go
// reads GOMEMLIMIT itself; GOMEMLIMIT=off turns the limit off).
func setMemoryLimit() {
	if _, ok := os.LookupEnv("GOMEMLIMIT"); !ok {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
}

// daemonExtras is what `elevate dev` adds to a daemon run.
type daemonExtras struct {
	// Listening is called once the API accepts connections, with its URL.
	Listening func(url string, ps *policySource)
	// ServerLogger replaces the API's request logger.
	ServerLogger func(*slog.Logger) *slog.Logger
	// Getenv replaces os.Getenv for the notifiers' URLs and secrets.
	Getenv func(string) string
}

// runDaemon runs the daemon until ctx is cancelled, then shuts it down
// gracefully.
func runDaemon(ctx context.Context, s *streams, cfg *Config, x daemonExtras) error {
	tel, shutdownTel, err := newTelemetry(ctx, cfg.Telemetry, s.err, os.Getenv)
	if err != nil {
		return usageErr("setting up telemetry: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = shutdownTel(sctx)
	}()
	logger := tel.Logger
	slog.SetDefault(logger)
	logger.InfoContext(ctx, "starting elevate", "version", Version, "listen", cfg.Listen, "state", cfg.RedactedState(),
		"policies", cfg.Policies, "mode", cfg.Mode, "config", cfg.File,
		"otlp_traces", tel.OTLPTraces, "otlp_metrics", tel.OTLPMetrics)

	store, err := state.Open(ctx, cfg.State)
	if err != nil {
		return usageErr("opening the state store %s: %w", cfg.RedactedState(), err)
	}
	defer store.Close()

	ps, diags := newPolicySource(cfg.Policies, logger)
	if ps == nil {
		renderPolicyDiags(s.err, diags)
		return usageErr("the policy set under %s has errors: elevate serve does not start on a broken policy set (run elevate validate %s)", cfg.Policies, cfg.Policies)
	}
	if _, warns := diags.Count(); warns > 0 {
		logger.WarnContext(ctx, "the policy set has warnings (elevate validate shows them)", "warnings", warns)
	}

	provs, err := buildProviders(cfg)
	if err != nil {
		return usageErr("configuring the providers: %w", err)
	}
	defer closeProviders(provs)
	decorated := make(map[model.Cloud]providers.Provider, len(provs))
	for c, p := range provs {
		decorated[c] = providers.Decorate(p, providers.Decorators{
			Telemetry: providers.Telemetry{MeterProvider: tel.Meters, TracerProvider: tel.Tracers},
		})
	}
	warnMissingProviders(ctx, logger, ps.Current(), decorated)

	authn, err := buildAuthenticator(ctx, cfg, logger)
	if err != nil {
		return usageErr("configuring authentication: %w", err)
	}

	// Listen before the engine campaigns for the lease: the holder ID
	// names this host and address, which no other live process can share
	// while this one has the port, so a daemon restarted after a crash
	// takes its own lease back at once instead of waiting out its TTL.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return usageErr("listening on %s: %w (set listen, or ELEVATE_LISTEN, to a free address)", cfg.Listen, err)
	}
	defer ln.Close()
	hostname, _ := os.Hostname()
	engine, err := reconcile.NewEngine(reconcile.Options{
		Store:          store,
		Providers:      decorated,
		Policies:       ps.Current,
		Mode:           reconcile.Mode(cfg.Mode),
		ResyncInterval: cfg.Reconcile.ResyncInterval,
		LeaseTTL:       cfg.Reconcile.LeaseTTL,
		Holder:         hostname + "/" + ln.Addr().String(),
		Logger:         logger,
		Alert: func(ctx context.Context, a reconcile.Alert) {
			logger.WarnContext(ctx, "alert", "kind", a.Kind, "scope", a.Scope.String(), "grant", a.Grant, "message", a.Message)
		},
		MeterProvider:  tel.Meters,
		TracerProvider: tel.Tracers,
	})
	if err != nil {
		return usageErr("configuring the reconcile engine: %w", err)
	}
	ps.OnChange(engine.PolicyChanged)
	registerDaemonMetrics(tel, engine)

	getenv := os.Getenv
	if x.Getenv != nil {
		getenv = x.Getenv
	}
	outside := &outsideChanges{store: store, holder: hostname + "/" + ln.Addr().String(), isLeader: engine.IsLeader,
		trigger: engine.Trigger, interval: outsideChangePoll, log: logger.With("component", "reconcile")}
	gcpAudit, closeGCPAudit, err := newGCPAuditSource(gcpAuditSetup{cfg: cfg.GCP, store: store, policies: ps.Current,
		changed: outside.record, logger: logger})
	if err != nil {
		return usageErr("configuring the audit watchers: %w", err)
	}
	defer closeGCPAudit()
	watcher, err := newWatcher(watcherSetup{cfg: cfg, store: store, policies: ps.Current, logger: logger, meters: tel.Meters,
		holder: hostname + "/" + ln.Addr().String(), leaseTTL: cfg.Reconcile.LeaseTTL, leading: engine.IsLeader, getenv: getenv, extra: gcpAudit})
	if err != nil {
		return usageErr("configuring the audit watchers: %w", err)
	}

	serverLog := logger.With("component", "api")
	if x.ServerLogger != nil {
		serverLog = x.ServerLogger(serverLog)
	}
	srv := server.New(server.Options{
		Store:    store,
		Policies: ps.Current,
		PolicyStatus: func() server.PolicyStatus {
			cur, last := ps.Loaded(), ps.LastReload()
			return server.PolicyStatus{LoadedAt: cur.LoadedAt,
				LastReload: server.ReloadStatus{OK: last.OK, At: last.At, Diagnostics: last.Diagnostics}}
		},
		Authenticator: authn,
		Admins:        authn.Admins,
		Trigger:       engine.Trigger,
		Ready:         leaderReady(store, engine),
		Metrics:       tel.Metrics,
		Logger:        serverLog,
		AuditSources:  watcher.Sources(),
		Getenv:        getenv,
	})

	httpSrv := &http.Server{
		Handler:           traceHTTP(tel.Tracers.Tracer("github.com/elevatehq/elevate/app"), srv.Handler()),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}

	engineCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEngine()
	engineDone := make(chan error, 1)
	go func() { engineDone <- engine.Run(engineCtx) }()
	go outside.run(engineCtx)

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watchDone := ps.Watch(watchCtx)

	auditCtx, stopAudit := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAudit()
	auditDone := make(chan struct{})
	go func() {
		defer close(auditDone)
		_ = watcher.Run(auditCtx)
	}()

	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	url := "http://" + ln.Addr().String()
	logger.InfoContext(ctx, "elevate is serving", "url", url)
	if x.Listening != nil {
		x.Listening(url, ps)
	}

	var runErr error
	select {
	case <-ctx.Done():
		logger.InfoContext(ctx, "shutting down: no new requests; finishing in-flight ones", "timeout", cfg.ShutdownTimeout.String())
	case err := <-serveErr:
		runErr = fmt.Errorf("serving the API: %w", err)
	case err := <-engineDone:
		engineDone <- err
		if err != nil {
			runErr = fmt.Errorf("running the reconcile engine: %w", err)
		} else {
			runErr = errors.New("the reconcile engine stopped unexpectedly")
		}
	}

	deadline := time.Now().Add(cfg.ShutdownTimeout)
	sctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	if err := httpSrv.Shutdown(sctx); err != nil {
		logger.Warn("in-flight requests did not finish in time; closing their connections", "error", err)
		_ = httpSrv.Close()
	}
	stopWatch()
	<-watchDone
	stopEngine()
	stopAudit()
	select {
	case <-auditDone:
	case <-sctx.Done():
		logger.Warn("the audit watchers did not stop in time; their lease lapses after its TTL")
	}
	select {
	case err := <-engineDone:
		if err != nil && !errors.Is(err, context.Canceled) && runErr == nil {
			logger.Warn("the reconcile engine stopped with an error", "error", err)
		}
	case <-sctx.Done():
		logger.Warn("the reconcile engine did not stop in time; its lease lapses after its TTL", "lease_ttl", cfg.Reconcile.LeaseTTL.String())
	}
	if runErr != nil {
		logger.Error("elevate stopped", "error", runErr)
		return failed(runErr)
	}
	logger.Info("elevate stopped")
	return nil
}

// renderPolicyDiags prints policy diagnostics the way elevate validate's
// text format does.
func renderPolicyDiags(w io.Writer, diags policies.Diagnostics) {
	v := &validation{set: &policies.Set{}, diags: diags}
	_ = renderText(w, v, useColor(w))
}

// providerFactories builds the real cloud providers the configuration can
// name. The map is explicit: nothing registers itself.
var providerFactories = providers.Factories{
	model.CloudGCP: gcp.Factory,
}

// buildProviders builds the providers the configuration names: the GCP
// provider for a gcp block, and the memory provider (in process, or a
// memory emulator at an endpoint) standing in for each other configured
// cloud; the aws and azure blocks are refused by the configuration until
// their providers land. closeProviders releases them.
func buildProviders(cfg *Config) (map[model.Cloud]providers.Provider, error) {
	out := map[model.Cloud]providers.Provider{}
	if cfg.GCP != nil {
		p, err := providerFactories.New(cfg.GCP.providerConfig())
		if err != nil {
			return nil, err
		}
		out[model.CloudGCP] = p
	}
	if cfg.Memory == nil {
		return out, nil
	}
	for _, c := range cfg.Memory.clouds() {
		if out[c] != nil {
			continue // a real provider serves it
		}
		if cfg.Memory.Endpoint != "" {
			out[c] = newRemoteMemory(c, cfg.Memory.Endpoint)
		} else {
			out[c] = memory.New(memory.Options{Cloud: c, DaemonEnforced: cfg.Memory.DaemonEnforced})
		}
	}
	return out, nil
}

// closeProviders closes the providers that hold connections.
func closeProviders(provs map[model.Cloud]providers.Provider) {
	for _, p := range provs {
		if c, ok := p.(io.Closer); ok {
			_ = c.Close()
		}
	}
}

// policyClouds returns the clouds the roles of set have targets in.
func policyClouds(set *policies.Set) []model.Cloud {
	seen := map[model.Cloud]bool{}
	for _, r := range set.Roles {
		for _, t := range r.Targets() {
			seen[t.Cloud] = true
		}
	}
	out := make([]model.Cloud, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

func warnMissingProviders(ctx context.Context, logger *slog.Logger, set *policies.Set, provs map[model.Cloud]providers.Provider) {
	var missing []string
	for _, c := range policyClouds(set) {
		if provs[c] == nil {
			missing = append(missing, string(c))
		}
	}
	if len(missing) > 0 {
		logger.WarnContext(ctx, "roles have targets in clouds with no provider configured: their grants cannot be applied; add a gcp block for gcp, or a memory { clouds = [...] } block for the others for now",
			"clouds", strings.Join(missing, ","))
	}
}

func buildAuthenticator(ctx context.Context, cfg *Config, logger *slog.Logger) (*auth.Chain, error) {
	admins, err := auth.NewAdmins(cfg.Auth.Admins...)
	if err != nil {
		return nil, err
	}
	static, err := auth.NewStaticTokens(cfg.Auth.StaticTokens)
	if err != nil {
		return nil, err
	}
	chain := &auth.Chain{Static: static, Admins: admins}
	if o := cfg.Auth.OIDC; o != nil {
		verifier, err := auth.NewOIDC(auth.OIDCConfig{
			Issuer: o.Issuer, Audience: o.Audience, JWKSURL: o.JWKSURL,
			PrincipalClaim: o.PrincipalClaim, GroupsClaim: o.GroupsClaim,
			Logger: logger.With("component", "oidc"),
		})
		if err != nil {
			return nil, err
		}
		chain.OIDC = verifier
		go func() {
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
			defer cancel()
			if err := verifier.Prefetch(pctx); err != nil {
				logger.Warn("cannot fetch the OIDC issuer's keys yet; OIDC logins fail until it answers (static tokens work)", "issuer", o.Issuer, "error", err)
			}
		}()
	}
	return chain, nil
}

// leaderReady is the readiness check beyond the store and the policies: a
// reconcile leader is known (this replica, or a valid lease in the store).
func leaderReady(store state.Store, engine *reconcile.Engine) func(ctx context.Context) []string {
	return func(ctx context.Context) []string {
		if engine.IsLeader() {
			return nil
		}
		l, err := store.GetLease(ctx, reconcile.LeaseName)
		switch {
		case errors.Is(err, state.ErrNotFound):
			return []string{"leader: no replica has taken the reconcile lease yet"}
		case err != nil:
			return []string{"leader: cannot read the reconcile lease"}
		case !l.ValidAt(time.Now()):
			return []string{"leader: the reconcile lease has lapsed and no replica has taken it over"}
		}
		return nil
	}
}

// registerDaemonMetrics adds the daemon's own gauges: whether this replica
// leads, and build information.
func registerDaemonMetrics(tel *telemetry, engine *reconcile.Engine) {
	m := tel.Meters.Meter("github.com/elevatehq/elevate/app")
	_, _ = m.Int64ObservableGauge("elevate_leader",
		metric.WithDescription("1 when this replica holds the reconcile lease and runs reconcile, else 0."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			v := int64(0)
			if engine.IsLeader() {
				v = 1
			}
			o.Observe(v)
			return nil
		}))
}

// sortedClouds renders a provider map's clouds for messages.
func sortedClouds(provs map[model.Cloud]providers.Provider) string {
	names := make([]string, 0, len(provs))
	for c := range provs {
		names = append(names, string(c))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
