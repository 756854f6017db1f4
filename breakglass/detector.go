package breakglass

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/elevatehq/elevate/breakglass/notify"
	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/state"
)

// DefaultGroupWindow is how far apart two events of one account may be and
// still belong to one incident.
const DefaultGroupWindow = time.Hour

// DetectorActor is the actor of the incident writes the detector makes, in
// incident history and the audit log.
const DetectorActor = "elevate:breakglass"

// Detected is one event of a break-glass account, as an audit source
// delivered it.
type Detected struct {
	Account Account
	Event   *ActorEvent
	// Source names the audit source; Where is the record's place in it.
	Source string
	Where  string
}

// DetectInput is everything Detect decides from. The caller loads the
// incidents and declarations of the detections' policies from the store.
type DetectInput struct {
	Now time.Time
	Set *policies.Set
	// Detections may come in any order.
	Detections []Detected
	// Incidents are the stored incidents of the detections' policies whose
	// events fall within GroupWindow of the detections, or within the
	// policies' use windows: open ones take new events; every one says
	// which events are already known and how often the accounts were used.
	Incidents []state.Incident
	// Declarations of the detections' policies that cover any of their
	// event times.
	Declarations []state.Declaration
	// GroupWindow defaults to DefaultGroupWindow.
	GroupWindow time.Duration
	// NewID returns a new incident ID.
	NewID func() string
}

// IncidentWrite is one incident to store, with the alerts to queue in the
// same transaction.
type IncidentWrite struct {
	Incident state.Incident
	// Create is set for a new incident; otherwise Incident carries the
	// version it was read at.
	Create bool
	// Action and Note describe the write for the incident's audit entry.
	Action string
	Note   string
	Alerts []state.Alert
}

// Change returns the write's state.Change.
func (w IncidentWrite) Change() state.Change {
	return state.Change{Actor: DetectorActor, Action: w.Action, Note: w.Note}
}

// detectWork is an incident Detect is building.
type detectWork struct {
	inc      state.Incident
	create   bool
	added    int
	firstNew *state.IncidentEvent // first event added by this run
	// escalatedBy is the first success of an incident that had only
	// failures.
	escalatedBy *state.IncidentEvent
	// usedAt is set when the incident became a use (its first success) in
	// this run.
	usedAt  time.Time
	overUse *notify.Uses
}

