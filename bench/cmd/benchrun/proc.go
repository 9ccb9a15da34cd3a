//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/asobserve/asobserve/internal/workload"
)

// truth is the workload's ground truth plus the optional p95 some workload versions print.
type truth struct {
	workload.Truth
	P95Ms *float64 `json:"p95_ms"`
}

// workloadProc is a reference-workload child waiting for SIGUSR1.
type workloadProc struct {
	cmd    *exec.Cmd
	pid    int
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan error
}

func startWorkload(bin string, hosts []string, args ...string) (*workloadProc, error) {
	all := append([]string{"workload", "--wait-signal", "--hosts", strings.Join(hosts, ",")}, args...)
	w := &workloadProc{cmd: exec.Command(bin, all...), done: make(chan error, 1)}
	w.cmd.Stdout = &w.stdout
	if err := startUntil(w.cmd, &w.stderr, w.done, "workload: ready", 60*time.Second); err != nil {
		return nil, fmt.Errorf("workload: %w", err)
	}
	w.pid = w.cmd.Process.Pid
	return w, nil
}

// startUntil starts cmd, copies its stderr into stderr, and returns once a line contains
// marker; done receives cmd's exit later. A process that exits first or stays silent past
// timeout is an error (and is killed).
func startUntil(cmd *exec.Cmd, stderr *bytes.Buffer, done chan error, marker string, timeout time.Duration) error {
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd.Stderr = pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return err
	}
	pw.Close()
	ready := make(chan struct{})
	lines := make(chan struct{})
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		signalled := false
		for sc.Scan() {
			stderr.WriteString(sc.Text() + "\n")
			if !signalled && strings.Contains(sc.Text(), marker) {
				signalled = true
				close(ready)
			}
		}
	}()
	go func() {
		<-lines
		done <- cmd.Wait()
	}()
	select {
	case <-ready:
		return nil
	case err := <-done:
		return fmt.Errorf("exited before it was ready: %v\n%s", err, stderr.String())
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("not ready after %s\n%s", timeout, stderr.String())
	}
}

func (w *workloadProc) start() error { return w.cmd.Process.Signal(syscall.SIGUSR1) }

func (w *workloadProc) kill() {
	if w.cmd.ProcessState == nil {
		_ = w.cmd.Process.Kill()
	}
}

func (w *workloadProc) wait(timeout time.Duration) (*truth, error) {
	select {
	case err := <-w.done:
		if err != nil {
			return nil, fmt.Errorf("workload failed: %v\n%s", err, w.stderr.String())
		}
	case <-time.After(timeout):
		w.kill()
		<-w.done
		return nil, fmt.Errorf("workload still running after %s", timeout)
	}
	var t truth
	if err := json.Unmarshal(w.stdout.Bytes(), &t); err != nil {
		return nil, fmt.Errorf("workload output is not truth JSON: %v", err)
	}
	return &t, nil
}

// procCPU returns the user+system CPU time of pid.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// Fields after the command: state is f[0], utime f[11], stime f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz, nil
}

// memStatus is a process's resident memory from /proc/PID/status, in bytes: VmRSS, VmHWM,
// and VmRSS split into anonymous and file-backed pages.
type memStatus struct{ rss, hwm, anon, file uint64 }

func procMem(pid int) (m memStatus, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseUint(f[0], 10, 64)
		switch k {
		case "VmRSS":
			m.rss = n * 1024
		case "VmHWM":
			m.hwm = n * 1024
		case "RssAnon":
			m.anon = n * 1024
		case "RssFile":
			m.file = n * 1024
		}
	}
	return m, nil
}

// agentProc is `asobserve attach` running as its own process, so that its CPU and memory
// can be read from /proc without the harness's own.
type agentProc struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan error
}

func startAgentProc(bin string, pid int, args ...string) (*agentProc, error) {
	all := append([]string{"attach", "--pid", strconv.Itoa(pid), "--listen", "127.0.0.1:0", "--admin-listen", ""}, args...)
	a := &agentProc{cmd: exec.Command(bin, all...), done: make(chan error, 1)}
	if err := startUntil(a.cmd, &a.stderr, a.done, "serving http://", 30*time.Second); err != nil {
		return nil, fmt.Errorf("asobserve attach: %w", err)
	}
	return a, nil
}

func (a *agentProc) stop() error {
	_ = a.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-a.done:
		return err
	case <-time.After(2 * time.Minute): // detaching every uprobe takes the kernel a while
		_ = a.cmd.Process.Kill()
		<-a.done
		return fmt.Errorf("asobserve attach did not stop on SIGINT")
	}
}

// startServerProcess runs `asobserve testserver` (one node, a free port) and returns its
// hosts and a stop function.
func startServerProcess(bin string) ([]string, func(), error) {
	cmd := exec.Command(bin, "testserver", "--listen", "127.0.0.1:0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("test server: %w", err)
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case l, ok := <-line:
		hosts, found := strings.CutPrefix(l, "testserver: listening ")
		if !ok || !found {
			stop()
			return nil, nil, fmt.Errorf("test server did not start: %q %s", l, stderr.String())
		}
		return strings.Split(hosts, ","), stop, nil
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, nil, fmt.Errorf("test server not listening after 30s: %s", stderr.String())
	}
}
