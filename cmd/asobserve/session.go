//go:build linux

package main

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/httpapi"
	"github.com/asobserve/asobserve/internal/metrics"
)

// agentFlags are shared by attach, daemon and demo.
type agentFlags struct {
	listen      string
	adminListen string
	stages      bool
	tracing     bool
	ringbufSize int
	maxColls    int
}

// session is a running agent: recorder, BPF agent, and its HTTP endpoints.
type session struct {
	rec    *metrics.Recorder
	agent  *attach.Agent
	public *httpapi.Server
	admin  *httpapi.Server
	done   chan error
	logger *log.Logger
}

// startSession binds the listeners first (a port conflict must fail before anything is
// attached), then loads BPF and starts reading events.
func startSession(f agentFlags, opts attach.Options, extra map[string]http.Handler) (*session, error) {
	logger := log.New(os.Stderr, "asobserve: ", 0)
	pub, err := httpapi.Listen(f.listen, "--listen")
	if err != nil {
		return nil, err
	}
	var adminLn net.Listener
	if f.adminListen != "" {
		if adminLn, err = httpapi.Listen(f.adminListen, "--admin-listen"); err != nil {
			pub.Close()
			return nil, err
		}
	}
	rec := metrics.New(metrics.Options{CollectionCap: f.maxColls})
	opts.RingBufferSize = f.ringbufSize
	opts.Stages = f.stages
	if opts.Logf == nil {
		opts.Logf = logger.Printf
	}
	agent, err := attach.New(rec, opts)
	if err != nil {
		pub.Close()
		if adminLn != nil {
			adminLn.Close()
		}
		return nil, err
	}
	s := &session{rec: rec, agent: agent, done: make(chan error, 1), logger: logger}
	s.public = httpapi.Serve(pub, httpapi.MetricsMux(rec.Handler(), nil, extra))
	if adminLn != nil {
		mux := http.NewServeMux()
		mux.Handle("/stages", httpapi.StagesHandler(agent.SetStages, agent.StagesEnabled))
		s.admin = httpapi.Serve(adminLn, mux)
	}
	go func() { s.done <- agent.Run() }()
	return s, nil
}

func (s *session) close() {
	if s.admin != nil {
		s.admin.Close()
	}
	s.public.Close()
	if err := s.agent.Close(); err != nil {
		s.logger.Printf("closing: %v", err)
	}
	<-s.done
}

func logAttached(l *log.Logger, t *attach.Target) {
	b := t.Binary
	l.Printf("attached to pid %d (%s, service %q): %s %s, %s, %d functions, %d return probes, %d stage functions available, in %s",
		t.PID, b.Path, t.Identity.Service, b.ClientModule, b.ClientVersion, b.GoVersion, b.Functions, b.ReturnProbes, b.StageFunctions,
		b.AttachTime.Round(1e5))
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
