package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// The break-glass client commands: incidents (list, show, review),
// breakglass declare, breakglass check and report. Like the grant
// commands they talk to the server at ELEVATE_ADDR with ELEVATE_TOKEN.

// Wire types of the break-glass endpoints (docs/openapi.json).

type incidentEventView struct {
	ID       string    `json:"id,omitempty"`
	Name     string    `json:"name,omitempty"`
	Time     time.Time `json:"time"`
	SourceIP string    `json:"source_ip,omitempty"`
	Outcome  string    `json:"outcome"`
	Source   string    `json:"source,omitempty"`
	Where    string    `json:"where,omitempty"`
}

type reviewView struct {
	By    string    `json:"by"`
	At    time.Time `json:"at"`
	Notes string    `json:"notes"`
}

type incidentView struct {
	ID          string              `json:"id"`
	Policy      string              `json:"policy"`
	Account     string              `json:"account"`
	Cloud       string              `json:"cloud,omitempty"`
	Status      string              `json:"status"`
	Severity    string              `json:"severity"`
	Declared    bool                `json:"declared"`
	Declaration string              `json:"declaration,omitempty"`
	Opened      time.Time           `json:"opened"`
	FirstEvent  time.Time           `json:"first_event"`
	LastEvent   time.Time           `json:"last_event"`
	ReviewDue   *time.Time          `json:"review_due,omitempty"`
	Overdue     bool                `json:"overdue"`
	EventCount  int                 `json:"event_count"`
	Successes   int                 `json:"successes"`
	Failures    int                 `json:"failures"`
	Events      []incidentEventView `json:"events,omitempty"`
	Review      *reviewView         `json:"review,omitempty"`
	Reminders   int                 `json:"reminders"`
	Updated     time.Time           `json:"updated"`
}

type alertDeliveryView struct {
	Key         string     `json:"key"`
	Notifier    string     `json:"notifier"`
	Kind        string     `json:"kind"`
	Status      string     `json:"status"`
	Attempts    int        `json:"attempts"`
	LastError   string     `json:"last_error,omitempty"`
	Created     time.Time  `json:"created"`
	NextAttempt *time.Time `json:"next_attempt,omitempty"`
	Delivered   *time.Time `json:"delivered,omitempty"`
}

type incidentList struct {
	Incidents []incidentView `json:"incidents"`
}

type incidentDetail struct {
	Incident incidentView        `json:"incident"`
	Alerts   []alertDeliveryView `json:"alerts"`
}

func (c *apiClient) incidents(ctx context.Context, q url.Values) ([]incidentView, error) {
	var l incidentList
	err := c.do(ctx, http.MethodGet, "/v1/incidents", q, nil, &l)
	return l.Incidents, err
}

func (c *apiClient) incident(ctx context.Context, id string) (incidentDetail, error) {
	var d incidentDetail
	err := c.do(ctx, http.MethodGet, "/v1/incidents/"+url.PathEscape(id), nil, nil, &d)
	return d, err
}

func (c *apiClient) reviewIncident(ctx context.Context, id, notes string) (incidentView, error) {
	var v incidentView
	err := c.do(ctx, http.MethodPost, "/v1/incidents/"+url.PathEscape(id)+"/review", nil, map[string]string{"notes": notes}, &v)
	return v, err
}

