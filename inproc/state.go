package inproc

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/spanfeed"
	"github.com/asobserve/asobserve/internal/tracing"
)

// EnvInternalMetrics turns internal stage metrics on at start when truthy (1, true, True,
// TRUE, yes, on). It is read once; SetInternalStageMetricsEnabled wins afterwards.
const EnvInternalMetrics = "ASOBSERVE_INTERNAL_METRICS"

// DefaultMetricsAddr is where StartMetricsServer listens when given "".
const DefaultMetricsAddr = ":9464"

// logf prints the package's log lines; tests replace it.
var logf = log.Printf

type pkgState struct {
	rec *metrics.Recorder
	// target is this process, the only one the wrapper observes.
	target  *observe.Target
	process *tracing.Process
	tracer  atomic.Pointer[tracer]

	tracingMu sync.Mutex
	serverMu  sync.Mutex
	server    *http.Server
	serveDone chan struct{}
}

// tracer is the running span feed with its SpanOf made once: a method value made per call
// would be allocated per recorded operation.
type tracer struct {
	*spanfeed.Feed
	spanOf metrics.SpanOf
}

// spanOf is the span the running tracer gives op, or none while tracing is off; the OTLP
// exporter asks it for exemplars, as tracing may start after the export.
func (s *pkgState) spanOf(t *observe.Target, op *observe.Op) trace.SpanContext {
	if tr := s.tracer.Load(); tr != nil {
		return tr.spanOf(t, op)
	}
	return trace.SpanContext{}
}

var (
	stateOnce sync.Once
	st        *pkgState
)

// state returns the process-wide recorder and settings, creating them on first use.
func state() *pkgState {
	stateOnce.Do(initState) // a named function, not a closure, keeps state inlinable
	return st
}

func initState() { st = newState() }

func newState() *pkgState {
	service := os.Getenv("OTEL_SERVICE_NAME")
	exe := executableName()
	if service == "" {
		service = exe
	}
	s := &pkgState{
		rec:     metrics.New(metrics.Options{}),
		target:  &observe.Target{PID: os.Getpid(), Identity: &metrics.Identity{Service: service}, Wall: wall},
		process: &tracing.Process{PID: os.Getpid(), ExecutableName: exe, TargetServiceName: os.Getenv("OTEL_SERVICE_NAME")},
	}
	raw, set := os.LookupEnv(EnvInternalMetrics)
	on := set && truthy(raw)
	s.rec.SetStagesEnabled(on)
	shown := "None"
	if set {
		shown = raw
	}
	logf("[asobserve] internal_stage_metrics_enabled=%t (%s=%s)", on, EnvInternalMetrics, shown)
	return s
}

func executableName() string {
	p, err := os.Executable()
	if err != nil {
		return filepath.Base(os.Args[0])
	}
	return strings.TrimSuffix(filepath.Base(p), ".exe")
}

// truthy is the seed's set of true values.
func truthy(v string) bool {
	switch v {
	case "1", "true", "True", "TRUE", "yes", "on":
		return true
	}
	return false
}

// Metrics returns the Prometheus text exposition of every series (the seed's get_metrics()).
func Metrics() string { return state().rec.Text() }

// Collector returns a collector to register in the application's own registry, so that its
// existing /metrics endpoint serves the operation and stage histograms too.
func Collector() prometheus.Collector { return gathererCollector{state().rec.Registry} }

// SetMetricsEnabled switches the operation histogram (the seed's set_metrics_enabled).
func SetMetricsEnabled(on bool) { state().rec.SetOperationsEnabled(on) }

// MetricsEnabled reports the operation histogram switch.
func MetricsEnabled() bool { return state().rec.OperationsEnabled() }

// SetInternalStageMetricsEnabled switches db_client_internal_stage_seconds; it overrides
// ASOBSERVE_INTERNAL_METRICS.
func SetInternalStageMetricsEnabled(on bool) { state().rec.SetStagesEnabled(on) }

// InternalStageMetricsEnabled reports the stage histogram switch.
func InternalStageMetricsEnabled() bool { return state().rec.StagesEnabled() }

// WithInternalStageProfiling runs fn with stage metrics on and restores the previous state
// afterwards, even if fn panics (the seed's internal_stage_profiling() context manager).
func WithInternalStageProfiling(fn func()) {
	s := state()
	prev := s.rec.StagesEnabled()
	s.rec.SetStagesEnabled(true)
	defer s.rec.SetStagesEnabled(prev)
	fn()
}

// StartMetricsServer serves /metrics on addr (DefaultMetricsAddr when ""). It returns once
// the port is bound, or the error if it cannot be.
func StartMetricsServer(addr string) error {
	if addr == "" {
		addr = DefaultMetricsAddr
	}
	s := state()
	s.serverMu.Lock()
	defer s.serverMu.Unlock()
	if s.server != nil {
		return fmt.Errorf("inproc: metrics server already running on %s: call StopMetricsServer first", s.server.Addr)
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("inproc: metrics server: %w (choose another address)", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", s.rec.Handler())
	srv := &http.Server{Addr: lis.Addr().String(), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logf("[asobserve] metrics server on %s stopped: %v", srv.Addr, err)
		}
	}()
	s.server, s.serveDone = srv, done
	return nil
}

// MetricsServerAddr returns the bound address of the running metrics server, or "".
func MetricsServerAddr() string {
	s := state()
	s.serverMu.Lock()
	defer s.serverMu.Unlock()
	if s.server == nil {
		return ""
	}
	return s.server.Addr
}

// StopMetricsServer stops the server started by StartMetricsServer; it is a no-op if none runs.
func StopMetricsServer() {
	s := state()
	s.serverMu.Lock()
	defer s.serverMu.Unlock()
	if s.server == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.server.Shutdown(ctx)
	<-s.serveDone
	s.server, s.serveDone = nil, nil
}

// InitTracing starts span export configured by the OTEL_* variables (seed 003's
// init_tracing()). It is idempotent and safe for concurrent use.
func InitTracing() error {
	s := state()
	s.tracingMu.Lock()
	defer s.tracingMu.Unlock()
	if s.tracer.Load() != nil {
		return nil
	}
	tr, err := spanfeed.New(s.rec.SpansDropped, logf, func(*observe.Target) *tracing.Process { return s.process })
	if err != nil {
		return err
	}
	if tr.Enabled() { // OTEL_SDK_DISABLED=true leaves tracing off
		s.tracer.Store(&tracer{Feed: tr, spanOf: tr.SpanOf})
	}
	return nil
}

// ShutdownTracing flushes pending spans and stops tracing (seed 003's shutdown_tracing()).
// Call it before the process exits. It is idempotent.
func ShutdownTracing(ctx context.Context) error {
	s := state()
	s.tracingMu.Lock()
	defer s.tracingMu.Unlock()
	tr := s.tracer.Swap(nil)
	if tr == nil {
		return nil
	}
	return tr.Shutdown(ctx)
}
