// Package rolling keeps 1m/5m/15m (configurable) summaries of operation and stage
// latencies: count, rate, average, last value and p50/p95/p99, without PromQL. It is an
// observe.Observer: register it with Recorder.AddObserver and it sees every observation
// after the recorder's cardinality cap.
//
// Design: every series holds, per window W, a ring of Slots time slots of width W/Slots.
// A slot keeps count, sum and a log-linear histogram (see hist.go), so memory per series is
// bounded and independent of the event rate, and an observation costs one short critical
// section on its own series. A window covers the current (partial) slot plus the Slots−1
// slots before it, i.e. between W−W/Slots and W of history; with the defaults (12 slots) the
// 1m window moves in 5 s steps.
package rolling

import (
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/semconv"
)

// DefaultWindows are the seed's rolling windows.
var DefaultWindows = []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute}

const (
	// DefaultSlots is the number of slots per window.
	DefaultSlots = 12
	// DefaultMaxSeries bounds the number of series; later keys fold into an overflow series.
	DefaultMaxSeries = 4096
	// Overflow replaces namespace and set of operation series created beyond MaxSeries.
	Overflow = metrics.OtherCollection
)

// Series kinds.
const (
	KindOperation = "operation"
	KindStage     = "stage"
)

// Options configure a Rolling.
type Options struct {
	Windows   []time.Duration  // default DefaultWindows
	Slots     int              // slots per window, default DefaultSlots
	MaxSeries int              // default DefaultMaxSeries
	Now       func() time.Time // default time.Now
}

// Rolling holds the rolling windows of every series. It is safe for concurrent use.
type Rolling struct {
	windows   []time.Duration
	slots     int
	maxSeries int
	now       func() time.Time
	start     time.Time

	mu       sync.RWMutex
	series   map[seriesKey]*series
	overflow atomic.Uint64
}

type seriesKey struct {
	kind                         uint8
	service, op, a, b, errorType string // a, b: namespace, set for operations; stage for stages
}

type slot struct {
	epoch int64 // slot number since the Unix epoch, -1 when unused
	count uint64
	sumNs int64
	minNs int64
	maxNs int64
	hist  hist
}

type ring struct {
	width int64 // ns
	slots []slot
}

type series struct {
	labels map[string]string
	kind   string

	mu       sync.Mutex
	rings    []ring
	lastNs   int64
	lastSeen int64 // unix ns
	dead     bool
}

// New returns an empty Rolling.
func New(o Options) *Rolling {
	r := &Rolling{series: map[seriesKey]*series{}, windows: o.Windows, slots: o.Slots, maxSeries: o.MaxSeries, now: o.Now}
	if len(r.windows) == 0 {
		r.windows = DefaultWindows
	}
	r.windows = append([]time.Duration(nil), r.windows...)
	if r.slots <= 0 {
		r.slots = DefaultSlots
	}
	if r.maxSeries <= 0 {
		r.maxSeries = DefaultMaxSeries
	}
	if r.now == nil {
		// One monotonic clock read per event instead of time.Now's wall+monotonic pair;
		// it also keeps windows immune to wall clock steps.
		start := time.Now()
		r.now = func() time.Time { return start.Add(time.Since(start)) }
	}
	r.start = r.now()
	return r
}

// Windows returns the configured window lengths.
func (r *Rolling) Windows() []time.Duration { return append([]time.Duration(nil), r.windows...) }

// Overflowed counts observations folded into an overflow series because of MaxSeries.
func (r *Rolling) Overflowed() uint64 { return r.overflow.Load() }

// Op implements observe.Observer.
func (r *Rolling) Op(t *observe.Target, op observe.Op) {
	k := seriesKey{kind: 0, service: serviceOf(t.Identity), op: op.Name, a: op.Namespace, b: op.Set, errorType: op.ErrorType}
	r.observe(k, int64(op.Duration()))
}

// Stage implements observe.Observer.
func (r *Rolling) Stage(t *observe.Target, st observe.Stage) {
	k := seriesKey{kind: 1, service: serviceOf(t.Identity), op: st.Op, a: st.Name}
	r.observe(k, int64(st.Duration()))
}

// TargetGone implements observe.Observer. Series are per service, not per process, and
// age out of their windows by themselves, so a process's end changes none of them.
func (r *Rolling) TargetGone(*observe.Target) {}

func (r *Rolling) observe(k seriesKey, durNs int64) {
	nowNs := r.now().UnixNano()
	// A series swept by Summaries between lookup and lock refuses the sample; the retry
	// creates a fresh one.
	for !r.lookup(k).observe(nowNs, durNs) {
	}
}

func serviceOf(id *observe.Identity) string {
	if id == nil {
		return ""
	}
	return id.Service
}

