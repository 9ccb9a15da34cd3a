package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	as "github.com/aerospike/aerospike-client-go/v7"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/asobserve/asobserve/inproc"
	"github.com/asobserve/asobserve/internal/semconv"
	"github.com/asobserve/asobserve/internal/testserver"
	"github.com/asobserve/asobserve/internal/workload"
)

// runInprocDemo is the demo without eBPF: the same workload runs in this process with
// its client wrapped by the in-process package, which feeds the same recorder.
func runInprocDemo(listen string, duration time.Duration, out io.Writer) error {
	cluster, err := testserver.Start("127.0.0.1:0", testserver.Config{Nodes: 3})
	if err != nil {
		return fmt.Errorf("starting the test server: %w", err)
	}
	defer cluster.Close()
	fmt.Fprintf(out, "test server: 3 nodes on %s\n", strings.Join(cluster.Hosts(), ", "))
	if err := inproc.StartMetricsServer(listen); err != nil {
		return err
	}
	defer inproc.StopMetricsServer()
	if err := inproc.InitMetricsExport(); err != nil { // OTEL_METRICS_EXPORTER=otlp, as the agent
		return usageError{err}
	}
	defer func() {
		flush, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = inproc.ShutdownMetricsExport(flush)
	}()
	fmt.Fprintf(out, "metrics: http://%s/metrics   (in-process mode)\n\n", inproc.MetricsServerAddr())
	cluster.SetFaults([]testserver.Fault{{Set: "sessions", Command: "read", Latency: 2 * time.Millisecond}})

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := workload.Run(ctx, workload.Config{Hosts: cluster.Hosts(), Duration: duration, Concurrency: 4, Rate: 2000,
			Errors: true, Sets: []string{"users", "sessions"}, Keys: 500,
			Wrap: func(c *as.Client) workload.Client { return inproc.Wrap(c) }})
		done <- err
	}()
	reg := prometheus.NewRegistry()
	reg.MustRegister(inproc.Collector())
	table := &histTable{prev: map[string]opHist{}}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			table.print(out, reg)
			return err
		case <-tick.C:
			table.print(out, reg)
		}
	}
}

type opHist struct {
	count, errors uint64
	buckets       []uint64 // cumulative, per semconv.OperationBuckets
}

// histTable prints per-operation rates and quantiles from histogram deltas, the way
// histogram_quantile() estimates them.
type histTable struct{ prev map[string]opHist }

func (h *histTable) print(out io.Writer, g prometheus.Gatherer) {
	mfs, err := g.Gather()
	if err != nil {
		return
	}
	cur := map[string]opHist{}
	for _, mf := range mfs {
		if mf.GetName() != semconv.OperationMetric {
			continue
		}
		for _, m := range mf.GetMetric() {
			var op, errType string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case semconv.LabelOperation:
					op = l.GetValue()
				case semconv.LabelErrorType:
					errType = l.GetValue()
				}
			}
			o := cur[op]
			hist := m.GetHistogram()
			o.count += hist.GetSampleCount()
			if errType != "" {
				o.errors += hist.GetSampleCount()
			}
			if o.buckets == nil {
				o.buckets = make([]uint64, len(semconv.OperationBuckets))
			}
			for i, b := range hist.GetBucket() {
				if i < len(o.buckets) {
					o.buckets[i] += b.GetCumulativeCount()
				}
			}
			cur[op] = o
		}
	}
	ops := make([]string, 0, len(cur))
	for op := range cur {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	fmt.Fprintf(out, "%s  %-14s %8s %10s %10s %8s\n", time.Now().Format("15:04:05"), "operation", "ops/s", "p50", "p99", "errors")
	for _, op := range ops {
		c, p := cur[op], h.prev[op]
		delta := make([]uint64, len(c.buckets))
		for i := range c.buckets {
			var before uint64
			if i < len(p.buckets) {
				before = p.buckets[i]
			}
			delta[i] = c.buckets[i] - before
		}
		n := c.count - p.count
		fmt.Fprintf(out, "          %-14s %8d %10s %10s %8d\n", op, n, bucketQuantile(0.5, delta, n), bucketQuantile(0.99, delta, n), c.errors)
	}
	h.prev = cur
}

func bucketQuantile(q float64, cumulative []uint64, total uint64) string {
	if total == 0 {
		return "-"
	}
	rank := q * float64(total)
	lower, prevCount := 0.0, uint64(0)
	for i, c := range cumulative {
		upper := semconv.OperationBuckets[i]
		if float64(c) >= rank {
			frac := (rank - float64(prevCount)) / math.Max(float64(c-prevCount), 1)
			return time.Duration((lower + frac*(upper-lower)) * float64(time.Second)).Round(time.Microsecond).String()
		}
		lower, prevCount = upper, c
	}
	return ">" + time.Duration(lower*float64(time.Second)).String()
}
