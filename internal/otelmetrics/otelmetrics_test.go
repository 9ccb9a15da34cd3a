package otelmetrics

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel/trace"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"

	"github.com/asobserve/asobserve/internal/config"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/otlptest"
	"github.com/asobserve/asobserve/internal/semconv"
	"github.com/asobserve/asobserve/internal/tracing"
)

// logBuffer collects log lines for assertions.
type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuffer) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logBuffer) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, substr) {
			n++
		}
	}
	return n
}

func describe(t *observe.Target) *tracing.Process {
	return &tracing.Process{PID: t.PID, ExecutableName: fmt.Sprintf("app%d", t.PID)}
}

func newExporter(t *testing.T, recv *otlptest.Receiver, temporality, histograms string, logs *logBuffer) *Exporter {
	t.Helper()
	if logs == nil {
		logs = &logBuffer{}
	}
	e, err := New(Options{Exporters: []string{config.ExporterOTLP}, Protocol: config.ProtocolGRPC, Interval: 50 * time.Millisecond,
		Temporality: temporality, Histograms: histograms, Endpoint: "http://" + recv.Addr, Describe: describe, Logf: logs.logf})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// truth is what a workload recorded, per series.
type truth map[string][]float64 // series key -> durations in seconds

func seriesKey(resourcePID string, attrs map[string]string) string {
	return resourcePID + "|" + attrs[AttrOperation] + "|" + attrs[AttrNamespace] + "|" + attrs[AttrCollection] + "|" + attrs[AttrErrorType] +
		"|" + attrs[AttrServerAddress] + ":" + attrs[AttrServerPort]
}

var server = func(node uint64) (observe.ServerAddr, bool) {
	return observe.ServerAddr{Host: "10.0.0.1", Port: 3000}, node == 1
}

// workload sends ops of two targets through a Recorder, as the agent does, and returns the
// ground truth per series.
func workload(t *testing.T, e *Exporter, n int) truth {
	t.Helper()
	rec := metrics.New(metrics.Options{})
	rec.AddObserver(e)
	targets := []*observe.Target{{PID: 11, Identity: &observe.Identity{Service: "a"}, Server: server}, {PID: 12, Identity: &observe.Identity{Service: "b"}}}
	rng := rand.New(rand.NewPCG(1, 2))
	want := truth{}
	ops := []string{"get", "put", "batch_read"}
	for i := range n {
		tg := targets[i%2]
		op := observe.Op{Name: ops[rng.IntN(3)], Namespace: "test", Set: "users", ID: uint64(i + 1), Node: uint64(rng.IntN(2))}
		if rng.IntN(10) == 0 {
			op.ErrorType = "Timeout"
		}
		// 50µs to ~20ms, log-uniform: all of the seed's low buckets and the native range.
		d := time.Duration(50e3 * math.Exp(rng.Float64()*math.Log(400)))
		op.Start, op.End = int64(i)*1000, int64(i)*1000+int64(d)
		rec.Op(tg, op)
		attrs := map[string]string{AttrOperation: strings.ToUpper(op.Name), AttrNamespace: "test", AttrCollection: "users", AttrErrorType: op.ErrorType}
		if tg.Server != nil {
			if addr, ok := tg.Server(op.Node); ok {
				attrs[AttrServerAddress], attrs[AttrServerPort] = addr.Host, "3000"
			}
		}
		k := seriesKey(fmt.Sprint(tg.PID), attrs)
		want[k] = append(want[k], d.Seconds())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	return want
}

func explicitCounts(values []float64, bounds []float64) []uint64 {
	out := make([]uint64, len(bounds)+1)
	for _, v := range values {
		out[sort.SearchFloat64s(bounds, v)]++ // OTLP buckets are (b[i-1], b[i]], as Prometheus' le
	}
	return out
}

// latest keeps each series' last cumulative point.
func latest(t *testing.T, points []otlptest.Histogram) map[string]otlptest.Histogram {
	t.Helper()
	out := map[string]otlptest.Histogram{}
	for _, p := range points {
		if p.Temporality != metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE {
			t.Fatalf("temporality %v, want cumulative", p.Temporality)
		}
		out[seriesKey(p.Resource["process.pid"], p.Attrs)] = p
	}
	return out
}

func TestCumulativeExplicitCountsEqualGroundTruth(t *testing.T) {
	recv := otlptest.Start(t)
	want := workload(t, newExporter(t, recv, config.TemporalityCumulative, config.HistogramExplicit, nil), 5000)
	points := recv.Histograms(OperationInstrument)
	got := latest(t, points)
	if len(got) != len(want) {
		t.Fatalf("%d series received, want %d", len(got), len(want))
	}
	for k, values := range want {
		p, ok := got[k]
		if !ok || p.Explicit == nil {
			t.Fatalf("series %s: no explicit histogram received", k)
		}
		if p.Count != uint64(len(values)) {
			t.Errorf("series %s: count %d, want %d", k, p.Count, len(values))
		}
		if fmt.Sprint(p.Explicit.GetExplicitBounds()) != fmt.Sprint(semconv.OperationBuckets) {
			t.Errorf("bounds %v, want the seed's %v", p.Explicit.GetExplicitBounds(), semconv.OperationBuckets)
		}
		if w := explicitCounts(values, semconv.OperationBuckets); fmt.Sprint(p.Explicit.GetBucketCounts()) != fmt.Sprint(w) {
			t.Errorf("series %s: buckets %v, want %v", k, p.Explicit.GetBucketCounts(), w)
		}
		if p.Unit != "s" || p.Attrs[AttrSystem] != "aerospike" {
			t.Errorf("unit %q, db.system.name %q", p.Unit, p.Attrs[AttrSystem])
		}
	}
	p := points[len(points)-1]
	if svc := p.Resource["service.name"]; svc != "app"+p.Resource["process.pid"] {
		t.Errorf("resource service.name %q for pid %s", svc, p.Resource["process.pid"])
	}
}

func TestCumulativeExponentialCountsEqualGroundTruth(t *testing.T) {
	recv := otlptest.Start(t)
	want := workload(t, newExporter(t, recv, config.TemporalityCumulative, config.HistogramExponential, nil), 5000)
	got := latest(t, recv.Histograms(OperationInstrument))
	if len(got) != len(want) {
		t.Fatalf("%d series received, want %d", len(got), len(want))
	}
	for k, values := range want {
		p := got[k]
		if p.Exponential == nil {
			t.Fatalf("series %s: no exponential histogram", k)
		}
		e := p.Exponential
		var inBuckets uint64
		for _, c := range e.GetPositive().GetBucketCounts() {
			inBuckets += c
		}
		if p.Count != uint64(len(values)) || inBuckets+e.GetZeroCount() != p.Count {
			t.Errorf("series %s: count %d, in buckets %d+%d zero, want %d", k, p.Count, inBuckets, e.GetZeroCount(), len(values))
		}
		// Each value lies in the bucket its index names at the point's scale.
		base := math.Pow(2, math.Pow(2, -float64(e.GetScale())))
		counts := make([]uint64, len(e.GetPositive().GetBucketCounts()))
		for _, v := range values {
			idx := int(math.Ceil(math.Log(v)/math.Log(base))) - 1 - int(e.GetPositive().GetOffset())
			if idx >= 0 && idx < len(counts) {
				counts[idx]++
			}
		}
		mismatched := 0
		for i := range counts {
			if counts[i] != e.GetPositive().GetBucketCounts()[i] {
				mismatched++
			}
		}
		if mismatched > len(values)/100+1 { // float rounding at bucket edges only
			t.Errorf("series %s (scale %d): %d buckets differ from the values'", k, e.GetScale(), mismatched)
		}
	}
}

func TestDeltaSumsToGroundTruth(t *testing.T) {
	recv := otlptest.Start(t)
	logs := &logBuffer{}
	e := newExporter(t, recv, config.TemporalityDelta, config.HistogramExplicit, logs)
	want := workload(t, e, 5000)
	points := recv.Histograms(OperationInstrument)
	sums := map[string][]uint64{}
	counts := map[string]uint64{}
	for _, p := range points {
		if p.Temporality != metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA {
			t.Fatalf("temporality %v, want delta", p.Temporality)
		}
		k := seriesKey(p.Resource["process.pid"], p.Attrs)
		counts[k] += p.Count
		if sums[k] == nil {
			sums[k] = make([]uint64, len(semconv.OperationBuckets)+1)
		}
		for i, c := range p.Explicit.GetBucketCounts() {
			sums[k][i] += c
		}
	}
	for k, values := range want {
		if counts[k] != uint64(len(values)) {
			t.Errorf("series %s: delta counts sum to %d, want %d", k, counts[k], len(values))
		}
		if w := explicitCounts(values, semconv.OperationBuckets); fmt.Sprint(sums[k]) != fmt.Sprint(w) {
			t.Errorf("series %s: delta buckets sum to %v, want %v", k, sums[k], w)
		}
	}
	if e.Failed() != 0 {
		t.Errorf("%d failed exports against a working receiver: %q", e.Failed(), logs.lines)
	}
}

func TestExemplarsNameSampledSpans(t *testing.T) {
	recv := otlptest.Start(t)
	e, err := New(Options{Exporters: []string{config.ExporterOTLP}, Interval: time.Hour, Endpoint: "http://" + recv.Addr,
		Describe: describe, SpanOf: func(_ *observe.Target, op *observe.Op) trace.SpanContext {
			return trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{15: byte(op.ID)}, SpanID: trace.SpanID{7: byte(op.ID)},
				TraceFlags: trace.TraceFlags(op.ID % 2)}) // odd IDs are sampled
		}})
	if err != nil {
		t.Fatal(err)
	}
	tg := &observe.Target{PID: 1}
	for i := uint64(1); i <= 6; i++ {
		e.Op(tg, observe.Op{Name: "get", Namespace: "test", ID: i, End: int64(i) * int64(time.Millisecond)})
	}
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	points := recv.Histograms(OperationInstrument)
	if len(points) != 1 {
		t.Fatalf("%d points, want 1", len(points))
	}
	// Sampled are 1 (1ms, le=0.001), 3 and 5 (3ms and 5ms, le=0.005); each bucket keeps one.
	byID := map[byte]bool{}
	for _, ex := range points[0].Exemplars {
		id := ex.GetTraceId()[15]
		if want := (trace.SpanID{7: id}); hex.EncodeToString(ex.GetSpanId()) != want.String() || id%2 == 0 || byID[id] {
			t.Errorf("exemplar %x/%x is not one sampled span's", ex.GetTraceId(), ex.GetSpanId())
		}
		byID[id] = true
	}
	if len(byID) != 2 || !byID[1] || (byID[3] == byID[5]) {
		t.Errorf("exemplars of spans %v, want 1 and one of 3, 5", byID)
	}
}

