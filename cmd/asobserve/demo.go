//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/config"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/testserver"
)

func init() {
	var duration time.Duration
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start a test server and a workload process, attach to it, and show live per-operation numbers",
		Args:  cobra.NoArgs,
	}
	binding := config.Agent.Bind(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := binding.Resolve()
		if err != nil {
			return usageError{err}
		}
		return runDemo(cfg, duration, cmd.OutOrStdout())
	}
	cmd.Flags().DurationVar(&duration, "duration", 30*time.Second, "how long the demo runs")
	rootCmd.AddCommand(cmd)
}

func runDemo(cfg *config.Config, duration time.Duration, out io.Writer) error {
	cluster, err := testserver.Start("127.0.0.1:0", testserver.Config{Nodes: 3})
	if err != nil {
		return fmt.Errorf("starting the test server: %w", err)
	}
	defer cluster.Close()
	fmt.Fprintf(out, "test server: 3 nodes on %s\n", strings.Join(cluster.Hosts(), ", "))

	self, err := os.Executable()
	if err != nil {
		return err
	}
	wl := exec.Command(self, "workload", "--wait-signal", "--hosts", strings.Join(cluster.Hosts(), ","),
		"--duration", duration.String(), "--concurrency", "4", "--rate", "2000", "--errors",
		"--sets", "users,sessions", "--keys", "500")
	wl.Env = append(os.Environ(), "OTEL_SERVICE_NAME=demo-shop")
	stderr, _ := wl.StderrPipe()
	wl.Stdout = io.Discard
	if err := wl.Start(); err != nil {
		return fmt.Errorf("starting the workload: %w", err)
	}
	defer func() { _ = wl.Process.Kill(); _ = wl.Wait() }()
	if err := waitReady(stderr, 60*time.Second); err != nil {
		return err
	}

	live := newLiveTable()
	s, err := startSession(cfg, attach.Options{})
	if err != nil {
		if !ebpfUnavailable(err) {
			return err
		}
		_ = wl.Process.Kill()
		cluster.Close()
		fmt.Fprintf(out, "eBPF is not available here (%v): running the demo in in-process mode\n", err)
		return runInprocDemo(cfg.String(config.Listen), duration, out)
	}
	defer s.close()
	s.rec.AddObserver(live)
	t, err := s.agent.Attach(wl.Process.Pid, &metrics.Identity{Service: "demo-shop"})
	if err != nil {
		return err
	}
	s.logAttached(t)
	fmt.Fprintf(out, "metrics: http://%s/metrics   (%s)\n\n", s.public.Addr(), stageStateLine(cfg.Bool(config.Stages)))
	cluster.SetFaults([]testserver.Fault{{Set: "sessions", Command: "read", Latency: 2 * time.Millisecond}})
	_ = wl.Process.Signal(syscall.SIGUSR1)

	// On a terminal the live view replaces the scrolling lines; it ends with the demo, a
	// little after the workload, so the view shows the workload's end.
	if f, ok := out.(*os.File); ok && isTerminal(f) {
		if err := runTUI(s, t, cfg.Bool(config.Tracing), duration+2*time.Second); err != nil {
			return err
		}
		live.print(out, true)
		return nil
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	end := time.After(duration + 2*time.Second)
	for {
		select {
		case <-sig:
			return nil
		case <-end:
			live.print(out, true)
			return nil
		case <-tick.C:
			live.print(out, false)
		}
	}
}

// ebpfUnavailable tells a missing kernel feature or privilege from other failures (such
// as a port in use), which the demo reports instead of falling back.
func ebpfUnavailable(err error) bool {
	return strings.HasPrefix(err.Error(), "loading BPF programs") || strings.HasPrefix(err.Error(), "loading embedded BPF")
}

func waitReady(r io.Reader, timeout time.Duration) error {
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(r)
		once := sync.Once{}
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "workload: ready") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	select {
	case <-ready:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("the workload did not become ready within %s", timeout)
	}
}

// liveTable keeps the last second's durations per operation for the demo's display.
type liveTable struct {
	mu     sync.Mutex
	window map[string][]time.Duration
	errs   map[string]int
	total  map[string]int
}

func newLiveTable() *liveTable {
	return &liveTable{window: map[string][]time.Duration{}, errs: map[string]int{}, total: map[string]int{}}
}

func (l *liveTable) Op(_ *observe.Target, op observe.Op) {
	l.mu.Lock()
	l.window[op.Name] = append(l.window[op.Name], op.Duration())
	if op.ErrorType != "" {
		l.errs[op.Name]++
	}
	l.total[op.Name]++
	l.mu.Unlock()
}

func (l *liveTable) Stage(*observe.Target, observe.Stage) {}

func (l *liveTable) TargetGone(*observe.Target) {}

func (l *liveTable) print(out io.Writer, final bool) {
	l.mu.Lock()
	window := l.window
	l.window = map[string][]time.Duration{}
	errs, total := l.errs, l.total
	if final {
		window = nil
	}
	l.mu.Unlock()
	ops := make([]string, 0, len(total))
	for op := range total {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	if final {
		fmt.Fprintf(out, "\nfinal counts (exact, from the probes):\n%-14s %10s %10s\n", "operation", "total", "errors")
		for _, op := range ops {
			fmt.Fprintf(out, "%-14s %10d %10d\n", op, total[op], errs[op])
		}
		return
	}
	fmt.Fprintf(out, "%s  %-14s %8s %10s %10s %8s\n", time.Now().Format("15:04:05"), "operation", "ops/s", "p50", "p99", "errors")
	for _, op := range ops {
		d := window[op]
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		fmt.Fprintf(out, "          %-14s %8d %10s %10s %8d\n", op, len(d), quantile(d, 0.5), quantile(d, 0.99), errs[op])
	}
}

func quantile(sorted []time.Duration, q float64) string {
	if len(sorted) == 0 {
		return "-"
	}
	return sorted[int(q*float64(len(sorted)-1))].Round(time.Microsecond).String()
}
