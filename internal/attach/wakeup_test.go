//go:build linux

package attach

import (
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/asobserve/asobserve/bpf"
)

// All CPUs together leave at most an eighth of the ring unannounced, and no less than
// one record's worth short of it; a ring too small for that wakes on every record.
func TestWakeupEveryLeavesAnEighthOfTheRing(t *testing.T) {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	rec := uint64(binary.Size(bpf.AsobserveEventOp{}))
	const ring = 8 << 20
	n := wakeupEvery(ring)
	if unannounced := n * uint64(cpus) * rec; unannounced > ring/8 || (n+1)*uint64(cpus)*rec <= ring/8 {
		t.Fatalf("wakeupEvery(%d) = %d: %d CPUs leave %d bytes unannounced, want the most records within %d", ring, n, cpus, unannounced, ring/8)
	}
	if n := wakeupEvery(4096); n != 1 {
		t.Fatalf("wakeupEvery(4096) = %d, want 1", n)
	}
}
