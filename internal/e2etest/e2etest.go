//go:build linux

// Package e2etest holds helpers for end-to-end tests: building real target binaries,
// running the test server and the reference workload as a separate process, and reading
// exact counts back from a recorder. Only tests import it.
package e2etest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/asobserve/asobserve/internal/semconv"
	"github.com/asobserve/asobserve/internal/testserver"
	"github.com/asobserve/asobserve/internal/workload"
)

// InCI reports whether tests run in CI, where nothing that needs eBPF or a server may skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// RequireRoot skips without root outside CI and fails in CI.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if InCI() {
		t.Fatal("this test needs root (eBPF) and CI=true forbids skipping it")
	}
	t.Skip("needs root for eBPF; run as root or with CI=true")
}

// RepoRoot finds the module root from the test's working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	buildMu    sync.Mutex
	buildCache = map[string]string{}
	buildDir   string
)

// BuildAsobserve builds ./cmd/asobserve with extra `go build` arguments (e.g.
// "-ldflags=-s -w", "-buildmode=pie") once per test binary and returns its path. The
// binary doubles as the reference workload target (`asobserve workload`).
func BuildAsobserve(t testing.TB, args ...string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	key := strings.Join(args, " ")
	if p, ok := buildCache[key]; ok {
		return p
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "asobserve-e2e-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = d
	}
	out := filepath.Join(buildDir, fmt.Sprintf("asobserve-%d", len(buildCache)))
	cmdArgs := append([]string{"build", "-o", out}, args...)
	cmdArgs = append(cmdArgs, "./cmd/asobserve")
	cmd := exec.Command("go", cmdArgs...)
	cmd.Dir = RepoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(cmdArgs, " "), err, b)
	}
	buildCache[key] = out
	return out
}

