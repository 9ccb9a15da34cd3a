package otelmetrics

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// countingExporter sends every export to each configured exporter, counts the exports
// that failed, and warns once per outage. It is also the Prometheus collector of its counts.
type countingExporter struct {
	inner       []sdkmetric.Exporter
	temporality sdkmetric.TemporalitySelector
	target      string
	logf        func(string, ...any)

	exported atomic.Uint64
	failed   atomic.Uint64
	failing  atomic.Bool

	exportedDesc, failedDesc *prometheus.Desc
}

func newCountingExporter(inner []sdkmetric.Exporter, temporality sdkmetric.TemporalitySelector, target string, logf func(string, ...any)) *countingExporter {
	return &countingExporter{inner: inner, temporality: temporality, target: target, logf: logf,
		exportedDesc: prometheus.NewDesc("asobserve_metric_exports_total", "OTLP/console metric exports that succeeded.", nil, nil),
		failedDesc: prometheus.NewDesc("asobserve_metric_export_failures_total",
			"OTLP/console metric exports that failed (endpoint down, rejected, timed out); the next interval exports again.", nil, nil),
	}
}

func (c *countingExporter) export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	var errs []error
	for _, exp := range c.inner {
		if err := exp.Export(ctx, rm); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		c.failed.Add(1)
		if c.failing.CompareAndSwap(false, true) {
			c.logf("[asobserve] warning: exporting metrics to %s failed; /metrics is still served, failures are counted in asobserve_metric_export_failures_total until it recovers: %v", c.target, err)
		}
		return exportError{err}
	}
	c.exported.Add(1)
	if c.failing.CompareAndSwap(true, false) {
		c.logf("[asobserve] exporting metrics to %s works again", c.target)
	}
	return nil
}

func (c *countingExporter) shutdown(ctx context.Context) error {
	var errs []error
	for _, exp := range c.inner {
		errs = append(errs, exp.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// Describe implements prometheus.Collector.
func (c *countingExporter) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.exportedDesc
	ch <- c.failedDesc
}

// Collect implements prometheus.Collector.
func (c *countingExporter) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.exportedDesc, prometheus.CounterValue, float64(c.exported.Load()))
	ch <- prometheus.MustNewConstMetric(c.failedDesc, prometheus.CounterValue, float64(c.failed.Load()))
}

// exportError is a failed export, already counted and warned about: the SDK's error
// handler, which the periodic reader hands it to, must not log it again every interval.
type exportError struct{ err error }

func (e exportError) Error() string { return e.err.Error() }
func (e exportError) Unwrap() error { return e.err }

var installHandler sync.Once

// quietExportErrors replaces the OpenTelemetry error handler (process-wide; its default
// logs every error): errors other than counted export failures go to logf.
func quietExportErrors(logf func(string, ...any)) {
	installHandler.Do(func() {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			var exported exportError
			if !errors.As(err, &exported) {
				logf("[asobserve] warning: opentelemetry: %v", err)
			}
		}))
	})
}

// sharedExporter is the countingExporter as one target's reader sees it: shutting the
// reader down (the target went) leaves the exporters to the other targets.
type sharedExporter struct{ c *countingExporter }

func (s sharedExporter) Temporality(k sdkmetric.InstrumentKind) metricdata.Temporality {
	return s.c.temporality(k)
}

func (s sharedExporter) Aggregation(k sdkmetric.InstrumentKind) sdkmetric.Aggregation {
	return sdkmetric.DefaultAggregationSelector(k) // the views choose the histograms' aggregation
}

// Export finishes an export the reader's shutdown would cancel (it cancels the periodic
// export in flight), keeping only its deadline: with delta temporality a cancelled export
// loses the interval's data.
func (s sharedExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	detached := context.WithoutCancel(ctx)
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		detached, cancel = context.WithDeadline(detached, deadline)
		defer cancel()
	}
	return s.c.export(detached, rm)
}

func (s sharedExporter) ForceFlush(context.Context) error { return nil }
func (s sharedExporter) Shutdown(context.Context) error   { return nil }
