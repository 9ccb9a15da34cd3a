//go:build linux

// Command benchrun is asobserve's benchmark harness (`make bench`). In one run it measures
// the reference workload unobserved, under empty BPF programs on the same probe points
// (the floor), and under asobserve's modes, interleaving the modes round by round so that
// machine noise hits all of them alike. It adds the agent's own figures and writes
// bench/report.json and bench/report.md. It needs root (eBPF).
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/semconv"
	"github.com/asobserve/asobserve/internal/testserver"
)

type config struct {
	out         string
	rounds      int
	duration    time.Duration
	concurrency int
	mix         string
	keys        int
	ringbuf     int
	rate        float64
	satDuration time.Duration
	quick       bool
}

// benchMix is every single-record and batch operation plus UDF execute. Scan and query
// are left out of the mode comparison: each takes milliseconds, so a few of them would
// decide the mean latency and hide the probes' microseconds.
const benchMix = "put=1,get=1,select=1,exists=1,remove=1,touch=1,append=1,prepend=1,increment=1,operate=1," +
	"batch_read=1,batch_operate=1,batch_remove=1,execute=1"

var (
	logger  = log.New(os.Stderr, "benchrun: ", log.Ltime)
	verbose = flag.Bool("v", false, "log the phases of every run")
	phases  = flag.String("phases", "modes,probehits,stages,agent,saturation,micro,features", "phases to run (for debugging the harness)")
)

func phase(name string) bool {
	for _, p := range strings.Split(*phases, ",") {
		if p == name {
			return true
		}
	}
	return false
}

func main() {
	var c config
	flag.StringVar(&c.out, "out", "bench", "directory for report.json and report.md")
	flag.IntVar(&c.rounds, "rounds", 9, "rounds; every round runs every mode once, in rotated order")
	flag.DurationVar(&c.duration, "duration", 4*time.Second, "workload run time per mode and round")
	flag.IntVar(&c.concurrency, "concurrency", 1, "closed-loop workload workers in the mode comparison")
	flag.StringVar(&c.mix, "mix", benchMix, "workload operation mix for the mode comparison")
	flag.IntVar(&c.keys, "keys", 200, "keys per set")
	flag.IntVar(&c.ringbuf, "ringbuf-size", attach.DefaultRingBufferSize, "ring buffer size in bytes")
	flag.Float64Var(&c.rate, "rate", 10000, "fixed rate for the agent CPU/RSS figure (ops/s)")
	flag.DurationVar(&c.satDuration, "saturation-duration", 5*time.Second, "length of the saturation (events lost) run")
	flag.BoolVar(&c.quick, "quick", false, "2 rounds of 2s: a smoke run, not for publishing")
	flag.Parse()
	if c.quick {
		c.rounds, c.duration, c.satDuration = 2, 2*time.Second, 2*time.Second
	}
	if os.Geteuid() != 0 {
		logger.Fatal("needs root for eBPF: run `sudo make bench`")
	}
	start := time.Now()
	rep, err := run(c)
	if err != nil {
		logger.Fatal(err)
	}
	rep.DurationSeconds = time.Since(start).Seconds()
	if err := rep.write(c.out); err != nil {
		logger.Fatal(err)
	}
	logger.Printf("wrote %s and %s in %s", filepath.Join(c.out, "report.json"), filepath.Join(c.out, "report.md"), time.Since(start).Round(time.Second))
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s: run from the repository", dir)
		}
	}
}

