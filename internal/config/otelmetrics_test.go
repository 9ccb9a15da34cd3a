package config

import (
	"reflect"
	"testing"
	"time"
)

func TestMetricExportDefaults(t *testing.T) {
	c, err := bind(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.MetricExporters(); !reflect.DeepEqual(got, []string{ExporterPrometheus}) {
		t.Errorf("exporters %v, want [prometheus]", got)
	}
	if c.MetricsProtocol() != ProtocolGRPC || c.MetricExportEvery() != time.Minute ||
		c.String(OTLPMetricsTemporal) != TemporalityCumulative || c.String(OTLPMetricsHistograms) != HistogramExplicit ||
		c.String(OTLPEndpoint) != "" || c.String(OTLPMetricsEndpoint) != "" {
		t.Errorf("defaults: protocol %q, interval %v, temporality %q, histograms %q, endpoints %q %q", c.MetricsProtocol(),
			c.MetricExportEvery(), c.String(OTLPMetricsTemporal), c.String(OTLPMetricsHistograms), c.String(OTLPEndpoint), c.String(OTLPMetricsEndpoint))
	}
}

func TestMetricExportFromEnvironment(t *testing.T) {
	c, err := bind(t, map[string]string{
		"OTEL_METRICS_EXPORTER":                                    "OTLP, prometheus,none,otlp",
		"OTEL_EXPORTER_OTLP_PROTOCOL":                              "grpc",
		"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL":                      "http/protobuf",
		"OTEL_METRIC_EXPORT_INTERVAL":                              "250",
		"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE":        "delta",
		"OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION": "base2_exponential_bucket_histogram",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.MetricExporters(); !reflect.DeepEqual(got, []string{ExporterOTLP, ExporterPrometheus}) {
		t.Errorf("exporters %v, want [otlp prometheus]", got)
	}
	if c.MetricsProtocol() != ProtocolHTTP || c.MetricExportEvery() != 250*time.Millisecond ||
		c.String(OTLPMetricsTemporal) != TemporalityDelta || c.String(OTLPMetricsHistograms) != HistogramExponential {
		t.Errorf("protocol %q interval %v temporality %q histograms %q", c.MetricsProtocol(), c.MetricExportEvery(),
			c.String(OTLPMetricsTemporal), c.String(OTLPMetricsHistograms))
	}
}

func TestMetricExportErrorsNameTheVariable(t *testing.T) {
	for env, want := range map[string]string{
		"OTEL_METRICS_EXPORTER":                                    `OTEL_METRICS_EXPORTER="otlp,jaeger": unknown metric exporter "jaeger"; use prometheus, otlp, console or none, or a comma-separated list`,
		"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL":                      `OTEL_EXPORTER_OTLP_METRICS_PROTOCOL="otlp,jaeger": must be one of unset, grpc, http/protobuf`,
		"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE":        `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE="otlp,jaeger": must be one of cumulative, delta, lowmemory`,
		"OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION": `OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION="otlp,jaeger": must be one of explicit_bucket_histogram, base2_exponential_bucket_histogram`,
		"OTEL_METRIC_EXPORT_INTERVAL":                              `OTEL_METRIC_EXPORT_INTERVAL="otlp,jaeger": not an integer; use e.g. 60000`,
	} {
		_, err := bind(t, map[string]string{env: "otlp,jaeger"})
		if err == nil || err.Error() != want {
			t.Errorf("%s: error %v, want %s", env, err, want)
		}
	}
}
