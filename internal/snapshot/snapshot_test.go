//go:build linux

package snapshot_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/rolling"
	"github.com/asobserve/asobserve/internal/snapshot"
	"github.com/asobserve/asobserve/internal/snapshot/snapshottest"
)

const idLabels = "k8s_container_name=,k8s_namespace_name=,k8s_node_name=,k8s_pod_name=,service_name=checkout"

var ballast []byte

func fixture(t *testing.T) (snapshot.Source, int) {
	t.Helper()
	rec := metrics.New(metrics.Options{})
	roll := rolling.New(rolling.Options{})
	rec.AddObserver(roll)
	tg := &observe.Target{Identity: &observe.Identity{Service: "checkout"}}
	for _, d := range []time.Duration{2 * time.Millisecond, 3 * time.Millisecond, 700 * time.Millisecond} {
		rec.Op(tg, observe.Op{Name: "get", Namespace: "test", Set: "users", End: int64(d)})
	}
	rec.Op(tg, observe.Op{Name: "put", Namespace: "test", Set: "users", ErrorType: "Timeout", End: int64(20 * time.Millisecond)})
	self := attach.NewSelfMetrics(rec.Registry)
	self.EventsReceived.Add(4)
	self.EventsLost.Add(2)
	self.EventsInvalid.Add(1)
	self.AttachedProcesses.Set(1)

	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	targets := func() []snapshot.Target {
		return []snapshot.Target{{PID: child.Process.Pid, Service: "sleeper"}, {PID: 1 << 30, Service: "gone"}}
	}
	return snapshot.Source{Registry: rec.Registry, Rolling: roll, Targets: targets,
		Identity: snapshot.Identity{BlockID: "block-1", InstanceID: "instance-42", Node: "node-a"},
		Now:      func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }}, child.Process.Pid
}

func TestBuild(t *testing.T) {
	// Burn CPU and touch memory so the agent's own figures have known lower bounds.
	start := time.Now()
	for time.Since(start) < 300*time.Millisecond {
	}
	ballast = make([]byte, 64<<20)
	for i := 0; i < len(ballast); i += 4096 {
		ballast[i] = 1
	}
	src, childPID := fixture(t)
	cpuBefore := cpuSeconds(t)
	s, err := snapshot.Build(src)
	if err != nil {
		t.Fatal(err)
	}
	cpuAfter := cpuSeconds(t)
	if s.SchemaVersion != 1 || !s.GeneratedAt.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) ||
		s.Identity != (snapshot.Identity{BlockID: "block-1", InstanceID: "instance-42", Node: "node-a"}) {
		t.Fatalf("header %+v %+v", s.GeneratedAt, s.Identity)
	}
	getLabels := "{db_collection_name=users,db_namespace=test,db_operation_name=get,db_system_name=aerospike,error_type=," + idLabels
	want := map[string]float64{
		"db_client_operation_duration_seconds_count" + getLabels + "}":           3,
		"db_client_operation_duration_seconds_bucket" + getLabels + ",le=0.001}": 0,
		"db_client_operation_duration_seconds_bucket" + getLabels + ",le=0.005}": 2,
		"db_client_operation_duration_seconds_bucket" + getLabels + ",le=1}":     3,
		"db_client_operation_duration_seconds_bucket" + getLabels + ",le=+Inf}":  3,
		"asobserve_events_received_total":                                        4,
		"asobserve_events_lost_total":                                            2,
		"asobserve_attached_processes":                                           1,
		"asobserve_internal_stage_metrics_enabled":                               0,
	}
	for k, v := range want {
		got, ok := s.Metrics[k]
		if !ok || got != v {
			t.Errorf("metric %s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if sum := s.Metrics["db_client_operation_duration_seconds_sum"+getLabels+"}"]; sum < 0.7049 || sum > 0.7051 {
		t.Errorf("_sum %v, want 0.705", sum)
	}
	// Two operation series × (9 buckets + +Inf + _sum + _count); the stage histogram has none.
	n := 0
	for k := range s.Metrics {
		if strings.HasPrefix(k, "db_client_") {
			n++
		}
	}
	if n != 24 {
		t.Errorf("%d db_client_* samples, want 24", n)
	}
	if s.Agent.EventsReceived != 4 || s.Agent.EventsLost != 2 || s.Agent.EventsInvalid != 1 || s.Agent.AttachedProcesses != 1 {
		t.Errorf("self metrics %+v", s.Agent)
	}
	self := s.Agent.Process
	// /proc counts in 10 ms clock ticks, getrusage in µs.
	if self.PID != os.Getpid() || self.CPUSeconds < cpuBefore-0.02 || self.CPUSeconds > cpuAfter+0.02 || self.RSSBytes < 64<<20 || self.Error != "" {
		t.Errorf("agent process %+v: want own pid, CPU within [%.3f, %.3f] s, ≥64 MiB RSS", self, cpuBefore, cpuAfter)
	}
	if len(s.Targets) != 2 {
		t.Fatalf("targets %+v", s.Targets)
	}
	live, gone := s.Targets[0], s.Targets[1]
	if live.PID != childPID || live.Service != "sleeper" || live.RSSBytes == 0 || live.RSSBytes > 64<<20 || live.Error != "" {
		t.Errorf("live target %+v", live)
	}
	if gone.PID != 1<<30 || gone.Error == "" || gone.RSSBytes != 0 {
		t.Errorf("missing target %+v", gone)
	}
	if len(s.Rolling) != 2 || s.Rolling[0].Labels["db_operation_name"] != "get" || s.Rolling[0].Windows[0].Count != 3 ||
		s.Rolling[1].Labels["error_type"] != "Timeout" || s.Rolling[1].Windows[2].Count != 1 {
		t.Errorf("rolling %+v", s.Rolling)
	}
	doc, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := snapshottest.Validate(doc); err != nil {
		t.Fatalf("schema: %v\n%s", err, doc)
	}
}

func cpuSeconds(t *testing.T) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func TestSchemaIsStrict(t *testing.T) {
	src, _ := fixture(t)
	s, err := snapshot.Build(src)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := json.Marshal(s)
	var m map[string]any
	json.Unmarshal(doc, &m)
	broken := []func(map[string]any){
		func(m map[string]any) { delete(m, "identity") },
		func(m map[string]any) { m["surprise"] = 1 },
		func(m map[string]any) { m["metrics"].(map[string]any)["bad name{}"] = 1 },
		func(m map[string]any) { m["rolling"].([]any)[0].(map[string]any)["kind"] = "other" },
		func(m map[string]any) {
			delete(m["rolling"].([]any)[0].(map[string]any)["windows"].([]any)[0].(map[string]any), "p99_seconds")
		},
		func(m map[string]any) { m["generated_at"] = "yesterday" },
	}
	for i, breakIt := range broken {
		var c map[string]any
		json.Unmarshal(doc, &c)
		breakIt(c)
		b, _ := json.Marshal(c)
		if err := snapshottest.Validate(b); err == nil {
			t.Errorf("mutation %d passed the schema", i)
		}
	}
}

func TestHandler(t *testing.T) {
	src, _ := fixture(t)
	srv := httptest.NewServer(snapshot.Handler(src))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if err := snapshottest.Validate(body); err != nil {
		t.Fatalf("schema: %v", err)
	}
	var s snapshot.Snapshot
	if err := json.Unmarshal(body, &s); err != nil || s.Agent.EventsReceived != 4 {
		t.Fatalf("decode: %v %+v", err, s.Agent)
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		req, _ := http.NewRequest(m, srv.URL, strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET" {
			t.Errorf("%s: %d allow %q", m, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
}
