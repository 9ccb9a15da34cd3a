//go:build linux

package attach_test

import (
	"math"
	"testing"
	"time"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/testserver"
	"github.com/asobserve/asobserve/internal/workload"
)

// observe attaches an in-process agent to a ready workload, starts it, waits for it and
// for the ring buffer to drain, and returns what the agent recorded and the truth.
func observe(t *testing.T, bin string, cluster *testserver.Cluster, faults []testserver.Fault, stages bool, args ...string) (*metrics.Recorder, *attach.Agent, map[e2etest.Key]e2etest.Series, map[e2etest.Key]e2etest.Series) {
	t.Helper()
	return observeWith(t, bin, cluster, faults, attach.Options{Stages: stages}, nil, args...)
}

// observeWith is observe with agent options and a hook run once the workload started.
func observeWith(t *testing.T, bin string, cluster *testserver.Cluster, faults []testserver.Fault, opts attach.Options, during func(*attach.Agent, *metrics.Recorder), args ...string) (*metrics.Recorder, *attach.Agent, map[e2etest.Key]e2etest.Series, map[e2etest.Key]e2etest.Series) {
	t.Helper()
	w := e2etest.StartWorkload(t, bin, cluster.Hosts(), args...)
	rec := metrics.New(metrics.Options{})
	agent := runAgent(t, rec, opts)
	id := &metrics.Identity{Service: "workload"}
	if _, err := agent.Attach(w.PID, id); err != nil {
		t.Fatal(err)
	}
	cluster.SetFaults(faults)
	w.Go(t)
	if during != nil {
		during(agent, rec)
	}
	truth := w.Wait(t, workloadLimit)
	cluster.SetFaults(nil)
	Drain(t, agent)
	return rec, agent, e2etest.OpSeries(t, rec.Registry, "workload"), e2etest.TruthSeries(truth)
}

// workloadLimit bounds how long observeWith waits for its workload; the long safety run
// raises it with its call count.
var workloadLimit = 5 * time.Minute

// runAgent starts an agent reading its ring buffer until the test ends.
func runAgent(t *testing.T, rec *metrics.Recorder, opts attach.Options) *attach.Agent {
	t.Helper()
	agent, err := attach.New(rec, opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- agent.Run() }()
	t.Cleanup(func() {
		agent.Close()
		<-done
	})
	return agent
}

// Drain waits until every record the kernel produced has been read.
func Drain(t *testing.T, a *attach.Agent) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		produced, lost, received, err := a.Counters()
		if err != nil {
			t.Fatal(err)
		}
		if produced == lost+received {
			a.PollCounters()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("ring buffer did not drain in 10s")
}

func sums(m map[e2etest.Key]e2etest.Series) (n uint64, s float64) {
	for _, v := range m {
		n += v.Count
		s += v.Sum
	}
	return
}

func checkExact(t *testing.T, got, want map[e2etest.Key]e2etest.Series) {
	t.Helper()
	e2etest.CompareCounts(t, got, want)
	gn, gs := sums(got)
	wn, ws := sums(want)
	t.Logf("%d operations in %d series; observed latency sum %.3fs, workload's %.3fs", wn, len(want), gs, ws)
	if gn != wn {
		t.Errorf("total %d, want %d", gn, wn)
	}
	if math.Abs(gs-ws) > 0.10*ws {
		t.Errorf("latency sum %.4fs is not within 10%% of the workload's %.4fs", gs, ws)
		for k, w := range want {
			t.Logf("%-40v observed %.4fs workload %.4fs", k, got[k].Sum, w.Sum)
		}
	}
}

// rtt gives every request a realistic network round trip, so that the fixed cost of the
// probes (tens of microseconds) is not mistaken for a timing error.
var rtt = testserver.Fault{Latency: time.Millisecond}

var errorFaults = []testserver.Fault{
	{Set: "timeouts", ResultCode: 9},
	{Set: "dropped", CloseConn: true},
	rtt,
}

