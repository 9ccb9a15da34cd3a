//go:build linux

package main_test

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/asobserve/asobserve/internal/otlptest"
	"github.com/asobserve/asobserve/internal/snapshot"
	"github.com/asobserve/asobserve/internal/testserver"
)

// One CLIENT span per operation, named and attributed as the seed says, with the
// histogram's timing.
func TestTracingSpansMatchGroundTruth(t *testing.T) {
	e2etest.RequireRoot(t)
	bin := e2etest.BuildAsobserve(t)
	recv := otlptest.Start(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	wl := e2etest.StartWorkload(t, bin, cluster.Hosts(), "--errors", "--count", "600", "--concurrency", "2", "--keys", "100")
	os.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+recv.Addr)
	os.Setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
	defer os.Unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	defer os.Unsetenv("OTEL_BSP_SCHEDULE_DELAY")
	agent, addr := startAgent(t, bin, wl.PID, "--tracing", "--duration", "5m")
	wl.Go(t)
	truth := wl.Wait(t, 2*time.Minute)
	deadline := time.Now().Add(20 * time.Second)
	for len(recv.Spans()) < int(truth.TotalOps) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	var snap snapshot.Snapshot
	get(t, "http://"+addr+"/snapshot", &snap)
	_ = agent.Process.Signal(syscall.SIGTERM)
	_ = agent.Wait()

	spans := recv.Spans()
	if len(spans) != int(truth.TotalOps) {
		t.Fatalf("%d spans, workload did %d operations", len(spans), truth.TotalOps)
	}
	type key struct{ name, op, ns, set, errType string }
	got := map[key]int{}
	var spanSeconds float64
	wantHost, wantPort, _ := net.SplitHostPort(cluster.Hosts()[0])
	var addressed, singleOK int
	for _, s := range spans {
		// server.address: the node a single-record op was sent to; a batch, scan or query
		// has none (it may span nodes).
		op, host, port := s.Attr("db.operation.name"), s.Attr("server.address"), s.Attr("server.port")
		multi := strings.HasPrefix(op, "BATCH_") || op == "SCAN" || op == "QUERY"
		if multi && host != "" || host != "" && (host != wantHost || port != wantPort) {
			t.Fatalf("span %q: server.address %q server.port %q, want %s for single-record ops only", s.GetName(), host, port, cluster.Hosts()[0])
		}
		if host != "" {
			addressed++
		}
		if !multi && s.Attr("error.type") == "" {
			singleOK++
			if host == "" {
				t.Fatalf("successful single-record span %q has no server.address", s.GetName())
			}
		}
		if s.GetKind() != 3 { // SPAN_KIND_CLIENT
			t.Fatalf("span %q kind %v, want CLIENT", s.GetName(), s.GetKind())
		}
		if s.Attr("db.system.name") != "aerospike" || s.Resource["process.pid"] != fmt.Sprint(wl.PID) {
			t.Fatalf("span %q attributes %v resource %v", s.GetName(), s.GetAttributes(), s.Resource)
		}
		errType := s.Attr("error.type")
		if (errType != "") != (s.GetStatus().GetCode() == 2) {
			t.Fatalf("span %q: error.type %q but status %v", s.GetName(), errType, s.GetStatus())
		}
		got[key{s.GetName(), s.Attr("db.operation.name"), s.Attr("db.namespace"), s.Attr("db.collection.name"), errType}]++
		spanSeconds += float64(s.GetEndTimeUnixNano()-s.GetStartTimeUnixNano()) / 1e9
	}
	if singleOK == 0 {
		t.Fatal("no successful single-record spans: server.address went unchecked")
	}
	t.Logf("%d of %d spans carry server.address %s", addressed, len(spans), cluster.Hosts()[0])
	for _, c := range truth.Counts {
		k := key{strings.ToUpper(c.Op) + " " + c.Namespace + "." + c.Set, strings.ToUpper(c.Op), c.Namespace, c.Set, c.ErrorType}
		if got[k] != int(c.Count) {
			t.Errorf("%+v: %d spans, workload did %d", k, got[k], c.Count)
		}
	}
	var histSeconds float64
	for name, v := range snap.Metrics {
		if strings.HasPrefix(name, "db_client_operation_duration_seconds_sum{") {
			histSeconds += v
		}
	}
	if math.Abs(spanSeconds-histSeconds) > 0.10*histSeconds {
		t.Fatalf("span durations total %.4fs, histogram %.4fs: not within 10%%", spanSeconds, histSeconds)
	}
}

// A target that traces itself with the OTel Go SDK: an operation that runs on the
// goroutine of one of its live spans is that span's child, in its trace. The target prints
// the parent each operation should have (testdata/targets/otel): inside a span, nested
// spans, after the inner one ended, no span, a batch, a goroutine started under a span and
// one started under none, an unsampled span, and a span ended on another goroutine.
func TestTracingParentsFromTargetSpans(t *testing.T) {
	e2etest.RequireRoot(t)
	bin := e2etest.BuildAsobserve(t)
	target, err := e2etest.BuildTarget(t, e2etest.TargetBuild{Client: "otel"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e2etest.RemoveTargets)
	recv := otlptest.Start(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	w := e2etest.StartTarget(t, target, cluster.Hosts(), "-rounds", "4")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+recv.Addr)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
	agent, _ := startAgent(t, bin, w.PID, "--tracing", "--duration", "5m")
	w.Go(t)
	var expect []struct {
		Set, Op      string
		TraceID      string `json:"trace_id"`
		ParentSpanID string `json:"parent_span_id"`
	}
	out := w.WaitOutput(t, time.Minute)
	if err := json.Unmarshal(out, &expect); err != nil {
		t.Fatalf("target output: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(recv.Spans()) < len(expect) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	_ = agent.Process.Signal(syscall.SIGTERM)
	_ = agent.Wait()

	type parent struct{ set, traceID, spanID string }
	want, got := map[parent]int{}, map[parent]int{}
	withParent := 0
	for _, e := range expect {
		want[parent{e.Set, e.TraceID, e.ParentSpanID}]++
		if e.ParentSpanID != "" {
			withParent++
		}
	}
	spans := recv.Spans()
	if len(spans) != len(expect) {
		t.Fatalf("%d spans, the target did %d operations", len(spans), len(expect))
	}
	for _, s := range spans {
		p := parent{set: s.Attr("db.collection.name")}
		if len(s.GetParentSpanId()) > 0 {
			p.traceID, p.spanID = hex.EncodeToString(s.GetTraceId()), hex.EncodeToString(s.GetParentSpanId())
		}
		got[p]++
	}
	if !maps.Equal(got, want) {
		t.Fatalf("span parents by set:\n got %v\nwant %v", got, want)
	}
	if withParent != 4*5 {
		t.Fatalf("%d operations with a parent in the ground truth, want 20: the target changed", withParent)
	}
}
