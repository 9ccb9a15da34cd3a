//go:build linux

// Package attach loads the asobserve BPF programs, attaches them to target executables
// according to the probe table (the loader, Agent), and turns ring-buffer records into
// observer events (the pipeline, pipeline.go). One set of uprobes serves every process of
// an executable; processes are selected in BPF through the pids map.
package attach

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"

	"github.com/asobserve/asobserve/bpf"
	"github.com/asobserve/asobserve/internal/clock"
	"github.com/asobserve/asobserve/internal/inspect"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/probes"
)

const (
	maxRows = int(bpf.AsobserveLimitsMAX_ROWS)
	maxExes = uint32(bpf.AsobserveLimitsMAX_EXES)
	// targetAppSpans: ops look up the target's live OTel spans.
	targetAppSpans = uint32(bpf.AsobserveTargetFlagsTARGET_APP_SPANS)
)

// PollInterval bounds how long a record can wait in the ring buffer: the probes wake the
// agent only when an eighth of the buffer is full.
const PollInterval = 50 * time.Millisecond

// DefaultRingBufferSize is the ring buffer size in bytes (a power of two, page multiple).
const DefaultRingBufferSize = 8 << 20

// Options configure an Agent.
type Options struct {
	RingBufferSize int
	Stages         bool // attach stage probes from the start
	// Tracing attaches, with the operation probes, the probes only spans need: the one
	// that tells which node each single-record operation was sent to (Target.Server,
	// server.address), and those that follow the target's own OTel SDK spans (parents).
	Tracing bool
	Floor   bool // benchmark floor: empty programs on the same probe points
	// ProgramStats turns on the kernel's BPF run-time statistics while the agent runs, for
	// asobserve_bpf_program_* and ProgramStats. They are global: every BPF program on the
	// host, the probes included, then pays two clock reads per run, so they are opt-in.
	ProgramStats bool
	// PIDSlots narrows the pid filter's array to this many slots (a power of two); 0 is
	// all of them. Tests use 1, so that every process but one is found in the hash.
	PIDSlots int
	Logf     func(format string, args ...any)
	// Observers receive every event after the recorder (tracing), and TargetGone when a
	// target is detached.
	Observers []observe.Observer
}

// Target is one observed process.
type Target struct {
	// Target is what observers see of the process: PID, Identity, its clock and nodes.
	observe.Target
	detaching atomic.Bool
	// gen is the attach generation the BPF side stamps on the process's records (never 0).
	gen uint32

	Binary BinaryInfo
	exe    *exeProbes
	nodes  nodeCache
}

// BinaryInfo describes what was attached, for logs and the snapshot.
type BinaryInfo struct {
	Path, GoVersion, ClientModule, ClientVersion string
	Stripped, PIE                                bool
	Functions, ReturnProbes, StageFunctions      int
	// AppSpans: the target uses the OTel Go SDK and its spans can be followed (parents).
	AppSpans   bool
	AttachTime time.Duration
}

type rowInfo struct {
	row probes.Row
}

type exeKey struct{ dev, ino uint64 }

type exeProbes struct {
	key        exeKey
	bin        *inspect.Binary
	exe        *link.Executable
	rows       []resolvedRow
	opLinks    []link.Link
	stageLinks []link.Link
	// procs are the executable's targets, a detaching one beside the attach that reuses
	// its pid.
	procs    map[*Target]bool
	info     BinaryInfo
	slot     uint32
	hostOffs hostOffsets
	// hasHostOffs: the node's host can be read (server.address).
	hasHostOffs bool
	names       *staticNames
}

type resolvedRow struct {
	row probes.Probe
	idx uint32
	fn  *inspect.Func
	// sends are the calls through which the function hands its error on
	// (probes.Row.SentThrough): the return program runs there.
	sends []uint64
}

