package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/elevatehq/elevate/model"
)

// The client commands of CLI.md: request, approve, deny, extend, revoke,
// grants and status. Each talks to the server at ELEVATE_ADDR with
// ELEVATE_TOKEN; none touches the network before its arguments check out.

const clientEnvHelp = `
Environment:
  ELEVATE_ADDR   the server's URL (default ` + DefaultAddr + `)
  ELEVATE_TOKEN  your bearer token: an OIDC token or an elevate static token`

func clientCmds(s *streams) []*cobra.Command {
	return []*cobra.Command{
		newRequestCmd(s), newApproveCmd(s), newDenyCmd(s), newExtendCmd(s),
		newRevokeCmd(s), newGrantsCmd(s), newStatusCmd(s),
	}
}

// checkFormat accepts text and json.
func checkFormat(format string) error {
	if format != "text" && format != "json" {
		return usageErr("unknown --format %q: use text or json", format)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return usageErr("writing output: %w", err)
	}
	return nil
}

// clientContext is cancelled by Ctrl-C, so a --wait can be interrupted.
func clientContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
}

func newRequestCmd(s *streams) *cobra.Command {
	var (
		dur, reason, ticket, notBefore, format string
		wait                                   bool
		timeout                                time.Duration
	)
	cmd := &cobra.Command{
		Use:   "request ROLE [--for 30m] [--reason TEXT] [--ticket ID] [--wait]",
		Short: "Ask for a role just in time",
		Long: `Request asks the server for ROLE for a while. The request is evaluated
against the policies for you (your token's principal and groups): it is
approved at once (self-service or auto-approval), waits for approvers, or is
denied with the reasons.

It prints the grant ID and the decision. With --wait it then follows the
grant until it is active in the clouds, or denied or failed, showing
progress.

Exit status: 0 when the grant was approved (with --wait: when it is active)
or is pending approval (without --wait), 1 when it was denied or failed,
2 on usage or connection errors.` + clientEnvHelp,
		Example: `  elevate request staging-operator --for 2h --reason "debug the payments consumer" --wait
  elevate request prod-readonly --for 30m --reason "checkout errors" --ticket INC-4711`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			body := requestBody{Role: args[0], Justification: reason, Ticket: ticket}
			if dur != "" {
				d, err := model.ParseDuration(dur)
				if err != nil {
					return usageErr("--for: %v", err)
				}
				body.Duration = model.FormatDuration(d)
			}
			if notBefore != "" {
				t, err := model.ParseTime(notBefore)
				if err != nil {
					return usageErr("--not-before: %v", err)
				}
				body.NotBefore = t.Format(time.RFC3339)
			}
			c, err := newAPIClient(os.Getenv)
			if err != nil {
				return err
			}
			ctx, cancel := clientContext(cmd)
			defer cancel()
			g, err := c.request(ctx, body)
			if err != nil {
				return exitFor(err)
			}
			if !wait || g.Status == "denied" {
				if err := printGrantResult(s.out, g, format); err != nil {
					return err
				}
				return grantExit(g)
			}
			if format == "text" {
				printDecisionLine(s.out, g)
			}
			if timeout > 0 {
				var stop context.CancelFunc
				ctx, stop = context.WithTimeout(ctx, timeout)
				defer stop()
			}
			final, err := waitForGrant(ctx, c, g, s.err, isTerminal(s.err))
			if err != nil {
				return err
			}
			if format == "json" {
				if err := writeJSON(s.out, final); err != nil {
					return err
				}
			} else {
				printWaitResult(s.out, final)
			}
			return grantExit(final)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dur, "for", "", "how long, such as 30m or 1h30m (default: the policy's default_duration)")
	f.StringVar(&reason, "reason", "", "why you need the role (the justification; most policies require one)")
	f.StringVar(&ticket, "ticket", "", "a ticket ID, such as INC-4711, when the policy asks for one")
	f.StringVar(&notBefore, "not-before", "", "start later, at this RFC 3339 UTC time")
	f.BoolVar(&wait, "wait", false, "wait until the grant is active, denied or failed, showing progress")
	f.DurationVar(&timeout, "timeout", 0, "with --wait: give up after this long (exit 2); 0 waits until decided or Ctrl-C")
	f.StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

// grantExit is 1 for a grant that was refused or failed, else 0.
func grantExit(g grantView) error {
	switch g.Status {
	case "denied", "failed":
		return silent(ExitFailed)
	}
	return nil
}

func printGrantResult(w io.Writer, g grantView, format string) error {
	if format == "json" {
		return writeJSON(w, g)
	}
	printDecisionLine(w, g)
	return nil
}

// printDecisionLine says what happened to a new request, in one or a few
// lines.
func printDecisionLine(w io.Writer, g grantView) {
	switch g.Status {
	case "approved", "active":
		how := ""
		if g.Decision != nil {
			switch {
			case g.Decision.AutoApproved:
				how = ", auto-approved"
			case g.Decision.Decision == "allowed":
				how = ", self-service"
			}
		}
		fmt.Fprintf(w, "Grant %s: %s for %s is %s%s (policy %s).\n", g.ID, g.Role, durationText(g), g.Status, how, g.Policy)
		if g.Status == "approved" && g.Starts != nil && g.Starts.After(time.Now()) {
			fmt.Fprintf(w, "It starts %s.\n", whenText(*g.Starts))
		}
	case "pending":
		fmt.Fprintf(w, "Grant %s: %s for %s is pending approval (policy %s).\n", g.ID, g.Role, durationText(g), g.Policy)
		if g.Decision != nil && len(g.Decision.Approvers) > 0 {
			n := max(g.Decision.MinApprovals, 1)
			fmt.Fprintf(w, "Needs %s from: %s\n", plural(n, "approval", "approvals"), strings.Join(g.Decision.Approvers, ", "))
		}
		printReasons(w, g)
		fmt.Fprintf(w, "An approver runs: elevate approve %s\n", g.ID)
	case "denied":
		fmt.Fprintf(w, "Grant %s: %s was denied", g.ID, g.Role)
		if g.Policy != "" {
			fmt.Fprintf(w, " (policy %s)", g.Policy)
		}
		fmt.Fprintln(w, ".")
		printReasons(w, g)
		if g.Reason != "" && (g.Decision == nil || len(g.Decision.Reasons) == 0) {
			fmt.Fprintf(w, "  %s\n", g.Reason)
		}
	default:
		fmt.Fprintf(w, "Grant %s: %s is %s.\n", g.ID, g.Role, g.Status)
		if g.Reason != "" {
			fmt.Fprintf(w, "  %s\n", g.Reason)
		}
	}
}

func printReasons(w io.Writer, g grantView) {
	if g.Decision == nil {
		return
	}
	for _, r := range g.Decision.Reasons {
		fmt.Fprintf(w, "  %s: %s\n", r.Code, r.Message)
	}
}

func printWaitResult(w io.Writer, g grantView) {
	switch g.Status {
	case "active":
		if g.Expires != nil {
			fmt.Fprintf(w, "Grant %s is active: %s until %s.\n", g.ID, g.Role, whenText(*g.Expires))
		} else {
			fmt.Fprintf(w, "Grant %s is active.\n", g.ID)
		}
		fmt.Fprintf(w, "See it with: elevate status %s\n", g.ID)
	default:
		printDecisionLine(w, g)
	}
}

// settled reports whether --wait is done with a grant in this status.
func settled(status string) bool {
	switch status {
	case "active", "denied", "failed", "expired", "revoked":
		return true
	}
	return false
}

// waitPoll is how often --wait asks the server.
const waitPoll = 250 * time.Millisecond

// waitForGrant polls the grant until it settles, drawing a spinner on a
// terminal and one line per status change otherwise.
func waitForGrant(ctx context.Context, c *apiClient, g grantView, progress io.Writer, tty bool) (grantView, error) {
	frames := []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}
	start := time.Now()
	last := ""
	frame := 0
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	nextPoll := time.Now()
	clear := func() {
		if tty {
			fmt.Fprint(progress, "\r\033[K")
		}
	}
	for {
		if time.Now().After(nextPoll) || nextPoll.Equal(time.Time{}) {
			d, err := c.grant(ctx, g.ID)
			if err != nil {
				clear()
				if ctx.Err() != nil {
					return g, usageErr("stopped waiting for grant %s while it was %s: check it later with elevate status %s", g.ID, g.Status, g.ID)
				}
				return g, exitFor(err)
			}
			g = d.Grant
			nextPoll = time.Now().Add(waitPoll)
		}
		if settled(g.Status) {
			clear()
			return g, nil
		}
		msg := waitMessage(g)
		if tty {
			fmt.Fprintf(progress, "\r\033[K%s %s (%s)", frames[frame%len(frames)], msg, time.Since(start).Truncate(time.Second))
			frame++
		} else if msg != last {
			fmt.Fprintln(progress, msg)
		}
		last = msg
		select {
		case <-ctx.Done():
			clear()
			return g, usageErr("stopped waiting for grant %s while it was %s: check it later with elevate status %s", g.ID, g.Status, g.ID)
		case <-tick.C:
		}
	}
}

