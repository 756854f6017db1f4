package reconcile_test

import (
	"context"
	"testing"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/reconcile"
	"github.com/elevatehq/elevate/state"
)

// gatedStore holds the engine's activations (grant updates by the
// reconcile actor with action activate) until gate is closed: a store
// slower than the passes, as SQLite is under a burst of requests.
type gatedStore struct {
	state.Store
	gate chan struct{}
}

func (s *gatedStore) WithFence(f state.Fence) state.Store {
	return &gatedStore{Store: s.Store.WithFence(f), gate: s.gate}
}

func (s *gatedStore) UpdateGrant(ctx context.Context, g model.Grant, c state.Change) (model.Grant, error) {
	if c.Action == "activate" {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return model.Grant{}, ctx.Err()
		}
	}
	return s.Store.UpdateGrant(ctx, g, c)
}

// TestActiveGaugeCountsQueuedActivations: a pass that runs while the
// activation of a grant is still being written counts the grant as active,
// so the gauge is right even when no pass follows the write.
func TestActiveGaugeCountsQueuedActivations(t *testing.T) {
	gate := make(chan struct{})
	r := newRig(t, viewerHCL, func(o *reconcile.Options) { o.Store = &gatedStore{Store: o.Store, gate: gate} })
	defer func() {
		select {
		case <-gate:
		default:
			close(gate)
		}
	}()
	g := r.approved("g-gauge", bob, "viewer", now, now.Add(time.Hour))
	r.start()
	r.waitFor("the binding", func() bool { return len(owned(r.gcp, beta, g.ID)) == 1 })
	passes := r.passes()
	r.engine.Trigger(beta)
	r.waitFor("a second pass", func() bool { return r.passes() > passes })
	if got := r.grant(g.ID); got.Status != model.StatusApproved {
		t.Fatalf("the activation was written through the gate: %s", got.Status)
	}
	if v, ok := r.gauge(reconcile.MetricGrantsActive); !ok || v != 1 {
		t.Fatalf("active gauge %v (%v) after a pass while the activation is queued, want 1", v, ok)
	}
	close(gate)
	r.waitFor("the grant is active in the store", r.hasStatus(g.ID, model.StatusActive))
	if v, _ := r.gauge(reconcile.MetricGrantsActive); v != 1 {
		t.Fatalf("active gauge %v after the activation, want 1", v)
	}
}
