// Package otelmetrics pushes the operation and stage histograms as OpenTelemetry metrics
// (OTLP over gRPC or HTTP, or the console), next to the Prometheus /metrics endpoint. It is
// an observe.Observer that the metrics.Recorder relays to, so it sees what Prometheus sees
// after the recorder's label policy.
//
// Each target process gets its own MeterProvider, whose resource is the one its spans
// carry (tracing.ProcessResource); the provider goes, after a final export, when the
// target does.
package otelmetrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"

	"github.com/asobserve/asobserve/internal/config"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/semconv"
	"github.com/asobserve/asobserve/internal/tracing"
)

// Instrument names: the operation histogram is the semantic convention's; the stage
// histogram is ours, in our own namespace.
const (
	OperationInstrument = "db.client.operation.duration"
	StageInstrument     = "asobserve.db.client.internal_stage.duration"
	scopeName           = "github.com/asobserve/asobserve"
)

// Attribute keys (Database Client Semantic Conventions, and ours for the stage).
const (
	AttrSystem        = "db.system.name"
	AttrNamespace     = "db.namespace"
	AttrCollection    = "db.collection.name"
	AttrOperation     = "db.operation.name"
	AttrErrorType     = "error.type"
	AttrServerAddress = "server.address"
	AttrServerPort    = "server.port"
	AttrStage         = "asobserve.stage"
)

// Exponential histograms: 160 buckets as the Prometheus native ones, at the finest scale
// the range of values allows.
const (
	exponentialMaxSize  = 160
	exponentialMaxScale = 20
)

// Default endpoints where neither OTEL_EXPORTER_OTLP_ENDPOINT nor its metrics variant is
// set: plaintext on localhost, as for spans (the exporters alone would use TLS).
const (
	DefaultGRPCEndpoint = "http://localhost:4317"
	DefaultHTTPEndpoint = "http://localhost:4318/v1/metrics"
)

// Options configure an Exporter.
type Options struct {
	// Exporters lists the push exporters: config.ExporterOTLP and/or config.ExporterConsole.
	Exporters   []string
	Protocol    string // config.ProtocolGRPC or config.ProtocolHTTP
	Interval    time.Duration
	Temporality string // config.Temporality*
	Histograms  string // config.Histogram*
	// Endpoint, if set, replaces the OTEL_EXPORTER_OTLP_*ENDPOINT variables (tests).
	Endpoint string
	// EndpointFromEnv tells that OTEL_EXPORTER_OTLP_(METRICS_)ENDPOINT is set, so the
	// exporter reads it (with its scheme and path rules) instead of the default.
	EndpointFromEnv bool
	// Describe names a target's process for its resource; nil means spanfeed's view of a
	// process from /proc, which the caller passes (this package does not read /proc).
	Describe func(*observe.Target) *tracing.Process
	// SpanOf, when tracing is on, makes data points carry exemplars of sampled spans.
	SpanOf metrics.SpanOf
	// Registerer receives the export counters; nil means none are registered.
	Registerer prometheus.Registerer
	Logf       func(string, ...any)
	// Console receives console exports; nil means os.Stdout.
	Console io.Writer
}

// FromConfig fills the options OTEL_* variables decide; it returns no exporters when
// OTEL_METRICS_EXPORTER lists neither otlp nor console, or OTEL_SDK_DISABLED=true (which
// turns every OpenTelemetry signal off, spans too).
func FromConfig(cfg *config.Config) Options {
	o := Options{Protocol: cfg.MetricsProtocol(), Interval: cfg.MetricExportEvery(),
		Temporality: cfg.String(config.OTLPMetricsTemporal), Histograms: cfg.String(config.OTLPMetricsHistograms),
		EndpointFromEnv: cfg.String(config.OTLPEndpoint) != "" || cfg.String(config.OTLPMetricsEndpoint) != ""}
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") {
		return o
	}
	for _, e := range cfg.MetricExporters() {
		if e == config.ExporterOTLP || e == config.ExporterConsole {
			o.Exporters = append(o.Exporters, e)
		}
	}
	return o
}

// Exporter records events into per-target meter providers that export periodically.
type Exporter struct {
	opts     Options
	exporter *countingExporter
	logf     func(string, ...any)

	targets sync.Map // *observe.Target -> *targetMeters
	closed  atomic.Bool
	gone    sync.WaitGroup // final exports of gone targets
}

type targetMeters struct {
	provider  *sdkmetric.MeterProvider
	ops       metric.Float64Histogram
	stages    metric.Float64Histogram
	opSeries  sync.Map // opSeriesKey -> metric.RecordOption
	stageAttr sync.Map // stageSeriesKey -> metric.RecordOption
}

type opSeriesKey struct {
	op, namespace, set, errType string
	node                        uint64
}

type stageSeriesKey struct{ stage, op string }

