//go:build linux

package main_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/asobserve/asobserve/internal/testserver"
)

func runCLI(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out)), code
}

const sleeper = `package main

import "time"

func main() { time.Sleep(time.Minute) }
`

// Every failure is one line naming cause and remedy, a non-zero exit, and no uprobe left.
func TestAttachFailures(t *testing.T) {
	e2etest.RequireRoot(t)
	bin := e2etest.BuildAsobserve(t)
	plain := e2etest.Run(t, e2etest.BuildGo(t, "plaingo", sleeper))
	notGo := e2etest.Run(t, "sleep", "60")
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	wl := e2etest.StartWorkload(t, bin, cluster.Hosts(), "--count", "10")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	time.Sleep(200 * time.Millisecond) // let the helper processes exec

	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no pid flag", []string{"attach"}, 2,
			"asobserve: --pid is required and must be a positive process id: find it with `pgrep -f <name>`"},
		{"no such pid", []string{"attach", "--pid", "99999999"}, 1,
			"asobserve: no process with pid 99999999: check the pid (`pgrep -f <name>`)"},
		{"not a Go binary", []string{"attach", "--pid", fmt.Sprint(notGo.Process.Pid), "--listen", "127.0.0.1:0", "--admin-listen", ""}, 1,
			"is not a Go binary"},
		{"no client", []string{"attach", "--pid", fmt.Sprint(plain.Process.Pid), "--listen", "127.0.0.1:0", "--admin-listen", ""}, 1,
			"does not use aerospike-client-go"},
		{"listen port in use", []string{"attach", "--pid", fmt.Sprint(wl.PID), "--listen", busy.Addr().String(), "--admin-listen", ""}, 1,
			"asobserve: cannot listen on " + busy.Addr().String() + ": address already in use: choose another with --listen"},
		{"bad stage switch", []string{"attach", "--pid", fmt.Sprint(wl.PID)}, 2,
			`asobserve: ASOBSERVE_INTERNAL_METRICS="maybe": not a boolean; use 1, true, yes, on or 0, false, no, off`},
		{"bad flag", []string{"attach", "--pid", "abc"}, 2, `asobserve: invalid argument "abc" for "--pid" flag`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(bin, c.args...)
			if c.name == "bad stage switch" {
				cmd.Env = append(cmd.Environ(), "ASOBSERVE_INTERNAL_METRICS=maybe")
			}
			outB, err := cmd.CombinedOutput()
			out := strings.TrimSpace(string(outB))
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != c.code {
				t.Errorf("exit code %d, want %d (output %q)", code, c.code, out)
			}
			if strings.Count(out, "\n") != 0 {
				t.Errorf("want one line, got:\n%s", out)
			}
			if !strings.Contains(out, c.want) {
				t.Errorf("output %q does not contain %q", out, c.want)
			}
			if !strings.HasPrefix(out, "asobserve: ") {
				t.Errorf("output %q lacks the asobserve: prefix", out)
			}
		})
	}
	if left := append(e2etest.UprobesOn(t, bin, wl.PID), e2etest.UprobesOn(t, "/proc/self/exe", plain.Process.Pid)...); len(left) != 0 {
		t.Fatalf("uprobes left on %s:\n%s", bin, strings.Join(left, "\n"))
	}
}

// Without CAP_BPF/CAP_PERFMON/CAP_SYS_ADMIN the agent says which capabilities it needs.
func TestAttachWithoutPrivileges(t *testing.T) {
	e2etest.RequireRoot(t)
	bin := e2etest.BuildAsobserve(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	wl := e2etest.StartWorkload(t, bin, cluster.Hosts(), "--count", "10")
	out, code := runCLI(t, "capsh", "--drop=cap_bpf,cap_perfmon,cap_sys_admin", "--",
		"-c", fmt.Sprintf("exec %s attach --pid %d --listen 127.0.0.1:0 --admin-listen ''", bin, wl.PID))
	if code != 1 {
		t.Fatalf("exit code %d, want 1: %s", code, out)
	}
	want := "asobserve needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN): run it as root or grant those capabilities"
	if !strings.Contains(out, want) || strings.Count(out, "\n") != 0 {
		t.Fatalf("output %q, want one line containing %q", out, want)
	}
}

// A user who may not read the target's executable gets the capabilities to ask for.
func TestAttachUnreadableExecutable(t *testing.T) {
	e2etest.RequireRoot(t)
	bin := e2etest.BuildAsobserve(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	wl := e2etest.StartWorkload(t, bin, cluster.Hosts(), "--count", "10")
	if err := os.Chmod(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	out, code := runCLI(t, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
		bin, "attach", "--pid", fmt.Sprint(wl.PID), "--listen", "127.0.0.1:0", "--admin-listen", "")
	want := fmt.Sprintf("asobserve: pid %d: cannot read /proc/%d/exe: permission denied: run asobserve as root or with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH", wl.PID, wl.PID)
	if code != 1 || !strings.HasPrefix(out, want) || strings.Contains(out, "\n") {
		t.Fatalf("got %q (exit %d), want one line starting %q", out, code, want)
	}
}
