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
	"github.com/asobserve/asobserve/internal/rolling"
	"github.com/asobserve/asobserve/internal/semconv"
	"github.com/asobserve/asobserve/internal/testserver"
)

type opTiming struct {
	op         string
	start, end uint64
	stages     map[string]uint64 // total ns per stage
	spans      [][2]uint64
}

// pairs collects every op event with the stage events that belong to it.
type pairs struct {
	mu  sync.Mutex
	ops map[uint64]*opTiming
}

func (p *pairs) get(id uint64) *opTiming {
	o := p.ops[id]
	if o == nil {
		o = &opTiming{stages: map[string]uint64{}}
		p.ops[id] = o
	}
	return o
}

func (p *pairs) onOp(_ *events.Target, ev events.Op) {
	p.mu.Lock()
	o := p.get(ev.ID)
	o.op, o.start, o.end = ev.Name, uint64(ev.Start), uint64(ev.End)
	p.mu.Unlock()
}

func (p *pairs) onStage(_ *events.Target, ev events.Stage) {
	p.mu.Lock()
	o := p.get(ev.OpID)
	o.stages[ev.Name] += uint64(ev.End - ev.Start)
	o.spans = append(o.spans, [2]uint64{uint64(ev.Start), uint64(ev.End)})
	p.mu.Unlock()
}

// Stage profiling on a 3-node cluster with ConcurrentNodes=1 and 5 ms of server latency.
func TestStagesBreakDownOperations(t *testing.T) {
	e2etest.RequireRoot(t)
	bin := e2etest.BuildAsobserve(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 3})
	p := &pairs{ops: map[uint64]*opTiming{}}
	roll := rolling.New(rolling.Options{})
	var rec *metrics.Recorder
	rec, agent, got, want := observeWith(t, bin, cluster, []testserver.Fault{{Namespace: "test", Latency: 5 * time.Millisecond}},
		attach.Options{Stages: true, Observers: []events.Observer{hooks{op: p.onOp, stage: p.onStage}}}, nil,
		"--mix", "get=2,put=1,batch_read=2,batch_operate=1,batch_remove=1", "--count", "300", "--concurrency", "2",
		"--keys", "60", "--concurrent-nodes", "1")
	_ = agent
	e2etest.CompareCounts(t, got, want)
	_ = roll

	stages := e2etest.StageSeries(t, rec.Registry)
	for _, k := range []e2etest.StageKey{
		{Stage: semconv.StageKeyParse, Op: semconv.OpBatchRead},
		{Stage: semconv.StageLimiterWait, Op: semconv.OpBatchRead},
		{Stage: semconv.StageScheduleDelay, Op: semconv.OpBatchRead},
		{Stage: semconv.StageConnAcquire, Op: semconv.OpGet},
		{Stage: semconv.StageIO, Op: semconv.OpGet},
		{Stage: semconv.StageParse, Op: semconv.OpGet},
		{Stage: semconv.StageAttempt, Op: semconv.OpGet},
		{Stage: semconv.StageIO, Op: semconv.OpBatchRead},
		{Stage: semconv.StageIO, Op: semconv.OpBatchOperate},
		{Stage: semconv.StageIO, Op: semconv.OpBatchRemove},
	} {
		if stages[k].Count == 0 {
			t.Errorf("no %s samples for %s", k.Stage, k.Op)
		}
	}
	batches := want[e2etest.K("batch_read", "test", "users", "")].Count + want[e2etest.K("batch_operate", "test", "users", "")].Count +
		want[e2etest.K("batch_remove", "test", "users", "")].Count
	checkKeyParseOncePerBatch(t, stages, batches)
	if s := stages[e2etest.StageKey{Stage: semconv.StageLimiterWait, Op: semconv.OpBatchRead}]; s.Sum == 0 {
		t.Errorf("limiter_wait is zero with ConcurrentNodes=1 on 3 nodes: %+v", s)
	}

	// io p50 sits on the injected 5 ms; parse stays in microseconds.
	ioByOp := map[string][]uint64{}
	var parse []uint64
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, o := range p.ops {
		if o.op == "" {
			continue // stage events whose op event had not arrived: none expected after drain
		}
		for stage, ns := range o.stages {
			if stage == semconv.StageScheduleDelay || stage == semconv.StageLimiterWait {
				continue // these overlap the per-node work by design
			}
			if ns > o.end-o.start {
				t.Errorf("op %d (%s): %s total %dns exceeds the operation's %dns", id, o.op, stage, ns, o.end-o.start)
			}
		}
		for _, sp := range o.spans {
			if sp[0] < o.start || sp[1] > o.end {
				t.Errorf("op %d (%s): stage [%d,%d] outside the operation [%d,%d]", id, o.op, sp[0], sp[1], o.start, o.end)
				break
			}
		}
		if o.op == semconv.OpGet {
			ioByOp[o.op] = append(ioByOp[o.op], o.stages[semconv.StageIO])
			parse = append(parse, o.stages[semconv.StageParse])
		}
	}
	if med := median(ioByOp[semconv.OpGet]); med < 5e6 || med > 7e6 {
		t.Errorf("get io p50 = %.3fms, want within [5ms, 7ms]", float64(med)/1e6)
	}
	if med := median(parse); med >= 1e6 {
		t.Errorf("parse p50 = %.3fms, want microseconds", float64(med)/1e6)
	}
}

