package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/asobserve/asobserve/internal/discovery"
	"github.com/asobserve/asobserve/internal/k8smeta"
	"github.com/asobserve/asobserve/internal/metrics"
)

// fakeAttacher records calls as "attach PID PATH service|node|ns|pod|container" and
// "detach PID", and fails Attach for executables listed in fail.
type fakeAttacher struct {
	mu    sync.Mutex
	calls []string
	ids   map[int]*metrics.Identity
	fail  map[string]bool
}

func (f *fakeAttacher) Attach(pid int, exePath string, id *metrics.Identity) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail[exePath] {
		f.calls = append(f.calls, fmt.Sprintf("attach-failed %d", pid))
		return errors.New("unsupported client version")
	}
	f.calls = append(f.calls, fmt.Sprintf("attach %d %s %s|%s|%s|%s|%s", pid, exePath, id.Service, id.Node, id.K8sNamespace, id.Pod, id.Container))
	if f.ids == nil {
		f.ids = map[int]*metrics.Identity{}
	}
	f.ids[pid] = id
	return nil
}

func (f *fakeAttacher) Detach(pid int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("detach %d", pid))
	return nil
}

func (f *fakeAttacher) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

type fakePods map[string]k8smeta.PodInfo

func (p fakePods) Lookup(ref k8smeta.CgroupRef) (k8smeta.PodInfo, bool) {
	info, ok := p[ref.ContainerID]
	return info, ok
}

