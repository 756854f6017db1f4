package breakglass

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/elevatehq/elevate/breakglass/notify"
	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/state"
)

// SourceInfo is a configured audit source, as `breakglass check` sees it.
type SourceInfo struct {
	Name   string
	Type   string
	Format string
	Cloud  model.Cloud
	Poll   time.Duration
}

// minStaleAfter is the least lag at which a source counts as unhealthy,
// whatever its poll interval: status is stored every few seconds only.
const minStaleAfter = 30 * time.Second

// StaleAfter is how long a source may go without catching up before it
// counts as unhealthy: five polls, and at least 30 s.
func (s SourceInfo) StaleAfter() time.Duration {
	return max(5*s.Poll, minStaleAfter)
}

// CheckInput is what Check decides from.
type CheckInput struct {
	Now     time.Time
	Set     *policies.Set
	Sources []SourceInfo
	Status  []state.SourceStatus
	// Incidents are the open incidents and those with events within the
	// policies' use windows.
	Incidents []state.Incident
	// Alerts are the pending and failed alerts.
	Alerts []state.Alert
	// Getenv, when set, is used to check that every notifier the
	// break_glass policies name can be built (its environment variables are
	// set).
	Getenv func(string) string
}

// CheckReport is the readiness of break-glass detection.
type CheckReport struct {
	Ready          bool
	Problems       []string
	Accounts       []AccountCheck
	Sources        []SourceCheck
	Notifiers      []NotifierCheck
	OverdueReviews []state.Incident
	Uses           []UseCheck
	Alerts         []state.Alert
}

// AccountCheck says whether an account is watched.
type AccountCheck struct {
	Policy  string
	Account string
	Clouds  []model.Cloud
	// Sources are the configured sources that can see the account;
	// Healthy those of them that are healthy.
	Sources []string
	Healthy []string
	Covered bool
	Problem string
}

// SourceCheck is the health of one source.
type SourceCheck struct {
	SourceInfo
	Healthy   bool
	LastPoll  time.Time
	CaughtUp  time.Time
	LastEvent time.Time
	// Lag is how long ago the source last had nothing left to read.
	Lag     time.Duration
	Error   string
	Problem string
}

// NotifierCheck says whether a notifier can be used.
type NotifierCheck struct {
	Name    string
	Type    string
	OK      bool
	Problem string
}

// UseCheck counts a policy's uses in its use window.
type UseCheck struct {
	Policy   string
	Uses     int
	MaxUses  int
	Window   time.Duration
	Exceeded bool
}

