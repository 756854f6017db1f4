package breakglass

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/elevatehq/elevate/breakglass/notify"
	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/state"
)

// detectorPolicies: idp-outage alerts two notifiers and allows two uses a
// month; the root user belongs to last-resort.
const detectorPolicies = `
notifier "pager" {
  type       = "webhook"
  url_env    = "PAGER_URL"
  secret_env = "PAGER_SECRET"
}
notifier "sec-slack" {
  type    = "slack"
  url_env = "SLACK_URL"
}
break_glass "idp-outage" {
  description       = "IdP down"
  reasons           = ["identity-provider-outage"]
  accounts          = ["aws:arn:aws:iam::123456789012:user/breakglass-alice", "gcp:user:breakglass-1@example.com"]
  session_recording = true
  review_within     = "24h"
  max_uses          = 2
  use_window        = "30d"
  notify            = ["pager", "sec-slack"]
}
break_glass "last-resort" {
  description       = "Root"
  reasons           = ["incident-severity-critical"]
  accounts          = ["aws:arn:aws:iam::123456789012:root"]
  session_recording = true
  review_within     = "4h"
  notify            = ["pager"]
}
`

func loadSet(t testing.TB, src string) *policies.Set {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.hcl"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	set, diags := policies.Load(dir)
	if diags.HasErrors() {
		t.Fatalf("loading policies: %v", diags)
	}
	return set
}

var aliceAccount = Account{Policy: "idp-outage", Principal: model.MustPrincipal("aws:arn:aws:iam::123456789012:user/breakglass-alice")}

// det is a detection of aliceAccount's console sign-in with event id at t.
func det(id string, at time.Time, success bool) Detected {
	out := OutcomeFailure
	if success {
		out = OutcomeSuccess
	}
	return Detected{Account: aliceAccount, Source: "trail", Where: "f.jsonl: record 1",
		Event: &ActorEvent{Cloud: model.CloudAWS, EventID: id, EventName: "ConsoleLogin", Time: at, SourceIP: "203.0.113.7", Outcome: out}}
}

// ids returns a NewID that counts.
func ids() func() string {
	n := 0
	return func() string { n++; return fmt.Sprintf("inc-%d", n) }
}

// applyWrites stores writes the way the watcher does, in a map standing in
// for the store (the watcher test runs the real store), and returns the
// incidents by ID.
func applyWrites(incs map[string]state.Incident, ws []IncidentWrite) {
	for _, w := range ws {
		inc := w.Incident
		inc.Version++
		incs[inc.ID] = inc
	}
}

func alertKinds(ws []IncidentWrite) []string {
	var out []string
	for _, w := range ws {
		for _, a := range w.Alerts {
			out = append(out, a.Kind+"/"+a.Incident+"->"+a.Notifier)
		}
	}
	return out
}

