package clock

import "golang.org/x/sys/unix"

func systemSource() source {
	return source{mono: monotonicNow, wall: realtimeNow}
}

// MonotonicNow returns CLOCK_MONOTONIC in nanoseconds, the clock of bpf_ktime_get_ns.
func MonotonicNow() uint64 { return uint64(monotonicNow()) }

func monotonicNow() int64 { return readClock(unix.CLOCK_MONOTONIC) }

func realtimeNow() int64 { return readClock(unix.CLOCK_REALTIME) }

func readClock(id int32) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(id, &ts); err != nil {
		panic("clock_gettime: " + err.Error()) // cannot fail for these clock ids on Linux
	}
	return ts.Nano()
}
