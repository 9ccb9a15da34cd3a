//go:build linux

package attach

import "github.com/asobserve/asobserve/bpf"

// FailAttach makes attaching the op (stages=false) or stage probes fail for the
// executables fail picks, until the returned restore is called.
func FailAttach(fail func(path string, stages bool) error) (restore func()) {
	attachFault = fail
	return func() { attachFault = nil }
}

// OnDetachDrained runs f in every Detach between reading the target's last records and
// releasing its per-pid state, until the returned restore is called.
func OnDetachDrained(f func(pid int)) (restore func()) {
	detachDrained = f
	return func() { detachDrained = nil }
}

// OneOpSlot makes agents created until the returned restore is called keep every
// goroutine's in-flight op in one slot: all goroutines but one spill to the hash map.
func OneOpSlot() (restore func()) {
	oneOpSlot = true
	return func() { oneOpSlot = false }
}

// OpSlotsUsed counts the in-flight op slots that ever held an op: a freed slot keeps the
// id of its last op.
func OpSlotsUsed(a *Agent) (int, error) {
	n := 0
	var idx uint32
	var slot bpf.AsobserveOpSlot
	it := a.objs.OpSlots.Iterate()
	for it.Next(&idx, &slot) {
		if slot.St.OpId != 0 {
			n++
		}
	}
	return n, it.Err()
}
