package tracing

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

var otelVars = []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
	"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
	"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_BSP_SCHEDULE_DELAY"}

// cleanEnv unsets every OTEL variable the tests rely on and restores them afterwards, then
// points the exporter at endpoint with a short batch delay.
func cleanEnv(t *testing.T, endpoint string) {
	t.Helper()
	for _, k := range otelVars {
		if old, ok := os.LookupEnv(k); ok {
			t.Cleanup(func() { os.Setenv(k, old) })
		} else {
			t.Cleanup(func() { os.Unsetenv(k) })
		}
		os.Unsetenv(k)
	}
	if endpoint != "" {
		os.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
	}
	os.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
}

type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (l *logSink) logf(format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *logSink) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

func newCounter() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: "asobserve_spans_dropped_total", Help: "x"})
}

func newTracer(t *testing.T, cfg Config) *Tracer {
	t.Helper()
	cfg.Enabled = true
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr
}

// flushMarker proves that the receiver holds every span sent before it: with the OTLP
// exporter on again, a fresh tracer exports one marker span and shuts down, which returns
// once the receiver answered the export. It returns the spans other than the marker.
func flushMarker(t *testing.T, r *receiver) []gotSpan {
	t.Helper()
	os.Unsetenv("OTEL_SDK_DISABLED")
	os.Unsetenv("OTEL_TRACES_EXPORTER")
	marker := newTracer(t, Config{})
	marker.OnOp(OpEvent{ID: 1, Proc: &Process{PID: 1, ExecutableName: "marker"}, Op: "get", Namespace: "flush-marker", Start: t0, End: t0})
	shutdown(t, marker)
	var others []gotSpan
	seen := false
	for _, s := range r.got() {
		if s.resource[attrProcessExeName] == "marker" {
			seen = true
			continue
		}
		others = append(others, s)
	}
	if !seen {
		t.Fatal("the flush marker span did not reach the receiver: the check proves nothing")
	}
	return others
}

