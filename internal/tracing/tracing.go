// Package tracing turns operation and stage events into OpenTelemetry spans, following the
// seed's Database Client Semantic Conventions (seed 003). Events come from the eBPF decoder or
// from the in-process wrapper; span creation and export run on a worker goroutine behind a
// bounded queue so that producers never wait.
//
// Configuration follows the OTel environment variables. The SDK and the OTLP exporter read
// OTEL_EXPORTER_OTLP_*, OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_*, OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES themselves; this package adds OTEL_SDK_DISABLED and
// OTEL_TRACES_EXPORTER (otlp, console, none), and defaults the endpoint to the seed's
// http://localhost:4317 (plaintext) where the exporter alone would use TLS.
package tracing

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/asobserve/asobserve/internal/semconv"
)

// DefaultEndpoint is the seed's default OTLP gRPC endpoint.
const DefaultEndpoint = "http://localhost:4317"

// DefaultQueueSize bounds the events waiting for the span worker.
const DefaultQueueSize = 4096

// Limits of the stage events waiting for their operation's event.
const (
	maxPendingOps      = 4096
	maxStagesPerOp     = 256
	pendingStageMaxAge = 30 * time.Second
	sweepInterval      = 5 * time.Second
)

const scopeName = "github.com/asobserve/asobserve"

// Process identifies an observed process; spans of one Process share one OTel resource.
// Keep one *Process per process and reuse the pointer.
type Process struct {
	PID               int
	ExecutableName    string
	TargetServiceName string            // the target's own OTEL_SERVICE_NAME, may be ""
	K8s               map[string]string // k8s.namespace.name, k8s.pod.name, k8s.container.name, k8s.node.name when known
}

// OpEvent is one finished data operation.
type OpEvent struct {
	ID            uint64 // correlation id, unique per operation within a process
	Proc          *Process
	Op            string // semconv operation name, e.g. "put"
	Namespace     string
	Set           string
	ErrorType     string // "" on success
	ResultCode    int
	Start, End    time.Time
	ServerAddress string
	ServerPort    int
	// Parent, when valid, is the target's own span the operation ran under.
	Parent trace.SpanContext
	// TraceID and SpanID, when SpanID is valid, are the span's IDs, chosen by the caller
	// (TraceID is Parent's when Parent is valid); otherwise they are random.
	TraceID trace.TraceID
	SpanID  trace.SpanID
}

// StageEvent is one internal stage of the operation OpID. It must arrive before that
// operation's OpEvent.
type StageEvent struct {
	OpID       uint64
	Proc       *Process
	Stage, Op  string
	Start, End time.Time
}

// Config configures a Tracer.
type Config struct {
	Enabled   bool // --tracing
	QueueSize int  // 0 means DefaultQueueSize
	Dropped   prometheus.Counter
	Logf      func(string, ...any)
	// Console receives spans when OTEL_TRACES_EXPORTER=console; nil means os.Stderr.
	Console io.Writer
}

// Stats are the tracer's span counters since New.
type Stats struct {
	Created  uint64 // sampled spans ended into the SDK pipeline
	Exported uint64 // spans the exporter accepted
	Dropped  uint64 // spans lost: queue full, export failed, or not flushed at shutdown
}

type itemKind uint8

const (
	kindOp itemKind = iota
	kindStage
	kindForget
)

type item struct {
	kind  itemKind
	op    OpEvent
	stage StageEvent
	proc  *Process
}

type pendingKey struct {
	proc *Process
	id   uint64
}

type pendingStages struct {
	stages []StageEvent
	added  time.Time
}

// Tracer builds spans from events. The zero of its behaviour (disabled) is cheap: OnOp and
// OnStage return at once.
type Tracer struct {
	enabled bool
	logf    func(string, ...any)
	dropped prometheus.Counter

	ch     chan item
	stop   chan struct{}
	done   chan struct{}
	closed atomic.Bool
	abort  atomic.Bool

	exporter *countingExporter // nil for OTEL_TRACES_EXPORTER=none
	sampler  sdktrace.Sampler
	hostName string
	agentEnv *resource.Resource

	// Export pipeline: the worker batches ended spans and hands full batches to the export
	// goroutine without waiting; a batch that finds the hand-off full is dropped and counted.
	batch         []sdktrace.ReadOnlySpan
	batches       chan []sdktrace.ReadOnlySpan
	queuedSpans   atomic.Int64 // spans handed to the export goroutine and not yet exported
	exportDone    chan struct{}
	exportCtx     context.Context
	cancelExports context.CancelFunc
	bsp           bspConfig

	created      atomic.Uint64
	droppedTotal atomic.Uint64

	// liveProviders is len(providers), readable outside the worker (leak checks).
	liveProviders atomic.Int64

	// Worker-owned state.
	providers map[*Process]*sdktrace.TracerProvider
	tracers   map[*Process]trace.Tracer
	pending   map[pendingKey]*pendingStages

	shutdownOnce sync.Once
	shutdownErr  error
}

