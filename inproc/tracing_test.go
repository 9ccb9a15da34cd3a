package inproc

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	as "github.com/aerospike/aerospike-client-go/v7"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/asobserve/asobserve/internal/testserver"
)

type receiver struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans map[string]map[string]string // name -> attributes (string values only)
}

func (r *receiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				attrs := map[string]string{"status": s.GetStatus().GetCode().String()}
				for _, kv := range s.GetAttributes() {
					attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
				}
				r.spans[s.GetName()] = attrs
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func TestInitTracingExportsSpansPerCall(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{spans: map[string]map[string]string{}}
	g := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(g, r)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+lis.Addr().String())
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_SDK_DISABLED", "false")

	fresh(t)
	_, raw := startServer(t, testserver.Config{})
	c := Wrap(raw)
	must(t, InitTracing())
	must(t, InitTracing()) // idempotent
	must(t, c.Put(nil, key(t, "users", 1), as.BinMap{"n": 1}))
	_, gerr := c.Get(nil, key(t, "users", 404))
	wantCode(t, gerr, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(t, ShutdownTracing(ctx))
	must(t, ShutdownTracing(ctx))

	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.spans) != 2 {
		t.Fatalf("got spans %v, want PUT and GET", r.spans)
	}
	put, get := r.spans["PUT test.users"], r.spans["GET test.users"]
	if put["db.operation.name"] != "PUT" || put["db.system.name"] != "aerospike" || put["status"] != "STATUS_CODE_UNSET" {
		t.Errorf("PUT span %v", put)
	}
	if get["error.type"] != "KeyNotFoundError" || get["db.response.status_code"] != "2" || get["status"] != "STATUS_CODE_ERROR" {
		t.Errorf("GET span %v", get)
	}
}

func TestInitTracingHonoursSDKDisabled(t *testing.T) {
	t.Setenv("OTEL_SDK_DISABLED", "true")
	fresh(t)
	must(t, InitTracing())
	if state().tracer.Load() != nil {
		t.Fatal("a tracer runs with OTEL_SDK_DISABLED=true")
	}
}
