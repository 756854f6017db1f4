//go:build linux

package reconcile_test

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time the process has used, user plus system, so
// a benchmark can report its cost independent of other load on the machine.
func cpuTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
