//go:build linux

package attach

import (
	"fmt"
	"time"

	"github.com/cilium/ebpf"

	"github.com/asobserve/asobserve/bpf"
)

// pidSlots is the size of the pid filter's array (maps.h, pid_slots).
const pidSlots = uint32(bpf.AsobserveLimitsPID_SLOTS)

// slotCooling is how long a freed slot waits before another process takes it: a program
// that found the old tgid just before the slot was freed is still reading its target
// (programs run for microseconds), and the new target is written over it.
const slotCooling = time.Second

// pidFilter is the BPF pid filter: the array the entry probes look in first, and the hash
// that holds the processes whose slot another holds. The agent owns all writes; the exit
// tracepoint only clears a slot's or the hash's entry of a process that ended. Its
// methods are called with the agent's mu held.
type pidFilter struct {
	slots, hash *ebpf.Map
	mask        uint32
	held        map[uint32]watched // slot -> the process in it, as the agent wrote it
	freed       map[uint32]time.Time
}

func newPIDFilter(slots, hash *ebpf.Map, mask uint32) *pidFilter {
	return &pidFilter{slots: slots, hash: hash, mask: mask, held: map[uint32]watched{}, freed: map[uint32]time.Time{}}
}

// slotMask is the pid_slot_mask for a filter of n slots (a power of two, at most
// pidSlots; 0 means pidSlots).
func slotMask(n int) (uint32, error) {
	if n == 0 {
		return pidSlots - 1, nil
	}
	if n < 0 || uint32(n) > pidSlots || n&(n-1) != 0 {
		return 0, fmt.Errorf("pid filter slots %d: want a power of two up to %d", n, pidSlots)
	}
	return uint32(n) - 1, nil
}

// watch makes t (the target of pid w.pid, generation w.gen) watched. A pid whose slot
// still holds an older process's target (a new process took the pid) goes to the hash,
// which the probes see once the slot is freed, so the pid is watched throughout.
func (f *pidFilter) watch(w watched, t bpf.AsobserveTarget) error {
	idx := w.pid & f.mask
	held, occupied := f.held[idx]
	if occupied && held.pid == w.pid {
		if err := f.hash.Put(w.pid, t); err != nil {
			return err
		}
		return f.free(idx)
	}
	if occupied || time.Since(f.freed[idx]) < slotCooling {
		return f.hash.Put(w.pid, t)
	}
	// The target first, while no tgid names the slot; then the tgid over the same bytes.
	if err := f.slots.Put(idx, bpf.AsobservePidSlot{T: t}); err != nil {
		return err
	}
	if err := f.slots.Put(idx, bpf.AsobservePidSlot{Tgid: uint64(w.pid), T: t}); err != nil {
		return err
	}
	f.held[idx] = w
	delete(f.freed, idx)
	return nil
}

// unwatch stops watching w's process, leaving a newer attach's entry for the pid.
func (f *pidFilter) unwatch(w watched) {
	idx := w.pid & f.mask
	if f.held[idx] == w {
		_ = f.free(idx)
	}
	var cur bpf.AsobserveTarget
	if err := f.hash.Lookup(w.pid, &cur); err == nil && cur.Gen == w.gen {
		_ = f.hash.Delete(w.pid)
	}
}

// free clears slot idx's tgid and keeps its target's bytes for the programs still reading
// them.
func (f *pidFilter) free(idx uint32) error {
	var cur bpf.AsobservePidSlot
	if err := f.slots.Lookup(idx, &cur); err != nil {
		return err
	}
	cur.Tgid = 0
	if err := f.slots.Put(idx, cur); err != nil {
		return err
	}
	delete(f.held, idx)
	f.freed[idx] = time.Now()
	return nil
}

// heldSlots counts the slots whose tgid the probes would match.
func (f *pidFilter) heldSlots() (int, error) {
	n := 0
	var idx uint32
	var s bpf.AsobservePidSlot
	it := f.slots.Iterate()
	for it.Next(&idx, &s) {
		if s.Tgid != 0 {
			n++
		}
	}
	return n, it.Err()
}