func run(c config) (*report, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "asobserve-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "asobserve")
	logger.Printf("building %s", bin)
	if err := goBuild(root, bin); err != nil {
		return nil, err
	}
	rep := newReport(c)
	if phase("probehits") {
		// Before any agent starts: agents keep the statistics on while they run.
		if ns, err := statsOverhead(); err == nil {
			rep.StatsOverheadNs = ns
		} else {
			rep.Notes = append(rep.Notes, fmt.Sprintf("cost of the run statistics themselves not measured: %v", err))
		}
	}
	g := &agents{tmp: tmp, bin: bin}
	defer g.closeAll()

	// The server runs in a process of its own, as a real one does: in this process it
	// would share a Go runtime (scheduler, GC) with the agents it is measured against.
	hosts, stopServer, err := startServerProcess(bin)
	if err != nil {
		return nil, err
	}
	defer stopServer()
	if err := g.setup(c, hosts); err != nil {
		return nil, err
	}
	if phase("modes") {
		if err := runModes(c, rep, g, hosts); err != nil {
			return nil, err
		}
	}
	if phase("probehits") {
		if err := runProbeHits(c, rep, g, hosts); err != nil {
			return nil, err
		}
	}
	if phase("stages") {
		if err := runStages(c, rep, g); err != nil {
			return nil, err
		}
	}
	if phase("agent") {
		if err := runAgentProcess(c, rep, g, bin, hosts); err != nil {
			return nil, err
		}
	}
	if phase("saturation") {
		if err := runSaturation(c, rep, g, hosts); err != nil {
			return nil, err
		}
	}
	closed := make(chan struct{})
	go func() {
		logger.Printf("detaching in the background (the kernel takes a while per uprobe)")
		g.closeAll()
		close(closed)
	}()
	if phase("micro") {
		runMicro(rep, root)
	}
	if phase("features") {
		runFeatureCost(rep, root)
	}
	<-closed
	rep.evaluateGoals()
	return rep, nil
}

func goBuild(root, out string) error {
	cmd := exec.Command("go", "build", "-o", out, "./cmd/asobserve")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/asobserve: %v\n%s", err, b)
	}
	return nil
}

// oneRun runs one workload under one observer and returns its truth and the ring counters.
func oneRun(bin string, hosts []string, obs observer, args ...string) (*truth, *attach.Target, counters, error) {
	t0 := time.Now()
	w, err := startWorkload(bin, hosts, args...)
	if err != nil {
		obs.finish()
		return nil, nil, counters{}, err
	}
	defer w.kill()
	t1 := time.Now()
	t, err := obs.attach(w.pid)
	if err != nil {
		obs.finish()
		return nil, nil, counters{}, err
	}
	if err := w.start(); err != nil {
		obs.finish()
		return nil, nil, counters{}, err
	}
	t2 := time.Now()
	tr, err := w.wait(5 * time.Minute)
	t3 := time.Now()
	cnt, ferr := obs.finish()
	if err == nil {
		err = ferr
	}
	if *verbose {
		logger.Printf("workload start %s, attach %s, run %s, finish %s", t1.Sub(t0).Round(time.Millisecond), t2.Sub(t1).Round(time.Millisecond),
			t3.Sub(t2).Round(time.Millisecond), time.Since(t3).Round(time.Millisecond))
	}
	return tr, t, cnt, err
}

// mode is one column of the comparison.
type mode struct {
	name, desc string
	obs        observer
	bin        string
}

// agents owns the held agents of the run; closing them is slow, so it happens at the end
// and concurrently.
type agents struct {
	tmp, bin string
	held     []*heldAgent
	// The three agents: empty programs, operations (an observer of it also feeds the tracer for the
	// tracing view's process only), operations with stage probes.
	floor, ops, stages *heldAgent
	// Views, one binary copy each.
	floorV, opsV, tracingV, stagesV *view
	tracingPID                      atomic.Int64
	tracingNote                     string
	closeOnce                       sync.Once
	later                           []func() // slow cleanups run with the agents' detach
}

func (g *agents) newAgent(opts attach.Options) (*heldAgent, error) {
	o, err := newAgentObserver(opts)
	if err != nil {
		return nil, err
	}
	h := &heldAgent{agentObserver: o}
	g.held = append(g.held, h)
	return h, nil
}

