package app

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/providers"
	"github.com/elevatehq/elevate/reconcile"
	"github.com/elevatehq/elevate/state"
)

func newPlanCmd(s *streams) *cobra.Command {
	var configPath, format string
	var exitCode bool
	cmd := &cobra.Command{
		Use:   "plan --config elevate.hcl",
		Short: "Show what a reconcile pass would change now, changing nothing",
		Long: `Plan reads the grants from the state store and the bindings from every
configured cloud, and prints what a reconcile pass would do right now:
bindings to create, delete or replace (each with its reason code) and
findings such as standing privilege. It writes nothing: not to the clouds,
not to the store. It needs no leader lease, so it can run beside a daemon.

Exit status: 0 (with --exit-code: 0 no changes, 1 changes or findings),
2 when the configuration, policies, store or a cloud cannot be read.`,
		Example: `  elevate plan --config /etc/elevate/elevate.hcl
  elevate plan --config elevate.hcl --format json --exit-code`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			cfg, err := loadConfigForCmd(s, configPath)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			logger := slog.New(slog.NewTextHandler(s.err, &slog.HandlerOptions{Level: slog.LevelWarn}))
			ps, diags := newPolicySource(cfg.Policies, logger)
			if ps == nil {
				renderPolicyDiags(s.err, diags)
				return usageErr("the policy set under %s has errors; fix them first (elevate validate %s)", cfg.Policies, cfg.Policies)
			}
			store, err := state.Open(ctx, cfg.State)
			if err != nil {
				return usageErr("opening the state store %s: %w", cfg.RedactedState(), err)
			}
			defer store.Close()
			provs, err := buildProviders(cfg)
			if err != nil {
				return usageErr("configuring the providers: %w", err)
			}
			defer closeProviders(provs)
			decorated := make(map[model.Cloud]providers.Provider, len(provs))
			for c, p := range provs {
				decorated[c] = providers.Decorate(p, providers.Decorators{})
			}
			warnMissingProviders(ctx, logger, ps.Current(), decorated)
			engine, err := reconcile.NewEngine(reconcile.Options{
				Store: store, Providers: decorated, Policies: ps.Current,
				Mode: reconcile.ModeReport, Logger: logger,
			})
			if err != nil {
				return usageErr("configuring the reconcile engine: %w", err)
			}
			changes, err := engine.PlanNow(ctx)
			if err != nil {
				return usageErr("planning: %w", err)
			}
			if format == "json" {
				if err := writeJSON(s.out, changes); err != nil {
					return err
				}
			} else {
				printPlan(s.out, changes)
			}
			if exitCode && !changes.Empty() {
				return silent(ExitFailed)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", os.Getenv("ELEVATE_CONFIG"), "the configuration file (default $ELEVATE_CONFIG)")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	cmd.Flags().BoolVar(&exitCode, "exit-code", false, "exit 1 when there is anything to change or report")
	return cmd
}

// printPlan renders changes for people: one aligned line per change.
func printPlan(w io.Writer, c model.Changes) {
	if c.Empty() {
		fmt.Fprintln(w, "No changes: the clouds match the grants.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\tTARGET\tPRINCIPAL\tGRANT\tREASON")
	line := func(sym string, b *model.Binding, reason model.Reason) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", sym, b.Target, b.Principal, orDash(b.Owner), reason)
	}
	for _, ch := range c.Create {
		line("+", ch.New, ch.Reason)
	}
	for _, ch := range c.Replace {
		line("~", ch.New, ch.Reason)
	}
	for _, ch := range c.Delete {
		line("-", ch.Old, ch.Reason)
	}
	for _, f := range c.Findings {
		b := f.Binding
		line("!", &b, f.Reason)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nPlan: %d to create, %d to replace, %d to delete; %s.\n",
		len(c.Create), len(c.Replace), len(c.Delete), plural(len(c.Findings), "finding", "findings"))
	for _, f := range c.Findings {
		fmt.Fprintf(w, "  ! %s\n", f.Message)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
