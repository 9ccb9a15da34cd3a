//go:build linux

package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/asobserve/asobserve/internal/semconv"
	"github.com/asobserve/asobserve/internal/snapshot"
	"github.com/asobserve/asobserve/internal/testserver"
	"github.com/asobserve/asobserve/internal/workload"
)

// startAgent runs `asobserve attach` as a child process and waits until it has attached.
func startAgent(t *testing.T, bin string, pid int, extra ...string) (*exec.Cmd, string) {
	t.Helper()
	addr := e2etest.FreeAddr(t)
	args := append([]string{"attach", "--pid", fmt.Sprint(pid), "--listen", addr, "--admin-listen", "", "--linger", "2m"}, extra...)
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	attached := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var all strings.Builder
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "serving http://") {
				attached <- all.String()
			}
		}
		attached <- "agent exited:\n" + all.String()
	}()
	select {
	case log := <-attached:
		if strings.HasPrefix(log, "agent exited") {
			t.Fatal(log)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not attach within 30s")
	}
	return cmd, addr
}

func get(t *testing.T, url string, into any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %s", url, resp.Status, body)
	}
	if err := json.Unmarshal(body, into); err != nil {
		t.Fatalf("GET %s: %v\n%s", url, err, body)
	}
}

// The snapshot's rolling counts, its metric samples and the workload's truth agree.
func TestSnapshotMatchesHistogramLive(t *testing.T) {
	e2etest.RequireRoot(t)
	bin := e2etest.BuildAsobserve(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	wl := e2etest.StartWorkload(t, bin, cluster.Hosts(), "--errors", "--count", "800", "--concurrency", "2", "--keys", "100")
	_, addr := startAgent(t, bin, wl.PID, "--duration", "5m")
	var before snapshot.Snapshot
	get(t, "http://"+addr+"/snapshot", &before)
	if before.Agent.AttachedProcesses != 1 || len(before.Targets) != 1 || before.Targets[0].PID != wl.PID || before.Targets[0].RSSBytes == 0 {
		t.Fatalf("snapshot while attached: agent %+v targets %+v", before.Agent, before.Targets)
	}
	wl.Go(t)
	truth := wl.Wait(t, 2*time.Minute)
	var snap snapshot.Snapshot
	deadline := time.Now().Add(10 * time.Second)
	for {
		get(t, "http://"+addr+"/snapshot", &snap)
		if snap.Agent.EventsReceived >= uint64(truth.TotalOps) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	checked := 0
	for _, c := range truth.Counts {
		key := fmt.Sprintf(`%s_count{db_collection_name=%s,db_namespace=%s,db_operation_name=%s,db_system_name=aerospike,error_type=%s,k8s_container_name=,k8s_namespace_name=,k8s_node_name=,k8s_pod_name=,service_name=asobserve-0}`,
			semconv.OperationMetric, c.Set, c.Namespace, c.Op, c.ErrorType)
		got, ok := snap.Metrics[key]
		if !ok {
			t.Errorf("snapshot lacks %s", key)
			continue
		}
		if int64(got) != c.Count {
			t.Errorf("%s = %v, workload did %d", key, got, c.Count)
		}
		if r := rollingCount(snap, c); r != uint64(c.Count) {
			t.Errorf("rolling 15m count for %+v = %d, want %d", c, r, c.Count)
		}
		checked++
	}
	if checked < 16 {
		t.Fatalf("only %d series checked", checked)
	}
	if snap.Agent.EventsReceived != uint64(truth.TotalOps) || snap.Agent.EventsLost != 0 {
		t.Fatalf("snapshot self-metrics %+v, want %d events received and none lost", snap.Agent, truth.TotalOps)
	}
}

func rollingCount(s snapshot.Snapshot, c workload.Count) uint64 {
	for _, r := range s.Rolling {
		l := r.Labels
		if l[semconv.LabelOperation] == c.Op && l[semconv.LabelNamespace] == c.Namespace &&
			l[semconv.LabelCollection] == c.Set && l[semconv.LabelErrorType] == c.ErrorType && len(r.Windows) == 3 {
			return r.Windows[2].Count
		}
	}
	return 0
}

// SIGKILL of the agent mid-run: the target finishes exactly like an unobserved run, and
// the kernel holds no uprobe on it afterwards.
func TestAgentSIGKILLLeavesTargetUnharmed(t *testing.T) {
	e2etest.RequireRoot(t)
	bin := e2etest.BuildAsobserve(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	args := []string{"--errors", "--count", "3000", "--concurrency", "1", "--keys", "100", "--rate", "1500"}

	unobserved := e2etest.StartWorkload(t, bin, cluster.Hosts(), args...)
	unobserved.Go(t)
	want := e2etest.TruthSeries(unobserved.Wait(t, 2*time.Minute))

	observed := e2etest.StartWorkload(t, bin, cluster.Hosts(), args...)
	agent, _ := startAgent(t, bin, observed.PID)
	if len(e2etest.UprobesOn(t, bin, observed.PID)) == 0 {
		t.Fatal("no uprobes seen while attached: the check below would prove nothing")
	}
	observed.Go(t)
	time.Sleep(700 * time.Millisecond)
	if err := agent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = agent.Wait()
	got := e2etest.TruthSeries(observed.Wait(t, 2*time.Minute))
	for k, w := range want {
		if got[k].Count != w.Count {
			t.Errorf("%+v: %d operations, unobserved run did %d", k, got[k].Count, w.Count)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d series, unobserved run had %d", len(got), len(want))
	}
	if left := e2etest.UprobesOn(t, bin, observed.PID); len(left) != 0 {
		t.Fatalf("uprobes remain after SIGKILL:\n%s", strings.Join(left, "\n"))
	}
}
