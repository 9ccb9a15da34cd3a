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
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	as "github.com/aerospike/aerospike-client-go/v7"
)

func main() {
	host, portText, _ := strings.Cut(os.Args[1], ":")
	port, _ := strconv.Atoi(portText)
	c, err := as.NewClient(host, port)
	if err != nil {
		panic(err)
	}
	start := make(chan os.Signal, 1)
	signal.Notify(start, syscall.SIGUSR1)
	fmt.Fprintf(os.Stderr, "workload: ready pid=%d\n", os.Getpid())
	<-start
	for i := 0; i < execerPuts; i++ {
		k, _ := as.NewKey("test", "execs", i)
		if err := c.Put(nil, k, as.BinMap{"n": i}); err != nil {
			panic(err)
		}
	}
	_ = syscall.Exec("/bin/sleep", []string{"sleep", "30"}, os.Environ())
}

const execerPuts = 50
`

// execerPuts is what the execer does before it execs.
const execerPuts = 50

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
	// --linger keeps the final counts served after the detach.
	addr := e2etest.FreeAddr(t)
	agent := exec.Command(bin, "attach", "--pid", fmt.Sprint(proc.PID), "--listen", addr, "--admin-listen", "", "--linger", "1m")
	log := &lockedBuffer{}
	agent.Stdout, agent.Stderr = log, log
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- agent.Wait() }()
	t.Cleanup(func() {
		_ = agent.Process.Kill()
		<-exited
	})
	waitLog := func(want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(log.String(), want) {
			select {
			case err := <-exited:
				exited <- err
				t.Fatalf("agent exited (%v) before logging %q:\n%s", err, want, log.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("agent did not log %q within 30s:\n%s", want, log.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitLog("serving http://")
	proc.Go(t)
	waitLog(fmt.Sprintf("pid %d exec'd into another program (sleep): detaching", proc.PID))
	waitLog("serving the final metrics")
	// The detach drained the ring buffer: every put made before the exec is counted.
	got := e2etest.OpSeries(t, e2etest.Scrape(t, "http://"+addr+"/metrics"), "")
	e2etest.CompareCounts(t, got, map[e2etest.Key]e2etest.Series{e2etest.K("put", "test", "execs", ""): {Count: execerPuts}})
	if left := e2etest.UprobesOn(t, target, proc.PID); len(left) != 0 {
		t.Fatalf("%d uprobes left on %s after the detach", len(left), target)
	}
}
