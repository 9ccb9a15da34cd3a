//go:build linux

package attach

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

// StaticNamesRead counts the distinct names read from the executable of pid's target.
func StaticNamesRead(a *Agent, pid int) int {
	a.mu.Lock()
	t := a.live[pid]
	a.mu.Unlock()
	if t == nil || t.exe.names == nil {
		return -1
	}
	t.exe.names.mu.Lock()
	defer t.exe.names.mu.Unlock()
	return len(t.exe.names.cache)
}
