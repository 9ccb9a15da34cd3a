//go:build linux

// Package soak_test runs the node daemon as it runs for months (discovery, the BPF agent
// with stage probes and tracing, Redis publishing) against a stream of short-lived client
// processes, and checks that it counts every operation and that nothing it keeps per
// process outlives the process: not in the agent's memory, goroutines, file descriptors,
// BPF links, nor in any BPF map.
package soak_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/daemon"
	"github.com/asobserve/asobserve/internal/discovery"
	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/publish"
	"github.com/asobserve/asobserve/internal/snapshot"
	"github.com/asobserve/asobserve/internal/spanfeed"
	"github.com/asobserve/asobserve/internal/testserver"
)

const (
	// ProcessesEnv sets how many target processes the soak starts (`make soak`: 1000).
	ProcessesEnv = "ASOBSERVE_SOAK_PROCESSES"
	// ReportEnv names a Markdown file the soak writes its figures to (`make soak`).
	ReportEnv = "ASOBSERVE_SOAK_REPORT"

	maxAlive   = 20
	opsPerKind = 2 // the targets' -count: each of their operations this many times
	// preloadPuts: a target writes its 20 keys twice (k and v) before its ready line; the
	// daemon attaches at exec, so it counts them too.
	preloadPuts = 40
	killedSet   = "slow" // the killed targets' set: the server holds each op there
	killedDelay = 20 * time.Millisecond

	redisBin = "/usr/bin/redis-server"
)

// Margins over the baseline taken after the warm-up wave. Per-process state is checked
// exactly (BPF map entries, links, tracing resources); memory, goroutines and descriptors
// move with the runtime's and the test's own bookkeeping, so they get a stated slack.
const (
	rssMargin        = 16 << 20
	goroutineMargin  = 5
	fdMargin         = 5
	leakCheckTimeout = 30 * time.Second
)

type kind struct {
	name  string
	build e2etest.TargetBuild
}

// kinds mixes the client majors with stripped and PIE builds.
var kinds = []kind{
	{"v6", e2etest.TargetBuild{Client: "v6"}},
	{"v7", e2etest.TargetBuild{Client: "v7"}},
	{"v8", e2etest.TargetBuild{Client: "v8"}},
	{"v7-stripped", e2etest.TargetBuild{Client: "v7", Flags: []string{"-ldflags=-s -w"}}},
	{"v8-pie", e2etest.TargetBuild{Client: "v8", Flags: []string{"-buildmode=pie"}}},
	{"v6-pie-stripped", e2etest.TargetBuild{Client: "v6", Flags: []string{"-buildmode=pie", "-ldflags=-s -w"}}},
}

// plan says how process i of the stream is started and ended.
type plan struct {
	kind       kind
	namespaced bool // its own PID and mount namespace
	killed     bool // SIGKILLed while its operations are held in flight by the server
	reusePID   bool // started on the pid of a process that just exited
}

func planFor(i int) plan {
	return plan{kind: kinds[i%len(kinds)], namespaced: i%4 == 1, killed: i%7 == 3, reusePID: i%5 == 2}
}

func (p plan) service() string {
	if p.killed {
		return "soak-killed" // its truth dies with it: counted, never compared
	}
	return "soak-" + p.kind.name
}

// opCounter counts the operations the agent delivered per pid, and per attach: pids are
// reused, by the starts forced onto a freed pid and by the ones after them.
type opCounter struct {
	mu        sync.Mutex
	n         map[int]int
	perTarget map[*observe.Target]int
}

func (c *opCounter) Op(t *observe.Target, _ observe.Op) {
	c.mu.Lock()
	c.n[t.PID]++
	c.perTarget[t]++
	c.mu.Unlock()
}

func (c *opCounter) Stage(*observe.Target, observe.Stage) {}

func (c *opCounter) TargetGone(*observe.Target) {}

// reset forgets a pid before a new process runs on it.
func (c *opCounter) reset(pid int) {
	c.mu.Lock()
	delete(c.n, pid)
	c.mu.Unlock()
}

func (c *opCounter) seen(pid int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[pid]
}

