// Package workload is the reference workload: a mix of every operation kind of
// aerospike-client-go v7, run against a server, that records its own ground truth
// (counts per operation, namespace, set and outcome, and latency). The eBPF and
// in-process tests compare what they observed against this truth.
package workload

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	as "github.com/aerospike/aerospike-client-go/v7"

	"github.com/asobserve/asobserve/internal/clienterr"
	"github.com/asobserve/asobserve/internal/semconv"
)

// Config describes a run. Zero values get the defaults noted.
type Config struct {
	Hosts       []string
	Duration    time.Duration // used when Count is 0; default 10s
	Count       int64         // total operations; 0 = run for Duration
	Concurrency int           // closed-loop workers; default 8
	Rate        float64       // total ops/s; 0 = as fast as the workers go
	// Mix maps operation names (Operations) to weights; nil = every operation of
	// semconv.Operations (all of Operations with EveryMethod), weight 1.
	Mix map[string]int
	// EveryMethod makes each operation rotate through every client method counted under
	// its name (the object API, the *Bins, partition and node-scoped variants), and the
	// default mix add batch_apply and query_background. Without it the workload calls the
	// same methods at the same rates as before they were counted, which the demo and the
	// benchmarks compare against.
	EveryMethod bool
	Namespace   string   // default "test"
	Sets        []string // default {"users"}
	Keys        int      // keys per set, preloaded before the run; default 1000
	// FreshKeys makes each operation's keys at the call, from the preloaded keys' names, as
	// a service makes them from its request: the Key objects are then as warm in the
	// caches as a service's are. Without it the operations reuse the preloaded Key objects.
	FreshKeys  bool
	StartDelay time.Duration
	WaitSignal bool // wait for SIGUSR1 before starting (after preloading)
	// StackDepth runs every operation at the bottom of a recursion this deep, and every
	// 16th one on a fresh goroutine, so that client functions hit stack growth.
	StackDepth      int
	ConcurrentNodes int // batch/scan/query node concurrency; 0 = client default
	Errors          bool
	// NoCircuitBreaker turns off the client's per-node error-rate breaker
	// (ClientPolicy.MaxErrorRate = 0). A run with many dropped connections trips the default
	// one (100 errors per node per tend) depending on its speed, turning outcomes it planned
	// into MAX_ERROR_RATE.
	NoCircuitBreaker bool
	Seed             int64
	// Wrap, when set, replaces the client for the run (after preloading), e.g. with the
	// in-process instrumentation wrapper.
	Wrap func(*as.Client) Client
	// Ready is called once preloading is done and the run is about to wait for its
	// trigger. Nil with WaitSignal prints "workload: ready pid=<pid>" on stderr.
	Ready func()
}

// Truth is the workload's own record of what it did.
type Truth struct {
	Counts []Count `json:"counts"`
	// NodeScoped counts, per operation name, the operations sent to one node only
	// (ScanNode, QueryNode, ExecuteUDFNode and the object forms): each makes one node
	// command where its cluster-wide form makes one per node.
	NodeScoped        map[string]int64 `json:"node_scoped,omitempty"`
	TotalOps          int64            `json:"total_ops"`
	LatencySumSeconds float64          `json:"latency_sum_seconds"`
	P50Ms             float64          `json:"p50_ms"`
	P95Ms             float64          `json:"p95_ms"`
	P99Ms             float64          `json:"p99_ms"`
	// StreamsSeen (matrix targets run with -spin-drain): when, in CLOCK_MONOTONIC ns, each
	// scan and query of the seed rounds was seen closed, in order.
	StreamsSeen []int64 `json:"streams_seen,omitempty"`
}

// Count is one (operation, namespace, set, outcome) series.
type Count struct {
	Op         string  `json:"op"`
	Namespace  string  `json:"namespace"`
	Set        string  `json:"set"`
	ErrorType  string  `json:"error_type"`
	Count      int64   `json:"count"`
	SumSeconds float64 `json:"sum_seconds"`
}

// Find returns the count for a series, or the zero Count.
func (t *Truth) Find(op, ns, set, errorType string) Count {
	for _, c := range t.Counts {
		if c.Op == op && c.Namespace == ns && c.Set == set && c.ErrorType == errorType {
			return c
		}
	}
	return Count{}
}

// Operations are the operation names the workload can run: semconv.Operations and those
// of semconv.MoreOperations that aerospike-client-go v7 has (it has no transactions, so
// no commit or abort).
var Operations = append(append([]string(nil), semconv.Operations...), semconv.OpBatchApply, semconv.OpQueryBackground)