// Detect turns detections into incident writes: it groups the events of
// one account of one policy that are at most GroupWindow apart into one
// incident; events covered by a declaration of the policy go to a declared
// incident (severity warning), the others to an undeclared one (severity
// critical). Failed sign-ins are events too. Events already recorded in an
// incident are skipped, so reading a record twice changes nothing.
//
// Alerts: a new incident raises incident-opened; an incident whose events
// so far were all failures raises incident-escalated at its first
// success; and an incident that becomes a use (its first success) beyond
// the policy's max_uses within use_window raises use-limit-exceeded. Each
// alert goes to every notifier of the policy, with a key that makes raising
// it again harmless.
//
// Detect is a pure function of its input.
func Detect(in DetectInput) []IncidentWrite {
	window := in.GroupWindow
	if window <= 0 {
		window = DefaultGroupWindow
	}
	dets := slices.Clone(in.Detections)
	slices.SortStableFunc(dets, func(a, b Detected) int {
		return cmp.Or(eventTime(a.Event, in.Now).Compare(eventTime(b.Event, in.Now)), cmp.Compare(EventKey(a.Event), EventKey(b.Event)))
	})

	// Events already known, per policy and account.
	seen := map[string]map[string]bool{}
	known := func(policy, account string) map[string]bool {
		k := policy + "\x00" + account
		if seen[k] == nil {
			seen[k] = map[string]bool{}
		}
		return seen[k]
	}
	var work []*detectWork
	for _, inc := range in.Incidents {
		ks := known(inc.Policy, inc.Account)
		for _, e := range inc.Events {
			ks[e.Key] = true
		}
		if inc.Status == state.IncidentOpen {
			work = append(work, &detectWork{inc: cloneIncident(inc)})
		}
	}

	for _, d := range dets {
		bg := in.Set.BreakGlassPolicy(d.Account.Policy)
		if bg == nil {
			continue
		}
		account := d.Account.Principal.String()
		key := EventKey(d.Event)
		ks := known(bg.Name, account)
		if ks[key] {
			continue
		}
		ks[key] = true
		t := eventTime(d.Event, in.Now)
		decl := covering(in.Declarations, bg.Name, t)
		w := findIncident(work, bg.Name, account, decl, t, window)
		if w == nil {
			w = &detectWork{create: true, inc: state.Incident{
				ID: in.NewID(), Policy: bg.Name, Account: account, Cloud: string(d.Event.Cloud),
				Declaration: decl, Severity: severityOf(decl), Status: state.IncidentOpen,
				Opened: in.Now, FirstEvent: t, LastEvent: t, ReviewDue: in.Now.Add(bg.ReviewWithin),
			}}
			work = append(work, w)
		}
		ev := state.IncidentEvent{Key: key, ID: d.Event.EventID, Name: d.Event.EventName, Time: t, SourceIP: d.Event.SourceIP,
			Outcome: string(d.Event.Outcome), Source: d.Source, Where: d.Where}
		wasUse := w.inc.Successes > 0
		addEvent(&w.inc, ev)
		w.added++
		if w.firstNew == nil {
			w.firstNew = &ev
		}
		if ev.Outcome == string(OutcomeSuccess) && !wasUse {
			if !w.create && w.inc.Failures > 0 && w.escalatedBy == nil {
				w.escalatedBy = &ev
			}
			w.usedAt = t
			w.overUse = overUse(bg, w, work, in.Incidents, t)
		}
	}

	var out []IncidentWrite
	for _, w := range work {
		if w.added == 0 {
			continue
		}
		bg := in.Set.BreakGlassPolicy(w.inc.Policy)
		decl := declarationByID(in.Declarations, w.inc.Declaration)
		iw := IncidentWrite{Incident: w.inc, Create: w.create, Action: "event",
			Note: fmt.Sprintf("%d new %s", w.added, plural(w.added, "event", "events"))}
		if w.create {
			iw.Action = "open"
			iw.Alerts = append(iw.Alerts, Alerts(bg, BuildAlert(notify.KindIncidentOpened, w.inc, w.firstNew, decl, nil, in.Now))...)
		}
		if w.escalatedBy != nil {
			iw.Alerts = append(iw.Alerts, Alerts(bg, BuildAlert(notify.KindIncidentEscalated, w.inc, w.escalatedBy, decl, nil, in.Now))...)
		}
		if w.overUse != nil {
			iw.Alerts = append(iw.Alerts, Alerts(bg, BuildAlert(notify.KindUseLimitExceeded, w.inc, w.firstNew, decl, w.overUse, in.Now))...)
		}
		out = append(out, iw)
	}
	return out
}

// eventTime is the event's time, or now when the record had none.
func eventTime(ev *ActorEvent, now time.Time) time.Time {
	if ev.Time.IsZero() {
		return now.UTC()
	}
	return ev.Time.UTC()
}

func severityOf(declaration string) string {
	if declaration == "" {
		return state.SeverityCritical
	}
	return state.SeverityWarning
}

// covering returns the ID of the declaration of policy covering t (the
// latest made, when several do), or "".
func covering(decls []state.Declaration, policy string, t time.Time) string {
	var best *state.Declaration
	for i := range decls {
		d := &decls[i]
		if d.Policy != policy || !d.Covers(t) {
			continue
		}
		if best == nil || d.At.After(best.At) || d.At.Equal(best.At) && d.ID > best.ID {
			best = d
		}
	}
	if best == nil {
		return ""
	}
	return best.ID
}

func declarationByID(decls []state.Declaration, id string) *state.Declaration {
	for i := range decls {
		if decls[i].ID == id && id != "" {
			return &decls[i]
		}
	}
	return nil
}

