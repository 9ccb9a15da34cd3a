package spanfeed

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/otlptest"
	"github.com/asobserve/asobserve/internal/tracing"
)

// describer hands out one new Process per call and counts the calls.
type describer struct {
	mu    sync.Mutex
	calls map[int]int
}

func (d *describer) describe(t *observe.Target) *tracing.Process {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls[t.PID]++
	return &tracing.Process{PID: t.PID, ExecutableName: "target"}
}

func (d *describer) count(pid int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[pid]
}

var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// wall is a source clock whose nanosecond 0 is epoch.
func wall(ns int64) time.Time { return epoch.Add(time.Duration(ns)) }

func TestFeedMakesSpansAndForgetsGoneTargets(t *testing.T) {
	recv := otlptest.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+recv.Addr)
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
	d := &describer{calls: map[int]int{}}
	f, err := New(nil, t.Logf, d.describe)
	if err != nil {
		t.Fatal(err)
	}
	target := &observe.Target{PID: 7, Identity: &observe.Identity{Service: "checkout"}, Wall: wall,
		Server: func(node uint64) (observe.ServerAddr, bool) {
			return observe.ServerAddr{Host: "10.0.0.9", Port: 3000}, node == 0xabc
		}}
	parentTrace := [16]byte{0: 1, 15: 2}
	parentSpan := [8]byte{0: 3, 7: 4}
	f.Stage(target, observe.Stage{Name: "io", Op: "get", OpID: 1, Start: 1_500, End: 2_500})
	f.Op(target, observe.Op{Name: "get", Namespace: "test", Set: "users", ID: 1, Start: 1_000, End: 3_000, Node: 0xabc,
		ParentTraceID: parentTrace, ParentSpanID: parentSpan, ParentFlags: 1})
	f.Op(target, observe.Op{Name: "put", Namespace: "test", Set: "users", ErrorType: "Timeout", ResultCode: 9, ID: 2, Start: 5_000, End: 9_000})
	if n := d.count(7); n != 1 {
		t.Fatalf("target described %d times for its first events, want once", n)
	}
	f.TargetGone(target)
	f.TargetGone(target) // a second end changes nothing
	f.Op(target, observe.Op{Name: "get", Namespace: "test", Set: "users", ID: 3, Start: 1, End: 2})
	if n := d.count(7); n != 2 {
		t.Fatalf("target described %d times, want a fresh resource (2) after TargetGone", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	byName := map[string][]otlptest.Span{}
	for _, s := range recv.Spans() {
		byName[s.GetName()] = append(byName[s.GetName()], s)
	}
	if len(byName["GET test.users"]) != 2 || len(byName["PUT test.users"]) != 1 || len(byName["io"]) != 1 {
		t.Fatalf("spans by name: %v", names(recv.Spans()))
	}
	get := byName["GET test.users"][0]
	if get.GetStartTimeUnixNano() != uint64(epoch.Add(1_000).UnixNano()) || get.GetEndTimeUnixNano() != uint64(epoch.Add(3_000).UnixNano()) {
		t.Errorf("get span [%d, %d], want the op's [%d, %d] on the target's clock", get.GetStartTimeUnixNano(), get.GetEndTimeUnixNano(),
			epoch.Add(1_000).UnixNano(), epoch.Add(3_000).UnixNano())
	}
	if get.Attr("server.address") != "10.0.0.9" || get.Attr("server.port") != "3000" {
		t.Errorf("get span server %q:%q, want 10.0.0.9:3000", get.Attr("server.address"), get.Attr("server.port"))
	}
	if string(get.GetTraceId()) != string(parentTrace[:]) || string(get.GetParentSpanId()) != string(parentSpan[:]) {
		t.Errorf("get span trace %x parent %x, want the target's span %x/%x", get.GetTraceId(), get.GetParentSpanId(), parentTrace, parentSpan)
	}
	if io := byName["io"][0]; string(io.GetParentSpanId()) != string(get.GetSpanId()) {
		t.Errorf("io stage's parent %x, want the get span %x", io.GetParentSpanId(), get.GetSpanId())
	}
	if put := byName["PUT test.users"][0]; put.Attr("error.type") != "Timeout" || put.Attr("server.address") != "" {
		t.Errorf("put span error.type %q server.address %q, want Timeout and none (node unknown)", put.Attr("error.type"), put.Attr("server.address"))
	}
}

func names(spans []otlptest.Span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.GetName())
	}
	return out
}