func (g *agents) view(h *heldAgent, name string, hosts []string) (*view, error) {
	bin, err := g.copyBin(name)
	if err != nil {
		return nil, err
	}
	v, err := h.addView(bin, hosts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return v, nil
}

func (g *agents) copyBin(name string) (string, error) {
	dir := filepath.Join(g.tmp, strings.ReplaceAll(name, "+", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	dst := filepath.Join(dir, "asobserve")
	data, err := os.ReadFile(g.bin)
	if err != nil {
		return "", err
	}
	return dst, os.WriteFile(dst, data, 0o755)
}

// setup loads the three agents and attaches each mode's binary copy.
func (g *agents) setup(c config, hosts []string) error {
	var err error
	if g.floor, err = g.newAgent(attach.Options{Floor: true, RingBufferSize: c.ringbuf}); err != nil {
		return err
	}
	opsOpts := attach.Options{RingBufferSize: c.ringbuf}
	tr, trErr := newTracer()
	if trErr == nil {
		tr.hook(&opsOpts, &g.tracingPID)
	} else {
		g.tracingNote = trErr.Error()
	}
	if g.ops, err = g.newAgent(opsOpts); err != nil {
		return err
	}
	if tr != nil {
		g.ops.extra = tr.shutdown
	}
	if g.stages, err = g.newAgent(attach.Options{Stages: true, RingBufferSize: c.ringbuf}); err != nil {
		return err
	}
	if g.floorV, err = g.view(g.floor, "floor", hosts); err != nil {
		return err
	}
	if g.opsV, err = g.view(g.ops, "operations", hosts); err != nil {
		return err
	}
	if trErr == nil {
		if g.tracingV, err = g.view(g.ops, "tracing", hosts); err != nil {
			return err
		}
	}
	g.stagesV, err = g.view(g.stages, "operations+stages", hosts)
	return err
}

func (g *agents) closeAll() {
	g.closeOnce.Do(g.doClose)
}

func (g *agents) doClose() {
	var wg sync.WaitGroup
	for _, f := range g.later {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	for _, h := range g.held {
		wg.Add(1)
		go func() { defer wg.Done(); h.close() }()
	}
	wg.Wait()
	g.held = nil
}

// tracingView marks the tracing run's process so that the shared operations agent makes
// spans for it alone.
type tracingView struct {
	*view
	pid *atomic.Int64
}

func (v tracingView) attach(pid int) (*attach.Target, error) {
	v.pid.Store(int64(pid))
	return v.view.attach(pid)
}

func (v tracingView) finish() (counters, error) {
	c, err := v.view.finish()
	v.pid.Store(0)
	return c, err
}

func (g *agents) modes() ([]mode, error) {
	base, err := g.copyBin("baseline")
	if err != nil {
		return nil, err
	}
	ms := []mode{
		{"baseline", "not observed", noObserver{}, base},
		{"floor", "empty BPF programs on exactly the same probe points", g.floorV, g.floorV.bin},
		{"operations", "asobserve operation metrics (the default)", g.opsV, g.opsV.bin},
		{"operations+stages", "operation metrics and internal stage probes", g.stagesV, g.stagesV.bin},
	}
	if g.tracingV != nil {
		ms = append(ms, mode{"tracing", "operation metrics plus one OTLP/gRPC span per operation (loopback receiver)",
			tracingView{g.tracingV, &g.tracingPID}, g.tracingV.bin})
	}
	return ms, nil
}

func runModes(c config, rep *report, g *agents, hosts []string) error {
	ms, err := g.modes()
	if err != nil {
		return err
	}
	var attachTimes []time.Duration
	for _, v := range []*view{g.floorV, g.opsV, g.tracingV, g.stagesV} {
		if v != nil {
			attachTimes = append(attachTimes, v.attachT)
		}
	}
	args := []string{"--duration", c.duration.String(), "--concurrency", fmt.Sprint(c.concurrency), "--keys", fmt.Sprint(c.keys),
		"--mix", c.mix}
	results := map[string][]*truth{}
	for r := 0; r < c.rounds; r++ {
		for i := range ms {
			m := ms[(i+r)%len(ms)]
			tr, _, cnt, err := oneRun(m.bin, hosts, m.obs, args...)
			if err != nil {
				return fmt.Errorf("mode %s round %d: %w", m.name, r+1, err)
			}
			if cnt.Lost > 0 {
				rep.Notes = append(rep.Notes, fmt.Sprintf("mode %s round %d lost %d events", m.name, r+1, cnt.Lost))
			}
			results[m.name] = append(results[m.name], tr)
			logger.Printf("round %d/%d %-18s %8.0f ops/s mean %7.1fµs p50 %7.1fµs p99 %7.1fµs", r+1, c.rounds, m.name,
				float64(tr.TotalOps)/c.duration.Seconds(), meanUs(tr), tr.P50Ms*1e3, tr.P99Ms*1e3)
		}
	}
	rep.addModes(c, ms, results, g.tracingNote)
	rep.addAttachTimes(attachTimes)
	return nil
}

func meanUs(t *truth) float64 {
	if t.TotalOps == 0 {
		return 0
	}
	return t.LatencySumSeconds / float64(t.TotalOps) * 1e6
}

// runProbeHits runs each operation kind alone with BPF statistics on and counts program
// runs per operation, under asobserve's programs and under the floor's empty ones, in
// rounds: the program time per run moves with the machine's load, so the figures are
// medians over rounds.
func runProbeHits(c config, rep *report, g *agents, hosts []string) error {
	if err := testRunSupport(); err != nil {
		rep.Notes = append(rep.Notes, fmt.Sprintf("program time is measured live, per operation kind: %v", err))
	}
	stats, err := enableStats()
	if err != nil {
		rep.Notes = append(rep.Notes, fmt.Sprintf("probe hits not measured: enabling BPF statistics failed: %v", err))
		return nil
	}
	defer stats()
	const n = 400
	rounds := max(2, c.rounds-2)
	perRound := make([]map[string]opCost, rounds)
	// The single-record operations again with keys made at each call, as services make
	// them: the preloaded keys are cache-cold when the entry program reads them.
	freshRounds := make([]map[string]opCost, rounds)
	byOp := map[string][]opCost{}
	args := func(op string) []string {
		return []string{"--mix", op + "=1", "--count", fmt.Sprint(n), "--concurrency", "1", "--keys", "50"}
	}
	for r := 0; r < rounds; r++ {
		perRound[r], freshRounds[r] = map[string]opCost{}, map[string]opCost{}
		for _, op := range semconv.Operations {
			ours, err := measureRun(g.opsV, hosts, args(op)...)
			if err != nil {
				return fmt.Errorf("probe hits of %s: %w", op, err)
			}
			floor, err := measureRun(g.floorV, hosts, args(op)...)
			if err != nil {
				return fmt.Errorf("floor probe hits of %s: %w", op, err)
			}
			cost := opCost{NsPerOp: ours.perOp("probe_entry", "probe_return"), FloorNsPerOp: floor.perOp("probe_empty"),
				EntryNsPerRun: ours.nsPerRun("probe_entry"), ReturnNsPerRun: ours.nsPerRun("probe_return"), FloorNsPerRun: floor.nsPerRun("probe_empty")}
			perRound[r][op] = cost
			byOp[op] = append(byOp[op], cost)
			if classOf(op) == classSingle {
				fresh, err := measureRun(g.opsV, hosts, append(args(op), "--fresh-keys")...)
				if err != nil {
					return fmt.Errorf("probe hits of %s with fresh keys: %w", op, err)
				}
				freshRounds[r][op] = opCost{NsPerOp: fresh.perOp("probe_entry", "probe_return"), FloorNsPerOp: cost.FloorNsPerOp,
					EntryNsPerRun: fresh.nsPerRun("probe_entry"), ReturnNsPerRun: fresh.nsPerRun("probe_return"), FloorNsPerRun: cost.FloorNsPerRun}
			}
			if r == 0 {
				row := hitRow(ours)
				row.Op = op
				rep.ProbeHits = append(rep.ProbeHits, row)
			}
		}
		logger.Printf("program time round %d/%d: %s", r+1, rounds, summarize(perRound[r]))
	}
	for i := range rep.ProbeHits {
		h := &rep.ProbeHits[i]
		h.setCost(byOp[h.Op])
	}
	rep.ProgramTime = programTime(perRound)
	for _, row := range programTime(freshRounds) {
		if row.Class == classSingle {
			row.Class = classSingleFresh
			rep.ProgramTime = append(rep.ProgramTime, row)
		}
	}
	return nil
}

func summarize(costs map[string]opCost) string {
	var parts []string
	for _, row := range programTime([]map[string]opCost{costs}) {
		parts = append(parts, fmt.Sprintf("%s %.0f ns/op (floor %.0f)", row.Class, row.NsPerOp, row.FloorNsPerOp))
	}
	return strings.Join(parts, ", ")
}

// measureRun runs one workload under v with BPF statistics on and returns what its
// agent's programs did over the run.
func measureRun(v *view, hosts []string, args ...string) (progRun, error) {
	w, err := startWorkload(v.bin, hosts, args...)
	if err != nil {
		return progRun{}, err
	}
	defer w.kill()
	h := v.h
	if _, err := v.attach(w.pid); err != nil {
		return progRun{}, err
	}
	before, err := h.agent.ProgramStats()
	if err == nil {
		err = w.start()
	}
	if err != nil {
		v.finish()
		return progRun{}, err
	}
	tr, err := w.wait(2 * time.Minute)
	if err != nil {
		v.finish()
		return progRun{}, err
	}
	cnt, err := v.finish()
	if err != nil {
		return progRun{}, err
	}
	after, err := h.agent.ProgramStats()
	if err != nil {
		return progRun{}, err
	}
	if *verbose {
		logger.Printf("program stats before %v after %v", before, after)
	}
	run := progRun{ops: float64(tr.TotalOps), produced: cnt.Produced, runs: map[string]float64{}, ns: map[string]float64{}}
	for name := range after {
		run.runs[name] = float64(after[name].RunCount - before[name].RunCount)
		run.ns[name] = float64(after[name].RunTime - before[name].RunTime)
	}
	return run, nil
}

// hitRow is the probe-hit row of one run of asobserve's programs.
func hitRow(run progRun) probeHitRow {
	row := probeHitRow{Ops: int64(run.ops), EventsPerOp: float64(run.produced) / run.ops, Unit: "probe program runs per operation"}
	row.EntryPerOp, row.EntryNsPerRun = run.runs["probe_entry"]/run.ops, run.nsPerRun("probe_entry")
	row.ReturnPerOp, row.ReturnNsPerRun = run.runs["probe_return"]/run.ops, run.nsPerRun("probe_return")
	row.NsPerOp = run.perOp("probe_entry", "probe_return")
	row.TotalPerOp = row.EntryPerOp + row.ReturnPerOp
	row.Source = "measured: BPF program run counts"
	if row.TotalPerOp == 0 {
		// Every ring record is written by a return probe after its entry probe; nested
		// calls that the programs filter out are not in it, so this is a lower bound.
		row.EntryPerOp, row.ReturnPerOp, row.TotalPerOp = row.EventsPerOp, row.EventsPerOp, 2*row.EventsPerOp
		row.Source = "estimated: 2 × ring records per operation (BPF run counts stayed 0 on this kernel)"
	}
	return row
}

// runStages reproduces seed 002's table: batch_read latency with stage probes off and on,
// on a 3-node cluster with 20 workers, interleaved.
func runStages(c config, rep *report, g *agents) error {
	cluster, err := testserver.Start("127.0.0.1:0", testserver.Config{Nodes: 3})
	if err != nil {
		return err
	}
	defer cluster.Close()
	hosts := cluster.Hosts()
	held := map[bool]*view{false: g.opsV, true: g.stagesV}
	args := []string{"--mix", "batch_read=1", "--duration", c.duration.String(), "--concurrency", "20", "--keys", fmt.Sprint(c.keys)}
	res := map[bool][]*truth{}
	for r := 0; r < max(2, c.rounds-1); r++ {
		for _, on := range []bool{r%2 == 1, r%2 == 0} {
			tr, _, _, err := oneRun(held[on].bin, hosts, held[on], args...)
			if err != nil {
				return fmt.Errorf("batch_read stages=%v: %w", on, err)
			}
			res[on] = append(res[on], tr)
			logger.Printf("batch_read stages=%-5v mean %7.1fµs p50 %7.1fµs p99 %7.1fµs", on, meanUs(tr), tr.P50Ms*1e3, tr.P99Ms*1e3)
		}
	}
	rep.addStages(res)

	stats, err := enableStats()
	if err != nil {
		return nil
	}
	defer stats()
	for _, on := range []bool{false, true} {
		run, err := measureRun(held[on], hosts, "--mix", "batch_read=1", "--count", "300", "--concurrency", "1", "--keys", "50")
		if err != nil {
			return err
		}
		row := hitRow(run)
		row.Op = "batch_read (3 nodes, stages " + onOff(on) + ")"
		rep.BatchProbeHits = append(rep.BatchProbeHits, row)
	}
	return nil
}

// enableStats turns on the kernel's BPF run statistics (BPF_ENABLE_STATS) and, because
// uprobe programs did not count with that alone on the kernel this was written on, the
// kernel.bpf_stats_enabled sysctl too; the returned func restores both.
func enableStats() (func(), error) {
	closer, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return nil, err
	}
	const sysctl = "/proc/sys/kernel/bpf_stats_enabled"
	prev, rerr := os.ReadFile(sysctl)
	if rerr == nil {
		_ = os.WriteFile(sysctl, []byte("1"), 0o644)
	}
	return func() {
		if rerr == nil {
			_ = os.WriteFile(sysctl, prev, 0o644)
		}
		closer.Close()
	}, nil
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// runAgentProcess measures `asobserve attach` as its own process at a fixed rate.
func runAgentProcess(c config, rep *report, g *agents, bin string, hosts []string) error {
	const runFor = 10 * time.Second
	w, err := startWorkload(bin, hosts, "--mix", "get=1,put=1", "--rate", fmt.Sprint(c.rate), "--concurrency", "8",
		"--duration", runFor.String(), "--keys", fmt.Sprint(c.keys))
	if err != nil {
		return err
	}
	defer w.kill()
	a, err := startAgentProc(bin, w.pid, "--ringbuf-size", fmt.Sprint(c.ringbuf))
	if err != nil {
		return err
	}
	if line := attachLine(a.stderr.String()); line != "" {
		rep.AttachLog = line
	}
	pid := a.cmd.Process.Pid
	cpu0, _ := procCPU(pid)
	t0 := time.Now()
	if err := w.start(); err != nil {
		a.stop()
		return err
	}
	var atMax memStatus
	tick := time.NewTicker(250 * time.Millisecond)
	waitDone := make(chan struct{})
	var tr *truth
	var werr error
	go func() { tr, werr = w.wait(2 * time.Minute); close(waitDone) }()
loop:
	for {
		select {
		case <-tick.C:
			if m, err := procMem(pid); err == nil && m.rss > atMax.rss {
				atMax = m
			}
		case <-waitDone:
			break loop
		}
	}
	tick.Stop()
	elapsed := time.Since(t0)
	cpu1, _ := procCPU(pid)
	end, _ := procMem(pid)
	g.later = append(g.later, func() { _ = a.stop() })
	if werr != nil {
		return werr
	}
	rep.addAgentProcess(c.rate, float64(tr.TotalOps)/runFor.Seconds(), (cpu1-cpu0).Seconds()/elapsed.Seconds()*100, atMax, end.hwm)
	return nil
}

func attachLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "attached to pid") {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// runSaturation drives the workload as fast as this machine goes and counts lost events.
func runSaturation(c config, rep *report, g *agents, hosts []string) error {
	tr, _, cnt, err := oneRun(g.opsV.bin, hosts, g.opsV, "--mix", "get=1", "--concurrency", "8", "--duration", c.satDuration.String(), "--keys", fmt.Sprint(c.keys))
	if err != nil {
		return err
	}
	rep.addSaturation(c, float64(tr.TotalOps)/c.satDuration.Seconds(), cnt)
	return nil
}

func runMicro(rep *report, root string) {
	logger.Printf("micro-benchmarks")
	r := decodeRecordBench()
	rep.addDecode(r)
	for _, n := range []int{100, 1000} {
		res, size := encodeBench(n)
		rep.addEncode(n, res, size)
	}
	if res, why := runGoBench(root, "inproc", ".", "1s"); why == "" {
		rep.addGoBench("inproc", res)
		rep.addInprocDelta()
	} else {
		rep.InprocNote = why
	}
	if res, why := runGoBench(root, "internal/tracing", "BenchmarkOnOpToSpan", "2000x"); why == "" {
		rep.addGoBench("tracing", res)
	} else {
		rep.TracingNote = why
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