// New builds the exporter; it fails on options no exporter can be made from. An
// unreachable endpoint is not an error: exports fail, are counted and warned about once.
func New(o Options) (*Exporter, error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Interval <= 0 {
		o.Interval = time.Minute
	}
	temporality, err := temporalitySelector(o.Temporality)
	if err != nil {
		return nil, err
	}
	var inner []sdkmetric.Exporter
	var names []string
	for _, name := range o.Exporters {
		var exp sdkmetric.Exporter
		switch name {
		case config.ExporterOTLP:
			var target string
			exp, target, err = newOTLP(o, temporality)
			names = append(names, target)
		case config.ExporterConsole:
			w := o.Console
			if w == nil {
				w = os.Stdout
			}
			exp, err = stdoutmetric.New(stdoutmetric.WithWriter(w), stdoutmetric.WithTemporalitySelector(temporality))
			names = append(names, "the console")
		default:
			err = fmt.Errorf("unsupported metric exporter %q: use otlp or console", name)
		}
		if err != nil {
			return nil, fmt.Errorf("otelmetrics: %w", err)
		}
		inner = append(inner, exp)
	}
	if len(inner) == 0 {
		return nil, errors.New("otelmetrics: no exporter: OTEL_METRICS_EXPORTER lists neither otlp nor console")
	}
	quietExportErrors(o.Logf)
	e := &Exporter{opts: o, logf: o.Logf,
		exporter: newCountingExporter(inner, temporality, strings.Join(names, " and "), o.Logf)}
	if o.Registerer != nil {
		if err := o.Registerer.Register(e.exporter); err != nil {
			return nil, fmt.Errorf("otelmetrics: %w", err)
		}
	}
	return e, nil
}

// newOTLP makes the OTLP exporter with retries off: a failed export is counted and the
// next interval exports again (cumulative data loses nothing; a delta interval's data is
// lost, and counted).
func newOTLP(o Options, temporality sdkmetric.TemporalitySelector) (sdkmetric.Exporter, string, error) {
	ctx := context.Background()
	if o.Protocol == config.ProtocolHTTP {
		opts := []otlpmetrichttp.Option{otlpmetrichttp.WithTemporalitySelector(temporality),
			otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false})}
		target, withURL := exportTarget(o, DefaultHTTPEndpoint)
		if withURL {
			opts = append(opts, otlpmetrichttp.WithEndpointURL(target))
		}
		exp, err := otlpmetrichttp.New(ctx, opts...)
		return exp, target, err
	}
	opts := []otlpmetricgrpc.Option{otlpmetricgrpc.WithTemporalitySelector(temporality),
		otlpmetricgrpc.WithRetry(otlpmetricgrpc.RetryConfig{Enabled: false})}
	target, withURL := exportTarget(o, DefaultGRPCEndpoint)
	if withURL {
		opts = append(opts, otlpmetricgrpc.WithEndpointURL(target))
	}
	exp, err := otlpmetricgrpc.New(ctx, opts...)
	return exp, target, err
}

// exportTarget is where an exporter sends: the configured endpoint, else the protocol's
// default, or (withURL false) the endpoint the exporter reads from the OTEL_* variables
// itself.
func exportTarget(o Options, protocolDefault string) (target string, withURL bool) {
	switch {
	case o.Endpoint != "":
		return o.Endpoint, true
	case !o.EndpointFromEnv:
		return protocolDefault, true
	}
	return endpointFromEnv(), false
}

func endpointFromEnv() string {
	if v := os.Getenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"); v != "" {
		return v
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
}

func temporalitySelector(name string) (sdkmetric.TemporalitySelector, error) {
	switch name {
	case "", config.TemporalityCumulative:
		return sdkmetric.DefaultTemporalitySelector, nil
	case config.TemporalityDelta, config.TemporalityLowMemory:
		// Both ask for delta on synchronous histograms, the only instruments here.
		return func(sdkmetric.InstrumentKind) metricdata.Temporality { return metricdata.DeltaTemporality }, nil
	}
	return nil, fmt.Errorf("unsupported temporality %q: use cumulative, delta or lowmemory", name)
}

func (e *Exporter) views() []sdkmetric.View {
	agg := func(boundaries []float64) sdkmetric.Aggregation {
		if e.opts.Histograms == config.HistogramExponential {
			return sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: exponentialMaxSize, MaxScale: exponentialMaxScale}
		}
		return sdkmetric.AggregationExplicitBucketHistogram{Boundaries: boundaries}
	}
	return []sdkmetric.View{
		sdkmetric.NewView(sdkmetric.Instrument{Name: OperationInstrument}, sdkmetric.Stream{Aggregation: agg(semconv.OperationBuckets)}),
		sdkmetric.NewView(sdkmetric.Instrument{Name: StageInstrument}, sdkmetric.Stream{Aggregation: agg(semconv.StageBuckets)}),
	}
}

