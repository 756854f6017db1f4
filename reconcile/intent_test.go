package reconcile_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/providers"
	"github.com/elevatehq/elevate/reconcile"
	"github.com/elevatehq/elevate/state"
)

// intentWatcher passes calls through to a real provider and, at each
// Apply, reads what the audit log already holds about the scope.
type intentWatcher struct {
	providers.Provider
	store *state.Store

	mu      sync.Mutex
	applies int
	seen    [][]state.AuditEvent // the scope's intent entries at each Apply
}

func (w *intentWatcher) Apply(ctx context.Context, scope model.ScopeKey, changes []model.Change) ([]providers.Result, error) {
	entries, err := (*w.store).ListAudit(ctx, state.AuditFilter{Action: reconcile.ActionApply, Subject: "scope/" + scope.String()})
	w.mu.Lock()
	w.applies++
	if err == nil {
		w.seen = append(w.seen, entries)
	}
	w.mu.Unlock()
	return w.Provider.Apply(ctx, scope, changes)
}

// TestIntentIsAuditedBeforeTheCloudWrite: every Apply finds the audit
// entry of its changes already stored, naming each change.
func TestIntentIsAuditedBeforeTheCloudWrite(t *testing.T) {
	var st state.Store
	w := &intentWatcher{store: &st}
	r := newRig(t, viewerHCL, func(o *reconcile.Options) {
		w.Provider = o.Providers[model.CloudGCP]
		o.Providers[model.CloudGCP] = w
	})
	st = r.store
	g := r.approved("g-intent", bob, "viewer", now, now.Add(time.Hour))
	r.start()
	r.waitFor("the binding", func() bool { return len(owned(r.gcp, beta, g.ID)) == 1 })
	r.clock.Advance(time.Hour + time.Second)
	r.waitFor("the expired binding removed", func() bool { return len(owned(r.gcp, beta, g.ID)) == 0 })

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.applies < 2 || len(w.seen) != w.applies {
		t.Fatalf("%d applies, %d audit reads", w.applies, len(w.seen))
	}
	type change struct {
		Op, Role, Principal, Owner, Reason string
		Expires                            *time.Time
	}
	var data struct {
		Scope   string
		Changes []change
	}
	for i, entries := range w.seen {
		if len(entries) != i+1 {
			t.Fatalf("apply %d found %d intent entries for the scope, want %d (one per apply, written before it)", i+1, len(entries), i+1)
		}
		if err := json.Unmarshal(entries[i].Data, &data); err != nil {
			t.Fatal(err)
		}
		if data.Scope != beta.String() || len(data.Changes) != 1 {
			t.Fatalf("intent %d: %s", i+1, entries[i].Data)
		}
	}
	first := w.seen[0][0]
	_ = json.Unmarshal(first.Data, &data)
	if c := data.Changes[0]; c.Op != "create" || c.Owner != g.ID || c.Principal != bob.String() || c.Role != "roles/viewer" || c.Expires == nil || first.Actor != reconcile.ActorReconcile {
		t.Errorf("the create's intent: %s by %s", first.Data, first.Actor)
	}
	last := w.seen[len(w.seen)-1]
	_ = json.Unmarshal(last[len(last)-1].Data, &data)
	if c := data.Changes[0]; c.Op != "delete" || c.Owner != g.ID || c.Reason != string(model.ReasonExpired) {
		t.Errorf("the removal's intent: %s", last[len(last)-1].Data)
	}
}
