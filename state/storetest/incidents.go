package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/elevatehq/elevate/state"
)

const (
	bgAccount = "aws:arn:aws:iam::123456789012:user/breakglass-alice"
	detector  = "elevate:breakglass"
)

// newIncident is an open, undeclared incident of one successful sign-in at at.
func newIncident(id string, at time.Time) state.Incident {
	return state.Incident{
		ID: id, Policy: "idp-outage", Account: bgAccount, Cloud: "aws",
		Severity: state.SeverityCritical, Status: state.IncidentOpen,
		Opened: at, FirstEvent: at, LastEvent: at, ReviewDue: at.Add(24 * time.Hour),
		EventCount: 1, Successes: 1,
		Events: []state.IncidentEvent{{Key: "ev-1", ID: "ev-1", Name: "ConsoleLogin", Time: at, SourceIP: "203.0.113.7",
			Outcome: "success", Source: "trail", Where: "a.json: record 1 (line 1, byte 0)"}},
	}
}

func alertFor(key, notifier string) state.Alert {
	return state.Alert{Key: key, Notifier: notifier, Kind: "incident-opened", Payload: json.RawMessage(`{"kind": "incident-opened", "n": 1}`)}
}

func testIncidentLifecycle(t *testing.T, b Backend) {
	s, clock := open(t, b)
	ctx := ctxFor(t)
	opened := clock.Now()
	created := must(s.CreateIncident(ctx, newIncident("", opened), state.Change{Actor: detector, Action: "open"},
		[]state.Alert{alertFor("incident-opened/x", "pager"), alertFor("incident-opened/x", "slack")}))(t)
	if created.ID == "" || created.Version != 1 || !created.Updated.Equal(norm(opened)) || !created.Opened.Equal(norm(opened)) {
		t.Fatalf("created incident %+v: want a generated ID, version 1, times normalised to the clock", created)
	}
	got := must(s.GetIncident(ctx, created.ID))(t)
	if d := cmp.Diff(created, got); d != "" {
		t.Fatalf("read back (-created +read):\n%s", d)
	}

	// The watcher adds an event.
	clock.Advance(time.Minute)
	more := got
	more.Events = append(more.Events, state.IncidentEvent{Key: "ev-2", Name: "AssumeRole", Time: opened.Add(time.Minute), Outcome: "failure"})
	more.EventCount, more.Failures, more.LastEvent = 2, 1, opened.Add(time.Minute)
	updated := must(s.UpdateIncident(ctx, more, state.Change{Actor: detector, Action: "event"}, nil))(t)
	if updated.Version != 2 || len(updated.Events) != 2 || !updated.Updated.Equal(norm(clock.Now())) {
		t.Fatalf("after adding an event: %+v", updated)
	}
	// A writer holding version 1 loses.
	stale := got
	stale.Reminders = 1
	_, err := s.UpdateIncident(ctx, stale, state.Change{Actor: detector, Action: "remind"}, nil)
	wantErr(t, err, state.ErrConflict, "updating with a stale version")

	// What identifies the incident cannot change.
	for name, mutate := range map[string]func(*state.Incident){
		"policy":      func(i *state.Incident) { i.Policy = "other" },
		"account":     func(i *state.Incident) { i.Account = "aws:arn:aws:iam::123456789012:user/other" },
		"declaration": func(i *state.Incident) { i.Declaration = "d1" },
		"opened":      func(i *state.Incident) { i.Opened = i.Opened.Add(time.Hour) },
	} {
		bad := updated
		mutate(&bad)
		_, err := s.UpdateIncident(ctx, bad, state.Change{Actor: detector, Action: "event"}, nil)
		wantErr(t, err, state.ErrInvalid, "changing the "+name)
	}

	// The review closes it, and it stays closed.
	reviewed := updated
	reviewed.Status, reviewed.ReviewedBy, reviewed.ReviewedAt, reviewed.ReviewNotes =
		state.IncidentReviewed, "user:sec@example.com", clock.Now(), "IdP outage, credentials rotated"
	reviewed = must(s.UpdateIncident(ctx, reviewed, state.Change{Actor: "user:sec@example.com", Action: "review", Note: "rotated"}, nil))(t)
	reopen := reviewed
	reopen.Status = state.IncidentOpen
	_, err = s.UpdateIncident(ctx, reopen, state.Change{Actor: detector, Action: "event"}, nil)
	wantErr(t, err, state.ErrInvalid, "reopening a reviewed incident")
	if got := must(s.GetIncident(ctx, created.ID))(t); got.Status != state.IncidentReviewed || got.ReviewNotes != "IdP outage, credentials rotated" {
		t.Fatalf("reviewed incident reads back as %+v", got)
	}

	_, err = s.GetIncident(ctx, "nope")
	wantErr(t, err, state.ErrNotFound, "reading an unknown incident")
	missing := newIncident("nope", opened)
	missing.Version = 1
	_, err = s.UpdateIncident(ctx, missing, state.Change{Actor: detector, Action: "event"}, nil)
	wantErr(t, err, state.ErrNotFound, "updating an unknown incident")

	// Every write left an audit entry, in order, and the chain verifies.
	entries := must(s.ListAudit(ctx, state.AuditFilter{Subject: "incident/" + created.ID}))(t)
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Actor+" "+e.Action)
	}
	want := []string{detector + " incident.open", detector + " incident.event", "user:sec@example.com incident.review"}
	if d := cmp.Diff(want, actions); d != "" {
		t.Fatalf("audit entries of the incident (-want +got):\n%s", d)
	}
	if v := must(s.VerifyAudit(ctx))(t); !v.OK {
		t.Fatalf("audit chain after incident writes: %+v", v)
	}
}

