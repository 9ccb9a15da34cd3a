//go:build linux

// Package spanfeed turns probe events into tracer events: BPF monotonic timestamps become
// wall time, and each target process gets its tracing resource once.
package spanfeed

import (
	"context"
	"sync"
	"time"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/clock"
	"github.com/asobserve/asobserve/internal/decoder"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/procinfo"
	"github.com/asobserve/asobserve/internal/tracing"
	"go.opentelemetry.io/otel/trace"
)

// Feed connects an attach.Agent's event hooks to a tracing.Tracer.
type Feed struct {
	tracer *tracing.Tracer
	clock  *clock.Converter
	procs  sync.Map // *attach.Target -> *tracing.Process
}

// New builds the tracer from the OTEL_* environment.
func New(rec *metrics.Recorder, logf func(string, ...any)) (*Feed, error) {
	t, err := tracing.New(tracing.Config{Enabled: true, Dropped: rec.SpansDropped, Logf: logf})
	if err != nil {
		return nil, err
	}
	return &Feed{tracer: t, clock: clock.New()}, nil
}

func (f *Feed) process(t *attach.Target) *tracing.Process {
	if p, ok := f.procs.Load(t); ok {
		return p.(*tracing.Process)
	}
	p := &tracing.Process{PID: t.PID, ExecutableName: procinfo.ExeName(t.PID),
		TargetServiceName: procinfo.Env(t.PID, "OTEL_SERVICE_NAME"), K8s: k8sAttributes(t.Identity)}
	actual, _ := f.procs.LoadOrStore(t, p)
	return actual.(*tracing.Process)
}

func k8sAttributes(id *metrics.Identity) map[string]string {
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

// OnOp is an attach.Options.OnOp hook.
func (f *Feed) OnOp(t *attach.Target, ev *decoder.OpEvent, op, errorType string) {
	e := tracing.OpEvent{ID: ev.OpID, Proc: f.process(t), Op: op, Namespace: ev.Namespace, Set: ev.Set,
		ErrorType: errorType, ResultCode: int(ev.Cause), Start: f.clock.Wall(ev.Start), End: f.clock.Wall(ev.End)}
	if server, ok := t.Server(ev.Node); ok {
		e.ServerAddress, e.ServerPort = server.Host, server.Port
	}
	if ev.ParentSpanID != ([8]byte{}) {
		e.Parent = trace.NewSpanContext(trace.SpanContextConfig{TraceID: ev.ParentTraceID, SpanID: ev.ParentSpanID,
			TraceFlags: trace.TraceFlags(ev.ParentFlags), Remote: true})
	}
	f.tracer.OnOp(e)
}

// OnStage is an attach.Options.OnStage hook.
func (f *Feed) OnStage(t *attach.Target, ev *decoder.StageEvent, stage, op string) {
	f.tracer.OnStage(tracing.StageEvent{OpID: ev.OpID, Proc: f.process(t), Stage: stage, Op: op,
		Start: f.clock.Wall(ev.Start), End: f.clock.Wall(ev.End)})
}

// Forget releases a target's tracing resources when it is detached.
func (f *Feed) Forget(t *attach.Target) {
	if p, ok := f.procs.LoadAndDelete(t); ok {
		f.tracer.Forget(p.(*tracing.Process))
	}
}

// Shutdown flushes pending spans within 5 s.
func (f *Feed) Shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = f.tracer.Shutdown(ctx)
}
