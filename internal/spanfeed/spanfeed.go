// Package spanfeed is the observer that turns events into tracer events: source timestamps
// become wall time, each target process gets its tracing resource once, and a target's
// resource goes when the target does.
package spanfeed

import (
	"context"
	"math/rand/v2"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/procinfo"
	"github.com/asobserve/asobserve/internal/tracing"
)

// Feed connects an event source to a tracing.Tracer; it is an observe.Observer.
type Feed struct {
	tracer   *tracing.Tracer
	describe func(*observe.Target) *tracing.Process
	procs    sync.Map // *observe.Target -> *tracing.Process
	salt     uint64   // makes span IDs unique across feeds and agent runs
}

// New builds the tracer from the OTEL_* environment. dropped counts spans lost on the way
// out; describe names a target's process for its span resource (nil: DescribeProcess).
func New(dropped prometheus.Counter, logf func(string, ...any), describe func(*observe.Target) *tracing.Process) (*Feed, error) {
	t, err := tracing.New(tracing.Config{Enabled: true, Dropped: dropped, Logf: logf})
	if err != nil {
		return nil, err
	}
	if describe == nil {
		describe = DescribeProcess
	}
	return &Feed{tracer: t, describe: describe, salt: rand.Uint64()}, nil
}

// Enabled reports whether the tracer makes spans (OTEL_SDK_DISABLED=true turns it off).
func (f *Feed) Enabled() bool { return f.tracer.Enabled() }

// DescribeProcess names another process from /proc: its executable and its own
// OTEL_SERVICE_NAME, with the Kubernetes attributes of its identity.
func DescribeProcess(t *observe.Target) *tracing.Process {
	return &tracing.Process{PID: t.PID, ExecutableName: procinfo.ExeName(t.PID),
		TargetServiceName: procinfo.Env(t.PID, "OTEL_SERVICE_NAME"), K8s: k8sAttributes(t.Identity)}
}

func (f *Feed) process(t *observe.Target) *tracing.Process {
	if p, ok := f.procs.Load(t); ok {
		return p.(*tracing.Process)
	}
	actual, _ := f.procs.LoadOrStore(t, f.describe(t))
	return actual.(*tracing.Process)
}

func k8sAttributes(id *observe.Identity) map[string]string {
	if id == nil {
		return nil
	}
	out := map[string]string{}
	for k, v := range map[string]string{"k8s.node.name": id.Node, "k8s.namespace.name": id.K8sNamespace,
		"k8s.pod.name": id.Pod, "k8s.container.name": id.Container} {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// SpanOf returns the span context Op gives op's span, sampled flag included, for observers
// that run before the feed (the recorder's exemplars). The IDs derive from the operation
// itself and the feed's salt, so the two agree without sharing state.
func (f *Feed) SpanOf(t *observe.Target, op *observe.Op) trace.SpanContext {
	if !f.tracer.Enabled() {
		return trace.SpanContext{}
	}
	traceID, spanID := f.ids(t, op)
	flags := trace.TraceFlags(0)
	if f.tracer.Sampled(parentOf(op), traceID) {
		flags = trace.FlagsSampled
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: flags})
}

func (f *Feed) ids(t *observe.Target, op *observe.Op) (trace.TraceID, trace.SpanID) {
	h := mix(f.salt ^ uint64(t.PID))
	h = mix(h ^ op.ID)
	h = mix(h ^ uint64(op.Start))
	h = mix(h ^ uint64(op.End))
	var spanID trace.SpanID
	putUint64(spanID[:], h|1) // never the invalid all-zero ID
	traceID := trace.TraceID(op.ParentTraceID)
	if op.ParentSpanID == ([8]byte{}) {
		hi := mix(h ^ f.salt)
		putUint64(traceID[:8], hi)
		putUint64(traceID[8:], mix(hi)|1)
	}
	return traceID, spanID
}

// mix is splitmix64's finalizer: every input bit affects every output bit.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func putUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

func parentOf(op *observe.Op) trace.SpanContext {
	if op.ParentSpanID == ([8]byte{}) {
		return trace.SpanContext{}
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: op.ParentTraceID, SpanID: op.ParentSpanID,
		TraceFlags: trace.TraceFlags(op.ParentFlags), Remote: true})
}

// Op implements observe.Observer.
func (f *Feed) Op(t *observe.Target, op observe.Op) {
	// One conversion: a span lasts exactly what the metric recorded.
	end := t.Wall(op.End)
	e := tracing.OpEvent{ID: op.ID, Proc: f.process(t), Op: op.Name, Namespace: op.Namespace, Set: op.Set,
		ErrorType: op.ErrorType, ResultCode: op.ResultCode, Start: end.Add(-op.Duration()), End: end}
	if t.Server != nil {
		if server, ok := t.Server(op.Node); ok {
			e.ServerAddress, e.ServerPort = server.Host, server.Port
		}
	}
	e.Parent = parentOf(&op)
	e.TraceID, e.SpanID = f.ids(t, &op)
	f.tracer.OnOp(e)
}

// Stage implements observe.Observer.
func (f *Feed) Stage(t *observe.Target, st observe.Stage) {
	f.tracer.OnStage(tracing.StageEvent{OpID: st.OpID, Proc: f.process(t), Stage: st.Name, Op: st.Op,
		Start: t.Wall(st.Start), End: t.Wall(st.End)})
}

// TargetGone implements observe.Observer: the target's tracing resource is released once
// its queued events are spans.
func (f *Feed) TargetGone(t *observe.Target) {
	if p, ok := f.procs.LoadAndDelete(t); ok {
		f.tracer.Forget(p.(*tracing.Process))
	}
}

// Retained counts what the feed keeps for targets: their process descriptions here and
// their providers in the tracer (which go once the tracer has handled the forget).
func (f *Feed) Retained() (targets, providers int) {
	f.procs.Range(func(_, _ any) bool {
		targets++
		return true
	})
	return targets, f.tracer.Providers()
}

// Shutdown flushes pending spans until ctx ends.
func (f *Feed) Shutdown(ctx context.Context) error { return f.tracer.Shutdown(ctx) }
