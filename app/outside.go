package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/state"
)

// outsideChangeAction is the audit action recorded when a cloud's audit
// log shows that someone other than elevate changed the access policy of a
// scope elevate manages.
const outsideChangeAction = "scope.changed_outside"

// outsideChangePoll is how often the reconcile leader looks for changes
// other replicas recorded.
const outsideChangePoll = 2 * time.Second

// outsideChanges carries the news of an access policy changed outside
// elevate to the reconcile leader, whichever replica heard it. The audit
// watchers and reconcile hold separate leases, so the replica whose audit
// source sees the change may not be the one that reconciles: it records
// the change in the audit log (which is worth having there anyway), and
// the leader follows the log and reconciles the scope. A replica that
// leads itself also triggers its engine at once.
type outsideChanges struct {
	store    state.Store
	holder   string
	isLeader func() bool
	trigger  func(...model.ScopeKey)
	interval time.Duration
	log      *slog.Logger
}

// outsideChangeData is the data of an outsideChangeAction entry.
type outsideChangeData struct {
	Cloud      model.Cloud `json:"cloud"`
	Scope      string      `json:"scope"`
	ReportedBy string      `json:"reported_by"`
	// Triggered says the reporting replica led reconcile and triggered
	// its own pass.
	Triggered bool `json:"triggered"`
}

// record notes that scope was changed outside elevate: an audit entry for
// the leader, and a pass at once when this replica leads.
func (o *outsideChanges) record(ctx context.Context, scope model.ScopeKey) {
	leading := o.isLeader()
	data, _ := json.Marshal(outsideChangeData{Cloud: scope.Cloud, Scope: scope.Scope, ReportedBy: o.holder, Triggered: leading})
	if _, err := o.store.AppendAudit(ctx, state.AuditEvent{
		Actor: "elevate", Action: outsideChangeAction, Subject: "scope/" + scope.String(), Data: data,
	}); err != nil {
		o.log.ErrorContext(ctx, "cannot record a change made outside elevate; the scope is repaired at the next full resync unless this replica leads reconcile",
			"scope", scope.String(), "error", err)
	}
	if leading {
		o.trigger(scope)
	}
}

// run follows the audit log while this replica leads reconcile, and
// triggers a pass over every scope another replica recorded as changed.
// On becoming leader it starts from the newest entry: the full pass a new
// leader runs at once covers what came before.
func (o *outsideChanges) run(ctx context.Context) {
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	cursor := int64(-1) // -1: not following (not the leader)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !o.isLeader() {
			cursor = -1
			continue
		}
		next, scopes, err := o.poll(ctx, cursor)
		if err != nil {
			o.log.WarnContext(ctx, "cannot read the audit log for changes made outside elevate; retrying", "error", err)
			continue
		}
		cursor = next
		if len(scopes) > 0 {
			o.log.InfoContext(ctx, "another replica saw access policies changed outside elevate; reconciling them", "scopes", len(scopes))
			o.trigger(scopes...)
		}
	}
}

// poll reads the changes recorded after cursor (-1: only find the log's
// head) and returns the new cursor and the scopes other replicas reported.
func (o *outsideChanges) poll(ctx context.Context, cursor int64) (int64, []model.ScopeKey, error) {
	// The head first: entries of other actions after the last change
	// need not be scanned again.
	head, err := o.store.ListAudit(ctx, state.AuditFilter{Tail: true, Limit: 1})
	if err != nil {
		return cursor, nil, err
	}
	next := int64(0)
	if len(head) > 0 {
		next = head[0].Seq
	}
	if cursor < 0 {
		return next, nil, nil
	}
	entries, err := o.store.ListAudit(ctx, state.AuditFilter{AfterSeq: cursor, Action: outsideChangeAction})
	if err != nil {
		return cursor, nil, err
	}
	var scopes []model.ScopeKey
	seen := map[model.ScopeKey]bool{}
	for _, e := range entries {
		next = max(next, e.Seq)
		var d outsideChangeData
		if err := json.Unmarshal(e.Data, &d); err != nil || d.Cloud == "" || d.Scope == "" {
			o.log.WarnContext(ctx, "skipping an unreadable audit entry of a change made outside elevate", "seq", e.Seq)
			continue
		}
		k := model.ScopeKey{Cloud: d.Cloud, Scope: d.Scope}
		if d.ReportedBy == o.holder && d.Triggered || seen[k] {
			continue // this replica triggered it when it recorded it
		}
		seen[k] = true
		scopes = append(scopes, k)
	}
	return next, scopes, nil
}
