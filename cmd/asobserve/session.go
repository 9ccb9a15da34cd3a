//go:build linux

package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/config"
	"github.com/asobserve/asobserve/internal/httpapi"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/otelmetrics"
	"github.com/asobserve/asobserve/internal/publish"
	"github.com/asobserve/asobserve/internal/rolling"
	"github.com/asobserve/asobserve/internal/snapshot"
	"github.com/asobserve/asobserve/internal/spanfeed"
)

// session is a running agent: recorder, BPF agent, and its HTTP endpoints.
type session struct {
	rec    *metrics.Recorder
	agent  *attach.Agent
	public *httpapi.Server
	admin  *httpapi.Server
	done   chan error
	logger *log.Logger
	roll   *rolling.Rolling
	pub    *publish.Publisher
	spans  *spanfeed.Feed
	otlp   *otelmetrics.Exporter // nil unless OTEL_METRICS_EXPORTER lists otlp or console
}

// startSession binds the listeners first (a port conflict must fail before anything is
// attached), then loads BPF and starts reading events, the snapshot and Redis publishing.
func startSession(cfg *config.Config, opts attach.Options) (*session, error) {
	logger := log.New(os.Stderr, "asobserve: ", 0)
	pub, err := httpapi.Listen(cfg.String(config.Listen), "--listen")
	if err != nil {
		return nil, err
	}
	var adminLn net.Listener
	if addr := cfg.String(config.AdminListen); addr != "" {
		if adminLn, err = httpapi.Listen(addr, "--admin-listen"); err != nil {
			pub.Close()
			return nil, err
		}
	}
	closeListeners := func() {
		pub.Close()
		if adminLn != nil {
			adminLn.Close()
		}
	}
	pubSettings, redisOn, err := publish.FromConfig(cfg)
	if err != nil {
		closeListeners()
		return nil, usageError{err}
	}
	rec := metrics.New(metrics.Options{CollectionCap: cfg.Int(config.MaxCollections)})
	var spans *spanfeed.Feed
	if cfg.Bool(config.Tracing) {
		if spans, err = spanfeed.New(rec.SpansDropped, logger.Printf, nil); err != nil {
			closeListeners()
			return nil, usageError{err}
		}
		opts.Observers = append(opts.Observers, spans)
		opts.Tracing = true // server.address, server.port and parents from the target's own spans
		if spans.Enabled() {
			rec.LinkSpans(spans.SpanOf)
		}
	}
	otlp, err := startMetricExport(cfg, rec, spans, logger)
	if err != nil {
		closeListeners()
		return nil, err
	}
	opts.RingBufferSize = cfg.Size(config.RingbufSize)
	opts.Stages = cfg.Bool(config.Stages)
	opts.ProgramStats = opts.ProgramStats || cfg.Bool(config.BPFStats)
	if opts.Logf == nil {
		opts.Logf = logger.Printf
	}
	agent, err := attach.New(rec, opts)
	if err != nil {
		closeListeners()
		return nil, err
	}
	s := &session{rec: rec, agent: agent, done: make(chan error, 1), logger: logger, spans: spans, otlp: otlp}
	s.roll = rolling.New(rolling.Options{Windows: cfg.RollingWindows()})
	rec.AddObserver(s.roll)
	src := snapshot.Source{Registry: rec.Registry, Rolling: s.roll,
		Identity: snapshot.HostIdentity(cfg.String(config.BlockID), cfg.String(config.InstanceID)),
		Targets: func() []snapshot.Target {
			var out []snapshot.Target
			for _, t := range agent.Targets() {
				out = append(out, snapshot.Target{PID: t.PID, Service: t.Identity.Service})
			}
			return out
		}}
	s.public = httpapi.Serve(pub, httpapi.MetricsMux(rec.Handler(), nil, map[string]http.Handler{"/snapshot": snapshot.Handler(src)}))
	if adminLn != nil {
		mux := http.NewServeMux()
		mux.Handle("/stages", httpapi.StagesHandler(agent.SetStages, agent.StagesEnabled))
		s.admin = httpapi.Serve(adminLn, mux)
	}
	if redisOn {
		s.pub, err = publish.New(publish.Options{Settings: pubSettings, Produce: snapshot.JSON(src), Registerer: rec.Registry, Logf: logger.Printf})
		if err != nil {
			s.public.Close()
			if s.admin != nil {
				s.admin.Close()
			}
			agent.Close()
			return nil, err
		}
		s.pub.Start()
	}
	go func() { s.done <- agent.Run() }()
	return s, nil
}

func (s *session) close() {
	if s.pub != nil {
		s.pub.Stop()
	}
	if s.admin != nil {
		s.admin.Close()
	}
	s.public.Close()
	if err := s.agent.Close(); err != nil {
		s.logger.Printf("closing: %v", err)
	}
	<-s.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if s.spans != nil {
		_ = s.spans.Shutdown(ctx)
	}
	if s.otlp != nil {
		_ = s.otlp.Shutdown(ctx) // a failed final export is counted and was warned about
	}
}

// startMetricExport starts the OTLP/console metric export that OTEL_METRICS_EXPORTER asks
// for, next to /metrics; exemplars name the spans when tracing is on.
func startMetricExport(cfg *config.Config, rec *metrics.Recorder, spans *spanfeed.Feed, logger *log.Logger) (*otelmetrics.Exporter, error) {
	o := otelmetrics.FromConfig(cfg)
	if len(o.Exporters) == 0 {
		return nil, nil
	}
	o.Describe, o.Registerer, o.Logf = spanfeed.DescribeProcess, rec.Registry, logger.Printf
	if spans != nil && spans.Enabled() {
		o.SpanOf = spans.SpanOf
	}
	exp, err := otelmetrics.New(o)
	if err != nil {
		return nil, usageError{err}
	}
	rec.AddObserver(exp)
	return exp, nil
}

func (s *session) logAttached(t *attach.Target) {
	l := s.logger
	b := t.Binary
	l.Printf("attached to pid %d (%s, service %q): %s %s, %s, %d functions, %d return probes, %d stage functions available, in %s",
		t.PID, b.Path, t.Identity.Service, b.ClientModule, b.ClientVersion, b.GoVersion, b.Functions, b.ReturnProbes, b.StageFunctions,
		b.AttachTime.Round(1e5))
	if b.AppSpans && s.spans != nil {
		l.Printf("pid %d links the OpenTelemetry Go SDK: operations run under one of its live spans become that span's children", t.PID)
	}
}

func stageStateLine(on bool) string {
	v, ok := os.LookupEnv("ASOBSERVE_INTERNAL_METRICS")
	if !ok {
		v = "None"
	}
	state := "False"
	if on {
		state = "True"
	}
	return fmt.Sprintf("internal_stage_metrics_enabled=%s (ASOBSERVE_INTERNAL_METRICS=%s)", state, v)
}