func shutdown(t *testing.T, tr *Tracer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

func TestSpansReachOTLPReceiver(t *testing.T) {
	r := startReceiver(t)
	cleanEnv(t, "http://"+r.addr)
	dropped := newCounter()
	tr := newTracer(t, Config{Dropped: dropped})
	host, _ := os.Hostname()

	proc := &Process{PID: 4242, ExecutableName: "orders-bin", TargetServiceName: "orders",
		K8s: map[string]string{"k8s.namespace.name": "shop", "k8s.pod.name": "orders-7f", "k8s.container.name": "app", "k8s.node.name": "node-1"}}

	tr.OnOp(OpEvent{ID: 1, Proc: proc, Op: "put", Namespace: "test", Set: "users",
		Start: t0, End: t0.Add(1500 * time.Microsecond), ServerAddress: "10.0.0.5", ServerPort: 3000})
	tr.OnOp(OpEvent{ID: 2, Proc: proc, Op: "get", Namespace: "test", Set: "users", ErrorType: "KeyNotFoundError",
		ResultCode: 2, Start: t0.Add(time.Millisecond), End: t0.Add(3 * time.Millisecond)})
	// Stages arrive before their operation.
	tr.OnStage(StageEvent{OpID: 3, Proc: proc, Stage: "key_parse", Op: "batch_read",
		Start: t0.Add(10 * time.Millisecond), End: t0.Add(10*time.Millisecond + 20*time.Microsecond)})
	tr.OnStage(StageEvent{OpID: 3, Proc: proc, Stage: "io", Op: "batch_read",
		Start: t0.Add(10*time.Millisecond + 30*time.Microsecond), End: t0.Add(14 * time.Millisecond)})
	tr.OnOp(OpEvent{ID: 3, Proc: proc, Op: "batch_read", Namespace: "test", Set: "users",
		Start: t0.Add(10 * time.Millisecond), End: t0.Add(15 * time.Millisecond)})

	shutdown(t, tr)
	spans := r.byName(t)
	if len(spans) != 5 {
		t.Fatalf("got %d spans, want 5: %v", len(spans), keys(spans))
	}
	if st := tr.Stats(); st != (Stats{Created: 5, Exported: 5, Dropped: 0}) {
		t.Fatalf("stats %+v", st)
	}
	if v := counterValue(dropped); v != 0 {
		t.Fatalf("dropped %v, want 0", v)
	}

	wantResource := map[string]string{
		"service.name": "orders", "process.pid": "int:4242", "process.executable.name": "orders-bin",
		"host.name": host, "k8s.namespace.name": "shop", "k8s.pod.name": "orders-7f",
		"k8s.container.name": "app", "k8s.node.name": "node-1",
		"telemetry.sdk.name": "opentelemetry", "telemetry.sdk.language": "go",
	}
	type want struct {
		kind       tracepb.Span_SpanKind
		start, end time.Time
		attrs      map[string]string
		status     tracepb.Status_StatusCode
		parent     string // name of the parent span, "" for a root
	}
	wants := map[string]want{
		"PUT test.users": {kind: tracepb.Span_SPAN_KIND_CLIENT, start: t0, end: t0.Add(1500 * time.Microsecond),
			attrs: map[string]string{"db.system.name": "aerospike", "db.namespace": "test", "db.collection.name": "users",
				"db.operation.name": "PUT", "server.address": "10.0.0.5", "server.port": "int:3000"}},
		"GET test.users": {kind: tracepb.Span_SPAN_KIND_CLIENT, start: t0.Add(time.Millisecond), end: t0.Add(3 * time.Millisecond),
			attrs: map[string]string{"db.system.name": "aerospike", "db.namespace": "test", "db.collection.name": "users",
				"db.operation.name": "GET", "error.type": "KeyNotFoundError", "db.response.status_code": "2"},
			status: tracepb.Status_STATUS_CODE_ERROR},
		"BATCH_READ test.users": {kind: tracepb.Span_SPAN_KIND_CLIENT, start: t0.Add(10 * time.Millisecond), end: t0.Add(15 * time.Millisecond),
			attrs: map[string]string{"db.system.name": "aerospike", "db.namespace": "test", "db.collection.name": "users",
				"db.operation.name": "BATCH_READ"}},
		"key_parse": {kind: tracepb.Span_SPAN_KIND_INTERNAL, start: t0.Add(10 * time.Millisecond), end: t0.Add(10*time.Millisecond + 20*time.Microsecond),
			attrs: map[string]string{"asobserve.stage": "key_parse", "db.operation.name": "BATCH_READ"}, parent: "BATCH_READ test.users"},
		"io": {kind: tracepb.Span_SPAN_KIND_INTERNAL, start: t0.Add(10*time.Millisecond + 30*time.Microsecond), end: t0.Add(14 * time.Millisecond),
			attrs: map[string]string{"asobserve.stage": "io", "db.operation.name": "BATCH_READ"}, parent: "BATCH_READ test.users"},
	}
	for name, w := range wants {
		g, ok := spans[name]
		if !ok {
			t.Fatalf("no span %q; got %v", name, keys(spans))
		}
		s := g.span
		if s.GetKind() != w.kind {
			t.Errorf("%s: kind %v, want %v", name, s.GetKind(), w.kind)
		}
		if s.GetStartTimeUnixNano() != uint64(w.start.UnixNano()) || s.GetEndTimeUnixNano() != uint64(w.end.UnixNano()) {
			t.Errorf("%s: times %d..%d, want %d..%d", name, s.GetStartTimeUnixNano(), s.GetEndTimeUnixNano(), w.start.UnixNano(), w.end.UnixNano())
		}
		if got := attrMap(s.GetAttributes()); !equalMaps(got, w.attrs) {
			t.Errorf("%s: attributes %v, want %v", name, got, w.attrs)
		}
		if s.GetStatus().GetCode() != w.status {
			t.Errorf("%s: status %v, want %v", name, s.GetStatus().GetCode(), w.status)
		}
		if w.status == tracepb.Status_STATUS_CODE_ERROR && s.GetStatus().GetMessage() != "KeyNotFoundError" {
			t.Errorf("%s: status message %q", name, s.GetStatus().GetMessage())
		}
		if w.parent == "" {
			if len(s.GetParentSpanId()) != 0 {
				t.Errorf("%s: has parent %x, want a root span", name, s.GetParentSpanId())
			}
		} else {
			p := spans[w.parent].span
			if spanID(s.GetParentSpanId()) != spanID(p.GetSpanId()) || spanID(s.GetTraceId()) != spanID(p.GetTraceId()) {
				t.Errorf("%s: parent %x trace %x, want %x in %x", name, s.GetParentSpanId(), s.GetTraceId(), p.GetSpanId(), p.GetTraceId())
			}
		}
		res := map[string]string{}
		for k, v := range g.resource {
			if k != "telemetry.sdk.version" {
				res[k] = v
			}
		}
		if !equalMaps(res, wantResource) {
			t.Errorf("%s: resource %v, want %v", name, res, wantResource)
		}
	}
	if spanID(spans["PUT test.users"].span.GetTraceId()) == spanID(spans["GET test.users"].span.GetTraceId()) {
		t.Errorf("separate operations share a trace id")
	}
}

func TestServiceNamePrecedence(t *testing.T) {
	r := startReceiver(t)
	cleanEnv(t, "http://"+r.addr)
	tr := newTracer(t, Config{})
	withOwn := &Process{PID: 1, ExecutableName: "a-bin", TargetServiceName: "a-svc"}
	exeOnly := &Process{PID: 2, ExecutableName: "b-bin"}
	tr.OnOp(OpEvent{ID: 1, Proc: withOwn, Op: "put", Namespace: "test", Set: "a", Start: t0, End: t0.Add(time.Millisecond)})
	tr.OnOp(OpEvent{ID: 1, Proc: exeOnly, Op: "put", Namespace: "test", Set: "b", Start: t0, End: t0.Add(time.Millisecond)})
	shutdown(t, tr)
	spans := r.byName(t)
	if got := spans["PUT test.a"].resource["service.name"]; got != "a-svc" {
		t.Errorf("target's OTEL_SERVICE_NAME: service.name=%q, want a-svc", got)
	}
	if got := spans["PUT test.b"].resource["service.name"]; got != "b-bin" {
		t.Errorf("executable fallback: service.name=%q, want b-bin", got)
	}
	if got := spans["PUT test.b"].resource["process.pid"]; got != "int:2" {
		t.Errorf("process.pid=%q, want 2", got)
	}

	// The agent's own OTEL_SERVICE_NAME wins over both.
	r2 := startReceiver(t)
	os.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+r2.addr)
	os.Setenv("OTEL_SERVICE_NAME", "agent-svc")
	tr2 := newTracer(t, Config{})
	tr2.OnOp(OpEvent{ID: 1, Proc: withOwn, Op: "get", Namespace: "test", Set: "a", Start: t0, End: t0.Add(time.Millisecond)})
	shutdown(t, tr2)
	if got := r2.byName(t)["GET test.a"].resource["service.name"]; got != "agent-svc" {
		t.Errorf("agent OTEL_SERVICE_NAME: service.name=%q, want agent-svc", got)
	}
}

