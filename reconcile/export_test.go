package reconcile

import (
	"context"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
)

// SetEndedHook makes the engine call f for every grant it marks expired,
// with the lag from its expiry to the cloud's confirmation: what the
// elevate_expiry_lag_seconds histogram records, per grant, for the lag
// benchmark's percentiles. Set it before Run.
func SetEndedHook(e *Engine, f func(g model.Grant, lag time.Duration)) { e.onEnded = f }

// CrashOnCancel makes Run return without releasing the lease when its
// context ends, as a process that dies would: another replica must wait
// for the lease to expire.
func CrashOnCancel(e *Engine) { e.noRelease = true }

// DesiredFor returns the desired bindings of scope as a full pass over
// grants at now plans them.
func DesiredFor(set *policies.Set, grants []*model.Grant, now time.Time, scope model.ScopeKey) []model.Binding {
	e := &Engine{opts: Options{Policies: func() *policies.Set { return set }}}
	e.loop = newLoopState()
	s, err := e.snapshot(context.Background(), nil, grants, now, true)
	if err != nil {
		panic(err)
	}
	e.index(s, nil)
	return s.desiredFor(scope)
}
