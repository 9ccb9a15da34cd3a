package inproc

import (
	"runtime"
	"syscall"
	"testing"
)

// loopCPU runs the benchmark loop on one locked OS thread and reports that thread's own CPU
// time per iteration as cpu-ns/op: on a shared VM, wall time per op also counts the time
// other processes held the core, CPU time counts only ours.
func loopCPU(b *testing.B, body func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPU()
	n := 0
	for b.Loop() {
		body()
		n++
	}
	b.ReportMetric(float64(threadCPU()-start)/float64(n), "cpu-ns/op")
}

func threadCPU() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_THREAD, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
