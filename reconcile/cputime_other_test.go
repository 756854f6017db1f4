//go:build !linux

package reconcile_test

import "time"

func cpuTime() (time.Duration, bool) { return 0, false }
