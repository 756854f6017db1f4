package breakglass

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elevatehq/elevate/breakglass/notify"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/providers"
	"github.com/elevatehq/elevate/state"
)

const hookSecret = "whsec-watcher-test"

// hook is a webhook receiver on 127.0.0.1 that verifies signatures with
// its own code and keeps the alerts it accepted, dropping repeats of an
// Idempotency-Key the way a careful receiver does.
type hook struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	fail     int // answer 503 to this many more requests
	requests int
	alerts   []notify.Alert
	keys     map[string]bool
	dupes    int
	received chan notify.Alert
}

func newHook(t testing.TB) *hook {
	h := &hook{t: t, keys: map[string]bool{}, received: make(chan notify.Alert, 100)}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests++
	if h.fail > 0 {
		h.fail--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	ts := r.Header.Get("X-Elevate-Timestamp")
	mac := hmac.New(sha256.New, []byte(hookSecret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil || !hmac.Equal([]byte(want), []byte(r.Header.Get("X-Elevate-Signature"))) {
		h.t.Errorf("delivery with a bad signature: timestamp %q signature %q", ts, r.Header.Get("X-Elevate-Signature"))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var a notify.Alert
	if err := json.Unmarshal(body, &a); err != nil {
		h.t.Errorf("alert body %s: %v", body, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if key != a.ID {
		h.t.Errorf("Idempotency-Key %q, alert ID %q", key, a.ID)
	}
	if h.keys[key] {
		h.dupes++
		w.WriteHeader(http.StatusOK)
		return
	}
	h.keys[key] = true
	h.alerts = append(h.alerts, a)
	h.received <- a
	w.WriteHeader(http.StatusAccepted)
}

func (h *hook) got() []notify.Alert {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]notify.Alert(nil), h.alerts...)
}

const watcherPolicies = `
notifier "pager" {
  type       = "webhook"
  url_env    = "PAGER_URL"
  secret_env = "PAGER_SECRET"
}
break_glass "idp-outage" {
  description       = "IdP down"
  reasons           = ["identity-provider-outage"]
  accounts          = ["aws:arn:aws:iam::123456789012:user/breakglass-alice"]
  session_recording = true
  review_within     = "24h"
  notify            = ["pager"]
}
`

// rig is a watcher over a real SQLite store and a real file source, with
// a fake clock and a real webhook receiver.
type rig struct {
	t     *testing.T
	dir   string
	store state.Store
	clock *fakeClock
	hook  *hook
	w     *Watcher
	src   *WatchedSource
	set   *policies.Set
}

func newRig(t *testing.T) *rig {
	r := &rig{t: t, dir: t.TempDir(), clock: newFakeClock(t0), hook: newHook(t)}
	var err error
	r.store, err = state.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "state.db"), state.WithClock(r.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.store.Close() })
	r.set = loadSet(t, watcherPolicies)
	env := map[string]string{"PAGER_URL": r.hook.srv.URL + "/elevate", "PAGER_SECRET": hookSecret}
	fs := &FileSource{Dir: r.dir, Format: SourceCloudTrail, Now: r.clock.Now}
	r.w, err = NewWatcher(WatcherOptions{
		Store: r.store, Policies: func() *policies.Set { return r.set }, Now: r.clock.Now, Holder: "test",
		Sources:          []WatchedSource{{Name: "trail", Type: "file", Format: SourceCloudTrail, Cloud: "aws", Source: fs}},
		ReminderInterval: 6 * time.Hour,
		Getenv:           func(k string) string { return env[k] },
		Notify:           notify.Options{Retry: providers.RetryPolicy{MaxAttempts: 2, Sleep: func(context.Context, time.Duration) error { return nil }}},
	})
	if err != nil {
		t.Fatal(err)
	}
	fs.Matcher = r.w.Matcher
	r.src = &r.w.o.Sources[0]
	return r
}

func (r *rig) poll() {
	r.t.Helper()
	if _, err := r.w.PollSource(r.t.Context(), r.store, r.src); err != nil {
		r.t.Fatalf("PollSource: %v", err)
	}
}

func (r *rig) deliver() {
	r.t.Helper()
	_ = r.w.DeliverDue(r.t.Context(), r.store)
}

func (r *rig) incidents() []state.Incident {
	r.t.Helper()
	incs, err := r.store.ListIncidents(r.t.Context(), state.IncidentFilter{})
	if err != nil {
		r.t.Fatal(err)
	}
	return incs
}

// TestWatcherEndToEndOnFakeClock is the end-to-end scenario at the
// package level, on a fake clock: a file source receives a break-glass
// sign-in, a local webhook receiver gets the signed alert, the incident is
// undeclared; with a declaration first it is declared; the review deadline
// passes and the re-alert fires, at most once per reminder interval.
func TestWatcherEndToEndOnFakeClock(t *testing.T) {
	r := newRig(t)
	ctx := t.Context()
	first := ctLogin("login-1", "bob", t0, true)
	writeFile(t, r.dir, "trail/a.jsonl", []byte(first+ctLogin("login-2", "breakglass-alice", t0, true)))
	r.poll()
	r.deliver()
	incs := r.incidents()
	if len(incs) != 1 || incs[0].Declaration != "" || incs[0].Severity != state.SeverityCritical || incs[0].Events[0].ID != "login-2" {
		t.Fatalf("incidents %+v: want one undeclared, critical, of login-2", incs)
	}
	undeclared := incs[0]
	got := r.hook.got()
	if len(got) != 1 || got[0].Kind != notify.KindIncidentOpened || got[0].Severity != "critical" || got[0].Incident.ID != undeclared.ID ||
		got[0].Incident.Declared || got[0].Event.SourceIP != "203.0.113.7" || got[0].Event.Where != fmt.Sprintf("trail/a.jsonl: record 2 (line 2, byte %d)", len(first)) {
		t.Fatalf("alerts received %+v", got)
	}

	// Declared first, then used (hours later: another episode).
	r.clock.Advance(3 * time.Hour)
	decl, err := r.store.CreateDeclaration(ctx, state.Declaration{Policy: "idp-outage", Reason: "identity-provider-outage",
		Incident: "INC-42", DeclaredBy: "user:oncall@example.com", At: r.clock.Now(), Expires: r.clock.Now().Add(4 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	appendFile(t, filepath.Join(r.dir, "trail/a.jsonl"), ctLogin("login-3", "breakglass-alice", r.clock.Now().Add(time.Minute), true))
	r.poll()
	r.deliver()
	incs = r.incidents()
	if len(incs) != 2 || incs[1].Declaration != decl.ID || incs[1].Severity != state.SeverityWarning {
		t.Fatalf("incidents %+v: want a second one, declared by %s", incs, decl.ID)
	}
	declared := incs[1]
	got = r.hook.got()
	if len(got) != 2 || got[1].Severity != "warning" || !got[1].Incident.Declared || got[1].Declaration == nil || got[1].Declaration.Incident != "INC-42" {
		t.Fatalf("alert of the declared incident %+v", got[len(got)-1])
	}

	// The first review deadline passes: a reminder for the first incident
	// only.
	r.clock.Advance(21 * time.Hour) // t0 + 24h
	if err := r.w.CheckReviews(ctx, r.store); err != nil {
		t.Fatal(err)
	}
	r.deliver()
	got = r.hook.got()
	if len(got) != 3 || got[2].Kind != notify.KindReviewOverdue || got[2].Incident.ID != undeclared.ID || got[2].ID != "review-overdue/"+undeclared.ID+"/1" {
		t.Fatalf("after the first deadline: %+v", got[len(got)-1])
	}
	// Within the reminder interval nothing more; the declared incident's
	// deadline (3h later) brings its own reminder.
	r.clock.Advance(2 * time.Hour)
	r.w.CheckReviews(ctx, r.store)
	r.deliver()
	if n := len(r.hook.got()); n != 3 {
		t.Fatalf("%d alerts two hours after the deadline, want still 3", n)
	}
	r.clock.Advance(time.Hour + time.Minute) // t0 + 27h01m: the declared one is overdue
	r.w.CheckReviews(ctx, r.store)
	r.deliver()
	got = r.hook.got()
	if len(got) != 4 || got[3].Incident.ID != declared.ID || got[3].Kind != notify.KindReviewOverdue {
		t.Fatalf("after the second deadline: %+v", got[len(got)-1])
	}
	// A review stops the reminders; the other incident's come every 6h.
	rev, _ := r.store.GetIncident(ctx, undeclared.ID)
	rev.Status, rev.ReviewedBy, rev.ReviewedAt, rev.ReviewNotes = state.IncidentReviewed, "user:sec@example.com", r.clock.Now(), "unplanned test of the account; credentials rotated"
	if _, err := r.store.UpdateIncident(ctx, rev, state.Change{Actor: "user:sec@example.com", Action: "review"}, nil); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(6 * time.Hour)
	r.w.CheckReviews(ctx, r.store)
	r.deliver()
	got = r.hook.got()
	if len(got) != 5 || got[4].Incident.ID != declared.ID || got[4].ID != "review-overdue/"+declared.ID+"/2" {
		t.Fatalf("six hours later: %+v", got[len(got)-1])
	}
	// Polling again reads nothing new and delivers nothing twice.
	r.poll()
	r.deliver()
	if n := len(r.hook.got()); n != 5 || r.hook.dupes != 0 {
		t.Fatalf("%d alerts and %d duplicates after a quiet poll", n, r.hook.dupes)
	}
	st, _ := r.store.ListSourceStatus(ctx)
	if len(st) != 1 || st[0].Name != "trail" || st[0].Error != "" || !st[0].LastEvent.Equal(t0.Add(3*time.Hour+time.Minute)) {
		t.Fatalf("source status %+v", st)
	}
}

func TestWatcherOutboxRetriesUntilDelivered(t *testing.T) {
	r := newRig(t)
	r.hook.fail = 5 // two sends of two attempts fail, then one more attempt
	writeFile(t, r.dir, "a.jsonl", []byte(ctLogin("x1", "breakglass-alice", t0, false)))
	r.poll()
	r.deliver()
	alerts, _ := r.store.ListAlerts(t.Context(), state.AlertFilter{})
	if len(alerts) != 1 || alerts[0].Status != state.AlertPending || alerts[0].Attempts != 1 || alerts[0].LastError == "" ||
		!alerts[0].NextAttempt.After(r.clock.Now()) {
		t.Fatalf("after a failed delivery: %+v", alerts)
	}
	if alerts[0].LastError != `giving up after 2 attempts: notifier "pager" answered 503 Service Unavailable` {
		t.Fatalf("last error %q", alerts[0].LastError)
	}
	// Not due yet: nothing is sent.
	r.deliver()
	if r.hook.requests != 2 {
		t.Fatalf("%d requests, want 2: the alert was retried before it was due", r.hook.requests)
	}
	for range 3 {
		r.clock.Advance(2 * time.Hour)
		r.deliver()
	}
	alerts, _ = r.store.ListAlerts(t.Context(), state.AlertFilter{})
	if alerts[0].Status != state.AlertDelivered || alerts[0].Attempts != 3 || len(r.hook.got()) != 1 {
		t.Fatalf("after retries: %+v, %d received", alerts[0], len(r.hook.got()))
	}
	// A notifier that stays down past MaxAlertAge is given up on.
	r.hook.fail = 1 << 30
	writeFile(t, r.dir, "b.jsonl", []byte(ctLogin("x2", "breakglass-alice", r.clock.Now().Add(3*time.Hour), true)))
	r.clock.Advance(3 * time.Hour)
	r.poll()
	for range 12 {
		r.deliver()
		r.clock.Advance(8 * time.Hour)
	}
	failed, _ := r.store.ListAlerts(t.Context(), state.AlertFilter{Status: []state.AlertStatus{state.AlertFailed}})
	if len(failed) != 1 {
		t.Fatalf("failed alerts %+v, want the second incident's", failed)
	}
}

func TestWatcherRecordIsIdempotent(t *testing.T) {
	r := newRig(t)
	writeFile(t, r.dir, "a.jsonl", []byte(ctLogin("e1", "breakglass-alice", t0, true)))
	r.poll()
	// The cursor is lost (a restore from backup): the record is read
	// again, and nothing changes.
	if err := r.store.SetCursor(t.Context(), cursorName("trail"), ""); err != nil {
		t.Fatal(err)
	}
	r.poll()
	r.deliver()
	incs := r.incidents()
	if len(incs) != 1 || incs[0].EventCount != 1 || incs[0].Version != 1 || len(r.hook.got()) != 1 {
		t.Fatalf("after reading the record twice: %+v, %d alerts", incs, len(r.hook.got()))
	}
}

func TestWatcherReportsSourceFailures(t *testing.T) {
	r := newRig(t)
	r.src.Source.(*FileSource).Dir = filepath.Join(r.dir, "missing")
	if _, err := r.w.PollSource(t.Context(), r.store, r.src); err == nil {
		t.Fatal("a missing directory did not fail the poll")
	}
	st, _ := r.store.ListSourceStatus(t.Context())
	if len(st) != 1 || st[0].Error == "" || !st[0].CaughtUp.IsZero() {
		t.Fatalf("status %+v", st)
	}
	rep := Check(CheckInput{Now: r.clock.Now(), Set: r.set, Sources: r.w.Sources(), Status: st})
	if rep.Ready || len(rep.Accounts) != 1 || rep.Accounts[0].Covered {
		t.Fatalf("check with a failing source: %+v", rep)
	}
}

// runRig is a rig whose watchers run for real (real clock, lease, loops).
func startWatcher(t testing.TB, r *rig, holder string, poll time.Duration, opts ...func(*WatcherOptions)) (*Watcher, context.CancelFunc, chan struct{}) {
	t.Helper()
	env := map[string]string{"PAGER_URL": r.hook.srv.URL, "PAGER_SECRET": hookSecret}
	fs := &FileSource{Dir: r.dir, Format: SourceCloudTrail}
	o := WatcherOptions{
		Store: r.store, Policies: func() *policies.Set { return r.set }, Holder: holder, LeaseTTL: 600 * time.Millisecond,
		Sources: []WatchedSource{{Name: "trail", Type: "file", Format: SourceCloudTrail, Cloud: "aws", Source: fs, Poll: poll}},
		Getenv:  func(k string) string { return env[k] },
	}
	for _, f := range opts {
		f(&o)
	}
	w, err := NewWatcher(o)
	if err != nil {
		t.Fatal(err)
	}
	fs.Matcher = w.Matcher
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return w, cancel, done
}

func waitAlert(t *testing.T, h *hook, within time.Duration) notify.Alert {
	t.Helper()
	select {
	case a := <-h.received:
		return a
	case <-time.After(within):
		t.Fatalf("no alert within %s", within)
	}
	return notify.Alert{}
}

func TestWatchersRunOnOneReplicaAndFailOver(t *testing.T) {
	r := newRig(t)
	// The store's clock is the wall clock here.
	store, err := state.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "run.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	r.store = store
	a, stopA, doneA := startWatcher(t, r, "replica-a", 100*time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for !a.IsLeader() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	b, _, _ := startWatcher(t, r, "replica-b", 100*time.Millisecond)
	if !a.IsLeader() {
		t.Fatal("the first watcher never took the lease")
	}
	writeFile(t, r.dir, "a.jsonl", []byte(ctLogin("run-1", "breakglass-alice", time.Now(), true)))
	got := waitAlert(t, r.hook, 5*time.Second)
	if got.Event.ID != "run-1" || b.IsLeader() {
		t.Fatalf("alert %+v; second replica leading: %v", got, b.IsLeader())
	}
	// The leader stops (and releases the lease): the other takes over and
	// carries on from the stored cursor.
	stopA()
	<-doneA
	writeFile(t, r.dir, "b.jsonl", []byte(ctLogin("run-2", "breakglass-alice", time.Now().Add(3*time.Hour), true)))
	got = waitAlert(t, r.hook, 5*time.Second)
	if got.Event.ID != "run-2" || !b.IsLeader() {
		t.Fatalf("after failover: alert %+v, second replica leading: %v", got, b.IsLeader())
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(r.hook.got()); n != 2 || r.hook.dupes != 0 {
		t.Fatalf("%d alerts, %d duplicates: want each record alerted once", n, r.hook.dupes)
	}
}

// TestWatchersFollowTheCampaignGate: watchers run only where the gate is
// open (the daemon's gate is "this replica leads reconcile"); when it
// closes the lease is handed over at once, not after its TTL, and no
// record is alerted twice or lost.
func TestWatchersFollowTheCampaignGate(t *testing.T) {
	r := newRig(t)
	store, err := state.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "run.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	r.store = store
	var aLeads, bLeads atomic.Bool
	// A lease that would take a minute to lapse: the hand-over must not
	// wait for it.
	gated := func(g *atomic.Bool) func(*WatcherOptions) {
		return func(o *WatcherOptions) { o.Campaign, o.LeaseTTL = g.Load, time.Minute }
	}
	b, _, _ := startWatcher(t, r, "replica-b", 100*time.Millisecond, gated(&bLeads))
	a, _, _ := startWatcher(t, r, "replica-a", 100*time.Millisecond, gated(&aLeads))
	time.Sleep(400 * time.Millisecond)
	if a.IsLeader() || b.IsLeader() {
		t.Fatal("a watcher ran with its gate closed")
	}
	aLeads.Store(true)
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting until %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("replica a runs the watchers", a.IsLeader)
	writeFile(t, r.dir, "a.jsonl", []byte(ctLogin("gate-1", "breakglass-alice", time.Now(), true)))
	if got := waitAlert(t, r.hook, 5*time.Second); got.Event.ID != "gate-1" || b.IsLeader() {
		t.Fatalf("alert %+v; replica b leading: %v", got, b.IsLeader())
	}
	// Leadership moves: a hands over well before its lease would lapse.
	aLeads.Store(false)
	bLeads.Store(true)
	start := time.Now()
	waitFor("replica b runs the watchers", func() bool { return b.IsLeader() && !a.IsLeader() })
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the hand-over took %s", took)
	}
	if l, err := store.GetLease(t.Context(), LeaseName); err != nil || l.Holder != "replica-b" {
		t.Fatalf("watcher lease: %+v %v", l, err)
	}
	writeFile(t, r.dir, "b.jsonl", []byte(ctLogin("gate-2", "breakglass-alice", time.Now().Add(3*time.Hour), true)))
	if got := waitAlert(t, r.hook, 5*time.Second); got.Event.ID != "gate-2" {
		t.Fatalf("after the hand-over: alert %+v", got)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(r.hook.got()); n != 2 || r.hook.dupes != 0 {
		t.Fatalf("%d alerts, %d duplicates: want each record alerted once", n, r.hook.dupes)
	}
}