// seenBy returns and forgets the operations delivered for one attach.
func (c *opCounter) seenBy(t *observe.Target) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.perTarget[t]
	delete(c.perTarget, t)
	return n
}

// agentAttacher is the daemon's adapter of cmd/asobserve: the agent opens /proc/PID/exe.
type agentAttacher struct{ a *attach.Agent }

func (a agentAttacher) Attach(pid int, _ string, id *metrics.Identity) error {
	_, err := a.a.Attach(pid, id)
	return err
}

func (a agentAttacher) Detach(pid int) error { return a.a.Detach(pid) }

type soak struct {
	t       *testing.T
	agent   *attach.Agent
	rec     *metrics.Recorder
	feed    *spanfeed.Feed
	ops     *opCounter
	hosts   []string
	exes    map[string]string // kind name -> executable
	pub     *publish.Publisher
	daemon  *daemon.Daemon
	redis   *redis.Client
	redisKy string

	spawnMu sync.Mutex // every start: ns_last_pid names the next pid only if nothing forks between

	mu           sync.Mutex
	want         map[string]map[e2etest.Key]e2etest.Series // per service
	freedPIDs    []int
	reuseTried   int
	reused       int
	killed       int
	namespaced   int
	peakTargets  int
	peakRetained int
	failedEarly  int // processes whose subtest failed
}

func TestSoak(t *testing.T) {
	e2etest.RequireRoot(t)
	n := defaultProcesses
	if v := os.Getenv(ProcessesEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 2*maxAlive {
			t.Fatalf("%s=%q: want a count of at least %d", ProcessesEnv, v, 2*maxAlive)
		}
	}
	s := start(t)

	// The warm-up wave loads what stays for the agent's life (probe tables, the BPF
	// programs' first use, the runtime's pools); the baseline is taken after it.
	warm := maxAlive
	s.runStream(0, warm)
	base := s.quiesce("after the warm-up")
	s.runStream(warm, n)
	final := s.quiesce("at the end")

	for _, svc := range slices.Sorted(maps.Keys(s.want)) {
		got := e2etest.OpSeries(t, s.rec.Registry, svc)
		var gotN, wantN uint64
		for _, v := range got {
			gotN += v.Count
		}
		for _, v := range s.want[svc] {
			wantN += v.Count
		}
		t.Logf("%s: %d operations observed, %d done", svc, gotN, wantN)
		e2etest.CompareCounts(t, got, s.want[svc])
	}
	killedOps := e2etest.OpSeries(t, s.rec.Registry, "soak-killed")
	if s.killed > 0 && len(killedOps) == 0 {
		t.Errorf("%d targets were killed mid-operation but none of their operations was counted", s.killed)
	}
	if s.reuseTried > 0 && s.reused == 0 {
		t.Errorf("no start of %d got the pid it asked for: PID reuse was not exercised", s.reuseTried)
	}
	// A record that matches no attached target (pid and attach generation) is counted
	// nowhere: a stage or operation missing from the figures above.
	if n := gauge(t, s.rec.Registry, "asobserve_events_invalid_total"); n != 0 {
		t.Errorf("%.0f records matched no attached target: counted nowhere", n)
	}
	if s.peakRetained == 0 {
		t.Errorf("the tracing feed never held a target: tracing was not exercised")
	}
	if st := s.pub.Stats(); st.Pushed == 0 || st.Errors != 0 {
		t.Errorf("redis publisher: %+v, want snapshots pushed and no errors", st)
	}
	if n, err := s.redis.LLen(context.Background(), s.redisKy).Result(); err != nil || n == 0 {
		t.Errorf("redis list %s has %d snapshots (%v)", s.redisKy, n, err)
	}
	s.compare(base, final, n)
}

