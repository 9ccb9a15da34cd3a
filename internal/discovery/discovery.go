// Package discovery finds running processes whose executable links aerospike-client-go
// v6, v7 or v8, and follows them as they start, exec and exit.
//
// It scans /proc at an interval and, where the kernel allows, also listens to a raw
// tracepoint program on sched_process_exec/sched_process_exit so that new processes are
// checked at once. Each executable, keyed by (device, inode), is inspected once.
package discovery

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ExeKey identifies an executable file independent of the path a process sees it under.
type ExeKey struct {
	Dev uint64
	Ino uint64
}

// Process is a discovered client process.
type Process struct {
	PID int
	Exe ExeKey
	// ExePath is the executable as reachable from the host: /proc/PID/root followed by the
	// path the process sees. Attach through ExeLink, which survives a deleted or replaced file.
	ExePath string
	// ExeName is the path as the process itself sees it (from readlink /proc/PID/exe).
	ExeName string
	// NSpid is the pid in the innermost PID namespace (equal to PID outside containers).
	NSpid int
	// StartTime is /proc/PID/stat field 22 in clock ticks since boot; it tells a reused
	// pid from the original process.
	StartTime uint64
	// Module is the client module path, e.g. github.com/aerospike/aerospike-client-go/v7.
	Module        string
	ModuleVersion string
	GoVersion     string
}

// ExeLink is the /proc path to attach uprobes through.
func (p Process) ExeLink(procRoot string) string {
	if procRoot == "" {
		procRoot = "/proc"
	}
	return filepath.Join(procRoot, strconv.Itoa(p.PID), "exe")
}

// Kind tells additions from removals.
type Kind int

const (
	Added Kind = iota + 1
	Removed
)

func (k Kind) String() string {
	switch k {
	case Added:
		return "added"
	case Removed:
		return "removed"
	}
	return "unknown"
}

// Event reports a client process that appeared or went away. For Removed only PID (and
// the fields known at discovery) are meaningful.
type Event struct {
	Kind Kind
	Process
}

// ClientModules are the module paths that make a process a candidate.
var ClientModules = []string{
	"github.com/aerospike/aerospike-client-go/v6",
	"github.com/aerospike/aerospike-client-go/v7",
	"github.com/aerospike/aerospike-client-go/v8",
}

// Options configure a Watcher.
type Options struct {
	// Interval between full /proc scans; default 5 s.
	Interval time.Duration
	// Include and Exclude are path.Match globs tried against both the executable's path (as
	// the process sees it) and its base name. Empty Include means every executable.
	// Exclude wins over Include.
	Include, Exclude []string
	// ProcRoot is the proc filesystem; default /proc. Tests point it at a fake tree.
	ProcRoot string
	// NoExecProbe disables the exec/exit tracepoint program (scan only).
	NoExecProbe bool
	// Logger receives one-line notices; default slog.Default().
	Logger *slog.Logger
}

type verdict struct {
	client                     bool
	module, version, goVersion string
	size                       int64
	mtime                      int64
}

type procState struct {
	start   uint64
	exe     ExeKey
	tracked bool
	exited  bool // exit seen by the tracepoint before /proc dropped the pid
	proc    Process
}

// Watcher emits Events for client processes. Use it from one goroutine: Run owns all state.
type Watcher struct {
	opts     Options
	events   chan Event
	verdicts map[ExeKey]verdict
	procs    map[int]*procState
	inspect  func(exe string) verdict

	// ExecProbeActive reports, after Run has started, whether the tracepoint program loaded.
	execActive chan bool
}

// New builds a Watcher. Nothing happens until Run.
func New(o Options) *Watcher {
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Watcher{
		opts:       o,
		events:     make(chan Event, 256),
		verdicts:   map[ExeKey]verdict{},
		procs:      map[int]*procState{},
		inspect:    inspectBuildInfo,
		execActive: make(chan bool, 1),
	}
}

// Events delivers additions and removals. It is closed when Run returns.
func (w *Watcher) Events() <-chan Event { return w.events }

// ExecProbeActive blocks until Run has tried to load the tracepoint program and reports
// whether it runs.
func (w *Watcher) ExecProbeActive() bool {
	v := <-w.execActive
	w.execActive <- v
	return v
}

