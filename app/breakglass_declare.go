package app

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/elevatehq/elevate/model"
)

type declarationView struct {
	ID         string    `json:"id"`
	Policy     string    `json:"policy"`
	Reason     string    `json:"reason"`
	Incident   string    `json:"incident,omitempty"`
	DeclaredBy string    `json:"declared_by"`
	At         time.Time `json:"at"`
	Expires    time.Time `json:"expires"`
	Active     bool      `json:"active"`
}

type declareBody struct {
	Policy   string `json:"policy"`
	Reason   string `json:"reason"`
	Incident string `json:"incident,omitempty"`
	For      string `json:"for,omitempty"`
}

func newBreakglassDeclareCmd(s *streams) *cobra.Command {
	var policy, reason, incident, dur, format string
	cmd := &cobra.Command{
		Use:   "declare --policy NAME --reason R [--incident ID] [--for 4h]",
		Short: "Announce an emergency before using a break-glass account",
		Long: `Declare tells elevate that the accounts of a break_glass policy are about to
be used, and why. Detections of those accounts during the declaration (from
two minutes before it, for clock skew, until it expires) open declared
incidents, alerted with severity warning; use nobody declared is critical.
Every use still needs its post-incident review.

--reason must be one of the policy's reasons when it lists any. --incident is
your own reference for the emergency (a pager or ticket ID). The declaration
lasts --for (default 4h, at most 72h).

Exit status: 0 when declared, 1 when refused, 2 on usage or connection
errors.` + clientEnvHelp,
		Example: `  elevate breakglass declare --policy idp-outage --reason identity-provider-outage --incident INC-4711`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			if strings.TrimSpace(policy) == "" {
				return usageErr("--policy is required: name the break_glass policy whose accounts you will use")
			}
			if strings.TrimSpace(reason) == "" {
				return usageErr("--reason is required: say what the emergency is (one of the policy's reasons)")
			}
			body := declareBody{Policy: policy, Reason: reason, Incident: incident}
			if dur != "" {
				d, err := model.ParseDuration(dur)
				if err != nil {
					return usageErr("--for: %v", err)
				}
				body.For = model.FormatDuration(d)
			}
			c, err := newAPIClient(os.Getenv)
			if err != nil {
				return err
			}
			ctx, cancel := clientContext(cmd)
			defer cancel()
			var d declarationView
			if err := c.do(ctx, http.MethodPost, "/v1/declarations", nil, body, &d); err != nil {
				return exitFor(err)
			}
			if format == "json" {
				return writeJSON(s.out, d)
			}
			fmt.Fprintf(s.out, "Declared %s: break-glass use of policy %s until %s is declared (%s).\n", d.ID, d.Policy, whenText(d.Expires), d.Reason)
			fmt.Fprintln(s.out, "Every use still opens an incident that needs its post-incident review: elevate incidents --open")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&policy, "policy", "", "the break_glass policy whose accounts will be used (required)")
	f.StringVar(&reason, "reason", "", "why: one of the policy's reasons (required)")
	f.StringVar(&incident, "incident", "", "your reference for the emergency, such as INC-4711")
	f.StringVar(&dur, "for", "", "how long the declaration lasts (default 4h, at most 72h)")
	f.StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}