// New builds a Tracer. With cfg.Enabled false or OTEL_SDK_DISABLED=true it returns a tracer
// that produces nothing.
func New(cfg Config) (*Tracer, error) {
	t := &Tracer{logf: cfg.Logf, dropped: cfg.Dropped}
	if t.logf == nil {
		t.logf = log.Printf
	}
	if !cfg.Enabled || sdkDisabled() {
		return t, nil
	}

	exporterName := strings.ToLower(strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER")))
	var inner sdktrace.SpanExporter
	endpoint := ""
	switch exporterName {
	case "", "otlp":
		var opts []otlptracegrpc.Option
		endpoint = os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
		if endpoint == "" {
			endpoint = os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
		}
		if endpoint == "" {
			endpoint = DefaultEndpoint
			opts = append(opts, otlptracegrpc.WithEndpointURL(DefaultEndpoint))
		}
		exp, err := otlptracegrpc.New(context.Background(), opts...)
		if err != nil {
			return nil, fmt.Errorf("tracing: OTLP exporter for %s: %w (check OTEL_EXPORTER_OTLP_ENDPOINT)", endpoint, err)
		}
		inner = exp
	case "console":
		w := cfg.Console
		if w == nil {
			w = os.Stderr
		}
		exp, err := stdouttrace.New(stdouttrace.WithWriter(w))
		if err != nil {
			return nil, fmt.Errorf("tracing: console exporter: %w", err)
		}
		inner, endpoint = exp, "console"
	case "none":
	default:
		return nil, fmt.Errorf("tracing: unsupported OTEL_TRACES_EXPORTER=%q: use otlp, console or none", exporterName)
	}

	env, err := resource.New(context.Background(), resource.WithFromEnv())
	if err != nil {
		t.logf("[asobserve] warning: tracing: OTEL_RESOURCE_ATTRIBUTES: %v", err)
	}
	host, _ := os.Hostname()
	sampler, err := samplerFromEnv()
	if err != nil {
		t.logf("[asobserve] warning: tracing: %v", err)
	}

	qs := cfg.QueueSize
	if qs <= 0 {
		qs = DefaultQueueSize
	}
	t.enabled = true
	t.sampler = sampler
	t.hostName = host
	t.agentEnv = env
	t.ch = make(chan item, qs)
	t.stop = make(chan struct{})
	t.done = make(chan struct{})
	t.providers = map[*Process]*sdktrace.TracerProvider{}
	t.tracers = map[*Process]trace.Tracer{}
	t.pending = map[pendingKey]*pendingStages{}
	if inner != nil {
		t.exporter = &countingExporter{inner: inner, endpoint: endpoint, t: t}
		t.bsp = bspFromEnv(t.logf)
		t.batches = make(chan []sdktrace.ReadOnlySpan, t.bsp.backlog())
		t.exportDone = make(chan struct{})
		t.exportCtx, t.cancelExports = context.WithCancel(context.Background())
		go t.exportLoop()
	}
	go t.run()
	return t, nil
}

func sdkDisabled() bool {
	return strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true")
}

// Enabled reports whether events are turned into spans; producers may skip building events
// when it is false.
func (t *Tracer) Enabled() bool { return t != nil && t.enabled }

// OnOp queues an operation event. It never blocks: when the queue is full the span is
// dropped and counted.
func (t *Tracer) OnOp(e OpEvent) {
	if t == nil || !t.enabled {
		return
	}
	t.enqueue(item{kind: kindOp, op: e})
}

// OnStage queues a stage event; it becomes a child span of the operation with ID e.OpID.
func (t *Tracer) OnStage(e StageEvent) {
	if t == nil || !t.enabled {
		return
	}
	t.enqueue(item{kind: kindStage, stage: e})
}

func (t *Tracer) enqueue(it item) {
	if t.closed.Load() {
		t.drop(1)
		return
	}
	select {
	case t.ch <- it:
	default:
		t.drop(1)
	}
}

// Forget closes the resource of a process that exited, after its queued events are handled.
func (t *Tracer) Forget(p *Process) {
	if t == nil || !t.enabled || p == nil || t.closed.Load() {
		return
	}
	it := item{kind: kindForget, proc: p}
	select {
	case t.ch <- it:
	default:
		go func() {
			select {
			case t.ch <- it:
			case <-t.stop:
			}
		}()
	}
}

// Providers is how many processes hold a TracerProvider (their span resource): those
// with spans made and not yet forgotten.
func (t *Tracer) Providers() int { return int(t.liveProviders.Load()) }

// Stats returns the span counters.
func (t *Tracer) Stats() Stats {
	s := Stats{Created: t.created.Load(), Dropped: t.droppedTotal.Load()}
	if t.exporter != nil {
		s.Exported = t.exporter.exported.Load()
	}
	return s
}

func (t *Tracer) drop(n int) {
	if n <= 0 {
		return
	}
	t.droppedTotal.Add(uint64(n))
	if t.dropped != nil {
		t.dropped.Add(float64(n))
	}
}

// Shutdown stops accepting events, turns the queued ones into spans and flushes them. Spans
// that cannot be delivered before ctx ends are counted as dropped.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil || !t.enabled {
		return nil
	}
	t.shutdownOnce.Do(func() { t.shutdownErr = t.shutdown(ctx) })
	return t.shutdownErr
}

