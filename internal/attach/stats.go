//go:build linux

package attach

import (
	"time"

	"github.com/cilium/ebpf"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// ProgramStat is the kernel's run statistics of one BPF program. RunCount and RunTime
// only advance while BPF statistics are enabled (Options.ProgramStats).
type ProgramStat struct {
	RunCount uint64
	RunTime  time.Duration
}

// ProgramStats returns the statistics of the probe programs, keyed by their BPF names
// (single- and multi-uprobe variants of a program are added up).
func (a *Agent) ProgramStats() (map[string]ProgramStat, error) {
	out := map[string]ProgramStat{}
	for name, progs := range map[string][]*ebpf.Program{
		"probe_entry":  {a.objs.ProbeEntry, a.objs.ProbeEntryMulti},
		"probe_return": {a.objs.ProbeReturn, a.objs.ProbeReturnMulti},
		"probe_empty":  {a.objs.ProbeEmpty, a.objs.ProbeEmptyMulti},
	} {
		var st ProgramStat
		for _, p := range progs {
			s, err := p.Stats()
			if err != nil {
				return nil, err
			}
			st.RunCount += s.RunCount
			st.RunTime += s.Runtime
		}
		out[name] = st
	}
	return out, nil
}

// enableStats turns on the kernel's BPF run-time statistics for as long as the agent
// runs, so operators see the observer's own cost. It is best effort.
func (a *Agent) enableStats() {
	closer, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		a.opts.Logf("BPF run-time statistics unavailable (%v): asobserve_bpf_program_* will stay 0", err)
		return
	}
	a.statsCloser = closer
}

var (
	bpfRunsDesc = prometheus.NewDesc("asobserve_bpf_program_runs_total",
		"Times the kernel ran each asobserve BPF program (one per probe hit).", []string{"program"}, nil)
	bpfTimeDesc = prometheus.NewDesc("asobserve_bpf_program_run_seconds_total",
		"Time the kernel spent in each asobserve BPF program.", []string{"program"}, nil)
)

type statsCollector struct{ a *Agent }

func (c statsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- bpfRunsDesc
	ch <- bpfTimeDesc
}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	stats, err := c.a.ProgramStats()
	if err != nil {
		return
	}
	for name, s := range stats {
		ch <- prometheus.MustNewConstMetric(bpfRunsDesc, prometheus.CounterValue, float64(s.RunCount), name)
		ch <- prometheus.MustNewConstMetric(bpfTimeDesc, prometheus.CounterValue, s.RunTime.Seconds(), name)
	}
}
