package breakglass

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/state"
)

// Thresholds of the access report's findings.
const (
	// RepeatRequestThreshold: this many requests of one role by one
	// person in the period is a pattern.
	RepeatRequestThreshold = 5
	// RenewalThreshold: this many renewals of one role by one person in the
	// period (or of one grant, RenewalsPerGrantThreshold) is a pattern.
	RenewalThreshold          = 3
	RenewalsPerGrantThreshold = 2
)

// ReportInput is what BuildReport works from.
type ReportInput struct {
	Since, Now time.Time
	Set        *policies.Set
	// Grants requested in the period.
	Grants []model.Grant
	// Incidents with events in the period.
	Incidents []state.Incident
}

// Report is the access report of `elevate report`: patterns that say the
// baseline access model needs work.
type Report struct {
	Since, Until time.Time
	Requests     int
	// Renewals lists, per person and role, grants that were renewed.
	Renewals []RenewalPattern
	// RepeatRequests lists people who asked for the same role often.
	RepeatRequests []RequestPattern
	// BreakGlass counts break-glass use per policy.
	BreakGlass []BreakGlassUse
	// Findings are the patterns worth acting on, in sentences.
	Findings []Finding
}

// RenewalPattern is the renewals of one role by one person.
type RenewalPattern struct {
	Principal string
	Role      string
	Grants    int
	Renewals  int
	// MostPerGrant is the most renewals of a single grant.
	MostPerGrant int
}

// RequestPattern is the requests of one role by one person.
type RequestPattern struct {
	Principal string
	Role      string
	Requests  int
	// Days counts the distinct days the requests were made on.
	Days        int
	First, Last time.Time
	// Total is the time granted, summed.
	Total time.Duration
}

// BreakGlassUse is the use of one break_glass policy in the period.
type BreakGlassUse struct {
	Policy     string
	Incidents  int
	Uses       int // incidents with a successful event
	Undeclared int
	// FailedOnly counts incidents of failed sign-ins alone.
	FailedOnly int
	MaxUses    int
	UseWindow  time.Duration
}

// Finding is one pattern worth acting on.
type Finding struct {
	// Kind is "repeated-renewals", "repeated-requests" or
	// "breakglass-frequency".
	Kind    string
	Message string
}

