//go:build linux

package e2etest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asobserve/asobserve/internal/targetsrc"
)

// TargetBuild names one compatibility-matrix binary: a testdata/targets module built with
// a Go toolchain and build flags.
type TargetBuild = targetsrc.Build

func targetKey(b TargetBuild) string {
	return b.Client + "|" + b.Toolchain + "|" + strings.Join(b.Flags, " ")
}

var (
	targetMu    sync.Mutex
	targetCache = map[string]string{}
	targetDir   string
)

// BuildTarget builds a testdata target once per test binary and returns its path. The
// module is rendered into a temporary directory by targetsrc, so go.sum updates never
// touch the repository. A toolchain other than the default is fetched by the go command
// from the module proxy on first use.
func BuildTarget(t testing.TB, b TargetBuild) (string, error) {
	t.Helper()
	targetMu.Lock()
	defer targetMu.Unlock()
	if p, ok := targetCache[targetKey(b)]; ok {
		return p, nil
	}
	if targetDir == "" {
		d, err := os.MkdirTemp("", "asobserve-targets-")
		if err != nil {
			return "", err
		}
		targetDir = d
	}
	n := len(targetCache)
	src := filepath.Join(targetDir, fmt.Sprintf("src-%d", n))
	out := filepath.Join(targetDir, fmt.Sprintf("target-%d-%s", n, b.Client))
	if err := b.Make(RepoRoot(t), src, out); err != nil {
		return "", err
	}
	targetCache[targetKey(b)] = out
	return out, nil
}

// RemoveTargets deletes every binary BuildTarget made (call from TestMain or a cleanup).
func RemoveTargets() {
	targetMu.Lock()
	defer targetMu.Unlock()
	if targetDir != "" {
		os.RemoveAll(targetDir)
		targetDir = ""
		targetCache = map[string]string{}
	}
}

// StartTarget starts a matrix target (`bin -wait-signal -hosts ... args...`) and returns
// once it printed its ready line, so an observer can attach before it starts. Go and Wait
// work as for the reference workload; the target prints the same truth JSON.
func StartTarget(t testing.TB, bin string, hosts []string, args ...string) *Workload {
	t.Helper()
	all := append([]string{"-wait-signal", "-hosts", strings.Join(hosts, ",")}, args...)
	return startReady(t, exec.Command(bin, all...))
}

// startReady runs cmd and waits for its "workload: ready" line on stderr.
func startReady(t testing.TB, cmd *exec.Cmd) *Workload {
	t.Helper()
	w := &Workload{Cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	w.Cmd.Stdout = &w.stdout
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w.Cmd.Stderr = pw
	if err := w.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	w.PID = w.Cmd.Process.Pid
	ready := make(chan struct{})
	var stderrMu sync.Mutex
	go func() {
		sc := bufio.NewScanner(pr)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			stderrMu.Lock()
			w.stderr.WriteString(line + "\n")
			stderrMu.Unlock()
			if !signalled && strings.HasPrefix(line, "workload: ready") {
				signalled = true
				close(ready)
			}
		}
	}()
	go func() { w.done <- w.Cmd.Wait() }()
	t.Cleanup(func() {
		if w.Cmd.ProcessState == nil {
			_ = w.Cmd.Process.Kill()
		}
	})
	select {
	case <-ready:
	case err := <-w.done:
		w.done <- err
		stderrMu.Lock()
		defer stderrMu.Unlock()
		t.Fatalf("%s exited before ready: %v\n%s", filepath.Base(cmd.Path), err, w.stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("%s not ready after 60s", filepath.Base(cmd.Path))
	}
	return w
}
