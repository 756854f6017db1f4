package app

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

type breakglassCheckView struct {
	Ready    bool     `json:"ready"`
	Problems []string `json:"problems"`
	Accounts []struct {
		Policy  string   `json:"policy"`
		Account string   `json:"account"`
		Clouds  []string `json:"clouds"`
		Sources []string `json:"sources"`
		Covered bool     `json:"covered"`
		Problem string   `json:"problem,omitempty"`
	} `json:"accounts"`
	Sources []struct {
		Name       string  `json:"name"`
		Type       string  `json:"type"`
		Format     string  `json:"format"`
		Cloud      string  `json:"cloud"`
		Poll       string  `json:"poll"`
		Healthy    bool    `json:"healthy"`
		LagSeconds float64 `json:"lag_seconds"`
		Error      string  `json:"error,omitempty"`
		Problem    string  `json:"problem,omitempty"`
	} `json:"sources"`
	Notifiers []struct {
		Name    string `json:"name"`
		Type    string `json:"type,omitempty"`
		OK      bool   `json:"ok"`
		Problem string `json:"problem,omitempty"`
	} `json:"notifiers"`
	OverdueReviews []struct {
		Incident  string `json:"incident"`
		Policy    string `json:"policy"`
		Account   string `json:"account"`
		ReviewDue string `json:"review_due"`
	} `json:"overdue_reviews"`
	Uses []struct {
		Policy   string `json:"policy"`
		Uses     int    `json:"uses"`
		MaxUses  int    `json:"max_uses"`
		Window   string `json:"window"`
		Exceeded bool   `json:"exceeded"`
	} `json:"uses"`
	Alerts []alertDeliveryView `json:"alerts"`
}

func newBreakglassCheckCmd(s *streams) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "check [--format json]",
		Short: "Readiness of break-glass detection",
		Long: `Check asks the server whether break-glass detection is ready: every account
of the break_glass policies watched by a healthy audit source (one that reads
its cloud's logs, is not failing and is not lagging), every notifier
configured, no post-incident review overdue, no policy used more than its
max_uses within use_window, and no alert stuck undelivered. Admins only.

Exit status: 0 when ready, 1 when not (the problems are listed), 2 on usage
or connection errors.` + clientEnvHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			c, err := newAPIClient(os.Getenv)
			if err != nil {
				return err
			}
			ctx, cancel := clientContext(cmd)
			defer cancel()
			var v breakglassCheckView
			if err := c.do(ctx, http.MethodGet, "/v1/breakglass/check", nil, nil, &v); err != nil {
				return exitFor(err)
			}
			if format == "json" {
				if err := writeJSON(s.out, v); err != nil {
					return err
				}
			} else {
				printCheck(s.out, v)
			}
			if !v.Ready {
				return silent(ExitFailed)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

func printCheck(w io.Writer, v breakglassCheckView) {
	mark := func(ok bool) string {
		if ok {
			return "ok"
		}
		return "FAIL"
	}
	if len(v.Sources) > 0 {
		fmt.Fprintln(w, "Audit sources:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, src := range v.Sources {
			fmt.Fprintf(tw, "  %s\t%s\t%s %s\tlag %.1fs\t%s\n", mark(src.Healthy), src.Name, src.Type, src.Format, src.LagSeconds, src.Error)
		}
		tw.Flush()
	}
	if len(v.Accounts) > 0 {
		fmt.Fprintln(w, "Accounts:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, a := range v.Accounts {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", mark(a.Covered), a.Policy, a.Account, strings.Join(a.Sources, ", "))
		}
		tw.Flush()
	}
	if len(v.Notifiers) > 0 {
		fmt.Fprintln(w, "Notifiers:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, n := range v.Notifiers {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", mark(n.OK), n.Name, n.Type)
		}
		tw.Flush()
	}
	for _, u := range v.Uses {
		fmt.Fprintf(w, "Uses of %s: %d in the last %s (max_uses %d)\n", u.Policy, u.Uses, u.Window, u.MaxUses)
	}
	if v.Ready {
		fmt.Fprintln(w, "Ready: every break-glass account is watched and nothing is overdue.")
		return
	}
	fmt.Fprintf(w, "Not ready (%d %s):\n", len(v.Problems), pluralWord(len(v.Problems), "problem", "problems"))
	for _, p := range v.Problems {
		fmt.Fprintln(w, "  - "+p)
	}
}

func pluralWord(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