// checkKeyParseOncePerBatch: keys are split into node batches once per batch call.
func checkKeyParseOncePerBatch(t *testing.T, stages map[e2etest.StageKey]e2etest.Series, batches uint64) {
	t.Helper()
	var keyParse uint64
	for k, v := range stages {
		if k.Stage == semconv.StageKeyParse {
			keyParse += v.Count
		}
	}
	if keyParse != batches {
		t.Errorf("key_parse counted %d times, want once per batch call: %d", keyParse, batches)
	}
}

func median(v []uint64) uint64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]uint64(nil), v...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s[len(s)/2]
}

// Stage probes exist only while profiling is on (seen from the kernel), and toggling
// under load loses no operation.
func TestStageToggleUnderLoad(t *testing.T) {
	e2etest.RequireRoot(t)
	bin := e2etest.BuildAsobserve(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 2})
	var offCount, onCount, offAgain int
	var pid int
	during := func(a *attach.Agent, _ *metrics.Recorder) {
		for _, tg := range a.Targets() {
			pid = tg.PID
		}
		offCount = a.StageProbeCount()
		waitRecords(t, a, 200)
		if err := a.SetStages(true); err != nil {
			t.Fatal(err)
		}
		onCount = a.StageProbeCount()
		waitRecords(t, a, 200)
		if err := a.SetStages(false); err != nil {
			t.Fatal(err)
		}
		offAgain = a.StageProbeCount()
		waitRecords(t, a, 200)
		if err := a.SetStages(true); err != nil {
			t.Fatal(err)
		}
	}
	rec, _, got, want := observeWith(t, bin, cluster, []testserver.Fault{rtt}, attach.Options{}, during,
		"--count", "2500", "--concurrency", "4", "--keys", "100", "--rate", "1500")
	e2etest.CompareCounts(t, got, want)
	if offCount != 0 || onCount == 0 || offAgain != 0 {
		t.Fatalf("stage links: off=%d on=%d off again=%d", offCount, onCount, offAgain)
	}
	if len(e2etest.StageSeries(t, rec.Registry)) == 0 {
		t.Fatal("no stage samples while stages were on")
	}
	_ = pid
}

// With profiling off the stage histogram has no samples and the kernel holds only the
// operation probes.
func TestStagesOffMeansNoStageProbes(t *testing.T) {
	e2etest.RequireRoot(t)
	bin := e2etest.BuildAsobserve(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	var opOnly, withStages, seriesWhileOff int
	during := func(a *attach.Agent, rec *metrics.Recorder) {
		pid := a.Targets()[0].PID
		opOnly = len(e2etest.UprobesOn(t, bin, pid))
		// Operations flow with profiling off (a third of the run) before the check.
		waitRecords(t, a, 500)
		seriesWhileOff = len(e2etest.StageSeries(t, rec.Registry))
		if err := a.SetStages(true); err != nil {
			t.Fatal(err)
		}
		withStages = len(e2etest.UprobesOn(t, bin, pid))
		if err := a.SetStages(false); err != nil {
			t.Fatal(err)
		}
	}
	_, _, got, want := observeWith(t, bin, cluster, []testserver.Fault{rtt}, attach.Options{}, during, "--count", "1500", "--concurrency", "2", "--keys", "50", "--rate", "1000")
	e2etest.CompareCounts(t, got, want)
	if seriesWhileOff != 0 {
		t.Errorf("%d stage series while profiling was off", seriesWhileOff)
	}
	t.Logf("kernel-side uprobe links on the target: %d with stages off, %d with stages on", opOnly, withStages)
	if withStages <= opOnly {
		t.Fatalf("stage probes not visible from the kernel: off=%d on=%d", opOnly, withStages)
	}
}

// waitRecords waits until the agent has read n more ring-buffer records than when called:
// the target ran that much in the current state.
func waitRecords(t *testing.T, a *attach.Agent, n uint64) {
	t.Helper()
	_, _, from, err := a.Counters()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, _, got, err := a.Counters()
		if err != nil {
			t.Fatal(err)
		}
		if got >= from+n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent read %d records in 20s, want %d", got-from, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
