package policies

import (
	"fmt"
	"slices"
	"strings"

	"github.com/elevatehq/elevate/model"
)

// TestResult is the outcome of one test block.
type TestResult struct {
	Test   *Test
	Passed bool
	// Failure says what was expected and what happened; empty when Passed.
	Failure string
	// Result is what Evaluate returned for the test's request.
	Result Result
}

// RunTests evaluates every test block of set and compares the outcome with
// its expect, expect_policy and expect_reasons (every listed reason must be
// among the result's reasons; others may be there too). Results are in
// declaration order.
func RunTests(set *Set) []TestResult {
	out := make([]TestResult, 0, len(set.Tests))
	for _, t := range set.Tests {
		out = append(out, RunTest(set, t))
	}
	return out
}

// RunTest evaluates one test block against set.
func RunTest(set *Set, t *Test) TestResult {
	res := Evaluate(set, t.Request.Request())
	tr := TestResult{Test: t, Result: res}
	var problems []string
	decisionOK := t.Expect != "" && res.Decision == t.Expect
	switch {
	case t.Expect == "":
		problems = append(problems, "the test has no valid expect; write allowed, needs_approval or denied")
	case !decisionOK:
		problems = append(problems, fmt.Sprintf("expected %s, got %s", t.Expect, outcome(res)))
	}
	if t.ExpectPolicy != "" && res.Policy != t.ExpectPolicy {
		got := fmt.Sprintf("%q", res.Policy)
		if res.Policy == "" {
			got = "no policy"
		}
		problems = append(problems, fmt.Sprintf("expected policy %q to decide, got %s", t.ExpectPolicy, got))
	}
	var missing, unknown []string
	for _, want := range t.ExpectReasons {
		switch {
		case !slices.Contains(ReasonCodes, ReasonCode(want)):
			unknown = append(unknown, want)
		case !res.HasReason(ReasonCode(want)):
			missing = append(missing, want)
		}
	}
	if len(unknown) > 0 {
		codes := make([]string, len(ReasonCodes))
		for i, c := range ReasonCodes {
			codes[i] = string(c)
		}
		problems = append(problems, fmt.Sprintf("expect_reasons has unknown reason %s; known reasons are %s",
			strings.Join(unknown, ", "), strings.Join(codes, ", ")))
	}
	if len(missing) > 0 {
		msg := "expected reason " + strings.Join(missing, ", ")
		if decisionOK {
			msg += ", got " + reasonSummary(res)
		}
		problems = append(problems, msg)
	} else if len(problems) > 0 && decisionOK {
		// Only the policy or the reason list was wrong: still say what happened.
		problems = append(problems, "got "+outcome(res))
	}
	tr.Passed = len(problems) == 0
	tr.Failure = strings.Join(problems, "; ")
	return tr
}

// Request converts the test block's request into an evaluator request.
func (r TestRequest) Request() Request {
	return Request{
		Requester:     r.Requester,
		Groups:        slices.Clone(r.Groups),
		Role:          r.Role,
		Duration:      r.Duration,
		Justification: r.Justification,
		Ticket:        r.Ticket,
		Renewal:       r.Renewal,
		Renewals:      r.Renewals,
	}
}

// outcome describes a result in one phrase: "denied (duration-exceeds-max:
// …)", "needs_approval by "db" (1 of group:leads@example.com)".
func outcome(res Result) string {
	var b strings.Builder
	b.WriteString(string(res.Decision))
	if res.Policy != "" {
		fmt.Fprintf(&b, " by %q", res.Policy)
	}
	switch res.Decision {
	case DecisionAllowed:
		if res.AutoApproved {
			b.WriteString(" (auto-approved)")
		}
	case DecisionNeedsApproval:
		fmt.Fprintf(&b, " (%d of %s)", res.MinApprovals, joinPrincipals(res.Approvers))
	case DecisionDenied:
		b.WriteString(" (" + reasonSummary(res) + ")")
	}
	return b.String()
}

func reasonSummary(res Result) string {
	if len(res.Reasons) == 0 {
		return "no reasons"
	}
	parts := make([]string, len(res.Reasons))
	for i, r := range res.Reasons {
		parts[i] = string(r.Code) + ": " + r.Message
	}
	return strings.Join(parts, "; ")
}

func joinPrincipals(ps []model.Principal) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