func values(m map[string]state.Incident) []state.Incident {
	var out []state.Incident
	for _, v := range m {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b state.Incident) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func TestDetectGroupsByAccountAndWindow(t *testing.T) {
	set := loadSet(t, detectorPolicies)
	newID := ids()
	now := t0.Add(time.Minute)
	bg1 := Account{Policy: "idp-outage", Principal: model.MustPrincipal("gcp:user:breakglass-1@example.com")}
	gcp := Detected{Account: bg1, Source: "gcp", Event: &ActorEvent{Cloud: model.CloudGCP, EventID: "g1", EventName: "SetIamPolicy", Time: t0, Outcome: OutcomeSuccess}}
	// Given out of order: sorted by time before grouping.
	ws := Detect(DetectInput{Now: now, Set: set, NewID: newID, Detections: []Detected{
		det("a3", t0.Add(50*time.Minute), true), det("a1", t0, true), gcp, det("a2", t0.Add(10*time.Minute), true),
		det("a4", t0.Add(50*time.Minute+time.Hour+time.Second), true), // more than an hour after a3: a new incident
	}})
	incs := map[string]state.Incident{}
	applyWrites(incs, ws)
	if len(ws) != 3 {
		t.Fatalf("%d writes, want 3 incidents (aliceAccount twice, breakglass-1 once): %+v", len(ws), ws)
	}
	var summary []string
	for _, inc := range values(incs) {
		var evs []string
		for _, e := range inc.Events {
			evs = append(evs, e.ID)
		}
		summary = append(summary, fmt.Sprintf("%s %s %s %s %s", inc.ID, inc.Account, inc.Severity, inc.Status, strings.Join(evs, ",")))
	}
	want := []string{
		"inc-1 aws:arn:aws:iam::123456789012:user/breakglass-alice critical open a1,a2,a3",
		"inc-2 gcp:user:breakglass-1@example.com critical open g1",
		"inc-3 aws:arn:aws:iam::123456789012:user/breakglass-alice critical open a4",
	}
	if !slices.Equal(summary, want) {
		t.Fatalf("incidents:\n%s\nwant:\n%s", strings.Join(summary, "\n"), strings.Join(want, "\n"))
	}
	first := incs["inc-1"]
	if !first.Opened.Equal(now) || !first.ReviewDue.Equal(now.Add(24*time.Hour)) || !first.FirstEvent.Equal(t0) ||
		!first.LastEvent.Equal(t0.Add(50*time.Minute)) || first.EventCount != 3 || first.Successes != 3 || first.Cloud != "aws" {
		t.Fatalf("incident 1: %+v", first)
	}

	// The next batch: a repeat of a2 (a re-read) changes nothing; a5,
	// within the hour after a3, joins incident 1 without a new alert.
	ws = Detect(DetectInput{Now: now.Add(time.Hour), Set: set, NewID: newID, Incidents: values(incs),
		Detections: []Detected{det("a2", t0.Add(10*time.Minute), true)}})
	if len(ws) != 0 {
		t.Fatalf("re-reading a known event wrote %+v", ws)
	}
	ws = Detect(DetectInput{Now: now.Add(time.Hour), Set: set, NewID: newID, Incidents: values(incs),
		Detections: []Detected{det("a5", t0.Add(55*time.Minute), true), det("a2", t0.Add(10*time.Minute), true)}})
	if len(ws) != 1 || ws[0].Create || ws[0].Incident.ID != "inc-1" || ws[0].Incident.EventCount != 4 || len(ws[0].Alerts) != 0 {
		t.Fatalf("a later event of the same episode: %+v", ws)
	}
	if ws[0].Incident.Version != incs["inc-1"].Version {
		t.Fatalf("the update carries version %d, want the stored %d", ws[0].Incident.Version, incs["inc-1"].Version)
	}
	// A reviewed incident takes no more events: a new one opens.
	reviewed := incs["inc-1"]
	reviewed.Status, reviewed.ReviewedBy, reviewed.ReviewedAt = state.IncidentReviewed, "user:sec@example.com", now
	incs["inc-1"] = reviewed
	ws = Detect(DetectInput{Now: now.Add(time.Hour), Set: set, NewID: newID, Incidents: values(incs),
		Detections: []Detected{det("a6", t0.Add(40*time.Minute), true)}})
	if len(ws) != 1 || !ws[0].Create || ws[0].Incident.ID != "inc-4" {
		t.Fatalf("an event after the review: %+v", ws)
	}
}

func TestDetectDeclaredAndUndeclared(t *testing.T) {
	set := loadSet(t, detectorPolicies)
	decl := state.Declaration{ID: "dcl-1", Policy: "idp-outage", Reason: "identity-provider-outage", Incident: "INC-7",
		DeclaredBy: "user:oncall@example.com", At: t0, Expires: t0.Add(4 * time.Hour)}
	other := state.Declaration{ID: "dcl-2", Policy: "last-resort", Reason: "incident-severity-critical",
		DeclaredBy: "user:oncall@example.com", At: t0.Add(-time.Hour), Expires: t0.Add(8 * time.Hour)}
	ws := Detect(DetectInput{Now: t0.Add(5 * time.Hour), Set: set, NewID: ids(), Declarations: []state.Declaration{decl, other},
		Detections: []Detected{
			det("before", t0.Add(-10*time.Minute), true), // before the declaration (and its leeway): undeclared
			det("leeway", t0.Add(-time.Minute), true),    // within the clock-skew leeway: declared
			det("during", t0.Add(30*time.Minute), true),  // declared
			det("after", t0.Add(4*time.Hour), true),      // the declaration has expired: undeclared
			det("later", t0.Add(4*time.Hour+time.Minute), false),
		}})
	got := map[string]string{}
	for _, w := range ws {
		for _, e := range w.Incident.Events {
			got[e.ID] = w.Incident.ID + " " + w.Incident.Severity + " " + w.Incident.Declaration
		}
	}
	want := map[string]string{
		"before": "inc-1 critical ",
		"leeway": "inc-2 warning dcl-1",
		"during": "inc-2 warning dcl-1",
		"after":  "inc-3 critical ", // hours after "before": another episode
		"later":  "inc-3 critical ",
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("event %s went to %q, want %q", id, got[id], w)
		}
	}
	// Declared and undeclared incidents both alert, with their severity,
	// and the declared one carries the declaration.
	// The third incident is also the third use within 30 days.
	if got := alertKinds(ws); !slices.Contains(got, "use-limit-exceeded/inc-3->pager") || len(got) != 8 {
		t.Fatalf("alerts %v: want incident-opened for each incident and each notifier, and use-limit-exceeded for inc-3", got)
	}
	for _, w := range ws {
		var a notify.Alert
		if err := json.Unmarshal(w.Alerts[0].Payload, &a); err != nil {
			t.Fatal(err)
		}
		if a.Severity != w.Incident.Severity || a.Incident.Declared != (w.Incident.Declaration != "") {
			t.Errorf("alert of %s: severity %s declared %v", w.Incident.ID, a.Severity, a.Incident.Declared)
		}
		if w.Incident.Declaration != "" && (a.Declaration == nil || a.Declaration.DeclaredBy != "user:oncall@example.com" || !strings.HasPrefix(a.Summary, "Declared break-glass use")) {
			t.Errorf("declared alert %+v", a)
		}
		if w.Incident.Declaration == "" && !strings.HasPrefix(a.Summary, "Undeclared break-glass use") {
			t.Errorf("undeclared alert summary %q", a.Summary)
		}
	}
}

