package inproc

import (
	"context"
	"testing"
	"time"

	as "github.com/aerospike/aerospike-client-go/v7"

	"github.com/asobserve/asobserve/internal/otlptest"
	"github.com/asobserve/asobserve/internal/testserver"
)

func TestInitMetricsExportPushesPerSeriesCounts(t *testing.T) {
	recv := otlptest.Start(t)
	t.Setenv("OTEL_METRICS_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+recv.Addr)
	t.Setenv("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION", "base2_exponential_bucket_histogram")

	fresh(t)
	_, raw := startServer(t, testserver.Config{})
	c := Wrap(raw)
	must(t, InitMetricsExport())
	must(t, InitMetricsExport()) // idempotent
	for i := range 3 {
		must(t, c.Put(nil, key(t, "users", i), as.BinMap{"n": i}))
	}
	_, gerr := c.Get(nil, key(t, "users", 404))
	wantCode(t, gerr, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(t, ShutdownMetricsExport(ctx))
	must(t, ShutdownMetricsExport(ctx))

	got := map[string]uint64{}
	for _, p := range recv.Histograms("db.client.operation.duration") {
		if p.Exponential == nil {
			t.Fatalf("point %v is not exponential", p.Attrs)
		}
		got[p.Attrs["db.operation.name"]+"/"+p.Attrs["error.type"]] = p.Count
	}
	want := map[string]uint64{"PUT/": 3, "GET/KeyNotFoundError": 1}
	if len(got) != len(want) || got["PUT/"] != 3 || got["GET/KeyNotFoundError"] != 1 {
		t.Errorf("counts %v, want %v", got, want)
	}
}

func TestInitMetricsExportWithoutOTLPDoesNothing(t *testing.T) {
	t.Setenv("OTEL_METRICS_EXPORTER", "prometheus")
	fresh(t)
	must(t, InitMetricsExport())
	if metricExport.exp != nil {
		t.Fatal("an exporter started for OTEL_METRICS_EXPORTER=prometheus")
	}
}
