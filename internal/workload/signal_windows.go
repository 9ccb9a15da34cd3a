//go:build windows

package workload

import "os"

// Windows has no SIGUSR1: WaitSignal is refused there.
var startSignal os.Signal