// fakeProc writes environ, cgroup and an exe file for a pid.
func fakeProc(t *testing.T, root string, pid int, env []string, containerID string) {
	t.Helper()
	dir := filepath.Join(root, fmt.Sprint(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("environ", strings.Join(env, "\x00")+"\x00")
	write("exe", "")
	cg := "0::/user.slice/session-1.scope\n"
	if containerID != "" {
		cg = "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0a1b2c3d_4e5f_6789_abcd_ef0123456789.slice/cri-containerd-" + containerID + ".scope\n"
	}
	write("cgroup", cg)
}

func added(pid int, start uint64, exe string, ino uint64) discovery.Event {
	return discovery.Event{Kind: discovery.Added, Process: discovery.Process{
		PID: pid, StartTime: start, ExeName: exe, Exe: discovery.ExeKey{Dev: 1, Ino: ino}, NSpid: pid,
	}}
}

func removed(pid int, start uint64) discovery.Event {
	return discovery.Event{Kind: discovery.Removed, Process: discovery.Process{PID: pid, StartTime: start}}
}

func id64(c byte) string { return strings.Repeat(string(c), 64) }

type harness struct {
	t      *testing.T
	root   string
	att    *fakeAttacher
	d      *Daemon
	events chan discovery.Event
}

func newHarness(t *testing.T, o Options) *harness {
	h := &harness{t: t, root: t.TempDir(), att: &fakeAttacher{fail: map[string]bool{}}, events: make(chan discovery.Event)}
	o.ProcRoot = h.root
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	h.d = New(h.att, h.events, o)
	return h
}

// step feeds events one at a time through Run's loop and checks the exact calls.
func (h *harness) step(want []string, evs ...discovery.Event) {
	h.t.Helper()
	for _, ev := range evs {
		h.d.handle(ev)
	}
	got := h.att.take()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		h.t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func (h *harness) exe(pid int) string { return filepath.Join(h.root, fmt.Sprint(pid), "exe") }

func TestAttachDetachAndPIDReuse(t *testing.T) {
	h := newHarness(t, Options{Node: "node-1", Pods: fakePods{id64('a'): {Namespace: "shop", Pod: "cart-1", Container: "app"}}})
	fakeProc(t, h.root, 10, []string{"PATH=/bin", "OTEL_SERVICE_NAME=cart"}, id64('a'))
	fakeProc(t, h.root, 11, []string{"HOME=/"}, "")

	h.step([]string{
		"attach 10 " + h.exe(10) + " cart|node-1|shop|cart-1|app",
		"attach 11 " + h.exe(11) + " billing|node-1|||",
	}, added(10, 100, "/app/cart-server", 7), added(11, 101, "/usr/local/bin/billing", 8))

	// The agent itself is never attached.
	h.step(nil, added(os.Getpid(), 5, "/bin/asobserve", 3))

	// Duplicate addition of the same process: nothing.
	h.step(nil, added(10, 100, "/app/cart-server", 7))

	// PID reuse reported properly: removal, then addition with a new start time.
	fakeProc(t, h.root, 10, []string{"OTEL_SERVICE_NAME=cart"}, id64('a'))
	h.step([]string{"detach 10", "attach 10 " + h.exe(10) + " cart|node-1|shop|cart-1|app"},
		removed(10, 100), added(10, 200, "/app/cart-server", 7))

	// PID reuse whose removal was missed: the stale process is detached first.
	fakeProc(t, h.root, 10, []string{"OTEL_SERVICE_NAME=search"}, "")
	h.step([]string{"detach 10", "attach 10 " + h.exe(10) + " search|node-1|||"}, added(10, 300, "/app/search", 9))

	// A stale removal (old start time) does not detach the new process.
	h.step(nil, removed(10, 200))
	// Removal of a pid never attached: nothing.
	h.step(nil, removed(99, 1))
	h.step([]string{"detach 11"}, removed(11, 101))

	attached, st := h.d.Snapshot()
	if len(attached) != 1 || attached[0].PID != 10 || attached[0].StartTime != 300 || st.Attached != 1 {
		t.Fatalf("snapshot = %+v %+v", attached, st)
	}
}

func TestSameIdentitySharesPointer(t *testing.T) {
	h := newHarness(t, Options{})
	fakeProc(t, h.root, 20, []string{"OTEL_SERVICE_NAME=api"}, "")
	fakeProc(t, h.root, 21, []string{"OTEL_SERVICE_NAME=api"}, "")
	h.step([]string{"attach 20 " + h.exe(20) + " api||||", "attach 21 " + h.exe(21) + " api||||"},
		added(20, 1, "/bin/api", 5), added(21, 2, "/bin/api", 5))
	if h.att.ids[20] != h.att.ids[21] {
		t.Fatal("equal identities got different pointers")
	}
}

func TestFailedExecutableIsSkippedUnlessTheProcessExited(t *testing.T) {
	h := newHarness(t, Options{})
	fakeProc(t, h.root, 30, nil, "")
	fakeProc(t, h.root, 31, nil, "")
	h.att.fail[h.exe(30)] = true
	h.step([]string{"attach-failed 30"}, added(30, 1, "/bin/old", 42))
	// Another process of the same executable is not tried again.
	h.step(nil, added(31, 2, "/bin/old", 42))

	// A failure because the process was gone does not condemn its executable.
	h.att.fail[h.exe(40)] = true
	h.step([]string{"attach-failed 40"}, added(40, 1, "/bin/short", 43))
	fakeProc(t, h.root, 41, nil, "")
	h.step([]string{"attach 41 " + h.exe(41) + " short||||"}, added(41, 2, "/bin/short", 43))

	_, st := h.d.Snapshot()
	if st.AttachErrors != 2 || st.SkippedExes != 1 || st.Attached != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestIdentitiesAreBounded(t *testing.T) {
	pods := fakePods{}
	h := newHarness(t, Options{Node: "n", Pods: pods, MaxIdentities: 3})
	var want []string
	for i := 0; i < 6; i++ {
		pid := 100 + i
		cid := id64(byte('a' + i))
		pods[cid] = k8smeta.PodInfo{Namespace: "web", Pod: fmt.Sprintf("front-%d", i), Container: "nginx"}
		fakeProc(t, h.root, pid, []string{"OTEL_SERVICE_NAME=front"}, cid)
		pod, ctr := fmt.Sprintf("front-%d", i), "nginx"
		if i >= 3 {
			pod, ctr = Overflow, Overflow
		}
		want = append(want, fmt.Sprintf("attach %d %s front|n|web|%s|%s", pid, h.exe(pid), pod, ctr))
		h.step(want[i:], added(pid, uint64(i+1), "/front", 77))
	}
	if h.att.ids[103] != h.att.ids[105] {
		t.Fatal("overflow identities not shared")
	}
	if _, st := h.d.Snapshot(); st.IdentityOverflows != 3 || len(h.d.identities) != 4 {
		t.Fatalf("overflows = %d, identities = %d; want 3, 4", st.IdentityOverflows, len(h.d.identities))
	}
}

func TestServiceNameIsClampedAndValidUTF8(t *testing.T) {
	h := newHarness(t, Options{})
	fakeProc(t, h.root, 50, []string{"OTEL_SERVICE_NAME=" + strings.Repeat("x", 300)}, "")
	fakeProc(t, h.root, 51, []string{"OTEL_SERVICE_NAME=bad\xffname"}, "")
	h.step([]string{
		"attach 50 " + h.exe(50) + " " + strings.Repeat("x", 128) + "||||",
		"attach 51 " + h.exe(51) + " bad_name||||",
	}, added(50, 1, "/a", 1), added(51, 1, "/b", 2))
}

func TestRunDetachesEverythingOnStop(t *testing.T) {
	h := newHarness(t, Options{})
	fakeProc(t, h.root, 60, nil, "")
	fakeProc(t, h.root, 61, nil, "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.d.Run(ctx) }()
	h.events <- added(60, 1, "/x", 1)
	h.events <- added(61, 1, "/y", 2)
	h.events <- removed(60, 1)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := strings.Join(h.att.take(), "\n")
	want := strings.Join([]string{"attach 60 " + h.exe(60) + " x||||", "attach 61 " + h.exe(61) + " y||||", "detach 60", "detach 61"}, "\n")
	if got != want {
		t.Fatalf("calls:\n%s\nwant:\n%s", got, want)
	}

	// A closed event channel also ends Run.
	h2 := newHarness(t, Options{})
	close(h2.events)
	if err := h2.d.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}