func (r *Rolling) lookup(k seriesKey) *series {
	r.mu.RLock()
	s := r.series[k]
	r.mu.RUnlock()
	if s != nil {
		return s
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s = r.series[k]; s != nil {
		return s
	}
	if len(r.series) >= r.maxSeries {
		r.overflow.Add(1)
		if k.kind == 0 {
			k.a, k.b = Overflow, Overflow
		} else {
			k.a = Overflow
		}
		if s = r.series[k]; s != nil {
			return s
		}
	}
	s = r.newSeries(k)
	r.series[k] = s
	return s
}

func (r *Rolling) newSeries(k seriesKey) *series {
	s := &series{rings: make([]ring, len(r.windows))}
	if k.kind == 0 {
		s.kind = KindOperation
		s.labels = map[string]string{
			"service_name": k.service, semconv.LabelOperation: k.op, semconv.LabelNamespace: k.a,
			semconv.LabelCollection: k.b, semconv.LabelErrorType: k.errorType,
		}
	} else {
		s.kind = KindStage
		s.labels = map[string]string{"service_name": k.service, semconv.LabelOperation: k.op, semconv.LabelStage: k.a}
	}
	for i, w := range r.windows {
		width := int64(w) / int64(r.slots)
		if width <= 0 {
			width = 1
		}
		s.rings[i] = ring{width: width, slots: make([]slot, r.slots)}
		for j := range s.rings[i].slots {
			s.rings[i].slots[j].epoch = -1
		}
	}
	return s
}

func (s *series) observe(nowNs, durNs int64) bool {
	s.mu.Lock()
	if s.dead {
		s.mu.Unlock()
		return false
	}
	for i := range s.rings {
		rg := &s.rings[i]
		epoch := nowNs / rg.width
		sl := &rg.slots[epoch%int64(len(rg.slots))]
		if sl.epoch != epoch {
			sl.epoch = epoch
			sl.count = 0
			sl.sumNs = 0
			sl.minNs, sl.maxNs = durNs, durNs
			sl.hist.reset()
		}
		sl.minNs = min(sl.minNs, durNs)
		sl.maxNs = max(sl.maxNs, durNs)
		sl.count++
		sl.sumNs += durNs
		sl.hist.add(durNs)
	}
	s.lastNs = durNs
	s.lastSeen = nowNs
	s.mu.Unlock()
	return true
}

// Summary is the rolling view of one series. Field names are part of the snapshot schema.
type Summary struct {
	Kind           string            `json:"kind"` // KindOperation or KindStage
	Labels         map[string]string `json:"labels"`
	CurrentSeconds float64           `json:"current_seconds"` // the last observed value
	LastSeen       time.Time         `json:"last_seen"`
	Windows        []Window          `json:"windows"`
}

// Window holds the values of one window.
type Window struct {
	Window        string  `json:"window"` // e.g. "1m0s"
	WindowSeconds float64 `json:"window_seconds"`
	Count         uint64  `json:"count"`
	RatePerSecond float64 `json:"rate_per_second"`
	AvgSeconds    float64 `json:"avg_seconds"`
	P50Seconds    float64 `json:"p50_seconds"`
	P95Seconds    float64 `json:"p95_seconds"`
	P99Seconds    float64 `json:"p99_seconds"`
}

var summaryQuantiles = []float64{0.50, 0.95, 0.99}

// Summaries returns every series that saw an observation within the longest window, sorted
// by kind and labels. Series idle for longer than that are forgotten, which also frees their
// place under MaxSeries.
func (r *Rolling) Summaries() []Summary {
	now := r.now()
	nowNs := now.UnixNano()
	var longest time.Duration
	for _, w := range r.windows {
		longest = max(longest, w)
	}
	var out []Summary
	var acc [maxBlocks][subCount]uint64
	r.mu.Lock()
	for k, s := range r.series {
		s.mu.Lock()
		idle := nowNs-s.lastSeen > int64(longest)
		s.dead = idle
		s.mu.Unlock()
		if idle {
			delete(r.series, k)
		}
	}
	live := make([]*series, 0, len(r.series))
	for _, s := range r.series {
		live = append(live, s)
	}
	r.mu.Unlock()
	for _, s := range live {
		s.mu.Lock()
		sum := Summary{Kind: s.kind, Labels: s.labels, CurrentSeconds: float64(s.lastNs) / 1e9,
			LastSeen: time.Unix(0, s.lastSeen).UTC(), Windows: make([]Window, len(s.rings))}
		for i := range s.rings {
			sum.Windows[i] = r.window(&s.rings[i], r.windows[i], nowNs, &acc)
		}
		s.mu.Unlock()
		out = append(out, sum)
	}
	sort.Slice(out, func(i, j int) bool { return less(out[i], out[j]) })
	return out
}

func (r *Rolling) window(rg *ring, w time.Duration, nowNs int64, acc *[maxBlocks][subCount]uint64) Window {
	*acc = [maxBlocks][subCount]uint64{}
	cur := nowNs / rg.width
	oldest := cur - int64(len(rg.slots)) + 1
	var count uint64
	var sumNs int64
	minNs, maxNs := int64(math.MaxInt64), int64(math.MinInt64)
	for i := range rg.slots {
		sl := &rg.slots[i]
		if sl.epoch < oldest || sl.epoch > cur {
			continue
		}
		count += sl.count
		sumNs += sl.sumNs
		minNs, maxNs = min(minNs, sl.minNs), max(maxNs, sl.maxNs)
		sl.hist.mergeInto(acc)
	}
	out := Window{Window: w.String(), WindowSeconds: w.Seconds(), Count: count}
	if count == 0 {
		return out
	}
	spanStart := max(oldest*rg.width, r.start.UnixNano())
	if span := nowNs - spanStart; span > 0 {
		out.RatePerSecond = float64(count) / (float64(span) / 1e9)
	}
	out.AvgSeconds = float64(sumNs) / float64(count) / 1e9
	q := quantiles(acc, count, summaryQuantiles)
	for i := range q {
		// The exact quantile lies within [min, max], so clamping never adds error, and a
		// window of identical samples reports them exactly.
		q[i] = min(max(q[i], float64(minNs)), float64(maxNs))
	}
	out.P50Seconds, out.P95Seconds, out.P99Seconds = q[0]/1e9, q[1]/1e9, q[2]/1e9
	return out
}

var labelOrder = []string{"service_name", semconv.LabelOperation, semconv.LabelStage, semconv.LabelNamespace,
	semconv.LabelCollection, semconv.LabelErrorType}

func less(a, b Summary) bool {
	if a.Kind != b.Kind {
		return a.Kind == KindOperation
	}
	for _, l := range labelOrder {
		if a.Labels[l] != b.Labels[l] {
			return a.Labels[l] < b.Labels[l]
		}
	}
	return false
}
