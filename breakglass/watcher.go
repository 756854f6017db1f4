package breakglass

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/elevatehq/elevate/breakglass/notify"
	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/providers"
	"github.com/elevatehq/elevate/state"
)

// LeaseName is the lease whose holder runs the audit watchers: one replica
// at a time reads the sources, writes incidents and sends alerts.
const LeaseName = "breakglass-watcher"

// Watcher defaults.
const (
	DefaultPoll          = time.Second
	DefaultLeaseTTL      = 15 * time.Second
	DefaultReviewCheck   = 5 * time.Second
	DefaultMaxAlertAge   = 72 * time.Hour
	DefaultBatchSize     = 500
	maxRecordAttempts    = 10
	maxConcurrentSends   = 8
	statusWriteInterval  = 10 * time.Second
	firstRedeliveryDelay = 30 * time.Second
	maxRedeliveryDelay   = time.Hour
	// sendTimeout bounds one delivery, its retries included.
	sendTimeout = 30 * time.Second
)

// WatchedSource is one configured audit source.
type WatchedSource struct {
	// Name identifies the source in the store (its cursor and status),
	// in incidents and in `breakglass check`.
	Name string
	// Type is the kind of source ("file"), Format the log format, Cloud
	// the cloud whose accounts it can see.
	Type   string
	Format Source
	Cloud  model.Cloud
	// Poll is the time between reads; default DefaultPoll.
	Poll   time.Duration
	Source providers.AuditSource
}

// SourceInfo describes a configured source to `breakglass check`.
func (s WatchedSource) Info() SourceInfo {
	return SourceInfo{Name: s.Name, Type: s.Type, Format: string(s.Format), Cloud: s.Cloud, Poll: s.poll()}
}

func (s WatchedSource) poll() time.Duration {
	if s.Poll <= 0 {
		return DefaultPoll
	}
	return s.Poll
}

// WatcherOptions configures a Watcher.
type WatcherOptions struct {
	Store    state.Store
	Policies func() *policies.Set
	Sources  []WatchedSource
	// Holder identifies this replica in the watcher lease.
	Holder string
	// Now defaults to time.Now.
	Now func() time.Time
	// LeaseTTL defaults to DefaultLeaseTTL.
	LeaseTTL time.Duration
	// Campaign, if set, says whether this replica may run the watchers:
	// the watcher campaigns for its lease only while it returns true, and
	// gives the lease up when it turns false. The daemon passes the
	// reconcile engine's IsLeader, so that one replica leads both.
	Campaign func() bool
	// GroupWindow defaults to DefaultGroupWindow, ReminderInterval to
	// DefaultReminderInterval, ReviewCheck (how often overdue reviews are
	// looked for) to DefaultReviewCheck.
	GroupWindow      time.Duration
	ReminderInterval time.Duration
	ReviewCheck      time.Duration
	// MaxAlertAge is how long an alert that cannot be delivered is
	// retried before it is marked failed; default DefaultMaxAlertAge.
	MaxAlertAge time.Duration
	// BatchSize is the most events one source read returns.
	BatchSize int
	// Getenv reads the notifiers' URLs and secrets; default os.Getenv.
	Getenv func(string) string
	// Notify configures the senders (HTTP client, retries).
	Notify        notify.Options
	Logger        *slog.Logger
	MeterProvider metric.MeterProvider
}

// Watcher runs the audit sources on the replica that holds LeaseName: it
// reads each source every Poll, turns the events of break-glass accounts
// into incidents (Detect), keeps reminding of overdue reviews (Reminders),
// and delivers the queued alerts to the policies' notifiers, retrying
// failures with backoff until they are delivered or MaxAlertAge has passed.
// Its store writes are fenced by the lease.
type Watcher struct {
	o   WatcherOptions
	log *slog.Logger

	mu         sync.Mutex
	matcherSet *policies.Set
	matcher    *Matcher
	senders    map[*policies.Notifier]senderEntry
	leader     bool
	caughtUp   map[string]time.Time
	lastStatus map[string]state.SourceStatus
	lastWrite  map[string]time.Time
	inFlight   map[[2]string]bool
	outboxMu   sync.Mutex

	wake      chan struct{}
	incidents metric.Int64Counter
	sends     sync.WaitGroup
}

