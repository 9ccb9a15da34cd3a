package metrics

import (
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/asobserve/asobserve/internal/semconv"
)

// testDurations are the durations the equivalence tests feed: 0, the first nanoseconds, every
// classic bound exactly and either side, the powers of two that are whole nanoseconds, the
// nanoseconds either side of every schema-3 bound from 1ns to 2^34 s, a deterministic
// log-uniform spread from 1ns to an hour, a few negatives and the extremes of int64.
func testDurations() []time.Duration {
	var ds []time.Duration
	for ns := range 20 {
		ds = append(ds, time.Duration(ns))
	}
	for _, bounds := range [][]float64{semconv.OperationBuckets, semconv.StageBuckets} {
		for _, b := range bounds {
			d := time.Duration(math.Round(b * 1e9))
			ds = append(ds, d-1, d, d+1)
		}
	}
	for e := -9; e <= 33; e++ { // 2^e s in whole ns: 1e9 = 2^9 · 1953125
		d := time.Duration(math.Round(math.Ldexp(1e9, e)))
		ds = append(ds, d-1, d, d+1)
	}
	for k := -239; k <= 271; k++ {
		b := math.Exp2(float64(k)/8) * 1e9
		if b < math.MaxInt64/2 {
			d := time.Duration(b)
			ds = append(ds, d-1, d, d+1, d+2)
		}
	}
	for _, u := range keyUpper { // where the native key changes
		ds = append(ds, u-1, u, u+1)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		ds = append(ds, time.Duration(math.Exp(rng.Float64()*math.Log(float64(time.Hour)))))
	}
	ds = append(ds, -1, -time.Millisecond, -3*time.Second, math.MinInt64, math.MaxInt64, math.MaxInt64-1)
	return ds
}

// clientGolang is today's histogram from client_golang with the recorder's options, but no
// bucket limit (which it would meet by reducing its schema as it goes).
func clientGolang(bounds []float64) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Help: "h", Buckets: bounds,
		NativeHistogramBucketFactor: NativeBucketFactor})
}

func write(t *testing.T, m prometheus.Metric) *dto.Histogram {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	return out.GetHistogram()
}

var testDesc = prometheus.NewDesc("h", "h", nil, nil)

func compareHistograms(t *testing.T, got, want *dto.Histogram) {
	t.Helper()
	if got.GetSampleCount() != want.GetSampleCount() {
		t.Errorf("count %d, client_golang's %d", got.GetSampleCount(), want.GetSampleCount())
	}
	if g, w := got.GetSampleSum(), want.GetSampleSum(); math.Abs(g-w) > 1e-9*math.Abs(w) {
		t.Errorf("sum %v, client_golang's %v", g, w)
	}
	if len(got.GetBucket()) != len(want.GetBucket()) {
		t.Fatalf("%d classic buckets, client_golang's %d", len(got.GetBucket()), len(want.GetBucket()))
	}
	for i, b := range want.GetBucket() {
		g := got.GetBucket()[i]
		if g.GetUpperBound() != b.GetUpperBound() || g.GetCumulativeCount() != b.GetCumulativeCount() {
			t.Errorf("classic bucket %d: le=%v %d, client_golang's le=%v %d", i, g.GetUpperBound(), g.GetCumulativeCount(),
				b.GetUpperBound(), b.GetCumulativeCount())
		}
	}
	if got.GetSchema() != want.GetSchema() || got.GetZeroThreshold() != want.GetZeroThreshold() ||
		got.GetZeroCount() != want.GetZeroCount() {
		t.Errorf("schema %d, zero threshold %v, zero count %d; client_golang's %d, %v, %d", got.GetSchema(),
			got.GetZeroThreshold(), got.GetZeroCount(), want.GetSchema(), want.GetZeroThreshold(), want.GetZeroCount())
	}
	for _, side := range []struct {
		name   string
		gs, ws []*dto.BucketSpan
		gd, wd []int64
	}{
		{name: "positive", gs: got.GetPositiveSpan(), ws: want.GetPositiveSpan(), gd: got.GetPositiveDelta(), wd: want.GetPositiveDelta()},
		{name: "negative", gs: got.GetNegativeSpan(), ws: want.GetNegativeSpan(), gd: got.GetNegativeDelta(), wd: want.GetNegativeDelta()},
	} {
		if !equalSpans(side.gs, side.ws) {
			t.Errorf("%s spans %v, client_golang's %v", side.name, side.gs, side.ws)
		}
		if !equalInts(side.gd, side.wd) {
			t.Errorf("%s deltas %v, client_golang's %v", side.name, side.gd, side.wd)
		}
	}
}

