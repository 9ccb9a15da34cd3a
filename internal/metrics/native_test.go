package metrics

import (
	"bytes"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"go.opentelemetry.io/otel/trace"

	"github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/semconv"
)

func decodeProtobuf(t *testing.T, r *Recorder) map[string]*dto.MetricFamily {
	t.Helper()
	var buf bytes.Buffer
	if err := r.Encode(&buf, expfmt.NewFormat(expfmt.TypeProtoDelim)); err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	dec := expfmt.NewDecoder(&buf, expfmt.NewFormat(expfmt.TypeProtoDelim))
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err != nil {
			break
		}
		out[mf.GetName()] = mf
	}
	return out
}

func TestProtobufCarriesNativeAndClassicBuckets(t *testing.T) {
	r := New(Options{})
	id := &Identity{Service: "svc"}
	for _, d := range []time.Duration{60 * time.Microsecond, 200 * time.Microsecond, 2 * time.Millisecond} {
		r.Op(of(id), observe.Op{Name: "get", Namespace: "test", Set: "users", End: lasting(d)})
	}
	h := decodeProtobuf(t, r)[semconv.OperationMetric].GetMetric()[0].GetHistogram()
	if got := len(h.GetBucket()); got != len(semconv.OperationBuckets) {
		t.Errorf("%d classic buckets, want the seed's %d", got, len(semconv.OperationBuckets))
	}
	if h.GetSchema() != 3 {
		t.Errorf("native schema %d, want 3 (factor %v)", h.GetSchema(), NativeBucketFactor)
	}
	var sum, running int64
	for _, d := range h.GetPositiveDelta() { // each delta is a bucket's count minus the previous one's
		running += d
		sum += running
	}
	if sum != 3 {
		t.Errorf("native buckets hold %d observations, want 3", sum)
	}
	if len(h.GetPositiveSpan()) == 0 {
		t.Error("no native bucket spans")
	}
}

func TestTextFormatHasNoNativeOrExemplarTraces(t *testing.T) {
	r := New(Options{})
	r.LinkSpans(func(*observe.Target, *observe.Op) trace.SpanContext { return sampledSpan })
	r.Op(of(nil), observe.Op{Name: "get", End: lasting(time.Millisecond)})
	text := r.Text()
	if strings.Contains(text, "trace_id") {
		t.Errorf("classic text format carries an exemplar:\n%s", text)
	}
	if n := strings.Count(text, semconv.OperationMetric+"_bucket{"); n != len(semconv.OperationBuckets)+1 {
		t.Errorf("%d bucket lines, want %d", n, len(semconv.OperationBuckets)+1)
	}
}

var sampledSpan = trace.NewSpanContext(trace.SpanContextConfig{
	TraceID:    trace.TraceID{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c},
	SpanID:     trace.SpanID{0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31},
	TraceFlags: trace.FlagsSampled,
})