func TestDetectFailuresAndEscalation(t *testing.T) {
	set := loadSet(t, detectorPolicies)
	newID := ids()
	incs := map[string]state.Incident{}
	ws := Detect(DetectInput{Now: t0, Set: set, NewID: newID, Detections: []Detected{det("f1", t0, false), det("f2", t0.Add(time.Minute), false)}})
	applyWrites(incs, ws)
	if len(ws) != 1 || ws[0].Incident.Failures != 2 || ws[0].Incident.Successes != 0 || ws[0].Incident.Severity != state.SeverityCritical {
		t.Fatalf("failed sign-ins: %+v", ws)
	}
	if got := alertKinds(ws); !slices.Equal(got, []string{"incident-opened/inc-1->pager", "incident-opened/inc-1->sec-slack"}) {
		t.Fatalf("alerts %v", got)
	}
	var a notify.Alert
	json.Unmarshal(ws[0].Alerts[0].Payload, &a)
	if !strings.Contains(a.Summary, "sign-in attempt failed") || a.Event == nil || a.Event.Outcome != "failure" || a.Event.ID != "f1" {
		t.Fatalf("failure alert %+v", a)
	}
	// Then the guess works: the incident escalates, once.
	ws = Detect(DetectInput{Now: t0.Add(3 * time.Minute), Set: set, NewID: newID, Incidents: values(incs),
		Detections: []Detected{det("s1", t0.Add(2*time.Minute), true), det("s2", t0.Add(3*time.Minute), true)}})
	applyWrites(incs, ws)
	if got := alertKinds(ws); !slices.Equal(got, []string{"incident-escalated/inc-1->pager", "incident-escalated/inc-1->sec-slack"}) {
		t.Fatalf("alerts after the first success: %v", got)
	}
	json.Unmarshal(ws[0].Alerts[0].Payload, &a)
	if a.Event.ID != "s1" || !strings.Contains(a.Summary, "after 2 failed attempts") || a.ID != "incident-escalated/inc-1" {
		t.Fatalf("escalation alert %+v", a)
	}
	ws = Detect(DetectInput{Now: t0.Add(4 * time.Minute), Set: set, NewID: newID, Incidents: values(incs),
		Detections: []Detected{det("s3", t0.Add(4*time.Minute), true)}})
	if got := alertKinds(ws); len(got) != 0 {
		t.Fatalf("a later success alerted again: %v", got)
	}
}

