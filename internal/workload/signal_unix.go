//go:build !windows

package workload

import (
	"os"
	"syscall"
)

// startSignal starts a run waiting with WaitSignal.
var startSignal os.Signal = syscall.SIGUSR1
