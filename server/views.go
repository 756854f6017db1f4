package server

import (
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/server/auth"
	"github.com/elevatehq/elevate/state"
)

// The JSON shapes of the API contract. Optional fields are omitted when
// empty, never null; lists are always arrays.

// GrantView is a grant as the API shows it.
type GrantView struct {
	ID              string         `json:"id"`
	Kind            string         `json:"kind"`
	Principal       string         `json:"principal"`
	Role            string         `json:"role"`
	Policy          string         `json:"policy"`
	Status          string         `json:"status"`
	Justification   string         `json:"justification"`
	Ticket          string         `json:"ticket"`
	Duration        string         `json:"duration"`
	DurationSeconds int64          `json:"duration_seconds"`
	RequestedAt     string         `json:"requested_at"`
	NotBefore       string         `json:"not_before,omitempty"`
	Starts          string         `json:"starts,omitempty"`
	Expires         string         `json:"expires,omitempty"`
	Renewals        int            `json:"renewals"`
	Approvals       []ApprovalView `json:"approvals"`
	// RequesterGroups is omitted when the grant did not record them
	// (temporary grants, grants stored before groups were recorded) and
	// [] when the requester had none.
	RequesterGroups []string      `json:"requester_groups,omitzero"`
	Reason          string        `json:"reason,omitempty"`
	Updated         string        `json:"updated"`
	Decision        *DecisionView `json:"decision,omitempty"`
}

// ApprovalView is one approver's decision.
type ApprovalView struct {
	Approver string `json:"approver"`
	Approve  bool   `json:"approve"`
	At       string `json:"at"`
	Comment  string `json:"comment"`
}

// DecisionView is a policy evaluation's outcome.
type DecisionView struct {
	Decision     string       `json:"decision"`
	Policy       string       `json:"policy"`
	Reasons      []ReasonView `json:"reasons"`
	Approvers    []string     `json:"approvers"`
	MinApprovals int          `json:"min_approvals"`
	AutoApproved bool         `json:"auto_approved"`
}

// ReasonView is one reason of a decision.
type ReasonView struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// HistoryView is one version of a grant.
type HistoryView struct {
	Version int64  `json:"version"`
	At      string `json:"at"`
	Actor   string `json:"actor"`
	Action  string `json:"action"`
	Note    string `json:"note"`
	From    string `json:"from"`
	To      string `json:"to"`
}

// GrantDetail is the body of GET /v1/grants/{id}.
type GrantDetail struct {
	Grant   GrantView     `json:"grant"`
	History []HistoryView `json:"history"`
}

// GrantList is the body of GET /v1/grants.
type GrantList struct {
	Grants []GrantView `json:"grants"`
}

// WhoamiView is the body of GET /v1/whoami.
type WhoamiView struct {
	Principal string   `json:"principal"`
	Groups    []string `json:"groups"`
	Admin     bool     `json:"admin"`
	Method    string   `json:"method"`
}

// PolicyView is the body of GET /v1/policies.
type PolicyView struct {
	Files      int        `json:"files"`
	Roles      int        `json:"roles"`
	JIT        int        `json:"jit"`
	Temporary  int        `json:"temporary"`
	BreakGlass int        `json:"break_glass"`
	LoadedAt   string     `json:"loaded_at,omitempty"`
	LastReload ReloadView `json:"last_reload"`
}

// ReloadView is the outcome of the last policy reload.
type ReloadView struct {
	OK          bool             `json:"ok"`
	At          string           `json:"at,omitempty"`
	Diagnostics []DiagnosticView `json:"diagnostics"`
}

// DiagnosticView is a policy diagnostic in `elevate validate --format json`'s shape.
type DiagnosticView struct {
	Severity  string `json:"severity"`
	Rule      string `json:"rule"`
	Summary   string `json:"summary"`
	Detail    string `json:"detail"`
	File      string `json:"file"`
	Line      int    `json:"line"`
	Column    int    `json:"column"`
	EndLine   int    `json:"end_line"`
	EndColumn int    `json:"end_column"`
}

// ReadyView is the body of GET /readyz.
type ReadyView struct {
	Ready   bool     `json:"ready"`
	Failing []string `json:"failing"`
}

// formatTime renders t in RFC 3339 UTC, "" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// NewGrantView renders g; res is the evaluation that accompanies it, if any.
func NewGrantView(g model.Grant, res *policies.Result) GrantView {
	v := GrantView{
		ID:              g.ID,
		Kind:            string(g.Kind),
		Principal:       g.Principal.String(),
		Role:            g.Role,
		Policy:          g.Policy,
		Status:          string(g.Status),
		Justification:   g.Justification,
		Ticket:          g.Ticket,
		Duration:        model.FormatDuration(g.Duration.Truncate(time.Second)),
		DurationSeconds: int64(g.Duration / time.Second),
		RequestedAt:     formatTime(g.RequestedAt),
		NotBefore:       formatTime(g.NotBefore),
		Starts:          formatTime(g.Starts),
		Expires:         formatTime(g.Expires),
		Renewals:        g.Renewals,
		Approvals:       make([]ApprovalView, 0, len(g.Approvals)),
		Reason:          g.Reason,
		Updated:         formatTime(g.Updated),
	}
	for _, a := range g.Approvals {
		v.Approvals = append(v.Approvals, ApprovalView{Approver: a.Approver.String(), Approve: a.Approve, At: formatTime(a.At), Comment: a.Comment})
	}
	if g.RequesterGroups != nil {
		v.RequesterGroups = make([]string, len(g.RequesterGroups))
		for i, p := range g.RequesterGroups {
			v.RequesterGroups[i] = p.String()
		}
	}
	if res != nil {
		v.Decision = newDecisionView(*res)
	}
	return v
}

func newDecisionView(res policies.Result) *DecisionView {
	d := &DecisionView{
		Decision:     string(res.Decision),
		Policy:       res.Policy,
		Reasons:      make([]ReasonView, 0, len(res.Reasons)),
		Approvers:    make([]string, 0, len(res.Approvers)),
		MinApprovals: res.MinApprovals,
		AutoApproved: res.AutoApproved,
	}
	for _, r := range res.Reasons {
		d.Reasons = append(d.Reasons, ReasonView{Code: string(r.Code), Message: r.Message})
	}
	for _, a := range res.Approvers {
		d.Approvers = append(d.Approvers, a.String())
	}
	if res.Decision == policies.DecisionNeedsApproval {
		d.MinApprovals = max(res.MinApprovals, 1)
	}
	return d
}

func newHistoryView(ev state.GrantEvent) HistoryView {
	return HistoryView{
		Version: ev.Version,
		At:      formatTime(ev.At),
		Actor:   ev.Actor,
		Action:  ev.Action,
		Note:    ev.Note,
		From:    string(ev.From),
		To:      string(ev.To),
	}
}

func newWhoamiView(id *auth.Identity) WhoamiView {
	v := WhoamiView{Principal: id.Principal.String(), Groups: make([]string, 0, len(id.Groups)), Admin: id.Admin, Method: id.Method}
	for _, g := range id.Groups {
		v.Groups = append(v.Groups, g.String())
	}
	return v
}

func newDiagnosticView(d policies.Diagnostic) DiagnosticView {
	return DiagnosticView{
		Severity:  string(d.Severity),
		Rule:      d.Rule,
		Summary:   d.Summary,
		Detail:    d.Detail,
		File:      d.Range.Filename,
		Line:      d.Range.Start.Line,
		Column:    d.Range.Start.Column,
		EndLine:   d.Range.End.Line,
		EndColumn: d.Range.End.Column,
	}
}
