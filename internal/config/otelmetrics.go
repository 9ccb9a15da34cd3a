package config

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Names of the metric export settings. They come from the OpenTelemetry SDK's environment
// variables only (no flags), as an OTel agent's operators expect; `asobserve config` shows them.
const (
	MetricsExporter       = "metrics-exporter"
	MetricExportInterval  = "metric-export-interval"
	OTLPEndpoint          = "otlp-endpoint"
	OTLPMetricsEndpoint   = "otlp-metrics-endpoint"
	OTLPProtocol          = "otlp-protocol"
	OTLPMetricsProtocol   = "otlp-metrics-protocol"
	OTLPMetricsTemporal   = "otlp-metrics-temporality"
	OTLPMetricsHistograms = "otlp-metrics-histograms"
)

// Values of the metric export settings.
const (
	ExporterPrometheus = "prometheus"
	ExporterOTLP       = "otlp"
	ExporterConsole    = "console"
	ExporterNone       = "none"

	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http/protobuf"

	TemporalityCumulative = "cumulative"
	TemporalityDelta      = "delta"
	TemporalityLowMemory  = "lowmemory"

	HistogramExplicit    = "explicit_bucket_histogram"
	HistogramExponential = "base2_exponential_bucket_histogram"
)

var metricSettings = []Setting{
	{Name: MetricsExporter, Env: "OTEL_METRICS_EXPORTER", Default: ExporterPrometheus,
		Help: "metric exporters, comma-separated: prometheus (/metrics, always served), otlp, console, none", Check: exporterList},
	{Name: MetricExportInterval, Env: "OTEL_METRIC_EXPORT_INTERVAL", Default: "60000", Kind: Int,
		Help: "milliseconds between OTLP/console metric exports", Check: intRange(1, math.MaxInt32, "60000")},
	{Name: OTLPEndpoint, Env: "OTEL_EXPORTER_OTLP_ENDPOINT",
		Help: "OTLP endpoint for every signal; unset means http://localhost:4317 (grpc) or http://localhost:4318 (http/protobuf)"},
	{Name: OTLPMetricsEndpoint, Env: "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
		Help: "OTLP endpoint for metrics, over OTEL_EXPORTER_OTLP_ENDPOINT"},
	{Name: OTLPProtocol, Env: "OTEL_EXPORTER_OTLP_PROTOCOL", Default: ProtocolGRPC,
		Help: "OTLP transport for every signal: grpc or http/protobuf", Check: oneOf(ProtocolGRPC, ProtocolHTTP)},
	{Name: OTLPMetricsProtocol, Env: "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
		Help: "OTLP transport for metrics, over OTEL_EXPORTER_OTLP_PROTOCOL", Check: oneOf("", ProtocolGRPC, ProtocolHTTP)},
	{Name: OTLPMetricsTemporal, Env: "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", Default: TemporalityCumulative,
		Help: "cumulative, delta or lowmemory (delta for synchronous histograms)", Check: oneOf(TemporalityCumulative, TemporalityDelta, TemporalityLowMemory)},
	{Name: OTLPMetricsHistograms, Env: "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION", Default: HistogramExplicit,
		Help: "explicit_bucket_histogram (the seed's boundaries) or base2_exponential_bucket_histogram", Check: oneOf(HistogramExplicit, HistogramExponential)},
}

// MetricExporters returns the exporters OTEL_METRICS_EXPORTER lists, lower-cased, without
// "none" and duplicates.
func (c *Config) MetricExporters() []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range strings.Split(c.String(MetricsExporter), ",") {
		e = strings.ToLower(strings.TrimSpace(e))
		if e == "" || e == ExporterNone || seen[e] {
			continue
		}
		seen[e] = true
		out = append(out, e)
	}
	return out
}

// MetricsProtocol is OTEL_EXPORTER_OTLP_METRICS_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL.
func (c *Config) MetricsProtocol() string {
	if p := c.String(OTLPMetricsProtocol); p != "" {
		return p
	}
	return c.String(OTLPProtocol)
}

// MetricExportEvery is OTEL_METRIC_EXPORT_INTERVAL as a duration.
func (c *Config) MetricExportEvery() time.Duration {
	return time.Duration(c.Int(MetricExportInterval)) * time.Millisecond
}

func exporterList(raw string) error {
	for _, e := range strings.Split(raw, ",") {
		switch strings.ToLower(strings.TrimSpace(e)) {
		case ExporterPrometheus, ExporterOTLP, ExporterConsole, ExporterNone:
		default:
			return fmt.Errorf("unknown metric exporter %q; use prometheus, otlp, console or none, or a comma-separated list", strings.TrimSpace(e))
		}
	}
	return nil
}

func oneOf(values ...string) func(string) error {
	return func(raw string) error {
		for _, v := range values {
			if raw == v {
				return nil
			}
		}
		shown := strings.Join(values, ", ")
		if values[0] == "" {
			shown = "unset, " + strings.Join(values[1:], ", ")
		}
		return fmt.Errorf("must be one of %s", shown)
	}
}

// MetricExport declares the metric export settings alone, for the in-process wrapper,
// which reads no other agent setting.
var MetricExport = NewSet(metricSettings...)