func testIncidentValidation(t *testing.T, b Backend) {
	s, clock := open(t, b)
	ctx := ctxFor(t)
	now := clock.Now()
	c := state.Change{Actor: detector, Action: "open"}
	bad := map[string]func(*state.Incident){
		"no policy":          func(i *state.Incident) { i.Policy = "" },
		"no account":         func(i *state.Incident) { i.Account = "" },
		"unknown status":     func(i *state.Incident) { i.Status = "closed" },
		"unknown severity":   func(i *state.Incident) { i.Severity = "meh" },
		"no open time":       func(i *state.Incident) { i.Opened = time.Time{} },
		"ID with a slash":    func(i *state.Incident) { i.ID = "a/b" },
		"reviewed by nobody": func(i *state.Incident) { i.Status = state.IncidentReviewed },
		"too many events": func(i *state.Incident) {
			i.Events = make([]state.IncidentEvent, state.MaxIncidentEvents+1)
		},
	}
	for name, mutate := range bad {
		inc := newIncident("", now)
		mutate(&inc)
		_, err := s.CreateIncident(ctx, inc, c, nil)
		wantErr(t, err, state.ErrInvalid, "creating an incident with "+name)
	}
	_, err := s.CreateIncident(ctx, newIncident("", now), state.Change{}, nil)
	wantErr(t, err, state.ErrInvalid, "creating an incident without actor and action")
	_, err = s.CreateIncident(ctx, newIncident("", now), c, []state.Alert{{Key: "k", Notifier: "n", Kind: "x", Payload: json.RawMessage(`{`)}})
	wantErr(t, err, state.ErrInvalid, "queueing an alert whose payload is not JSON")
	_, err = s.CreateIncident(ctx, newIncident("", now), c, []state.Alert{{Key: "k", Kind: "x", Payload: json.RawMessage(`{}`)}})
	wantErr(t, err, state.ErrInvalid, "queueing an alert without a notifier")
	if n := len(must(s.ListIncidents(ctx, state.IncidentFilter{}))(t)); n != 0 {
		t.Fatalf("%d incidents stored by refused writes", n)
	}
	if n := len(must(s.ListAlerts(ctx, state.AlertFilter{}))(t)); n != 0 {
		t.Fatalf("%d alerts queued by refused writes", n)
	}
	must(s.CreateIncident(ctx, newIncident("i1", now), c, nil))(t)
	_, err = s.CreateIncident(ctx, newIncident("i1", now), c, nil)
	wantErr(t, err, state.ErrExists, "creating an incident with an existing ID")
}