// ParseMix parses "put=1,get=2"; every name must be one of Operations.
func ParseMix(s string) (map[string]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	mix := map[string]int{}
	for _, item := range strings.Split(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(item), "=")
		var weight int
		if ok {
			if _, err := fmt.Sscanf(w, "%d", &weight); err != nil || weight < 0 {
				return nil, fmt.Errorf("mix %q: weight of %s must be a non-negative integer", s, name)
			}
		} else {
			weight = 1
		}
		if !isOp(name) {
			return nil, fmt.Errorf("mix %q: unknown operation %q (known: %s)", s, name, strings.Join(Operations, ","))
		}
		mix[name] = weight
	}
	return mix, nil
}

func isOp(name string) bool {
	for _, op := range Operations {
		if op == name {
			return true
		}
	}
	return false
}

func (cfg *Config) defaults() error {
	if len(cfg.Hosts) == 0 {
		return fmt.Errorf("no hosts: pass at least one host:port")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.Count == 0 && cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "test"
	}
	if len(cfg.Sets) == 0 {
		cfg.Sets = []string{"users"}
	}
	if cfg.Keys <= 0 {
		cfg.Keys = 1000
	}
	for name := range cfg.Mix {
		if !isOp(name) {
			return fmt.Errorf("unknown operation %q in mix", name)
		}
	}
	if cfg.Mix == nil && cfg.EveryMethod {
		cfg.Mix = map[string]int{}
		for _, op := range Operations {
			cfg.Mix[op] = 1
		}
	}
	return nil
}

// schedule expands the mix into a fixed cycle of operations: op i of the run is
// cycle[i % len(cycle)], interleaved so that each kind is spread evenly.
func schedule(mix map[string]int) []string {
	weights := map[string]int{}
	for _, op := range Operations {
		if mix == nil {
			if slices.Contains(semconv.Operations, op) {
				weights[op] = 1
			}
		} else if w := mix[op]; w > 0 {
			weights[op] = w
		}
	}
	var cycle []string
	for round := 0; ; round++ {
		added := false
		for _, op := range Operations {
			if round < weights[op] {
				cycle = append(cycle, op)
				added = true
			}
		}
		if !added {
			return cycle
		}
	}
}

type seriesKey struct{ op, ns, set, errorType string }

type series struct {
	count int64
	sum   time.Duration
}

// Latency histogram: log buckets of 2% from 1µs, enough for p50/p99 without keeping samples.
const (
	histBase    = 1e-6
	histFactor  = 1.02
	histBuckets = 820
)

type worker struct {
	series     map[seriesKey]*series
	nodeScoped map[string]int64
	hist       [histBuckets]int64
	sum        time.Duration
	n          int64
}

func (w *worker) record(op, ns, set string, err error, d time.Duration) {
	k := seriesKey{op, ns, set, clienterr.Classify(op, err)}
	s := w.series[k]
	if s == nil {
		s = &series{}
		w.series[k] = s
	}
	s.count++
	s.sum += d
	w.sum += d
	w.n++
	b := 0
	if sec := d.Seconds(); sec > histBase {
		b = int(math.Log(sec/histBase) / math.Log(histFactor))
	}
	if b >= histBuckets {
		b = histBuckets - 1
	}
	w.hist[b]++
}

// Run preloads the keys, waits for the start trigger and runs the mix.
func Run(ctx context.Context, cfg Config) (*Truth, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	cycle := schedule(cfg.Mix)
	if len(cycle) == 0 {
		return nil, fmt.Errorf("mix has no operation with a positive weight")
	}
	hosts, err := as.NewHosts(cfg.Hosts...)
	if err != nil {
		return nil, fmt.Errorf("bad hosts %v: %v", cfg.Hosts, err)
	}
	cp := as.NewClientPolicy()
	cp.ConnectionQueueSize = max(cp.ConnectionQueueSize, 2*cfg.Concurrency)
	if cfg.NoCircuitBreaker {
		cp.MaxErrorRate = 0
	}
	client, err := as.NewClientWithPolicyAndHost(cp, hosts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %v: %v (is the server running?)", cfg.Hosts, err)
	}
	defer client.Close()

	r := newRunner(client, cfg, cycle)
	if err := r.preload(); err != nil {
		return nil, err
	}
	if cfg.Wrap != nil {
		r.client = cfg.Wrap(client)
	}
	if err := waitStart(ctx, &cfg); err != nil {
		return nil, err
	}
	return r.run(ctx), nil
}

