//go:build linux

package e2etest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
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
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// StartCommand runs any command that ends up printing the "workload: ready" line (for
// example a workload under unshare) and returns once it did.
func StartCommand(t testing.TB, cmd *exec.Cmd) *Workload {
	t.Helper()
	return startReady(t, cmd)
}

// Held is a process stopped at its first instruction after exec (a ptrace stop), so an
// observer that finds processes by itself can attach before the process runs any code.
type Held struct {
	w        *Workload
	ready    chan struct{}
	stderrMu sync.Mutex
	release  chan struct{}
	detached chan error
	once     sync.Once
}

// StartHeld starts cmd and leaves it stopped right after exec. Release lets it run.
func StartHeld(t testing.TB, cmd *exec.Cmd) *Held {
	t.Helper()
	h := &Held{
		w:       &Workload{Cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)},
		ready:   make(chan struct{}),
		release: make(chan struct{}), detached: make(chan error, 1),
	}
	cmd.Stdout = &h.w.stdout
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = pw
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Ptrace = true
	started := make(chan error, 1)
	// The tracer is the thread that forked: every ptrace request must come from it.
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := cmd.Start()
		if err == nil {
			var ws syscall.WaitStatus
			if _, err = syscall.Wait4(cmd.Process.Pid, &ws, 0, nil); err == nil && !ws.Stopped() {
				err = fmt.Errorf("expected a ptrace stop after exec, got status %v", ws)
			}
		}
		started <- err
		if err != nil {
			return
		}
		<-h.release
		h.detached <- syscall.PtraceDetach(cmd.Process.Pid)
	}()
	err = <-started
	pw.Close()
	if err != nil {
		pr.Close()
		t.Fatalf("starting %s held: %v", filepath.Base(cmd.Path), err)
	}
	h.w.PID = cmd.Process.Pid
	go func() {
		sc := bufio.NewScanner(pr)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			h.stderrMu.Lock()
			h.w.stderr.WriteString(line + "\n")
			h.stderrMu.Unlock()
			if !signalled && strings.HasPrefix(line, "workload: ready") {
				signalled = true
				close(h.ready)
			}
		}
	}()
	t.Cleanup(func() {
		if h.detach() { // never released: nobody waits for it yet
			_ = h.w.Cmd.Process.Kill()
			_ = h.w.Cmd.Wait()
			return
		}
		if h.w.Cmd.ProcessState == nil {
			_ = h.w.Cmd.Process.Kill()
		}
	})
	return h
}

// PID is the held process's id.
func (h *Held) PID() int { return h.w.PID }

// detach ends the ptrace stop once; it reports whether this call did it.
func (h *Held) detach() bool {
	did := false
	h.once.Do(func() {
		did = true
		close(h.release)
		<-h.detached
	})
	return did
}

// Release lets the process run and waits for its ready line.
func (h *Held) Release(t testing.TB) *Workload {
	t.Helper()
	h.once.Do(func() {
		close(h.release)
		if err := <-h.detached; err != nil {
			t.Fatalf("ptrace detach of pid %d: %v", h.w.PID, err)
		}
		go func() { h.w.done <- h.w.Cmd.Wait() }()
	})
	select {
	case <-h.ready:
	case err := <-h.w.done:
		h.w.done <- err
		h.stderrMu.Lock()
		defer h.stderrMu.Unlock()
		t.Fatalf("%s exited before ready: %v\n%s", filepath.Base(h.w.Cmd.Path), err, h.w.stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("%s not ready after 60s", filepath.Base(h.w.Cmd.Path))
	}
	return h.w
}

// Killed waits for a process that was killed (not for a clean exit, as Wait does).
func (w *Workload) Killed(t testing.TB, timeout time.Duration) {
	t.Helper()
	select {
	case err := <-w.done:
		if err == nil {
			t.Fatalf("pid %d exited 0, expected it to be killed", w.PID)
		}
	case <-time.After(timeout):
		t.Fatalf("pid %d still running %s after the kill", w.PID, timeout)
	}
}

// Fetch GETs url asking for the exposition format accept ("" takes the default text) and
// returns the body, failing the test unless the server answers 200 in that format.
func Fetch(t testing.TB, url, accept string) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	if want := strings.TrimSpace(strings.Split(accept, ";")[0]); want != "" && !strings.HasPrefix(resp.Header.Get("Content-Type"), want) {
		t.Fatalf("GET %s asked for %s, served %s", url, accept, resp.Header.Get("Content-Type"))
	}
	return body
}

// Scrape reads a Prometheus text exposition from url as a Gatherer, so OpSeries works on
// what an agent process serves.
func Scrape(t testing.TB, url string) prometheus.Gatherer {
	t.Helper()
	body := Fetch(t, url, "")
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("GET %s: not the Prometheus text format: %v", url, err)
	}
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		out := make([]*dto.MetricFamily, 0, len(fams))
		for _, mf := range fams {
			out = append(out, mf)
		}
		return out, nil
	})
}
