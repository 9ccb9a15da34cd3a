//go:build linux

package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/asobserve/asobserve/internal/testserver"
)

// A client program that runs some puts and then replaces itself with /bin/sleep.
const execer = `package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	as "github.com/aerospike/aerospike-client-go/v7"
)

func main() {
	host, portText, _ := strings.Cut(os.Args[1], ":")
	port, _ := strconv.Atoi(portText)
	c, err := as.NewClient(host, port)
	if err != nil {
		panic(err)
	}
	fmt.Fprintf(os.Stderr, "workload: ready pid=%d\n", os.Getpid())
	time.Sleep(3 * time.Second)
	for i := 0; i < 50; i++ {
		k, _ := as.NewKey("test", "execs", i)
		if err := c.Put(nil, k, as.BinMap{"n": i}); err != nil {
			panic(err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	_ = syscall.Exec("/bin/sleep", []string{"sleep", "30"}, os.Environ())
}
`

// When the target execs into another program, attach counts what it did before, says
// so, detaches and exits, leaving no probe on the old executable.
func TestAttachFollowsExec(t *testing.T) {
	e2etest.RequireRoot(t)
	bin := e2etest.BuildAsobserve(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte(execer), 0o644); err != nil {
		t.Fatal(err)
	}
	mod := "module execer\n\ngo 1.21\n\nrequire github.com/aerospike/aerospike-client-go/v7 v7.10.2\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "execer")
	build := exec.Command("go", "build", "-o", target, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	proc := e2etest.StartCommand(t, exec.Command(target, cluster.Hosts()[0]))
	agent := exec.Command(bin, "attach", "--pid", fmt.Sprint(proc.PID), "--listen", e2etest.FreeAddr(t), "--admin-listen", "")
	out, err := agent.CombinedOutput()
	if err != nil {
		t.Fatalf("attach: %v\n%s", err, out)
	}
	want := fmt.Sprintf("pid %d exec'd into another program (sleep): detaching", proc.PID)
	if !strings.Contains(string(out), want) {
		t.Fatalf("agent output lacks %q:\n%s", want, out)
	}
	deadline := time.Now().Add(3 * time.Second)
	for len(e2etest.UprobesOn(t, target, proc.PID)) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if left := e2etest.UprobesOn(t, target, proc.PID); len(left) != 0 {
		t.Fatalf("%d uprobes left on %s", len(left), target)
	}
}