func waitStart(ctx context.Context, cfg *Config) error {
	var sig chan os.Signal
	if cfg.WaitSignal {
		sig = make(chan os.Signal, 1)
		if startSignal == nil {
			return fmt.Errorf("--wait-signal needs a Unix system (SIGUSR1); use --start-delay instead")
		}
		signal.Notify(sig, startSignal)
		defer signal.Stop(sig)
	}
	if cfg.Ready != nil {
		cfg.Ready()
	} else if cfg.WaitSignal {
		fmt.Fprintf(os.Stderr, "workload: ready pid=%d\n", os.Getpid())
	}
	if cfg.WaitSignal {
		select {
		case <-sig:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if cfg.StartDelay > 0 {
		select {
		case <-time.After(cfg.StartDelay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (r *runner) run(ctx context.Context) *Truth {
	var deadline time.Time
	if r.cfg.Count == 0 {
		deadline = time.Now().Add(r.cfg.Duration)
	}
	start := time.Now()
	workers := make([]*worker, r.cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{series: map[seriesKey]*series{}, nodeScoped: map[string]int64{}}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				seq := r.next.Add(1) - 1
				if r.cfg.Count > 0 && seq >= r.cfg.Count {
					return
				}
				if ctx.Err() != nil || (!deadline.IsZero() && time.Now().After(deadline)) {
					return
				}
				if r.cfg.Rate > 0 {
					due := start.Add(time.Duration(float64(seq) / r.cfg.Rate * float64(time.Second)))
					if d := time.Until(due); d > 0 {
						if !deadline.IsZero() && due.After(deadline) {
							return
						}
						time.Sleep(d)
					}
				}
				r.step(w, seq)
			}
		}()
	}
	wg.Wait()
	return merge(workers)
}

// step runs operation seq, through the stack-growth harness when asked to.
func (r *runner) step(w *worker, seq int64) {
	if r.cfg.StackDepth <= 0 {
		r.do(w, seq)
		return
	}
	depth := r.cfg.StackDepth - int(seq%7)
	if seq%16 == 0 {
		done := make(chan struct{})
		go func() { defer close(done); deep(depth, func() { r.do(w, seq) }) }()
		<-done
		return
	}
	deep(depth, func() { r.do(w, seq) })
}

// deep recurses n frames of ~256 bytes each, then calls f.
//
//go:noinline
func deep(n int, f func()) byte {
	var pad [256]byte
	if n <= 0 {
		f()
		return pad[0]
	}
	pad[n%len(pad)] = byte(n)
	return deep(n-1, f) + pad[(n+1)%len(pad)]
}

func merge(workers []*worker) *Truth {
	all := map[seriesKey]*series{}
	var hist [histBuckets]int64
	t := &Truth{Counts: []Count{}}
	var sum time.Duration
	for _, w := range workers {
		for k, s := range w.series {
			a := all[k]
			if a == nil {
				a = &series{}
				all[k] = a
			}
			a.count += s.count
			a.sum += s.sum
		}
		for op, n := range w.nodeScoped {
			if t.NodeScoped == nil {
				t.NodeScoped = map[string]int64{}
			}
			t.NodeScoped[op] += n
		}
		for i, n := range w.hist {
			hist[i] += n
		}
		sum += w.sum
		t.TotalOps += w.n
	}
	for k, s := range all {
		t.Counts = append(t.Counts, Count{Op: k.op, Namespace: k.ns, Set: k.set, ErrorType: k.errorType,
			Count: s.count, SumSeconds: s.sum.Seconds()})
	}
	sort.Slice(t.Counts, func(i, j int) bool {
		a, b := t.Counts[i], t.Counts[j]
		if a.Op != b.Op {
			return a.Op < b.Op
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Set != b.Set {
			return a.Set < b.Set
		}
		return a.ErrorType < b.ErrorType
	})
	t.LatencySumSeconds = sum.Seconds()
	t.P50Ms = quantile(&hist, t.TotalOps, 0.50) * 1e3
	t.P95Ms = quantile(&hist, t.TotalOps, 0.95) * 1e3
	t.P99Ms = quantile(&hist, t.TotalOps, 0.99) * 1e3
	return t
}

func quantile(hist *[histBuckets]int64, total int64, q float64) float64 {
	if total == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(total)))
	var seen int64
	for i, n := range hist {
		seen += n
		if seen >= rank {
			// Geometric middle of the bucket.
			return histBase * math.Pow(histFactor, float64(i)+0.5)
		}
	}
	return histBase * math.Pow(histFactor, histBuckets)
}
