package main

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/rolling"
	"github.com/asobserve/asobserve/internal/snapshot"
	"github.com/asobserve/asobserve/internal/snapshot/snapshottest"
)

const snapshotFixture = `{"schema_version":1,"generated_at":"2026-01-02T03:04:05Z","identity":{"block_id":"block-1","instance_id":"instance-42","node":"node-a"},
"agent":{"events_received":1200,"events_lost":3,"events_invalid":0,"attached_processes":1,"process":{"pid":100,"cpu_seconds":1.5,"rss_bytes":31457280}},
"targets":[{"pid":200,"service_name":"checkout","cpu_seconds":12.25,"rss_bytes":104857600},{"pid":300,"service_name":"gone","cpu_seconds":0,"rss_bytes":0,"error":"open /proc/300/stat: no such file or directory"}],
"rolling":[
{"kind":"operation","labels":{"service_name":"checkout","db_operation_name":"get","db_namespace":"test","db_collection_name":"users","error_type":""},"current_seconds":0.0021,"last_seen":"2026-01-02T03:04:04Z","windows":[
{"window":"1m0s","window_seconds":60,"count":600,"rate_per_second":10,"avg_seconds":0.0021,"p50_seconds":0.00198,"p95_seconds":0.0041,"p99_seconds":0.0123},
{"window":"5m0s","window_seconds":300,"count":1150,"rate_per_second":3.8333,"avg_seconds":0.0022,"p50_seconds":0.002,"p95_seconds":0.0043,"p99_seconds":0.0131},
{"window":"15m0s","window_seconds":900,"count":1150,"rate_per_second":1.2777,"avg_seconds":0.0022,"p50_seconds":0.002,"p95_seconds":0.0043,"p99_seconds":0.0131}]},
{"kind":"operation","labels":{"service_name":"checkout","db_operation_name":"put","db_namespace":"test","db_collection_name":"users","error_type":"Timeout"},"current_seconds":1.0,"last_seen":"2026-01-02T03:03:00Z","windows":[
{"window":"1m0s","window_seconds":60,"count":0,"rate_per_second":0,"avg_seconds":0,"p50_seconds":0,"p95_seconds":0,"p99_seconds":0},
{"window":"5m0s","window_seconds":300,"count":2,"rate_per_second":0.0067,"avg_seconds":1.0,"p50_seconds":1.0,"p95_seconds":1.0,"p99_seconds":1.0},
{"window":"15m0s","window_seconds":900,"count":2,"rate_per_second":0.0022,"avg_seconds":1.0,"p50_seconds":1.0,"p95_seconds":1.0,"p99_seconds":1.0}]},
{"kind":"stage","labels":{"service_name":"checkout","db_operation_name":"batch_read","stage":"io"},"current_seconds":0.00004,"last_seen":"2026-01-02T03:04:04Z","windows":[
{"window":"1m0s","window_seconds":60,"count":48,"rate_per_second":0.8,"avg_seconds":0.0000412,"p50_seconds":0.00004,"p95_seconds":0.000061,"p99_seconds":0.00009}]}],
"metrics":{"asobserve_events_received_total":1200}}`

const snapshotGolden = `snapshot 2026-01-02T03:04:05Z  block block-1  instance instance-42  node node-a

agent: 1200 events received, 3 lost, 0 invalid; 1 attached processes

PROCESS  PID  SERVICE   CPU     RSS
agent    100  -         1.50s   30.0 MiB
target   200  checkout  12.25s  100.0 MiB
target   300  gone      -       -  (open /proc/300/stat: no such file or directory)

operations (rolling windows)
SERVICE   OPERATION  NAMESPACE  SET    ERROR    WINDOW  COUNT  RATE/S  AVG    P50     P95    P99
checkout  get        test       users  -        1m      600    10      2.1ms  1.98ms  4.1ms  12.3ms
                                                5m      1150   3.83    2.2ms  2ms     4.3ms  13.1ms
                                                15m     1150   1.28    2.2ms  2ms     4.3ms  13.1ms
checkout  put        test       users  Timeout  1m      0      0       -      -       -      -
                                                5m      2      0.0067  1s     1s      1s     1s
                                                15m     2      0.0022  1s     1s      1s     1s

stages (rolling windows)
SERVICE   OPERATION   STAGE  WINDOW  COUNT  RATE/S  AVG     P50   P95   P99
checkout  batch_read  io     1m      48     0.8     41.2µs  40µs  61µs  90µs
`