func newIncidentsCmd(s *streams) *cobra.Command {
	var (
		open   bool
		policy string
		limit  int
		format string
	)
	cmd := &cobra.Command{
		Use:   "incidents [--open] [--policy NAME] [--format json]",
		Short: "Break-glass incidents and their post-incident reviews",
		Long: `Incidents lists break-glass incidents: each episode of use of a break-glass
account (failed sign-ins included) that the daemon's audit watchers found,
declared or not, with its review deadline. Admins only.

  elevate incidents show ID                 one incident with its events and alerts
  elevate incidents review ID --notes TEXT  file the post-incident review

Exit status: 0, or 2 on usage or connection errors.` + clientEnvHelp,
		Example: `  elevate incidents --open
  elevate incidents review inc-01jdxq6c1b8m6t3ap0v2c4e9kq --notes "Okta outage INC-4711; credentials rotated"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			q := url.Values{}
			if open {
				q.Set("open", "true")
			}
			if policy != "" {
				q.Set("policy", policy)
			}
			if limit < 0 {
				return usageErr("--limit must not be negative")
			}
			if limit > 0 {
				q.Set("limit", strconv.Itoa(limit))
			}
			c, err := newAPIClient(os.Getenv)
			if err != nil {
				return err
			}
			ctx, cancel := clientContext(cmd)
			defer cancel()
			incs, err := c.incidents(ctx, q)
			if err != nil {
				return exitFor(err)
			}
			if format == "json" {
				if incs == nil {
					incs = []incidentView{}
				}
				return writeJSON(s.out, incidentList{Incidents: incs})
			}
			printIncidentTable(s.out, incs, open)
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&open, "open", false, "only incidents whose review is not filed")
	f.StringVar(&policy, "policy", "", "only incidents of this break_glass policy")
	f.IntVar(&limit, "limit", 0, "at most this many (the most recent)")
	f.StringVar(&format, "format", "text", "output format: text or json")
	cmd.AddCommand(newIncidentShowCmd(s), newIncidentReviewCmd(s))
	return cmd
}

func printIncidentTable(w io.Writer, incs []incidentView, open bool) {
	if len(incs) == 0 {
		if open {
			fmt.Fprintln(w, "No open incidents.")
		} else {
			fmt.Fprintln(w, "No incidents.")
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSEVERITY\tPOLICY\tACCOUNT\tFIRST USE\tEVENTS\tREVIEW")
	for _, inc := range incs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", inc.ID, severityText(inc), inc.Policy, inc.Account,
			inc.FirstEvent.UTC().Format("2006-01-02 15:04Z"), eventsText(inc), reviewText(inc))
	}
	tw.Flush()
}

func severityText(inc incidentView) string {
	if inc.Declared {
		return inc.Severity + " (declared)"
	}
	return inc.Severity + " (undeclared)"
}

func eventsText(inc incidentView) string {
	if inc.Failures == 0 {
		return strconv.Itoa(inc.EventCount)
	}
	return fmt.Sprintf("%d (%d failed)", inc.EventCount, inc.Failures)
}

func reviewText(inc incidentView) string {
	switch {
	case inc.Review != nil:
		return "reviewed by " + inc.Review.By
	case inc.ReviewDue == nil:
		return "due"
	case inc.Overdue:
		return "OVERDUE since " + whenText(*inc.ReviewDue)
	}
	return "due " + whenText(*inc.ReviewDue)
}

func newIncidentShowCmd(s *streams) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "show ID [--format json]",
		Short: "Show one incident with its events and alert deliveries",
		Args:  cobra.ExactArgs(1),
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
			d, err := c.incident(ctx, args[0])
			if err != nil {
				return exitFor(err)
			}
			if format == "json" {
				if d.Alerts == nil {
					d.Alerts = []alertDeliveryView{}
				}
				return writeJSON(s.out, d)
			}
			printIncidentDetail(s.out, d)
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

func printIncidentDetail(w io.Writer, d incidentDetail) {
	inc := d.Incident
	fmt.Fprintf(w, "Incident %s: %s\n", inc.ID, severityText(inc))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  policy\t%s\n", inc.Policy)
	fmt.Fprintf(tw, "  account\t%s\n", inc.Account)
	if inc.Declared {
		fmt.Fprintf(tw, "  declaration\t%s\n", inc.Declaration)
	}
	fmt.Fprintf(tw, "  opened\t%s\n", stamp(inc.Opened))
	fmt.Fprintf(tw, "  events\t%s, %s to %s\n", eventsText(inc), stamp(inc.FirstEvent), stamp(inc.LastEvent))
	fmt.Fprintf(tw, "  review\t%s\n", reviewText(inc))
	if inc.Review != nil {
		fmt.Fprintf(tw, "  notes\t%s\n", inc.Review.Notes)
	}
	tw.Flush()
	if len(inc.Events) > 0 {
		fmt.Fprintln(w, "Events:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, e := range inc.Events {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", stamp(e.Time), e.Name, e.Outcome, e.SourceIP, e.Where)
		}
		tw.Flush()
	}
	if len(d.Alerts) > 0 {
		fmt.Fprintln(w, "Alerts:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, a := range d.Alerts {
			line := fmt.Sprintf("  %s\t%s\t%s", a.Kind, a.Notifier, a.Status)
			if a.LastError != "" && a.Status != "delivered" {
				line += fmt.Sprintf(" after %d attempts: %s", a.Attempts, a.LastError)
			}
			fmt.Fprintln(tw, line)
		}
		tw.Flush()
	}
}

func newIncidentReviewCmd(s *streams) *cobra.Command {
	var notes, format string
	cmd := &cobra.Command{
		Use:   "review ID --notes TEXT",
		Short: "File the post-incident review of an incident",
		Long: `Review closes a break-glass incident with its post-incident review: what
happened, who used the account and why, and what changes because of it
(credentials rotated, a jit policy for the recurring need). Overdue
reminders stop. Admins only.

Exit status: 0 when filed, 1 when refused (already reviewed, not an admin),
2 on usage or connection errors.` + clientEnvHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			if strings.TrimSpace(notes) == "" {
				return usageErr("--notes is required: say what happened and what changes")
			}
			c, err := newAPIClient(os.Getenv)
			if err != nil {
				return err
			}
			ctx, cancel := clientContext(cmd)
			defer cancel()
			v, err := c.reviewIncident(ctx, args[0], notes)
			if err != nil {
				return exitFor(err)
			}
			if format == "json" {
				return writeJSON(s.out, v)
			}
			fmt.Fprintf(s.out, "Incident %s is reviewed (%s, %s).\n", v.ID, v.Policy, v.Account)
			return nil
		},
	}
	cmd.Flags().StringVar(&notes, "notes", "", "the review: what happened and what changes (required)")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}
