//go:build linux

package main

import (
	"context"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/procinfo"
	"github.com/asobserve/asobserve/internal/tracing"
)

// sinkReceiver is a real OTLP/gRPC trace endpoint on loopback that counts and discards.
type sinkReceiver struct {
	collectortrace.UnimplementedTraceServiceServer
	spans atomic.Int64
}

func (s *sinkReceiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	var n int64
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			n += int64(len(ss.GetSpans()))
		}
	}
	s.spans.Add(n)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

var (
	receiverOnce sync.Once
	receiverAddr string
	receiverErr  error
)

func startSinkReceiver() (string, error) {
	receiverOnce.Do(func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			receiverErr = err
			return
		}
		srv := grpc.NewServer()
		collectortrace.RegisterTraceServiceServer(srv, &sinkReceiver{})
		go func() { _ = srv.Serve(ln) }()
		receiverAddr = ln.Addr().String()
	})
	return receiverAddr, receiverErr
}

// benchTracer makes one span per operation of the tracing run, exported over OTLP/gRPC to
// a receiver in the harness, the way `asobserve attach --tracing` would.
type benchTracer struct {
	tr *tracing.Tracer
}

func newTracer() (*benchTracer, error) {
	addr, err := startSinkReceiver()
	if err != nil {
		return nil, err
	}
	os.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+addr)
	os.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	tr, err := tracing.New(tracing.Config{Enabled: true, Logf: logger.Printf})
	if err != nil {
		return nil, err
	}
	return &benchTracer{tr: tr}, nil
}

// hook makes opts feed the tracer with the events of process *pid only.
func (b *benchTracer) hook(opts *attach.Options, pid *atomic.Int64) {
	opts.Observers = append(opts.Observers, &pidTracer{tr: b.tr, pid: pid, offset: monoToWall(), procs: map[int]*tracing.Process{}})
}

// pidTracer is the observer hook adds: one span per operation of one process.
type pidTracer struct {
	tr     *tracing.Tracer
	pid    *atomic.Int64
	offset int64
	mu     sync.Mutex
	procs  map[int]*tracing.Process
}

func (p *pidTracer) Op(t *observe.Target, op observe.Op) {
	if int64(t.PID) != p.pid.Load() {
		return
	}
	p.mu.Lock()
	proc := p.procs[t.PID]
	if proc == nil {
		proc = &tracing.Process{PID: t.PID, ExecutableName: procinfo.ExeName(t.PID)}
		p.procs[t.PID] = proc
	}
	p.mu.Unlock()
	e := tracing.OpEvent{ID: op.ID, Proc: proc, Op: op.Name, Namespace: op.Namespace, Set: op.Set, ErrorType: op.ErrorType,
		Start: time.Unix(0, op.Start+p.offset), End: time.Unix(0, op.End+p.offset)}
	if op.ErrorType != "" {
		e.ResultCode = op.ResultCode
	}
	p.tr.OnOp(e)
}

// Stage implements observe.Observer: the tracing run measures operation spans only.
func (p *pidTracer) Stage(*observe.Target, observe.Stage) {}

// TargetGone implements observe.Observer: the run's one process keeps its resource until
// the tracer shuts down.
func (p *pidTracer) TargetGone(*observe.Target) {}

func (b *benchTracer) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return b.tr.Shutdown(ctx)
}

// monoToWall is the offset from CLOCK_MONOTONIC (BPF timestamps) to Unix time in ns.
func monoToWall() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Now().UnixNano() - ts.Nano()
}
