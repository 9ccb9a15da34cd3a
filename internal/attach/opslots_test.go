//go:build linux

package attach_test

import (
	"testing"
	"time"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/testserver"
)

// With one in-flight slot for every goroutine, all but the slot's holder keep their ops
// in the spill map: the counts stay exact through claims, spills and their lookups.
func TestOpsExactWhenGoroutinesShareOneSlot(t *testing.T) {
	e2etest.RequireRoot(t)
	defer attach.OneOpSlot()()
	bin := e2etest.BuildAsobserve(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	spilled := false
	seeSpill := func(agent *attach.Agent, _ *metrics.Recorder) {
		for deadline := time.Now().Add(time.Minute); !spilled && time.Now().Before(deadline); {
			entries, err := agent.MapEntries()
			if err != nil {
				t.Fatal(err)
			}
			spilled = entries["inflight"] > 0
		}
	}
	_, agent, got, want := observeWith(t, bin, cluster, nil, attach.Options{}, seeSpill,
		"--every-method", "--count", "1500", "--concurrency", "8", "--keys", "100")
	checkExact(t, got, want)
	if !spilled {
		t.Error("no op was ever spilled to the inflight map with 8 goroutines on one slot")
	}
	if used, err := attach.OpSlotsUsed(agent); err != nil {
		t.Fatal(err)
	} else if used != 1 {
		t.Errorf("%d in-flight slots held an op, want the 1 slot all goroutines share", used)
	}
}
