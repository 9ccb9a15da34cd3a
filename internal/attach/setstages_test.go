//go:build linux

package attach_test

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/semconv"
	"github.com/asobserve/asobserve/internal/testserver"
)

// Turning stages on fails on the second of three executables: afterwards no executable
// keeps a stage link and stages read as off; the next `stages on` attaches each stage
// probe once (the kernel holds as many uprobes as for one clean switch) and every batch
// call counts one key_parse sample, not two.
func TestSetStagesRollsBackOnPartialFailure(t *testing.T) {
	e2etest.RequireRoot(t)
	bin := e2etest.BuildAsobserve(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	dir := t.TempDir()
	rec := metrics.New(metrics.Options{})
	agent := runAgent(t, rec, attach.Options{})
	id := &metrics.Identity{Service: "workload"}
	var paths []string
	var workloads []*e2etest.Workload
	for _, name := range []string{"stages-a", "stages-b", "stages-c"} {
		data, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o755); err != nil {
			t.Fatal(err)
		}
		w := e2etest.StartWorkload(t, p, cluster.Hosts(), "--mix", "get=1,batch_read=1", "--count", "200", "--keys", "20")
		if _, err := agent.Attach(w.PID, id); err != nil {
			t.Fatal(err)
		}
		paths, workloads = append(paths, p), append(workloads, w)
	}
	opOnly := uprobeCounts(t, paths)

	injected := errors.New("injected stage attach failure")
	var mu sync.Mutex
	stageAttaches := 0
	restore := attach.FailAttach(func(_ string, stages bool) error {
		mu.Lock()
		defer mu.Unlock()
		if !stages {
			return nil
		}
		stageAttaches++
		if stageAttaches == 2 {
			return injected
		}
		return nil
	})
	err := agent.SetStages(true)
	restore()
	if !errors.Is(err, injected) {
		t.Fatalf("SetStages(true) with the second executable failing: err=%v, want the injected failure", err)
	}
	if stageAttaches != 2 {
		t.Fatalf("stage attach tried %d times, want 2 (the failure stops the loop)", stageAttaches)
	}
	if agent.StagesEnabled() {
		t.Errorf("StagesEnabled() = true after a failed SetStages(true)")
	}
	if n := agent.StageProbeCount(); n != 0 {
		t.Errorf("%d stage links left after the failed switch, want 0", n)
	}
	if got := uprobeCounts(t, paths); !equalCounts(got, opOnly) {
		t.Errorf("kernel uprobes per executable after the failed switch = %v, want the op probes only %v", got, opOnly)
	}

	if err := agent.SetStages(true); err != nil {
		t.Fatal(err)
	}
	onOnce := uprobeCounts(t, paths)
	for i := range paths {
		if onOnce[i] <= opOnly[i] {
			t.Fatalf("%s: %d uprobes with stages on, %d without: the check proves nothing", paths[i], onOnce[i], opOnly[i])
		}
		if onOnce[i] != onOnce[0] {
			t.Errorf("%s has %d uprobes with stages on, %s has %d: one of them is attached twice", paths[i], onOnce[i], paths[0], onOnce[0])
		}
	}
	var batches uint64
	for _, w := range workloads {
		w.Go(t)
	}
	for _, w := range workloads {
		batches += e2etest.TruthSeries(w.Wait(t, 2*time.Minute))[e2etest.K("batch_read", "test", "users", "")].Count
	}
	Drain(t, agent)
	if batches == 0 {
		t.Fatal("the workloads made no batch_read: key_parse cannot be checked")
	}
	checkKeyParseOncePerBatch(t, e2etest.StageSeries(t, rec.Registry), batches)
	if n := e2etest.StageSeries(t, rec.Registry)[e2etest.StageKey{Stage: semconv.StageIO, Op: semconv.OpGet}].Count; n == 0 {
		t.Errorf("no io samples for get with stages on")
	}

	if err := agent.SetStages(false); err != nil {
		t.Fatal(err)
	}
	if n := agent.StageProbeCount(); n != 0 {
		t.Errorf("%d stage links after stages off", n)
	}
}

func uprobeCounts(t *testing.T, paths []string) []int {
	t.Helper()
	out := make([]int, len(paths))
	for i, p := range paths {
		out[i] = len(e2etest.UprobesOn(t, p, 0))
	}
	return out
}

func equalCounts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