func start(t *testing.T) *soak {
	t.Helper()
	if _, err := os.Stat(redisBin); err != nil {
		t.Fatalf("%s is needed (make deps installs redis-server): %v", redisBin, err)
	}
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1,
		Faults: []testserver.Fault{{Namespace: "test", Set: killedSet, Latency: killedDelay}}})
	s := &soak{t: t, hosts: cluster.Hosts(), exes: map[string]string{}, ops: &opCounter{n: map[int]int{}, perTarget: map[*observe.Target]int{}},
		want: map[string]map[e2etest.Key]e2etest.Series{}}
	dir := t.TempDir()
	var include []string
	for _, k := range kinds {
		built, err := e2etest.BuildTarget(t, k.build)
		if err != nil {
			t.Fatal(err)
		}
		// A private copy: the daemon's --include keeps it off other tests' processes.
		exe := filepath.Join(dir, "soak-"+k.name)
		data, err := os.ReadFile(built)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(exe, data, 0o755); err != nil {
			t.Fatal(err)
		}
		s.exes[k.name] = exe
		include = append(include, exe)
	}

	// Spans are made and then discarded: the exporter is not what the soak measures, and
	// an in-process receiver would keep every span in the memory being measured.
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	s.rec = metrics.New(metrics.Options{})
	feed, err := spanfeed.New(s.rec.SpansDropped, t.Logf, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.feed = feed
	s.agent, err = attach.New(s.rec, attach.Options{Stages: true, Tracing: true,
		Observers: []observe.Observer{feed, s.ops}})
	if err != nil {
		t.Fatal(err)
	}
	agentDone := make(chan error, 1)
	go func() { agentDone <- s.agent.Run() }()

	port := freePort(t)
	redisCmd := exec.Command(redisBin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--loglevel", "warning")
	redisCmd.Stdout, redisCmd.Stderr = testLog{t}, testLog{t}
	if err := redisCmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.redis = redis.NewClient(&redis.Options{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))})
	waitFor(t, "redis-server to answer", 10*time.Second, func() bool { return s.redis.Ping(context.Background()).Err() == nil })
	s.redisKy = "SOAK_METRICS"
	src := snapshot.Source{Registry: s.rec.Registry, Identity: snapshot.HostIdentity("soak", "soak"),
		Targets: func() []snapshot.Target {
			var out []snapshot.Target
			for _, tg := range s.agent.Targets() {
				out = append(out, snapshot.Target{PID: tg.PID, Service: tg.Identity.Service})
			}
			return out
		}}
	s.pub, err = publish.New(publish.Options{Settings: publish.Settings{Host: "127.0.0.1", Port: port, Key: s.redisKy,
		Interval: 500 * time.Millisecond, MaxPending: 1000}, Produce: snapshot.JSON(src), Registerer: s.rec.Registry, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	s.pub.Start()

	ctx, cancel := context.WithCancel(context.Background())
	// Warnings (an executable the daemon gives up on) explain a failure; the per-process
	// lines would drown it.
	warnings := slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	w := discovery.New(discovery.Options{Interval: time.Second, Include: include, Logger: warnings})
	d := daemon.New(agentAttacher{s.agent}, w.Events(), daemon.Options{Logger: warnings})
	s.daemon = d
	watchDone, daemonDone := make(chan error, 1), make(chan error, 1)
	go func() { watchDone <- w.Run(ctx) }()
	go func() { daemonDone <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-daemonDone
		<-watchDone
		s.pub.Stop()
		s.agent.Close()
		<-agentDone
		shut, done := context.WithTimeout(context.Background(), 5*time.Second)
		defer done()
		_ = feed.Shutdown(shut)
		s.redis.Close()
		_ = redisCmd.Process.Kill()
		_ = redisCmd.Wait()
		if _, st := d.Snapshot(); t.Failed() {
			t.Logf("daemon: %+v", st)
		}
	})
	return s
}

