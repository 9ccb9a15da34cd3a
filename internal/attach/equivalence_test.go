//go:build linux

package attach_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	as "github.com/aerospike/aerospike-client-go/v7"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/asobserve/asobserve/inproc"
	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/asobserve/asobserve/internal/metrics"
	events "github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/otlptest"
	"github.com/asobserve/asobserve/internal/spanfeed"
	"github.com/asobserve/asobserve/internal/testserver"
	"github.com/asobserve/asobserve/internal/workload"
)

// The same deterministic mix (one worker, fixed seed, a fresh 1-node server each time),
// observed once from outside by eBPF and once by the in-process wrapper in this test
// process, yields the same series with the same counts. service_name differs by design
// (the target's name vs this test binary's), so series are compared without it.
func TestInProcessMatchesEBPF(t *testing.T) {
	e2etest.RequireRoot(t)
	const (
		count = 1500
		keys  = 60
		seed  = 42
	)
	bin := e2etest.BuildAsobserve(t)
	_, _, ebpf, ebpfTruth := observe(t, bin, e2etest.StartServer(t, testserver.Config{Nodes: 1}), nil, false,
		"--errors", "--every-method", "--count", strconv.Itoa(count), "--concurrency", "1", "--keys", strconv.Itoa(keys), "--seed", strconv.Itoa(seed))
	e2etest.CompareCounts(t, ebpf, ebpfTruth)

	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	truth, err := workload.Run(ctx, workload.Config{Hosts: cluster.Hosts(), Count: count, Concurrency: 1, Errors: true,
		EveryMethod: true, Keys: keys, Seed: seed, Wrap: func(c *as.Client) workload.Client { return inproc.Wrap(c) }})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(inproc.Collector())
	waitInprocOps(t, reg, count)
	wrapped := e2etest.OpSeries(t, reg, "")
	inprocTruth := e2etest.TruthSeries(truth)
	e2etest.CompareCounts(t, wrapped, inprocTruth)

	if len(ebpf) != len(wrapped) {
		t.Errorf("eBPF has %d series, in-process %d", len(ebpf), len(wrapped))
	}
	for k, e := range ebpf {
		if w, ok := wrapped[k]; !ok {
			t.Errorf("%+v: eBPF counted %d, in-process has no such series", k, e.Count)
		} else if w.Count != e.Count {
			t.Errorf("%+v: eBPF counted %d, in-process %d", k, e.Count, w.Count)
		}
	}
	for k, w := range wrapped {
		if _, ok := ebpf[k]; !ok {
			t.Errorf("%+v: in-process counted %d, eBPF has no such series", k, w.Count)
		}
	}
	n, _ := sums(ebpf)
	t.Logf("%d operations in %d series, identical in both modes", n, len(ebpf))
	ops := map[string]bool{}
	for k := range ebpf {
		ops[k.Op] = true
	}
	if n != count || len(ops) != len(workload.Operations) {
		t.Fatalf("eBPF saw %d operations of %d kinds: want %d in every one of the %d operation kinds", n, len(ops), count, len(workload.Operations))
	}
}

// Spans from both modes carry the same names and attributes for the same workload.
func TestInProcessSpansMatchEBPF(t *testing.T) {
	e2etest.RequireRoot(t)
	args := []string{"--errors", "--every-method", "--count", "600", "--concurrency", "1", "--keys", "60", "--seed", "7"}
	bin := e2etest.BuildAsobserve(t)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")

	fromProbes := otlptest.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+fromProbes.Addr)
	feed, err := spanfeed.New(metrics.New(metrics.Options{}).SpansDropped, t.Logf, nil)
	if err != nil {
		t.Fatal(err)
	}
	observeWith(t, bin, e2etest.StartServer(t, testserver.Config{Nodes: 1}), nil, attach.Options{Observers: []events.Observer{feed}}, nil, args...)
	flushCtx, cancelFlush := context.WithTimeout(context.Background(), 5*time.Second)
	_ = feed.Shutdown(flushCtx)
	cancelFlush()

	fromWrapper := otlptest.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+fromWrapper.Addr)
	if err := inproc.InitTracing(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(inproc.Collector())
	before, _ := sums(e2etest.OpSeries(t, reg, ""))
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := workload.Run(ctx, workload.Config{Hosts: cluster.Hosts(), Count: 600, Concurrency: 1, Errors: true,
		EveryMethod: true, Keys: 60, Seed: 7, Wrap: func(c *as.Client) workload.Client { return inproc.Wrap(c) }}); err != nil {
		t.Fatal(err)
	}
	// The wrapper records a scan or query when its recordset ends, on its own goroutine:
	// wait until every operation is recorded (and so its span handed over) before flushing.
	waitInprocOps(t, reg, before+600)
	if err := inproc.ShutdownTracing(ctx); err != nil {
		t.Fatal(err)
	}

	shape := func(spans []otlptest.Span) map[string]int {
		out := map[string]int{}
		for _, s := range spans {
			k := strings.Join([]string{s.GetName(), s.GetKind().String(), s.Attr("db.system.name"), s.Attr("db.operation.name"),
				s.Attr("db.namespace"), s.Attr("db.collection.name"), s.Attr("error.type"), s.Attr("db.response.status_code"),
				s.GetStatus().GetCode().String()}, "|")
			out[k]++
		}
		return out
	}
	probes, wrapper := shape(fromProbes.Spans()), shape(fromWrapper.Spans())
	total := 0
	for k, n := range probes {
		total += n
		if wrapper[k] != n {
			t.Errorf("%s: %d spans from the probes, %d from the wrapper", k, n, wrapper[k])
		}
	}
	for k, n := range wrapper {
		if _, ok := probes[k]; !ok {
			t.Errorf("%s: %d spans from the wrapper only", k, n)
		}
	}
	if total != 600 {
		t.Fatalf("%d spans from the probes, want 600", total)
	}
}

// waitInprocOps waits until the in-process recorder holds n operations in total.
func waitInprocOps(t *testing.T, reg prometheus.Gatherer, n uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		total, _ := sums(e2etest.OpSeries(t, reg, ""))
		if total >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("in-process recorder holds %d operations, want %d", total, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
