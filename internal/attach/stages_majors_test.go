//go:build linux

package attach_test

import (
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/asobserve/asobserve/internal/inspect"
	"github.com/asobserve/asobserve/internal/metrics"
	events "github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/probes"
	"github.com/asobserve/asobserve/internal/semconv"
	"github.com/asobserve/asobserve/internal/testserver"
)

// singleRecordOps are the matrix target's operations that run one command on one node:
// each makes exactly one attempt (no faults, no retries), so every per-attempt stage is
// counted exactly once per operation.
var singleRecordOps = []string{semconv.OpPut, semconv.OpGet, semconv.OpSelect, semconv.OpExists, semconv.OpRemove,
	semconv.OpTouch, semconv.OpAppend, semconv.OpPrepend, semconv.OpIncrement, semconv.OpOperate, semconv.OpExecute}

// mayNameANode are the ops of each major's target that send a command of their own on
// the caller's goroutine besides the ones that split by node.
var mayNameANode = map[string][]string{
	"v6": {semconv.OpQueryBackground},
	"v7": {semconv.OpQueryBackground},
	"v8": {semconv.OpQueryBackground, semconv.OpCommit, semconv.OpAbort, semconv.OpBatchOperate},
}

var perAttemptStages = []string{semconv.StageConnAcquire, semconv.StageIO, semconv.StageParse, semconv.StageAttempt}

// The stage breakdown and the node each op was sent to are the same for every client
// major: the matrix target of each runs its seed mix, then every method asobserve counts
// (-every-method), against 3 nodes with 2 ms of server latency, profiled with stages on. The builds differ
// as the matrix diagonal's do: a stripped v6 from the oldest toolchain (struct offsets
// from the table), a PIE v7, a v8.
func TestStagesPerClientMajor(t *testing.T) {
	e2etest.RequireRoot(t)
	t.Cleanup(e2etest.RemoveTargets)
	for _, b := range []e2etest.TargetBuild{
		{Client: "v6", Toolchain: "go1.21.13", Flags: []string{"-ldflags=-s -w"}},
		{Client: "v7", Toolchain: "go1.24.13", Flags: []string{"-buildmode=pie"}},
		{Client: "v8", Toolchain: "local"},
	} {
		t.Run(b.Client, func(t *testing.T) {
			t.Run("seed", func(t *testing.T) { checkStagesForClient(t, b, false) })
			t.Run("every-method", func(t *testing.T) { checkStagesForClient(t, b, true) })
		})
	}
}

