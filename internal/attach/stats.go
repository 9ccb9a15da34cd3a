//go:build linux

package attach

import (
	"time"

	"github.com/cilium/ebpf"
)

// ProgramStat is the kernel's run statistics of one BPF program. RunCount and RunTime
// only advance while BPF statistics are enabled (ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)).
type ProgramStat struct {
	RunCount uint64
	RunTime  time.Duration
}

// ProgramStats returns the statistics of the probe programs, keyed by their BPF names.
func (a *Agent) ProgramStats() (map[string]ProgramStat, error) {
	out := map[string]ProgramStat{}
	for name, p := range map[string]*ebpf.Program{
		"probe_entry":  a.objs.ProbeEntry,
		"probe_return": a.objs.ProbeReturn,
		"probe_empty":  a.objs.ProbeEmpty,
	} {
		s, err := p.Stats()
		if err != nil {
			return nil, err
		}
		out[name] = ProgramStat{RunCount: s.RunCount, RunTime: s.Runtime}
	}
	return out, nil
}
