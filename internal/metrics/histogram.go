package metrics

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The recorder's histograms are its own: client_golang serves them (Registry, Gather,
// expfmt), but its histogram's Observe, with native buckets, finds them in a sync.Map and
// counts into a hot/cold pair, about 40 ns where this one takes a few.
//
// A series counts refined buckets: the classic bounds and the native bounds of schema 3
// together. Each refined bucket lies inside exactly one classic and one native bucket, so an
// observation is one atomic add to its refined bucket and one to the nanosecond sum; the
// classic and the native buckets are summed from the refined ones when the series is
// written. Placement is client_golang's for the float64 seconds it was given
// (time.Duration.Seconds): the native key by math.Frexp's exponent and the schema's bounds,
// the classic bucket by v <= bound.

// nativeSchema is the schema every series counts in; NativeBucketFactor picks it as
// client_golang would (the largest schema whose bucket factor 2^(2^-schema) is at most it).
const nativeSchema = 3

// nativeBounds are client_golang's bounds for schema 3 of the fraction math.Frexp gives
// (nativeHistogramBounds[3] in its histogram.go): 2^(i/8)/2, rounded as it rounds them.
var nativeBounds = [8]float64{
	0.5, 0.5452538663326288, 0.5946035575013605, 0.6484197773255048,
	0.7071067811865475, 0.7711054127039704, 0.8408964152537144, 0.9170040432046711,
}

const (
	perOctave = 1 << nativeSchema // native buckets per power of two
	// Octaves cover every positive int64 nanoseconds: 1 ns is 2^-29.9 s and MaxInt64 ns is
	// 2^33.1 s, so octave m, the native keys 8m+1 … 8m+8, i.e. (2^m, 2^(m+1)] seconds, runs
	// over m = -30 … 33. No duration falls outside them.
	minOctave  = -30
	numOctaves = 64
	mantBits   = 52
	mantMask   = 1<<mantBits - 1
	// fracSlotBits of the mantissa pick a slot of fracSlots that holds at most one native
	// bound: the closest two, 2^(i/8) apart in [1, 2), are 0.09 apart, a slot is 1/16 wide.
	fracSlotBits = 4
)

// fracSlot gives, for a mantissa whose top bits select it, how many of nativeBounds[1:]
// lie below the fraction: base, plus one if the mantissa is above thr.
type fracSlot struct {
	base uint8
	thr  uint64
}

var fracSlots = func() (t [1 << fracSlotBits]fracSlot) {
	var mant [perOctave]uint64
	for i, b := range nativeBounds {
		mant[i] = math.Float64bits(b) & mantMask // every bound is in [0.5, 1): same exponent
	}
	for s := range t {
		lo, hi := uint64(s)<<(mantBits-fracSlotBits), uint64(s+1)<<(mantBits-fracSlotBits)
		t[s].thr = math.MaxUint64
		inside := 0
		for _, m := range mant[1:] {
			switch {
			case m < lo:
				t[s].base++
			case m < hi:
				t[s].thr = m
				inside++
			}
		}
		if inside > 1 {
			panic("metrics: two native bounds in one fraction slot")
		}
	}
	return t
}()

// nativeKey is the schema-3 bucket key client_golang gives v > 0: bucket k holds
// (2^((k-1)/8), 2^(k/8)]. It equals sort.SearchFloat64s(nativeBounds, frac) + (exp-1)*8
// for frac, exp := math.Frexp(v), without the search: a mantissa above a bound's is a
// fraction above it, since every fraction has the same exponent. v must be normal.
func nativeKey(v float64) int {
	bits := math.Float64bits(v)
	exp := int(bits>>mantBits&0x7ff) - 1022 // math.Frexp's exponent
	mant := bits & mantMask
	slot := &fracSlots[mant>>(mantBits-fracSlotBits)]
	n := int(slot.base)
	if mant > slot.thr {
		n++
	}
	if mant != 0 { // a fraction above 0.5 is above nativeBounds[0]
		n++
	}
	return (exp-1)*perOctave + n
}