// testLog writes log lines to the test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// runStream runs processes [from, to) of the stream, at most maxAlive at once.
func (s *soak) runStream(from, to int) {
	sem := make(chan struct{}, maxAlive)
	var wg sync.WaitGroup
	for i := from; i < to; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			// One subtest per process: a failure ends only it, and what the helpers keep
			// for a process (its buffers, its cleanup) goes when it does, not at the end.
			p := planFor(i)
			if !s.t.Run(fmt.Sprintf("%04d-%s", i, p.kind.name), func(t *testing.T) { s.runOne(t, p) }) {
				s.mu.Lock()
				s.failedEarly++
				s.mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func (s *soak) runOne(t *testing.T, p plan) {
	args := []string{"-wait-signal", "-hosts", strings.Join(s.hosts, ","), "-count", strconv.Itoa(opsPerKind)}
	if p.killed {
		args = append(args, "-set", killedSet)
	}
	cmd := exec.Command(s.exes[p.kind.name], args...)
	cmd.Env = append(os.Environ(), "OTEL_SERVICE_NAME="+p.service())
	if p.namespaced {
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS}
	}
	h := s.startHeld(t, cmd, p.reusePID)
	s.ops.reset(h.PID())
	// Held at its first instruction: the daemon must attach before the target runs any code.
	// The deadline only bounds a failure: on a loaded machine, attaching an executable
	// (its symbols, DWARF and probe points) can take seconds, one executable at a time.
	//
	// The daemon must have attached this process, not the one that had its pid before:
	// until it hears that one's exit, the pid's filter entry and target are the old ones.
	start := startTime(t, h.PID())
	waitFor(t, fmt.Sprintf("the daemon to attach pid %d (%s)", h.PID(), p.kind.name), 2*time.Minute, func() bool {
		return s.attachedSince(h.PID(), start) && s.target(h.PID()) != nil
	})
	attached := &s.target(h.PID()).Target
	s.mu.Lock()
	s.peakTargets = max(s.peakTargets, len(s.agent.Targets()))
	s.mu.Unlock()
	w := h.Release(t)
	w.Go(t)
	done := 0 // operations the process made, when it was not killed
	if p.killed {
		waitFor(t, fmt.Sprintf("an operation of pid %d", w.PID), 30*time.Second, func() bool {
			return s.ops.seen(w.PID) > 0
		})
		// The server holds every op of the killed set for killedDelay: the process dies
		// with one in flight (its entry is in the in-flight map, its return never comes).
		_ = syscall.Kill(w.PID, syscall.SIGKILL)
		w.Killed(t, 30*time.Second)
	} else {
		truth := w.Wait(t, 2*time.Minute)
		done = preloadPuts
		s.mu.Lock()
		want := s.want[p.service()]
		if want == nil {
			want = map[e2etest.Key]e2etest.Series{}
			s.want[p.service()] = want
		}
		for k, v := range e2etest.TruthSeries(truth) {
			c := want[k]
			c.Count += v.Count
			want[k] = c
			done += int(v.Count)
		}
		k := e2etest.K("put", "test", "compat", "")
		c := want[k]
		c.Count += preloadPuts
		want[k] = c
		s.mu.Unlock()
	}
	if targets, _ := s.feed.Retained(); targets > 0 {
		s.mu.Lock()
		s.peakRetained = max(s.peakRetained, targets)
		s.mu.Unlock()
	}
	// The daemon drops a process from its list once the agent's Detach has returned. It
	// handles events in order, so the exit may wait behind the attaches queued before it,
	// as long as an attach may take.
	waitFor(t, fmt.Sprintf("the daemon to detach pid %d", w.PID), 2*time.Minute, func() bool {
		return !s.attachedSince(w.PID, start)
	})
	// Per process too, so that a miscount names the process's plan.
	if seen := s.ops.seenBy(attached); !p.killed && seen != done {
		t.Errorf("pid %d (%s, namespaced %v, on a freed pid %v): %d operations observed, %d done",
			w.PID, p.kind.name, p.namespaced, p.reusePID, seen, done)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.killed {
		s.killed++
	}
	if p.namespaced {
		s.namespaced++
	}
	s.freedPIDs = append(s.freedPIDs, w.PID)
}

// attachedSince reports whether the daemon has attached pid as the process started at
// start (clock ticks since boot, /proc/PID/stat field 22).
func (s *soak) attachedSince(pid int, start uint64) bool {
	attached, _ := s.daemon.Snapshot()
	for _, a := range attached {
		if a.PID == pid {
			return a.StartTime == start
		}
	}
	return false
}

func startTime(t *testing.T, pid int) uint64 {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name may hold spaces: fields are counted after its closing parenthesis.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	v, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (s *soak) target(pid int) *attach.Target {
	for _, tg := range s.agent.Targets() {
		if tg.PID == pid {
			return tg
		}
	}
	return nil
}

// startHeld starts cmd stopped after exec; with reuse, on the pid of the process that
// exited last, by setting the pid namespace's last allocated pid just before the fork.
func (s *soak) startHeld(t *testing.T, cmd *exec.Cmd, reuse bool) *e2etest.Held {
	s.spawnMu.Lock()
	defer s.spawnMu.Unlock()
	want := 0
	if reuse {
		s.mu.Lock()
		if n := len(s.freedPIDs); n > 0 {
			want = s.freedPIDs[n-1]
			s.freedPIDs = s.freedPIDs[:n-1]
		}
		s.mu.Unlock()
	}
	if want > 1 {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(want-1)), 0); err != nil {
			t.Fatalf("forcing pid reuse: %v", err)
		}
	}
	h := e2etest.StartHeld(t, cmd)
	if want > 1 {
		s.mu.Lock()
		s.reuseTried++
		if h.PID() == want {
			s.reused++
		}
		s.mu.Unlock()
	}
	return h
}

// figures is what the leak check compares with the baseline.
type figures struct {
	rssAnon, promRSS      int64
	goroutines, promGorou int
	fds, links            int
	linkTypes             []string
	maps                  map[string]int
	feedTargets, provs    int
}

// quiesce waits until every target is gone from the agent, the tracing feed and the BPF
// maps (the check itself: the per-process state is released), then measures.
func (s *soak) quiesce(when string) figures {
	t := s.t
	t.Helper()
	var f figures
	deadline := time.Now().Add(leakCheckTimeout)
	for {
		// Targets first, maps next, links last: a Detach forgets its target before it
		// closes the executable's links and frees its rows, under the lock MapEntries takes.
		targetsGone := len(s.agent.Targets()) == 0
		f = s.measure()
		released := targetsGone && f.feedTargets == 0 && f.provs == 0
		for _, n := range f.maps {
			released = released && n == 0
		}
		if released {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%s, %s after the last process: targets %d, feed targets %d, tracer providers %d, BPF map entries %v",
				when, leakCheckTimeout, len(s.agent.Targets()), f.feedTargets, f.provs, f.maps)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%s: %s", when, f)
	return f
}

func (f figures) String() string {
	return fmt.Sprintf("RssAnon %.1f MiB (process_resident_memory_bytes %.1f MiB), goroutines %d (go_goroutines %d), fds %d, BPF links %d %v, map entries %v, feed targets %d, tracer providers %d",
		float64(f.rssAnon)/(1<<20), float64(f.promRSS)/(1<<20), f.goroutines, f.promGorou, f.fds, f.links, f.linkTypes, f.maps, f.feedTargets, f.provs)
}

func (s *soak) measure() figures {
	t := s.t
	var f figures
	var err error
	if f.maps, err = s.agent.MapEntries(); err != nil {
		t.Fatal(err)
	}
	f.feedTargets, f.provs = s.feed.Retained()
	runtime.GC()
	debug.FreeOSMemory()
	f.goroutines = runtime.NumGoroutine()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "RssAnon:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			f.rssAnon = kb << 10
		}
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	f.fds = len(fds)
	for _, fd := range fds {
		info, err := os.ReadFile("/proc/self/fdinfo/" + fd.Name())
		if err == nil && strings.Contains(string(info), "\nlink_id:") {
			f.links++
			desc := ""
			for _, line := range strings.Split(string(info), "\n") {
				k, v, _ := strings.Cut(line, ":")
				if k == "link_type" || k == "path" || k == "uprobe_cnt" {
					desc += strings.TrimSpace(v) + " "
				}
			}
			f.linkTypes = append(f.linkTypes, strings.TrimSpace(desc))
		}
	}
	f.promRSS = int64(gauge(t, s.rec.Registry, "process_resident_memory_bytes"))
	f.promGorou = int(gauge(t, s.rec.Registry, "go_goroutines"))
	return f
}

func gauge(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("the agent's registry has no %s: /metrics lacks the standard collectors", name)
	return 0
}

func (s *soak) compare(base, final figures, processes int) {
	t := s.t
	type row struct {
		what         string
		base, final  int64
		margin       int64
		unit, reason string
	}
	rows := []row{
		{"anonymous RSS (/proc)", base.rssAnon, final.rssAnon, rssMargin, "MiB", "heap and runtime pools"},
		{"process_resident_memory_bytes", base.promRSS, final.promRSS, rssMargin, "MiB", "as /metrics reports it"},
		{"goroutines (runtime)", int64(base.goroutines), int64(final.goroutines), goroutineMargin, "", "idle pool workers"},
		{"go_goroutines (/metrics)", int64(base.promGorou), int64(final.promGorou), goroutineMargin, "", "as /metrics reports it"},
		{"open file descriptors", int64(base.fds), int64(final.fds), fdMargin, "", "idle client connections"},
		{"BPF links", int64(base.links), int64(final.links), 0, "", "exact"},
		{"tracing: feed targets", int64(base.feedTargets), int64(final.feedTargets), 0, "", "exact"},
		{"tracing: tracer providers", int64(base.provs), int64(final.provs), 0, "", "exact"},
	}
	for _, name := range slices.Sorted(maps.Keys(final.maps)) {
		rows = append(rows, row{"BPF map " + name + " entries", int64(base.maps[name]), int64(final.maps[name]), 0, "", "exact"})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Soak: %d processes through the daemon\n\n", processes)
	fmt.Fprintf(&b, "`make soak` (this file) runs %d target processes through the daemon with stage probes, tracing (spans made, exporter none) and Redis publishing on: at most %d alive at once; %d client kinds (%s); %d in their own PID and mount namespace; %d SIGKILLed with an operation held in flight; %d of %d starts forced onto a just-freed pid. Peak attached at once: %d. Baseline: after a warm-up wave of %d processes; final: after the last process, all detached. Generated %s on %d CPUs.\n\n",
		processes, maxAlive, len(kinds), kindNames(), s.namespaced, s.killed, s.reused, s.reuseTried, s.peakTargets, maxAlive,
		time.Now().UTC().Format(time.RFC3339), runtime.NumCPU())
	b.WriteString("| measure | baseline | final | allowed growth | |\n|---|---:|---:|---:|---|\n")
	for _, r := range rows {
		fmtv := func(v int64) string {
			if r.unit == "MiB" {
				return fmt.Sprintf("%.1f MiB", float64(v)/(1<<20))
			}
			return strconv.FormatInt(v, 10)
		}
		status := "ok"
		if r.final > r.base+r.margin {
			status = "LEAK"
			t.Errorf("%s: %s at baseline, %s at the end: more than %s over", r.what, fmtv(r.base), fmtv(r.final), fmtv(r.margin))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s (%s) | %s |\n", r.what, fmtv(r.base), fmtv(r.final), fmtv(r.margin), r.reason, status)
	}
	b.WriteString("\n| service | operations done | observed | |\n|---|---:|---:|---|\n")
	for _, svc := range slices.Sorted(maps.Keys(s.want)) {
		var done, seen uint64
		for _, v := range s.want[svc] {
			done += v.Count
		}
		for _, v := range e2etest.OpSeries(t, s.rec.Registry, svc) {
			seen += v.Count
		}
		status := "exact"
		if !maps.Equal(seriesCounts(e2etest.OpSeries(t, s.rec.Registry, svc)), seriesCounts(s.want[svc])) {
			status = "MISMATCH"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s |\n", svc, done, seen, status)
	}
	fmt.Fprintf(&b, "\nAgent: records lost in the kernel %.0f, records with no target (invalid) %.0f. Processes whose run failed (see the test log): %d.\n",
		gauge(t, s.rec.Registry, "asobserve_events_lost_total"), gauge(t, s.rec.Registry, "asobserve_events_invalid_total"), s.failedEarly)
	t.Log("\n" + b.String())
	if path := os.Getenv(ReportEnv); path != "" {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

func seriesCounts(m map[e2etest.Key]e2etest.Series) map[e2etest.Key]uint64 {
	out := map[e2etest.Key]uint64{}
	for k, v := range m {
		out[k] = v.Count
	}
	return out
}

func kindNames() string {
	var names []string
	for _, k := range kinds {
		names = append(names, k.name)
	}
	return strings.Join(names, ", ")
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