func equalSpans(a, b []*dto.BucketSpan) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].GetOffset() != b[i].GetOffset() || a[i].GetLength() != b[i].GetLength() {
			return false
		}
	}
	return true
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNativeKeyIsClientGolangs(t *testing.T) {
	for i, b := range nativeBounds {
		if want := math.Exp2(float64(i)/8) / 2; math.Abs(b-want) > 1e-15 {
			t.Errorf("bound %d is %v, 2^(%d/8)/2 is %v", i, b, i, want)
		}
	}
	search := func(v float64) int { // client_golang's computation for schema 3
		frac, exp := math.Frexp(v)
		return sort.SearchFloat64s(nativeBounds[:], frac) + (exp-1)*8
	}
	vs := []float64{1e-9, 0.001, 1, 2, 0.5, math.MaxInt64 / 1e9}
	for _, b := range nativeBounds {
		for e := -40; e <= 40; e++ {
			v := math.Ldexp(b, e)
			vs = append(vs, v, math.Nextafter(v, 0), math.Nextafter(v, math.Inf(1)))
		}
	}
	for _, d := range testDurations() {
		if d > 0 {
			vs = append(vs, d.Seconds())
		}
	}
	for _, v := range vs {
		if got, want := nativeKey(v), search(v); got != want {
			t.Errorf("nativeKey(%v) = %d, client_golang's %d", v, got, want)
		}
	}
}

// TestKeyThresholds: keyUpper are where the native key of a duration's seconds changes
// (TestEquivalentToClientGolang observes either side of each).
func TestKeyThresholds(t *testing.T) {
	for i, u := range keyUpper {
		key := i + 1 + minOctave*perOctave
		if u > 0 && nativeKey(u.Seconds()) > key {
			t.Errorf("threshold %d of key %d has key %d", u, key, nativeKey(u.Seconds()))
		}
		if u < math.MaxInt64 && nativeKey((u+1).Seconds()) <= key {
			t.Errorf("threshold %d of key %d: the next nanosecond has key %d", u, key, nativeKey((u + 1).Seconds()))
		}
	}
	for i := 1; i < len(keyUpper); i++ {
		if keyUpper[i] < keyUpper[i-1] {
			t.Errorf("thresholds %d, %d decrease", keyUpper[i-1], keyUpper[i])
		}
	}
	if keyUpper[len(keyUpper)-1] != math.MaxInt64 {
		t.Errorf("the last threshold %d is not the longest duration", keyUpper[len(keyUpper)-1])
	}
}

// TestEquivalentToClientGolang feeds the same durations to ours and to client_golang's
// histogram with today's options: every bucket, classic and native, must be the same.
func TestEquivalentToClientGolang(t *testing.T) {
	for _, bounds := range [][]float64{semconv.OperationBuckets, semconv.StageBuckets} {
		ours := newHistogram(newLayout(bounds, math.MaxInt), testDesc, nil, nil)
		theirs := clientGolang(bounds)
		compareHistograms(t, write(t, ours), write(t, theirs)) // empty
		for _, d := range testDurations() {
			ours.Observe(d)
			theirs.Observe(d.Seconds())
		}
		got, want := write(t, ours), write(t, theirs)
		if got.GetSampleCount() < 5000 || len(want.GetPositiveDelta()) < 300 {
			t.Fatalf("%d observations in %d native buckets: the test feeds too little", got.GetSampleCount(), len(want.GetPositiveDelta()))
		}
		compareHistograms(t, got, want)
	}
}

// nativeCounts reads the positive native buckets of h, as a map from key to count.
func nativeCounts(h *dto.Histogram) map[int]int64 {
	out := map[int]int64{}
	var key int
	var count int64
	deltas := h.GetPositiveDelta()
	for _, s := range h.GetPositiveSpan() {
		key += int(s.GetOffset())
		for range s.GetLength() {
			count += deltas[0]
			deltas = deltas[1:]
			if count != 0 {
				out[key] = count
			}
			key++
		}
	}
	return out
}