// Agent owns the BPF objects, the attached executables and the event pipeline.
type Agent struct {
	rec  *metrics.Recorder
	opts Options
	objs bpf.AsobserveObjects

	reader *ringSource

	mu   sync.Mutex
	exes map[exeKey]*exeProbes
	// live is the latest target of each pid, the one Attach and Detach act on.
	live map[int]*Target
	// targets resolves records: watched -> *Target. A detaching target stays until its
	// records are read, also when a new process on its pid is attached meanwhile.
	targets sync.Map
	stages  bool
	pids    *pidFilter
	free    []uint32
	slots   [maxExes]bool

	rows [maxRows]atomic.Pointer[rowInfo]

	statsCloser io.Closer
	exitLink    link.Link
	lastGen     atomic.Uint32

	pipe  *pipeline
	self  *SelfMetrics
	clock *clock.Converter
}

// New loads the BPF programs and maps. It fails with a one-line error naming the cause
// and the remedy when the kernel or the privileges do not allow it.
func New(rec *metrics.Recorder, opts Options) (*Agent, error) {
	if opts.RingBufferSize == 0 {
		opts.RingBufferSize = DefaultRingBufferSize
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if n := opts.RingBufferSize; n < os.Getpagesize() || n&(n-1) != 0 {
		return nil, fmt.Errorf("ring buffer size %d is not a power of two of at least one page (%d): use e.g. 8388608", n, os.Getpagesize())
	}
	// Kernels >= 5.11 account BPF memory to the cgroup and ignore the rlimit; the removal
	// only matters (and can only fail meaningfully) on older ones.
	memlockErr := rlimit.RemoveMemlock()
	spec, err := bpf.LoadAsobserve()
	if err != nil {
		return nil, fmt.Errorf("loading embedded BPF spec: %w", err)
	}
	spec.Maps["events"].MaxEntries = uint32(opts.RingBufferSize)
	if err := spec.Variables["wakeup_every"].Set(wakeupEvery(opts.RingBufferSize)); err != nil {
		return nil, fmt.Errorf("configuring BPF: %w", err)
	}
	mask, err := slotMask(opts.PIDSlots)
	if err != nil {
		return nil, err
	}
	if err := spec.Variables["pid_slot_mask"].Set(mask); err != nil {
		return nil, fmt.Errorf("configuring BPF: %w", err)
	}
	a := &Agent{rec: rec, opts: opts, exes: map[exeKey]*exeProbes{}, live: map[int]*Target{}, stages: opts.Stages}
	if err := spec.LoadAndAssign(&a.objs, nil); err != nil {
		if memlockErr != nil && !errors.Is(err, syscall.EPERM) {
			return nil, fmt.Errorf("loading BPF programs: %v, and raising the memlock rlimit failed (%v): raise `ulimit -l` or grant CAP_SYS_RESOURCE", err, memlockErr)
		}
		return nil, loadError(err)
	}
	a.pids = newPIDFilter(a.objs.PidSlots, a.objs.Pids, mask)
	for i := maxRows - 1; i >= 0; i-- {
		a.free = append(a.free, uint32(i))
	}
	a.exitLink, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sched_process_exit", Program: a.objs.OnExit})
	if err != nil {
		a.objs.Close()
		return nil, fmt.Errorf("attaching sched_process_exit: %w: asobserve needs raw tracepoints (Linux >= 5.15)", err)
	}
	a.reader, err = newRingSource(a.objs.Events)
	if err != nil {
		a.exitLink.Close()
		a.objs.Close()
		return nil, fmt.Errorf("opening ring buffer: %w", err)
	}
	a.self = NewSelfMetrics(rec.Registry)
	a.clock = clock.New()
	a.pipe = newPipeline(a.reader, a, a.kernelCounters, append(observe.Fanout{rec}, opts.Observers...), a.self)
	if opts.Stages {
		rec.SetStagesEnabled(true)
	}
	if opts.ProgramStats {
		a.enableStats()
		_ = rec.Registry.Register(statsCollector{a})
	}
	return a, nil
}

func loadError(err error) error {
	// The verifier's rejections are EACCES too: they are told by their log, not by errno.
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		return fmt.Errorf("loading BPF programs: the kernel verifier rejected them (%v): asobserve needs Linux >= 5.15 with BTF", ve)
	}
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("loading BPF programs: %v: asobserve needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN): run it as root or grant those capabilities", err)
	}
	return fmt.Errorf("loading BPF programs: %w: asobserve needs Linux >= 5.15 with uprobes and ring buffers", err)
}