func testIncidentList(t *testing.T, b Backend) {
	s, clock := open(t, b)
	ctx := ctxFor(t)
	t0 := clock.Now()
	c := state.Change{Actor: detector, Action: "open"}
	// Created out of order: the list is by open time, then ID.
	mk := func(id string, opened time.Time, policy, account string) state.Incident {
		inc := newIncident(id, opened)
		inc.Policy, inc.Account = policy, account
		return must(s.CreateIncident(ctx, inc, c, nil))(t)
	}
	mk("i3", t0.Add(2*time.Hour), "idp-outage", bgAccount)
	mk("i1", t0, "idp-outage", bgAccount)
	mk("i2", t0.Add(time.Hour), "cloud-down", "gcp:user:bg-1@example.com")
	i0 := mk("i0", t0.Add(2*time.Hour), "idp-outage", "gcp:user:bg-1@example.com")
	i0.Status, i0.ReviewedBy, i0.ReviewedAt = state.IncidentReviewed, "user:sec@example.com", t0
	must(s.UpdateIncident(ctx, i0, state.Change{Actor: "user:sec@example.com", Action: "review"}, nil))(t)

	ids := func(f state.IncidentFilter) []string {
		var out []string
		for _, inc := range must(s.ListIncidents(ctx, f))(t) {
			out = append(out, inc.ID)
		}
		return out
	}
	cases := []struct {
		name string
		f    state.IncidentFilter
		want []string
	}{
		{"all", state.IncidentFilter{}, []string{"i1", "i2", "i0", "i3"}},
		{"open", state.IncidentFilter{Open: true}, []string{"i1", "i2", "i3"}},
		{"policy", state.IncidentFilter{Policy: "idp-outage"}, []string{"i1", "i0", "i3"}},
		{"account", state.IncidentFilter{Account: "gcp:user:bg-1@example.com"}, []string{"i2", "i0"}},
		{"last event since", state.IncidentFilter{LastEventSince: t0.Add(time.Hour)}, []string{"i2", "i0", "i3"}},
		{"opened since", state.IncidentFilter{OpenedSince: t0.Add(90 * time.Minute)}, []string{"i0", "i3"}},
		{"open of a policy", state.IncidentFilter{Open: true, Policy: "idp-outage"}, []string{"i1", "i3"}},
		{"limit", state.IncidentFilter{Limit: 2}, []string{"i1", "i2"}},
	}
	for _, tc := range cases {
		if d := cmp.Diff(tc.want, ids(tc.f)); d != "" {
			t.Errorf("ListIncidents %s (-want +got):\n%s", tc.name, d)
		}
	}
}