func TestExemplarsNameSampledSpansOnly(t *testing.T) {
	r := New(Options{})
	unsampled := trace.NewSpanContext(trace.SpanContextConfig{TraceID: sampledSpan.TraceID(), SpanID: trace.SpanID{1}})
	r.LinkSpans(func(_ *observe.Target, op *observe.Op) trace.SpanContext {
		if op.Name == "get" {
			return sampledSpan
		}
		return unsampled
	})
	r.Op(of(nil), observe.Op{Name: "get", End: lasting(3 * time.Millisecond)})
	r.Op(of(nil), observe.Op{Name: "put", End: lasting(3 * time.Millisecond)})

	var buf bytes.Buffer
	if err := r.Encode(&buf, expfmt.NewFormat(expfmt.TypeOpenMetrics)); err != nil {
		t.Fatal(err)
	}
	om := buf.String()
	bucket := `db_operation_name="get",db_system_name="aerospike",error_type="",k8s_container_name="",k8s_namespace_name="",k8s_node_name="",k8s_pod_name="",service_name="",le="0.005"} 1 # {`
	found := false
	for _, labels := range []string{ // client_golang keeps the labels in map order
		`trace_id="0af7651916cd43dd8448eb211c80319c",span_id="b7ad6b7169203331"`,
		`span_id="b7ad6b7169203331",trace_id="0af7651916cd43dd8448eb211c80319c"`,
	} {
		found = found || strings.Contains(om, bucket+labels+"} 0.003 ")
	}
	if !found {
		t.Errorf("OpenMetrics lacks the get exemplar in le=0.005:\n%s", om)
	}
	if n := strings.Count(om, "trace_id="); n != 1 {
		t.Errorf("%d exemplars, want 1 (the unsampled put has none)", n)
	}

	for _, m := range decodeProtobuf(t, r)[semconv.OperationMetric].GetMetric() {
		var exemplars []*dto.Exemplar
		for _, b := range m.GetHistogram().GetBucket() {
			if e := b.GetExemplar(); e != nil {
				exemplars = append(exemplars, e)
			}
		}
		op := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == semconv.LabelOperation {
				op = l.GetValue()
			}
		}
		wantN := map[string]int{"get": 1, "put": 0}[op]
		if len(exemplars) != wantN {
			t.Errorf("%s: %d protobuf exemplars, want %d", op, len(exemplars), wantN)
		}
	}
}

func BenchmarkObserveOpWithExemplar(b *testing.B) {
	r := New(Options{})
	r.LinkSpans(func(*observe.Target, *observe.Op) trace.SpanContext { return sampledSpan })
	tg := of(&Identity{Service: "svc"})
	op := observe.Op{Name: "get", Namespace: "test", Set: "users", End: lasting(time.Millisecond)}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r.Op(tg, op)
	}
}

func TestExemplarsAtMostOnePerBucketPerInterval(t *testing.T) {
	r := New(Options{})
	r.LinkSpans(func(_ *observe.Target, op *observe.Op) trace.SpanContext {
		return trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{byte(op.ID)}, SpanID: trace.SpanID{byte(op.ID)},
			TraceFlags: trace.FlagsSampled})
	})
	at := func(id uint64, end time.Duration, took time.Duration) observe.Op {
		return observe.Op{Name: "get", ID: id, Start: int64(end - took), End: int64(end)}
	}
	r.Op(of(nil), at(1, time.Second, 2*time.Millisecond))
	r.Op(of(nil), at(2, time.Second+ExemplarInterval/2, 2*time.Millisecond))  // same bucket, gate closed
	r.Op(of(nil), at(3, time.Second+ExemplarInterval/2, 20*time.Millisecond)) // another bucket's gate is open
	r.Op(of(nil), at(4, time.Second+ExemplarInterval, 3*time.Millisecond))    // the first gate reopened

	got := map[float64]string{}
	for _, b := range decodeProtobuf(t, r)[semconv.OperationMetric].GetMetric()[0].GetHistogram().GetBucket() {
		if e := b.GetExemplar(); e != nil {
			for _, l := range e.GetLabel() {
				if l.GetName() == ExemplarTraceID {
					got[b.GetUpperBound()] = l.GetValue()
				}
			}
		}
	}
	want := map[float64]string{0.005: trace.TraceID{4}.String(), 0.05: trace.TraceID{3}.String()}
	if len(got) != len(want) || got[0.005] != want[0.005] || got[0.05] != want[0.05] {
		t.Errorf("bucket exemplars %v, want %v", got, want)
	}
}

// BenchmarkObserveOpExemplarTaken is an observation whose bucket takes an exemplar every
// time (the gate always open): the exemplar's own cost.
func BenchmarkObserveOpExemplarTaken(b *testing.B) {
	r := New(Options{})
	r.LinkSpans(func(*observe.Target, *observe.Op) trace.SpanContext { return sampledSpan })
	tg := of(&Identity{Service: "svc"})
	op := observe.Op{Name: "get", Namespace: "test", Set: "users", End: lasting(time.Millisecond)}
	b.ReportAllocs()
	for b.Loop() {
		op.Start += int64(ExemplarInterval)
		op.End += int64(ExemplarInterval)
		r.Op(tg, op)
	}
}
