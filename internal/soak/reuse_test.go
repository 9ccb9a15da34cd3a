//go:build linux

package soak_test

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/daemon"
	"github.com/asobserve/asobserve/internal/discovery"
	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/testserver"
)

// gate passes discovery's events on to the daemon, or holds them while closed: the daemon
// then hears of an exit late, as a daemon busy attaching other processes does.
type gate struct {
	mu     sync.Mutex
	opened chan struct{}
}

func newGate() *gate {
	g := &gate{opened: make(chan struct{})}
	close(g.opened)
	return g
}

func (g *gate) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.opened = make(chan struct{})
}

func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.opened)
}

func (g *gate) relay(ctx context.Context, in <-chan discovery.Event) <-chan discovery.Event {
	out := make(chan discovery.Event)
	go func() {
		defer close(out)
		for ev := range in {
			g.mu.Lock()
			opened := g.opened
			g.mu.Unlock()
			select {
			case <-opened:
			case <-ctx.Done():
				return
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// A new process takes the pid of a target that exited before the daemon handled the exit:
// what it does before the daemon attaches it counts as nobody's (the exit tracepoint took
// the pid out of the filter), the old service keeps exactly its own operations, and the
// new one is attached under its own identity once the daemon catches up.
func TestPIDReusedBeforeTheDaemonHandlesTheExit(t *testing.T) {
	e2etest.RequireRoot(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	built, err := e2etest.BuildTarget(t, e2etest.TargetBuild{Client: "v7"})
	if err != nil {
		t.Fatal(err)
	}
	// A private copy: the daemon's --include keeps it off other tests' processes.
	exe := filepath.Join(t.TempDir(), "reuse-v7")
	data, err := os.ReadFile(built)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}

	rec := metrics.New(metrics.Options{})
	agent, err := attach.New(rec, attach.Options{})
	if err != nil {
		t.Fatal(err)
	}
	agentDone := make(chan error, 1)
	go func() { agentDone <- agent.Run() }()
	ctx, cancel := context.WithCancel(context.Background())
	warnings := slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	w := discovery.New(discovery.Options{Interval: time.Second, Include: []string{exe}, Logger: warnings})
	g := newGate()
	d := daemon.New(agentAttacher{agent}, g.relay(ctx, w.Events()), daemon.Options{Logger: warnings})
	watchDone, daemonDone := make(chan error, 1), make(chan error, 1)
	go func() { watchDone <- w.Run(ctx) }()
	go func() { daemonDone <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-daemonDone
		<-watchDone
		agent.Close()
		<-agentDone
	})
	command := func(service string) *exec.Cmd {
		cmd := exec.Command(exe, "-wait-signal", "-hosts", strings.Join(cluster.Hosts(), ","), "-count", strconv.Itoa(opsPerKind))
		cmd.Env = append(os.Environ(), "OTEL_SERVICE_NAME="+service)
		return cmd
	}
	attachedAs := func(pid int, start uint64) bool {
		attached, _ := d.Snapshot()
		for _, a := range attached {
			if a.PID == pid {
				return a.StartTime == start
			}
		}
		return false
	}

	// Held at exec until the daemon attached it, so its preload counts too.
	held := e2etest.StartHeld(t, command("reuse-old"))
	pid := held.PID()
	oldStart := startTime(t, pid)
	waitFor(t, "the daemon to attach the first process", 2*time.Minute, func() bool { return attachedAs(pid, oldStart) })
	old := held.Release(t)
	g.hold()
	old.Go(t)
	oldTruth := old.Wait(t, 2*time.Minute)

	// The daemon has not heard of the exit: to it, the pid is still the old process. The
	// new process preloads (40 puts) and waits for its start signal meanwhile.
	if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
		t.Fatalf("forcing pid reuse: %v", err)
	}
	reuser := e2etest.StartCommand(t, command("reuse-new"))
	if reuser.PID != pid {
		t.Fatalf("the new process got pid %d, not the freed %d: another fork took it", reuser.PID, pid)
	}
	newStart := startTime(t, pid)
	if attached, _ := d.Snapshot(); len(attached) != 1 || attached[0].StartTime != oldStart {
		t.Fatalf("the daemon's processes while its events are held: %+v, want the first process only", attached)
	}
	g.open()
	waitFor(t, "the daemon to attach the pid's new process", 2*time.Minute, func() bool { return attachedAs(pid, newStart) })
	reuser.Go(t)
	newTruth := reuser.Wait(t, 2*time.Minute)
	waitFor(t, "the daemon to detach the pid's new process", time.Minute, func() bool { return !attachedAs(pid, newStart) })

	wantOld := e2etest.TruthSeries(oldTruth)
	k := e2etest.K("put", "test", "compat", "")
	c := wantOld[k]
	c.Count += preloadPuts
	wantOld[k] = c
	e2etest.CompareCounts(t, e2etest.OpSeries(t, rec.Registry, "reuse-old"), wantOld)
	// Attached after its preload: its truth only.
	e2etest.CompareCounts(t, e2etest.OpSeries(t, rec.Registry, "reuse-new"), e2etest.TruthSeries(newTruth))
	if n := testutil.ToFloat64(agent.SelfMetrics().EventsInvalid); n != 0 {
		t.Errorf("%v records matched no target", n)
	}
}
