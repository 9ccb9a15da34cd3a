//go:build linux

package attach_test

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/testserver"
)

// With one slot in the pid filter's array, one process is found there and the others in
// the hash, at the same time; and a process attached while the slot cools after its
// holder left is found in the hash too. Each counts exactly its own operations.
func TestProcessesSharingAPIDSlotAreEachExact(t *testing.T) {
	e2etest.RequireRoot(t)
	bin, err := e2etest.BuildTarget(t, e2etest.TargetBuild{Client: "v7"})
	if err != nil {
		t.Fatal(err)
	}
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	rec := metrics.New(metrics.Options{})
	agent := runAgent(t, rec, attach.Options{PIDSlots: 1})
	run := func(services ...string) {
		t.Helper()
		procs := make([]*e2etest.Workload, len(services))
		for i, service := range services {
			procs[i] = e2etest.StartCommand(t, exec.Command(bin, "-wait-signal", "-hosts", strings.Join(cluster.Hosts(), ","), "-count", "300"))
			if _, err := agent.Attach(procs[i].PID, &metrics.Identity{Service: service}); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range procs {
			p.Go(t)
		}
		for i, p := range procs {
			truth := p.Wait(t, 2*time.Minute)
			if err := agent.Detach(p.PID); err != nil {
				t.Fatal(err)
			}
			e2etest.CompareCounts(t, e2etest.OpSeries(t, rec.Registry, services[i]), e2etest.TruthSeries(truth))
		}
	}
	run("a", "b", "c")
	run("d") // the slot was freed less than a second ago
	if n := testutil.ToFloat64(agent.SelfMetrics().EventsInvalid); n != 0 {
		t.Errorf("%v records matched no target", n)
	}
	entries, err := agent.MapEntries()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"pids", "pid_slots"} {
		if n, ok := entries[name]; !ok || n != 0 {
			t.Errorf("BPF map %s keeps %d entries after every process was detached (counted: %v)", name, n, ok)
		}
	}
}
