// Command otel is a target that traces itself with the OpenTelemetry Go SDK. Its
// aerospike-client-go v7 operations run inside, around and beside its own spans, and it
// prints, for every operation, the span that should be its parent: the ground truth for
// asobserve's parent-context tracking.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"

	as "github.com/aerospike/aerospike-client-go/v7"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Expect is one operation and the parent its span should have ("" for none).
type Expect struct {
	Set          string `json:"set"`
	Op           string `json:"op"`
	TraceID      string `json:"trace_id,omitempty"`
	ParentSpanID string `json:"parent_span_id,omitempty"`
}

func main() {
	hosts := flag.String("hosts", "127.0.0.1:3000", "seed host:port")
	rounds := flag.Int("rounds", 5, "times to run every case")
	waitSignal := flag.Bool("wait-signal", false, "print 'workload: ready pid=N' on stderr and wait for SIGUSR1")
	flag.Parse()

	i := strings.LastIndex(*hosts, ":")
	port, err := strconv.Atoi((*hosts)[i+1:])
	if i < 0 || err != nil {
		fail(fmt.Errorf("bad host %q: want host:port", *hosts))
	}
	client, err := as.NewClientWithPolicyAndHost(as.NewClientPolicy(), as.NewHost((*hosts)[:i], port))
	if err != nil {
		fail(err)
	}
	defer client.Close()

	sampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample())).Tracer("app")
	unsampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample())).Tracer("app")

	if *waitSignal {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGUSR1)
		fmt.Fprintf(os.Stderr, "workload: ready pid=%d\n", os.Getpid())
		<-sig
		signal.Stop(sig)
	}

	var out []Expect
	key := func(set string) *as.Key {
		k, err := as.NewKey("test", set, "k")
		if err != nil {
			fail(err)
		}
		return k
	}
	put := func(set string, parent trace.Span) {
		if err := client.Put(nil, key(set), as.BinMap{"n": 1}); err != nil {
			fail(err)
		}
		out = append(out, expect(set, "put", parent))
	}
	inGoroutine := func(set string) {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := client.Put(nil, key(set), as.BinMap{"n": 1}); err != nil {
				fail(err)
			}
		}()
		wg.Wait()
	}
	for r := 0; r < *rounds; r++ {
		ctx := context.Background()

		// An operation inside a span: that span is its parent.
		_, req := sampled.Start(ctx, "request")
		put("inside", req)
		req.End()

		// Nested spans: the innermost live span is the parent; after it ends, its parent.
		octx, outer := sampled.Start(ctx, "outer")
		_, inner := sampled.Start(octx, "inner")
		put("nested", inner)
		inner.End()
		put("after-inner", outer)
		outer.End()

		// No span is active any more.
		put("none", nil)

		// A batch inside a span.
		_, b := sampled.Start(ctx, "batch")
		if _, err := client.BatchGet(nil, []*as.Key{key("batch"), key("batch2")}); err != nil {
			fail(err)
		}
		out = append(out, expect("batch", "batch_read", b))
		b.End()

		// A goroutine started under a span runs under it, as its closure's context would.
		_, g := sampled.Start(ctx, "spawner")
		inGoroutine("goroutine")
		out = append(out, expect("goroutine", "put", g))
		g.End()

		// A goroutine started with no live span has none, whatever goroutine ran before it
		// (the runtime reuses their descriptors).
		inGoroutine("late-goroutine")
		out = append(out, expect("late-goroutine", "put", nil))

		// A span the app does not sample is no parent.
		_, u := unsampled.Start(ctx, "unsampled")
		put("unsampled", nil)
		u.End()

		// A span ended on another goroutine no longer is a parent on this one.
		_, e := sampled.Start(ctx, "handed-off")
		done := make(chan struct{})
		go func() { e.End(); close(done) }()
		<-done
		put("ended-elsewhere", nil)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail(err)
	}
}

func expect(set, op string, parent trace.Span) Expect {
	e := Expect{Set: set, Op: op}
	if parent != nil {
		sc := parent.SpanContext()
		e.TraceID, e.ParentSpanID = sc.TraceID().String(), sc.SpanID().String()
	}
	return e
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "target:", err)
	os.Exit(1)
}
