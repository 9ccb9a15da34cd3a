//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/httpapi"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/procinfo"
)

func init() {
	var f agentFlags
	var pid int
	var duration time.Duration
	cmd := &cobra.Command{
		Use:   "attach --pid PID",
		Short: "Observe one running process and serve its metrics",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if pid <= 0 {
				return usageError{errors.New("--pid is required and must be a positive process id: find it with `pgrep -f <name>`")}
			}
			if err := applyStageEnv(cmd, &f); err != nil {
				return err
			}
			return runAttach(f, pid, duration)
		},
	}
	addAgentFlags(cmd, &f)
	cmd.Flags().IntVar(&pid, "pid", 0, "process id of the Go service to observe")
	cmd.Flags().DurationVar(&duration, "duration", 0, "stop after this long (0: until SIGINT/SIGTERM or the target exits)")
	rootCmd.AddCommand(cmd)
}

func addAgentFlags(cmd *cobra.Command, f *agentFlags) {
	cmd.Flags().StringVar(&f.listen, "listen", "127.0.0.1:9464", "address for /metrics, /healthz and /snapshot")
	cmd.Flags().StringVar(&f.adminListen, "admin-listen", "127.0.0.1:9465", "address for admin endpoints (PUT /stages); keep it on localhost; empty disables")
	cmd.Flags().BoolVar(&f.stages, "stages", false, "attach internal stage probes from the start (env ASOBSERVE_INTERNAL_METRICS)")
	cmd.Flags().BoolVar(&f.tracing, "tracing", false, "export a span per operation over OTLP (OTEL_* environment variables)")
	cmd.Flags().IntVar(&f.ringbufSize, "ringbuf-size", attach.DefaultRingBufferSize, "ring buffer size in bytes (power of two)")
	cmd.Flags().IntVar(&f.maxColls, "max-collections", metrics.DefaultCollectionCap, "distinct (namespace, set) pairs per service before db_collection_name=\"_other\"")
}

// applyStageEnv reads ASOBSERVE_INTERNAL_METRICS when --stages was not given.
func applyStageEnv(cmd *cobra.Command, f *agentFlags) error {
	if cmd.Flags().Changed("stages") {
		return nil
	}
	v, ok := os.LookupEnv("ASOBSERVE_INTERNAL_METRICS")
	if !ok {
		return nil
	}
	on, valid := httpapi.ParseSwitch(v)
	if !valid {
		return usageError{fmt.Errorf("ASOBSERVE_INTERNAL_METRICS=%q is not a switch: use 1, true, yes, on (or 0, false, no, off)", v)}
	}
	f.stages = on
	return nil
}

func runAttach(f agentFlags, pid int, duration time.Duration) error {
	if !procinfo.Alive(pid) {
		return fmt.Errorf("no process with pid %d: check the pid (`pgrep -f <name>`)", pid)
	}
	s, err := startSession(f, attach.Options{}, nil)
	if err != nil {
		return err
	}
	defer s.close()
	id := &metrics.Identity{Service: procinfo.ServiceName(pid)}
	t, err := s.agent.Attach(pid, id)
	if err != nil {
		return err
	}
	logAttached(s.logger, t)
	s.logger.Printf("%s; serving http://%s/metrics", stageStateLine(f.stages), s.public.Addr())
	return waitForEnd(s, pid, duration)
}

// waitForEnd returns on SIGINT/SIGTERM, after duration, or when the target exits.
func waitForEnd(s *session, pid int, duration time.Duration) error {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	var timeout <-chan time.Time
	if duration > 0 {
		timeout = time.After(duration)
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case got := <-sig:
			s.logger.Printf("%s: detaching", got)
			return nil
		case <-timeout:
			return nil
		case err := <-s.done:
			s.done <- err
			return err
		case <-tick.C:
			if pid > 0 && !procinfo.Alive(pid) {
				s.logger.Printf("pid %d exited: detaching", pid)
				time.Sleep(300 * time.Millisecond) // let the last records drain
				return nil
			}
		}
	}
}