func TestSchemaReducedBeyondMaxBuckets(t *testing.T) {
	full := newHistogram(newLayout(semconv.OperationBuckets, math.MaxInt), testDesc, nil, nil)
	limited := newHistogram(opLayout, testDesc, nil, nil)
	for _, d := range testDurations() {
		if d > 0 {
			full.Observe(d)
			limited.Observe(d)
		}
	}
	f, l := write(t, full), write(t, limited)
	at3 := nativeCounts(f)
	if len(at3) <= NativeMaxBuckets {
		t.Fatalf("%d native buckets at schema 3: the test needs more than %d", len(at3), NativeMaxBuckets)
	}
	got := nativeCounts(l)
	if len(got) > NativeMaxBuckets {
		t.Errorf("%d native buckets written, more than %d", len(got), NativeMaxBuckets)
	}
	merge := func(counts map[int]int64, by int) map[int]int64 {
		out := map[int]int64{}
		for k, n := range counts {
			for range by {
				k = (k + 1) >> 1 // ceil(k/2): schema s's bucket k is inside schema s-1's ceil(k/2)
			}
			out[k] += n
		}
		return out
	}
	schema := int(l.GetSchema())
	if schema >= 3 {
		t.Fatalf("schema %d, want it reduced", schema)
	}
	if n := len(merge(at3, 3-schema-1)); n <= NativeMaxBuckets {
		t.Errorf("schema %d has %d buckets, within the limit: the reduction went one schema too far", schema+1, n)
	}
	want := merge(at3, 3-schema)
	if len(want) != len(got) {
		t.Errorf("%d buckets at schema %d, merged schema-3 counts have %d", len(got), schema, len(want))
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("schema %d bucket %d: %d, merged schema-3 counts %d", schema, k, got[k], n)
		}
	}
	if l.GetSampleCount() != f.GetSampleCount() || l.GetSampleSum() != f.GetSampleSum() {
		t.Errorf("count %d sum %v after the reduction, %d %v before", l.GetSampleCount(), l.GetSampleSum(),
			f.GetSampleCount(), f.GetSampleSum())
	}
	for i, b := range f.GetBucket() {
		if l.GetBucket()[i].GetCumulativeCount() != b.GetCumulativeCount() {
			t.Errorf("classic bucket %d changed with the schema", i)
		}
	}
	// A second write reduces the same way: nothing was reset.
	if again := write(t, limited); again.GetSchema() != l.GetSchema() || again.GetSampleCount() != l.GetSampleCount() {
		t.Errorf("second write: schema %d count %d", again.GetSchema(), again.GetSampleCount())
	}
}