func (t *Tracer) shutdown(ctx context.Context) error {
	t.closed.Store(true)
	close(t.stop)
	select {
	case <-t.done:
	case <-ctx.Done():
		t.abort.Store(true) // the worker counts what is left as dropped
		<-t.done
	}
	for _, tp := range t.providers {
		_ = tp.Shutdown(ctx) // its processor only counts; nothing to flush
	}
	if t.exporter == nil {
		return nil
	}
	select {
	case <-t.exportDone:
	case <-ctx.Done():
		t.cancelExports() // pending exports fail fast and are counted as dropped
		<-t.exportDone
	}
	t.cancelExports()
	return t.exporter.inner.Shutdown(ctx)
}

func (t *Tracer) run() {
	defer close(t.done)
	sweep := time.NewTicker(sweepInterval)
	defer sweep.Stop()
	var flushC <-chan time.Time
	if t.exporter != nil {
		flush := time.NewTicker(t.bsp.scheduleDelay)
		defer flush.Stop()
		flushC = flush.C
		defer close(t.batches)
	}
	for {
		select {
		case it := <-t.ch:
			t.handle(it)
		case now := <-sweep.C:
			t.expirePending(now)
		case <-flushC:
			t.flush(false)
		case <-t.stop:
			for {
				select {
				case it := <-t.ch:
					if t.abort.Load() {
						if it.kind != kindForget {
							t.drop(1)
						}
						continue
					}
					t.handle(it)
				default:
					for _, ps := range t.pending {
						t.drop(len(ps.stages))
					}
					clear(t.pending)
					if t.exporter != nil {
						t.flush(true)
					}
					return
				}
			}
		}
	}
}

// testHookHandle, when set by tests, runs before the worker handles each item.
var testHookHandle func()

func (t *Tracer) handle(it item) {
	if testHookHandle != nil {
		testHookHandle()
	}
	switch it.kind {
	case kindOp:
		t.emitOp(&it.op)
	case kindStage:
		t.addStage(&it.stage)
	case kindForget:
		t.forget(it.proc)
	}
}

func (t *Tracer) addStage(e *StageEvent) {
	k := pendingKey{proc: e.Proc, id: e.OpID}
	ps := t.pending[k]
	if ps == nil {
		if len(t.pending) >= maxPendingOps {
			t.drop(1)
			return
		}
		ps = &pendingStages{added: time.Now()}
		t.pending[k] = ps
	}
	if len(ps.stages) >= maxStagesPerOp {
		t.drop(1)
		return
	}
	ps.stages = append(ps.stages, *e)
}

