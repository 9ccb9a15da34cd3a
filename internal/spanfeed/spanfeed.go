// Package spanfeed is the observer that turns events into tracer events: source timestamps
// become wall time, each target process gets its tracing resource once, and a target's
// resource goes when the target does.
package spanfeed

import (
	"context"
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
	return &Feed{tracer: t, describe: describe}, nil
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
	if op.ParentSpanID != ([8]byte{}) {
		e.Parent = trace.NewSpanContext(trace.SpanContextConfig{TraceID: op.ParentTraceID, SpanID: op.ParentSpanID,
			TraceFlags: trace.TraceFlags(op.ParentFlags), Remote: true})
	}
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

// Shutdown flushes pending spans until ctx ends.
func (f *Feed) Shutdown(ctx context.Context) error { return f.tracer.Shutdown(ctx) }