// Every operation kind through every method counted under it, every outcome class, on a
// 3-node cluster so that batches have one-key node shares (the client's executeSingle path).
// A third of the operations lose their connection: at this rate the client's default breaker
// (100 such errors per node per tend) trips or not depending on the machine's speed, and
// while it is open the planned outcomes (the failing UDF among them) become MAX_ERROR_RATE,
// so it is off.
func TestAttachCountsEqualGroundTruth(t *testing.T) {
	e2etest.RequireRoot(t)
	bin := e2etest.BuildAsobserve(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 3})
	rec, _, got, want := observe(t, bin, cluster, errorFaults, false,
		"--sets", "users,timeouts,dropped", "--errors", "--no-circuit-breaker", "--every-method", "--count", "3000", "--concurrency", "4", "--keys", "200")
	checkExact(t, got, want)
	// The kernel's run statistics cost every BPF program on the host: they are opt-in.
	if runs := programRuns(t, rec); runs != nil {
		t.Errorf("without ProgramStats the agent exports asobserve_bpf_program_runs_total %v", runs)
	}
	ops := map[string]bool{}
	for k := range want {
		ops[k.Op] = true
	}
	requireClasses(t, want, "", "Timeout", "Connection", "UdfBadResponse", "InvalidArgument")
	if len(ops) != len(workload.Operations) {
		t.Errorf("the workload ran %d operation kinds, want all %d: %v", len(ops), len(workload.Operations), ops)
	}
}

func TestAttachStrippedBinary(t *testing.T) {
	e2etest.RequireRoot(t)
	bin := e2etest.BuildAsobserve(t, "-ldflags=-s -w")
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	rec, agent, got, want := observeWith(t, bin, cluster, []testserver.Fault{rtt}, attach.Options{ProgramStats: true}, nil,
		"--errors", "--every-method", "--count", "1500", "--concurrency", "4", "--keys", "100")
	checkExact(t, got, want)
	// The kernel's own accounting of probe hits: one entry and one return per operation,
	// and the metric says what ProgramStats says.
	stats, err := agent.ProgramStats()
	if err != nil {
		t.Fatal(err)
	}
	ops, _ := sums(want)
	if e, r := stats["probe_entry"].RunCount, stats["probe_return"].RunCount; e < ops || r < ops {
		t.Errorf("BPF run counts entry=%d return=%d, want at least one each per operation (%d)", e, r, ops)
	} else {
		t.Logf("probe hits per operation: %.2f entry, %.2f return", float64(e)/float64(ops), float64(r)/float64(ops))
	}
	runs := programRuns(t, rec)
	// Read after ProgramStats, once the workload has exited: at least what it said.
	if e := runs["probe_entry"]; e < float64(stats["probe_entry"].RunCount) {
		t.Errorf("asobserve_bpf_program_runs_total{program=\"probe_entry\"} = %v, want at least ProgramStats' %d", e, stats["probe_entry"].RunCount)
	}
	// Without connection faults the client's error-rate breaker stays shut, so the
	// workload's data errors land exactly where it puts them.
	requireClasses(t, want, "", "KeyNotFoundError", "KeyExistsError", "GenerationError")
}

// programRuns is asobserve_bpf_program_runs_total by program, nil if it is not exported.
func programRuns(t *testing.T, rec *metrics.Recorder) map[string]float64 {
	t.Helper()
	families, err := rec.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "asobserve_bpf_program_runs_total" {
			continue
		}
		runs := map[string]float64{}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "program" {
					runs[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
		return runs
	}
	return nil
}

func requireClasses(t *testing.T, want map[e2etest.Key]e2etest.Series, classes ...string) {
	t.Helper()
	seen := map[string]bool{}
	for k := range want {
		seen[k.ErrorType] = true
	}
	for _, c := range classes {
		if !seen[c] {
			t.Errorf("the workload produced no error_type %q: the test would not prove it", c)
		}
	}
}

// A one-key BatchGet runs client.Get on another goroutine inside the client: it must
// count as one batch_read and nothing else.
func TestOneKeyBatchIsOnlyBatchRead(t *testing.T) {
	e2etest.RequireRoot(t)
	bin := e2etest.BuildAsobserve(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 3})
	_, _, got, want := observe(t, bin, cluster, []testserver.Fault{rtt}, false, "--mix", "batch_read=1", "--count", "300", "--concurrency", "2", "--keys", "50")
	checkExact(t, got, want)
	if len(got) != 1 {
		t.Fatalf("series: %+v, want only batch_read", got)
	}
}
