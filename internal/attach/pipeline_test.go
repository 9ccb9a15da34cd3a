//go:build linux

package attach

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/asobserve/asobserve/bpf"
	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/probes"
	"github.com/asobserve/asobserve/internal/semconv"
)

// These tests run the pipeline on records built from the generated BPF structs, without
// BPF, root or a target process.

// recordedSource plays records as a ring buffer reader would: one per ReadInto, a deadline
// error when none is ready in time, and ErrClosed after close.
type recordedSource struct {
	records  chan []byte
	closed   chan struct{}
	deadline time.Time // set and read by the reading goroutine only
}

func newRecordedSource() *recordedSource {
	return &recordedSource{records: make(chan []byte, 64), closed: make(chan struct{})}
}

func (s *recordedSource) SetDeadline(t time.Time) { s.deadline = t }

func (s *recordedSource) ReadInto(rec *ringbuf.Record) error {
	timeout := time.NewTimer(time.Until(s.deadline))
	defer timeout.Stop()
	select {
	case <-s.closed:
		return ringbuf.ErrClosed
	case raw := <-s.records:
		rec.RawSample = raw
		return nil
	case <-timeout.C:
		return os.ErrDeadlineExceeded
	}
}

// fakeLoader is the resolver and kernel counters the loader would be.
type fakeLoader struct {
	mu       sync.Mutex
	targets  map[watched]*Target
	rows     map[uint16][2]string
	produced atomic.Uint64
	lost     atomic.Uint64
}

func (l *fakeLoader) target(w watched) (*Target, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.targets[w]
	return t, ok
}

func (l *fakeLoader) rowOps(row uint16) (string, string, bool) {
	ops, ok := l.rows[row]
	return ops[0], ops[1], ok
}

func (l *fakeLoader) kernel() (uint64, uint64, error) { return l.produced.Load(), l.lost.Load(), nil }

func (l *fakeLoader) forget(w watched) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.targets, w)
}

// eventLog records what the observers hear, in order.
type eventLog struct {
	mu     sync.Mutex
	ops    []observe.Op
	stages []observe.Stage
	seq    []string
	from   []*observe.Target
}

func (e *eventLog) Op(t *observe.Target, op observe.Op) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ops = append(e.ops, op)
	e.seq = append(e.seq, "op "+op.Name)
	e.from = append(e.from, t)
}

func (e *eventLog) Stage(t *observe.Target, st observe.Stage) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stages = append(e.stages, st)
	e.seq = append(e.seq, "stage "+st.Name)
	e.from = append(e.from, t)
}

func (e *eventLog) TargetGone(t *observe.Target) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq = append(e.seq, fmt.Sprintf("gone %d", t.PID))
	e.from = append(e.from, t)
}

func (e *eventLog) note(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq = append(e.seq, s)
}

func (e *eventLog) sequence() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.seq)
}

const (
	rowPut uint16 = 3
	rowGet uint16 = 4 // Get, whose alternate (bin names given) is select
)

type pipelineRun struct {
	p      *pipeline
	src    *recordedSource
	loader *fakeLoader
	log    *eventLog
	rec    *metrics.Recorder
	self   *SelfMetrics
	target *Target
	done   chan error
}

// checkout is the pipeline's one target: pid 100, attach generation 1.
var checkout = watched{100, 1}

