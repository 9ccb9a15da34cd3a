//go:build linux

package attach

import (
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/asobserve/asobserve/bpf"
	"github.com/asobserve/asobserve/internal/e2etest"
)

// Where the filter puts each process, on the real maps, with every pid sharing slot 0.
func TestPIDFilterPlacement(t *testing.T) {
	e2etest.RequireRoot(t) // creating BPF maps
	spec, err := bpf.LoadAsobserve()
	if err != nil {
		t.Fatal(err)
	}
	slots, err := ebpf.NewMap(spec.Maps["pid_slots"])
	if err != nil {
		t.Fatal(err)
	}
	defer slots.Close()
	hash, err := ebpf.NewMap(spec.Maps["pids"])
	if err != nil {
		t.Fatal(err)
	}
	defer hash.Close()
	f := newPIDFilter(slots, hash, 0)
	target := func(gen uint32) bpf.AsobserveTarget { return bpf.AsobserveTarget{Bias: uint64(gen) << 12, Gen: gen} }
	slot := func() bpf.AsobservePidSlot {
		t.Helper()
		var s bpf.AsobservePidSlot
		if err := slots.Lookup(uint32(0), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	inHash := func(pid uint32) uint32 { // the generation there, 0 if none
		var cur bpf.AsobserveTarget
		if err := hash.Lookup(pid, &cur); err != nil {
			return 0
		}
		return cur.Gen
	}
	watch := func(pid, gen uint32) {
		t.Helper()
		if err := f.watch(watched{pid, gen}, target(gen)); err != nil {
			t.Fatal(err)
		}
	}

	watch(10, 1)
	if s := slot(); s.Tgid != 10 || s.T != target(1) || inHash(10) != 0 {
		t.Fatalf("first process: slot %+v, hash gen %d; want it in the slot only", s, inHash(10))
	}
	watch(11, 2)
	if s := slot(); s.Tgid != 10 || inHash(11) != 2 {
		t.Fatalf("second process on the held slot: slot tgid %d, hash gen %d; want the hash", s.Tgid, inHash(11))
	}
	// A new process on pid 10: the hash, and the slot freed with the old target's bytes.
	watch(10, 3)
	if s := slot(); s.Tgid != 0 || s.T != target(1) || inHash(10) != 3 {
		t.Fatalf("pid 10 reused: slot %+v, hash gen %d; want a free slot keeping gen 1's target and gen 3 in the hash", s, inHash(10))
	}
	watch(12, 4)
	if s := slot(); s.Tgid != 0 || inHash(12) != 4 {
		t.Fatalf("a process while the slot cools: slot tgid %d, hash gen %d; want the hash", s.Tgid, inHash(12))
	}
	// Unwatching an older generation leaves the newer attach's entry.
	f.unwatch(watched{10, 1})
	f.unwatch(watched{11, 2})
	if inHash(10) != 3 || inHash(11) != 0 {
		t.Fatalf("after unwatching gens 1 and 2: hash gens %d, %d; want 3, none", inHash(10), inHash(11))
	}
	f.freed[0] = time.Now().Add(-slotCooling)
	watch(13, 5)
	if s := slot(); s.Tgid != 13 || s.T != target(5) {
		t.Fatalf("a process once the slot cooled: slot %+v; want it in the slot", s)
	}
	if n, err := f.heldSlots(); err != nil || n != 1 {
		t.Fatalf("heldSlots = %d, %v; want 1", n, err)
	}
	f.unwatch(watched{13, 5})
	f.unwatch(watched{10, 3})
	f.unwatch(watched{12, 4})
	if n, err := f.heldSlots(); err != nil || n != 0 || inHash(10)+inHash(12) != 0 {
		t.Fatalf("after unwatching all: %d slots held (%v), hash gens %d, %d", n, err, inHash(10), inHash(12))
	}
}
