//go:build linux

package main_test

import (
	"encoding/hex"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/asobserve/asobserve/internal/otlptest"
	"github.com/asobserve/asobserve/internal/testserver"
)

// With OTEL_METRICS_EXPORTER=otlp,prometheus and tracing on, the agent pushes
// db.client.operation.duration whose per-series counts are the workload's, and both its
// data points and the OpenMetrics exposition carry exemplars naming spans the receiver got
// for the same operation.
func TestOTLPMetricsAndExemplarsMatchGroundTruth(t *testing.T) {
	e2etest.RequireRoot(t)
	bin := e2etest.BuildAsobserve(t)
	recv := otlptest.Start(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	wl := e2etest.StartWorkload(t, bin, cluster.Hosts(), "--errors", "--count", "600", "--concurrency", "2", "--keys", "100")
	for k, v := range map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + recv.Addr, "OTEL_BSP_SCHEDULE_DELAY": "200",
		"OTEL_METRICS_EXPORTER": "otlp,prometheus", "OTEL_METRIC_EXPORT_INTERVAL": "200"} {
		t.Setenv(k, v)
	}
	agent, addr := startAgent(t, bin, wl.PID, "--tracing", "--duration", "5m")
	wl.Go(t)
	truth := wl.Wait(t, 2*time.Minute)

	type key struct{ op, ns, set, errType string }
	counts := func() (map[key]uint64, uint64) {
		last := map[string]otlptest.Histogram{}
		for _, p := range recv.Histograms("db.client.operation.duration") {
			last[fmt.Sprint(p.Attrs)] = p // cumulative: the last point of a series is its total
		}
		out, total := map[key]uint64{}, uint64(0)
		for _, p := range last {
			out[key{p.Attrs["db.operation.name"], p.Attrs["db.namespace"], p.Attrs["db.collection.name"], p.Attrs["error.type"]}] += p.Count
			total += p.Count
		}
		return out, total
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, total := counts(); total < uint64(truth.TotalOps) || len(recv.Spans()) < int(truth.TotalOps); _, total = counts() {
		if time.Now().After(deadline) {
			t.Fatalf("after 20s: %d operations in OTLP metrics, %d spans; the workload did %d", total, len(recv.Spans()), truth.TotalOps)
		}
		time.Sleep(100 * time.Millisecond)
	}
	om := scrapeOpenMetrics(t, addr)
	_ = agent.Process.Signal(syscall.SIGTERM)
	_ = agent.Wait()

	got, total := counts()
	if total != uint64(truth.TotalOps) {
		t.Errorf("OTLP metrics count %d operations, the workload did %d", total, truth.TotalOps)
	}
	for _, c := range truth.Counts {
		k := key{strings.ToUpper(c.Op), c.Namespace, c.Set, c.ErrorType}
		if got[k] != uint64(c.Count) {
			t.Errorf("%+v: %d in OTLP metrics, workload did %d", k, got[k], c.Count)
		}
	}

	spanOp := map[string]string{} // trace_id/span_id -> db.operation.name
	for _, s := range recv.Spans() {
		spanOp[hex.EncodeToString(s.GetTraceId())+"/"+hex.EncodeToString(s.GetSpanId())] = s.Attr("db.operation.name")
	}
	otlpExemplars := 0
	for _, p := range recv.Histograms("db.client.operation.duration") {
		for _, ex := range p.Exemplars {
			otlpExemplars++
			id := hex.EncodeToString(ex.GetTraceId()) + "/" + hex.EncodeToString(ex.GetSpanId())
			if op, ok := spanOp[id]; !ok || op != p.Attrs["db.operation.name"] {
				t.Fatalf("OTLP exemplar %s of a %s point: the receiver has it as a span of %q", id, p.Attrs["db.operation.name"], op)
			}
		}
	}
	exemplar := regexp.MustCompile(`(?m)^db_client_operation_duration_seconds_bucket\{.*db_operation_name="([a-z_]+)".*\} \d+ # \{([^}]*)\}`)
	exemplarLabel := regexp.MustCompile(`(trace_id|span_id)="([0-9a-f]+)"`) // in either order
	matches := exemplar.FindAllStringSubmatch(om, -1)
	for _, m := range matches {
		ids := map[string]string{}
		for _, l := range exemplarLabel.FindAllStringSubmatch(m[2], -1) {
			ids[l[1]] = l[2]
		}
		id := ids["trace_id"] + "/" + ids["span_id"]
		if op, ok := spanOp[id]; !ok || op != strings.ToUpper(m[1]) {
			t.Fatalf("/metrics exemplar {%s} of %s: the receiver has it as a span of %q", m[2], m[1], op)
		}
	}
	if otlpExemplars == 0 || len(matches) == 0 {
		t.Fatalf("%d OTLP exemplars, %d OpenMetrics exemplars: want both", otlpExemplars, len(matches))
	}
	t.Logf("%d OTLP and %d OpenMetrics exemplars, all naming received spans of their operation", otlpExemplars, len(matches))
}

func scrapeOpenMetrics(t *testing.T, addr string) string {
	t.Helper()
	return string(e2etest.Fetch(t, "http://"+addr+"/metrics", "application/openmetrics-text; version=1.0.0"))
}

// An unreachable OTLP endpoint: the agent warns once, keeps serving /metrics, and counts
// the failed exports.
func TestOTLPMetricsEndpointDown(t *testing.T) {
	e2etest.RequireRoot(t)
	bin := e2etest.BuildAsobserve(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	wl := e2etest.StartWorkload(t, bin, cluster.Hosts(), "--count", "200", "--concurrency", "1", "--keys", "10")
	down := e2etest.FreeAddr(t) // nothing listens there
	t.Setenv("OTEL_METRICS_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://"+down)
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "100")
	addr := e2etest.FreeAddr(t)
	var log lockedBuffer
	agent := exec.Command(bin, "attach", "--pid", fmt.Sprint(wl.PID), "--listen", addr, "--admin-listen", "", "--linger", "2m", "--duration", "5m")
	agent.Stderr = &log
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(log.String(), "serving http://") {
		if time.Now().After(deadline) {
			t.Fatalf("agent did not attach within 30s:\n%s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	wl.Go(t)
	truth := wl.Wait(t, 2*time.Minute)
	failures := regexp.MustCompile(`(?m)^asobserve_metric_export_failures_total (\d+)$`)
	opsCount := regexp.MustCompile(`(?m)^db_client_operation_duration_seconds_count\{[^}]*\} (\d+)$`)
	deadline = time.Now().Add(20 * time.Second)
	for {
		text := scrapeText(t, addr)
		var failed, ops int64
		if m := failures.FindStringSubmatch(text); m != nil {
			fmt.Sscan(m[1], &failed)
		}
		for _, m := range opsCount.FindAllStringSubmatch(text, -1) {
			var n int64
			fmt.Sscan(m[1], &n)
			ops += n
		}
		if failed >= 1 && ops == truth.TotalOps { // at the latest, the gone target's final export fails
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20s: %d failed exports counted, /metrics counts %d of %d operations", failed, ops, truth.TotalOps)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = agent.Process.Signal(syscall.SIGTERM)
	if err := agent.Wait(); err != nil {
		t.Errorf("agent exit: %v\n%s", err, log.String())
	}
	if n := strings.Count(log.String(), "warning: exporting metrics to http://"+down+" failed"); n != 1 {
		t.Errorf("%d export warnings for one outage, want 1:\n%s", n, log.String())
	}
}

func scrapeText(t *testing.T, addr string) string {
	t.Helper()
	return string(e2etest.Fetch(t, "http://"+addr+"/metrics", ""))
}