// checkStagesForClient runs the target's seed mix, or with everyMethod every counted method.
func checkStagesForClient(t *testing.T, build e2etest.TargetBuild, everyMethod bool) {
	client := build.Client
	bin, err := e2etest.BuildTarget(t, build)
	if err != nil {
		t.Fatal(err)
	}
	missing := missingStageFunctions(t, bin)
	t.Logf("stage functions this program does not link: %v", missing)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 3})
	args := []string{"-count", "10"}
	if everyMethod {
		args = append(args, "-every-method")
	}
	w := e2etest.StartTarget(t, bin, cluster.Hosts(), args...)

	rec := metrics.New(metrics.Options{})
	p := &pairs{ops: map[uint64]*opTiming{}}
	var serversMu sync.Mutex
	servers := map[string]map[string]int{} // op -> "host:port" ("" unresolved) -> ops
	onOp := func(tg *events.Target, ev events.Op) {
		p.onOp(tg, ev)
		op := ev.Name
		addr := ""
		if s, ok := tg.Server(ev.Node); ok {
			addr = net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
		}
		serversMu.Lock()
		if servers[op] == nil {
			servers[op] = map[string]int{}
		}
		servers[op][addr]++
		serversMu.Unlock()
	}
	agent := runAgent(t, rec, attach.Options{Stages: true, Tracing: true, Observers: []events.Observer{hooks{op: onOp, stage: p.onStage}}})
	tgt, err := agent.Attach(w.PID, &metrics.Identity{Service: "target"})
	if err != nil {
		t.Fatal(err)
	}
	if want := stageRowCount(client) - len(missing); tgt.Binary.StageFunctions != want {
		t.Errorf("%d stage functions probed, want %d (%d rows, absent from this program: %v)",
			tgt.Binary.StageFunctions, want, stageRowCount(client), missing)
	}
	cluster.SetFaults([]testserver.Fault{{Namespace: "test", Latency: 2 * time.Millisecond}})
	w.Go(t)
	truth := w.Wait(t, 2*time.Minute)
	cluster.SetFaults(nil)
	Drain(t, agent)
	want := e2etest.TruthSeries(truth)
	e2etest.CompareCounts(t, e2etest.OpSeries(t, rec.Registry, "target"), want)

	opCount := map[string]uint64{}
	for k, s := range want {
		opCount[k.Op] += s.Count
	}
	stages := e2etest.StageSeries(t, rec.Registry)
	t.Logf("%s stage profile:\n%s", client, describeStages(stages))

	for _, op := range singleRecordOps {
		for _, stage := range perAttemptStages {
			if got := stages[e2etest.StageKey{Stage: stage, Op: op}].Count; got != opCount[op] {
				t.Errorf("%s %s: %d samples, want one per operation: %d", op, stage, got, opCount[op])
			}
		}
	}
	// Each batch call splits its keys by node once; a commit splits the records it verifies
	// and those it rolls forward (at most two batches), an abort those it rolls back.
	for _, op := range []string{semconv.OpBatchRead, semconv.OpBatchOperate, semconv.OpBatchRemove, semconv.OpBatchApply} {
		if got := stages[e2etest.StageKey{Stage: semconv.StageKeyParse, Op: op}].Count; got != opCount[op] {
			t.Errorf("%s key_parse: %d samples, want one per batch call: %d", op, got, opCount[op])
		}
	}
	for op, most := range map[string]uint64{semconv.OpCommit: 2, semconv.OpAbort: 1} {
		if got := stages[e2etest.StageKey{Stage: semconv.StageKeyParse, Op: op}].Count; got > most*opCount[op] || opCount[op] > 0 && got == 0 {
			t.Errorf("%s key_parse: %d samples for %d operations, want 1 to %d each", op, got, opCount[op], most)
		}
	}
	// Multi-node operations: every node command is tied to its op (through the keys or
	// records slice of a batch, the recordset of a scan or query) and makes its attempt.
	for _, op := range []string{semconv.OpBatchRead, semconv.OpBatchOperate, semconv.OpBatchRemove, semconv.OpBatchApply, semconv.OpScan, semconv.OpQuery} {
		for _, stage := range append(perAttemptStages, semconv.StageScheduleDelay) {
			if stages[e2etest.StageKey{Stage: stage, Op: op}].Count < opCount[op] {
				t.Errorf("%s %s: %d samples for %d operations", op, stage, stages[e2etest.StageKey{Stage: stage, Op: op}].Count, opCount[op])
			}
		}
	}
	// A scan or query sends one command to each of the 3 nodes, a node-scoped one to its
	// node. Each command reads its answer once (io, parse: exact), over one connection in
	// one attempt in the seed mix. With -every-method's mix connections and attempts may be
	// more, never fewer: scans see about one extra per round, taken before any I/O,
	// whichever scan methods run (not from the object forms).
	for _, op := range []string{semconv.OpScan, semconv.OpQuery} {
		commands := 3*opCount[op] - 2*uint64(truth.NodeScoped[op])
		for _, stage := range perAttemptStages {
			got := stages[e2etest.StageKey{Stage: stage, Op: op}].Count
			if exact := !everyMethod || stage == semconv.StageIO || stage == semconv.StageParse; exact && got != commands || !exact && got < commands {
				t.Errorf("%s %s: %d samples, want one per node command: %d", op, stage, got, commands)
			}
		}
	}
	// A background job's call sends its command to every node (or one) on the caller's
	// goroutine: each is read once, at most 3 per call.
	for _, stage := range []string{semconv.StageIO, semconv.StageParse} {
		n, got := opCount[semconv.OpQueryBackground], stages[e2etest.StageKey{Stage: stage, Op: semconv.OpQueryBackground}].Count
		if got < uint64(truth.NodeScoped[semconv.OpQueryBackground]) || got > 3*n || n > 0 && got == 0 {
			t.Errorf("query_background %s: %d samples for %d operations", stage, got, n)
		}
	}
	checkStagesInsideOps(t, p)

	// Every single-record op names one of the cluster's nodes; the keys spread over all
	// three. Batches, scans and queries name none. Operations that send commands of their
	// own on the caller's goroutine besides node-split ones (a background job's per-node
	// commands, a transaction's monitor record commands: those of commit and abort, and of
	// a batch write inside a transaction) may name the node of one of them.
	nodes := map[string]bool{}
	for _, h := range cluster.Hosts() {
		nodes[h] = true
	}
	seen := map[string]bool{}
	serversMu.Lock()
	defer serversMu.Unlock()
	for op, byAddr := range servers {
		for addr, n := range byAddr {
			single := slices.Contains(singleRecordOps, op)
			either := slices.Contains(mayNameANode[client], op)
			if single && !nodes[addr] || !single && !either && addr != "" || either && addr != "" && !nodes[addr] {
				t.Errorf("%s: %d ops sent to %q; cluster nodes %v", op, n, addr, cluster.Hosts())
			}
			if single {
				seen[addr] = true
			}
		}
	}
	if len(seen) != 3 {
		t.Errorf("ops reached servers %v, want all 3 nodes", seen)
	}
}

func stageRowCount(client string) int {
	major := map[string]int{"v6": 6, "v7": 7, "v8": 8}[client]
	n := 0
	for _, r := range probes.ForMajor(major) {
		if r.IsStage() {
			n++
		}
	}
	return n
}

// missingStageFunctions lists the stage rows whose function the linker left out of bin.
func missingStageFunctions(t *testing.T, bin string) []string {
	t.Helper()
	b, err := inspect.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	major := map[string]int{"v6": 6, "v7": 7, "v8": 8}[b.ClientVersion[:2]]
	var missing []string
	for _, r := range probes.ForMajor(major) {
		sym := r.Symbol
		if !r.External {
			sym = b.ClientSymbol(sym)
		}
		if r.IsStage() && !b.HasFunc(sym) {
			missing = append(missing, r.Symbol)
		}
	}
	slices.Sort(missing)
	return missing
}

// checkStagesInsideOps: every stage but the batch's scheduling ones lies inside its operation.
func checkStagesInsideOps(t *testing.T, p *pairs) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	var orphans int
	for id, o := range p.ops {
		if o.op == "" {
			orphans++
			continue
		}
		for _, sp := range o.spans {
			if sp[0] < o.start || sp[1] > o.end {
				t.Errorf("op %d (%s): stage [%d,%d] outside the operation [%d,%d]", id, o.op, sp[0], sp[1], o.start, o.end)
				break
			}
		}
	}
	if orphans != 0 {
		t.Errorf("%d stage owners never had an operation event", orphans)
	}
}

func describeStages(stages map[e2etest.StageKey]e2etest.Series) string {
	var lines []string
	for k, s := range stages {
		lines = append(lines, fmt.Sprintf("  %-14s %-14s %5d  avg %.3fms", k.Op, k.Stage, s.Count, 1e3*s.Sum/float64(max(s.Count, 1))))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