// Run scans until ctx ends, then closes Events.
func (w *Watcher) Run(ctx context.Context) error {
	defer close(w.events)
	var pids <-chan procSignal
	if !w.opts.NoExecProbe {
		ch, stop, err := startExecProbe(ctx)
		if err != nil {
			w.opts.Logger.Warn("discovery: exec tracepoint unavailable, relying on the /proc scan only", "interval", w.opts.Interval, "err", err)
		} else {
			defer stop()
			pids = ch
		}
	}
	w.execActive <- pids != nil

	tick := time.NewTicker(w.opts.Interval)
	defer tick.Stop()
	if !w.scan(ctx) {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if !w.scan(ctx) {
				return nil
			}
		case sig, ok := <-pids:
			if !ok {
				pids = nil
				continue
			}
			var evs []Event
			if sig.exit {
				evs = w.exited(sig.pid)
			} else {
				evs = w.check(sig.pid, true)
			}
			if !w.emit(ctx, evs) {
				return nil
			}
		}
	}
}

func (w *Watcher) emit(ctx context.Context, evs []Event) bool {
	for _, ev := range evs {
		select {
		case w.events <- ev:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// scan walks /proc once and reconciles it with what is known.
func (w *Watcher) scan(ctx context.Context) bool {
	entries, err := os.ReadDir(w.opts.ProcRoot)
	if err != nil {
		w.opts.Logger.Warn("discovery: cannot list proc", "err", err)
		return true
	}
	seen := make(map[int]bool, len(entries))
	var evs []Event
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		seen[pid] = true
		evs = append(evs, w.check(pid, false)...)
	}
	for pid, st := range w.procs {
		if !seen[pid] {
			if st.tracked {
				evs = append(evs, Event{Kind: Removed, Process: st.proc})
			}
			delete(w.procs, pid)
		}
	}
	return w.emit(ctx, evs)
}

// exited handles the tracepoint's exit notice: the pid stays known (with its start time)
// until /proc drops it, so a zombie is not rediscovered.
//
// The notice names only a pid, and it can be handled late: a scan may already have seen
// the process gone and a new process start on its pid (the exec notices queue behind the
// exit). Such a stale notice must not end the new owner, which would then never be
// reported: it counts only if the process /proc shows on the pid is exiting.
func (w *Watcher) exited(pid int) []Event {
	st := w.procs[pid]
	if st == nil || st.exited {
		return nil
	}
	start, exiting, err := readExitState(w.opts.ProcRoot, pid)
	if err != nil || start != st.start {
		return w.check(pid, false) // gone, or another process: check reconciles both
	}
	if !exiting {
		return nil
	}
	st.exited = true
	if st.tracked {
		st.tracked = false
		return []Event{{Kind: Removed, Process: st.proc}}
	}
	return nil
}

// check brings one pid up to date. execed says the process has just exec'd, so its
// executable may have changed even though pid and start time did not.
func (w *Watcher) check(pid int, execed bool) []Event {
	var evs []Event
	st := w.procs[pid]
	start, err := readStartTime(w.opts.ProcRoot, pid)
	if err != nil {
		if st != nil {
			if st.tracked {
				evs = append(evs, Event{Kind: Removed, Process: st.proc})
			}
			delete(w.procs, pid)
		}
		return evs
	}
	if st != nil && st.start != start {
		// PID reuse: the old process is gone, this is a new one.
		if st.tracked {
			evs = append(evs, Event{Kind: Removed, Process: st.proc})
		}
		delete(w.procs, pid)
		st = nil
	}
	if st != nil && st.exited {
		return evs
	}
	exeLink := filepath.Join(w.opts.ProcRoot, strconv.Itoa(pid), "exe")
	key, fi, err := statExe(exeLink)
	if err != nil {
		// Kernel thread, zombie or a process that is exiting.
		if st != nil && st.tracked {
			evs = append(evs, Event{Kind: Removed, Process: st.proc})
			st.tracked = false
		}
		if st == nil {
			w.procs[pid] = &procState{start: start}
		} else {
			st.exe = ExeKey{}
		}
		return evs
	}
	if st != nil && st.exe == key {
		return evs
	}
	if st != nil && st.tracked {
		// Same process, new executable (exec).
		evs = append(evs, Event{Kind: Removed, Process: st.proc})
	}
	st = &procState{start: start, exe: key}
	w.procs[pid] = st

	name, err := os.Readlink(exeLink)
	if err != nil {
		return evs
	}
	name = strings.TrimSuffix(name, " (deleted)")
	if !w.selected(name) {
		return evs
	}
	v := w.verdict(key, fi, exeLink)
	if !v.client {
		return evs
	}
	nspid, err := readNSpid(w.opts.ProcRoot, pid)
	if err != nil {
		return evs
	}
	st.tracked = true
	st.proc = Process{
		PID:           pid,
		Exe:           key,
		ExePath:       filepath.Join(w.opts.ProcRoot, strconv.Itoa(pid), "root", name),
		ExeName:       name,
		NSpid:         nspid,
		StartTime:     start,
		Module:        v.module,
		ModuleVersion: v.version,
		GoVersion:     v.goVersion,
	}
	return append(evs, Event{Kind: Added, Process: st.proc})
}

func (w *Watcher) selected(exe string) bool {
	base := path.Base(exe)
	match := func(globs []string) bool {
		for _, g := range globs {
			if ok, _ := path.Match(g, exe); ok {
				return true
			}
			if ok, _ := path.Match(g, base); ok {
				return true
			}
		}
		return false
	}
	if len(w.opts.Include) > 0 && !match(w.opts.Include) {
		return false
	}
	return !match(w.opts.Exclude)
}

// verdict inspects an executable once per (dev, inode); size and mtime guard against an
// inode number being reused by a different file.
func (w *Watcher) verdict(key ExeKey, fi fs.FileInfo, exeLink string) verdict {
	if v, ok := w.verdicts[key]; ok && v.size == fi.Size() && v.mtime == fi.ModTime().UnixNano() {
		return v
	}
	v := w.inspect(exeLink)
	v.size, v.mtime = fi.Size(), fi.ModTime().UnixNano()
	w.verdicts[key] = v
	return v
}

func inspectBuildInfo(exe string) verdict {
	bi, err := buildinfo.ReadFile(exe)
	if err != nil {
		return verdict{}
	}
	for _, m := range bi.Deps {
		if m.Replace != nil && isClientModule(m.Replace.Path) {
			return verdict{client: true, module: m.Replace.Path, version: m.Replace.Version, goVersion: bi.GoVersion}
		}
		if isClientModule(m.Path) {
			return verdict{client: true, module: m.Path, version: m.Version, goVersion: bi.GoVersion}
		}
	}
	return verdict{}
}

func isClientModule(p string) bool {
	for _, m := range ClientModules {
		if p == m {
			return true
		}
	}
	return false
}

// readStartTime returns field 22 of /proc/PID/stat.
func readStartTime(procRoot string, pid int) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	return parseStartTime(b)
}

func parseStartTime(stat []byte) (uint64, error) {
	fields, err := statFields(stat)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// pfExiting is the kernel's PF_EXITING task flag, set when a task starts to exit and
// never cleared.
const pfExiting = 0x4

// readExitState returns the start time of the process on pid and whether its
// thread-group leader is exiting or dead (PF_EXITING in /proc/PID/stat field 9).
func readExitState(procRoot string, pid int) (start uint64, exiting bool, err error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, false, err
	}
	fields, err := statFields(b)
	if err != nil {
		return 0, false, err
	}
	flags, err := strconv.ParseUint(fields[6], 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("malformed stat flags: %w", err)
	}
	start, err = strconv.ParseUint(fields[19], 10, 64)
	return start, flags&pfExiting != 0, err
}

// statFields returns the fields of /proc/PID/stat from field 3 on. The command name
// (field 2) may hold spaces and parentheses, so fields are counted after the last ')'.
func statFields(stat []byte) ([]string, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return nil, errors.New("malformed stat")
	}
	// starttime is field 22, the 20th after ')'.
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 20 {
		return nil, errors.New("malformed stat: too few fields")
	}
	return fields, nil
}

func readNSpid(procRoot string, pid int) (int, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	return parseNSpid(b, pid)
}

// parseNSpid returns the last (innermost) NSpid entry. Kernels before 4.1 have no NSpid
// line: the pid is then the host pid.
func parseNSpid(status []byte, pid int) (int, error) {
	for _, line := range strings.Split(string(status), "\n") {
		rest, ok := strings.CutPrefix(line, "NSpid:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, fmt.Errorf("empty NSpid line")
		}
		return strconv.Atoi(f[len(f)-1])
	}
	return pid, nil
}
