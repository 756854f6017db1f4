package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/server/auth"
)

// Dev mode identities. The groups are those of the example policies
// (examples/policies): engineering serves itself in staging, sre and
// oncall get production read-only access auto-approved on an incident
// ticket, eng-managers and dba-leads approve the rest.
const (
	devPrincipal      = "user:dev@example.com"
	approverPrincipal = "user:manager@example.com"
)

var (
	devExtraGroups      = []string{"group:engineering@acme.example", "group:sre@acme.example", "group:oncall@acme.example"}
	approverExtraGroups = []string{"group:eng-managers@acme.example", "group:dba-leads@acme.example"}
)

func newDevCmd(s *streams) *cobra.Command {
	var (
		policyDir, listen string
		keep, verbose     bool
		resync            time.Duration
	)
	cmd := &cobra.Command{
		Use:   "dev [--policies DIR] [--listen ADDR]",
		Short: "Run everything on one machine with no cloud account",
		Long: `Dev runs the whole daemon on this machine: a temporary SQLite store, the
example policies (or --policies), the GCP emulator (the real gRPC API on a
loopback port) serving GCP targets as conditional role bindings, and the
in-memory emulator standing in for the other clouds. It prints a dev token (an administrator
who may request the example roles), a second token for an approver, and the
commands to try next. Break-glass detection watches a directory per log
format under the temporary directory; dropping the printed sample sign-in
there opens an incident, and the alerts of notifiers whose URLs are not in
the environment print in this terminal. Ctrl-C stops it and deletes the temporary store
(unless --keep).

Nothing here talks to a real cloud.`,
		Example: `  elevate dev
  elevate dev --policies ./my-policies --listen 127.0.0.1:8300`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := os.Stat(policyDir); err != nil {
				return usageErr("no policies at %s: run elevate dev from the root of the elevate repository, or pass --policies DIR", policyDir)
			}
			if err := checkListen(listen); err != nil {
				return usageErr("--listen: %v", err)
			}
			set, diags := policies.Validate(policyDir)
			if diags.HasErrors() {
				renderPolicyDiags(s.err, diags)
				return usageErr("the policies under %s have errors; fix them (elevate validate %s) and start again", policyDir, policyDir)
			}
			dir, err := os.MkdirTemp("", "elevate-dev-")
			if err != nil {
				return usageErr("creating a temporary directory: %w", err)
			}
			if !keep {
				defer os.RemoveAll(dir)
			}
			devToken, devHash := auth.NewToken()
			apprToken, apprHash := auth.NewToken()
			devGroups, apprGroups := devGroupsFor(set)
			cfg := defaultConfig()
			cfg.Policies = policyDir
			cfg.Listen = listen
			cfg.State = "sqlite:" + filepath.Join(dir, "elevate.db")
			cfg.ShutdownTimeout = 5 * time.Second
			cfg.Reconcile.ResyncInterval = resync
			cfg.Telemetry.LogFormat = "text"
			if v := os.Getenv("ELEVATE_LOG_LEVEL"); v != "" {
				if _, err := parseLogLevel(v); err != nil {
					return usageErr("ELEVATE_LOG_LEVEL: %v", err)
				}
				cfg.Telemetry.LogLevel = v
			}
			cfg.Auth.StaticTokens = []auth.StaticToken{
				{Name: "dev", Principal: model.MustPrincipal(devPrincipal), Groups: devGroups, Admin: true, Dev: true, SHA256: devHash},
				{Name: "dev-approver", Principal: model.MustPrincipal(approverPrincipal), Groups: apprGroups, Dev: true, SHA256: apprHash},
			}
			bg, err := setupDevBreakglass(dir, set, s.out)
			if err != nil {
				return usageErr("setting up break-glass detection: %w", err)
			}
			defer bg.close()
			cfg.AuditSources = bg.sources
			emu, err := startDevGCP()
			if err != nil {
				return usageErr("starting the GCP emulator: %w", err)
			}
			defer emu.stop()
			cfg.GCP = emu.config(set)
			cfg.Memory = &MemoryConfig{Clouds: []model.Cloud{model.CloudAWS, model.CloudAzure, model.CloudMemory}}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDaemon(ctx, s, cfg, daemonExtras{
				Getenv: bg.getenv,
				ServerLogger: func(l *slog.Logger) *slog.Logger {
					if verbose {
						return l
					}
					// One line per API call drowns what matters in a
					// terminal; keep the warnings.
					return slog.New(minLevel{l.Handler(), slog.LevelWarn})
				},
				Listening: func(url string, ps *policySource) {
					printDevBanner(s.out, devBanner{
						URL: url, Dir: dir, Keep: keep, Policies: policyDir, Set: ps.Current(),
						DevToken: devToken, ApproverToken: apprToken, DevGroups: devGroups,
						ApproverGroups: apprGroups, Command: elevateCommand(), Breakglass: bg.printBanner,
						GCPEmulator: emu.addr,
					})
				},
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&policyDir, "policies", filepath.Join("examples", "policies"), "the policy directory")
	f.StringVar(&listen, "listen", DefaultListen, "the API's address")
	f.BoolVar(&keep, "keep", false, "keep the temporary SQLite store when dev mode stops")
	f.BoolVar(&verbose, "verbose", false, "log every API request")
	f.DurationVar(&resync, "resync-interval", 30*time.Second, "time between full reconcile passes")
	return cmd
}

// devGroupsFor returns the groups of the dev identity (every group that
// may request a just-in-time role, plus the example's on-call group) and of
// the approver (every approver group).
func devGroupsFor(set *policies.Set) (dev, approver []model.Principal) {
	add := func(list []model.Principal, p model.Principal) []model.Principal {
		if p.Kind != model.KindGroup || slices.ContainsFunc(list, p.Equal) {
			return list
		}
		return append(list, p)
	}
	for _, g := range devExtraGroups {
		dev = add(dev, model.MustPrincipal(g))
	}
	for _, g := range approverExtraGroups {
		approver = add(approver, model.MustPrincipal(g))
	}
	for _, j := range set.JIT {
		for _, r := range j.Requesters {
			dev = add(dev, r.Principal)
		}
		if j.Approval != nil {
			for _, a := range j.Approval.Approvers {
				approver = add(approver, a.Principal)
			}
		}
	}
	return dev, approver
}

// minLevel drops records below a level.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(a), h.min}
}
func (h minLevel) WithGroup(n string) slog.Handler { return minLevel{h.Handler.WithGroup(n), h.min} }

// elevateCommand is how the printed next steps should run elevate: the
// name when it is on PATH, go run from a source tree (make run), else the
// binary's path.
func elevateCommand() string {
	exe, _ := os.Executable()
	if p, err := exec.LookPath("elevate"); err == nil {
		if a, b := realPath(p), realPath(exe); a == b || exe == "" {
			return "elevate"
		}
	}
	if strings.Contains(exe, "go-build") {
		if _, err := os.Stat(filepath.Join("cmd", "elevate", "main.go")); err == nil {
			return "go run ./cmd/elevate"
		}
	}
	if exe != "" {
		return exe
	}
	return "elevate"
}

func realPath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

type devBanner struct {
	URL, Dir, Policies        string
	Keep                      bool
	Set                       *policies.Set
	DevToken, ApproverToken   string
	DevGroups, ApproverGroups []model.Principal
	Command                   string
	// Breakglass prints how to try break-glass detection.
	Breakglass func(w io.Writer, command string)
	// GCPEmulator is the address of the GCP emulator serving cloud gcp.
	GCPEmulator string
}

// demoRole picks the role to try first: one a self-service jit policy
// grants, else the first jit role.
func demoRole(set *policies.Set) (role, policy string, selfService bool) {
	for _, j := range set.JIT {
		if j.Approval == nil && len(j.Roles) > 0 {
			return j.Roles[0].Name, j.Name, true
		}
	}
	for _, j := range set.JIT {
		if len(j.Roles) > 0 {
			return j.Roles[0].Name, j.Name, false
		}
	}
	return "ROLE", "", false
}

// approvalRole picks a role whose policy has approvers.
func approvalRole(set *policies.Set) (role string, j *policies.JIT) {
	for _, j := range set.JIT {
		if j.Approval != nil && len(j.Roles) > 0 {
			return j.Roles[0].Name, j
		}
	}
	return "", nil
}

func printDevBanner(w io.Writer, b devBanner) {
	e := b.Command
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	store := "deleted when dev mode stops"
	if b.Keep {
		store = "kept (--keep)"
	}
	var cloudNames []string
	gcpUsed := false
	for _, c := range policyClouds(b.Set) {
		if c == model.CloudGCP && b.GCPEmulator != "" {
			gcpUsed = true
			continue
		}
		cloudNames = append(cloudNames, string(c))
	}
	p("")
	p("elevate dev is running at %s", b.URL)
	p("  state     %s (%s)", filepath.Join(b.Dir, "elevate.db"), store)
	p("  policies  %s: %d roles, %d jit, %d temporary, %d break-glass", b.Policies, len(b.Set.Roles), len(b.Set.JIT), len(b.Set.Temporary), len(b.Set.BreakGlass))
	if gcpUsed {
		p("  gcp       the GCP emulator at %s (Resource Manager and Cloud Logging over gRPC, no TLS,", b.GCPEmulator)
		p("            no credentials): grants become conditional role bindings, and its audit logs are read")
	}
	if len(cloudNames) > 0 {
		p("  clouds    %s, each served by the in-memory emulator (no cloud account needed)", strings.Join(cloudNames, ", "))
	}
	p("")
	p("You are %s (administrator; groups %s). In another terminal:", devPrincipal, groupList(b.DevGroups))
	p("")
	p("  export ELEVATE_ADDR=%s", b.URL)
	p("  export ELEVATE_TOKEN=%s", b.DevToken)
	p("")
	role, _, self := demoRole(b.Set)
	if self {
		p("Request a role (self-service: active in a second or two), watch it, let it expire:")
	} else {
		p("Request a role:")
	}
	p("")
	p("  %s request %s --for 2m --reason \"trying elevate\" --wait", e, role)
	p("  %s grants --active", e)
	p("  %s status ID            # the grant ID printed by request; history included", e)
	p("  sleep 120; %s grants --status expired", e)
	if ar, j := approvalRole(b.Set); ar != "" {
		ticket := ""
		if j.TicketPattern != nil {
			ticket = " --ticket CHG-812"
		}
		p("")
		p("A request that needs approval, approved by %s:", approverPrincipal)
		p("")
		p("  %s request %s --for 45m --reason \"look into the slow orders queries\"%s", e, ar, ticket)
		p("  ELEVATE_TOKEN=%s %s approve ID", b.ApproverToken, e)
	}
	p("")
	if b.Breakglass != nil {
		b.Breakglass(w, e)
	}
	p("Metrics: %s/metrics   Health: %s/readyz   API: %s/v1/openapi.json", b.URL, b.URL, b.URL)
	p("Press Ctrl-C to stop.")
	p("")
}

func groupList(gs []model.Principal) string {
	names := make([]string, len(gs))
	for i, g := range gs {
		names[i] = strings.TrimPrefix(g.String(), "group:")
	}
	return strings.Join(names, ", ")
}

// newEmulatorCmd runs the memory emulator as its own process.
func newEmulatorCmd(s *streams) *cobra.Command {
	var (
		listen         string
		clouds         []string
		daemonEnforced bool
	)
	cmd := &cobra.Command{
		Use:   "emulator [--listen 127.0.0.1:8250]",
		Short: "Run the in-memory cloud emulator as its own process",
		Long: `Emulator serves the in-memory provider over HTTP, playing the part of the
clouds for demos and tests. A daemon configured with
memory { endpoint = "http://127.0.0.1:8250" } keeps its bindings there, so
they outlive daemon restarts the way a real cloud's do.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := parseClouds(clouds)
			if err != nil {
				return usageErr("--clouds: %v", err)
			}
			if len(cs) == 0 {
				cs = allClouds
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return usageErr("listening on %s: %w", listen, err)
			}
			srv := &http.Server{Handler: newMemoryEmulator(cs, daemonEnforced), ReadHeaderTimeout: 10 * time.Second}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(sctx)
			}()
			fmt.Fprintf(s.out, "memory emulator serving %s on http://%s\n", strings.Join(cloudStrings(cs), ", "), ln.Addr())
			if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
				return failed(fmt.Errorf("serving the emulator: %w", err))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8250", "address to serve on")
	cmd.Flags().StringSliceVar(&clouds, "clouds", nil, "clouds to emulate (default gcp, aws, azure and memory)")
	cmd.Flags().BoolVar(&daemonEnforced, "daemon-enforced", false, "model a cloud without native expiry")
	return cmd
}

func cloudStrings(cs []model.Cloud) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}