// Close detaches everything and releases the BPF objects.
func (a *Agent) Close() error {
	// Records already in the ring buffer still count: read them before closing.
	a.pipe.drain(time.Second)
	a.mu.Lock()
	for k, e := range a.exes {
		a.detachExe(e)
		delete(a.exes, k)
	}
	a.mu.Unlock()
	a.PollCounters()
	err := a.reader.Close()
	// Run returns once the reader is closed; its counter poller must be done with the maps.
	a.pipe.stopped(5 * time.Second)
	if a.statsCloser != nil {
		a.statsCloser.Close()
	}
	a.exitLink.Close()
	a.objs.Close()
	return err
}

// Targets lists the observed processes.
func (a *Agent) Targets() []*Target {
	var out []*Target
	a.targets.Range(func(_, v any) bool {
		out = append(out, v.(*Target))
		return true
	})
	return out
}

// Attach starts observing pid. Processes of an executable that is already attached reuse
// its probes. On error nothing is left attached.
//
// A pid whose previous target is still being detached (its process exited and a new one
// took the pid) is attached under a new generation: the old target keeps its records.
func (a *Agent) Attach(pid int, id *metrics.Identity) (*Target, error) {
	key, err := exeKeyOf(pid)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	prev := a.live[pid]
	if prev != nil && !prev.detaching.Load() {
		return nil, fmt.Errorf("pid %d is already attached", pid)
	}
	e := a.exes[key]
	if e == nil {
		bin, err := inspect.OpenPID(pid)
		if err != nil {
			return nil, err
		}
		e, err = a.attachExe(key, bin)
		if err != nil {
			bin.Close()
			a.self.ProbeAttachErrors.Inc()
			// The kernel resolves /proc/PID/exe per link, so an exit mid-attach shows up
			// as a bare ENOENT from whichever link came next.
			if _, gone := exeKeyOf(pid); errors.Is(gone, inspect.ErrNoProcess) {
				return nil, fmt.Errorf("pid %d exited while it was being attached (%v): nothing is left attached: %w", pid, err, inspect.ErrNoProcess)
			}
			return nil, err
		}
		a.exes[key] = e
	}
	t := &Target{Binary: e.info, exe: e, gen: a.nextGen()}
	t.Target = observe.Target{PID: pid, Identity: id, Wall: a.wall, Server: t.Server}
	bias, err := loadBias(pid)
	if err == nil {
		var flags uint32
		if e.info.AppSpans && a.opts.Tracing {
			flags |= targetAppSpans
		}
		if prev != nil {
			// What the previous owner's probes left keyed by this pid (operations it died
			// with) must not be taken for the new process's; its Detach leaves the pid's
			// entries to the newer attach.
			a.releaseProcessState(uint32(pid))
		}
		roLo, roSize := e.names.rodata()
		err = a.pids.watch(t.watched(), bpf.AsobserveTarget{Bias: bias, Exe: e.slot, Flags: flags, Gen: t.gen, RoLo: roLo, RoSize: roSize})
	}
	if err != nil {
		if len(e.procs) == 0 {
			a.detachExe(e)
			delete(a.exes, key)
		}
		return nil, fmt.Errorf("adding pid %d to the pid filter: %w", pid, err)
	}
	e.procs[t] = true
	a.live[pid] = t
	a.targets.Store(t.watched(), t)
	a.self.AttachedProcesses.Inc()
	return t, nil
}

// nextGen returns a generation no attach of this agent had; 0 is never one. Called with
// a.mu held.
func (a *Agent) nextGen() uint32 {
	gen := a.lastGen.Add(1)
	if gen == 0 {
		gen = a.lastGen.Add(1)
	}
	return gen
}

func (t *Target) watched() watched { return watched{uint32(t.PID), t.gen} }

