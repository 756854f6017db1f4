package breakglass

import (
	"time"

	"github.com/elevatehq/elevate/breakglass/notify"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/state"
)

// DefaultReminderInterval is how often an overdue review is alerted again.
const DefaultReminderInterval = 24 * time.Hour

// ReviewDue returns the review deadline of an incident of bg opened at
// opened: opened plus review_within.
func ReviewDue(bg *policies.BreakGlass, opened time.Time) time.Time {
	return opened.Add(bg.ReviewWithin)
}

// Reminders returns the incident writes that alert about overdue reviews
// at now: every open incident past its review deadline whose last reminder
// is at least interval old (or that has none) gets one more, to the
// notifiers of its policy in set. An incident whose policy is no longer in
// set is still reminded of (the write records it), but has nobody to alert.
// Reminders is a pure function of its input.
func Reminders(now time.Time, set *policies.Set, open []state.Incident, interval time.Duration, decls []state.Declaration) []IncidentWrite {
	if interval <= 0 {
		interval = DefaultReminderInterval
	}
	var out []IncidentWrite
	for _, inc := range open {
		if !Overdue(inc, now) {
			continue
		}
		if !inc.LastReminder.IsZero() && now.Sub(inc.LastReminder) < interval {
			continue
		}
		inc = cloneIncident(inc)
		inc.Reminders++
		inc.LastReminder = now
		w := IncidentWrite{Incident: inc, Action: "remind", Note: "review overdue since " + inc.ReviewDue.UTC().Format(time.RFC3339)}
		var bg *policies.BreakGlass
		if set != nil {
			bg = set.BreakGlassPolicy(inc.Policy)
		}
		w.Alerts = Alerts(bg, BuildAlert(notify.KindReviewOverdue, inc, nil, declarationByID(decls, inc.Declaration), nil, now))
		out = append(out, w)
	}
	return out
}
