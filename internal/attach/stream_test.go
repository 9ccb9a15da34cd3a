//go:build linux

package attach_test

import (
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/asobserve/asobserve/internal/inspect"
	"github.com/asobserve/asobserve/internal/metrics"
	obs "github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/semconv"
	"github.com/asobserve/asobserve/internal/testserver"
)

// streamEnds keeps the end time of every scan and query the agent delivers.
type streamEnds struct {
	mu   sync.Mutex
	ends []int64
}

func (s *streamEnds) Op(_ *obs.Target, op obs.Op) {
	if op.Name != semconv.OpScan && op.Name != semconv.OpQuery {
		return
	}
	s.mu.Lock()
	s.ends = append(s.ends, op.End)
	s.mu.Unlock()
}

func (*streamEnds) Stage(*obs.Target, obs.Stage) {}
func (*streamEnds) TargetGone(*obs.Target)       {}

// A scan or query ends when its stream is closed, which is before the application can
// see it: a program that exits once it read the last record may never run the return of
// the client's worker goroutine, and its last scan or query would be lost (the soak lost
// about one in a thousand processes so). The target reads each stream on a goroutine that
// never parks, so it sees the close within a microsecond, long before the worker's return
// probe could run; each op's end must come before the time the target saw its close.
// One node: old clients' per-node queries then have one worker, whose signalEnd closes
// the stream.
func TestStreamEndsBeforeTheAppSeesIt(t *testing.T) {
	e2etest.RequireRoot(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	builds := map[string]e2etest.TargetBuild{
		"v6": {Client: "v6"}, "v7": {Client: "v7"}, "v8": {Client: "v8"},
		"v6-per-node-queries": {Client: "v6", Version: inspect.OldestClient},
	}
	for _, name := range []string{"v6", "v7", "v8", "v6-per-node-queries"} {
		t.Run(name, func(t *testing.T) {
			bin, err := e2etest.BuildTarget(t, builds[name])
			if err != nil {
				t.Fatal(err)
			}
			ends := &streamEnds{}
			agent := runAgent(t, metrics.New(metrics.Options{}), attach.Options{Observers: []obs.Observer{ends}})
			const rounds = 40
			w := e2etest.StartTarget(t, bin, cluster.Hosts(), "-count", "40", "-spin-drain")
			if _, err := agent.Attach(w.PID, &metrics.Identity{Service: "streams"}); err != nil {
				t.Fatal(err)
			}
			w.Go(t)
			truth := w.Wait(t, workloadLimit)
			Drain(t, agent)
			seen := truth.StreamsSeen
			ends.mu.Lock()
			got := slices.Clone(ends.ends)
			ends.mu.Unlock()
			// Each stream was read to its end before the next began: in time order, the
			// ops and the closes pair up.
			slices.Sort(got)
			if len(seen) != 2*rounds || len(got) != len(seen) {
				t.Fatalf("%d scans and queries ended, the target saw %d closed, want %d", len(got), len(seen), 2*rounds)
			}
			late := 0
			for i := range seen {
				if got[i] >= seen[i] {
					late++
					t.Errorf("stream %d ended at %d ns, %d ns after the target saw it closed", i, got[i], got[i]-seen[i])
				}
			}
			if late == 0 {
				t.Logf("%d streams; each ended before the target saw it closed", len(seen))
			}
		})
	}
}

// QueryAggregate is not counted, but its streams end through the same signalEnd as the
// counted queries', and on old clients through the same per-node workers: it must leave no
// scan/query state behind (an aggregation a call would fill the map, and then counted
// queries would find no room). The agent does not detach the exited target here, so what
// the probes left is still in the maps.
func TestAggregationsLeaveNoStreamState(t *testing.T) {
	e2etest.RequireRoot(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 2})
	for _, b := range []e2etest.TargetBuild{{Client: "v6", Version: "v6.12.0"}, {Client: "v7"}} {
		t.Run(b.Client+b.Version, func(t *testing.T) {
			bin, err := e2etest.BuildTarget(t, b)
			if err != nil {
				t.Fatal(err)
			}
			rec := metrics.New(metrics.Options{})
			agent := runAgent(t, rec, attach.Options{})
			const aggregations = 50
			w := e2etest.StartTarget(t, bin, cluster.Hosts(), "-count", "2", "-aggregations", strconv.Itoa(aggregations))
			if _, err := agent.Attach(w.PID, &metrics.Identity{Service: "aggregations"}); err != nil {
				t.Fatal(err)
			}
			w.Go(t)
			truth := w.Wait(t, workloadLimit)
			Drain(t, agent)
			e2etest.CompareCounts(t, e2etest.OpSeries(t, rec.Registry, "aggregations"), e2etest.TruthSeries(truth))
			entries, err := agent.MapEntries()
			if err != nil {
				t.Fatal(err)
			}
			if n := entries["async_ops"]; n != 0 {
				t.Errorf("%d scan/query states left after %d aggregations and the counted ops, want 0", n, aggregations)
			}
		})
	}
}

// A scan the caller closes early makes the client drop the errors its workers stop with
// (ScanTerminated): on 32 goroutines, whose g structures the runtime reuses, none of them
// may reach another scan, beside scans that fail for real (and send a second error the
// op already has). The entry of sendError that holds no error must forget what the
// goroutine's last call held: before it did, about 1 scan in 400 here had a wrong error.
func TestClosedStreamsLeaveNoErrorBehind(t *testing.T) {
	e2etest.RequireRoot(t)
	bin, err := e2etest.BuildTarget(t, e2etest.TargetBuild{Client: "v7"})
	if err != nil {
		t.Fatal(err)
	}
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	w := e2etest.StartTarget(t, bin, cluster.Hosts(), "-count", "0", "-closing-streams", "200")
	rec := metrics.New(metrics.Options{})
	agent := runAgent(t, rec, attach.Options{})
	if _, err := agent.Attach(w.PID, &metrics.Identity{Service: "target"}); err != nil {
		t.Fatal(err)
	}
	cluster.SetFaults([]testserver.Fault{{Set: "failing", Command: testserver.CmdScan, ResultCode: 4}})
	w.Go(t)
	truth := w.Wait(t, 3*time.Minute)
	cluster.SetFaults(nil)
	Drain(t, agent)
	// Counts only: on 2 cores the 32 callers see their scans end well after they did.
	e2etest.CompareCounts(t, e2etest.OpSeries(t, rec.Registry, "target"), e2etest.TruthSeries(truth))
	if truth.TotalOps != 19200 {
		t.Fatalf("the target made %d scans, want 19200", truth.TotalOps)
	}
}
