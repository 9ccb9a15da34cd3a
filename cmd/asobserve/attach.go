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
	"github.com/asobserve/asobserve/internal/config"
	"github.com/asobserve/asobserve/internal/inspect"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/procinfo"
)

func init() {
	var pid int
	var opts attachOptions
	cmd := &cobra.Command{
		Use:   "attach --pid PID",
		Short: "Observe one running process and serve its metrics",
		Args:  cobra.NoArgs,
	}
	binding := config.Agent.Bind(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkPID(pid); err != nil {
			return err
		}
		cfg, err := binding.Resolve()
		if err != nil {
			return usageError{err}
		}
		return runAttach(cfg, pid, opts)
	}
	cmd.Flags().IntVar(&pid, "pid", 0, "process id of the Go service to observe")
	cmd.Flags().DurationVar(&opts.duration, "duration", 0, "stop after this long (0: until SIGINT/SIGTERM or the target exits)")
	cmd.Flags().DurationVar(&opts.linger, "linger", 0, "after the target exits, keep serving its final metrics this long (for a last scrape)")
	cmd.Flags().BoolVar(&opts.tui, "tui", false, "show the live full-screen view (as `asobserve top`) when stdout is a terminal; q quits and detaches")
	rootCmd.AddCommand(cmd)
}

// attachOptions are attach's own flags.
type attachOptions struct {
	duration, linger time.Duration
	// tui: the live view instead of log lines, when stdout is a terminal.
	tui bool
}

func runAttach(cfg *config.Config, pid int, opts attachOptions) error {
	if !procinfo.Alive(pid) {
		return fmt.Errorf("no process with pid %d: check the pid (`pgrep -f <name>`)", pid)
	}
	// Check the target before loading anything, so the most specific error comes first.
	bin, err := inspect.OpenPID(pid)
	if err != nil {
		return err
	}
	bin.Close()
	live := opts.tui && isTerminal(os.Stdout)
	// The live view shows the probes' share of CPU, which only the kernel's statistics give.
	s, err := startSession(cfg, attach.Options{ProgramStats: live})
	if err != nil {
		return err
	}
	defer s.close()
	id := &metrics.Identity{Service: procinfo.ServiceName(pid)}
	t, err := s.agent.Attach(pid, id)
	if err != nil {
		return err
	}
	s.logAttached(t)
	s.logger.Printf("%s; serving http://%s/metrics", stageStateLine(cfg.Bool(config.Stages)), s.public.Addr())
	if live {
		return runTUI(s, t, cfg.Bool(config.Tracing), opts.duration)
	}
	return waitForEnd(s, pid, opts.duration, opts.linger)
}

// waitForEnd returns on SIGINT/SIGTERM, after duration, or when the target exits.
func waitForEnd(s *session, pid int, duration, linger time.Duration) error {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	var timeout <-chan time.Time
	if duration > 0 {
		timeout = time.After(duration)
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	exe := procinfo.ExeID(pid)
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
			var gone string
			if pid > 0 && !procinfo.Alive(pid) {
				gone = fmt.Sprintf("pid %d exited: detaching", pid)
			} else if pid > 0 && procinfo.ExeID(pid) != exe {
				gone = fmt.Sprintf("pid %d exec'd into another program (%s): detaching", pid, procinfo.ExeName(pid))
			}
			if gone == "" {
				continue
			}
			s.logger.Print(gone)
			if err := s.agent.Detach(pid); err != nil || linger <= 0 {
				return err
			}
			s.logger.Printf("serving the final metrics for %s (--linger)", linger)
			select {
			case <-sig:
			case <-timeout:
			case <-time.After(linger):
			}
			return nil
		}
	}
}

// checkPID refuses a missing or non-positive --pid with the remedy.
func checkPID(pid int) error {
	if pid <= 0 {
		return usageError{errors.New("--pid is required and must be a positive process id: find it with `pgrep -f <name>`")}
	}
	return nil
}