// findIncident returns the open incident of policy, account and
// declaration whose events are within window of t.
func findIncident(work []*detectWork, policy, account, decl string, t time.Time, window time.Duration) *detectWork {
	for _, w := range work {
		inc := &w.inc
		if inc.Status != state.IncidentOpen || inc.Policy != policy || inc.Account != account || inc.Declaration != decl {
			continue
		}
		if !t.Before(inc.FirstEvent.Add(-window)) && !t.After(inc.LastEvent.Add(window)) {
			return w
		}
	}
	return nil
}

// addEvent records ev in inc.
func addEvent(inc *state.Incident, ev state.IncidentEvent) {
	inc.EventCount++
	if ev.Outcome == string(OutcomeSuccess) {
		inc.Successes++
	} else {
		inc.Failures++
	}
	if inc.FirstEvent.IsZero() || ev.Time.Before(inc.FirstEvent) {
		inc.FirstEvent = ev.Time
	}
	if ev.Time.After(inc.LastEvent) {
		inc.LastEvent = ev.Time
	}
	if len(inc.Events) < state.MaxIncidentEvents {
		i, _ := slices.BinarySearchFunc(inc.Events, ev, func(a, b state.IncidentEvent) int {
			return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.Key, b.Key))
		})
		inc.Events = slices.Insert(inc.Events, i, ev)
	}
}

// overUse counts the uses of bg's accounts in the use window ending at t,
// the incident of w included, and returns them when they exceed max_uses.
// A use is an incident with a successful event; it is counted at its first
// event.
func overUse(bg *policies.BreakGlass, w *detectWork, work []*detectWork, stored []state.Incident, t time.Time) *notify.Uses {
	if bg.MaxUses <= 0 || bg.UseWindow <= 0 {
		return nil
	}
	from := t.Add(-bg.UseWindow)
	ids := map[string]bool{w.inc.ID: true}
	n := 1
	count := func(inc *state.Incident) {
		if ids[inc.ID] || inc.Policy != bg.Name || inc.Successes == 0 || !inc.FirstEvent.After(from) || inc.FirstEvent.After(t) {
			return
		}
		ids[inc.ID] = true
		n++
	}
	for _, x := range work {
		count(&x.inc)
	}
	for i := range stored {
		count(&stored[i])
	}
	if n <= bg.MaxUses {
		return nil
	}
	return &notify.Uses{Count: n, MaxUses: bg.MaxUses, Window: model.FormatDuration(bg.UseWindow)}
}

