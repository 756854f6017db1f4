package app

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/elevatehq/elevate/model"
)

type reportView struct {
	Since    time.Time `json:"since"`
	Until    time.Time `json:"until"`
	Requests int       `json:"requests"`
	Renewals []struct {
		Principal    string `json:"principal"`
		Role         string `json:"role"`
		Grants       int    `json:"grants"`
		Renewals     int    `json:"renewals"`
		MostPerGrant int    `json:"most_per_grant"`
	} `json:"renewals"`
	RepeatedRequests []struct {
		Principal string    `json:"principal"`
		Role      string    `json:"role"`
		Requests  int       `json:"requests"`
		Days      int       `json:"days"`
		First     time.Time `json:"first"`
		Last      time.Time `json:"last"`
		Granted   string    `json:"granted"`
	} `json:"repeated_requests"`
	BreakGlass []struct {
		Policy     string `json:"policy"`
		Incidents  int    `json:"incidents"`
		Uses       int    `json:"uses"`
		Undeclared int    `json:"undeclared"`
		FailedOnly int    `json:"failed_only"`
		MaxUses    int    `json:"max_uses,omitempty"`
		UseWindow  string `json:"use_window,omitempty"`
	} `json:"breakglass"`
	Findings []struct {
		Kind    string `json:"kind"`
		Message string `json:"message"`
	} `json:"findings"`
}

func newReportCmd(s *streams) *cobra.Command {
	var since, format string
	cmd := &cobra.Command{
		Use:   "report [--since 30d] [--format json]",
		Short: "Access patterns that say the baseline model needs work",
		Long: `Report looks at the grants and break-glass incidents of the period and lists
the patterns that say the access model needs work: grants renewed again and
again (too short for the work), the same person requesting the same role
again and again (a routine need served by emergency-style access), and how
often break-glass accounts were used, declared or not. Admins only.

Exit status: 0, or 2 on usage or connection errors.` + clientEnvHelp,
		Example: `  elevate report --since 90d`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			q := url.Values{}
			if since != "" {
				d, err := model.ParseDuration(since)
				if err != nil {
					return usageErr("--since: %v", err)
				}
				q.Set("since", model.FormatDuration(d))
			}
			c, err := newAPIClient(os.Getenv)
			if err != nil {
				return err
			}
			ctx, cancel := clientContext(cmd)
			defer cancel()
			var v reportView
			if err := c.do(ctx, http.MethodGet, "/v1/report", q, nil, &v); err != nil {
				return exitFor(err)
			}
			if format == "json" {
				return writeJSON(s.out, v)
			}
			printReport(s.out, v)
			return nil
		},
	}
	cmd.Flags().StringVar(&since, "since", "30d", "the period, back from now")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

func printReport(w io.Writer, v reportView) {
	fmt.Fprintf(w, "Access report %s to %s: %d %s.\n", v.Since.UTC().Format("2006-01-02"), v.Until.UTC().Format("2006-01-02"),
		v.Requests, pluralWord(v.Requests, "request", "requests"))
	if len(v.RepeatedRequests) > 0 {
		fmt.Fprintln(w, "\nRepeated requests:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  PRINCIPAL\tROLE\tREQUESTS\tDAYS\tGRANTED")
		for _, r := range v.RepeatedRequests {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%s\n", r.Principal, r.Role, r.Requests, r.Days, r.Granted)
		}
		tw.Flush()
	}
	if len(v.Renewals) > 0 {
		fmt.Fprintln(w, "\nRenewals:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  PRINCIPAL\tROLE\tGRANTS\tRENEWALS\tMOST ON ONE")
		for _, r := range v.Renewals {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\n", r.Principal, r.Role, r.Grants, r.Renewals, r.MostPerGrant)
		}
		tw.Flush()
	}
	if len(v.BreakGlass) > 0 {
		fmt.Fprintln(w, "\nBreak-glass use:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  POLICY\tINCIDENTS\tUSES\tUNDECLARED\tFAILED ONLY\tMAX USES")
		for _, b := range v.BreakGlass {
			limit := "-"
			if b.MaxUses > 0 {
				limit = fmt.Sprintf("%d per %s", b.MaxUses, b.UseWindow)
			}
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%s\n", b.Policy, b.Incidents, b.Uses, b.Undeclared, b.FailedOnly, limit)
		}
		tw.Flush()
	}
	if len(v.Findings) == 0 {
		fmt.Fprintln(w, "\nNo patterns worth acting on.")
		return
	}
	fmt.Fprintln(w, "\nFindings:")
	for _, f := range v.Findings {
		fmt.Fprintf(w, "  - [%s] %s\n", f.Kind, f.Message)
	}
}
