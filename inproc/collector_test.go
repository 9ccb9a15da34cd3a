package inproc

import (
	"context"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/asobserve/asobserve/internal/semconv"
)

// The application's registry gets the histograms and the settings that mean something in
// a process, never the eBPF agent's ring-buffer and attach counters (always zero here).
func TestCollectorExportsOnlyInProcessMetrics(t *testing.T) {
	fresh(t)
	SetInternalStageMetricsEnabled(false)
	finish(begin(), opPut, "test", "users", nil)
	app := prometheus.NewRegistry()
	app.MustRegister(Collector())
	mfs, err := app.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	want := []string{
		"asobserve_internal_stage_metrics_enabled",
		"asobserve_label_overflow_total",
		"asobserve_spans_dropped_total",
		"db_client_operation_duration_seconds",
	}
	if !slices.Equal(names, want) {
		t.Fatalf("the collector exports %q, want exactly %q", names, want)
	}
}

// The application's registry serves the operation histogram as ours does: with its native
// buckets and, with tracing on, its exemplars.
func TestCollectorKeepsNativeBucketsAndExemplars(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "none") // spans are made and sampled, not sent
	t.Setenv("OTEL_SDK_DISABLED", "false")
	fresh(t)
	must(t, InitTracing())
	t.Cleanup(func() { _ = ShutdownTracing(context.Background()) })
	finish(begin(), opPut, "test", "users", nil)
	app := prometheus.NewRegistry()
	app.MustRegister(Collector())
	mfs, err := app.Gather()
	if err != nil {
		t.Fatal(err)
	}
	ours, err := st.rec.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	find := func(mfs []*dto.MetricFamily) *dto.Histogram {
		for _, mf := range mfs {
			if mf.GetName() == semconv.OperationMetric && len(mf.GetMetric()) == 1 {
				return mf.GetMetric()[0].GetHistogram()
			}
		}
		t.Fatalf("no single %s series in %v", semconv.OperationMetric, mfs)
		return nil
	}
	got, want := find(mfs), find(ours)
	if !proto.Equal(got, want) {
		t.Fatalf("the application's registry serves\n%v\nours serves\n%v", got, want)
	}
	exemplars := 0
	for _, b := range got.GetBucket() {
		if b.GetExemplar() != nil {
			exemplars++
		}
	}
	if exemplars != 1 || len(got.GetPositiveSpan()) != 1 || got.GetSampleCount() != 1 {
		t.Fatalf("%d exemplars, %d native spans, %d samples: want 1 each", exemplars, len(got.GetPositiveSpan()), got.GetSampleCount())
	}
}