// keyUpper[i] is the longest duration whose seconds (time.Duration.Seconds, what
// client_golang was given) have native key i+1+minOctave*perOctave or less: Seconds is
// monotonic in d, so the durations of a key are those from keyUpper[i-1]+1 to keyUpper[i].
// float64(d)*1e-9 differs from d.Seconds() by a few units in the last place, far less than
// a bucket's 9%, so the key it gives is the right one or a neighbour, which these correct.
var keyUpper = func() (t [numOctaves * perOctave]time.Duration) {
	for i := range t {
		key := i + 1 + minOctave*perOctave
		lo, hi := time.Duration(0), time.Duration(math.MaxInt64) // nativeKey(lo) <= key < nativeKey(hi+1)
		for lo < hi {
			mid := lo + (hi-lo)/2 + 1 // hi-lo+1 could overflow
			if nativeKey(mid.Seconds()) <= key {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		t[i] = lo
	}
	return t
}()

// bucketLayout is where a family's refined buckets are, shared by its series.
type bucketLayout struct {
	classic    []float64 // the classic upper bounds, without +Inf
	maxBuckets int       // populated native buckets written at most, down to schema -4
	octaves    [numOctaves]octaveLayout
}

// octaveLayout places one octave's refined buckets in its counters.
type octaveLayout struct {
	// off[s] is the first counter of native slot s (key 8m+1+s), off[perOctave] the count.
	off [perOctave + 1]uint16
	// split has bit s set when classic bounds lie inside slot s; they are splits[s].
	split  uint8
	splits [perOctave][]float64
	// classic[i] is the classic bucket of counter i.
	classic []uint16
}

func newLayout(classic []float64, maxBuckets int) *bucketLayout {
	if !slices.IsSorted(classic) || len(classic) >= math.MaxUint16 {
		panic("metrics: classic bounds must be sorted and fewer than 65535")
	}
	l := &bucketLayout{classic: classic, maxBuckets: maxBuckets}
	for o := range l.octaves {
		ol := &l.octaves[o]
		n := 0
		for s := range perOctave {
			key := (minOctave+o)*perOctave + 1 + s
			below := 0 // classic bounds below every value of this key
			ol.off[s] = uint16(n)
			for _, b := range classic {
				switch k := nativeKey(b); {
				case k < key:
					below++
				case k == key:
					// A bound inside the native bucket (or on its upper bound, which then
					// splits off nothing above it) divides it: v <= b, v > b.
					ol.splits[s] = append(ol.splits[s], b)
				}
			}
			if len(ol.splits[s]) > 0 {
				ol.split |= 1 << s
			}
			for q := range len(ol.splits[s]) + 1 {
				ol.classic = append(ol.classic, uint16(below+q))
			}
			n += len(ol.splits[s]) + 1
		}
		ol.off[perOctave] = uint16(n)
	}
	return l
}

// counters are one octave's refined bucket counts, allocated on its first observation.
type counters struct{ n []atomic.Uint64 }

// nsSum is a sum of nanoseconds that wraps into a second word: a uint64 of nanoseconds
// alone holds 584 years, which a busy series of long operations reaches in months.
type nsSum struct{ lo, hi atomic.Uint64 }

func (s *nsSum) add(ns uint64) {
	if s.lo.Add(ns) < ns {
		s.hi.Add(1)
	}
}

// seconds reads the sum; a concurrent carry can make it 2^64 ns short for a moment.
func (s *nsSum) seconds() float64 {
	hi, lo := s.hi.Load(), s.lo.Load()
	return float64(hi)*(1<<64/1e9) + float64(lo/1e9) + float64(lo%1e9)/1e9
}

// histogram is one series: its refined buckets, zero and negative buckets, nanosecond sums
// and exemplars. It is the prometheus.Metric its family collects.
type histogram struct {
	layout  *bucketLayout
	octaves [numOctaves]atomic.Pointer[counters]
	sum     nsSum

	zero   atomic.Uint64 // durations of 0: below the zero threshold
	negMu  sync.Mutex    // negative durations (a clock's fault) are rare: a map will do
	neg    map[int]uint64
	negSum nsSum

	// exemplars[i] is classic bucket i's latest exemplar (the last one +Inf's), immutable.
	exemplars []atomic.Pointer[dto.Exemplar]

	desc    *prometheus.Desc
	labels  []*dto.LabelPair
	created *timestamppb.Timestamp
}

func newHistogram(layout *bucketLayout, desc *prometheus.Desc, names, values []string) *histogram {
	h := &histogram{}
	h.init(layout, desc, names, values)
	return h
}

func (h *histogram) init(layout *bucketLayout, desc *prometheus.Desc, names, values []string) {
	h.layout, h.desc = layout, desc
	h.exemplars = make([]atomic.Pointer[dto.Exemplar], len(layout.classic)+1)
	h.created = timestamppb.Now()
	for i, n := range names {
		h.labels = append(h.labels, &dto.LabelPair{Name: proto.String(n), Value: proto.String(values[i])})
	}
	slices.SortFunc(h.labels, func(a, b *dto.LabelPair) int { return cmp.Compare(a.GetName(), b.GetName()) })
}

// Observe counts one duration.
func (h *histogram) Observe(d time.Duration) {
	if d <= 0 {
		h.observeNonPositive(d)
		return
	}
	// idx is the native key of d.Seconds() as a place from octave minOctave on, in range for
	// every d >= 1ns; float64(d)*1e-9 finds it without Seconds' division, keyUpper corrects it.
	idx := uint(nativeKey(float64(d)*1e-9) - 1 - minOctave*perOctave)
	if d > keyUpper[idx] {
		idx++
	} else if idx > 0 && d <= keyUpper[idx-1] {
		idx--
	}
	o, s := idx/perOctave, idx%perOctave
	ol := &h.layout.octaves[o]
	i := int(ol.off[s])
	if ol.split&(1<<s) != 0 {
		v := d.Seconds()
		for _, b := range ol.splits[s] {
			if v > b {
				i++
			}
		}
	}
	c := h.octaves[o].Load()
	if c == nil {
		c = h.allocate(o)
	}
	c.n[i].Add(1)
	h.sum.add(uint64(d))
}

func (h *histogram) allocate(o uint) *counters {
	c := &counters{n: make([]atomic.Uint64, h.layout.octaves[o].off[perOctave])}
	if h.octaves[o].CompareAndSwap(nil, c) {
		return c
	}
	return h.octaves[o].Load()
}

// observeNonPositive counts 0 in the zero bucket and a negative duration in the negative
// native buckets, as client_golang does (its zero threshold is 2^-128 s), both in the
// first classic bucket.
func (h *histogram) observeNonPositive(d time.Duration) {
	if d == 0 {
		h.zero.Add(1)
		return
	}
	key := nativeKey(-d.Seconds())
	h.negMu.Lock()
	if h.neg == nil {
		h.neg = map[int]uint64{}
	}
	h.neg[key]++
	h.negMu.Unlock()
	h.negSum.add(uint64(-d)) // MinInt64 too: its negation is 2^63 as a uint64
}

// setExemplar makes e the exemplar of classic bucket i.
func (h *histogram) setExemplar(i int, e *dto.Exemplar) { h.exemplars[i].Store(e) }

// Desc is the family's.
func (h *histogram) Desc() *prometheus.Desc { return h.desc }

// nativeBucket is one populated native bucket.
type nativeBucket struct {
	key   int
	count uint64
}

// Write fills out with the classic buckets, the native ones at schema 3 or, beyond the
// layout's maxBuckets populated buckets, at the highest schema with at most that many, and
// the exemplars: what client_golang writes for a histogram with both kinds of buckets.
func (h *histogram) Write(out *dto.Metric) error {
	l := h.layout
	classic := make([]uint64, len(l.classic)+1)
	var pos []nativeBucket
	for o := range h.octaves {
		c := h.octaves[o].Load()
		if c == nil {
			continue
		}
		ol := &l.octaves[o]
		for s := range perOctave {
			var n uint64
			for i := ol.off[s]; i < ol.off[s+1]; i++ {
				v := c.n[i].Load()
				classic[ol.classic[i]] += v
				n += v
			}
			if n > 0 {
				pos = append(pos, nativeBucket{(minOctave+o)*perOctave + 1 + s, n})
			}
		}
	}
	zero := h.zero.Load()
	var neg []nativeBucket
	h.negMu.Lock()
	for k, n := range h.neg {
		neg = append(neg, nativeBucket{k, n})
		classic[0] += n
	}
	h.negMu.Unlock()
	slices.SortFunc(neg, func(a, b nativeBucket) int { return a.key - b.key })
	classic[0] += zero

	var count uint64
	for _, n := range classic {
		count += n
	}
	his := &dto.Histogram{
		SampleCount:      proto.Uint64(count),
		SampleSum:        proto.Float64(h.sum.seconds() - h.negSum.seconds()),
		CreatedTimestamp: h.created,
		Bucket:           make([]*dto.Bucket, len(l.classic), len(l.classic)+1),
	}
	var cum uint64
	for i, b := range l.classic {
		cum += classic[i]
		his.Bucket[i] = &dto.Bucket{CumulativeCount: proto.Uint64(cum), UpperBound: proto.Float64(b),
			Exemplar: h.exemplars[i].Load()}
	}
	if e := h.exemplars[len(l.classic)].Load(); e != nil { // +Inf is written only to carry one
		his.Bucket = append(his.Bucket, &dto.Bucket{CumulativeCount: proto.Uint64(count),
			UpperBound: proto.Float64(math.Inf(1)), Exemplar: e})
	}

	schema := int32(nativeSchema)
	for len(pos)+len(neg) > l.maxBuckets && schema > nativeSchemaMinimum {
		pos, neg = halveResolution(pos), halveResolution(neg)
		schema--
	}
	his.Schema = proto.Int32(schema)
	his.ZeroThreshold = proto.Float64(prometheus.DefNativeHistogramZeroThreshold)
	his.ZeroCount = proto.Uint64(zero)
	his.NegativeSpan, his.NegativeDelta = spansAndDeltas(neg)
	his.PositiveSpan, his.PositiveDelta = spansAndDeltas(pos)
	// client_golang adds a no-op span to an empty histogram only when its zero threshold is
	// 0; ours is not, and a zero threshold already tells a scraper the histogram is native.

	// The native exemplars are the classic buckets', in value order as client_golang keeps
	// its (up to 10, 5 minutes at most) native exemplars.
	for i := range h.exemplars {
		if e := h.exemplars[i].Load(); e != nil {
			his.Exemplars = append(his.Exemplars, e)
		}
	}
	slices.SortStableFunc(his.Exemplars, func(a, b *dto.Exemplar) int { return cmp.Compare(a.GetValue(), b.GetValue()) })
	out.Label = h.labels
	out.Histogram = his
	return nil
}

// nativeSchemaMinimum is the lowest schema Prometheus defines.
const nativeSchemaMinimum = -4

// halveResolution merges buckets pairwise into the next lower schema, in place: bucket k
// of schema s is inside bucket ceil(k/2) of schema s-1, as Prometheus defines the schemas.
func halveResolution(b []nativeBucket) []nativeBucket {
	out := b[:0]
	for _, nb := range b {
		k := (nb.key + 1) >> 1
		if len(out) > 0 && out[len(out)-1].key == k {
			out[len(out)-1].count += nb.count
			continue
		}
		out = append(out, nativeBucket{k, nb.count})
	}
	return out
}

// spansAndDeltas encodes ascending populated buckets as client_golang does: a gap of one
// or two empty buckets stays in the span as zero counts, a wider one starts a new span.
func spansAndDeltas(b []nativeBucket) ([]*dto.BucketSpan, []int64) {
	if len(b) == 0 {
		return nil, nil
	}
	var (
		spans  []*dto.BucketSpan
		deltas []int64
		prev   int64
		next   int
	)
	appendDelta := func(count int64) {
		*spans[len(spans)-1].Length++
		deltas = append(deltas, count-prev)
		prev = count
	}
	for n, nb := range b {
		gap := int32(nb.key - next)
		if n == 0 || gap > 2 {
			spans = append(spans, &dto.BucketSpan{Offset: proto.Int32(gap), Length: proto.Uint32(0)})
		} else {
			for range gap {
				appendDelta(0)
			}
		}
		appendDelta(int64(nb.count))
		next = nb.key + 1
	}
	return spans, deltas
}

// family is the prometheus.Collector of one histogram family over the recorder's series.
type family[K labeled[L], L comparable, V comparable] struct {
	desc   *prometheus.Desc
	series *seriesMap[K, L, V]
	hist   func(V) *histogram
}

func (f *family[K, L, V]) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }

func (f *family[K, L, V]) Collect(ch chan<- prometheus.Metric) {
	for _, v := range f.series.values() {
		ch <- f.hist(v)
	}
}
