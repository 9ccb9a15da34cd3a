//go:build linux

package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/decoder"
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
	offset := monoToWall()
	var mu sync.Mutex
	procs := map[int]*tracing.Process{}
	opts.OnOp = func(t *attach.Target, ev *decoder.OpEvent, op, errorType string) {
		if int64(t.PID) != pid.Load() {
			return
		}
		mu.Lock()
		p := procs[t.PID]
		if p == nil {
			p = &tracing.Process{PID: t.PID, ExecutableName: filepath.Base(t.Binary.Path)}
			procs[t.PID] = p
		}
		mu.Unlock()
		e := tracing.OpEvent{ID: ev.OpID, Proc: p, Op: op, Namespace: ev.Namespace, Set: ev.Set, ErrorType: errorType,
			Start: time.Unix(0, int64(ev.Start)+offset), End: time.Unix(0, int64(ev.End)+offset)}
		if errorType != "" {
			e.ResultCode = int(ev.Cause)
		}
		b.tr.OnOp(e)
	}
}

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