type senderEntry struct {
	sender notify.Sender
	err    error
}

// NewWatcher returns a watcher for o.
func NewWatcher(o WatcherOptions) (*Watcher, error) {
	if o.Store == nil || o.Policies == nil {
		return nil, errors.New("configuring the break-glass watcher: a store and a policy source are required")
	}
	seen := map[string]bool{}
	for _, s := range o.Sources {
		if s.Name == "" || s.Source == nil {
			return nil, errors.New("configuring the break-glass watcher: every audit source needs a name and a reader")
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("configuring the break-glass watcher: two audit sources are named %q; names must be unique", s.Name)
		}
		seen[s.Name] = true
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.ReviewCheck <= 0 {
		o.ReviewCheck = DefaultReviewCheck
	}
	if o.MaxAlertAge <= 0 {
		o.MaxAlertAge = DefaultMaxAlertAge
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Holder == "" {
		host, _ := os.Hostname()
		o.Holder = fmt.Sprintf("%s/%d", host, os.Getpid())
	}
	w := &Watcher{o: o, log: o.Logger, senders: map[*policies.Notifier]senderEntry{}, caughtUp: map[string]time.Time{},
		lastStatus: map[string]state.SourceStatus{}, lastWrite: map[string]time.Time{}, inFlight: map[[2]string]bool{},
		wake: make(chan struct{}, 1)}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	mp := o.MeterProvider
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter("github.com/elevatehq/elevate/breakglass")
	w.incidents, _ = m.Int64Counter("elevate_breakglass_incidents_total",
		metric.WithDescription("Break-glass incidents opened, by policy and severity (critical: undeclared)."))
	_, _ = m.Float64ObservableGauge("elevate_audit_source_lag_seconds",
		metric.WithDescription("Seconds since each audit source last had nothing left to read (on the replica running the watchers)."),
		metric.WithUnit("s"),
		metric.WithFloat64Callback(func(_ context.Context, obs metric.Float64Observer) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			if !w.leader {
				return nil
			}
			now := w.o.Now()
			for _, s := range w.o.Sources {
				if t, ok := w.caughtUp[s.Name]; ok {
					obs.Observe(now.Sub(t).Seconds(), metric.WithAttributes(attribute.String("source", s.Name)))
				}
			}
			return nil
		}))
	return w, nil
}

// Sources describes the configured sources.
func (w *Watcher) Sources() []SourceInfo {
	out := make([]SourceInfo, len(w.o.Sources))
	for i, s := range w.o.Sources {
		out[i] = s.Info()
	}
	return out
}

// IsLeader reports whether this replica runs the watchers now.
func (w *Watcher) IsLeader() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.leader
}

// Matcher returns the matcher of the current policy set, rebuilt when the
// set changes. File sources use it to skip records of other identities.
func (w *Watcher) Matcher() *Matcher {
	set := w.o.Policies()
	w.mu.Lock()
	defer w.mu.Unlock()
	if set == nil {
		set = &policies.Set{}
	}
	if set != w.matcherSet || w.matcher == nil {
		w.matcherSet, w.matcher = set, NewMatcher(set)
	}
	return w.matcher
}

