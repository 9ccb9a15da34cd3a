//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/config"
	"github.com/asobserve/asobserve/internal/procinfo"
	"github.com/asobserve/asobserve/internal/tui"
)

func init() {
	var pid int
	var duration time.Duration
	cmd := &cobra.Command{
		Use:   "top --pid PID",
		Short: "Observe one running process and show its operations live, full screen (q quits and detaches)",
		Args:  cobra.NoArgs,
	}
	binding := config.Agent.Bind(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkPID(pid); err != nil {
			return err
		}
		if !isTerminal(os.Stdout) {
			return usageError{errors.New("top needs a terminal on stdout: for log lines and /metrics use `asobserve attach`")}
		}
		cfg, err := binding.Resolve()
		if err != nil {
			return usageError{err}
		}
		return runAttach(cfg, pid, attachOptions{duration: duration, tui: true})
	}
	cmd.Flags().IntVar(&pid, "pid", 0, "process id of the Go service to observe")
	cmd.Flags().DurationVar(&duration, "duration", 0, "quit after this long (0: until q)")
	rootCmd.AddCommand(cmd)
}

// isTerminal tells whether f is a terminal the live view can take over. A character
// device is not enough: /dev/null is one.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// runTUI shows, on the terminal that stdout is, the live view of target t until q, duration (if positive) or a signal,
// then returns with the terminal restored; the caller detaches. A target that exits
// meanwhile is detached here and the view keeps its last numbers until q.
func runTUI(s *session, t *attach.Target, tracing bool, duration time.Duration) error {
	col := tui.NewCollector(tui.DefaultWindow, nil)
	s.rec.AddObserver(col)
	// The agent's log lines would scribble over the screen: hold them until it is restored.
	held := &lockedBuffer{}
	s.logger.SetOutput(held)
	defer func() {
		s.logger.SetOutput(os.Stderr)
		held.writeTo(os.Stderr)
	}()

	src := &agentSource{agent: s.agent, col: col, tracing: tracing, target: tui.Target{
		PID: t.PID, Service: t.Identity.Service, Client: t.Binary.ClientModule + " " + t.Binary.ClientVersion,
		GoVersion: t.Binary.GoVersion}}
	p := tea.NewProgram(tui.New(src, time.Second), tea.WithAltScreen())

	stop := make(chan struct{})
	var watching sync.WaitGroup
	watching.Add(1)
	go func() {
		defer watching.Done()
		watchTarget(s, p, t.PID, duration, stop)
	}()
	_, err := p.Run()
	close(stop)
	watching.Wait()
	if errors.Is(err, tea.ErrInterrupted) {
		return nil
	}
	select {
	case runErr := <-s.done:
		s.done <- runErr
		if runErr != nil {
			return runErr
		}
	default:
	}
	return err
}

// watchTarget quits the view after duration, on SIGHUP (the terminal went away; bubbletea
// handles SIGINT and SIGTERM) or when the agent stops, and detaches a target that exits.
func watchTarget(s *session, p *tea.Program, pid int, duration time.Duration, stop <-chan struct{}) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var timeout <-chan time.Time
	if duration > 0 {
		timeout = time.After(duration)
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	exe := procinfo.ExeID(pid)
	gone := false
	for {
		select {
		case <-stop:
			return
		case <-hup:
			p.Quit()
		case <-timeout:
			p.Quit()
		case err := <-s.done:
			s.done <- err
			p.Quit()
			return
		case <-tick.C:
			if gone {
				continue
			}
			var reason string
			if !procinfo.Alive(pid) {
				reason = fmt.Sprintf("pid %d exited", pid)
			} else if procinfo.ExeID(pid) != exe {
				reason = fmt.Sprintf("pid %d exec'd into another program (%s)", pid, procinfo.ExeName(pid))
			}
			if reason == "" {
				continue
			}
			gone = true
			at := time.Now()
			// Detach delivers the target's last operations first, so the frozen view has them.
			if err := s.agent.Detach(pid); err != nil {
				reason += " (detaching: " + err.Error() + ")"
			}
			p.Send(tui.TargetGone{Reason: reason, At: at})
		}
	}
}

// agentSource is the view's Source over a running agent.
type agentSource struct {
	agent   *attach.Agent
	col     *tui.Collector
	tracing bool
	target  tui.Target

	// The previous frame's readings, for the per-second costs.
	at       time.Time
	cpu      time.Duration
	bpfRuns  uint64
	bpfTime  time.Duration
	haveLast bool
}

func (a *agentSource) SetStages(on bool) error {
	if on {
		a.col.RestartStages()
	}
	return a.agent.SetStages(on)
}

func (a *agentSource) Frame() tui.Frame {
	now := time.Now()
	cpu := processCPU()
	var runs uint64
	var runTime time.Duration
	if stats, err := a.agent.ProgramStats(); err == nil {
		for _, st := range stats {
			runs += st.RunCount
			runTime += st.RunTime
		}
	}
	_, lost, _, _ := a.agent.Counters()
	f := tui.Frame{Target: a.target, Stages: a.agent.StagesEnabled(), Tracing: a.tracing,
		Window: a.col.Window(), Table: a.col.Table(), Cost: tui.Cost{EventsLost: lost}}
	if elapsed := now.Sub(a.at); a.haveLast && elapsed > 0 {
		f.Cost.CPUPercent = 100 * float64(cpu-a.cpu) / float64(elapsed)
		f.Cost.BPFPercent = 100 * float64(runTime-a.bpfTime) / float64(elapsed)
		f.Cost.ProbeHitsRate = float64(runs-a.bpfRuns) / elapsed.Seconds()
	}
	a.at, a.cpu, a.bpfRuns, a.bpfTime, a.haveLast = now, cpu, runs, runTime, true
	return f
}

// processCPU is the user and system time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// maxHeldLog bounds the log held while the view is shown: a view left open for days
// must not grow with a log line repeated every second.
const maxHeldLog = 1 << 20

// lockedBuffer holds log lines written from several goroutines.
type lockedBuffer struct {
	mu      sync.Mutex
	buf     []byte
	dropped int
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	if len(b.buf)+len(p) > maxHeldLog {
		b.dropped++
	} else {
		b.buf = append(b.buf, p...)
	}
	b.mu.Unlock()
	return len(p), nil
}

func (b *lockedBuffer) writeTo(w io.Writer) {
	b.mu.Lock()
	_, _ = w.Write(b.buf)
	if b.dropped > 0 {
		fmt.Fprintf(w, "asobserve: %d more log lines while the view was shown were dropped\n", b.dropped)
	}
	b.mu.Unlock()
}