func TestEndpointDownWarnsOnceAndCountsFailures(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there now
	logs := &logBuffer{}
	reg := prometheus.NewRegistry()
	e, err := New(Options{Exporters: []string{config.ExporterOTLP}, Interval: 20 * time.Millisecond, Endpoint: "http://" + addr,
		Describe: describe, Logf: logs.logf, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	tg := &observe.Target{PID: 1}
	deadline := time.Now().Add(10 * time.Second)
	for e.Failed() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d failed exports after 10s against a closed port", e.Failed())
		}
		e.Op(tg, observe.Op{Name: "get", End: int64(time.Millisecond)}) // recording goes on
		time.Sleep(5 * time.Millisecond)
	}
	if n := logs.count("warning: exporting metrics to " + "http://" + addr + " failed"); n != 1 {
		t.Errorf("%d warnings for one outage, want 1: %q", n, logs.lines)
	}
	if err := e.Shutdown(context.Background()); err == nil {
		t.Error("shutdown against a closed port reported no failed final export")
	}
	want := fmt.Sprintf(`# HELP asobserve_metric_export_failures_total %s
# TYPE asobserve_metric_export_failures_total counter
asobserve_metric_export_failures_total %d
`, "OTLP/console metric exports that failed (endpoint down, rejected, timed out); the next interval exports again.", e.Failed())
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "asobserve_metric_export_failures_total"); err != nil {
		t.Error(err)
	}
}