// Run campaigns for the watcher lease and, while holding it, runs the
// sources, the review reminders and alert delivery. It returns when ctx is
// done, releasing the lease.
func (w *Watcher) Run(ctx context.Context) error {
	ttl := w.o.LeaseTTL
	for {
		if w.o.Campaign != nil && !w.o.Campaign() {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(campaignPoll):
			}
			continue
		}
		lease, err := w.o.Store.TryAcquireLease(ctx, LeaseName, w.o.Holder, ttl, w.o.Now())
		switch {
		case err == nil:
			w.lead(ctx, lease)
		case errors.Is(err, state.ErrLeaseHeld):
		case ctx.Err() != nil:
		default:
			w.log.WarnContext(ctx, "cannot take the break-glass watcher lease", "error", err)
		}
		// With a gate, only the replica it names campaigns, and it should
		// take over as soon as the previous holder hands over.
		wait := ttl / 3
		if w.o.Campaign != nil {
			wait = min(wait, campaignPoll)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// campaignPoll is how often a watcher with a Campaign gate asks it.
const campaignPoll = 250 * time.Millisecond

// lead runs the watchers under lease until it is lost, the Campaign gate
// closes, or ctx is done.
func (w *Watcher) lead(ctx context.Context, lease state.Lease) {
	w.log.InfoContext(ctx, "running the audit watchers", "sources", len(w.o.Sources), "token", lease.Token)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w.mu.Lock()
	w.leader = true
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.leader = false
		w.mu.Unlock()
	}()
	st := w.o.Store.WithFence(lease.Fence())
	var wg sync.WaitGroup
	for i := range w.o.Sources {
		src := &w.o.Sources[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.every(lctx, src.poll(), func() { _, _ = w.PollSource(lctx, st, src) })
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		w.every(lctx, w.o.ReviewCheck, func() { _ = w.CheckReviews(lctx, st) })
	}()
	go func() {
		defer wg.Done()
		w.deliveryLoop(lctx, st)
	}()

	ttl := w.o.LeaseTTL
	renew := time.NewTicker(ttl / 3)
	defer renew.Stop()
	var gate <-chan time.Time
	if w.o.Campaign != nil {
		t := time.NewTicker(campaignPoll)
		defer t.Stop()
		gate = t.C
	}
	stepDown := false
	for lost := false; !lost; {
		select {
		case <-ctx.Done():
			lost = true
		case <-gate:
			if !w.o.Campaign() {
				w.log.InfoContext(ctx, "this replica no longer leads reconcile; handing the audit watchers over")
				lost, stepDown = true, true
			}
		case <-renew.C:
			l, err := w.o.Store.RenewLease(ctx, lease, ttl, w.o.Now())
			if errors.Is(err, state.ErrLeaseLost) {
				w.log.WarnContext(ctx, "lost the break-glass watcher lease; another replica runs the watchers now")
				lost = true
			} else if err != nil {
				w.log.WarnContext(ctx, "cannot renew the break-glass watcher lease", "error", err)
			} else {
				lease = l
			}
		}
	}
	cancel()
	wg.Wait()
	w.sends.Wait()
	if ctx.Err() != nil || stepDown {
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer rcancel()
		_ = w.o.Store.ReleaseLease(rctx, lease)
	}
}

// every runs fn at once and then every d until ctx is done.
func (w *Watcher) every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		fn()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// cursorName is the store cursor of a source.
func cursorName(source string) string { return "audit-source/" + source }

// PollSource reads src until it has nothing more to read, records what
// the events of break-glass accounts mean, then moves the source's cursor
// on (so a crash in between reads them again, which changes nothing). It
// returns how many events were read.
func (w *Watcher) PollSource(ctx context.Context, st state.Store, src *WatchedSource) (int, error) {
	cur := ""
	c, err := st.GetCursor(ctx, cursorName(src.Name))
	switch {
	case err == nil:
		cur = c.Value
	case !errors.Is(err, state.ErrNotFound):
		return 0, w.sourceFailed(ctx, st, src, fmt.Errorf("reading the cursor: %w", err))
	}
	total := 0
	var lastEvent time.Time
	caughtUp := false
	for range 100 {
		evs, next, err := src.Source.Read(ctx, cur, w.o.BatchSize)
		if err != nil {
			if ctx.Err() != nil {
				return total, ctx.Err()
			}
			return total, w.sourceFailed(ctx, st, src, err)
		}
		total += len(evs)
		for _, ev := range evs {
			if ev.Time.After(lastEvent) {
				lastEvent = ev.Time
			}
		}
		if dets := w.match(ctx, src, evs); len(dets) > 0 {
			if err := w.record(ctx, st, dets); err != nil {
				return total, w.sourceFailed(ctx, st, src, fmt.Errorf("recording incidents: %w", err))
			}
		}
		if next != cur {
			if err := st.SetCursor(ctx, cursorName(src.Name), next); err != nil {
				return total, w.sourceFailed(ctx, st, src, fmt.Errorf("storing the cursor: %w", err))
			}
			cur = next
		}
		if len(evs) < w.o.BatchSize {
			caughtUp = true
			break
		}
	}
	now := w.o.Now()
	w.mu.Lock()
	status := w.lastStatus[src.Name]
	w.mu.Unlock()
	status.Name, status.Type, status.Format, status.Cloud, status.LastPoll, status.Error = src.Name, src.Type, string(src.Format), string(src.Cloud), now, ""
	if caughtUp {
		status.CaughtUp = now
		w.mu.Lock()
		w.caughtUp[src.Name] = now
		w.mu.Unlock()
	}
	if lastEvent.After(status.LastEvent) {
		status.LastEvent = lastEvent
	}
	return total, w.putStatus(ctx, st, status, total > 0)
}

// sourceFailed records a failed read in the source's status.
func (w *Watcher) sourceFailed(ctx context.Context, st state.Store, src *WatchedSource, err error) error {
	w.mu.Lock()
	status := w.lastStatus[src.Name]
	prev := status.Error
	w.mu.Unlock()
	status.Name, status.Type, status.Format, status.Cloud, status.LastPoll = src.Name, src.Type, string(src.Format), string(src.Cloud), w.o.Now()
	status.Error = err.Error()
	if prev != status.Error {
		w.log.WarnContext(ctx, "audit source failed; retrying every poll", "source", src.Name, "error", err)
	}
	_ = w.putStatus(ctx, st, status, prev != status.Error)
	return err
}

// putStatus stores a source's status when it changed in substance or was
// last stored a while ago.
func (w *Watcher) putStatus(ctx context.Context, st state.Store, status state.SourceStatus, force bool) error {
	w.mu.Lock()
	prev, ok := w.lastStatus[status.Name]
	last := w.lastWrite[status.Name]
	w.lastStatus[status.Name] = status
	w.mu.Unlock()
	now := w.o.Now()
	if ok && !force && prev.Error == status.Error && now.Sub(last) < statusWriteInterval {
		return nil
	}
	if err := st.PutSourceStatus(ctx, status); err != nil {
		return fmt.Errorf("storing the status of audit source %s: %w", status.Name, err)
	}
	w.mu.Lock()
	w.lastWrite[status.Name] = now
	w.mu.Unlock()
	return nil
}

// match finds the break-glass accounts among the events' actors.
func (w *Watcher) match(ctx context.Context, src *WatchedSource, evs []providers.AuditEvent) []Detected {
	m := w.Matcher()
	var out []Detected
	for _, ae := range evs {
		ev, err := ActorEventOf(ae)
		if err != nil {
			w.log.WarnContext(ctx, "skipping an audit event that cannot be read", "source", src.Name, "event", ae.ID, "error", err)
			continue
		}
		for _, a := range m.Match(ev) {
			out = append(out, Detected{Account: a, Event: ev, Source: src.Name, Where: ae.Attrs["where"]})
		}
	}
	return out
}

// newIncidentID returns "inc-" and a lowercase ULID.
func newIncidentID(now time.Time) string {
	id, err := ulid.New(ulid.Timestamp(now), ulid.DefaultEntropy())
	if err != nil {
		panic(fmt.Sprintf("generating an incident ID: %v", err))
	}
	return "inc-" + strings.ToLower(id.String())
}

// record turns detections into incident writes and stores them, retrying
// from a fresh read when a concurrent write (a review) moved an incident.
func (w *Watcher) record(ctx context.Context, st state.Store, dets []Detected) error {
	set := w.o.Policies()
	if set == nil {
		return errors.New("no policy set is loaded")
	}
	window := w.o.GroupWindow
	if window <= 0 {
		window = DefaultGroupWindow
	}
	byPolicy := map[string]time.Time{} // earliest event per policy
	now := w.o.Now()
	for _, d := range dets {
		t := eventTime(d.Event, now)
		if first, ok := byPolicy[d.Account.Policy]; !ok || t.Before(first) {
			byPolicy[d.Account.Policy] = t
		}
	}
	for attempt := 0; ; attempt++ {
		now = w.o.Now()
		in := DetectInput{Now: now, Set: set, Detections: dets, GroupWindow: window,
			NewID: func() string { return newIncidentID(now) }}
		for policy, first := range byPolicy {
			reach := window
			if bg := set.BreakGlassPolicy(policy); bg != nil && bg.UseWindow > reach {
				reach = bg.UseWindow
			}
			incs, err := st.ListIncidents(ctx, state.IncidentFilter{Policy: policy, LastEventSince: first.Add(-reach)})
			if err != nil {
				return err
			}
			in.Incidents = append(in.Incidents, incs...)
			decls, err := st.ListDeclarations(ctx, state.DeclarationFilter{Policy: policy, ExpiresAfter: first})
			if err != nil {
				return err
			}
			in.Declarations = append(in.Declarations, decls...)
		}
		err := w.apply(ctx, st, Detect(in))
		if errors.Is(err, state.ErrConflict) && attempt < maxRecordAttempts {
			continue
		}
		return err
	}
}

// apply stores incident writes and wakes the delivery loop.
func (w *Watcher) apply(ctx context.Context, st state.Store, writes []IncidentWrite) error {
	queued := false
	for _, iw := range writes {
		var err error
		var stored state.Incident
		if iw.Create {
			stored, err = st.CreateIncident(ctx, iw.Incident, iw.Change(), iw.Alerts)
		} else {
			stored, err = st.UpdateIncident(ctx, iw.Incident, iw.Change(), iw.Alerts)
		}
		if err != nil {
			return fmt.Errorf("storing incident %s: %w", iw.Incident.ID, err)
		}
		queued = queued || len(iw.Alerts) > 0
		if iw.Create {
			w.incidents.Add(ctx, 1, metric.WithAttributes(attribute.String("policy", stored.Policy), attribute.String("severity", stored.Severity)))
			w.log.WarnContext(ctx, "break-glass incident opened", "incident", stored.ID, "policy", stored.Policy, "account", stored.Account,
				"severity", stored.Severity, "declared", stored.Declaration != "", "first_event", stored.FirstEvent, "review_due", stored.ReviewDue)
		}
		for _, a := range iw.Alerts {
			if a.Kind != notify.KindIncidentOpened {
				w.log.WarnContext(ctx, "break-glass alert raised", "kind", a.Kind, "incident", stored.ID, "notifier", a.Notifier)
			}
		}
	}
	if queued {
		w.Wake()
	}
	return nil
}

// CheckReviews raises the reminders of overdue reviews.
func (w *Watcher) CheckReviews(ctx context.Context, st state.Store) error {
	open, err := st.ListIncidents(ctx, state.IncidentFilter{Open: true})
	if err != nil {
		return err
	}
	now := w.o.Now()
	var due []state.Incident
	var decls []state.Declaration
	for _, inc := range open {
		if !Overdue(inc, now) {
			continue
		}
		due = append(due, inc)
		if inc.Declaration != "" && !slices.ContainsFunc(decls, func(d state.Declaration) bool { return d.Policy == inc.Policy }) {
			ds, err := st.ListDeclarations(ctx, state.DeclarationFilter{Policy: inc.Policy})
			if err != nil {
				return err
			}
			decls = append(decls, ds...)
		}
	}
	writes := Reminders(now, w.o.Policies(), due, w.o.ReminderInterval, decls)
	for _, iw := range writes {
		// A conflict means a review landed meanwhile: the next check sees it.
		if err := w.apply(ctx, st, []IncidentWrite{iw}); err != nil && !errors.Is(err, state.ErrConflict) {
			return err
		}
		if len(iw.Alerts) == 0 {
			w.log.WarnContext(ctx, "an overdue review has nobody to remind: its policy is gone", "incident", iw.Incident.ID, "policy", iw.Incident.Policy)
		}
	}
	return nil
}

// Wake makes the delivery loop look for due alerts now.
func (w *Watcher) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *Watcher) deliveryLoop(ctx context.Context, st state.Store) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		w.startDeliveries(ctx, st)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.wake:
		}
	}
}