// startPipeline runs a pipeline with one target, checkout, feeding the recorder and a log.
func startPipeline(t *testing.T) *pipelineRun {
	t.Helper()
	r := &pipelineRun{src: newRecordedSource(), log: &eventLog{}, rec: metrics.New(metrics.Options{}), done: make(chan error, 1)}
	r.target = &Target{Target: observe.Target{PID: 100, Identity: &observe.Identity{Service: "checkout"}}}
	r.loader = &fakeLoader{targets: map[watched]*Target{checkout: r.target},
		rows: map[uint16][2]string{rowPut: {semconv.OpPut, ""}, rowGet: {semconv.OpGet, semconv.OpSelect}}}
	r.self = NewSelfMetrics(r.rec.Registry)
	r.rec.SetStagesEnabled(true)
	r.p = newPipeline(r.src, r.loader, r.loader.kernel, observe.Fanout{r.rec, r.log}, r.self)
	go func() { r.done <- r.p.run() }()
	t.Cleanup(func() {
		close(r.src.closed)
		if err := <-r.done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return r
}

// send queues records as the kernel would produce them.
func (r *pipelineRun) send(records ...[]byte) {
	for _, raw := range records {
		r.loader.produced.Add(1)
		r.src.records <- raw
	}
}

// waitHandled waits until the pipeline has handled n records.
func (r *pipelineRun) waitHandled(t *testing.T, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.p.received.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("handled %d records after 10s, want %d", r.p.received.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

type opRecord struct {
	proc               watched
	row                uint16
	failed, alternate  bool
	code               int32
	id, start, end     uint64
	namespace, set     string
	node               uint64
	parentTrace        [16]byte
	parentSpan         [8]byte
	parentFlags        uint8
	overrideNamespaceN int // when > 0, the ns_len byte claims this length
}

func encode(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (o opRecord) bytes(t *testing.T) []byte {
	ev := bpf.AsobserveEventOp{Type: uint8(bpf.AsobserveEventTypeEVENT_OP), NsLen: uint8(len(o.namespace)), SetLen: uint8(len(o.set)),
		Tgid: o.proc.pid, Gen: o.proc.gen, Row: o.row, Code: o.code, Cause: o.code, OpId: o.id, Start: o.start, End: o.end, Node: o.node}
	if o.failed {
		ev.Flags |= uint8(bpf.AsobserveEventFlagsEVENT_FAILED)
	}
	if o.alternate {
		ev.Flags |= uint8(bpf.AsobserveEventFlagsEVENT_ALTERNATE)
	}
	if o.overrideNamespaceN > 0 {
		ev.NsLen = uint8(o.overrideNamespaceN)
	}
	for i := range len(o.namespace) {
		ev.Ns[i] = int8(o.namespace[i])
	}
	for i := range len(o.set) {
		ev.Set[i] = int8(o.set[i])
	}
	ev.Parent.TraceId, ev.Parent.SpanId, ev.Parent.Flags = o.parentTrace, o.parentSpan, o.parentFlags
	return encode(t, &ev)
}

func stageRecord(t *testing.T, proc watched, row uint16, alternate bool, stage uint8, opID, start, end uint64) []byte {
	ev := bpf.AsobserveEventStage{Type: uint8(bpf.AsobserveEventTypeEVENT_STAGE), Stage: stage, Row: row, Tgid: proc.pid, Gen: proc.gen,
		OpId: opID, Start: start, End: end}
	if alternate {
		ev.Flags = uint32(bpf.AsobserveEventFlagsEVENT_ALTERNATE)
	}
	return encode(t, &ev)
}

// stageID is the record id of a stage name.
func stageID(t *testing.T, name string) uint8 {
	t.Helper()
	for id := range uint8(255) {
		if probes.StageName(id) == name {
			return id
		}
	}
	t.Fatalf("no stage id is named %q", name)
	return 0
}

func TestPipelineDispatchesOpsAndStagesWithExactNames(t *testing.T) {
	r := startPipeline(t)
	io := stageID(t, semconv.StageIO)
	trace := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	span := [8]byte{21, 22, 23, 24, 25, 26, 27, 28}
	r.send(
		opRecord{proc: checkout, row: rowPut, id: 1, start: 1_000, end: 3_000_000, namespace: "test", set: "users", node: 0xc000123000,
			parentTrace: trace, parentSpan: span, parentFlags: 1}.bytes(t),
		stageRecord(t, checkout, rowGet, true, io, 2, 2_000, 2_500),
		opRecord{proc: checkout, row: rowGet, alternate: true, failed: true, code: 2, id: 2, start: 1_500, end: 4_000,
			namespace: "test", set: "users"}.bytes(t),
		// The alternate flag on a row without an alternate op keeps the row's own name.
		opRecord{proc: checkout, row: rowPut, alternate: true, id: 3, start: 10, end: 20, namespace: "test", set: "s"}.bytes(t),
		opRecord{proc: checkout, row: rowGet, id: 4, start: 10, end: 30, namespace: "test", set: "users"}.bytes(t),
	)
	r.waitHandled(t, 5)

	wantOps := []observe.Op{
		{Name: "put", Namespace: "test", Set: "users", ID: 1, Start: 1_000, End: 3_000_000, Node: 0xc000123000,
			ParentTraceID: trace, ParentSpanID: span, ParentFlags: 1},
		{Name: "select", Namespace: "test", Set: "users", ErrorType: "KeyNotFoundError", ResultCode: 2, ID: 2, Start: 1_500, End: 4_000},
		{Name: "put", Namespace: "test", Set: "s", ID: 3, Start: 10, End: 20},
		{Name: "get", Namespace: "test", Set: "users", ID: 4, Start: 10, End: 30},
	}
	if !slices.Equal(r.log.ops, wantOps) {
		t.Errorf("ops:\n got %+v\nwant %+v", r.log.ops, wantOps)
	}
	wantStages := []observe.Stage{{Name: "io", Op: "select", OpID: 2, Start: 2_000, End: 2_500}}
	if !slices.Equal(r.log.stages, wantStages) {
		t.Errorf("stages:\n got %+v\nwant %+v", r.log.stages, wantStages)
	}
	for i, from := range r.log.from {
		if from != &r.target.Target {
			t.Errorf("event %d came from %p, want the target's own %p", i, from, &r.target.Target)
		}
	}
	// The recorder, the first observer, labels them exactly.
	counts := map[e2etest.Key]uint64{}
	for k, s := range e2etest.OpSeries(t, r.rec.Registry, "checkout") {
		counts[k] = s.Count
	}
	wantCounts := map[e2etest.Key]uint64{
		e2etest.K("put", "test", "users", ""): 1, e2etest.K("select", "test", "users", "KeyNotFoundError"): 1,
		e2etest.K("put", "test", "s", ""): 1, e2etest.K("get", "test", "users", ""): 1,
	}
	if !maps.Equal(counts, wantCounts) {
		t.Errorf("operation series %v, want %v", counts, wantCounts)
	}
	stages := e2etest.StageSeries(t, r.rec.Registry)
	if len(stages) != 1 || stages[e2etest.StageKey{Stage: "io", Op: "select"}].Count != 1 {
		t.Errorf("stage series %v, want exactly io of select once", stages)
	}
	if got := testutil.ToFloat64(r.self.EventsReceived); got != 5 {
		t.Errorf("events received %v, want 5", got)
	}
	if got := testutil.ToFloat64(r.self.EventsInvalid); got != 0 {
		t.Errorf("events invalid %v, want 0", got)
	}
}

func TestPipelineCountsUnknownAndCorruptRecordsInvalid(t *testing.T) {
	r := startPipeline(t)
	good := opRecord{proc: checkout, row: rowPut, id: 1, start: 1, end: 2, namespace: "test", set: "users"}
	unknownRow := good
	unknownRow.row = 9
	unknownPid := good
	unknownPid.proc.pid = 999
	// The pid's attach is known, but not this generation: a previous owner's, forgotten.
	unknownGen := good
	unknownGen.proc.gen = 2
	tooLongNamespace := good
	tooLongNamespace.overrideNamespaceN = 40
	wrongType := good.bytes(t)
	wrongType[0] = 7
	backwards := good
	backwards.start, backwards.end = 5, 4
	r.send(
		unknownRow.bytes(t),
		unknownPid.bytes(t),
		unknownGen.bytes(t),
		stageRecord(t, watched{999, 1}, rowPut, false, stageID(t, semconv.StageIO), 1, 1, 2), // unknown pid
		stageRecord(t, checkout, 9, false, stageID(t, semconv.StageIO), 1, 1, 2),             // unknown row
		tooLongNamespace.bytes(t),
		wrongType,
		backwards.bytes(t),
		good.bytes(t)[:20], // truncated
		good.bytes(t),
	)
	r.waitHandled(t, 10)
	if got := testutil.ToFloat64(r.self.EventsInvalid); got != 9 {
		t.Errorf("events invalid %v, want 9", got)
	}
	if got := testutil.ToFloat64(r.self.EventsReceived); got != 10 {
		t.Errorf("events received %v, want 10", got)
	}
	if seq := r.log.sequence(); !slices.Equal(seq, []string{"op put"}) {
		t.Errorf("observers heard %q, want only the one good op", seq)
	}
}

// Detaching: the records the kernel produced before the target left the filter are still
// its own, then the resolver forgets it, then observers hear TargetGone; a record after
// that is of an unknown process.
func TestPipelineTargetGoneAfterRecordsInFlight(t *testing.T) {
	r := startPipeline(t)
	// The records exist (produced) but the pipeline has not read them when retire starts.
	inFlight := make(chan []byte, 3)
	for id := range uint64(3) {
		r.loader.produced.Add(1)
		inFlight <- opRecord{proc: checkout, row: rowPut, id: id, start: 1, end: 2, namespace: "test", set: "users"}.bytes(t)
	}
	close(inFlight)
	retired := make(chan struct{})
	go func() {
		defer close(retired)
		r.p.retire(r.target, 10*time.Second, func() {
			r.log.note("forget")
			r.loader.forget(checkout)
		})
	}()
	for raw := range inFlight {
		r.src.records <- raw
	}
	<-retired
	want := []string{"op put", "op put", "op put", "forget", "gone 100"}
	if seq := r.log.sequence(); !slices.Equal(seq, want) {
		t.Fatalf("observers heard %q, want %q", seq, want)
	}
	if from := r.log.from[len(r.log.from)-1]; from != &r.target.Target {
		t.Errorf("TargetGone for %p, want the target %p", from, &r.target.Target)
	}

	r.send(opRecord{proc: checkout, row: rowPut, id: 9, start: 1, end: 2, namespace: "test", set: "users"}.bytes(t))
	r.waitHandled(t, 4)
	if got := testutil.ToFloat64(r.self.EventsInvalid); got != 1 {
		t.Errorf("events invalid %v after the target went, want 1 (its late record)", got)
	}
	if seq := r.log.sequence(); len(seq) != len(want) {
		t.Errorf("observers heard %q after TargetGone", seq[len(want):])
	}
}

func TestPipelineCountersFollowTheKernel(t *testing.T) {
	r := startPipeline(t)
	r.send(opRecord{proc: checkout, row: rowPut, id: 1, start: 1, end: 2, namespace: "test", set: "users"}.bytes(t))
	r.waitHandled(t, 1)
	r.loader.produced.Store(10)
	r.loader.lost.Store(2)
	r.p.pollCounters()
	r.loader.produced.Store(15)
	r.p.pollCounters()
	r.p.pollCounters()
	if got := testutil.ToFloat64(r.self.EventsProduced); got != 15 {
		t.Errorf("events produced %v, want 15", got)
	}
	if got := testutil.ToFloat64(r.self.EventsLost); got != 2 {
		t.Errorf("events lost %v, want 2", got)
	}
	produced, lost, received, err := r.p.counters()
	if err != nil || produced != 15 || lost != 2 || received != 1 {
		t.Errorf("counters = %d, %d, %d, %v; want 15, 2, 1, nil", produced, lost, received, err)
	}
}

// Agents on one registry share its self-metrics, as they share its histograms.
func TestSelfMetricsSharedPerRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, b := NewSelfMetrics(reg), NewSelfMetrics(reg)
	a.EventsReceived.Add(2)
	b.EventsReceived.Add(3)
	if got := testutil.ToFloat64(a.EventsReceived); got != 5 {
		t.Fatalf("events received %v, want 5 from both", got)
	}
	// The registry also carries the process_* and go_* collectors; only ours are counted.
	series, err := testutil.GatherAndCount(reg, "asobserve_events_received_total", "asobserve_events_lost_total",
		"asobserve_events_invalid_total", "asobserve_events_produced_total", "asobserve_attached_processes",
		"asobserve_probe_attach_errors_total")
	if err != nil || series != 6 {
		t.Fatalf("%d self-metric series (%v), want the 6, registered once", series, err)
	}
	if n, _ := testutil.GatherAndCount(reg, "process_cpu_seconds_total", "go_goroutines"); n != 2 {
		t.Errorf("%d of process_cpu_seconds_total and go_goroutines, want each once", n)
	}
}

// A process that reuses the pid of one still being detached is another generation: the
// records of each go to its own identity, whatever order they are read in.
func TestPipelineTellsAPIDsOwnersApartByGeneration(t *testing.T) {
	r := startPipeline(t)
	reuser := watched{checkout.pid, 2}
	cart := &Target{Target: observe.Target{PID: 100, Identity: &observe.Identity{Service: "cart"}}}
	r.loader.mu.Lock()
	r.loader.targets[reuser] = cart
	r.loader.mu.Unlock()
	put := func(w watched, id uint64) []byte {
		return opRecord{proc: w, row: rowPut, id: id, start: 1, end: 2, namespace: "test", set: "users"}.bytes(t)
	}
	r.send(put(reuser, 1), put(checkout, 2), put(reuser, 3), put(checkout, 4), put(checkout, 5))
	r.waitHandled(t, 5)
	for svc, want := range map[string]uint64{"checkout": 3, "cart": 2} {
		var got uint64
		for _, v := range e2etest.OpSeries(t, r.rec.Registry, svc) {
			got += v.Count
		}
		if got != want {
			t.Errorf("%s: %d operations, want %d", svc, got, want)
		}
	}
	if got := testutil.ToFloat64(r.self.EventsInvalid); got != 0 {
		t.Errorf("events invalid %v, want 0", got)
	}
}