// deadEndpoint returns a loopback address where nothing listens.
func deadEndpoint(t *testing.T) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return "http://" + addr
}

func TestEndpointDownWarnsOnceAndCountsDrops(t *testing.T) {
	cleanEnv(t, deadEndpoint(t))
	os.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "300")
	logs := &logSink{}
	dropped := newCounter()
	tr := newTracer(t, Config{Dropped: dropped, Logf: logs.logf})
	proc := &Process{PID: 7, ExecutableName: "x"}
	for i := range 10 {
		tr.OnOp(OpEvent{ID: uint64(i), Proc: proc, Op: "put", Namespace: "test", Set: "s", Start: t0, End: t0.Add(time.Millisecond)})
	}
	waitFor(t, "first batch to fail", func() bool { return counterValue(dropped) == 10 })
	for i := range 7 {
		tr.OnOp(OpEvent{ID: uint64(100 + i), Proc: proc, Op: "get", Namespace: "test", Set: "s", Start: t0, End: t0.Add(time.Millisecond)})
	}
	shutdown(t, tr)
	if v := counterValue(dropped); v != 17 {
		t.Fatalf("dropped counter %v, want 17", v)
	}
	if st := tr.Stats(); st != (Stats{Created: 17, Exported: 0, Dropped: 17}) {
		t.Fatalf("stats %+v", st)
	}
	lines := logs.get()
	if len(lines) != 1 || !strings.Contains(lines[0], "warning: tracing: exporting spans to http://127.0.0.1:") {
		t.Fatalf("want exactly one warning line, got %q", lines)
	}
}

