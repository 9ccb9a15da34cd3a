//go:build linux

package attach_test

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/asobserve/asobserve/internal/inspect"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/testserver"
	"github.com/asobserve/asobserve/internal/workload"
)

// cheapMix is a fast single-key mix: many probed calls per second.
var cheapMix = []string{"--mix", "get=1,put=1,exists=1", "--keys", "100"}

// safetyCalls is the probed-call count of the stack-growth test: 1M by default (about a
// minute here; a quarter of it under the race detector, which takes twice as long),
// ASOBSERVE_SAFETY_CALLS=10000000 for the long run (given up to two minutes per
// million calls).
func safetyCalls(t *testing.T) int {
	t.Helper()
	v := os.Getenv("ASOBSERVE_SAFETY_CALLS")
	if v == "" {
		return 1_000_000 / raceScale
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("ASOBSERVE_SAFETY_CALLS=%q: want a positive integer", v)
	}
	return n
}

// Every operation runs at the bottom of a 58..64-frame recursion of 256-byte frames and
// every 16th on a fresh goroutine, so the client's functions run on stacks that grow
// (and move) under the probes.
func TestStackGrowthMillionCalls(t *testing.T) {
	e2etest.RequireRoot(t)
	calls := safetyCalls(t)
	if limit := time.Duration(calls/1_000_000) * 2 * time.Minute; limit > workloadLimit {
		defer func(old time.Duration) { workloadLimit = old }(workloadLimit)
		workloadLimit = limit
	}
	bin := e2etest.BuildAsobserve(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	start := time.Now()
	_, agent, got, want := observe(t, bin, cluster, nil, false, append([]string{"--stack-depth", "64",
		"--count", strconv.Itoa(calls), "--concurrency", "4"}, cheapMix...)...)
	took := time.Since(start)
	e2etest.CompareCounts(t, got, want)
	observed, _ := sums(got)
	t.Logf("%d probed calls observed in %s (%.0f/s) under stack growth", observed, took.Round(time.Millisecond), float64(observed)/took.Seconds())
	if observed != uint64(calls) {
		t.Errorf("observed %d probed calls, the workload made %d", observed, calls)
	}
	if _, lost, _, err := agent.Counters(); err != nil || lost != 0 {
		t.Errorf("ring buffer lost %d records (%v): the exact count above would be luck", lost, err)
	}
}

// runFor starts a workload, optionally observed by agent, and returns its truth and the
// time from the start signal to its exit.
func runFor(t *testing.T, bin string, cluster *testserver.Cluster, agent *attach.Agent, args ...string) (*workload.Truth, time.Duration, int) {
	t.Helper()
	w := e2etest.StartWorkload(t, bin, cluster.Hosts(), args...)
	if agent != nil {
		if _, err := agent.Attach(w.PID, &metrics.Identity{Service: "workload"}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	w.Go(t)
	truth := w.Wait(t, 3*time.Minute)
	return truth, time.Since(start), w.PID
}

// A one-page ring buffer that nobody reads until the target is done: the target must not
// wait for the reader, and the kernel's produced count splits exactly into received and lost.
func TestRingOverflowCountsExactly(t *testing.T) {
	e2etest.RequireRoot(t)
	bin := e2etest.BuildAsobserve(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	args := append([]string{"--count", "30000", "--concurrency", "4"}, cheapMix...)

	unobserved, baseTime, _ := runFor(t, bin, cluster, nil, args...)
	rec := metrics.New(metrics.Options{})
	agent, err := attach.New(rec, attach.Options{RingBufferSize: os.Getpagesize()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Close() })
	truth, observedTime, _ := runFor(t, bin, cluster, agent, args...)
	baseRate := float64(unobserved.TotalOps) / baseTime.Seconds()
	rate := float64(truth.TotalOps) / observedTime.Seconds()
	t.Logf("unobserved %.0f ops/s, observed with a full ring and no reader %.0f ops/s", baseRate, rate)
	if rate < baseRate/10 {
		t.Errorf("observed target ran at %.0f ops/s, under a tenth of unobserved %.0f ops/s: it waits for the reader", rate, baseRate)
	}

	done := make(chan error, 1)
	go func() { done <- agent.Run() }()
	Drain(t, agent)
	produced, lost, received, err := agent.Counters()
	if err != nil {
		t.Fatal(err)
	}
	agent.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Logf("produced %d, received %d, lost %d", produced, received, lost)
	if produced != uint64(truth.TotalOps) {
		t.Errorf("kernel produced %d records, want one per operation: %d", produced, truth.TotalOps)
	}
	if produced != received+lost {
		t.Errorf("produced %d != received %d + lost %d", produced, received, lost)
	}
	if lost == 0 || received == 0 {
		t.Fatalf("received %d, lost %d: a one-page ring left unread must both fill and overflow", received, lost)
	}
	if v := testutil.ToFloat64(agent.SelfMetrics().EventsLost); v != float64(lost) {
		t.Errorf("asobserve_events_lost_total = %v, kernel lost %d", v, lost)
	}
	if v := testutil.ToFloat64(agent.SelfMetrics().EventsReceived); v != float64(received) {
		t.Errorf("asobserve_events_received_total = %v, read %d", v, received)
	}
	got := e2etest.OpSeries(t, rec.Registry, "workload")
	if n, _ := sums(got); n != received {
		t.Errorf("%d operations recorded from %d received records", n, received)
	}
	for k, g := range got {
		if w := e2etest.TruthSeries(truth)[k]; g.Count > w.Count {
			t.Errorf("%+v: recorded %d, the workload did only %d", k, g.Count, w.Count)
		}
	}
}

// Attaching while the target runs flat out: it keeps running, exits 0, and every
// operation after the attach is counted, none twice or wrongly classified.
func TestAttachUnderFullLoad(t *testing.T) {
	e2etest.RequireRoot(t)
	bin := e2etest.BuildAsobserve(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	base, baseTime, _ := runFor(t, bin, cluster, nil, append([]string{"--count", "20000", "--concurrency", "4"}, cheapMix...)...)
	baseRate := float64(base.TotalOps) / baseTime.Seconds()

	// Until stopped once the attach is seen working: the attach takes seconds on a loaded
	// machine and under the race detector (a count, and later a 10 s run, each once ran
	// out first, and the attach found no process).
	w := e2etest.StartWorkload(t, bin, cluster.Hosts(), append([]string{"--duration", "10m", "--concurrency", "4"}, cheapMix...)...)
	rec := metrics.New(metrics.Options{})
	agent := runAgent(t, rec, attach.Options{})
	goAt := time.Now()
	w.Go(t)
	time.Sleep(time.Second)
	attachStart := time.Since(goAt)
	if _, err := agent.Attach(w.PID, &metrics.Identity{Service: "workload"}); err != nil {
		t.Fatal(err)
	}
	attachEnd := time.Since(goAt)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if n, _ := sums(e2etest.OpSeries(t, rec.Registry, "workload")); n >= 2000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("fewer than 2000 operations observed in the minute after the attach")
		}
	}
	w.Stop(t)
	truth := w.Wait(t, 3*time.Minute)
	Drain(t, agent)

	want := e2etest.TruthSeries(truth)
	got := e2etest.OpSeries(t, rec.Registry, "workload")
	for k, g := range got {
		if g.Count > want[k].Count {
			t.Errorf("%+v: observed %d, the workload did only %d", k, g.Count, want[k].Count)
		}
	}
	observed, _ := sums(got)
	missed := uint64(truth.TotalOps) - observed
	// Before the attach finished the target ran at most at its unobserved rate (plus
	// slack for this shared machine); it did run for a second, so some were missed.
	maxMissed := uint64(1.5*baseRate*attachEnd.Seconds()) + 4
	t.Logf("unobserved %.0f ops/s; attach took %s after %s of load; observed %d of %d (missed %d, bound %d)",
		baseRate, (attachEnd - attachStart).Round(time.Millisecond), attachStart.Round(time.Millisecond), observed, truth.TotalOps, missed, maxMissed)
	if observed > uint64(truth.TotalOps) || missed > maxMissed {
		t.Errorf("observed %d of %d operations: missed %d, more than the %d the target can have done before the attach finished",
			observed, truth.TotalOps, missed, maxMissed)
	}
	if missed == 0 {
		t.Errorf("nothing missed although the target ran %s before the attach: it was not under load", attachStart)
	}
	if observed == 0 {
		t.Fatal("nothing observed after the attach")
	}
}

// A target that exits in the middle of its attach: the attach says so and leaves nothing
// behind (no target, no kernel uprobe), and the same executable attaches again afterwards.
func TestTargetExitDuringAttach(t *testing.T) {
	e2etest.RequireRoot(t)
	bin := e2etest.BuildAsobserve(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	rec := metrics.New(metrics.Options{})
	agent := runAgent(t, rec, attach.Options{})

	doomed := e2etest.StartWorkload(t, bin, cluster.Hosts(), cheapMix...)
	// Between inspecting the executable and attaching its first link. The hook runs with
	// the agent's lock held: it returns what goes wrong rather than end the test there.
	restore := attach.FailAttach(func(string, bool) error {
		if err := doomed.Cmd.Process.Kill(); err != nil {
			return err
		}
		exe := "/proc/" + strconv.Itoa(doomed.PID) + "/exe"
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if _, err := os.Stat(exe); errors.Is(err, os.ErrNotExist) {
				return nil
			}
		}
		return errors.New("the killed target still has an executable after 30 s")
	})
	_, err := agent.Attach(doomed.PID, &metrics.Identity{Service: "doomed"})
	restore()
	doomed.Killed(t, 30*time.Second)
	if !errors.Is(err, inspect.ErrNoProcess) || !strings.Contains(err.Error(), "exited while it was being attached") {
		t.Fatalf("attach of a process that exits mid-attach: err=%v, want it to say the process exited", err)
	}
	if n := len(agent.Targets()); n != 0 {
		t.Errorf("%d targets listed after the failed attach, want 0", n)
	}
	if ups := e2etest.UprobesOn(t, bin, 0); len(ups) != 0 {
		t.Errorf("%d uprobes left on %s after the failed attach: %v", len(ups), bin, ups)
	}
	if v := testutil.ToFloat64(agent.SelfMetrics().ProbeAttachErrors); v != 1 {
		t.Errorf("asobserve probe attach errors = %v, want 1", v)
	}

	w := e2etest.StartWorkload(t, bin, cluster.Hosts(), append([]string{"--count", "300"}, cheapMix...)...)
	if _, err := agent.Attach(w.PID, &metrics.Identity{Service: "workload"}); err != nil {
		t.Fatal(err)
	}
	w.Go(t)
	truth := w.Wait(t, 2*time.Minute)
	Drain(t, agent)
	if n, _ := sums(e2etest.OpSeries(t, rec.Registry, "workload")); n != uint64(truth.TotalOps) {
		t.Errorf("the attach after the failed one observed %d of %d operations", n, truth.TotalOps)
	}
}

// A target that exits while attached: its counts are complete, Detach still works after
// the exit, the agent lists no target and the kernel holds no uprobe on the executable.
func TestTargetExecAndExit(t *testing.T) {
	e2etest.RequireRoot(t)
	bin := e2etest.BuildAsobserve(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	rec := metrics.New(metrics.Options{})
	agent := runAgent(t, rec, attach.Options{})

	w := e2etest.StartWorkload(t, bin, cluster.Hosts(), append([]string{"--count", "2000", "--concurrency", "2"}, cheapMix...)...)
	if _, err := agent.Attach(w.PID, &metrics.Identity{Service: "workload"}); err != nil {
		t.Fatal(err)
	}
	if len(e2etest.UprobesOn(t, bin, w.PID)) == 0 {
		t.Fatal("no uprobe seen while attached: the check after exit would prove nothing")
	}
	w.Go(t)
	truth := w.Wait(t, 2*time.Minute)
	Drain(t, agent)
	e2etest.CompareCounts(t, e2etest.OpSeries(t, rec.Registry, "workload"), e2etest.TruthSeries(truth))

	if n := len(agent.Targets()); n != 1 {
		t.Fatalf("%d targets before Detach, want the exited one still listed", n)
	}
	if err := agent.Detach(w.PID); err != nil {
		t.Fatalf("Detach after the target exited: %v", err)
	}
	if tg := agent.Targets(); len(tg) != 0 {
		t.Errorf("targets after Detach: %+v", tg)
	}
	if v := testutil.ToFloat64(agent.SelfMetrics().AttachedProcesses); v != 0 {
		t.Errorf("asobserve_attached_processes = %v after Detach", v)
	}
	if left := e2etest.UprobesOn(t, bin, w.PID); len(left) != 0 {
		t.Errorf("uprobes left after the exited target was detached:\n%s", strings.Join(left, "\n"))
	}
	if err := agent.Detach(w.PID); err == nil {
		t.Error("second Detach of the same pid succeeded")
	}
	if _, err := agent.Attach(w.PID, &metrics.Identity{Service: "workload"}); !errors.Is(err, inspect.ErrNoProcess) {
		t.Errorf("Attach to the exited pid: %v, want ErrNoProcess", err)
	}
}
