package inproc

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
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
