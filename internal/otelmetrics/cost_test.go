package otelmetrics

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/asobserve/asobserve/internal/config"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/otlptest"
	"github.com/asobserve/asobserve/internal/semconv"
	"github.com/asobserve/asobserve/internal/spanfeed"
)

// The agent's added CPU per 10k ops/s for each feature of issue 17, as the process's own
// CPU time (getrusage: every goroutine, the exporter's included) per recorded operation,
// times 10,000: "cpu-ms/s@10k" is milliseconds of CPU per second at 10k ops/s (10 = 1% of
// one core). make bench runs it and reports each feature against its baseline sub-benchmark
// (bench/cmd/benchrun/featurecost.go pairs them by these names).

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportPer10k(b *testing.B, run func(i int)) {
	b.Helper()
	b.ReportAllocs()
	start := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		run(i)
	}
	b.StopTimer()
	perOp := float64(cpuTime()-start) / float64(b.N)
	b.ReportMetric(perOp*1e4/1e6, "cpu-ms/s@10k")
}

// opAt is the i-th operation of a 10k ops/s stream over 8 series: 100µs apart on the
// source's clock, which the exemplar gate reads.
func opAt(i int) observe.Op {
	ops := [...]string{"get", "put", "batch_read", "exists"}
	sets := [...]string{"users", "sessions"}
	d := int64(150*time.Microsecond) + int64(i%7)*int64(100*time.Microsecond)
	end := int64(i)*int64(100*time.Microsecond) + d
	return observe.Op{Name: ops[i%4], Namespace: "test", Set: sets[i%2], ID: uint64(i + 1), Start: end - d, End: end}
}

// BenchmarkAddedCPU's "native histograms" pair compares one series' Observe of the
// recorder's own histogram (internal/metrics: its refined buckets serve the classic and the
// native buckets at once, so it costs the same with or without native exposition) against
// client_golang's histogram with the classic buckets only, what a seed without native
// buckets would pay.
func BenchmarkAddedCPU(b *testing.B) {
	b.Run("classic-buckets", func(b *testing.B) {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Help: "h", Buckets: semconv.OperationBuckets})
		reportPer10k(b, func(i int) { op := opAt(i); h.Observe(op.Duration().Seconds()) })
	})
	b.Run("classic-and-native-buckets", func(b *testing.B) {
		h, _ := metrics.New(metrics.Options{}).OpSeries(&observe.Identity{Service: "svc"}, "get", "test", "users", "")
		reportPer10k(b, func(i int) { op := opAt(i); h.Observe(op.Duration()) })
	})

	tg := &observe.Target{PID: 1, Identity: &observe.Identity{Service: "svc"}, Wall: func(ns int64) time.Time { return time.Unix(0, ns) }}
	b.Run("recorder", func(b *testing.B) {
		rec := metrics.New(metrics.Options{})
		reportPer10k(b, func(i int) { rec.Op(tg, opAt(i)) })
	})
	b.Run("recorder-with-exemplars", func(b *testing.B) {
		b.Setenv("OTEL_TRACES_EXPORTER", "none") // the span cost is tracing's, measured by its own bench
		feed, err := spanfeed.New(nil, b.Logf, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = feed.Shutdown(context.Background()) }()
		rec := metrics.New(metrics.Options{})
		rec.LinkSpans(feed.SpanOf)
		reportPer10k(b, func(i int) { rec.Op(tg, opAt(i)) })
	})
	b.Run("recorder-with-otlp-export", func(b *testing.B) {
		recv := otlptest.Start(b)
		// A 100 ms interval: 600 times the default's export work per second, an upper bound.
		e, err := New(Options{Exporters: []string{config.ExporterOTLP}, Interval: 100 * time.Millisecond,
			Endpoint: "http://" + recv.Addr, Describe: describe})
		if err != nil {
			b.Fatal(err)
		}
		rec := metrics.New(metrics.Options{})
		rec.AddObserver(e)
		reportPer10k(b, func(i int) { rec.Op(tg, opAt(i)) })
		_ = e.Shutdown(context.Background())
	})
}
