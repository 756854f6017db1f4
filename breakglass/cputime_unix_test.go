//go:build unix

package breakglass

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time this process has used, user and system,
// all threads; 0 when it cannot be read.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
