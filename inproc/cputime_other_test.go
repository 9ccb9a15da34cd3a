//go:build !linux

package inproc

import "testing"

// loopCPU runs the benchmark loop; off Linux there is no per-thread CPU time to report.
func loopCPU(b *testing.B, body func()) {
	for b.Loop() {
		body()
	}
}
