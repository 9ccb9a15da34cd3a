// Package otlptest runs a real OTLP/gRPC trace receiver on loopback for tests.
package otlptest

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
)

// Span is one received span with its resource attributes.
type Span struct {
	*tracepb.Span
	Resource map[string]string
}

// Attr returns a span attribute as a string ("" if absent).
func (s Span) Attr(key string) string { return Attrs(s.GetAttributes())[key] }

// Receiver collects every exported span.
type Receiver struct {
	collectortrace.UnimplementedTraceServiceServer
	Addr string
	srv  *grpc.Server

	mu    sync.Mutex
	spans []Span
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
	go func() { _ = r.srv.Serve(lis) }()
	tb.Cleanup(r.srv.Stop)
	return r
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
