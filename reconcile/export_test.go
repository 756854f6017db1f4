package reconcile

import (
	"time"

	"github.com/elevatehq/elevate/model"
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

// DesiredByScope exposes desiredByScope to the tests.
var DesiredByScope = desiredByScope
