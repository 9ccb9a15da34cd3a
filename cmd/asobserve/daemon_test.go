//go:build linux

package main_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/asobserve/asobserve/internal/snapshot"
	"github.com/asobserve/asobserve/internal/testserver"
	"github.com/asobserve/asobserve/internal/workload"
)

// attachDeadline is the daemon's promise: a client process is observed this soon after exec.
const attachDeadline = 2 * time.Second

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startDaemon runs `asobserve daemon` as a child and returns its listen address once it
// serves /metrics. --include keeps it to this test's executables: other packages' tests
// run their own client processes at the same time and must not be probed.
func startDaemon(t *testing.T, bin string, include ...string) string {
	t.Helper()
	addr := e2etest.FreeAddr(t)
	cmd := exec.Command(bin, "daemon", "--listen", addr, "--admin-listen", "", "--interval", "5s",
		"--include", strings.Join(include, ","))
	log := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("daemon did not stop within 10s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("daemon exited: %v\n%s", err, log.String())
		default:
		}
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon not serving after 30s\n%s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func snap(t *testing.T, addr string) snapshot.Snapshot {
	t.Helper()
	var s snapshot.Snapshot
	get(t, "http://"+addr+"/snapshot", &s)
	return s
}

func targetService(s snapshot.Snapshot, pid int) (string, bool) {
	for _, p := range s.Targets {
		if p.PID == pid {
			return p.Service, true
		}
	}
	return "", false
}

// waitTarget polls the daemon until pid is (or, with present=false, is no longer) a target
// and returns how long that took from since.
func waitTarget(t *testing.T, addr string, pid int, present bool, since time.Time, limit time.Duration) (snapshot.Snapshot, time.Duration) {
	t.Helper()
	for {
		s := snap(t, addr)
		if _, ok := targetService(s, pid); ok == present {
			return s, time.Since(since)
		}
		if time.Since(since) > limit {
			t.Fatalf("pid %d present=%t not reached after %s; targets %+v", pid, present, limit, s.Targets)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// copyExe puts a private copy of an executable at dir/name (a distinct inode and path).
func copyExe(t *testing.T, from, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(dir, name)
	if err := os.WriteFile(to, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return to
}

// heldStart starts cmd stopped right after exec with OTEL_SERVICE_NAME=service, asserts the
// daemon attaches it under that service within attachDeadline, then lets it run to ready.
func heldStart(t *testing.T, addr string, cmd *exec.Cmd, service string) *e2etest.Workload {
	t.Helper()
	cmd.Env = append(os.Environ(), "OTEL_SERVICE_NAME="+service)
	start := time.Now()
	h := e2etest.StartHeld(t, cmd)
	s, took := waitTarget(t, addr, h.PID(), true, start, 15*time.Second)
	t.Logf("%s (pid %d) attached %s after exec", service, h.PID(), took.Round(time.Millisecond))
	if took > attachDeadline {
		t.Errorf("%s (pid %d) attached %s after exec, want within %s", service, h.PID(), took.Round(time.Millisecond), attachDeadline)
	}
	if got, _ := targetService(s, h.PID()); got != service {
		t.Errorf("pid %d has service %q, want %q (from its OTEL_SERVICE_NAME)", h.PID(), got, service)
	}
	return h.Release(t)
}

// expected is a run's truth plus its preload: the daemon attaches at exec, so it also sees
// the puts that write the keys before the workload's ready line.
func expected(truths []*workload.Truth, preloads int, ns, set string) map[e2etest.Key]e2etest.Series {
	out := map[e2etest.Key]e2etest.Series{}
	for _, tr := range truths {
		for k, v := range e2etest.TruthSeries(tr) {
			s := out[k]
			s.Count += v.Count
			out[k] = s
		}
	}
	if preloads > 0 {
		k := e2etest.K("put", ns, set, "")
		s := out[k]
		s.Count += uint64(preloads)
		out[k] = s
	}
	return out
}

func total(m map[e2etest.Key]e2etest.Series) (n uint64) {
	for _, v := range m {
		n += v.Count
	}
	return n
}

// serviceSeries scrapes /metrics until the service's total reaches want's (events wait
// in the ring buffer for up to one poll interval) and returns its series.
func serviceSeries(t *testing.T, addr, service string, want map[e2etest.Key]e2etest.Series) map[e2etest.Key]e2etest.Series {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := e2etest.OpSeries(t, e2etest.Scrape(t, "http://"+addr+"/metrics"), service)
		if total(got) >= total(want) || time.Now().After(deadline) {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func checkService(t *testing.T, addr, service string, want map[e2etest.Key]e2etest.Series) {
	t.Helper()
	got := serviceSeries(t, addr, service, want)
	t.Logf("service %s: %d operations in %d series observed, %d expected", service, total(got), len(got), total(want))
	e2etest.CompareCounts(t, got, want)
	if total(got) != total(want) {
		s := snap(t, addr)
		t.Logf("agent: events received %d, lost %d, invalid (no target for the pid) %d",
			s.Agent.EventsReceived, s.Agent.EventsLost, s.Agent.EventsInvalid)
	}
}

// noUprobes waits briefly for the daemon to close an executable's links after the
// target left its list (the two are not one step), then fails if any remain.
func noUprobes(t *testing.T, path string, pid int, when string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		left := e2etest.UprobesOn(t, path, pid)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d uprobes left on %s %s:\n%s", len(left), path, when, strings.Join(left, "\n"))
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const (
	v7Keys = 25 // the v7 workload preloads 2 keys per index
	v8Keys = 20 // fixed in testdata/targets: 2 keys per index
)

func TestDaemonFollowsProcesses(t *testing.T) {
	e2etest.RequireRoot(t)
	bin := e2etest.BuildAsobserve(t)
	v8Built, err := e2etest.BuildTarget(t, e2etest.TargetBuild{Client: "v8"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	shop := copyExe(t, bin, dir, "shop")
	v8 := copyExe(t, v8Built, dir, "v8app")
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	addr := startDaemon(t, bin, shop, v8)

	v7Args := func() *exec.Cmd {
		return exec.Command(shop, "workload", "--wait-signal", "--hosts", strings.Join(cluster.Hosts(), ","),
			"--errors", "--count", "1200", "--concurrency", "2", "--keys", strconv.Itoa(v7Keys))
	}
	v8Args := func() *exec.Cmd {
		return exec.Command(v8, "-wait-signal", "-hosts", strings.Join(cluster.Hosts(), ","), "-count", "10")
	}
	cart := heldStart(t, addr, v7Args(), "cart")
	checkout := heldStart(t, addr, v7Args(), "checkout")
	v8svc := heldStart(t, addr, v8Args(), "v8svc")
	if s := snap(t, addr); s.Agent.AttachedProcesses != 3 || len(s.Targets) != 3 {
		t.Fatalf("attached_processes=%d targets=%+v, want the 3 started processes", s.Agent.AttachedProcesses, s.Targets)
	}
	for _, path := range []string{shop, v8} {
		if len(e2etest.UprobesOn(t, path, 0)) == 0 {
			t.Fatalf("no uprobe on %s while attached: the checks after exit would prove nothing", path)
		}
	}
	for _, w := range []*e2etest.Workload{cart, checkout, v8svc} {
		w.Go(t)
	}
	cartTruth := cart.Wait(t, 2*time.Minute)
	checkoutTruth := checkout.Wait(t, 2*time.Minute)
	v8Truth1 := v8svc.Wait(t, 2*time.Minute)

	checkService(t, addr, "cart", expected([]*workload.Truth{cartTruth}, 2*v7Keys, "test", "users"))
	checkService(t, addr, "checkout", expected([]*workload.Truth{checkoutTruth}, 2*v7Keys, "test", "users"))
	checkService(t, addr, "v8svc", expected([]*workload.Truth{v8Truth1}, 2*v8Keys, "test", "compat"))

	// Every process exited: the daemon detaches them and the executables' probes go.
	for _, w := range []*e2etest.Workload{cart, checkout, v8svc} {
		waitTarget(t, addr, w.PID, false, time.Now(), 10*time.Second)
	}
	if n := snap(t, addr).Agent.AttachedProcesses; n != 0 {
		t.Errorf("attached_processes=%d after every target exited", n)
	}
	for _, path := range []string{shop, v8} {
		noUprobes(t, path, 0, "after its last process exited")
	}

	// Kill and restart: a SIGKILLed v8svc is detached and leaves no probe; its successor
	// (new pid, same binary) is attached and its counts add to the service's.
	killed := heldStart(t, addr, v8Args(), "v8svc")
	if err := killed.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed.Killed(t, 10*time.Second)
	_, took := waitTarget(t, addr, killed.PID, false, time.Now(), 10*time.Second)
	t.Logf("killed pid %d detached %s after its exit was reaped", killed.PID, took.Round(time.Millisecond))
	noUprobes(t, v8, killed.PID, "after SIGKILL of its only process")
	again := heldStart(t, addr, v8Args(), "v8svc")
	if again.PID == killed.PID || again.PID == v8svc.PID {
		t.Fatalf("restart reused pid %d: the test cannot tell the processes apart", again.PID)
	}
	again.Go(t)
	v8Truth2 := again.Wait(t, 2*time.Minute)
	// Three v8svc processes preloaded: the first run, the killed one and the restart.
	checkService(t, addr, "v8svc", expected([]*workload.Truth{v8Truth1, v8Truth2}, 3*2*v8Keys, "test", "compat"))
	checkService(t, addr, "cart", expected([]*workload.Truth{cartTruth}, 2*v7Keys, "test", "users"))
	waitTarget(t, addr, again.PID, false, time.Now(), 10*time.Second)
	noUprobes(t, v8, again.PID, "after the restarted process exited")
}

// childOf returns the only child of pid (unshare --fork's child is the namespace's init).
func childOf(t *testing.T, pid int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		if f := strings.Fields(string(b)); len(f) == 1 {
			child, err := strconv.Atoi(f[0])
			if err != nil {
				t.Fatal(err)
			}
			return child
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d has children %q, want exactly one", pid, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDaemonFindsNamespacedProcess(t *testing.T) {
	e2etest.RequireRoot(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatalf("unshare (util-linux) is needed: %v", err)
	}
	bin := e2etest.BuildAsobserve(t)
	app := copyExe(t, bin, t.TempDir(), "nsapp")
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	addr := startDaemon(t, bin, app)

	// No put in the mix: the preload's puts may race the attach (the process is not held
	// here), so only they are checked loosely.
	cmd := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "--kill-child", app, "workload", "--wait-signal",
		"--hosts", strings.Join(cluster.Hosts(), ","), "--mix", "get=2,exists=1,touch=1,batch_read=1",
		"--errors", "--count", "900", "--concurrency", "2", "--keys", strconv.Itoa(v7Keys))
	cmd.Env = append(os.Environ(), "OTEL_SERVICE_NAME=nssvc")
	start := time.Now()
	w := e2etest.StartCommand(t, cmd)
	pid := childOf(t, w.PID)
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if !strings.Contains(string(status), "\nNSpid:\t"+strconv.Itoa(pid)+"\t1\n") {
		t.Fatalf("pid %d is not pid 1 of its own PID namespace:\n%s", pid, status)
	}
	s, took := waitTarget(t, addr, pid, true, start, 15*time.Second)
	t.Logf("namespaced pid %d attached %s after start", pid, took.Round(time.Millisecond))
	if took > attachDeadline+time.Second { // includes unshare's own start
		t.Errorf("namespaced process attached %s after start, want within %s", took, attachDeadline)
	}
	if svc, _ := targetService(s, pid); svc != "nssvc" {
		t.Errorf("namespaced process has service %q, want nssvc", svc)
	}
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	truth := w.Wait(t, 2*time.Minute)
	want := e2etest.TruthSeries(truth)
	got := serviceSeries(t, addr, "nssvc", want)
	preload := e2etest.K("put", "test", "users", "")
	if p := got[preload].Count; p > 2*v7Keys {
		t.Errorf("%d preload puts observed, the workload did %d", p, 2*v7Keys)
	}
	delete(got, preload)
	t.Logf("nssvc: %d operations in %d series observed, %d expected", total(got), len(got), total(want))
	e2etest.CompareCounts(t, got, want)
	if len(want) < 4 {
		t.Fatalf("the workload produced only %d series: %+v", len(want), want)
	}
}
