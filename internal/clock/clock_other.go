//go:build !linux

package clock

import "time"

// Off Linux there are no BPF timestamps to convert; the process's own monotonic clock stands
// in so that the package builds and behaves consistently.
var start = time.Now()

func systemSource() source {
	return source{mono: monotonicNow, wall: func() int64 { return time.Now().UnixNano() }}
}

// MonotonicNow returns this process's monotonic clock in nanoseconds.
func MonotonicNow() uint64 { return uint64(monotonicNow()) }

func monotonicNow() int64 { return int64(time.Since(start)) + 1 }