func (e *Exporter) meters(t *observe.Target) *targetMeters {
	if m, ok := e.targets.Load(t); ok {
		return m.(*targetMeters)
	}
	var proc *tracing.Process
	if e.opts.Describe != nil {
		proc = e.opts.Describe(t)
	}
	provider := sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(tracing.ProcessResource(proc)),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(sharedExporter{e.exporter}, sdkmetric.WithInterval(e.opts.Interval))),
		sdkmetric.WithView(e.views()...),
	)
	meter := provider.Meter(scopeName)
	ops, _ := meter.Float64Histogram(OperationInstrument, metric.WithUnit("s"),
		metric.WithDescription("Duration of database client operations."))
	stages, _ := meter.Float64Histogram(StageInstrument, metric.WithUnit("s"),
		metric.WithDescription("Duration of the internal stages of database client operations (asobserve)."))
	m := &targetMeters{provider: provider, ops: ops, stages: stages}
	if actual, loaded := e.targets.LoadOrStore(t, m); loaded {
		_ = provider.Shutdown(context.Background()) // never recorded into
		return actual.(*targetMeters)
	}
	return m
}

// Op implements observe.Observer.
func (e *Exporter) Op(t *observe.Target, op observe.Op) {
	if e.closed.Load() {
		return
	}
	m := e.meters(t)
	k := opSeriesKey{op: op.Name, namespace: op.Namespace, set: op.Set, errType: op.ErrorType, node: op.Node}
	attrs, ok := m.opSeries.Load(k)
	if !ok {
		attrs, _ = m.opSeries.LoadOrStore(k, opAttributes(t, &op))
	}
	ctx := context.Background()
	if e.opts.SpanOf != nil {
		if sc := e.opts.SpanOf(t, &op); sc.IsSampled() {
			ctx = trace.ContextWithSpanContext(ctx, sc) // the SDK's trace-based exemplar filter keeps it
		}
	}
	m.ops.Record(ctx, op.Duration().Seconds(), attrs.(metric.RecordOption))
}

func opAttributes(t *observe.Target, op *observe.Op) metric.RecordOption {
	kvs := []attribute.KeyValue{
		attribute.String(AttrSystem, semconv.SystemName),
		attribute.String(AttrNamespace, op.Namespace),
		attribute.String(AttrOperation, strings.ToUpper(op.Name)), // as the span's
	}
	if op.Set != "" {
		kvs = append(kvs, attribute.String(AttrCollection, op.Set))
	}
	if op.ErrorType != "" {
		kvs = append(kvs, attribute.String(AttrErrorType, op.ErrorType))
	}
	if t.Server != nil {
		if server, ok := t.Server(op.Node); ok && server.Host != "" {
			kvs = append(kvs, attribute.String(AttrServerAddress, server.Host))
			if server.Port != 0 {
				kvs = append(kvs, attribute.Int(AttrServerPort, server.Port))
			}
		}
	}
	return metric.WithAttributeSet(attribute.NewSet(kvs...))
}

// Stage implements observe.Observer.
func (e *Exporter) Stage(t *observe.Target, st observe.Stage) {
	if e.closed.Load() {
		return
	}
	m := e.meters(t)
	k := stageSeriesKey{stage: st.Name, op: st.Op}
	attrs, ok := m.stageAttr.Load(k)
	if !ok {
		attrs, _ = m.stageAttr.LoadOrStore(k, metric.WithAttributeSet(attribute.NewSet(
			attribute.String(AttrSystem, semconv.SystemName),
			attribute.String(AttrStage, st.Name),
			attribute.String(AttrOperation, strings.ToUpper(st.Op)))))
	}
	m.stages.Record(context.Background(), st.Duration().Seconds(), attrs.(metric.RecordOption))
}

// TargetGone implements observe.Observer: the target's provider exports what it holds once
// more, in the background, and goes.
func (e *Exporter) TargetGone(t *observe.Target) {
	m, ok := e.targets.LoadAndDelete(t)
	if !ok {
		return
	}
	e.gone.Add(1)
	go func() {
		defer e.gone.Done()
		_ = m.(*targetMeters).provider.Shutdown(context.Background()) // failures are counted by the exporter
	}()
}

// Failed is the number of failed exports since New.
func (e *Exporter) Failed() uint64 { return e.exporter.failed.Load() }

// Exported is the number of successful exports since New.
func (e *Exporter) Exported() uint64 { return e.exporter.exported.Load() }

// Shutdown exports what every target holds once more and closes the exporters.
func (e *Exporter) Shutdown(ctx context.Context) error {
	e.closed.Store(true)
	var errs []error
	e.targets.Range(func(k, m any) bool {
		e.targets.Delete(k)
		errs = append(errs, m.(*targetMeters).provider.Shutdown(ctx))
		return true
	})
	e.gone.Wait()
	errs = append(errs, e.exporter.shutdown(ctx))
	return errors.Join(errs...)
}