func TestConcurrentObservationsAllCounted(t *testing.T) {
	h := newHistogram(opLayout, testDesc, nil, nil)
	const goroutines, each = 8, 20000
	var wg sync.WaitGroup
	var sums [goroutines]int64
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for range each {
				d := time.Duration(rng.Int64N(int64(20 * time.Second)))
				h.Observe(d)
				sums[g] += int64(d)
			}
		}()
	}
	stop := make(chan struct{})
	wrote := make(chan struct{})
	go func() { // collecting while observing
		defer close(wrote)
		for {
			select {
			case <-stop:
				return
			default:
				if hh := write(t, h); hh.GetSampleCount() > goroutines*each {
					t.Errorf("count %d mid-way", hh.GetSampleCount())
				}
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-wrote
	var want int64
	for _, s := range sums {
		want += s
	}
	got := write(t, h)
	if got.GetSampleCount() != goroutines*each {
		t.Errorf("count %d, want %d", got.GetSampleCount(), goroutines*each)
	}
	if h.sum.hi.Load() != 0 || h.sum.lo.Load() != uint64(want) {
		t.Errorf("sum %d:%d ns, want %d", h.sum.hi.Load(), h.sum.lo.Load(), want)
	}
	var native uint64
	for _, n := range nativeCounts(got) {
		native += uint64(n)
	}
	if native+got.GetZeroCount() != got.GetSampleCount() {
		t.Errorf("native buckets hold %d+%d, count %d", native, got.GetZeroCount(), got.GetSampleCount())
	}
}

// TestNoDurationOutOfRange: the octaves cover every int64 nanoseconds, so every duration
// lands in its own native bucket (none is clamped into an edge one).
func TestNoDurationOutOfRange(t *testing.T) {
	for _, d := range []time.Duration{1, 2, time.Microsecond, 194 * 24 * time.Hour, math.MaxInt64 / 2, math.MaxInt64} {
		h := newHistogram(opLayout, testDesc, nil, nil)
		h.Observe(d)
		c := clientGolang(semconv.OperationBuckets)
		c.Observe(d.Seconds())
		compareHistograms(t, write(t, h), write(t, c))
	}
	if lo, hi := nativeKey(time.Duration(1).Seconds()), nativeKey(time.Duration(math.MaxInt64).Seconds()); lo <= minOctave*perOctave ||
		hi > (minOctave+numOctaves)*perOctave {
		t.Errorf("keys %d … %d outside the octaves' %d … %d", lo, hi, minOctave*perOctave+1, (minOctave+numOctaves)*perOctave)
	}
}

func TestNanosecondSumCarries(t *testing.T) {
	var s nsSum
	s.add(math.MaxUint64 - 5)
	s.add(10)
	if s.hi.Load() != 1 || s.lo.Load() != 4 {
		t.Fatalf("%d:%d", s.hi.Load(), s.lo.Load())
	}
	if want := (math.MaxUint64 + 5.0) / 1e9; math.Abs(s.seconds()-want) > 1e-9*want {
		t.Errorf("%v s, want %v", s.seconds(), want)
	}
	var small nsSum
	small.add(1500 * uint64(time.Millisecond))
	if small.seconds() != 1.5 {
		t.Errorf("%v s, want 1.5", small.seconds())
	}
}

func TestLayoutSplitsEveryClassicBoundOnce(t *testing.T) {
	for _, bounds := range [][]float64{semconv.OperationBuckets, semconv.StageBuckets, {0.1, 0.101, 0.102}} {
		l := newLayout(bounds, NativeMaxBuckets)
		splits := 0
		for _, o := range l.octaves {
			for _, s := range o.splits {
				splits += len(s)
			}
			if len(o.classic) != int(o.off[perOctave]) {
				t.Errorf("%d classic indexes for %d counters", len(o.classic), o.off[perOctave])
			}
		}
		if splits != len(bounds) {
			t.Errorf("%v: %d splits", bounds, splits)
		}
	}
	// Three bounds in one native bucket (0.1 … 0.102 are inside (2^(-27/8), 2^(-26/8)])
	// still place as client_golang does.
	bounds := []float64{0.1, 0.101, 0.102}
	ours := newHistogram(newLayout(bounds, math.MaxInt), testDesc, nil, nil)
	theirs := clientGolang(bounds)
	for ns := 99 * time.Millisecond; ns < 104*time.Millisecond; ns += 10 * time.Microsecond {
		ours.Observe(ns)
		theirs.Observe(ns.Seconds())
	}
	for _, b := range bounds {
		d := time.Duration(b * 1e9)
		ours.Observe(d)
		theirs.Observe(d.Seconds())
	}
	compareHistograms(t, write(t, ours), write(t, theirs))
}

func TestWriteCarriesLabelsAndCreated(t *testing.T) {
	h := newHistogram(opLayout, testDesc, []string{"b", "a"}, []string{"2", "1"})
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	if len(m.GetLabel()) != 2 || m.GetLabel()[0].GetName() != "a" || m.GetLabel()[1].GetValue() != "2" {
		t.Errorf("labels %v, want sorted by name", m.GetLabel())
	}
	if m.GetHistogram().GetCreatedTimestamp() == nil {
		t.Error("no created timestamp")
	}
	// Empty: native all the same, by its zero threshold, as client_golang writes it.
	if hh := m.GetHistogram(); hh.GetZeroThreshold() != prometheus.DefNativeHistogramZeroThreshold || hh.Schema == nil {
		t.Errorf("empty histogram %v", hh)
	}
}

func TestNativeExemplarsAreTheBucketsOnes(t *testing.T) {
	h := newHistogram(opLayout, testDesc, nil, nil)
	e1 := &dto.Exemplar{Value: proto.Float64(0.3)}
	e2 := &dto.Exemplar{Value: proto.Float64(0.002)}
	e3 := &dto.Exemplar{Value: proto.Float64(20)}
	h.setExemplar(5, e1)
	h.setExemplar(1, e2)
	h.setExemplar(len(semconv.OperationBuckets), e3)
	got := write(t, h)
	if len(got.GetExemplars()) != 3 || got.GetExemplars()[0] != e2 || got.GetExemplars()[1] != e1 || got.GetExemplars()[2] != e3 {
		t.Errorf("native exemplars %v, want the three by value", got.GetExemplars())
	}
	b := got.GetBucket()
	if b[5].GetExemplar() != e1 || b[1].GetExemplar() != e2 || len(b) != len(semconv.OperationBuckets)+1 ||
		b[len(b)-1].GetExemplar() != e3 || !math.IsInf(b[len(b)-1].GetUpperBound(), 1) {
		t.Errorf("classic buckets %v", b)
	}
}

func BenchmarkHistogramObserve(b *testing.B) {
	h := newHistogram(opLayout, testDesc, nil, nil)
	ds := testDurations()[:4096]
	b.Run("constant", func(b *testing.B) {
		for b.Loop() {
			h.Observe(time.Millisecond)
		}
	})
	b.Run("spread", func(b *testing.B) {
		i := 0
		for b.Loop() {
			h.Observe(ds[i&4095])
			i++
		}
	})
	b.Run("client_golang", func(b *testing.B) {
		c := clientGolang(semconv.OperationBuckets)
		for b.Loop() {
			c.Observe(0.001)
		}
	})
}
