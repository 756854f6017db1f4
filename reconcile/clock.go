package reconcile

import "time"

// Clock is the engine's source of time: the current instant and timers that
// fire at an absolute instant. Tests pass a fake clock they advance by hand.
//
// Timers are set for an instant, not a duration, so a fake clock moved past
// the instant between reading Now and setting the timer cannot lose the
// wake-up.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// TimerAt returns a timer that fires once, when the clock reaches at
	// (at once if it already has).
	TimerAt(at time.Time) Timer
}

// Timer is a one-shot timer of a Clock.
type Timer interface {
	// C delivers the time the timer fired at.
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it stopped
	// it before it fired.
	Stop() bool
}

// SystemClock returns the wall clock. This file is the only place in the
// package that reads it (TestNoWallClock checks).
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) TimerAt(at time.Time) Timer {
	return systemTimer{time.NewTimer(time.Until(at))}
}

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time { return t.t.C }
func (t systemTimer) Stop() bool          { return t.t.Stop() }