func (t *Tracer) expirePending(now time.Time) {
	for k, ps := range t.pending {
		if now.Sub(ps.added) > pendingStageMaxAge {
			t.drop(len(ps.stages))
			delete(t.pending, k)
		}
	}
}

// Attribute keys of the Database Client Semantic Conventions.
const (
	attrDBSystem       = "db.system.name"
	attrDBNamespace    = "db.namespace"
	attrDBCollection   = "db.collection.name"
	attrDBOperation    = "db.operation.name"
	attrDBStatusCode   = "db.response.status_code"
	attrErrorType      = "error.type"
	attrServerAddress  = "server.address"
	attrServerPort     = "server.port"
	attrStage          = "asobserve.stage"
	attrServiceName    = "service.name"
	attrProcessPID     = "process.pid"
	attrProcessExeName = "process.executable.name"
	attrHostName       = "host.name"
)

func (t *Tracer) emitOp(e *OpEvent) {
	tr := t.tracer(e.Proc)
	opName := strings.ToUpper(e.Op)
	attrs := make([]attribute.KeyValue, 0, 8)
	attrs = append(attrs,
		attribute.String(attrDBSystem, semconv.SystemName),
		attribute.String(attrDBNamespace, e.Namespace),
	)
	if e.Set != "" {
		attrs = append(attrs, attribute.String(attrDBCollection, e.Set))
	}
	attrs = append(attrs, attribute.String(attrDBOperation, opName))
	if e.ServerAddress != "" {
		attrs = append(attrs, attribute.String(attrServerAddress, e.ServerAddress))
		if e.ServerPort != 0 {
			attrs = append(attrs, attribute.Int(attrServerPort, e.ServerPort))
		}
	}
	if e.ErrorType != "" {
		attrs = append(attrs,
			attribute.String(attrErrorType, e.ErrorType),
			attribute.String(attrDBStatusCode, strconv.Itoa(e.ResultCode)),
		)
	}
	parent := context.Background()
	if e.Parent.IsValid() {
		parent = trace.ContextWithRemoteSpanContext(parent, e.Parent)
	}
	if e.SpanID.IsValid() {
		parent = context.WithValue(parent, presetKey{}, presetIDs{traceID: e.TraceID, spanID: e.SpanID})
	}
	_, span := tr.Start(parent, semconv.SpanName(e.Op, e.Namespace, e.Set),
		trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(e.Start), trace.WithAttributes(attrs...))
	if e.ErrorType != "" {
		span.SetStatus(codes.Error, e.ErrorType)
	}
	k := pendingKey{proc: e.Proc, id: e.ID}
	if ps := t.pending[k]; ps != nil {
		delete(t.pending, k)
		ctx := trace.ContextWithSpan(context.Background(), span) // not the op's preset IDs
		for i := range ps.stages {
			st := &ps.stages[i]
			_, child := tr.Start(ctx, st.Stage, trace.WithSpanKind(trace.SpanKindInternal),
				trace.WithTimestamp(st.Start), trace.WithAttributes(
					attribute.String(attrStage, st.Stage),
					attribute.String(attrDBOperation, strings.ToUpper(st.Op)),
				))
			child.End(trace.WithTimestamp(st.End))
		}
	}
	span.End(trace.WithTimestamp(e.End))
}

func (t *Tracer) tracer(p *Process) trace.Tracer {
	if tr, ok := t.tracers[p]; ok {
		return tr
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(t.resourceFor(p)),
		sdktrace.WithSampler(t.sampler), sdktrace.WithIDGenerator(presetIDGenerator{}),
		sdktrace.WithSpanProcessor(countingProcessor{t: t}))
	tr := tp.Tracer(scopeName)
	t.providers[p] = tp
	t.tracers[p] = tr
	t.liveProviders.Add(1)
	return tr
}

func (t *Tracer) resourceFor(p *Process) *resource.Resource {
	return processResource(p, t.hostName, t.agentEnv)
}

// ProcessResource is the resource the spans of p carry, for other signals of the same
// process (OTLP metrics). It reads the agent's OTEL_RESOURCE_ATTRIBUTES/OTEL_SERVICE_NAME.
func ProcessResource(p *Process) *resource.Resource {
	env, _ := resource.New(context.Background(), resource.WithFromEnv()) // New warns about a malformed one
	host, _ := os.Hostname()
	return processResource(p, host, env)
}

