//go:build linux

package attach

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
)

// A verifier rejection fails with EACCES, as a missing capability can: the hint must
// follow the verifier's log, not the errno.
func TestLoadErrorNamesTheCause(t *testing.T) {
	rejected := fmt.Errorf("field ProbeEntry: %w", &ebpf.VerifierError{Cause: syscall.EACCES, Log: []string{"combined stack size of 2 calls is 672. Too large"}})
	for _, c := range []struct {
		err       error
		want, not string
	}{
		{rejected, "the kernel verifier rejected them", "CAP_BPF"},
		{fmt.Errorf("load program: %w", syscall.EPERM), "needs CAP_BPF and CAP_PERFMON", "verifier"},
		{fmt.Errorf("create map: %w", syscall.EINVAL), "needs Linux >= 5.15 with uprobes and ring buffers", "CAP_BPF"},
	} {
		msg := loadError(c.err).Error()
		if !strings.Contains(msg, c.want) || strings.Contains(msg, c.not) {
			t.Errorf("loadError(%v) = %q: want it to say %q and not %q", c.err, msg, c.want, c.not)
		}
	}
}