// unwatch removes t's process from the BPF pid filter, unless the entry is already a newer
// attach's (or gone: the exit tracepoint deletes it when the process ends). Called with
// a.mu held, which Attach holds while it writes the entry.
func (a *Agent) unwatch(t *Target) { a.pids.unwatch(t.watched()) }

// Detach stops observing pid; the executable's probes go when its last process goes.
//
// The pid leaves the BPF filter at once, but its records already in the ring buffer are
// still attributed to it: the target is forgotten (and the executable's probes closed)
// once the agent has read everything the kernel produced before the detach; then the
// observers hear TargetGone.
//
// A new process that takes the pid meanwhile can be attached before Detach returns: the
// records of each are told apart by generation, and Detach leaves the new one's entries.
func (a *Agent) Detach(pid int) error {
	a.mu.Lock()
	t := a.live[pid]
	if t == nil {
		a.mu.Unlock()
		return fmt.Errorf("pid %d is not attached", pid)
	}
	if !t.detaching.CompareAndSwap(false, true) {
		a.mu.Unlock()
		return fmt.Errorf("pid %d is already being detached", pid)
	}
	a.unwatch(t)
	a.mu.Unlock()
	a.pipe.retire(t, 3*time.Second, func() {
		if _, ok := a.targets.LoadAndDelete(t.watched()); ok {
			a.self.AttachedProcesses.Dec()
		}
	})
	if detachDrained != nil {
		detachDrained(pid)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.live[pid] == t {
		delete(a.live, pid)
		a.releaseProcessState(uint32(pid))
	}
	delete(t.exe.procs, t)
	if len(t.exe.procs) == 0 && a.exes[t.exe.key] == t.exe {
		a.detachExe(t.exe)
		delete(a.exes, t.exe.key)
	}
	return nil
}

// wakeupEvery is how many records each CPU submits per wakeup of the agent: all CPUs
// together leave at most an eighth of the ring unannounced.
func wakeupEvery(ringSize int) uint64 {
	cpus, err := ebpf.PossibleCPU()
	if err != nil || cpus < 1 {
		cpus = runtime.NumCPU()
	}
	return max(1, uint64(ringSize/8/cpus/binary.Size(bpf.AsobserveEventOp{})))
}

func exeKeyOf(pid int) (exeKey, error) {
	var st syscall.Stat_t
	path := fmt.Sprintf("/proc/%d/exe", pid)
	if err := syscall.Stat(path, &st); err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ESRCH) {
			return exeKey{}, fmt.Errorf("no process with pid %d: %w: check the pid (`pgrep -f <name>`)", pid, inspect.ErrNoProcess)
		}
		return exeKey{}, fmt.Errorf("cannot read %s: %v: run asobserve as root or with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH: %w", path, err, inspect.ErrExeUnreadable)
	}
	return exeKey{dev: st.Dev, ino: st.Ino}, nil
}

