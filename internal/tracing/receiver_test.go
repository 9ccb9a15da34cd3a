package tracing

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
)

// receiver is a real OTLP/gRPC trace receiver on loopback.
type receiver struct {
	collectortrace.UnimplementedTraceServiceServer
	srv  *grpc.Server
	addr string

	mu    sync.Mutex
	spans []gotSpan
}

type gotSpan struct {
	span     *tracepb.Span
	resource map[string]string
}

func startReceiver(t *testing.T) *receiver {
	t.Helper()
	r := startReceiverNoCleanup(t)
	t.Cleanup(r.srv.Stop)
	return r
}

func startReceiverNoCleanup(tb testing.TB) *receiver {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return serveReceiver(lis)
}

func serveReceiver(lis net.Listener) *receiver {
	r := &receiver{srv: grpc.NewServer(), addr: lis.Addr().String()}
	collectortrace.RegisterTraceServiceServer(r.srv, r)
	go func() { _ = r.srv.Serve(lis) }()
	return r
}

func (r *receiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		res := attrMap(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans = append(r.spans, gotSpan{span: s, resource: res})
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (r *receiver) got() []gotSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]gotSpan(nil), r.spans...)
}

func (r *receiver) byName(t *testing.T) map[string]gotSpan {
	t.Helper()
	m := map[string]gotSpan{}
	for _, s := range r.got() {
		if _, dup := m[s.span.GetName()]; dup {
			t.Fatalf("span name %q received twice", s.span.GetName())
		}
		m[s.span.GetName()] = s
	}
	return m
}

func attrMap(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[kv.GetKey()] = anyString(kv.GetValue())
	}
	return m
}

func anyString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprintf("int:%d", x.IntValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprintf("bool:%t", x.BoolValue)
	}
	return fmt.Sprintf("%v", v)
}

func spanID(b []byte) string { return hex.EncodeToString(b) }

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
