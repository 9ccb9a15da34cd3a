//go:build linux

package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/asobserve/asobserve/internal/semconv"
	"github.com/asobserve/asobserve/internal/testserver"
)

type profileReport struct {
	Stopped    string `json:"stopped"`
	Operations []struct {
		Op    string `json:"db_operation_name"`
		Total struct {
			Count uint64  `json:"count"`
			Sum   float64 `json:"sum_seconds"`
		} `json:"total"`
		Stages []struct {
			Stage string  `json:"stage"`
			Count uint64  `json:"count"`
			Sum   float64 `json:"sum_seconds"`
			P50   float64 `json:"p50_seconds"`
			Share float64 `json:"share"`
		} `json:"stages"`
	} `json:"operations"`
}

// profile stopped by SIGINT still prints the full report and leaves nothing attached.
func TestProfileReportAfterSIGINT(t *testing.T) {
	e2etest.RequireRoot(t)
	bin := e2etest.BuildAsobserve(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 3, Faults: []testserver.Fault{{Latency: time.Millisecond}}})
	wl := e2etest.StartWorkload(t, bin, cluster.Hosts(), "--mix", "get=1,batch_read=1", "--duration", "60s",
		"--concurrency", "2", "--keys", "60", "--concurrent-nodes", "1")
	cmd := exec.Command(bin, "profile", "--pid", fmt.Sprint(wl.PID), "--duration", "2m", "--json")
	// exec's copier goroutine writes stderr while the test polls it.
	var out bytes.Buffer
	stderr := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = &out, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "probes attached") {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("profile did not attach within 30s:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	wl.Go(t)
	// How long the profile samples, not a wait for something to happen: SIGINT must stop
	// it mid-run.
	time.Sleep(3 * time.Second)
	_ = cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("profile: %v\n%s", err, stderr.String())
	}
	var r profileReport
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if r.Stopped != "interrupt" {
		t.Errorf("stopped = %q", r.Stopped)
	}
	byOp := map[string]map[string]bool{}
	for _, o := range r.Operations {
		byOp[o.Op] = map[string]bool{}
		if o.Total.Count == 0 {
			t.Errorf("%s: no operations", o.Op)
		}
		for _, s := range o.Stages {
			byOp[o.Op][s.Stage] = true
			if s.Share < 0 || s.P50 <= 0 || s.Count == 0 {
				t.Errorf("%s/%s: inconsistent %+v", o.Op, s.Stage, s)
			}
			if s.Stage != semconv.StageScheduleDelay && s.Stage != semconv.StageLimiterWait && s.Sum > o.Total.Sum {
				t.Errorf("%s/%s: stage time %.4fs exceeds operation time %.4fs", o.Op, s.Stage, s.Sum, o.Total.Sum)
			}
		}
	}
	for _, st := range []string{semconv.StageConnAcquire, semconv.StageIO, semconv.StageParse, semconv.StageAttempt} {
		if !byOp[semconv.OpGet][st] {
			t.Errorf("get lacks stage %s: %v", st, byOp[semconv.OpGet])
		}
	}
	for _, st := range semconv.Stages {
		if !byOp[semconv.OpBatchRead][st] {
			t.Errorf("batch_read lacks stage %s: %v", st, byOp[semconv.OpBatchRead])
		}
	}
	if left := e2etest.UprobesOn(t, bin, wl.PID); len(left) != 0 {
		t.Fatalf("%d uprobes left after profile", len(left))
	}
}

// `asobserve stages on|off` switches a running agent through its admin endpoint, which
// refuses anything but PUT and GET.
func TestStagesCommand(t *testing.T) {
	e2etest.RequireRoot(t)
	bin := e2etest.BuildAsobserve(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	wl := e2etest.StartWorkload(t, bin, cluster.Hosts(), "--count", "10")
	admin := e2etest.FreeAddr(t)
	startAgent(t, bin, wl.PID, "--admin-listen", admin)
	for _, state := range []string{"on", "off", "on"} {
		out, code := runCLI(t, bin, "stages", state, "--admin", "http://"+admin)
		if code != 0 || out != "stages "+state {
			t.Fatalf("stages %s: %q (exit %d)", state, out, code)
		}
	}
	resp, err := http.Post("http://"+admin+"/stages", "text/plain", strings.NewReader("off"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /stages: %s, want 405", resp.Status)
	}
	if out, code := runCLI(t, bin, "stages", "maybe"); code != 2 || out != `asobserve: stages takes on or off, not "maybe"` {
		t.Fatalf("stages maybe: %q exit %d", out, code)
	}
}
