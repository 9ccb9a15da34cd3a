//go:build linux

package workload

import (
	"context"
	"os"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/asobserve/asobserve/internal/probes"
	"github.com/asobserve/asobserve/internal/semconv"
	"github.com/asobserve/asobserve/internal/testserver"
)

func startServer(t *testing.T, cfg testserver.Config) *testserver.Cluster {
	t.Helper()
	cfg.Logf = t.Logf
	c, err := testserver.Start("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func sumOp(tr *Truth, op, errorType string) int64 {
	var n int64
	for _, c := range tr.Counts {
		if c.Op == op && (errorType == "*" || c.ErrorType == errorType) {
			n += c.Count
		}
	}
	return n
}

func TestEveryOperationExactCounts(t *testing.T) {
	c := startServer(t, testserver.Config{Nodes: 2})
	const perOp = 40
	tr, err := Run(context.Background(), Config{Hosts: c.Hosts(), Count: perOp * int64(len(semconv.Operations)),
		Concurrency: 4, Sets: []string{"a", "b"}, Keys: 50, Errors: true, ConcurrentNodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	if tr.TotalOps != perOp*int64(len(semconv.Operations)) {
		t.Fatalf("total ops %d", tr.TotalOps)
	}
	for _, op := range semconv.Operations {
		if got := sumOp(tr, op, "*"); got != perOp {
			t.Errorf("%s: %d ops, want %d", op, got, perOp)
		}
		// Sets alternate per operation kind.
		for _, set := range []string{"a", "b"} {
			var n int64
			for _, c := range tr.Counts {
				if c.Op == op && c.Set == set && c.Namespace == "test" {
					n += c.Count
				}
			}
			if n != perOp/2 {
				t.Errorf("%s set %s: %d ops, want %d", op, set, n, perOp/2)
			}
		}
	}
	want := map[[2]string]int64{
		{"get", "KeyNotFoundError"}:   4,
		{"touch", "KeyNotFoundError"}: 4,
		{"put", "KeyExistsError"}:     4,
		{"put", "GenerationError"}:    4,
		{"exists", ""}:                perOp,
		{"remove", ""}:                perOp,
		{"get", ""}:                   perOp - 4,
		{"put", ""}:                   perOp - 8,
	}
	for k, n := range want {
		if got := sumOp(tr, k[0], k[1]); got != n {
			t.Errorf("%s/%q: %d, want %d", k[0], k[1], got, n)
		}
	}
	for _, op := range []string{"select", "append", "prepend", "increment", "operate", "batch_read", "batch_operate", "batch_remove", "query", "scan", "execute"} {
		if got := sumOp(tr, op, ""); got != perOp {
			t.Errorf("%s successes: %d, want %d (counts %+v)", op, got, perOp, tr.Counts)
		}
	}
	var sum float64
	for _, c := range tr.Counts {
		sum += c.SumSeconds
	}
	if sum <= 0 || diffRatio(sum, tr.LatencySumSeconds) > 1e-6 || tr.P50Ms <= 0 || tr.P99Ms < tr.P50Ms {
		t.Fatalf("latency summary: sum %v vs %v, p50 %v p99 %v", sum, tr.LatencySumSeconds, tr.P50Ms, tr.P99Ms)
	}
}

func diffRatio(a, b float64) float64 {
	d := a - b
	if d < 0 {
		d = -d
	}
	return d / b
}

// Keys made at each call name the same records as the preloaded ones: every operation has
// the same outcome either way, failures included.
func TestFreshKeysHaveTheSameOutcomes(t *testing.T) {
	outcomes := func(fresh bool) map[Count]bool {
		c := startServer(t, testserver.Config{Nodes: 2})
		tr, err := Run(context.Background(), Config{Hosts: c.Hosts(), Count: 20 * int64(len(semconv.Operations)),
			Concurrency: 1, Sets: []string{"a", "b"}, Keys: 30, Errors: true, Seed: 3, FreshKeys: fresh})
		if err != nil {
			t.Fatal(err)
		}
		series := map[Count]bool{}
		for _, c := range tr.Counts {
			c.SumSeconds = 0
			series[c] = true
		}
		return series
	}
	preloaded, fresh := outcomes(false), outcomes(true)
	if len(preloaded) < len(semconv.Operations) {
		t.Fatalf("only %d series: %v", len(preloaded), preloaded)
	}
	if !reflect.DeepEqual(preloaded, fresh) {
		t.Fatalf("fresh keys' outcomes differ:\npreloaded %v\nfresh     %v", preloaded, fresh)
	}
}

func TestNoErrorsWithoutErrorsFlag(t *testing.T) {
	c := startServer(t, testserver.Config{})
	tr, err := Run(context.Background(), Config{Hosts: c.Hosts(), Count: 320, Keys: 20, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range tr.Counts {
		if c.ErrorType != "" {
			t.Fatalf("unexpected failure series %+v", c)
		}
	}
}

func TestFaultOutcomesAreClassified(t *testing.T) {
	c := startServer(t, testserver.Config{})
	tr, err := Run(context.Background(), Config{Hosts: c.Hosts(), Count: 20, Keys: 5,
		Mix: map[string]int{"get": 1, "put": 1, "batch_read": 1, "execute": 1, "exists": 1},
		Ready: func() {
			c.SetFaults([]testserver.Fault{
				{Command: testserver.CmdRead, Set: "users", ResultCode: 9},
				{Command: testserver.CmdWrite, CloseConn: true},
				{Command: testserver.CmdBatch, ResultCode: 27},
				{Command: testserver.CmdUDF, ResultCode: 4},
			})
		}})
	if err != nil {
		t.Fatal(err)
	}
	// batch_read #0 has one key, so the client sends it as a single read: the read fault.
	want := []Count{
		{Op: "batch_read", Namespace: "test", Set: "users", ErrorType: "FilteredOut", Count: 3},
		{Op: "batch_read", Namespace: "test", Set: "users", ErrorType: "Timeout", Count: 1},
		{Op: "execute", Namespace: "test", Set: "users", ErrorType: "InvalidArgument", Count: 4},
		{Op: "exists", Namespace: "test", Set: "users", ErrorType: "Timeout", Count: 4},
		{Op: "get", Namespace: "test", Set: "users", ErrorType: "Timeout", Count: 4},
		{Op: "put", Namespace: "test", Set: "users", ErrorType: "Connection", Count: 4},
	}
	got := make([]Count, len(tr.Counts))
	for i, c := range tr.Counts {
		c.SumSeconds = 0
		got[i] = c
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("counts:\n got %+v\nwant %+v", got, want)
	}
}

func TestWaitSignalRateAndStackDepth(t *testing.T) {
	c := startServer(t, testserver.Config{})
	ready := make(chan struct{})
	done := make(chan *Truth, 1)
	go func() {
		tr, err := Run(context.Background(), Config{Hosts: c.Hosts(), Count: 100, Rate: 500, Keys: 10, WaitSignal: true,
			StackDepth: 200, Mix: map[string]int{"get": 3, "put": 1}, Ready: func() { close(ready) }})
		if err != nil {
			t.Error(err)
		}
		done <- tr
	}()
	<-ready
	select {
	case <-done:
		t.Fatal("workload started before SIGUSR1")
	case <-time.After(100 * time.Millisecond):
	}
	start := time.Now()
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	tr := <-done
	elapsed := time.Since(start)
	if tr == nil || tr.TotalOps != 100 || sumOp(tr, "get", "") != 75 || sumOp(tr, "put", "") != 25 {
		t.Fatalf("truth %+v", tr)
	}
	// 100 ops at 500/s take ~200 ms.
	if elapsed < 180*time.Millisecond || elapsed > 2*time.Second {
		t.Fatalf("rate-limited run took %v, want ~200ms", elapsed)
	}
}

func TestDurationMode(t *testing.T) {
	c := startServer(t, testserver.Config{})
	start := time.Now()
	tr, err := Run(context.Background(), Config{Hosts: c.Hosts(), Duration: 300 * time.Millisecond, Keys: 10,
		Mix: map[string]int{"get": 1}})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second || tr.TotalOps == 0 || sumOp(tr, "get", "") != tr.TotalOps {
		t.Fatalf("duration run: %v, %+v", d, tr)
	}
}

func TestParseMixAndSchedule(t *testing.T) {
	m, err := ParseMix("put=2,get=1,scan")
	if err != nil || !reflect.DeepEqual(m, map[string]int{"put": 2, "get": 1, "scan": 1}) {
		t.Fatalf("ParseMix: %v %v", m, err)
	}
	if got := schedule(m); !reflect.DeepEqual(got, []string{"put", "get", "scan", "put"}) {
		t.Fatalf("schedule: %v", got)
	}
	if got := schedule(nil); !reflect.DeepEqual(got, semconv.Operations) {
		t.Fatalf("default schedule: %v", got)
	}
	for _, bad := range []string{"fly=1", "put=-1", "put=x", "commit=1"} { // v7 has no transactions
		if _, err := ParseMix(bad); err == nil {
			t.Fatalf("ParseMix(%q) accepted", bad)
		}
	}
}

// With EveryMethod each operation rotates through its methods every 10 operations, so
// that each method also gets the failing outcomes picked by n%10 (n = 5 fails, 3 and 7
// for put): the outcomes per operation are exact.
func TestEveryMethodExactCounts(t *testing.T) {
	c := startServer(t, testserver.Config{Nodes: 2})
	const perOp = 60 // n = 0..59: every method of an operation (at most 6) at least once
	tr, err := Run(context.Background(), Config{Hosts: c.Hosts(), Count: perOp * int64(len(Operations)),
		Concurrency: 4, Sets: []string{"a", "b"}, Keys: 50, Errors: true, ConcurrentNodes: 2, EveryMethod: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range Operations {
		if got := sumOp(tr, op, "*"); got != perOp {
			t.Errorf("%s: %d ops, want %d", op, got, perOp)
		}
	}
	// The failing n (5, 15, ..., 55) rotate over an operation's methods: get's are Get,
	// GetHeader (which returns no error for a missing key), GetObject; query_background's
	// are QueryExecute with a read operation (refused), ExecuteUDF (cannot fail), and
	// ExecuteUDFNode without a node (refused).
	want := map[[2]string]int64{
		{"get", "KeyNotFoundError"}:             4,
		{"get", ""}:                             perOp - 4,
		{"touch", "KeyNotFoundError"}:           6,
		{"put", "KeyExistsError"}:               6,
		{"put", "GenerationError"}:              6,
		{"put", ""}:                             perOp - 12,
		{"batch_apply", "UdfBadResponse"}:       6,
		{"batch_apply", ""}:                     perOp - 6,
		{"query_background", "InvalidArgument"}: 2,
		{"query_background", "Connection"}:      2,
		{"query_background", ""}:                perOp - 4,
	}
	for k, n := range want {
		if got := sumOp(tr, k[0], k[1]); got != n {
			t.Errorf("%s/%q: %d, want %d", k[0], k[1], got, n)
		}
	}
	for _, op := range []string{"select", "exists", "remove", "append", "prepend", "increment", "operate", "batch_read",
		"batch_operate", "batch_remove", "query", "scan", "execute"} {
		if got := sumOp(tr, op, ""); got != perOp {
			t.Errorf("%s successes: %d, want %d (counts %+v)", op, got, perOp, tr.Counts)
		}
	}
	// Node-scoped: the third and sixth of six scan and query methods (n = 20..29, 50..59),
	// the third of three background ones but for the two refused without a node.
	if want := map[string]int64{"scan": 20, "query": 20, "query_background": 18}; !reflect.DeepEqual(tr.NodeScoped, want) {
		t.Errorf("node-scoped operations %v, want %v", tr.NodeScoped, want)
	}
}

// The workload's client interface has every method the probe table counts for v7, but
// the one excluded from counting: with EveryMethod the workload calls them all.
func TestClientHasEveryCountedMethod(t *testing.T) {
	iface := reflect.TypeOf((*Client)(nil)).Elem()
	for _, p := range probes.ForMajor(7) {
		if !p.Counted() {
			continue
		}
		for _, m := range p.Methods() {
			if _, ok := iface.MethodByName(m); !ok {
				t.Errorf("workload.Client has no %s, which the probe table counts as %s", m, p.Op)
			}
		}
	}
}