func TestFlappingEndpointRecoversWithExactCounts(t *testing.T) {
	recv := otlptest.Start(t)
	logs := &logBuffer{}
	e := newExporter(t, recv, config.TemporalityCumulative, config.HistogramExplicit, logs)
	tg := &observe.Target{PID: 1}
	sent := 0
	op := func() {
		sent++
		e.Op(tg, observe.Op{Name: "get", Namespace: "test", End: int64(time.Millisecond)})
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			op()
			time.Sleep(5 * time.Millisecond)
		}
	}
	for cycle := range 2 {
		recv.RejectMetrics(true)
		rejected := recv.MetricsRejected()
		waitFor("rejected exports", func() bool { return recv.MetricsRejected() >= rejected+2 })
		recv.RejectMetrics(false)
		exported := e.Exported()
		waitFor("an export after the outage", func() bool { return e.Exported() > exported })
		if n := logs.count("works again"); n != cycle+1 {
			t.Errorf("cycle %d: %d recovery messages, want %d", cycle, n, cycle+1)
		}
	}
	if uint64(recv.MetricsRejected()) != e.Failed() {
		t.Errorf("receiver rejected %d exports, exporter counted %d failures", recv.MetricsRejected(), e.Failed())
	}
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	points := recv.Histograms(OperationInstrument)
	if last := points[len(points)-1]; last.Count != uint64(sent) {
		t.Errorf("final cumulative count %d, want %d: outages lose nothing", last.Count, sent)
	}
	if n := logs.count("warning: exporting metrics"); n != 2 {
		t.Errorf("%d warnings for 2 outages, want 2", n)
	}
}