// Check reports whether break-glass detection is ready: every account is
// watched by a healthy audit source (one that reads its cloud's logs and is
// not lagging or failing), no review is overdue, no policy is over its
// max_uses, every notifier can be used and no alert is stuck. It is a pure
// function of its input.
func Check(in CheckInput) CheckReport {
	var r CheckReport
	status := map[string]state.SourceStatus{}
	for _, st := range in.Status {
		status[st.Name] = st
	}
	healthy := map[string]bool{}
	for _, src := range in.Sources {
		sc := SourceCheck{SourceInfo: src}
		st, ok := status[src.Name]
		switch {
		case !ok:
			sc.Problem = fmt.Sprintf("audit source %s has never been read: no replica runs the watchers yet, or it has just started", src.Name)
		default:
			sc.LastPoll, sc.CaughtUp, sc.LastEvent, sc.Error = st.LastPoll, st.CaughtUp, st.LastEvent, st.Error
			if !st.CaughtUp.IsZero() {
				sc.Lag = max(in.Now.Sub(st.CaughtUp), 0)
			}
			switch {
			case st.Error != "":
				sc.Problem = fmt.Sprintf("audit source %s fails: %s", src.Name, st.Error)
			case st.CaughtUp.IsZero():
				sc.Problem = fmt.Sprintf("audit source %s has not caught up with its logs yet", src.Name)
			case sc.Lag > src.StaleAfter():
				sc.Problem = fmt.Sprintf("audit source %s is %s behind (it should catch up every %s): is the daemon's leader running?",
					src.Name, roundDuration(sc.Lag), src.Poll)
			}
		}
		sc.Healthy = sc.Problem == ""
		healthy[src.Name] = sc.Healthy
		if !sc.Healthy {
			r.Problems = append(r.Problems, sc.Problem)
		}
		r.Sources = append(r.Sources, sc)
	}

	if in.Set != nil {
		for _, bg := range in.Set.BreakGlass {
			for _, ref := range bg.Accounts {
				ac := AccountCheck{Policy: bg.Name, Account: ref.Principal.String()}
				clouds, reason := accountClouds(ref.Principal)
				ac.Clouds = clouds
				for _, src := range in.Sources {
					if slices.Contains(clouds, src.Cloud) {
						ac.Sources = append(ac.Sources, src.Name)
						if healthy[src.Name] {
							ac.Healthy = append(ac.Healthy, src.Name)
						}
					}
				}
				ac.Covered = len(ac.Healthy) > 0
				switch {
				case reason != "":
					ac.Problem = fmt.Sprintf("account %s of %s cannot be watched: %s", ac.Account, bg.Name, reason)
				case len(ac.Sources) == 0:
					ac.Problem = fmt.Sprintf("account %s of %s is not watched: no audit source reads %s logs (add an audit_source with format %s)",
						ac.Account, bg.Name, cloudList(clouds), formatsFor(clouds))
				case !ac.Covered:
					ac.Problem = fmt.Sprintf("account %s of %s is not watched: its audit sources (%s) are unhealthy",
						ac.Account, bg.Name, strings.Join(ac.Sources, ", "))
				}
				if ac.Problem != "" {
					ac.Covered = false
					r.Problems = append(r.Problems, ac.Problem)
				}
				r.Accounts = append(r.Accounts, ac)
			}
			if bg.MaxUses > 0 && bg.UseWindow > 0 {
				uc := UseCheck{Policy: bg.Name, MaxUses: bg.MaxUses, Window: bg.UseWindow}
				from := in.Now.Add(-bg.UseWindow)
				for _, inc := range in.Incidents {
					if inc.Policy == bg.Name && inc.Successes > 0 && inc.FirstEvent.After(from) && !inc.FirstEvent.After(in.Now) {
						uc.Uses++
					}
				}
				uc.Exceeded = uc.Uses > uc.MaxUses
				if uc.Exceeded {
					r.Problems = append(r.Problems, fmt.Sprintf("break-glass policy %s was used %d times in the last %s, more than its max_uses of %d: give the recurring need a jit policy (elevate report)",
						bg.Name, uc.Uses, model.FormatDuration(bg.UseWindow), uc.MaxUses))
				}
				r.Uses = append(r.Uses, uc)
			}
		}
		if in.Getenv != nil {
			var names []string
			for _, bg := range in.Set.BreakGlass {
				for _, n := range bg.Notify {
					if !slices.Contains(names, n.Name) {
						names = append(names, n.Name)
					}
				}
			}
			for _, name := range names {
				nc := NotifierCheck{Name: name, OK: true}
				n := in.Set.Notifier(name)
				if n == nil {
					nc.OK, nc.Problem = false, fmt.Sprintf("notifier %q is not defined: add a notifier block", name)
				} else {
					nc.Type = n.Type
					if _, err := notify.New(n, in.Getenv, notify.Options{}); err != nil {
						nc.OK, nc.Problem = false, err.Error()
					}
				}
				if !nc.OK {
					r.Problems = append(r.Problems, nc.Problem)
				}
				r.Notifiers = append(r.Notifiers, nc)
			}
		}
	}

	for _, inc := range in.Incidents {
		if Overdue(inc, in.Now) {
			r.OverdueReviews = append(r.OverdueReviews, inc)
			r.Problems = append(r.Problems, fmt.Sprintf("the review of incident %s (%s, policy %s) was due %s: elevate incidents review %s --notes TEXT",
				inc.ID, inc.Account, inc.Policy, inc.ReviewDue.UTC().Format(time.RFC3339), inc.ID))
		}
	}
	for _, a := range in.Alerts {
		switch {
		case a.Status == state.AlertFailed:
			r.Alerts = append(r.Alerts, a)
			r.Problems = append(r.Problems, fmt.Sprintf("alert %s was never delivered to notifier %s (gave up after %d attempts): %s", a.Key, a.Notifier, a.Attempts, a.LastError))
		case a.Status == state.AlertPending && a.Attempts > 0:
			r.Alerts = append(r.Alerts, a)
			r.Problems = append(r.Problems, fmt.Sprintf("alert %s is not delivered to notifier %s yet (%d failed attempts): %s", a.Key, a.Notifier, a.Attempts, a.LastError))
		}
	}
	r.Ready = len(r.Problems) == 0
	return r
}

// accountClouds returns the clouds whose audit logs can name p, or why
// none can.
func accountClouds(p model.Principal) ([]model.Cloud, string) {
	keys, reason := accountKeys(p)
	var out []model.Cloud
	for _, k := range keys {
		if !slices.Contains(out, k.cloud) {
			out = append(out, k.cloud)
		}
	}
	return out, reason
}

func cloudList(clouds []model.Cloud) string {
	names := make([]string, len(clouds))
	for i, c := range clouds {
		names[i] = string(c)
	}
	return strings.Join(names, " or ")
}

// formatsFor names the log formats that carry the clouds' identities.
func formatsFor(clouds []model.Cloud) string {
	var out []string
	for _, src := range Sources {
		if slices.Contains(clouds, src.Cloud()) {
			out = append(out, string(src))
		}
	}
	return strings.Join(out, " or ")
}

// roundDuration renders d to the second, for messages.
func roundDuration(d time.Duration) string {
	return d.Round(time.Second).String()
}
