package inproc

import (
	"testing"
	"time"

	as "github.com/aerospike/aerospike-client-go/v7"

	"github.com/asobserve/asobserve/internal/testserver"
)

// BenchmarkWrapperOverhead measures the wrapper's recording cost on a path without I/O: a Get
// on a namespace the cluster does not serve fails inside the client before any network
// traffic. wrapped minus direct is the cost per call (timing, classification, histogram);
// record is that cost alone for a successful call.
func BenchmarkWrapperOverhead(b *testing.B) {
	fresh(b)
	_, raw := startServer(b, testserver.Config{})
	k, err := as.NewKey("nope", "users", 1)
	if err != nil {
		b.Fatal(err)
	}
	pol := as.NewPolicy()
	pol.MaxRetries = 0
	if _, err := raw.Get(pol, k); err == nil {
		b.Fatal("Get on an unknown namespace succeeded; the benchmark needs a client-side failure")
	}
	c := Wrap(raw)

	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = raw.Get(pol, k)
		}
	})
	b.Run("wrapped", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = c.Get(pol, k)
		}
	})
	// clock is the part of record no instrumentation can avoid: a start and an end reading.
	b.Run("clock", func(b *testing.B) {
		loopCPU(b, func() {
			start := time.Since(clockBase)
			clockSink = time.Since(clockBase) - start
		})
	})
	// observe is the part of record that is the histogram's own: one Observe of the series
	// record finds (internal/metrics' histogram: one refined bucket serving the classic and
	// the native buckets, and the nanosecond sum).
	b.Run("observe", func(b *testing.B) {
		s := state()
		series, _ := s.rec.OpSeries(s.target.Identity, opPut.name, "test", "users", "")
		loopCPU(b, func() { series.Observe(time.Millisecond) })
	})
	b.Run("record", func(b *testing.B) {
		b.ReportAllocs()
		loopCPU(b, func() { finish(begin(), opPut, "test", "users", nil) })
	})
	// record-three-sets is record with the calls cycling through three sets, each its own
	// series: found among the operation's cached series, not by its labels.
	b.Run("record-three-sets", func(b *testing.B) {
		b.ReportAllocs()
		sets := [...]string{"users", "sessions", "carts"}
		i := 0
		loopCPU(b, func() {
			finish(begin(), opPut, "test", sets[i%len(sets)], nil)
			i++
		})
	})
}

var clockSink time.Duration