func (a *Agent) attachExe(key exeKey, bin *inspect.Binary) (*exeProbes, error) {
	start := time.Now()
	table, err := probes.ForVersion(bin.ClientMajor, bin.ClientVersion)
	if err != nil {
		return nil, err
	}
	if table == nil {
		return nil, fmt.Errorf("%s uses %s %s, which this asobserve build has no probe table for: supported majors are %v",
			bin.Target, bin.ClientModule, bin.ClientVersion, probes.SupportedMajors())
	}
	ex, err := link.OpenExecutable(bin.Path)
	if err != nil {
		return nil, fmt.Errorf("opening %s for uprobes: %w", bin.Target, err)
	}
	e := &exeProbes{key: key, bin: bin, exe: ex, procs: map[*Target]bool{}, slot: maxExes}
	e.info = BinaryInfo{Path: bin.Target, GoVersion: bin.GoVersion, ClientModule: bin.ClientModule,
		ClientVersion: bin.ClientVersion, Stripped: bin.Stripped, PIE: bin.PIE}
	fail := func(err error) (*exeProbes, error) {
		a.detachExe(e)
		return nil, err
	}
	slot, ok := a.takeSlot()
	if !ok {
		return fail(fmt.Errorf("too many distinct executables attached (limit %d): detach some first", maxExes))
	}
	e.slot = slot
	e.names = openStaticNames(bin)
	if err := a.writeNested(e); err != nil {
		return fail(err)
	}
	offs := newFieldOffsets(bin)
	e.hostOffs, e.hasHostOffs = nodeOffsets(offs)
	spanCtx, appSpans := appSpanOffset(bin)
	for _, row := range table {
		sym := row.Symbol
		if !row.External {
			sym = bin.ClientSymbol(row.Symbol)
		}
		if row.Optional && !bin.HasFunc(sym) {
			continue
		}
		if row.FollowsAppSpans() && !appSpans {
			continue
		}
		fn, err := bin.Func(sym)
		if err != nil {
			return fail(err)
		}
		cfg, err := rowConfig(row, offs, spanCtx)
		var sends []uint64
		if err == nil && row.SentThrough != "" {
			if sends = bin.CallsTo(fn, row.SentThrough); len(sends) > 0 {
				cfg.Flags |= uint8(probes.FlagAtSend)
			} else {
				a.opts.Logf("%s: %s makes no call of %s: its errors count where it is entered, so an error it drops counts too", bin.Target, row.Symbol, row.SentThrough)
			}
		}
		if err != nil && row.IsStage() {
			// A stage this build cannot place costs its samples, never the attach.
			a.opts.Logf("%s: stage probe %s skipped: %v", bin.Target, row.Symbol, err)
			continue
		}
		if err != nil {
			return fail(err)
		}
		if len(a.free) == 0 {
			return fail(fmt.Errorf("too many probed functions (limit %d rows): detach other executables", maxRows))
		}
		idx := a.free[len(a.free)-1]
		a.free = a.free[:len(a.free)-1]
		if err := a.objs.Rows.Put(idx, cfg); err != nil {
			a.free = append(a.free, idx)
			return fail(fmt.Errorf("writing probe row: %w", err))
		}
		a.rows[idx].Store(&rowInfo{row: row.Row})
		e.rows = append(e.rows, resolvedRow{row: row, idx: idx, fn: fn, sends: sends})
	}
	for _, r := range e.rows {
		switch {
		case r.row.Kind == probes.KindSpanStart:
			e.info.AppSpans = true
		case r.row.IsStage():
			e.info.StageFunctions++
		case r.row.Core():
			e.info.Functions++
			if r.row.Kind.Return() {
				e.info.ReturnProbes += len(r.fn.RetOffsets)
			}
		}
	}
	if e.info.Functions == 0 {
		return fail(fmt.Errorf("%s uses %s %s but none of its operation functions are in the binary: this client version is not supported by this asobserve build",
			bin.Target, bin.ClientModule, bin.ClientVersion))
	}
	if err := a.attachLinks(e, false); err != nil {
		return fail(err)
	}
	if a.stages {
		if err := a.attachLinks(e, true); err != nil {
			return fail(err)
		}
	}
	e.info.AttachTime = time.Since(start)
	// Everything needed later (rows, offsets, probe points) is resolved: drop the
	// symbol index and DWARF so they do not stay in the agent's memory.
	bin.Close()
	e.bin = nil
	debug.FreeOSMemory()
	return e, nil
}

// attachLinks attaches the op (or stage) probes of an executable: with two multi-uprobe
// links when the kernel has them, else one uprobe per probe point.
func (a *Agent) attachLinks(e *exeProbes, stages bool) error {
	if attachFault != nil {
		if err := attachFault(e.info.Path, stages); err != nil {
			return err
		}
	}
	var entry, ret probePoints
	for _, r := range e.rows {
		in := a.withOps(r.row)
		if stages {
			in = r.row.IsStage() && !in
		}
		if !in {
			continue
		}
		if r.row.Kind.Entry() {
			entry.add(r.fn.EntryOffset, r.idx)
		}
		if r.row.Kind.Return() {
			for _, off := range r.fn.RetOffsets {
				ret.add(off, r.idx)
			}
		}
		for _, off := range r.sends {
			ret.add(off, r.idx)
		}
	}
	links, err := a.attachMulti(e, entry, ret)
	if errors.Is(err, ebpf.ErrNotSupported) {
		links, err = a.attachSingle(e, entry, ret)
	}
	if err != nil {
		return err
	}
	if stages {
		e.stageLinks = append(e.stageLinks, links...)
	} else {
		e.opLinks = append(e.opLinks, links...)
	}
	return nil
}