func testConcurrentIncidentUpdates(t *testing.T, b Backend) {
	s, clock := open(t, b)
	ctx := ctxFor(t)
	must(s.CreateIncident(ctx, newIncident("i1", clock.Now()), state.Change{Actor: detector, Action: "open"}, nil))(t)
	const workers, each = 4, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range each {
				for {
					inc, err := s.GetIncident(ctx, "i1")
					if err != nil {
						errs <- err
						return
					}
					inc.Events = append(inc.Events, state.IncidentEvent{Key: fmt.Sprintf("w%d-%d", w, n), Outcome: "success"})
					inc.EventCount++
					_, err = s.UpdateIncident(ctx, inc, state.Change{Actor: detector, Action: "event"}, nil)
					if errors.Is(err, state.ErrConflict) {
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := must(s.GetIncident(ctx, "i1"))(t)
	if got.EventCount != 1+workers*each || len(got.Events) != 1+workers*each || got.Version != 1+workers*each {
		t.Fatalf("after %d concurrent event additions: count %d, %d events kept, version %d", workers*each, got.EventCount, len(got.Events), got.Version)
	}
}

func testDeclarations(t *testing.T, b Backend) {
	s, clock := open(t, b)
	ctx := ctxFor(t)
	t0 := clock.Now()
	d1 := must(s.CreateDeclaration(ctx, state.Declaration{Policy: "idp-outage", Reason: "identity-provider-outage", Incident: "INC-7",
		DeclaredBy: "user:alice@example.com", At: t0, Expires: t0.Add(4 * time.Hour)}))(t)
	if d1.ID == "" || !d1.At.Equal(norm(t0)) || !d1.Expires.Equal(norm(t0.Add(4*time.Hour))) {
		t.Fatalf("created declaration %+v", d1)
	}
	d2 := must(s.CreateDeclaration(ctx, state.Declaration{ID: "d2", Policy: "cloud-down", Reason: "region outage",
		DeclaredBy: "user:bob@example.com", At: t0.Add(time.Hour), Expires: t0.Add(2 * time.Hour)}))(t)
	_, err := s.CreateDeclaration(ctx, d2)
	wantErr(t, err, state.ErrExists, "declaring with an existing ID")
	for name, d := range map[string]state.Declaration{
		"no policy":           {Reason: "r", DeclaredBy: "user:a@example.com", At: t0, Expires: t0.Add(time.Hour)},
		"no reason":           {Policy: "p", DeclaredBy: "user:a@example.com", At: t0, Expires: t0.Add(time.Hour)},
		"no declarer":         {Policy: "p", Reason: "r", At: t0, Expires: t0.Add(time.Hour)},
		"expiring at once":    {Policy: "p", Reason: "r", DeclaredBy: "user:a@example.com", At: t0, Expires: t0},
		"ID with whitespace":  {ID: "a b", Policy: "p", Reason: "r", DeclaredBy: "user:a@example.com", At: t0, Expires: t0.Add(time.Hour)},
		"no declaration time": {Policy: "p", Reason: "r", DeclaredBy: "user:a@example.com", Expires: t0.Add(time.Hour)},
	} {
		_, err := s.CreateDeclaration(ctx, d)
		wantErr(t, err, state.ErrInvalid, "declaring with "+name)
	}

	list := func(f state.DeclarationFilter) []state.Declaration { return must(s.ListDeclarations(ctx, f))(t) }
	if d := cmp.Diff([]state.Declaration{d1, d2}, list(state.DeclarationFilter{})); d != "" {
		t.Fatalf("all declarations (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]state.Declaration{d2}, list(state.DeclarationFilter{Policy: "cloud-down"})); d != "" {
		t.Fatalf("declarations of a policy (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]state.Declaration{d1}, list(state.DeclarationFilter{ExpiresAfter: t0.Add(2 * time.Hour)})); d != "" {
		t.Fatalf("declarations expiring after t0+2h (the one expiring at t0+2h excluded) (-want +got):\n%s", d)
	}
	if got := list(state.DeclarationFilter{Limit: 1}); len(got) != 1 || got[0].ID != d1.ID {
		t.Fatalf("limit 1: %+v", got)
	}

	// Covers: from the leeway before the declaration to its expiry, exclusive.
	for _, c := range []struct {
		at   time.Time
		want bool
	}{
		{t0.Add(-state.DeclarationLeeway - time.Second), false},
		{t0.Add(-state.DeclarationLeeway), true},
		{t0.Add(3 * time.Hour), true},
		{t0.Add(4 * time.Hour), false},
	} {
		if got := d1.Covers(c.at); got != c.want {
			t.Errorf("declaration %s..%s covers %s = %v, want %v", d1.At, d1.Expires, c.at, got, c.want)
		}
	}
	entries := must(s.ListAudit(ctx, state.AuditFilter{Subject: "declaration/" + d1.ID}))(t)
	if len(entries) != 1 || entries[0].Actor != "user:alice@example.com" || entries[0].Action != "declaration.create" {
		t.Fatalf("audit entries of the declaration: %+v", entries)
	}
}

func testAlertOutbox(t *testing.T, b Backend) {
	s, clock := open(t, b)
	ctx := ctxFor(t)
	t0 := clock.Now()
	c := state.Change{Actor: detector, Action: "open"}
	payload := json.RawMessage(`{"kind": "incident-opened", "summary": "Undeclared break-glass use"}`)
	inc := must(s.CreateIncident(ctx, newIncident("i1", t0), c, []state.Alert{
		{Key: "incident-opened/i1", Notifier: "pager", Kind: "incident-opened", Payload: payload},
		{Key: "incident-opened/i1", Notifier: "slack", Kind: "incident-opened", Payload: payload},
	}))(t)
	alerts := must(s.ListAlerts(ctx, state.AlertFilter{Status: []state.AlertStatus{state.AlertPending}}))(t)
	if len(alerts) != 2 || alerts[0].Notifier != "pager" || alerts[1].Notifier != "slack" {
		t.Fatalf("queued alerts: %+v", alerts)
	}
	a := alerts[0]
	want := state.Alert{Key: "incident-opened/i1", Notifier: "pager", Incident: "i1", Kind: "incident-opened", Payload: payload,
		Status: state.AlertPending, NextAttempt: norm(t0), Created: norm(t0), Updated: norm(t0)}
	if d := cmp.Diff(want, a); d != "" {
		t.Fatalf("queued alert (-want +got):\n%s", d)
	}

	// A failed attempt schedules the next one.
	clock.Advance(time.Second)
	a.Attempts, a.LastError, a.NextAttempt = 1, "notifier answered 503", t0.Add(time.Minute)
	a = must(s.UpdateAlert(ctx, a))(t)
	if a.Attempts != 1 || a.LastError != "notifier answered 503" || !a.Updated.Equal(norm(clock.Now())) || string(a.Payload) != string(payload) {
		t.Fatalf("after a failed attempt: %+v", a)
	}
	due := func(at time.Time) int {
		return len(must(s.ListAlerts(ctx, state.AlertFilter{Status: []state.AlertStatus{state.AlertPending}, DueBy: at}))(t))
	}
	if n := due(t0.Add(30 * time.Second)); n != 1 {
		t.Fatalf("%d alerts due 30s in, want 1 (slack; pager waits until t0+1m)", n)
	}
	if n := due(t0.Add(time.Minute)); n != 2 {
		t.Fatalf("%d alerts due at t0+1m, want 2", n)
	}
	a.Status, a.Attempts, a.LastError, a.Delivered = state.AlertDelivered, 2, "", clock.Now()
	a = must(s.UpdateAlert(ctx, a))(t)

	// Raising the same alert again (a re-read after a crash) queues nothing
	// and leaves the delivered one delivered.
	inc.EventCount = 2
	must(s.UpdateIncident(ctx, inc, state.Change{Actor: detector, Action: "event"}, []state.Alert{
		{Key: "incident-opened/i1", Notifier: "pager", Kind: "incident-opened", Payload: json.RawMessage(`{"other": true}`)},
		{Key: "use-limit-exceeded/i1", Notifier: "pager", Kind: "use-limit-exceeded", Payload: json.RawMessage(`{}`)},
	}))(t)
	all := must(s.ListAlerts(ctx, state.AlertFilter{Incident: "i1"}))(t)
	if len(all) != 3 {
		t.Fatalf("%d alerts after raising one again and one new, want 3: %+v", len(all), all)
	}
	for _, x := range all {
		if x.Key == "incident-opened/i1" && x.Notifier == "pager" && (x.Status != state.AlertDelivered || string(x.Payload) != string(payload)) {
			t.Fatalf("the delivered alert changed when raised again: %+v", x)
		}
	}
	if n := len(must(s.ListAlerts(ctx, state.AlertFilter{Status: []state.AlertStatus{state.AlertDelivered, state.AlertFailed}}))(t)); n != 1 {
		t.Fatalf("%d delivered or failed alerts, want 1", n)
	}
	if n := len(must(s.ListAlerts(ctx, state.AlertFilter{Incident: "other"}))(t)); n != 0 {
		t.Fatalf("%d alerts of an unknown incident", n)
	}
	if n := len(must(s.ListAlerts(ctx, state.AlertFilter{Limit: 1}))(t)); n != 1 {
		t.Fatalf("limit 1 returned %d alerts", n)
	}
	_, err := s.UpdateAlert(ctx, state.Alert{Key: "nope", Notifier: "pager", Status: state.AlertDelivered})
	wantErr(t, err, state.ErrNotFound, "updating an alert never queued")
	_, err = s.UpdateAlert(ctx, state.Alert{Key: a.Key, Notifier: a.Notifier, Status: "lost"})
	wantErr(t, err, state.ErrInvalid, "updating an alert to an unknown status")
}

func testSourceStatus(t *testing.T, b Backend) {
	s, clock := open(t, b)
	ctx := ctxFor(t)
	t0 := clock.Now()
	if got := must(s.ListSourceStatus(ctx))(t); len(got) != 0 {
		t.Fatalf("fresh store lists %d sources", len(got))
	}
	trail := state.SourceStatus{Name: "trail", Type: "file", Format: "cloudtrail", Cloud: "aws", LastPoll: t0, CaughtUp: t0, LastEvent: t0.Add(-time.Minute)}
	must(0, s.PutSourceStatus(ctx, trail))(t)
	must(0, s.PutSourceStatus(ctx, state.SourceStatus{Name: "gcp", Type: "file", Format: "gcp-audit", Cloud: "gcp", LastPoll: t0, Error: "reading /logs: permission denied"}))(t)
	clock.Advance(time.Second)
	trail.LastPoll, trail.CaughtUp = clock.Now(), clock.Now()
	must(0, s.PutSourceStatus(ctx, trail))(t)
	got := must(s.ListSourceStatus(ctx))(t)
	want := []state.SourceStatus{
		{Name: "gcp", Type: "file", Format: "gcp-audit", Cloud: "gcp", LastPoll: norm(t0), Error: "reading /logs: permission denied", Updated: norm(t0)},
		{Name: "trail", Type: "file", Format: "cloudtrail", Cloud: "aws", LastPoll: norm(clock.Now()), CaughtUp: norm(clock.Now()),
			LastEvent: norm(t0.Add(-time.Minute)), Updated: norm(clock.Now())},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("source status (-want +got):\n%s", d)
	}
	wantErr(t, s.PutSourceStatus(ctx, state.SourceStatus{}), state.ErrInvalid, "storing a source status without a name")
}

func testFencedIncidentWrites(t *testing.T, b Backend) {
	s, clock := open(t, b)
	ctx := ctxFor(t)
	t0 := clock.Now()
	old := must(s.TryAcquireLease(ctx, "breakglass", "old", ttl, t0))(t)
	oldView := s.WithFence(old.Fence())
	inc := must(oldView.CreateIncident(ctx, newIncident("i1", t0), state.Change{Actor: detector, Action: "open"},
		[]state.Alert{alertFor("incident-opened/i1", "pager")}))(t)
	must(s.TryAcquireLease(ctx, "breakglass", "new", ttl, t0.Add(ttl)))(t)

	writes := map[string]func(st state.Store) error{
		"CreateIncident": func(st state.Store) error {
			_, err := st.CreateIncident(ctx, newIncident("i2", t0), state.Change{Actor: detector, Action: "open"}, nil)
			return err
		},
		"UpdateIncident": func(st state.Store) error {
			next := inc
			next.Reminders = 1
			_, err := st.UpdateIncident(ctx, next, state.Change{Actor: detector, Action: "remind"}, nil)
			return err
		},
		"CreateDeclaration": func(st state.Store) error {
			_, err := st.CreateDeclaration(ctx, state.Declaration{Policy: "p", Reason: "r", DeclaredBy: "user:a@example.com", At: t0, Expires: t0.Add(time.Hour)})
			return err
		},
		"UpdateAlert": func(st state.Store) error {
			_, err := st.UpdateAlert(ctx, state.Alert{Key: "incident-opened/i1", Notifier: "pager", Status: state.AlertDelivered})
			return err
		},
		"PutSourceStatus": func(st state.Store) error {
			return st.PutSourceStatus(ctx, state.SourceStatus{Name: "trail"})
		},
	}
	for name, w := range writes {
		wantErr(t, w(oldView), state.ErrFenced, name+" with a stale token")
	}
	if got := must(s.GetIncident(ctx, "i1"))(t); got.Version != 1 || got.Reminders != 0 {
		t.Fatalf("stale UpdateIncident went through: %+v", got)
	}
	if got := must(s.ListAlerts(ctx, state.AlertFilter{}))(t); len(got) != 1 || got[0].Status != state.AlertPending {
		t.Fatalf("stale UpdateAlert went through: %+v", got)
	}
	if n := len(must(s.ListDeclarations(ctx, state.DeclarationFilter{}))(t)); n != 0 {
		t.Fatalf("stale CreateDeclaration went through: %d declarations", n)
	}
	if n := len(must(s.ListSourceStatus(ctx))(t)); n != 0 {
		t.Fatalf("stale PutSourceStatus went through")
	}
}
