//go:build linux

package attach_test

import (
	"sync"
	"testing"
	"time"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/asobserve/asobserve/internal/metrics"
	events "github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/testserver"
)

// lifecycle counts a target's operations before and after its TargetGone.
type lifecycle struct {
	mu                sync.Mutex
	ops, opsAfterGone int
	gone              []*events.Target
}

func (l *lifecycle) Op(*events.Target, events.Op) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.gone) > 0 {
		l.opsAfterGone++
		return
	}
	l.ops++
}

func (l *lifecycle) Stage(*events.Target, events.Stage) {}

func (l *lifecycle) TargetGone(t *events.Target) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gone = append(l.gone, t)
}

// Detach right after the target's last operation: the observers hear every operation,
// including those still in the ring buffer, then one TargetGone, then nothing of it.
func TestDetachDeliversTargetGoneAfterItsOperations(t *testing.T) {
	e2etest.RequireRoot(t)
	bin := e2etest.BuildAsobserve(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	l := &lifecycle{}
	agent := runAgent(t, metrics.New(metrics.Options{}), attach.Options{Observers: []events.Observer{l}})

	w := e2etest.StartWorkload(t, bin, cluster.Hosts(), append([]string{"--count", "1000", "--concurrency", "2"}, cheapMix...)...)
	tg, err := agent.Attach(w.PID, &metrics.Identity{Service: "workload"})
	if err != nil {
		t.Fatal(err)
	}
	w.Go(t)
	truth := w.Wait(t, 2*time.Minute)
	if err := agent.Detach(w.PID); err != nil {
		t.Fatal(err)
	}
	if _, lost, _, err := agent.Counters(); err != nil || lost != 0 {
		t.Fatalf("lost %d records (%v): the count below would be short for another reason", lost, err)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ops != int(truth.TotalOps) {
		t.Errorf("observers heard %d operations before TargetGone, the workload ran %d", l.ops, truth.TotalOps)
	}
	if len(l.gone) != 1 || l.gone[0] != &tg.Target {
		t.Errorf("TargetGone for %v, want once for the detached target %p", l.gone, &tg.Target)
	}
	if l.opsAfterGone != 0 {
		t.Errorf("%d operations after TargetGone", l.opsAfterGone)
	}
}