func TestPrintSnapshotFixture(t *testing.T) {
	if err := snapshottest.Validate([]byte(snapshotFixture)); err != nil {
		t.Fatalf("fixture no longer matches the schema: %v", err)
	}
	var s snapshot.Snapshot
	if err := json.Unmarshal([]byte(snapshotFixture), &s); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := printSnapshot(&out, &s); err != nil {
		t.Fatal(err)
	}
	if out.String() != snapshotGolden {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), snapshotGolden)
	}
}

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	rootCmd.SetOut(&out)
	rootCmd.SetArgs(args)
	defer rootCmd.SetOut(nil)
	err := rootCmd.Execute()
	return out.String(), err
}

func TestSnapshotCommandAgainstHandler(t *testing.T) {
	rec := metrics.New(metrics.Options{})
	roll := rolling.New(rolling.Options{})
	rec.AddObserver(roll)
	tg := &observe.Target{Identity: &observe.Identity{Service: "checkout"}}
	for i := 0; i < 7; i++ {
		rec.Op(tg, observe.Op{Name: "get", Namespace: "test", Set: "users", End: int64(3 * time.Millisecond)})
	}
	// The agent's counter (attach.SelfMetrics) by name: this test builds on every platform.
	received := prometheus.NewCounter(prometheus.CounterOpts{Name: "asobserve_events_received_total", Help: "Probe records read from the ring buffer."})
	rec.Registry.MustRegister(received)
	received.Add(7)
	src := snapshot.Source{Registry: rec.Registry, Rolling: roll, Identity: snapshot.Identity{BlockID: "blk", InstanceID: "inst", Node: "nd"},
		Targets: func() []snapshot.Target { return []snapshot.Target{{PID: os.Getpid(), Service: "self"}} }}
	srv := httptest.NewServer(snapshot.Handler(src))
	defer srv.Close()

	out, err := runCLI(t, "snapshot", "--agent", srv.URL, "--json=false")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"block blk  instance inst  node nd", "agent: 7 events received, 0 lost, 0 invalid; 0 attached processes",
		"target   ", " self ", "checkout  get        test       users  -      1m      7      "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Identical samples: avg and every percentile are exact in each of the three windows.
	if n := strings.Count(out, "3ms  3ms  3ms  3ms\n"); n != 3 {
		t.Errorf("%d windows with avg/p50/p95/p99 of 3ms, want 3:\n%s", n, out)
	}

	raw, err := runCLI(t, "snapshot", "--agent", strings.TrimPrefix(srv.URL, "http://")+"/snapshot", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if err := snapshottest.Validate([]byte(raw)); err != nil {
		t.Fatalf("--json output: %v", err)
	}
	var s snapshot.Snapshot
	json.Unmarshal([]byte(raw), &s)
	key := "db_client_operation_duration_seconds_count{db_collection_name=users,db_namespace=test,db_operation_name=get,db_system_name=aerospike,error_type=,k8s_container_name=,k8s_namespace_name=,k8s_node_name=,k8s_pod_name=,service_name=checkout}"
	if s.Metrics[key] != 7 || s.Rolling[0].Windows[0].Count != 7 {
		t.Fatalf("histogram count %v, rolling count %d, want 7 and 7", s.Metrics[key], s.Rolling[0].Windows[0].Count)
	}
}

func TestSnapshotCommandErrors(t *testing.T) {
	_, err := runCLI(t, "snapshot", "--agent", "http://127.0.0.1:1", "--json=false")
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "cannot reach the agent at http://127.0.0.1:1/snapshot") {
		t.Fatalf("unreachable agent: %v", err)
	}
	_, err = runCLI(t, "snapshot", "--agent", "http://", "--json=false")
	if err == nil || exitCode(err) != 2 {
		t.Fatalf("bad URL: %v (exit %d)", err, exitCode(err))
	}
}
