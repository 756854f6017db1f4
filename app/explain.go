package app

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
)

type explainOptions struct {
	role, requester string
	groups          []string
	duration        string
	reason, ticket  string
	renewal         bool
	renewals        int
	format          string
}

func newExplainCmd(s *streams) *cobra.Command {
	var o explainOptions
	cmd := &cobra.Command{
		Use:   "explain --role R --requester P [flags] [PATH]",
		Short: "Show how the policies decide a request, and why",
		Long: `Evaluate one request against the policy set under PATH (default: the current
directory) with the same evaluator the server uses, and print the decision, the
policy that decides it, the reasons for a denial, and how every jit policy
naming the role judged the request.

Exit status: 0 whatever the decision, 1 the policies have errors, 2 usage or
I/O error.`,
		Example: `  elevate explain --role prod-db-admin --requester user:alice@example.com \
      --group group:sre@example.com --duration 15m --reason "INC-42 slow queries" \
      --ticket INC-42 policies/`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "."
			if len(args) == 1 {
				path = args[0]
			}
			req, err := o.request()
			if err != nil {
				return err
			}
			if o.format != "text" && o.format != "json" {
				return usageErr("invalid --format %q: use text or json", o.format)
			}
			set, err := loadSetForEvaluation(s, path, "the request was not evaluated")
			if err != nil {
				return err
			}
			res := policies.Evaluate(set, req)
			if o.format == "json" {
				return writeExplainJSON(s.out, set, req, res)
			}
			writeExplainText(s.out, set, req, res)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.role, "role", "", "the role requested (required)")
	f.StringVar(&o.requester, "requester", "", "who asks, as a principal such as user:alice@example.com (required)")
	f.StringArrayVar(&o.groups, "group", nil, "a group the requester belongs to, such as group:sre@example.com (repeatable)")
	f.StringVar(&o.duration, "duration", "", "how long, such as 30m or 1h30m (default: the policy's default_duration, else its max_duration)")
	f.StringVar(&o.reason, "reason", "", "the justification text")
	f.StringVar(&o.ticket, "ticket", "", "the ticket ID, such as INC-42")
	f.BoolVar(&o.renewal, "renewal", false, "evaluate as a renewal of an existing grant")
	f.IntVar(&o.renewals, "renewals", 0, "renewals the grant has had already (implies --renewal)")
	f.StringVar(&o.format, "format", "text", "output format: text or json")
	_ = cmd.MarkFlagRequired("role")
	_ = cmd.MarkFlagRequired("requester")
	return cmd
}

// request turns the flags into an evaluator request; every error says the
// expected form and exits 2.
func (o *explainOptions) request() (policies.Request, error) {
	req := policies.Request{
		Role:          o.role,
		Justification: o.reason,
		Ticket:        o.ticket,
		Renewal:       o.renewal || o.renewals > 0,
		Renewals:      o.renewals,
	}
	if strings.TrimSpace(o.role) == "" {
		return req, usageErr("--role must name a role, such as --role prod-db-admin")
	}
	p, err := model.ParsePrincipal(o.requester)
	if err != nil {
		return req, usageErr("invalid --requester: %w", err)
	}
	if p.IsGroupLike() {
		return req, usageErr("invalid --requester %q: a request comes from one identity, such as user:alice@example.com; pass groups with --group", o.requester)
	}
	req.Requester = p
	for _, g := range o.groups {
		gp, err := model.ParsePrincipal(g)
		if err != nil {
			return req, usageErr("invalid --group: %w", err)
		}
		if !gp.IsGroupLike() {
			return req, usageErr("invalid --group %q: expected a group such as group:sre@example.com", g)
		}
		req.Groups = append(req.Groups, gp)
	}
	if o.duration != "" {
		d, err := model.ParseDuration(o.duration)
		if err != nil {
			return req, usageErr("invalid --duration: %w", err)
		}
		if d <= 0 {
			return req, usageErr("invalid --duration %q: it must be longer than zero; leave it out for the policy's default", o.duration)
		}
		req.Duration = d
	}
	if o.renewals < 0 {
		return req, usageErr("invalid --renewals %d: it counts renewals already made, 0 or more", o.renewals)
	}
	return req, nil
}

// explainDecider finds what decided: the jit policy, or for a break-glass
// account the break_glass block that lists it.
func explainDecider(set *policies.Set, res policies.Result) (kind, name string, rng hcl.Range) {
	for _, r := range res.Reasons {
		if r.Code == policies.ReasonBreakglassAccount {
			if bg := set.BreakGlassPolicy(r.Policy); bg != nil {
				return "break_glass", bg.Name, bg.DeclRange
			}
		}
	}
	if j := set.JITPolicy(res.Policy); res.Policy != "" && j != nil {
		return "jit", j.Name, j.DeclRange
	}
	return "", "", hcl.Range{}
}