func processResource(p *Process, hostName string, agentEnv *resource.Resource) *resource.Resource {
	var attrs []attribute.KeyValue
	if p != nil {
		service := p.TargetServiceName
		if service == "" {
			service = p.ExecutableName
		}
		attrs = append(attrs,
			attribute.String(attrServiceName, service),
			attribute.Int(attrProcessPID, p.PID),
			attribute.String(attrProcessExeName, p.ExecutableName),
		)
		for k, v := range p.K8s {
			if v != "" {
				attrs = append(attrs, attribute.String(k, v))
			}
		}
	}
	if hostName != "" {
		attrs = append(attrs, attribute.String(attrHostName, hostName))
	}
	res, _ := resource.Merge(resource.NewSchemaless(attrs...), agentEnv) // agent's OTEL_* win
	withSDK, err := resource.New(context.Background(), resource.WithTelemetrySDK())
	if err == nil {
		if merged, err := resource.Merge(withSDK, res); err == nil {
			return merged
		}
	}
	return res
}

func (t *Tracer) forget(p *Process) {
	for k, ps := range t.pending {
		if k.proc == p {
			t.drop(len(ps.stages))
			delete(t.pending, k)
		}
	}
	if tp, ok := t.providers[p]; ok {
		delete(t.providers, p)
		delete(t.tracers, p)
		t.liveProviders.Add(-1)
		_ = tp.Shutdown(context.Background()) // its processor only counts; nothing to flush
	}
}

// onEnd runs on the worker goroutine, which ends every span.
func (t *Tracer) onEnd(s sdktrace.ReadOnlySpan) {
	t.created.Add(1)
	if t.exporter == nil {
		return
	}
	t.batch = append(t.batch, s)
	if len(t.batch) >= t.bsp.maxBatch {
		t.flush(false)
	}
}

// flush hands the current batch to the export goroutine. Only the final flush at shutdown
// waits for room, and only until the shutdown deadline (abort).
func (t *Tracer) flush(final bool) {
	if len(t.batch) == 0 {
		return
	}
	b := t.batch
	t.batch = make([]sdktrace.ReadOnlySpan, 0, min(t.bsp.maxBatch, 64))
	for {
		// OTEL_BSP_MAX_QUEUE_SIZE bounds the spans waiting for export.
		if t.queuedSpans.Load()+int64(len(b)) <= int64(t.bsp.maxQueue) {
			select {
			case t.batches <- b:
				t.queuedSpans.Add(int64(len(b)))
				return
			default:
			}
		}
		if !final || t.abort.Load() {
			t.drop(len(b))
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (t *Tracer) exportLoop() {
	defer close(t.exportDone)
	for b := range t.batches {
		ctx, cancel := context.WithTimeout(t.exportCtx, t.bsp.exportTimeout)
		_ = t.exporter.ExportSpans(ctx, b) // counts and warns itself
		cancel()
		t.queuedSpans.Add(-int64(len(b)))
	}
}

// countingProcessor hands every sampled span that ends to the tracer's batcher.
type countingProcessor struct{ t *Tracer }

func (c countingProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

func (c countingProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	if s.SpanContext().IsSampled() {
		c.t.onEnd(s)
	}
}

func (c countingProcessor) Shutdown(context.Context) error   { return nil }
func (c countingProcessor) ForceFlush(context.Context) error { return nil }

// countingExporter counts exported and failed spans and warns once per outage.
type countingExporter struct {
	inner    sdktrace.SpanExporter
	endpoint string
	t        *Tracer

	exported atomic.Uint64
	failed   atomic.Uint64
	failing  atomic.Bool
}

func (c *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := c.inner.ExportSpans(ctx, spans)
	if err != nil {
		c.failed.Add(uint64(len(spans)))
		c.t.drop(len(spans))
		if c.failing.CompareAndSwap(false, true) {
			c.t.logf("[asobserve] warning: tracing: exporting spans to %s failed, spans are dropped and counted in asobserve_spans_dropped_total until it recovers: %v", c.endpoint, err)
		}
		return err
	}
	c.exported.Add(uint64(len(spans)))
	if c.failing.CompareAndSwap(true, false) {
		c.t.logf("[asobserve] tracing: exporting spans to %s works again", c.endpoint)
	}
	return nil
}