// detachDrained, set only by tests, runs in Detach once the target's records are read and
// it is forgotten, before its per-pid state is released: where a new process on the pid
// can be attached.
var detachDrained func(pid int)

// attachFault, set only by tests, makes attachLinks fail for the executables it picks.
var attachFault func(path string, stages bool) error

// withOps reports whether a row is attached for as long as the executable is, rather than
// only while stage profiling is on.
func (a *Agent) withOps(r probes.Probe) bool {
	return r.Core() || r.ForTracing() && a.opts.Tracing
}

type probePoints struct{ offsets, cookies []uint64 }

func (p *probePoints) add(off uint64, row uint32) {
	p.offsets = append(p.offsets, off)
	p.cookies = append(p.cookies, uint64(row))
}

// attachMulti attaches each program with one multi-uprobe link; attachSingle with one
// uprobe per probe point. Both undo what they attached when a link fails.
func (a *Agent) attachMulti(e *exeProbes, entry, ret probePoints) ([]link.Link, error) {
	progs := [2]*ebpf.Program{a.objs.ProbeEntryMulti, a.objs.ProbeReturnMulti}
	if a.opts.Floor {
		progs = [2]*ebpf.Program{a.objs.ProbeEmptyMulti, a.objs.ProbeEmptyMulti}
	}
	return attachSets(progs, entry, ret, func(prog *ebpf.Program, pts probePoints) ([]link.Link, error) {
		if len(pts.offsets) == 0 {
			return nil, nil
		}
		l, err := e.exe.UprobeMulti(nil, prog, &link.UprobeMultiOptions{Addresses: pts.offsets, Cookies: pts.cookies})
		if err != nil {
			if errors.Is(err, ebpf.ErrNotSupported) {
				return nil, err
			}
			return nil, fmt.Errorf("attaching %d uprobes to %s: %w", len(pts.offsets), e.info.Path, err)
		}
		return []link.Link{l}, nil
	})
}

func (a *Agent) attachSingle(e *exeProbes, entry, ret probePoints) ([]link.Link, error) {
	progs := [2]*ebpf.Program{a.objs.ProbeEntry, a.objs.ProbeReturn}
	if a.opts.Floor {
		progs = [2]*ebpf.Program{a.objs.ProbeEmpty, a.objs.ProbeEmpty}
	}
	return attachSets(progs, entry, ret, func(prog *ebpf.Program, pts probePoints) ([]link.Link, error) {
		var links []link.Link
		for i, off := range pts.offsets {
			l, err := e.exe.Uprobe("", prog, &link.UprobeOptions{Address: off, Cookie: pts.cookies[i]})
			if err != nil {
				closeLinks(links)
				return nil, fmt.Errorf("attaching uprobe to %s at file offset %#x: %w", e.info.Path, off, err)
			}
			links = append(links, l)
		}
		return links, nil
	})
}

// attachSets attaches the entry points with progs[0] and the return points with progs[1].
func attachSets(progs [2]*ebpf.Program, entry, ret probePoints, attach func(*ebpf.Program, probePoints) ([]link.Link, error)) ([]link.Link, error) {
	var links []link.Link
	for i, pts := range [2]probePoints{entry, ret} {
		l, err := attach(progs[i], pts)
		if err != nil {
			closeLinks(links)
			return nil, err
		}
		links = append(links, l...)
	}
	return links, nil
}

func closeLinks(links []link.Link) {
	for _, l := range links {
		l.Close()
	}
}