// StartServer runs an in-process test server cluster for the test's lifetime.
func StartServer(t testing.TB, cfg testserver.Config) *testserver.Cluster {
	t.Helper()
	c, err := testserver.Start("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Workload is a running reference-workload process.
type Workload struct {
	Cmd    *exec.Cmd
	PID    int
	stdout bytes.Buffer
	stderr *bytes.Buffer
	done   chan error
}

// StartWorkload starts `bin workload --wait-signal args...` and returns once it is ready
// (preloaded and waiting for SIGUSR1), so an observer can attach first.
func StartWorkload(t testing.TB, bin string, hosts []string, args ...string) *Workload {
	t.Helper()
	all := append([]string{"workload", "--wait-signal", "--hosts", strings.Join(hosts, ",")}, args...)
	return startReady(t, exec.Command(bin, all...))
}

// Go sends the start signal.
func (w *Workload) Go(t testing.TB) {
	t.Helper()
	if err := w.Cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
}

// Stop asks a workload run by duration to end now (SIGTERM): it finishes the operations in
// flight, prints its truth and exits 0.
func (w *Workload) Stop(t testing.TB) {
	t.Helper()
	if err := w.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}

// Wait waits for the workload to exit 0 and returns its ground truth.
func (w *Workload) Wait(t testing.TB, timeout time.Duration) *workload.Truth {
	t.Helper()
	out := w.WaitOutput(t, timeout)
	var truth workload.Truth
	if err := json.Unmarshal(out, &truth); err != nil {
		t.Fatalf("workload output is not truth JSON: %v\n%s", err, w.stdout.String())
	}
	return &truth
}

// WaitOutput waits for the process to exit 0 and returns what it printed on stdout.
func (w *Workload) WaitOutput(t testing.TB, timeout time.Duration) []byte {
	t.Helper()
	select {
	case err := <-w.done:
		if err != nil {
			t.Fatalf("workload failed: %v\n%s", err, w.stderr.String())
		}
	case <-time.After(timeout):
		_ = w.Cmd.Process.Kill()
		t.Fatalf("workload still running after %s", timeout)
	}
	return w.stdout.Bytes()
}

// Key names one operation series.
type Key struct{ Op, Namespace, Set, ErrorType string }

// K builds a Key.
func K(op, namespace, set, errorType string) Key {
	return Key{Op: op, Namespace: namespace, Set: set, ErrorType: errorType}
}

// Series is the count and sum of one operation histogram series.
type Series struct {
	Count uint64
	Sum   float64
}

// OpSeries reads db_client_operation_duration_seconds from a registry, optionally for
// one service only ("" = all).
func OpSeries(t testing.TB, g prometheus.Gatherer, service string) map[Key]Series {
	t.Helper()
	return histSeries(t, g, semconv.OperationMetric, service, func(l map[string]string) Key {
		return Key{l[semconv.LabelOperation], l[semconv.LabelNamespace], l[semconv.LabelCollection], l[semconv.LabelErrorType]}
	})
}

// StageKey names one stage series.
type StageKey struct{ Stage, Op string }

// StageSeries reads db_client_internal_stage_seconds.
func StageSeries(t testing.TB, g prometheus.Gatherer) map[StageKey]Series {
	t.Helper()
	return histSeries(t, g, semconv.StageMetric, "", func(l map[string]string) StageKey {
		return StageKey{l[semconv.LabelStage], l[semconv.LabelOperation]}
	})
}

func histSeries[K comparable](t testing.TB, g prometheus.Gatherer, name, service string, key func(map[string]string) K) map[K]Series {
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[K]Series{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if service != "" && labels["service_name"] != service {
				continue
			}
			h := m.GetHistogram()
			out[key(labels)] = Series{Count: h.GetSampleCount(), Sum: h.GetSampleSum()}
		}
	}
	return out
}

// TruthSeries turns a workload's ground truth into the same shape as OpSeries.
func TruthSeries(truth *workload.Truth) map[Key]Series {
	out := map[Key]Series{}
	for _, c := range truth.Counts {
		out[Key{c.Op, c.Namespace, c.Set, c.ErrorType}] = Series{Count: uint64(c.Count), Sum: c.SumSeconds}
	}
	return out
}

// CompareCounts fails the test unless every series count matches exactly.
func CompareCounts(t testing.TB, got, want map[Key]Series) {
	t.Helper()
	for k, w := range want {
		if g := got[k]; g.Count != w.Count {
			t.Errorf("%+v: observed count %d, workload did %d", k, g.Count, w.Count)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%+v: observed %d operations the workload did not do", k, g.Count)
		}
	}
}

// UprobesOn lists the kernel's BPF uprobes on an executable, given by its path and a
// pid running it: multi-uprobe links (read from every process's link fdinfo, one entry
// per probe point) and single perf-event uprobes (via bpftool, named by path or by
// /proc/PID/exe as the agent opened it).
func UprobesOn(t testing.TB, path string, pid int) []string {
	t.Helper()
	var found []string
	fdinfos, _ := filepath.Glob("/proc/[0-9]*/fdinfo/*")
	for _, f := range fdinfos {
		data, err := os.ReadFile(f)
		if err != nil || !bytes.Contains(data, []byte("link_type:\tuprobe_multi")) {
			continue
		}
		var linkPath string
		var count int
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "path:\t"); ok {
				linkPath = v
			}
			if v, ok := strings.CutPrefix(line, "uprobe_cnt:\t"); ok {
				fmt.Sscan(v, &count)
			}
		}
		if linkPath == path {
			for i := 0; i < count; i++ {
				found = append(found, fmt.Sprintf("%s: uprobe_multi on %s #%d", f, path, i))
			}
		}
	}
	out, err := exec.Command("bpftool", "perf", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("bpftool perf list: %v\n%s (make deps installs bpftool)", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "uprobe") && (strings.Contains(line, "filename "+path+" ") ||
			strings.Contains(line, fmt.Sprintf("filename /proc/%d/exe ", pid))) {
			found = append(found, line)
		}
	}
	return found
}

// BuildGo builds a standalone Go program (source text) in a temp module and returns the
// binary path.
func BuildGo(t testing.TB, name, source string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(source), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module "+name+"\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", name, err, b)
	}
	return bin
}

// Run starts a long-running helper process and kills it at the end of the test.
func Run(t testing.TB, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}
