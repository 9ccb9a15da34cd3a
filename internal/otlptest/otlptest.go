// Package otlptest runs a real OTLP/gRPC trace and metrics receiver on loopback for tests.
package otlptest

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"

	collectormetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Span is one received span with its resource attributes.
type Span struct {
	*tracepb.Span
	Resource map[string]string
}

// Attr returns a span attribute as a string ("" if absent).
func (s Span) Attr(key string) string { return Attrs(s.GetAttributes())[key] }

// Receiver collects every exported span (OTLP/gRPC) and metric (OTLP/gRPC and
// OTLP/HTTP protobuf).
type Receiver struct {
	collectortrace.UnimplementedTraceServiceServer
	Addr string
	// HTTPAddr serves POST /v1/metrics (http/protobuf).
	HTTPAddr string
	srv      *grpc.Server

	mu    sync.Mutex
	spans []Span

	metricsMu       sync.Mutex
	metrics         []*metricspb.ResourceMetrics
	rejectMetrics   bool
	metricsRejected int
}

// Start serves a receiver until the test ends.
func Start(tb testing.TB) *Receiver {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	r := &Receiver{srv: grpc.NewServer(), Addr: lis.Addr().String()}
	collectortrace.RegisterTraceServiceServer(r.srv, r)
	collectormetrics.RegisterMetricsServiceServer(r.srv, metricsService{r: r})
	go func() { _ = r.srv.Serve(lis) }()
	tb.Cleanup(r.srv.Stop)
	httpLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	r.HTTPAddr = httpLis.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/metrics", r.serveHTTPMetrics)
	hs := &http.Server{Handler: mux}
	go func() { _ = hs.Serve(httpLis) }()
	tb.Cleanup(func() { _ = hs.Close() })
	return r
}

func (r *Receiver) serveHTTPMetrics(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	var msg collectormetrics.ExportMetricsServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &msg)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if _, err := (metricsService{r: r}).Export(req.Context(), &msg); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	out, _ := proto.Marshal(&collectormetrics.ExportMetricsServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// Export implements the OTLP trace service.
func (r *Receiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		res := Attrs(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans = append(r.spans, Span{Span: s, Resource: res})
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// Spans returns a copy of everything received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Attrs flattens OTLP attributes to strings.
func Attrs(kvs []*commonpb.KeyValue) map[string]string {
	out := map[string]string{}
	for _, kv := range kvs {
		v := kv.GetValue()
		switch {
		case v.GetStringValue() != "":
			out[kv.GetKey()] = v.GetStringValue()
		case v.GetIntValue() != 0:
			out[kv.GetKey()] = strconv.FormatInt(v.GetIntValue(), 10)
		default:
			out[kv.GetKey()] = v.GetStringValue()
		}
	}
	return out
}

// metricsService is the OTLP metrics service of a Receiver (its Export differs from the
// trace service's).
type metricsService struct {
	collectormetrics.UnimplementedMetricsServiceServer
	r *Receiver
}

// Export implements the OTLP metrics service; while RejectMetrics is on it answers
// Unavailable, as a collector that is down behind a load balancer does.
func (m metricsService) Export(_ context.Context, req *collectormetrics.ExportMetricsServiceRequest) (*collectormetrics.ExportMetricsServiceResponse, error) {
	r := m.r
	r.metricsMu.Lock()
	defer r.metricsMu.Unlock()
	if r.rejectMetrics {
		r.metricsRejected++
		return nil, status.Error(codes.Unavailable, "otlptest: rejecting metrics")
	}
	r.metrics = append(r.metrics, req.GetResourceMetrics()...)
	return &collectormetrics.ExportMetricsServiceResponse{}, nil
}

// RejectMetrics makes metric exports fail (on) or succeed again (off).
func (r *Receiver) RejectMetrics(on bool) {
	r.metricsMu.Lock()
	defer r.metricsMu.Unlock()
	r.rejectMetrics = on
}

// MetricsRejected is the number of metric exports refused by RejectMetrics.
func (r *Receiver) MetricsRejected() int {
	r.metricsMu.Lock()
	defer r.metricsMu.Unlock()
	return r.metricsRejected
}

// Histogram is one received histogram data point, explicit or exponential.
type Histogram struct {
	Resource    map[string]string
	Attrs       map[string]string
	Unit        string
	Temporality metricspb.AggregationTemporality
	Count       uint64
	Sum         float64
	Explicit    *metricspb.HistogramDataPoint            // nil for an exponential histogram
	Exponential *metricspb.ExponentialHistogramDataPoint // nil for an explicit one
	Exemplars   []*metricspb.Exemplar
}

// Histograms returns every data point received for the named histogram, in arrival order.
func (r *Receiver) Histograms(name string) []Histogram {
	r.metricsMu.Lock()
	defer r.metricsMu.Unlock()
	var out []Histogram
	for _, rm := range r.metrics {
		res := Attrs(rm.GetResource().GetAttributes())
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				if m.GetName() != name {
					continue
				}
				for _, p := range m.GetHistogram().GetDataPoints() {
					out = append(out, Histogram{Resource: res, Attrs: Attrs(p.GetAttributes()), Unit: m.GetUnit(),
						Temporality: m.GetHistogram().GetAggregationTemporality(), Count: p.GetCount(), Sum: p.GetSum(),
						Explicit: p, Exemplars: p.GetExemplars()})
				}
				for _, p := range m.GetExponentialHistogram().GetDataPoints() {
					out = append(out, Histogram{Resource: res, Attrs: Attrs(p.GetAttributes()), Unit: m.GetUnit(),
						Temporality: m.GetExponentialHistogram().GetAggregationTemporality(), Count: p.GetCount(), Sum: p.GetSum(),
						Exponential: p, Exemplars: p.GetExemplars()})
				}
			}
		}
	}
	return out
}
