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