func TestDetectUseLimit(t *testing.T) {
	set := loadSet(t, detectorPolicies)
	newID := ids()
	incs := map[string]state.Incident{}
	day := 24 * time.Hour
	// Uses on day 0 and day 10 are within max_uses = 2; failures only on
	// day 15 are not a use; the use on day 20 is the third in 30 days.
	steps := []struct {
		det  Detected
		want []string
	}{
		{det("u1", t0, true), []string{"incident-opened"}},
		{det("u2", t0.Add(10*day), true), []string{"incident-opened"}},
		{det("f1", t0.Add(15*day), false), []string{"incident-opened"}},
		{det("u3", t0.Add(20*day), true), []string{"incident-opened", "use-limit-exceeded"}},
		// Day 35: day 0 has left the window, days 10 and 20 remain: a
		// third use again.
		{det("u4", t0.Add(35*day), true), []string{"incident-opened", "use-limit-exceeded"}},
		// Day 61: only day 35 is within 30 days.
		{det("u5", t0.Add(61*day), true), []string{"incident-opened"}},
	}
	for _, s := range steps {
		ws := Detect(DetectInput{Now: s.det.Event.Time, Set: set, NewID: newID, Incidents: values(incs), Detections: []Detected{s.det}})
		applyWrites(incs, ws)
		var kinds []string
		for _, a := range ws[0].Alerts {
			if a.Notifier == "pager" {
				kinds = append(kinds, a.Kind)
			}
		}
		if !slices.Equal(kinds, s.want) {
			t.Fatalf("event %s: alerts %v, want %v", s.det.Event.EventID, kinds, s.want)
		}
		if slices.Contains(kinds, "use-limit-exceeded") {
			var a notify.Alert
			for _, al := range ws[0].Alerts {
				if al.Kind == "use-limit-exceeded" {
					json.Unmarshal(al.Payload, &a)
				}
			}
			if a.Uses == nil || a.Uses.Count != 3 || a.Uses.MaxUses != 2 || a.Uses.Window != "30d" || !strings.Contains(a.Summary, "needs work") {
				t.Fatalf("use-limit alert %+v", a)
			}
		}
	}
}

func TestDetectUnknownPolicyAndNoTime(t *testing.T) {
	set := loadSet(t, detectorPolicies)
	gone := det("x", t0, true)
	gone.Account.Policy = "removed"
	noTime := det("y", time.Time{}, true)
	ws := Detect(DetectInput{Now: t0.Add(time.Hour), Set: set, NewID: ids(), Detections: []Detected{gone, noTime}})
	if len(ws) != 1 || ws[0].Incident.Policy != "idp-outage" || !ws[0].Incident.FirstEvent.Equal(t0.Add(time.Hour)) {
		t.Fatalf("writes %+v: want one incident, its time the detection time", ws)
	}
}

func TestRemindersOnAFakeClock(t *testing.T) {
	set := loadSet(t, detectorPolicies)
	clock := newFakeClock(t0)
	incs := map[string]state.Incident{}
	applyWrites(incs, Detect(DetectInput{Now: clock.Now(), Set: set, NewID: ids(), Detections: []Detected{det("a", t0, true)}}))
	inc := incs["inc-1"]
	if !inc.ReviewDue.Equal(t0.Add(24 * time.Hour)) {
		t.Fatalf("review due %s, want opened + 24h", inc.ReviewDue)
	}
	remind := func() []IncidentWrite {
		ws := Reminders(clock.Now(), set, values(incs), 6*time.Hour, nil)
		applyWrites(incs, ws)
		return ws
	}
	clock.Advance(24*time.Hour - time.Second)
	if ws := remind(); len(ws) != 0 {
		t.Fatalf("reminded before the deadline: %+v", ws)
	}
	clock.Advance(time.Second)
	ws := remind()
	if got := alertKinds(ws); !slices.Equal(got, []string{"review-overdue/inc-1->pager", "review-overdue/inc-1->sec-slack"}) {
		t.Fatalf("at the deadline: %v", got)
	}
	if ws[0].Alerts[0].Key != "review-overdue/inc-1/1" || ws[0].Incident.Reminders != 1 || !ws[0].Incident.LastReminder.Equal(clock.Now()) {
		t.Fatalf("first reminder %+v", ws[0])
	}
	clock.Advance(5 * time.Hour)
	if ws := remind(); len(ws) != 0 {
		t.Fatalf("reminded again within the interval: %+v", ws)
	}
	clock.Advance(time.Hour)
	ws = remind()
	if len(ws) != 1 || ws[0].Alerts[0].Key != "review-overdue/inc-1/2" {
		t.Fatalf("second reminder %+v", ws)
	}
	// Reviewed: no more reminders.
	r := incs["inc-1"]
	r.Status, r.ReviewedBy, r.ReviewedAt = state.IncidentReviewed, "user:sec@example.com", clock.Now()
	incs["inc-1"] = r
	clock.Advance(48 * time.Hour)
	if ws := remind(); len(ws) != 0 {
		t.Fatalf("reminded of a reviewed incident: %+v", ws)
	}
}