func waitMessage(g grantView) string {
	switch g.Status {
	case "pending":
		if g.Decision != nil && len(g.Decision.Approvers) > 0 {
			return fmt.Sprintf("waiting for approval from %s", strings.Join(g.Decision.Approvers, ", "))
		}
		return "waiting for approval"
	case "approved":
		if g.Starts != nil && g.Starts.After(time.Now()) {
			return "approved; starts " + whenText(*g.Starts)
		}
		return "approved; granting access in the clouds"
	}
	return g.Status
}

func newApproveCmd(s *streams) *cobra.Command {
	var comment, format string
	cmd := &cobra.Command{
		Use:   "approve ID [--comment TEXT]",
		Short: "Approve a pending request",
		Long: `Approve records your approval of a pending grant. When enough approvers
have approved, the grant is approved and its window starts. You cannot
approve your own request, and only the approvers the policy names may
approve.

Exit status: 0 approved, 1 refused by the server (not an approver, your own
request, not pending), 2 usage or connection errors.` + clientEnvHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAction(cmd, s, format, args[0], "approve", map[string]string{"comment": comment}, "Approved")
		},
	}
	cmd.Flags().StringVar(&comment, "comment", "", "a note recorded with your approval")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

func newDenyCmd(s *streams) *cobra.Command {
	var reason, format string
	cmd := &cobra.Command{
		Use:   "deny ID --reason TEXT",
		Short: "Deny a pending request",
		Long: `Deny refuses a pending grant with a reason the requester will see.

Exit status: 0 denied, 1 refused by the server, 2 usage or connection
errors.` + clientEnvHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return usageErr("--reason is required: tell the requester why")
			}
			return runAction(cmd, s, format, args[0], "deny", map[string]string{"reason": reason}, "Denied")
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the request is denied (required)")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

func newExtendCmd(s *streams) *cobra.Command {
	var by, reason, format string
	cmd := &cobra.Command{
		Use:   "extend ID --by 30m --reason TEXT",
		Short: "Renew a grant for longer",
		Long: `Extend asks for more time on a grant. The renewal is evaluated like a new
request (the policy's max_renewals and approval rules apply).

Exit status: 0 extended, 1 refused (renewals exhausted, needs approval, not
yours), 2 usage or connection errors.` + clientEnvHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if by == "" {
				return usageErr("--by is required: say how much longer, such as --by 30m")
			}
			d, err := model.ParseDuration(by)
			if err != nil {
				return usageErr("--by: %v", err)
			}
			body := map[string]string{"by": model.FormatDuration(d)}
			if reason != "" {
				body["justification"] = reason
			}
			return runAction(cmd, s, format, args[0], "extend", body, "Extended")
		},
	}
	cmd.Flags().StringVar(&by, "by", "", "how much longer, such as 30m (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why you need more time")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

func newRevokeCmd(s *streams) *cobra.Command {
	var reason, format string
	cmd := &cobra.Command{
		Use:   "revoke ID [--reason TEXT]",
		Short: "End a grant early",
		Long: `Revoke ends a grant now: the daemon removes its bindings from the clouds.
The grantee or an administrator may revoke.

Exit status: 0 revoked, 1 refused by the server, 2 usage or connection
errors.` + clientEnvHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]string{}
			if reason != "" {
				body["reason"] = reason
			}
			return runAction(cmd, s, format, args[0], "revoke", body, "Revoked")
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the grant ends early")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

// runAction posts one grant action and prints the grant it returns.
func runAction(cmd *cobra.Command, s *streams, format, id, action string, body map[string]string, verb string) error {
	if err := checkFormat(format); err != nil {
		return err
	}
	for k, v := range body {
		if v == "" {
			delete(body, k)
		}
	}
	c, err := newAPIClient(os.Getenv)
	if err != nil {
		return err
	}
	ctx, cancel := clientContext(cmd)
	defer cancel()
	g, err := c.act(ctx, id, action, body)
	if err != nil {
		return exitFor(err)
	}
	if format == "json" {
		return writeJSON(s.out, g)
	}
	fmt.Fprintf(s.out, "%s grant %s (%s for %s): now %s", verb, g.ID, g.Role, g.Principal, g.Status)
	if g.Expires != nil && (g.Status == "approved" || g.Status == "active") {
		fmt.Fprintf(s.out, ", until %s", whenText(*g.Expires))
	}
	fmt.Fprintln(s.out, ".")
	if g.Status == "pending" && g.Decision != nil && g.Decision.MinApprovals > 1 {
		fmt.Fprintf(s.out, "%d of %d approvals so far.\n", approvalsGiven(g), g.Decision.MinApprovals)
	}
	return nil
}

func approvalsGiven(g grantView) int {
	n := 0
	for _, a := range g.Approvals {
		if a.Approve {
			n++
		}
	}
	return n
}

func newGrantsCmd(s *streams) *cobra.Command {
	var (
		active, pending, mine bool
		role, principal       string
		statuses              []string
		limit                 int
		format                string
	)
	cmd := &cobra.Command{
		Use:   "grants [--active] [--pending] [--mine] [--format json]",
		Short: "List grants",
		Long: `Grants lists the grants you may see: your own, those you may approve, and
every grant for administrators. Newest requests last.` + clientEnvHelp,
		Example: `  elevate grants --active
  elevate grants --pending          # what waits for your approval
  elevate grants --mine --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			q := url.Values{}
			if active {
				q.Add("status", "active")
			}
			if pending {
				q.Add("status", "pending")
			}
			for _, st := range statuses {
				switch model.GrantStatus(st) {
				case model.StatusPending, model.StatusApproved, model.StatusActive, model.StatusExpired,
					model.StatusRevoked, model.StatusDenied, model.StatusFailed:
					q.Add("status", st)
				default:
					return usageErr("unknown --status %q: use pending, approved, active, expired, revoked, denied or failed", st)
				}
			}
			if mine {
				q.Set("mine", "true")
			}
			if role != "" {
				q.Set("role", role)
			}
			if principal != "" {
				if _, err := model.ParsePrincipal(principal); err != nil {
					return usageErr("--principal: %v", err)
				}
				q.Set("principal", principal)
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
			gs, err := c.grants(ctx, q)
			if err != nil {
				return exitFor(err)
			}
			if format == "json" {
				if gs == nil {
					gs = []grantView{}
				}
				return writeJSON(s.out, grantList{Grants: gs})
			}
			printGrantTable(s.out, gs)
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&active, "active", false, "only grants active in the clouds now")
	f.BoolVar(&pending, "pending", false, "only grants waiting for approval")
	f.BoolVar(&mine, "mine", false, "only your own grants")
	f.StringVar(&role, "role", "", "only grants of this role")
	f.StringVar(&principal, "principal", "", "only grants to this principal (user:EMAIL)")
	f.StringSliceVar(&statuses, "status", nil, "only grants in these statuses (repeatable)")
	f.IntVar(&limit, "limit", 0, "at most this many grants")
	f.StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

func printGrantTable(w io.Writer, gs []grantView) {
	if len(gs) == 0 {
		fmt.Fprintln(w, "No grants.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tROLE\tPRINCIPAL\tSTATUS\tWINDOW")
	for _, g := range gs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", g.ID, g.Role, g.Principal, g.Status, windowText(g))
	}
	tw.Flush()
}

// windowText describes when a grant holds: its expiry for live grants,
// its requested duration otherwise.
func windowText(g grantView) string {
	switch g.Status {
	case "approved", "active":
		if g.Starts != nil && g.Starts.After(time.Now()) {
			return "starts " + whenText(*g.Starts)
		}
		if g.Expires != nil {
			return "until " + whenText(*g.Expires)
		}
	case "expired", "revoked":
		if g.Expires != nil {
			return "ended " + whenText(g.Updated)
		}
	case "pending":
		return durationText(g) + " requested " + whenText(g.RequestedAt)
	}
	return ""
}

func newStatusCmd(s *streams) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "status ID [--format json]",
		Short: "Show a grant and its history",
		Long:  `Status shows one grant: who holds which role, when, why, who approved, and every change in its history.` + clientEnvHelp,
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
			d, err := c.grant(ctx, args[0])
			if err != nil {
				return exitFor(err)
			}
			if format == "json" {
				if d.History == nil {
					d.History = []historyView{}
				}
				return writeJSON(s.out, d)
			}
			printGrantDetail(s.out, d)
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

func printGrantDetail(w io.Writer, d grantDetail) {
	g := d.Grant
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	row("Grant", g.ID)
	row("Role", g.Role)
	row("Principal", g.Principal)
	row("Status", g.Status)
	row("Kind", g.Kind)
	row("Policy", g.Policy)
	row("Duration", durationText(g))
	row("Requested", stamp(g.RequestedAt))
	if g.NotBefore != nil {
		row("Not before", stamp(*g.NotBefore))
	}
	if g.Starts != nil {
		row("Starts", stamp(*g.Starts))
	}
	if g.Expires != nil {
		row("Expires", stamp(*g.Expires))
	}
	row("Justification", g.Justification)
	row("Ticket", g.Ticket)
	if g.RequesterGroups != nil {
		groups := "none"
		if len(g.RequesterGroups) > 0 {
			groups = strings.Join(g.RequesterGroups, ", ")
		}
		row("Groups", groups+" (at request time)")
	}
	if g.Renewals > 0 {
		row("Renewals", strconv.Itoa(g.Renewals))
	}
	row("Reason", g.Reason)
	if g.Decision != nil {
		dec := g.Decision.Decision
		if g.Decision.AutoApproved {
			dec += " (auto-approved)"
		}
		row("Decision", dec)
		for _, r := range g.Decision.Reasons {
			row("", r.Code+": "+r.Message)
		}
		if len(g.Decision.Approvers) > 0 {
			row("Approvers", fmt.Sprintf("%s (%d needed)", strings.Join(g.Decision.Approvers, ", "), max(g.Decision.MinApprovals, 1)))
		}
	}
	for i, a := range g.Approvals {
		k := ""
		if i == 0 {
			k = "Approvals"
		}
		verdict := "approved"
		if !a.Approve {
			verdict = "denied"
		}
		line := fmt.Sprintf("%s %s at %s", a.Approver, verdict, stamp(a.At))
		if a.Comment != "" {
			line += ": " + a.Comment
		}
		fmt.Fprintf(tw, "%s\t%s\n", k, line)
	}
	tw.Flush()
	if len(d.History) == 0 {
		return
	}
	fmt.Fprintln(w, "\nHistory")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tAT\tACTOR\tACTION\tSTATUS\tNOTE")
	for _, h := range d.History {
		st := h.To
		if h.From != "" && h.From != h.To {
			st = h.From + " → " + h.To
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\n", h.Version, stamp(h.At), h.Actor, h.Action, st, h.Note)
	}
	tw.Flush()
}

func durationText(g grantView) string {
	if g.Duration != "" {
		return g.Duration
	}
	if g.DurationSeconds > 0 {
		return model.FormatDuration(time.Duration(g.DurationSeconds) * time.Second)
	}
	return "the default duration"
}

// stamp renders a time in UTC to the second.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

// whenText renders a time with how far away it is: "15:04:05Z (in 1m50s)".
func whenText(t time.Time) string {
	d := time.Until(t).Round(time.Second)
	rel := ""
	switch {
	case d > 0:
		rel = "in " + d.String()
	case d < 0:
		rel = (-d).String() + " ago"
	default:
		rel = "now"
	}
	layout := "15:04:05Z"
	if abs(time.Until(t)) > 20*time.Hour {
		layout = "2006-01-02 15:04Z"
	}
	return fmt.Sprintf("%s (%s)", t.UTC().Format(layout), rel)
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
