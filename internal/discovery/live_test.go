//go:build linux

package discovery

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

const clientSrc = `package main

import (
	"fmt"
	"time"

	as "github.com/aerospike/aerospike-client-go/v7"
)

func main() {
	fmt.Println(as.NewPolicy().TotalTimeout)
	time.Sleep(time.Hour)
}
`

const plainSrc = `package main

import "time"

func main() { time.Sleep(time.Hour) }
`

var (
	buildOnce           sync.Once
	clientBin, plainBin string
	buildErr            error
	buildDir            string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// buildTargets compiles a program that links aerospike-client-go v7 and a plain Go
// program, once per test binary.
func buildTargets(t *testing.T) (client, plain string) {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "discovery-targets-")
		if buildErr != nil {
			return
		}
		build := func(name, src, gomod string) (string, error) {
			dir := filepath.Join(buildDir, name+"-src")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return "", err
			}
			if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
				return "", err
			}
			if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
				return "", err
			}
			out := filepath.Join(buildDir, name)
			cmd := exec.Command("go", "build", "-o", out, ".")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOSUMDB=off", "CGO_ENABLED=0")
			if b, err := cmd.CombinedOutput(); err != nil {
				return "", fmt.Errorf("building %s: %v\n%s", name, err, b)
			}
			return out, nil
		}
		clientBin, buildErr = build("asobserve-disc-client", clientSrc,
			"module discclient\n\ngo 1.21\n\nrequire github.com/aerospike/aerospike-client-go/v7 v7.10.2\n")
		if buildErr != nil {
			return
		}
		plainBin, buildErr = build("asobserve-disc-plain", plainSrc, "module discplain\n\ngo 1.21\n")
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return clientBin, plainBin
}

func requireRoot(t *testing.T) {
	if os.Geteuid() != 0 && os.Getenv("CI") != "true" {
		t.Skip("needs root for /proc/PID/exe of other processes and eBPF (with CI=true it runs, and fails without root)")
	}
}

type liveWatcher struct {
	w      *Watcher
	cancel context.CancelFunc
	done   chan struct{}
}

func startWatcher(t *testing.T, o Options) *liveWatcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	lw := &liveWatcher{w: New(o), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(lw.done)
		lw.w.Run(ctx)
	}()
	t.Cleanup(func() {
		lw.cancel()
		for range lw.w.Events() {
		}
		<-lw.done
	})
	return lw
}

// waitFor returns the first event of kind for pid, failing after d. Events of other
// processes on the machine are ignored; events for any pid in forbidden fail the test.
func (lw *liveWatcher) waitFor(t *testing.T, kind Kind, pid int, d time.Duration, forbidden ...int) Event {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev := <-lw.w.Events():
			for _, f := range forbidden {
				if ev.PID == f {
					t.Fatalf("unexpected event for non-client pid %d: %+v", f, ev)
				}
			}
			if ev.Kind == kind && ev.PID == pid {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s event for pid %d within %s", kind, pid, d)
		}
	}
}

func startProc(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

func TestExecProbeDiscoversClientWithinTwoSeconds(t *testing.T) {
	requireRoot(t)
	client, plain := buildTargets(t)
	lw := startWatcher(t, Options{Interval: 30 * time.Second})
	if !lw.w.ExecProbeActive() {
		if os.Getenv("CI") == "true" {
			t.Fatal("exec tracepoint program did not load")
		}
		t.Skip("exec tracepoint program did not load (no eBPF here; with CI=true this fails)")
	}

	plainCmd := startProc(t, plain)
	sleepCmd := startProc(t, "/bin/sleep", "3600")
	started := time.Now()
	clientCmd := startProc(t, client)
	forbidden := []int{plainCmd.Process.Pid, sleepCmd.Process.Pid}

	ev := lw.waitFor(t, Added, clientCmd.Process.Pid, 2*time.Second, forbidden...)
	t.Logf("discovered in %s", time.Since(started))
	if ev.Module != "github.com/aerospike/aerospike-client-go/v7" || ev.ModuleVersion != "v7.10.2" {
		t.Fatalf("module = %s %s", ev.Module, ev.ModuleVersion)
	}
	if ev.ExeName != client || ev.ExePath != filepath.Join("/proc", fmt.Sprint(ev.PID), "root", client) {
		t.Fatalf("exe = %q / %q", ev.ExeName, ev.ExePath)
	}
	if ev.NSpid != ev.PID {
		t.Fatalf("NSpid = %d, want %d", ev.NSpid, ev.PID)
	}
	var st syscall.Stat_t
	must(t, syscall.Stat(client, &st))
	if ev.Exe != (ExeKey{Dev: uint64(st.Dev), Ino: uint64(st.Ino)}) {
		t.Fatalf("exe key = %+v, want dev %d ino %d", ev.Exe, st.Dev, st.Ino)
	}

	// Not reaped before the removal: the exit notice alone (PF_EXITING on the zombie)
	// removes it; the next scan is 30 s away.
	must(t, clientCmd.Process.Kill())
	lw.waitFor(t, Removed, clientCmd.Process.Pid, 2*time.Second, forbidden...)
	clientCmd.Wait()
}

func TestScanOnlyFindsClientAndRemovesIt(t *testing.T) {
	requireRoot(t)
	client, plain := buildTargets(t)
	plainCmd := startProc(t, plain)
	clientCmd := startProc(t, client)
	// Processes that exist before the watcher starts are found by the first scan.
	lw := startWatcher(t, Options{Interval: 100 * time.Millisecond, NoExecProbe: true})
	forbidden := []int{plainCmd.Process.Pid}
	lw.waitFor(t, Added, clientCmd.Process.Pid, 2*time.Second, forbidden...)

	// Not reaped before the removal: the exit notice alone (PF_EXITING on the zombie)
	// removes it; the next scan is 30 s away.
	must(t, clientCmd.Process.Kill())
	lw.waitFor(t, Removed, clientCmd.Process.Pid, 2*time.Second, forbidden...)
	clientCmd.Wait()
}

func TestProcessInOwnPIDAndMountNamespace(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("unshare missing (util-linux)")
		}
		t.Skip("unshare missing (with CI=true this fails)")
	}
	client, _ := buildTargets(t)
	lw := startWatcher(t, Options{Interval: 200 * time.Millisecond, Include: []string{filepath.Base(client)}})
	cmd := startProc(t, "unshare", "--pid", "--fork", "--kill-child", "--mount-proc", client)

	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev := <-lw.w.Events():
			if ev.Kind != Added || ev.ExeName != client || ev.PID == cmd.Process.Pid {
				continue
			}
			ppid := parentPID(t, ev.PID)
			if ppid != cmd.Process.Pid {
				continue // another test's client
			}
			if ev.NSpid != 1 {
				t.Fatalf("NSpid = %d, want 1 (pid %d)", ev.NSpid, ev.PID)
			}
			if _, err := os.Stat(ev.ExePath); err != nil {
				t.Fatalf("ExePath not reachable from the host: %v", err)
			}
			return
		case <-deadline:
			t.Fatal("namespaced client not discovered within 5s")
		}
	}
}

func parentPID(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	var p, ppid int
	var comm, state string
	fmt.Sscanf(string(b), "%d %s %s %d", &p, &comm, &state, &ppid)
	return ppid
}
