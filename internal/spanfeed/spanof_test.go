package spanfeed

import (
	"context"
	"encoding/hex"
	"testing"
	"time"

	"github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/otlptest"
)

// TestSpanOfNamesTheSpanOpMakes checks the exemplar contract: SpanOf, called before Op, gives
// the IDs of the span Op exports, and is sampled exactly for the spans that are exported.
func TestSpanOfNamesTheSpanOpMakes(t *testing.T) {
	recv := otlptest.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+recv.Addr)
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
	t.Setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
	t.Setenv("OTEL_TRACES_SAMPLER_ARG", "0.5")
	d := &describer{calls: map[int]int{}}
	f, err := New(nil, t.Logf, d.describe)
	if err != nil {
		t.Fatal(err)
	}
	target := &observe.Target{PID: 7, Wall: wall}
	want := map[string]string{} // span id -> trace id, of the sampled spans
	const roots = 200
	for i := range roots {
		op := observe.Op{Name: "get", Namespace: "test", Set: "users", ID: uint64(i + 1), Start: int64(i) * 1000, End: int64(i)*1000 + 500}
		f.Stage(target, observe.Stage{Name: "io", Op: "get", OpID: op.ID, Start: op.Start + 100, End: op.Start + 200})
		sc := f.SpanOf(target, &op)
		if !sc.IsValid() {
			t.Fatalf("op %d: invalid span context", i)
		}
		if sc.IsSampled() {
			want[sc.SpanID().String()] = sc.TraceID().String()
		}
		f.Op(target, op)
	}
	unsampledParent := observe.Op{Name: "put", ID: 1000, Start: 1, End: 2, ParentTraceID: [16]byte{1}, ParentSpanID: [8]byte{2}}
	if sc := f.SpanOf(target, &unsampledParent); sc.IsSampled() || sc.TraceID() != [16]byte{1} {
		t.Errorf("child of an unsampled parent: %v sampled=%v, want the parent's trace, unsampled", sc.TraceID(), sc.IsSampled())
	}
	f.Op(target, unsampledParent)
	if len(want) < roots/4 || len(want) > roots*3/4 {
		t.Fatalf("%d of %d sampled at ratio 0.5", len(want), roots)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	opSpans := map[string]bool{}
	for _, s := range recv.Spans() {
		if s.GetName() == "GET test.users" {
			got[hex.EncodeToString(s.GetSpanId())] = hex.EncodeToString(s.GetTraceId())
			opSpans[hex.EncodeToString(s.GetSpanId())] = true
		}
	}
	if len(got) != len(want) {
		t.Fatalf("received %d operation spans, SpanOf said %d are sampled", len(got), len(want))
	}
	for span, trace := range want {
		if got[span] != trace {
			t.Errorf("span %s: received trace %q, SpanOf said %s", span, got[span], trace)
		}
	}
	stages := 0
	for _, s := range recv.Spans() {
		if s.GetName() != "io" {
			continue
		}
		stages++
		parent := hex.EncodeToString(s.GetParentSpanId())
		if !opSpans[parent] || got[parent] != hex.EncodeToString(s.GetTraceId()) || opSpans[hex.EncodeToString(s.GetSpanId())] {
			t.Errorf("stage span %x: parent %s, trace %x; want a new span under its operation's", s.GetSpanId(), parent, s.GetTraceId())
		}
	}
	if stages != len(want) {
		t.Errorf("%d stage spans, want one per sampled operation (%d)", stages, len(want))
	}
}
