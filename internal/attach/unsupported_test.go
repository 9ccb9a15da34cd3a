//go:build linux

package attach_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/asobserve/asobserve/internal/inspect"
	"github.com/asobserve/asobserve/internal/metrics"
)

// fakeClientProgram links a stand-in for aerospike-client-go at some module path and
// version (a replace directive points it at a stub), so that the binary's build info
// claims that client. It sleeps until killed, so it can be attached to.
func fakeClientProgram(t *testing.T, major, version string, flags ...string) string {
	t.Helper()
	dir := t.TempDir()
	mod := "github.com/aerospike/aerospike-client-go/" + major
	files := map[string]string{
		"go.mod":       fmt.Sprintf("module asobserve.test/fake\n\ngo 1.21\n\nrequire %s %s\n\nreplace %s => ./stub\n", mod, version, mod),
		"main.go":      fmt.Sprintf("package main\n\nimport (\n\t\"fmt\"\n\t\"time\"\n\n\tas %q\n)\n\nfunc main() {\n\tfmt.Println(as.Name)\n\ttime.Sleep(time.Hour)\n}\n", mod),
		"stub/go.mod":  fmt.Sprintf("module %s\n\ngo 1.21\n", mod),
		"stub/stub.go": "package aerospike\n\nvar Name = \"fake client\"\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "fake-"+major)
	cmd := exec.Command("go", append(append([]string{"build", "-o", bin}, flags...), ".")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod -buildvcs=false", "GOWORK=off", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the fake %s program: %v\n%s", major, err, out)
	}
	return bin
}

// runUntilExec starts bin and waits until /proc/PID/exe names it.
func runUntilExec(t *testing.T, bin string) int {
	t.Helper()
	cmd := exec.Command(bin)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	pid := cmd.Process.Pid
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe == bin {
			return pid
		}
	}
	t.Fatalf("%s did not start", bin)
	return 0
}

// An unsupported client gives a clear one-line error naming the cause and the remedy,
// and nothing is attached: never probes guessed from another version.
func TestAttachUnsupportedClientVersion(t *testing.T) {
	e2etest.RequireRoot(t)
	cases := []struct {
		name, major, version string
		flags                []string
		want                 string // %[1]s is the target's subject "pid N (path)"
		kind                 error
	}{
		{"v5", "v5", "v5.11.0", nil,
			"%[1]s uses aerospike-client-go v5.11.0 (github.com/aerospike/aerospike-client-go/v5); asobserve supports v6, v7 and v8: upgrade the client",
			inspect.ErrUnsupportedClient},
		{"fake v9", "v9", "v9.0.0", nil,
			"%[1]s uses aerospike-client-go v9.0.0 (github.com/aerospike/aerospike-client-go/v9); asobserve supports v6, v7 and v8: upgrade the client",
			inspect.ErrUnsupportedClient},
		{"stripped v7 not in the offsets table", "v7", "v7.0.99", []string{"-ldflags=-s -w"},
			"%[1]s uses aerospike-client-go v7.0.99, is stripped (no DWARF) and v7.0.99/amd64 is not in the offsets table (" + strings.Join(inspect.TableVersions("amd64"), ", ") + "); its own code does not settle the struct layout (the binary has no (*AerospikeError).resultCode: it cannot show where AerospikeError.ResultCode is): build the service without -ldflags=-s -w, or add the version to internal/inspect/versions.go and run make offsets",
			inspect.ErrUnsupportedClient},
	}
	rec := metrics.New(metrics.Options{})
	agent, err := attach.New(rec, attach.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bin := fakeClientProgram(t, tc.major, tc.version, tc.flags...)
			pid := runUntilExec(t, bin)
			_, err := agent.Attach(pid, &metrics.Identity{Service: "fake"})
			if err == nil {
				t.Fatal("attach succeeded")
			}
			want := fmt.Sprintf(tc.want, fmt.Sprintf("pid %d (%s)", pid, bin))
			if err.Error() != want {
				t.Errorf("error:\n got: %s\nwant: %s", err, want)
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("error %v does not wrap %v", err, tc.kind)
			}
			if n := len(agent.Targets()); n != 0 {
				t.Errorf("%d targets attached after a failed attach", n)
			}
			if n := agent.StageProbeCount(); n != 0 {
				t.Errorf("%d stage probes attached after a failed attach", n)
			}
		})
	}
}
