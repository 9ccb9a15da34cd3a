//go:build linux

package attach

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// SelfMetrics are the eBPF agent's own counters. They live with the agent, not the
// recorder, so that an in-process recorder exports none of them.
type SelfMetrics struct {
	EventsReceived    prometheus.Counter
	EventsLost        prometheus.Counter
	EventsInvalid     prometheus.Counter
	EventsProduced    prometheus.Counter
	AttachedProcesses prometheus.Gauge
	ProbeAttachErrors prometheus.Counter
}

// NewSelfMetrics registers the self-metrics on reg, with client_golang's standard process
// and Go collectors (process_*, go_*), which an operator alerts on as for any exporter.
// Agents that share a registry share them, as they share its histograms.
func NewSelfMetrics(reg prometheus.Registerer) *SelfMetrics {
	registered(reg, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registered(reg, collectors.NewGoCollector())
	return &SelfMetrics{
		EventsReceived: registered(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "asobserve_events_received_total", Help: "Probe records read from the ring buffer.",
		})),
		EventsLost: registered(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "asobserve_events_lost_total", Help: "Probe records dropped in the kernel because the ring buffer was full.",
		})),
		EventsInvalid: registered(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "asobserve_events_invalid_total", Help: "Probe records rejected by the decoder.",
		})),
		EventsProduced: registered(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "asobserve_events_produced_total", Help: "Probe records the kernel tried to write to the ring buffer.",
		})),
		AttachedProcesses: registered(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "asobserve_attached_processes", Help: "Processes currently observed.",
		})),
		ProbeAttachErrors: registered(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "asobserve_probe_attach_errors_total", Help: "Probe attachments that failed.",
		})),
	}
}

// registered registers c on reg, or returns the equal collector registered before.
func registered[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			return already.ExistingCollector.(C)
		}
		panic(err)
	}
	return c
}
