//go:build linux

package attach_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	as "github.com/aerospike/aerospike-client-go/v7"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/asobserve/asobserve/inproc"
	"github.com/asobserve/asobserve/internal/e2etest"
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
		"--errors", "--count", strconv.Itoa(count), "--concurrency", "1", "--keys", strconv.Itoa(keys), "--seed", strconv.Itoa(seed))
	e2etest.CompareCounts(t, ebpf, ebpfTruth)

	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	truth, err := workload.Run(ctx, workload.Config{Hosts: cluster.Hosts(), Count: count, Concurrency: 1, Errors: true,
		Keys: keys, Seed: seed, Wrap: func(c *as.Client) workload.Client { return inproc.Wrap(c) }})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(inproc.Collector())
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
	if n != count || len(ebpf) < 16 {
		t.Fatalf("eBPF saw %d operations in %d series: want %d in every operation kind", n, len(ebpf), count)
	}
}