// startDeliveries starts sending every due alert that is not being sent.
func (w *Watcher) startDeliveries(ctx context.Context, st state.Store) {
	// Listing and marking in flight happen under outboxMu, as do recording
	// an outcome and clearing the mark: a list never sees an alert pending
	// that has been sent.
	w.outboxMu.Lock()
	defer w.outboxMu.Unlock()
	due, err := st.ListAlerts(ctx, state.AlertFilter{Status: []state.AlertStatus{state.AlertPending}, DueBy: w.o.Now(), Limit: 100})
	if err != nil {
		if ctx.Err() == nil {
			w.log.WarnContext(ctx, "cannot read the alert outbox", "error", err)
		}
		return
	}
	for _, a := range due {
		id := [2]string{a.Key, a.Notifier}
		w.mu.Lock()
		busy := w.inFlight[id] || len(w.inFlight) >= maxConcurrentSends
		if !busy {
			w.inFlight[id] = true
		}
		w.mu.Unlock()
		if busy {
			continue
		}
		w.sends.Add(1)
		go func() {
			defer w.sends.Done()
			_ = w.deliverOne(ctx, st, a)
		}()
	}
}

// DeliverDue sends every due alert and waits for the outcomes: the
// delivery loop's work, done once (for tests and for draining).
func (w *Watcher) DeliverDue(ctx context.Context, st state.Store) error {
	due, err := st.ListAlerts(ctx, state.AlertFilter{Status: []state.AlertStatus{state.AlertPending}, DueBy: w.o.Now()})
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range due {
		if err := w.deliverOne(ctx, st, a); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sender returns the sender of the named notifier of the current set.
func (w *Watcher) sender(name string) (notify.Sender, error) {
	set := w.o.Policies()
	var n *policies.Notifier
	if set != nil {
		n = set.Notifier(name)
	}
	if n == nil {
		return nil, fmt.Errorf("notifier %q is not in the loaded policy set: add a notifier block with that name", name)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if e, ok := w.senders[n]; ok {
		return e.sender, e.err
	}
	opts := w.o.Notify
	if opts.Now == nil {
		opts.Now = w.o.Now
	}
	s, err := notify.New(n, w.o.Getenv, opts)
	w.senders[n] = senderEntry{s, err}
	return s, err
}

// deliverOne sends one alert and records the outcome.
func (w *Watcher) deliverOne(ctx context.Context, st state.Store, a state.Alert) error {
	// A send under way finishes even when the watcher stops (the lease is
	// released only after), and its outcome is recorded, so that the next
	// leader does not send a delivered alert again.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sendTimeout)
	defer cancel()
	s, err := w.sender(a.Notifier)
	if err == nil {
		err = s.Send(ctx, a.Key, a.Payload)
	}
	now := w.o.Now()
	a.Attempts++
	if err == nil {
		a.Status, a.LastError, a.Delivered = state.AlertDelivered, "", now
		w.log.InfoContext(ctx, "alert delivered", "alert", a.Key, "notifier", a.Notifier, "attempts", a.Attempts)
	} else {
		a.LastError = err.Error()
		a.NextAttempt = now.Add(redeliveryDelay(a.Attempts, err))
		if now.Sub(a.Created) >= w.o.MaxAlertAge {
			a.Status = state.AlertFailed
			w.log.ErrorContext(ctx, "giving up on an alert", "alert", a.Key, "notifier", a.Notifier, "attempts", a.Attempts, "error", err)
		} else {
			w.log.WarnContext(ctx, "alert not delivered; will retry", "alert", a.Key, "notifier", a.Notifier, "attempts", a.Attempts,
				"next_attempt", a.NextAttempt, "error", err)
		}
	}
	w.outboxMu.Lock()
	_, uerr := st.UpdateAlert(ctx, a)
	w.mu.Lock()
	delete(w.inFlight, [2]string{a.Key, a.Notifier})
	w.mu.Unlock()
	w.outboxMu.Unlock()
	if uerr != nil {
		return fmt.Errorf("recording the delivery of alert %s to %s: %w", a.Key, a.Notifier, uerr)
	}
	return err
}

// redeliveryDelay is the wait before the next delivery attempt of an alert
// that has failed attempts times: 30 s doubling to an hour, with jitter,
// and never less than the notifier's Retry-After.
func redeliveryDelay(attempts int, err error) time.Duration {
	d := maxRedeliveryDelay
	if attempts <= 8 {
		d = min(maxRedeliveryDelay, firstRedeliveryDelay<<(attempts-1))
	}
	d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
	return max(d, providers.RetryAfterOf(err))
}