func (a *Agent) detachExe(e *exeProbes) {
	closeLinks(e.stageLinks)
	closeLinks(e.opLinks)
	e.stageLinks, e.opLinks = nil, nil
	for _, r := range e.rows {
		a.rows[r.idx].Store(nil)
		a.free = append(a.free, r.idx)
	}
	e.rows = nil
	if e.slot < maxExes {
		a.slots[e.slot] = false
		e.slot = maxExes
	}
	for t := range e.procs {
		a.unwatch(t)
		if a.live[t.PID] == t {
			delete(a.live, t.PID)
		}
		if _, ok := a.targets.LoadAndDelete(t.watched()); ok {
			a.self.AttachedProcesses.Dec()
			a.pipe.obs.TargetGone(&t.Target)
		}
	}
	if e.bin != nil {
		e.bin.Close()
	}
	if e.names != nil {
		e.names.close()
	}
}

func (a *Agent) takeSlot() (uint32, bool) {
	for i := range a.slots {
		if !a.slots[i] {
			a.slots[i] = true
			return uint32(i), true
		}
	}
	return 0, false
}

// writeNested stores the address ranges of client functions whose calls to public
// operations are internal (see probes.NestedCallers), and of the operations they call.
func (a *Agent) writeNested(e *exeProbes) error {
	var nr bpf.AsobserveNestRanges
	if err := e.funcRanges(probes.NestedFor(e.bin.ClientMajor, e.bin.ClientVersion), nr.Callers[:], "nested-caller"); err != nil {
		return err
	}
	if err := e.funcRanges(probes.NestedCallees, nr.Callees[:], "nested-callee"); err != nil {
		return err
	}
	if err := a.objs.Nested.Put(e.slot, nr); err != nil {
		return fmt.Errorf("writing nested-caller ranges: %w", err)
	}
	return nil
}

// funcRanges fills dst, from its start, with the link-time address ranges of client
// functions (relative symbols), skipping those the binary lacks (inlined everywhere, or not
// in its version); the programs stop at the first empty range.
func (e *exeProbes) funcRanges(rels []string, dst []bpf.AsobserveAddrRange, what string) error {
	n := 0
	for _, rel := range rels {
		sym := e.bin.ClientSymbol(rel)
		if !e.bin.HasFunc(sym) {
			continue
		}
		fn, err := e.bin.Func(sym)
		if err != nil {
			return err
		}
		if n == len(dst) {
			return fmt.Errorf("more %s functions than the BPF table holds (%d)", what, len(dst))
		}
		dst[n].Lo, dst[n].Hi = fn.Addr, fn.Addr+fn.Size
		n++
	}
	return nil
}

// SetStages attaches or detaches the stage probes of every attached executable. Turning
// them on is all or nothing: when one executable fails, those already switched lose their
// stage links again, so that the links always match StagesEnabled.
func (a *Agent) SetStages(on bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if on == a.stages {
		return nil
	}
	if on {
		var switched []*exeProbes
		for _, e := range a.exes {
			// The process the executable was opened through may be gone; any live
			// process of it names the same file.
			for t := range e.procs {
				if ex, err := link.OpenExecutable(fmt.Sprintf("/proc/%d/exe", t.PID)); err == nil {
					e.exe = ex
					break
				}
			}
			if err := a.attachLinks(e, true); err != nil {
				for _, done := range switched {
					closeLinks(done.stageLinks)
					done.stageLinks = nil
				}
				return fmt.Errorf("stage profiling stays off: %w", err)
			}
			switched = append(switched, e)
		}
	} else {
		for _, e := range a.exes {
			closeLinks(e.stageLinks)
			e.stageLinks = nil
		}
	}
	a.stages = on
	a.rec.SetStagesEnabled(on)
	return nil
}

// StagesEnabled reports whether stage probes are attached.
func (a *Agent) StagesEnabled() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stages
}

// StageProbeCount returns the number of attached stage uprobes (for tests and logs).
func (a *Agent) StageProbeCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, e := range a.exes {
		n += len(e.stageLinks)
	}
	return n
}
