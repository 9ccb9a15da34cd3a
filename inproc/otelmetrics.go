package inproc

import (
	"context"
	"sync"

	"github.com/spf13/pflag"

	"github.com/asobserve/asobserve/internal/config"
	"github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/otelmetrics"
	"github.com/asobserve/asobserve/internal/tracing"
)

var metricExport struct {
	mu  sync.Mutex
	exp *otelmetrics.Exporter
}

// InitMetricsExport starts pushing the operation and stage histograms over OTLP (or to the
// console) as OTEL_METRICS_EXPORTER, OTEL_EXPORTER_OTLP_* and OTEL_METRIC_EXPORT_INTERVAL
// say, next to the Prometheus registry. With OTEL_METRICS_EXPORTER unset or "prometheus"
// it does nothing. It is idempotent. While tracing runs (InitTracing), data points carry
// exemplars naming sampled spans, as in eBPF mode.
func InitMetricsExport() error {
	metricExport.mu.Lock()
	defer metricExport.mu.Unlock()
	if metricExport.exp != nil {
		return nil
	}
	cfg, err := config.MetricExport.Bind(pflag.NewFlagSet("inproc", pflag.ContinueOnError)).Resolve()
	if err != nil {
		return err
	}
	o := otelmetrics.FromConfig(cfg)
	if len(o.Exporters) == 0 {
		return nil
	}
	s := state()
	o.Describe = func(*observe.Target) *tracing.Process { return s.process }
	o.Logf = logf
	o.SpanOf = s.spanOf
	exp, err := otelmetrics.New(o)
	if err != nil {
		return err
	}
	s.rec.AddObserver(exp)
	metricExport.exp = exp
	return nil
}

// ShutdownMetricsExport exports what is recorded once more and stops the export; call it
// before the process exits. It is idempotent.
func ShutdownMetricsExport(ctx context.Context) error {
	metricExport.mu.Lock()
	defer metricExport.mu.Unlock()
	if metricExport.exp == nil {
		return nil
	}
	err := metricExport.exp.Shutdown(ctx)
	metricExport.exp = nil
	return err
}