func TestDefaultEndpointIsPlaintextLocalhost4317(t *testing.T) {
	cleanEnv(t, "")
	lis, err := net.Listen("tcp", "localhost:4317")
	if err != nil {
		t.Skipf("the default OTLP port is taken on this host (another collector; not a CI condition): %v", err)
	}
	r := serveReceiver(lis)
	t.Cleanup(r.srv.Stop)
	tr := newTracer(t, Config{})
	tr.OnOp(OpEvent{ID: 1, Proc: &Process{PID: 1, ExecutableName: "x"}, Op: "put", Namespace: "test", Set: "s", Start: t0, End: t0})
	shutdown(t, tr)
	if n := len(r.got()); n != 1 {
		t.Fatalf("receiver on the default endpoint got %d spans, want 1", n)
	}
}

func TestSDKDisabledProducesNothing(t *testing.T) {
	r := startReceiver(t)
	cleanEnv(t, "http://"+r.addr)
	os.Setenv("OTEL_SDK_DISABLED", "true")
	dropped := newCounter()
	tr := newTracer(t, Config{Dropped: dropped, QueueSize: 1})
	if tr.Enabled() {
		t.Fatal("Enabled() with OTEL_SDK_DISABLED=true")
	}
	for i := range 100 {
		tr.OnOp(OpEvent{ID: uint64(i), Op: "put", Namespace: "test", Start: t0, End: t0})
		tr.OnStage(StageEvent{OpID: uint64(i), Stage: "io", Op: "put", Start: t0, End: t0})
	}
	shutdown(t, tr)
	if got := flushMarker(t, r); len(got) != 0 {
		t.Fatalf("receiver got %d spans", len(got))
	}
	if st := tr.Stats(); st != (Stats{}) {
		t.Fatalf("stats %+v, want zero", st)
	}
	if v := counterValue(dropped); v != 0 {
		t.Fatalf("dropped %v, want 0", v)
	}
}

