//go:build linux

package e2etest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asobserve/asobserve/internal/targetsrc"
)

// TargetBuild names one compatibility-matrix binary: a testdata/targets module built with
// a Go toolchain and build flags.
type TargetBuild = targetsrc.Build

// TargetCacheEnv names a directory that test binaries share their target builds in: `make
// test` and `make matrix` set it, so that the packages of one run build each target once.
// Without it each test binary builds into a temporary directory of its own.
const TargetCacheEnv = "ASOBSERVE_TARGET_CACHE"

var (
	targetMu    sync.Mutex
	targetCache = map[string]string{}
	targetDir   string
	goVersion   string
)

// BuildTarget builds a testdata target once per test binary, or once per run in the
// TargetCacheEnv directory, and returns its path. The module is rendered into a
// temporary directory by targetsrc, so go.sum updates never touch the repository. A
// toolchain other than the default is fetched by the go command from the module proxy on
// first use. A shared build is named by a hash of the rendered module, the build's
// parameters and the local go version, so a changed template or package is rebuilt.
func BuildTarget(t testing.TB, b TargetBuild) (string, error) {
	t.Helper()
	targetMu.Lock()
	defer targetMu.Unlock()
	if targetDir == "" {
		d, err := os.MkdirTemp("", "asobserve-targets-")
		if err != nil {
			return "", err
		}
		targetDir = d
	}
	src, err := os.MkdirTemp(targetDir, "src-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(src)
	root := RepoRoot(t)
	if err := b.Render(root, src); err != nil {
		return "", err
	}
	key, err := targetHash(src, b)
	if err != nil {
		return "", err
	}
	if p, ok := targetCache[key]; ok {
		return p, nil
	}
	dir := targetDir
	if shared := os.Getenv(TargetCacheEnv); shared != "" {
		dir = shared
	}
	out := filepath.Join(dir, "target-"+b.Client+"-"+key)
	defer os.RemoveAll(src + "-build")
	if err := buildOnce(dir, out, func(tmp string) error { return b.Make(root, src+"-build", tmp) }); err != nil {
		return "", err
	}
	targetCache[key] = out
	return out, nil
}

// buildOnce makes out with build unless it exists. Test binaries of one run build in
// parallel: a lock file in dir makes the second wait for the first's binary, and the
// binary appears under its name only once complete.
func buildOnce(dir, out string, build func(tmp string) error) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(out); err == nil {
		return nil
	}
	tmp := out + ".tmp"
	if err := build(tmp); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

// targetHash names a build by its rendered module's files and its parameters.
func targetHash(src string, b TargetBuild) (string, error) {
	if goVersion == "" {
		v, err := exec.Command("go", "env", "GOVERSION").Output()
		if err != nil {
			return "", fmt.Errorf("go env GOVERSION: %v", err)
		}
		goVersion = strings.TrimSpace(string(v))
	}
	h := sha256.New()
	// The client version is in the rendered go.mod.
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00", goVersion, b.Client, b.Toolchain, strings.Join(b.Flags, "\x00"))
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		fmt.Fprintf(h, "%s\x00%d\x00", rel, len(data))
		h.Write(data)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil)[:12]), err
}

// RemoveTargets deletes the binaries BuildTarget made in this test binary's own
// directory (call from TestMain or a cleanup); those of a shared TargetCacheEnv
// directory stay for the other packages of the run.
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