func cloneIncident(inc state.Incident) state.Incident {
	inc.Events = slices.Clone(inc.Events)
	return inc
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// AlertKey is the idempotency key of an alert: the kind and the incident,
// and for repeated kinds the repetition.
func AlertKey(kind, incident string, n int) string {
	if n > 0 {
		return fmt.Sprintf("%s/%s/%d", kind, incident, n)
	}
	return kind + "/" + incident
}

// BuildAlert builds the alert of kind about inc: trigger is the event
// that raised it (nil for reminders), decl the covering declaration, uses
// the use count of a use-limit alert.
func BuildAlert(kind string, inc state.Incident, trigger *state.IncidentEvent, decl *state.Declaration, uses *notify.Uses, now time.Time) notify.Alert {
	n := 0
	if kind == notify.KindReviewOverdue {
		n = inc.Reminders
	}
	a := notify.Alert{
		Version: notify.AlertVersion, ID: AlertKey(kind, inc.ID, n), Kind: kind, Severity: inc.Severity,
		Time: now.UTC(), Policy: inc.Policy, Account: inc.Account, Cloud: inc.Cloud, Uses: uses,
		Incident: &notify.Incident{ID: inc.ID, Status: string(inc.Status), Declared: inc.Declaration != "", Opened: inc.Opened,
			FirstEvent: inc.FirstEvent, LastEvent: inc.LastEvent, ReviewDue: inc.ReviewDue, EventCount: inc.EventCount,
			Successes: inc.Successes, Failures: inc.Failures, Reminders: inc.Reminders},
	}
	if trigger != nil {
		a.Event = &notify.Event{ID: trigger.ID, Name: trigger.Name, Time: trigger.Time, SourceIP: trigger.SourceIP,
			Outcome: trigger.Outcome, Source: trigger.Source, Where: trigger.Where}
	}
	if decl != nil {
		a.Declaration = &notify.Declaration{ID: decl.ID, Reason: decl.Reason, Incident: decl.Incident, DeclaredBy: decl.DeclaredBy,
			At: decl.At, Expires: decl.Expires}
	}
	from := ""
	if trigger != nil && trigger.SourceIP != "" {
		from = " from " + trigger.SourceIP
	}
	what := "used"
	if trigger != nil && trigger.Name != "" {
		what = trigger.Name
	}
	review := "elevate incidents review " + inc.ID + " --notes TEXT"
	switch kind {
	case notify.KindIncidentOpened:
		switch {
		case decl != nil:
			a.Summary = fmt.Sprintf("Declared break-glass use: %s (policy %s) %s%s; declared by %s: %s", inc.Account, inc.Policy, what, from, decl.DeclaredBy, decl.Reason)
			a.Actions = []string{review + " (within " + untilText(inc.ReviewDue, now) + ")"}
		case trigger != nil && trigger.Outcome == string(OutcomeFailure):
			a.Summary = fmt.Sprintf("Undeclared break-glass sign-in attempt failed: %s (policy %s) %s%s; someone has, or is guessing, its credentials", inc.Account, inc.Policy, what, from)
			a.Actions = []string{"find out who tried; if nobody owns up, rotate the account's credentials", review}
		default:
			a.Summary = fmt.Sprintf("Undeclared break-glass use: %s (policy %s) %s%s; nobody declared an emergency", inc.Account, inc.Policy, what, from)
			a.Actions = []string{"confirm with the account's custodians that this is a real emergency; if not, disable the account and rotate its credentials",
				"for the next emergency, declare first: elevate breakglass declare --policy " + inc.Policy + " --reason REASON", review}
		}
	case notify.KindIncidentEscalated:
		a.Summary = fmt.Sprintf("Break-glass account %s (policy %s) signed in successfully%s after %d failed %s", inc.Account, inc.Policy, from, inc.Failures, plural(inc.Failures, "attempt", "attempts"))
		a.Actions = []string{"confirm the sign-in is the emergency's; if not, disable the account and rotate its credentials", review}
	case notify.KindReviewOverdue:
		a.Summary = fmt.Sprintf("The post-incident review of break-glass incident %s (%s, policy %s) was due %s and is not filed", inc.ID, inc.Account, inc.Policy, inc.ReviewDue.UTC().Format(time.RFC3339))
		a.Actions = []string{review}
	case notify.KindUseLimitExceeded:
		a.Summary = fmt.Sprintf("Break-glass policy %s was used %d times within %s (max_uses %d): the normal access model needs work so that emergencies stop being routine", inc.Policy, uses.Count, uses.Window, uses.MaxUses)
		a.Actions = []string{"elevate report --since " + uses.Window, "give the recurring need a jit policy instead of the break-glass accounts"}
	}
	return a
}

// untilText says how long from now until t, in policy duration syntax.
func untilText(t, now time.Time) string {
	d := t.Sub(now).Truncate(time.Second)
	if d <= 0 {
		return "0s"
	}
	return model.FormatDuration(d)
}

// Alerts queues a for every notifier of bg.
func Alerts(bg *policies.BreakGlass, a notify.Alert) []state.Alert {
	if bg == nil {
		return nil
	}
	payload, err := json.Marshal(a)
	if err != nil {
		return nil // an Alert always encodes
	}
	out := make([]state.Alert, 0, len(bg.Notify))
	for _, n := range bg.Notify {
		if slices.ContainsFunc(out, func(x state.Alert) bool { return x.Notifier == n.Name }) {
			continue
		}
		out = append(out, state.Alert{Key: a.ID, Notifier: n.Name, Incident: a.Incident.ID, Kind: a.Kind, Payload: payload})
	}
	return out
}

// Overdue reports whether inc's review is past its deadline at now.
func Overdue(inc state.Incident, now time.Time) bool {
	return inc.Status == state.IncidentOpen && !inc.ReviewDue.IsZero() && !now.Before(inc.ReviewDue)
}
