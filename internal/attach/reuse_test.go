//go:build linux

package attach_test

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/testserver"
)

// A process that takes the pid of an exited target while the agent is still detaching it:
// it can be attached at once, and the old target's Detach leaves the new attach's filter
// entry, probes and per-pid state alone.
func TestPIDReusedDuringDetachKeepsEachIdentityExact(t *testing.T) {
	e2etest.RequireRoot(t)
	bin, err := e2etest.BuildTarget(t, e2etest.TargetBuild{Client: "v7"})
	if err != nil {
		t.Fatal(err)
	}
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	rec := metrics.New(metrics.Options{})
	agent := runAgent(t, rec, attach.Options{})
	start := func(service string, onPID int) *e2etest.Workload {
		if onPID > 1 {
			// The next pid the kernel hands out is onPID, unless another fork comes first.
			if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(onPID-1)), 0); err != nil {
				t.Fatalf("forcing pid reuse: %v", err)
			}
		}
		cmd := exec.Command(bin, "-wait-signal", "-hosts", strings.Join(cluster.Hosts(), ","), "-count", "2")
		cmd.Env = append(os.Environ(), "OTEL_SERVICE_NAME="+service)
		return e2etest.StartCommand(t, cmd)
	}

	old := start("old", 0)
	if _, err := agent.Attach(old.PID, &metrics.Identity{Service: "old"}); err != nil {
		t.Fatal(err)
	}
	old.Go(t)
	oldTruth := old.Wait(t, 2*time.Minute)

	// The old process is gone; its Detach has read its records. Before Detach releases
	// what it keeps per pid, a new process runs its preload on the pid and is attached.
	var reuser *e2etest.Workload
	var reattachErr error
	restore := attach.OnDetachDrained(func(pid int) {
		reuser = start("new", pid)
		if reuser.PID != pid {
			return
		}
		_, reattachErr = agent.Attach(pid, &metrics.Identity{Service: "new"})
	})
	err = agent.Detach(old.PID)
	restore()
	if err != nil {
		t.Fatal(err)
	}
	if reuser.PID != old.PID {
		t.Fatalf("the new process got pid %d, not the freed %d: another fork took it", reuser.PID, old.PID)
	}
	if reattachErr != nil {
		t.Fatalf("attaching the pid's new process during the old one's detach: %v", reattachErr)
	}
	reuser.Go(t)
	newTruth := reuser.Wait(t, 2*time.Minute)
	if err := agent.Detach(reuser.PID); err != nil {
		t.Fatal(err)
	}

	// Both were attached after their preload (the ready line): each counts its truth.
	e2etest.CompareCounts(t, e2etest.OpSeries(t, rec.Registry, "old"), e2etest.TruthSeries(oldTruth))
	e2etest.CompareCounts(t, e2etest.OpSeries(t, rec.Registry, "new"), e2etest.TruthSeries(newTruth))
	if n := testutil.ToFloat64(agent.SelfMetrics().EventsInvalid); n != 0 {
		t.Errorf("%v records matched no target", n)
	}
	entries, err := agent.MapEntries()
	if err != nil {
		t.Fatal(err)
	}
	for name, n := range entries {
		if n != 0 {
			t.Errorf("BPF map %s keeps %d entries after both processes were detached", name, n)
		}
	}
}
