package inproc

import (
	"context"
	"encoding/hex"
	"io"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	as "github.com/aerospike/aerospike-client-go/v7"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/otlptest"
	"github.com/asobserve/asobserve/internal/semconv"
	"github.com/asobserve/asobserve/internal/testserver"
)

// With tracing and OTLP metrics on, each recorded operation's Prometheus bucket (OpenMetrics
// text and protobuf) and its OTLP data point carry one exemplar, and it names the span the
// receiver got for that operation. One operation per series keeps every count exact: the
// exemplar gate opens once per bucket, and the only export is the final one.
func TestExemplarsNameTheReceivedSpanOfTheirOperation(t *testing.T) {
	recv := otlptest.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+recv.Addr)
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_METRICS_EXPORTER", "otlp")
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "3600000")
	t.Setenv("OTEL_SDK_DISABLED", "false")

	fresh(t)
	_, raw := startServer(t, testserver.Config{})
	c := Wrap(raw)
	must(t, InitMetricsExport()) // before tracing: the exporter asks for the tracer per operation
	must(t, InitTracing())
	must(t, c.Put(nil, key(t, "users", 1), as.BinMap{"n": 1}))
	_, gerr := c.Get(nil, key(t, "users", 404))
	wantCode(t, gerr, 2)
	must(t, StartMetricsServer("127.0.0.1:0"))
	om := string(scrape(t, "application/openmetrics-text; version=1.0.0"))
	pb := scrape(t, string(expfmt.NewFormat(expfmt.TypeProtoDelim)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(t, ShutdownMetricsExport(ctx))
	must(t, ShutdownTracing(ctx))

	spanOp := map[string]string{} // trace_id/span_id -> db.operation.name
	for _, s := range recv.Spans() {
		spanOp[hex.EncodeToString(s.GetTraceId())+"/"+hex.EncodeToString(s.GetSpanId())] = s.Attr("db.operation.name")
	}
	if len(spanOp) != 2 || !sameSet(values(spanOp), []string{"GET", "PUT"}) {
		t.Fatalf("received spans %v, want one PUT and one GET", spanOp)
	}
	want := []string{"GET", "PUT"}

	omExemplar := regexp.MustCompile(`(?m)^db_client_operation_duration_seconds_bucket\{.*db_operation_name="([a-z_]+)".*\} \d+ # \{([^}]*)\}`)
	idLabel := regexp.MustCompile(`(trace_id|span_id)="([0-9a-f]+)"`) // client_golang orders them by map
	var omOps []string
	for _, m := range omExemplar.FindAllStringSubmatch(om, -1) {
		ids := map[string]string{}
		for _, l := range idLabel.FindAllStringSubmatch(m[2], -1) {
			ids[l[1]] = l[2]
		}
		omOps = append(omOps, spanOpOf(t, spanOp, ids[metrics.ExemplarTraceID]+"/"+ids[metrics.ExemplarSpanID], strings.ToUpper(m[1]), "OpenMetrics"))
	}
	if !sameSet(omOps, want) {
		t.Errorf("OpenMetrics exemplars name spans of %v, want one each of %v:\n%s", omOps, want, om)
	}

	var pbOps []string
	for _, m := range decodeFamilies(t, pb)[semconv.OperationMetric].GetMetric() {
		op := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == semconv.LabelOperation {
				op = strings.ToUpper(l.GetValue())
			}
		}
		for _, b := range m.GetHistogram().GetBucket() {
			if e := b.GetExemplar(); e != nil {
				ids := map[string]string{}
				for _, l := range e.GetLabel() {
					ids[l.GetName()] = l.GetValue()
				}
				if e.GetValue() != m.GetHistogram().GetSampleSum() {
					t.Errorf("%s exemplar value %g, want the series' only observation %g", op, e.GetValue(), m.GetHistogram().GetSampleSum())
				}
				pbOps = append(pbOps, spanOpOf(t, spanOp, ids[metrics.ExemplarTraceID]+"/"+ids[metrics.ExemplarSpanID], op, "protobuf"))
			}
		}
	}
	if !sameSet(pbOps, want) {
		t.Errorf("protobuf exemplars name spans of %v, want one each of %v", pbOps, want)
	}

	var otlpOps []string
	points := recv.Histograms("db.client.operation.duration")
	for _, p := range points {
		for _, ex := range p.Exemplars {
			id := hex.EncodeToString(ex.GetTraceId()) + "/" + hex.EncodeToString(ex.GetSpanId())
			otlpOps = append(otlpOps, spanOpOf(t, spanOp, id, p.Attrs["db.operation.name"], "OTLP"))
		}
	}
	if len(points) != 2 || !sameSet(otlpOps, want) {
		t.Errorf("%d OTLP points with exemplars of %v, want 2 points with one each of %v", len(points), otlpOps, want)
	}
}

// spanOpOf returns the operation of the received span id names, failing the test when no
// span has it or the span is another operation's.
func spanOpOf(t *testing.T, spanOp map[string]string, id, op, where string) string {
	t.Helper()
	got, ok := spanOp[id]
	if !ok || got != op {
		t.Fatalf("%s exemplar %s of %s: the receiver has it as a span of %q", where, id, op, got)
	}
	return got
}

func scrape(t *testing.T, accept string) []byte {
	t.Helper()
	return e2etest.Fetch(t, "http://"+MetricsServerAddr()+"/metrics", accept)
}

func decodeFamilies(t *testing.T, body []byte) map[string]*dto.MetricFamily {
	t.Helper()
	out := map[string]*dto.MetricFamily{}
	dec := expfmt.NewDecoder(strings.NewReader(string(body)), expfmt.NewFormat(expfmt.TypeProtoDelim))
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err != nil {
			if err != io.EOF {
				t.Fatal(err)
			}
			return out
		}
		out[mf.GetName()] = mf
	}
}

func values(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// sameSet reports whether got and want hold the same strings, each as often.
func sameSet(got, want []string) bool {
	g, w := append([]string(nil), got...), append([]string(nil), want...)
	sort.Strings(g)
	sort.Strings(w)
	return strings.Join(g, ",") == strings.Join(w, ",")
}