func TestTracingFlagOffProducesNothing(t *testing.T) {
	cleanEnv(t, "")
	tr, err := New(Config{Enabled: false})
	if err != nil {
		t.Fatal(err)
	}
	tr.OnOp(OpEvent{Op: "put"})
	if tr.Enabled() || tr.Stats() != (Stats{}) {
		t.Fatalf("disabled tracer: enabled=%v stats=%+v", tr.Enabled(), tr.Stats())
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestExporterNoneCreatesButDoesNotExport(t *testing.T) {
	r := startReceiver(t)
	cleanEnv(t, "http://"+r.addr)
	os.Setenv("OTEL_TRACES_EXPORTER", "none")
	tr := newTracer(t, Config{})
	proc := &Process{PID: 1, ExecutableName: "x"}
	tr.OnStage(StageEvent{OpID: 1, Proc: proc, Stage: "io", Op: "put", Start: t0, End: t0})
	for i := range 12 {
		tr.OnOp(OpEvent{ID: uint64(i), Proc: proc, Op: "put", Namespace: "test", Start: t0, End: t0})
	}
	shutdown(t, tr)
	if got := flushMarker(t, r); len(got) != 0 {
		t.Fatalf("receiver got %d spans with OTEL_TRACES_EXPORTER=none", len(got))
	}
	if st := tr.Stats(); st != (Stats{Created: 13}) {
		t.Fatalf("stats %+v, want 13 created (12 ops + 1 stage)", st)
	}
}

func TestConsoleExporter(t *testing.T) {
	cleanEnv(t, "")
	os.Setenv("OTEL_TRACES_EXPORTER", "console")
	var buf bytes.Buffer
	tr := newTracer(t, Config{Console: &buf})
	tr.OnOp(OpEvent{ID: 1, Proc: &Process{PID: 1, ExecutableName: "x"}, Op: "touch", Namespace: "test", Set: "s", Start: t0, End: t0})
	shutdown(t, tr)
	if !strings.Contains(buf.String(), `"Name":"TOUCH test.s"`) {
		t.Fatalf("console output lacks the span:\n%s", buf.String())
	}
	if tr.Stats().Exported != 1 {
		t.Fatalf("stats %+v", tr.Stats())
	}
}

func TestUnsupportedExporterIsAnError(t *testing.T) {
	cleanEnv(t, "")
	os.Setenv("OTEL_TRACES_EXPORTER", "zipkin")
	_, err := New(Config{Enabled: true})
	if err == nil || !strings.Contains(err.Error(), `unsupported OTEL_TRACES_EXPORTER="zipkin": use otlp, console or none`) {
		t.Fatalf("err = %v", err)
	}
}

func TestSamplerFromEnvironment(t *testing.T) {
	r := startReceiver(t)
	cleanEnv(t, "http://"+r.addr)
	os.Setenv("OTEL_TRACES_SAMPLER", "always_off")
	tr := newTracer(t, Config{})
	for i := range 20 {
		tr.OnOp(OpEvent{ID: uint64(i), Proc: &Process{PID: 1}, Op: "put", Namespace: "test", Start: t0, End: t0})
	}
	shutdown(t, tr)
	if n := len(r.got()); n != 0 || tr.Stats() != (Stats{}) {
		t.Fatalf("always_off: receiver got %d spans, stats %+v", n, tr.Stats())
	}
}

func TestQueueFullDropsAreCountedExactly(t *testing.T) {
	r := startReceiver(t)
	cleanEnv(t, "http://"+r.addr)
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	testHookHandle = func() {
		once.Do(func() {
			close(entered)
			<-release
		})
	}
	t.Cleanup(func() { testHookHandle = nil })

	const queue, sent = 8, 50
	dropped := newCounter()
	tr := newTracer(t, Config{Dropped: dropped, QueueSize: queue})
	proc := &Process{PID: 1, ExecutableName: "x"}
	tr.OnOp(OpEvent{ID: 0, Proc: proc, Op: "put", Namespace: "test", Set: "s", Start: t0, End: t0})
	<-entered // the worker holds event 0; the queue is empty
	for i := 1; i < sent; i++ {
		tr.OnOp(OpEvent{ID: uint64(i), Proc: proc, Op: "put", Namespace: "test", Set: "s", Start: t0, End: t0})
	}
	close(release)
	shutdown(t, tr)
	if v := counterValue(dropped); v != sent-1-queue {
		t.Fatalf("dropped %v, want %d", v, sent-1-queue)
	}
	if n := len(r.got()); n != 1+queue {
		t.Fatalf("receiver got %d spans, want %d", n, 1+queue)
	}
}

func TestOrphanStagesAndForget(t *testing.T) {
	r := startReceiver(t)
	cleanEnv(t, "http://"+r.addr)
	dropped := newCounter()
	tr := newTracer(t, Config{Dropped: dropped})
	gone := &Process{PID: 1, ExecutableName: "gone"}
	alive := &Process{PID: 2, ExecutableName: "alive"}
	tr.OnOp(OpEvent{ID: 1, Proc: gone, Op: "put", Namespace: "test", Start: t0, End: t0})
	tr.OnStage(StageEvent{OpID: 2, Proc: gone, Stage: "io", Op: "get", Start: t0, End: t0}) // its op never comes
	tr.Forget(gone)
	tr.OnStage(StageEvent{OpID: 9, Proc: alive, Stage: "io", Op: "get", Start: t0, End: t0}) // orphan at shutdown
	tr.OnOp(OpEvent{ID: 3, Proc: alive, Op: "get", Namespace: "test", Start: t0, End: t0})
	waitFor(t, "forget", func() bool { return counterValue(dropped) == 1 })
	shutdown(t, tr)
	if v := counterValue(dropped); v != 2 {
		t.Fatalf("dropped %v, want 2 orphan stages", v)
	}
	if n := len(r.got()); n != 2 {
		t.Fatalf("receiver got %d spans, want 2", n)
	}
	if len(tr.providers) != 1 {
		t.Fatalf("%d providers left, want 1 (the forgotten one is closed)", len(tr.providers))
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func keys(m map[string]gotSpan) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}