func TestHTTPProtobufExport(t *testing.T) {
	recv := otlptest.Start(t)
	e, err := New(Options{Exporters: []string{config.ExporterOTLP}, Protocol: config.ProtocolHTTP, Interval: time.Hour,
		Endpoint: "http://" + recv.HTTPAddr + "/v1/metrics", Describe: describe})
	if err != nil {
		t.Fatal(err)
	}
	tg := &observe.Target{PID: 3}
	for range 4 {
		e.Op(tg, observe.Op{Name: "put", Namespace: "test", End: int64(time.Millisecond)})
	}
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	points := recv.Histograms(OperationInstrument)
	if len(points) != 1 || points[0].Count != 4 || points[0].Attrs[AttrOperation] != "PUT" {
		t.Fatalf("over http/protobuf: %+v, want one PUT point of 4", points)
	}
}

func TestConsoleExport(t *testing.T) {
	var out strings.Builder
	e, err := New(Options{Exporters: []string{config.ExporterConsole}, Interval: time.Hour, Console: &out, Describe: describe})
	if err != nil {
		t.Fatal(err)
	}
	e.Op(&observe.Target{PID: 3}, observe.Op{Name: "get", Namespace: "test", End: int64(time.Millisecond)})
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"Name":"db.client.operation.duration"`, `"Unit":"s"`, `"Count":1`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("console output lacks %s:\n%s", want, out.String())
		}
	}
}

func TestFromConfig(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	b := config.MetricExport.Bind(fs)
	env := map[string]string{"OTEL_METRICS_EXPORTER": "prometheus,console,otlp", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "https://c:4317",
		"OTEL_METRIC_EXPORT_INTERVAL": "1500", "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta"}
	b.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := b.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	o := FromConfig(cfg)
	if fmt.Sprint(o.Exporters) != "[console otlp]" || !o.EndpointFromEnv || o.Interval != 1500*time.Millisecond ||
		o.Temporality != config.TemporalityDelta || o.Histograms != config.HistogramExplicit || o.Protocol != config.ProtocolGRPC {
		t.Errorf("options %+v", o)
	}
	t.Setenv("OTEL_SDK_DISABLED", "true")
	if o := FromConfig(cfg); len(o.Exporters) != 0 {
		t.Errorf("exporters %v with OTEL_SDK_DISABLED=true", o.Exporters)
	}
	if _, err := New(Options{}); err == nil {
		t.Error("New without exporters succeeded")
	}
}

func TestStagesWhileEnabledOnly(t *testing.T) {
	recv := otlptest.Start(t)
	e := newExporter(t, recv, config.TemporalityCumulative, config.HistogramExplicit, nil)
	rec := metrics.New(metrics.Options{})
	rec.AddObserver(e)
	tg := &observe.Target{PID: 5}
	stage := observe.Stage{Name: semconv.StageIO, Op: "batch_read", Start: 0, End: int64(30 * time.Microsecond)}
	rec.Stage(tg, stage) // stages off: neither Prometheus nor OTLP records it
	rec.SetStagesEnabled(true)
	for range 3 {
		rec.Stage(tg, stage)
	}
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	points := recv.Histograms(StageInstrument)
	if len(points) == 0 {
		t.Fatal("no stage points")
	}
	p := points[len(points)-1]
	if p.Count != 3 || p.Attrs[AttrStage] != semconv.StageIO || p.Attrs[AttrOperation] != "BATCH_READ" || p.Unit != "s" {
		t.Errorf("stage point %+v, want 3 io stages of BATCH_READ in s", p)
	}
	if w := explicitCounts([]float64{30e-6, 30e-6, 30e-6}, semconv.StageBuckets); fmt.Sprint(p.Explicit.GetBucketCounts()) != fmt.Sprint(w) {
		t.Errorf("stage buckets %v, want %v (the seed's stage boundaries)", p.Explicit.GetBucketCounts(), w)
	}
}