func explainPos(r hcl.Range) string {
	if r.Filename == "" {
		return ""
	}
	return fmt.Sprintf("%s:%d", r.Filename, r.Start.Line)
}

func explainPrincipals(ps []model.Principal) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func explainApproval(min int, approvers []model.Principal) string {
	return fmt.Sprintf("%d of %s", min, strings.Join(explainPrincipals(approvers), ", "))
}

// writeExplainText prints the answer first, then the reasons, then the trace.
func writeExplainText(w io.Writer, set *policies.Set, req policies.Request, res policies.Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(label, value string) { fmt.Fprintf(tw, "%s\t%s\n", label, value) }

	requested := "the policy default"
	if req.Duration > 0 {
		requested = model.FormatDuration(req.Duration)
	}
	who := req.Requester.String()
	if len(req.Groups) > 0 {
		who += " (" + strings.Join(explainPrincipals(req.Groups), ", ") + ")"
	}
	row("request", fmt.Sprintf("%s asks for role %q for %s", who, req.Role, requested))
	if req.Renewal {
		times := "times"
		if req.Renewals == 1 {
			times = "time"
		}
		row("", fmt.Sprintf("as a renewal of a grant renewed %d %s so far", req.Renewals, times))
	}

	decision := string(res.Decision)
	if res.AutoApproved {
		decision += " (auto-approved)"
	}
	row("decision", decision)
	if kind, name, rng := explainDecider(set, res); kind != "" {
		row("policy", fmt.Sprintf("%s %q at %s", kind, name, explainPos(rng)))
	}
	if res.Decision != policies.DecisionDenied {
		row("duration", model.FormatDuration(res.Duration))
	}
	if res.Decision == policies.DecisionNeedsApproval {
		row("approval", explainApproval(res.MinApprovals, res.Approvers)+" (not the requester)")
	}
	for i, r := range res.Reasons {
		label := ""
		if i == 0 {
			label = "reasons"
		}
		row(label, fmt.Sprintf("%s: %s", r.Code, r.Message))
	}
	for _, e := range res.AutoApproveErrors {
		row("warning", fmt.Sprintf("auto_approve of %q at %s failed, so it did not auto-approve: %s", e.Policy, explainPos(e.Range), e.Message))
	}
	tw.Flush()

	fmt.Fprintln(w)
	if len(res.Trace) == 0 {
		if set.Role(req.Role) == nil {
			fmt.Fprintf(w, "No role %q is defined, so no policy was considered.\n", req.Role)
		} else {
			fmt.Fprintf(w, "No jit policy names role %q.\n", req.Role)
		}
		return
	}
	if res.HasReason(policies.ReasonBreakglassAccount) {
		fmt.Fprintf(w, "Policies naming role %q (overruled: a break-glass account is always denied):\n", req.Role)
	} else {
		fmt.Fprintf(w, "Policies naming role %q:\n", req.Role)
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range res.Trace {
		mark := ""
		if t.Policy == res.Policy {
			mark = "  <- decides"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s%s\n", t.Policy, explainPos(t.Range), t.Decision, mark)
		sub := func(label, value string) { fmt.Fprintf(tw, "  \t%s\t%s\n", label, value) }
		if t.Eligible {
			sub("eligible", "yes: "+t.Match)
			sub("duration", model.FormatDuration(t.Duration))
		} else {
			sub("eligible", "no: "+t.Match)
		}
		for _, r := range t.Reasons {
			if r.Code == policies.ReasonNotEligible {
				continue // said on the requesters line
			}
			sub("failed", fmt.Sprintf("%s: %s", r.Code, r.Message))
		}
		switch t.AutoApprove {
		case policies.AutoApproveTrue:
			sub("auto_approve", "true")
		case policies.AutoApproveFalse:
			sub("auto_approve", "false")
		case policies.AutoApproveFailed:
			sub("auto_approve", "error: "+t.AutoApproveError)
		}
		if t.Decision == policies.DecisionNeedsApproval {
			sub("approval", explainApproval(t.MinApprovals, t.Approvers))
		}
	}
	tw.Flush()
}

// The JSON form of explain is stable: every key is always present, lists
// are [] rather than null, and durations come both in elevate's syntax and
// in seconds.
type (
	explainJSON struct {
		Request           explainRequestJSON            `json:"request"`
		Decision          policies.Decision             `json:"decision"`
		Policy            string                        `json:"policy"`
		PolicyKind        string                        `json:"policy_kind"`
		File              string                        `json:"file"`
		Line              int                           `json:"line"`
		Duration          string                        `json:"duration"`
		DurationSeconds   int64                         `json:"duration_seconds"`
		Approvers         []string                      `json:"approvers"`
		MinApprovals      int                           `json:"min_approvals"`
		AutoApproved      bool                          `json:"auto_approved"`
		Reasons           []explainReasonJSON           `json:"reasons"`
		AutoApproveErrors []explainAutoApproveErrorJSON `json:"auto_approve_errors"`
		Trace             []explainTraceJSON            `json:"trace"`
	}
	explainRequestJSON struct {
		Requester       string   `json:"requester"`
		Groups          []string `json:"groups"`
		Role            string   `json:"role"`
		Duration        string   `json:"duration"` // "" = the policy's default
		DurationSeconds int64    `json:"duration_seconds"`
		Justification   string   `json:"justification"`
		Ticket          string   `json:"ticket"`
		Renewal         bool     `json:"renewal"`
		Renewals        int      `json:"renewals"`
	}
	explainReasonJSON struct {
		Code    policies.ReasonCode `json:"code"`
		Message string              `json:"message"`
		Policy  string              `json:"policy"`
	}
	explainAutoApproveErrorJSON struct {
		Policy  string `json:"policy"`
		Message string `json:"message"`
		File    string `json:"file"`
		Line    int    `json:"line"`
		Column  int    `json:"column"`
	}
	explainTraceJSON struct {
		Policy           string              `json:"policy"`
		File             string              `json:"file"`
		Line             int                 `json:"line"`
		Eligible         bool                `json:"eligible"`
		Match            string              `json:"match"`
		Decision         string              `json:"decision"`
		Duration         string              `json:"duration"`
		DurationSeconds  int64               `json:"duration_seconds"`
		Approvers        []string            `json:"approvers"`
		MinApprovals     int                 `json:"min_approvals"`
		AutoApprove      string              `json:"auto_approve"` // "", "true", "false" or "error"
		AutoApproveError string              `json:"auto_approve_error"`
		Reasons          []explainReasonJSON `json:"reasons"`
	}
)

func explainDuration(d time.Duration) (string, int64) {
	if d == 0 {
		return "", 0
	}
	return model.FormatDuration(d), int64(d / time.Second)
}

func explainReasons(rs []policies.Reason) []explainReasonJSON {
	out := make([]explainReasonJSON, len(rs))
	for i, r := range rs {
		out[i] = explainReasonJSON{Code: r.Code, Message: r.Message, Policy: r.Policy}
	}
	return out
}

func writeExplainJSON(w io.Writer, set *policies.Set, req policies.Request, res policies.Result) error {
	kind, name, rng := explainDecider(set, res)
	out := explainJSON{
		Request: explainRequestJSON{
			Requester:     req.Requester.String(),
			Groups:        explainPrincipals(req.Groups),
			Role:          req.Role,
			Justification: req.Justification,
			Ticket:        req.Ticket,
			Renewal:       req.Renewal,
			Renewals:      req.Renewals,
		},
		Decision:          res.Decision,
		Policy:            name,
		PolicyKind:        kind,
		File:              rng.Filename,
		Line:              rng.Start.Line,
		Approvers:         explainPrincipals(res.Approvers),
		MinApprovals:      res.MinApprovals,
		AutoApproved:      res.AutoApproved,
		Reasons:           explainReasons(res.Reasons),
		AutoApproveErrors: make([]explainAutoApproveErrorJSON, len(res.AutoApproveErrors)),
		Trace:             make([]explainTraceJSON, len(res.Trace)),
	}
	out.Request.Duration, out.Request.DurationSeconds = explainDuration(req.Duration)
	out.Duration, out.DurationSeconds = explainDuration(res.Duration)
	for i, e := range res.AutoApproveErrors {
		out.AutoApproveErrors[i] = explainAutoApproveErrorJSON{Policy: e.Policy, Message: e.Message,
			File: e.Range.Filename, Line: e.Range.Start.Line, Column: e.Range.Start.Column}
	}
	for i, t := range res.Trace {
		tj := explainTraceJSON{
			Policy: t.Policy, File: t.Range.Filename, Line: t.Range.Start.Line,
			Eligible: t.Eligible, Match: t.Match, Decision: string(t.Decision),
			Approvers: explainPrincipals(t.Approvers), MinApprovals: t.MinApprovals,
			AutoApprove: string(t.AutoApprove), AutoApproveError: t.AutoApproveError,
			Reasons: explainReasons(t.Reasons),
		}
		tj.Duration, tj.DurationSeconds = explainDuration(t.Duration)
		out.Trace[i] = tj
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("writing explain output: %w", err)
	}
	return nil
}
