//go:build linux

package attach

// FailAttach makes attaching the op (stages=false) or stage probes fail for the
// executables fail picks, until the returned restore is called.
func FailAttach(fail func(path string, stages bool) error) (restore func()) {
	attachFault = fail
	return func() { attachFault = nil }
}
