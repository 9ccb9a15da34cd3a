//go:build linux

package attach

import (
	"encoding/binary"
	"fmt"
	"reflect"

	"github.com/cilium/ebpf"

	"github.com/asobserve/asobserve/bpf"
)

// processKeyed are the maps whose keys start with the tgid of the process that made the
// entry (struct gkey, pkey, stage_key). withOpID says the entry's value starts with the
// id of its operation (struct op_state, owner, worker_state), which keys spawns.
func (a *Agent) processKeyed() []struct {
	m        *ebpf.Map
	withOpID bool
} {
	o := &a.objs
	return []struct {
		m        *ebpf.Map
		withOpID bool
	}{
		{o.Inflight, true}, {o.AsyncOps, true}, {o.Corr, true}, {o.Workers, true}, {o.EarlyEnds, false},
		{o.Stages, false}, {o.Io, false}, {o.UnsentErrors, false}, {o.AppSpans, false}, {o.SpanGoroutine, false}, {o.Spawning, false},
	}
}

// releaseProcessState deletes what the probes keep for a process that is no longer
// watched. A process that exits, or is detached, with operations in flight never runs
// their return probes, and the LRU maps would hold the entries until evicted, so the
// in-flight and stage state of a detached process would be counted against the next one.
func (a *Agent) releaseProcessState(pid uint32) {
	var opIDs []uint64
	for _, pm := range a.processKeyed() {
		var dead [][]byte
		var key, val []byte
		it := pm.m.Iterate()
		for it.Next(&key, &val) {
			if len(key) < 4 || binary.NativeEndian.Uint32(key) != pid {
				continue
			}
			dead = append(dead, key)
			if pm.withOpID && len(val) >= 8 {
				opIDs = append(opIDs, binary.NativeEndian.Uint64(val))
			}
		}
		for _, k := range dead {
			_ = pm.m.Delete(k) // an entry the probes deleted meanwhile is gone either way
		}
	}
	opIDs = append(opIDs, a.releaseOpSlots(pid)...)
	for _, id := range opIDs {
		_ = a.objs.Spawns.Delete(id)
	}
}

// releaseOpSlots frees the in-flight op slots a process holds and returns their op ids.
// Only the process's own return probes free its slots, and it runs no more of them; the
// one exception, a new process on the pid that is already watched and returns from an op
// on a goroutine at the same address in the same few microseconds, loses that op.
func (a *Agent) releaseOpSlots(pid uint32) []uint64 {
	var opIDs []uint64
	var idx uint32
	var slot bpf.AsobserveOpSlot
	it := a.objs.OpSlots.Iterate()
	for it.Next(&idx, &slot) {
		if slot.Owner != uint64(pid) {
			continue
		}
		opIDs = append(opIDs, slot.St.OpId)
		_ = a.objs.OpSlots.Update(idx, bpf.AsobserveOpSlot{}, ebpf.UpdateExist) // an array's slot always exists
	}
	return opIDs
}

// heldOpSlots counts the in-flight op slots that some process holds.
func (a *Agent) heldOpSlots() (int, error) {
	n := 0
	var idx uint32
	var slot bpf.AsobserveOpSlot
	it := a.objs.OpSlots.Iterate()
	for it.Next(&idx, &slot) {
		if slot.Owner != 0 {
			n++
		}
	}
	return n, it.Err()
}

// MapEntries counts the entries of every hash map of the BPF programs, by map name, the
// in-flight op slots held ("op_slots"), the pid filter slots held ("pid_slots") and the
// probe-table rows in use ("rows"): what a leak check compares with its baseline. Other
// arrays are left out: their size never changes.
func (a *Agent) MapEntries() (map[string]int, error) {
	out := map[string]int{}
	maps := reflect.ValueOf(&a.objs.AsobserveMaps).Elem()
	for i := range maps.NumField() {
		m, ok := maps.Field(i).Interface().(*ebpf.Map)
		if !ok || m == nil {
			continue
		}
		if typ := m.Type(); typ != ebpf.Hash && typ != ebpf.LRUHash {
			continue
		}
		name := maps.Type().Field(i).Tag.Get("ebpf")
		n := 0
		var key, val []byte
		it := m.Iterate()
		for it.Next(&key, &val) {
			n++
		}
		if err := it.Err(); err != nil {
			return nil, fmt.Errorf("counting entries of %s: %w", name, err)
		}
		out[name] = n
	}
	held, err := a.heldOpSlots()
	if err != nil {
		return nil, fmt.Errorf("counting held op slots: %w", err)
	}
	out["op_slots"] = held
	if out["pid_slots"], err = a.pids.heldSlots(); err != nil {
		return nil, fmt.Errorf("counting held pid slots: %w", err)
	}
	a.mu.Lock()
	out["rows"] = maxRows - len(a.free)
	a.mu.Unlock()
	return out, nil
}