// BuildReport finds the patterns in grants and incidents. It is a pure
// function of its input.
func BuildReport(in ReportInput) Report {
	r := Report{Since: in.Since, Until: in.Now}
	type key struct{ principal, role string }
	renewals := map[key]*RenewalPattern{}
	requests := map[key]*RequestPattern{}
	days := map[key]map[string]bool{}
	for _, g := range in.Grants {
		if g.RequestedAt.Before(in.Since) || g.RequestedAt.After(in.Now) {
			continue
		}
		r.Requests++
		k := key{g.Principal.String(), g.Role}
		rq := requests[k]
		if rq == nil {
			rq = &RequestPattern{Principal: k.principal, Role: k.role, First: g.RequestedAt}
			requests[k], days[k] = rq, map[string]bool{}
		}
		rq.Requests++
		rq.First = minTime(rq.First, g.RequestedAt)
		rq.Last = maxTime(rq.Last, g.RequestedAt)
		if g.Status != model.StatusDenied && g.Status != model.StatusPending {
			rq.Total += g.Duration
		}
		days[k][g.RequestedAt.UTC().Format(time.DateOnly)] = true
		if g.Renewals > 0 {
			rn := renewals[k]
			if rn == nil {
				rn = &RenewalPattern{Principal: k.principal, Role: k.role}
				renewals[k] = rn
			}
			rn.Grants++
			rn.Renewals += g.Renewals
			rn.MostPerGrant = max(rn.MostPerGrant, g.Renewals)
		}
	}
	for k, rq := range requests {
		rq.Days = len(days[k])
		if rq.Requests >= RepeatRequestThreshold {
			r.RepeatRequests = append(r.RepeatRequests, *rq)
		}
	}
	slices.SortFunc(r.RepeatRequests, func(a, b RequestPattern) int {
		return cmp.Or(cmp.Compare(b.Requests, a.Requests), cmp.Compare(a.Principal, b.Principal), cmp.Compare(a.Role, b.Role))
	})
	for _, rn := range renewals {
		r.Renewals = append(r.Renewals, *rn)
	}
	slices.SortFunc(r.Renewals, func(a, b RenewalPattern) int {
		return cmp.Or(cmp.Compare(b.Renewals, a.Renewals), cmp.Compare(a.Principal, b.Principal), cmp.Compare(a.Role, b.Role))
	})

	for _, rn := range r.Renewals {
		if rn.Renewals >= RenewalThreshold || rn.MostPerGrant >= RenewalsPerGrantThreshold {
			r.Findings = append(r.Findings, Finding{Kind: "repeated-renewals", Message: fmt.Sprintf(
				"%s renewed %s %d %s across %d %s (up to %d on one grant): the grants are too short for the work; raise max_duration, or give the work a role of its own",
				rn.Principal, rn.Role, rn.Renewals, plural(rn.Renewals, "time", "times"), rn.Grants, plural(rn.Grants, "grant", "grants"), rn.MostPerGrant)})
		}
	}
	for _, rq := range r.RepeatRequests {
		r.Findings = append(r.Findings, Finding{Kind: "repeated-requests", Message: fmt.Sprintf(
			"%s requested %s %d times on %d %s: the need is routine; a narrower standing role or a temporary grant reviewed in git may fit better",
			rq.Principal, rq.Role, rq.Requests, rq.Days, plural(rq.Days, "day", "days"))})
	}

	uses := map[string]*BreakGlassUse{}
	if in.Set != nil {
		for _, bg := range in.Set.BreakGlass {
			uses[bg.Name] = &BreakGlassUse{Policy: bg.Name, MaxUses: bg.MaxUses, UseWindow: bg.UseWindow}
		}
	}
	for _, inc := range in.Incidents {
		if inc.LastEvent.Before(in.Since) || inc.FirstEvent.After(in.Now) {
			continue
		}
		u := uses[inc.Policy]
		if u == nil {
			u = &BreakGlassUse{Policy: inc.Policy}
			uses[inc.Policy] = u
		}
		u.Incidents++
		if inc.Successes > 0 {
			u.Uses++
		} else {
			u.FailedOnly++
		}
		if inc.Declaration == "" {
			u.Undeclared++
		}
	}
	for _, u := range uses {
		r.BreakGlass = append(r.BreakGlass, *u)
	}
	slices.SortFunc(r.BreakGlass, func(a, b BreakGlassUse) int { return cmp.Compare(a.Policy, b.Policy) })
	period := model.FormatDuration(in.Now.Sub(in.Since).Truncate(time.Hour))
	for _, u := range r.BreakGlass {
		var msg string
		switch {
		case u.MaxUses > 0 && u.Uses > u.MaxUses:
			msg = fmt.Sprintf("break-glass policy %s was used %d times in %s (max_uses %d per %s)", u.Policy, u.Uses, period, u.MaxUses, model.FormatDuration(u.UseWindow))
		case u.Uses >= 2:
			msg = fmt.Sprintf("break-glass policy %s was used %d times in %s", u.Policy, u.Uses, period)
		case u.Undeclared > 0:
			msg = fmt.Sprintf("break-glass policy %s had %d undeclared %s in %s", u.Policy, u.Undeclared, plural(u.Undeclared, "incident", "incidents"), period)
		}
		if msg == "" {
			continue
		}
		if u.Undeclared > 0 {
			msg += fmt.Sprintf(", %d of %d incidents undeclared", u.Undeclared, u.Incidents)
		}
		r.Findings = append(r.Findings, Finding{Kind: "breakglass-frequency", Message: msg +
			": emergencies that recur are a missing jit policy; undeclared ones need a declare-first habit (elevate breakglass declare)"})
	}
	return r
}

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
