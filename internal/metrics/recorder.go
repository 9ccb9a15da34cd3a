// Package metrics turns operation and stage observations into the seed's Prometheus
// histograms. It does not care where an observation comes from: the eBPF pipeline and the
// in-process wrapper both feed the same Recorder, an observe.Observer. The eBPF agent's own
// self-metrics live with the agent (internal/attach), so an in-process registry carries none.
package metrics

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/semconv"
)

// Identity names the process an observation belongs to (see observe.Identity).
type Identity = observe.Identity

func labelValues(id *Identity) []string {
	if id == nil {
		return []string{"", "", "", "", ""}
	}
	return []string{id.Service, id.Node, id.K8sNamespace, id.Pod, id.Container}
}

// OtherCollection replaces db_collection_name for (namespace, set) pairs beyond the cap.
const OtherCollection = "_other"

// DefaultCollectionCap bounds distinct (namespace, set) pairs per service.
const DefaultCollectionCap = 1000

type opKey struct {
	id                          *Identity
	op, namespace, set, errType string
}

// opLabels are an opKey's labels: its identity by value.
type opLabels struct {
	id                          Identity
	op, namespace, set, errType string
}

func (k opKey) labels() opLabels {
	return opLabels{id: identityOf(k.id), op: k.op, namespace: k.namespace, set: k.set, errType: k.errType}
}

func identityOf(id *Identity) Identity {
	if id == nil {
		return Identity{}
	}
	return *id
}

// OpSeries is one operation series with its exemplar gates, one per classic bucket. Callers
// that keep it (the in-process wrapper) observe it without finding it by its labels.
type OpSeries struct {
	h histogram
	// nextExemplar[i] is the op.End (the source's clock) from which bucket i takes its next
	// exemplar.
	nextExemplar []atomic.Int64
}

// ExemplarInterval is the least time between two exemplars of one series' bucket. An
// exemplar costs far more than an observation (the span's IDs in hex, a timestamp, a few
// allocations), and Prometheus keeps one per bucket per scrape anyway; gating per bucket
// still gives a rare slow bucket the exemplar of its first sampled operation.
const ExemplarInterval = 100 * time.Millisecond

type stageKey struct {
	id        *Identity
	stage, op string
}

type stageLabels struct {
	id        Identity
	stage, op string
}

func (k stageKey) labels() stageLabels {
	return stageLabels{id: identityOf(k.id), stage: k.stage, op: k.op}
}

type collectionKey struct {
	service, namespace, set string
}

// Recorder owns the registry with the operation and stage histograms. It is an
// observe.Observer, and relays what it records, after its label policy (the cardinality
// cap), to the observers added with AddObserver: rolling windows and other summaries.
type Recorder struct {
	Registry *prometheus.Registry

	// opHist and stageHist are the two histogram families, collecting the series below.
	opHist    prometheus.Collector
	stageHist prometheus.Collector

	opsEnabled    atomic.Bool
	stagesEnabled atomic.Bool

	opChildren    seriesMap[opKey, opLabels, *OpSeries]
	stageChildren seriesMap[stageKey, stageLabels, *histogram]

	capMu         sync.Mutex
	collectionCap int
	collections   map[collectionKey]bool
	perService    map[string]int
	labelOverflow prometheus.Counter
	stagesGauge   prometheus.Gauge
	observers     atomic.Pointer[observe.Fanout]
	observersMu   sync.Mutex

	// SpansDropped counts spans lost on the way to the exporter, in either mode.
	SpansDropped prometheus.Counter

	spanOf SpanOf

	opLabelNames, stageLabelNames []string
	opDesc, stageDesc             *prometheus.Desc
}

// The bucket layouts of the two families: the seed's classic bounds with schema 3's.
var (
	opLayout    = newLayout(semconv.OperationBuckets, NativeMaxBuckets)
	stageLayout = newLayout(semconv.StageBuckets, NativeMaxBuckets)
)

// SpanOf tells which span the tracer gives an operation; an invalid or unsampled span
// context means the operation has no span to link to.
type SpanOf func(t *observe.Target, op *observe.Op) trace.SpanContext

// Exemplar label names, as OpenMetrics and Grafana's trace links expect them.
const (
	ExemplarTraceID = "trace_id"
	ExemplarSpanID  = "span_id"
)

// Native (sparse) histogram settings, served next to the seed's classic buckets to scrapers
// that negotiate protobuf. A factor of 1.1 (schema 3, buckets 9% wide) keeps a quantile's
// relative error under 5%; 160 such buckets (20 powers of two) span 61µs to 64s. A series
// always counts at schema 3; one with more than NativeMaxBuckets populated buckets is
// written at the highest lower schema that needs at most that many (its buckets merged
// pairwise, each step halving the resolution). It is never reset, which a scraper would
// read as a counter reset: it keeps the lower schema for as long as it keeps that many
// buckets populated, i.e. until Forget drops it or the process ends.
const (
	NativeBucketFactor = 1.1
	NativeMaxBuckets   = 160
)

// Options configure a Recorder.
type Options struct {
	// CollectionCap bounds distinct (namespace, set) pairs per service; 0 means the default.
	CollectionCap int
	// Registerer, if set, receives the recorder's collectors instead of a new registry.
	Registry *prometheus.Registry
}

// New builds a recorder with operation metrics on and stage metrics off.
func New(o Options) *Recorder {
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	capN := o.CollectionCap
	if capN <= 0 {
		capN = DefaultCollectionCap
	}
	opLabelNames := append([]string{semconv.LabelSystem, semconv.LabelNamespace, semconv.LabelCollection,
		semconv.LabelOperation, semconv.LabelErrorType}, semconv.IdentityLabels...)
	stageLabelNames := append([]string{semconv.LabelStage, semconv.LabelOperation}, semconv.IdentityLabels...)
	r := &Recorder{
		Registry:        reg,
		opLabelNames:    opLabelNames,
		stageLabelNames: stageLabelNames,
		opDesc:          prometheus.NewDesc(semconv.OperationMetric, semconv.OperationHelp, opLabelNames, nil),
		stageDesc:       prometheus.NewDesc(semconv.StageMetric, semconv.StageHelp, stageLabelNames, nil),
		collectionCap:   capN,
		collections:     map[collectionKey]bool{},
		perService:      map[string]int{},
		labelOverflow: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "asobserve_label_overflow_total",
			Help: "Operations whose (namespace, set) exceeded the per-service cap and were recorded as db_collection_name=\"_other\".",
		}),
		stagesGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "asobserve_internal_stage_metrics_enabled",
			Help: "1 if internal stage profiling is on, 0 otherwise.",
		}),
		SpansDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "asobserve_spans_dropped_total", Help: "Spans dropped because the export queue was full or the exporter failed.",
		}),
	}
	r.opHist = &family[opKey, opLabels, *OpSeries]{desc: r.opDesc, series: &r.opChildren, hist: func(s *OpSeries) *histogram { return &s.h }}
	r.stageHist = &family[stageKey, stageLabels, *histogram]{desc: r.stageDesc, series: &r.stageChildren, hist: func(h *histogram) *histogram { return h }}
	r.opsEnabled.Store(true)
	reg.MustRegister(r.opHist, r.stageHist, r.labelOverflow, r.stagesGauge, r.SpansDropped)
	return r
}

// LinkSpans makes every operation with a sampled span carry an exemplar naming that span.
// Call it before the first event.
func (r *Recorder) LinkSpans(spanOf SpanOf) { r.spanOf = spanOf }

// AddObserver registers a receiver of every recorded observation and of TargetGone.
func (r *Recorder) AddObserver(o observe.Observer) {
	r.observersMu.Lock()
	defer r.observersMu.Unlock()
	var next observe.Fanout
	if cur := r.observers.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, o)
	r.observers.Store(&next)
}

func (r *Recorder) currentObservers() observe.Fanout {
	if cur := r.observers.Load(); cur != nil {
		return *cur
	}
	return nil
}

// SetOperationsEnabled switches the operation histogram (the seed's set_metrics_enabled).
func (r *Recorder) SetOperationsEnabled(on bool) { r.opsEnabled.Store(on) }

// OperationsEnabled reports the operation histogram switch.
func (r *Recorder) OperationsEnabled() bool { return r.opsEnabled.Load() }

// SetStagesEnabled switches the stage histogram and its gauge.
func (r *Recorder) SetStagesEnabled(on bool) {
	r.stagesEnabled.Store(on)
	if on {
		r.stagesGauge.Set(1)
	} else {
		r.stagesGauge.Set(0)
	}
}

// StagesEnabled reports the stage histogram switch.
func (r *Recorder) StagesEnabled() bool { return r.stagesEnabled.Load() }

// Op records one finished operation. A series seen before takes a lock-free path; only
// new label sets go through the cardinality cap.
func (r *Recorder) Op(t *observe.Target, op observe.Op) {
	if !r.opsEnabled.Load() {
		return
	}
	var series *OpSeries
	series, op.Set = r.opSeries(t.Identity, op.Name, op.Namespace, op.Set, op.ErrorType)
	if r.spanOf == nil {
		series.Observe(op.Duration())
	} else {
		series.ObserveLinked(t, op, r.spanOf)
	}
	r.Relay(t, &op)
}

// Observe records one duration without an exemplar.
func (s *OpSeries) Observe(d time.Duration) { s.h.Observe(d) }

// ObserveLinked records op with an exemplar naming the span spanOf gives it, when that span
// is sampled and op's bucket has taken no exemplar for ExemplarInterval. It takes op by
// value: a pointer would make every caller's event escape to the heap.
func (s *OpSeries) ObserveLinked(t *observe.Target, op observe.Op, spanOf SpanOf) {
	d := op.Duration()
	v := d.Seconds()
	bucket := sort.SearchFloat64s(semconv.OperationBuckets, v) // the classic bucket v goes in
	gate := &s.nextExemplar[bucket]
	next := gate.Load()
	s.h.Observe(d)
	if op.End < next {
		return
	}
	sc := spanOfCopy(spanOf, t, op)
	if !sc.IsSampled() || !gate.CompareAndSwap(next, op.End+int64(ExemplarInterval)) {
		return
	}
	s.h.setExemplar(bucket, newExemplar(v, sc))
}

// newExemplar is the exemplar naming sc for a value v observed now, as client_golang
// timestamps its exemplars.
func newExemplar(v float64, sc trace.SpanContext) *dto.Exemplar {
	return &dto.Exemplar{
		Label: []*dto.LabelPair{
			{Name: proto.String(ExemplarTraceID), Value: proto.String(sc.TraceID().String())},
			{Name: proto.String(ExemplarSpanID), Value: proto.String(sc.SpanID().String())},
		},
		Value:     proto.Float64(v),
		Timestamp: timestamppb.Now(),
	}
}

// spanOfCopy asks spanOf about a copy of op, which escapes; only an open exemplar gate pays it.
func spanOfCopy(spanOf SpanOf, t *observe.Target, op observe.Op) trace.SpanContext {
	return spanOf(t, &op)
}

// OpSeries returns the operation histogram's series for these labels and the set label it
// has (the collection cap applied), for callers that keep the series: observing it and
// calling Relay with that set is Op without the lookup. It ignores SetOperationsEnabled;
// callers check it.
func (r *Recorder) OpSeries(id *Identity, op, namespace, set, errorType string) (*OpSeries, string) {
	return r.opSeries(id, op, namespace, set, errorType)
}

func (r *Recorder) opSeries(id *Identity, op, namespace, set, errorType string) (*OpSeries, string) {
	k := opKey{id: id, op: op, namespace: namespace, set: set, errType: errorType}
	series, ok := r.opChildren.load(k)
	if !ok {
		k.set = r.capCollection(id, namespace, set)
		if series, ok = r.opChildren.load(k); !ok {
			series = r.opChildren.loadOrMake(k, func() *OpSeries {
				values := append([]string{semconv.SystemName, namespace, k.set, op, errorType}, labelValues(id)...)
				s := &OpSeries{nextExemplar: make([]atomic.Int64, len(semconv.OperationBuckets)+1)}
				s.h.init(opLayout, r.opDesc, r.opLabelNames, values)
				return s
			})
		}
	}
	return series, k.set
}

// Relays reports whether any observer was added, i.e. whether Relay does anything.
func (r *Recorder) Relays() bool { return r.observers.Load() != nil }

// Relay feeds one recorded operation, its set label capped, to the added observers only.
// It takes op by pointer so that a recorder without observers copies nothing; op does not
// escape (each observer gets a copy).
func (r *Recorder) Relay(t *observe.Target, op *observe.Op) {
	for _, o := range r.currentObservers() {
		o.Op(t, *op)
	}
}

// Stage records one internal stage; it is ignored while stages are off.
func (r *Recorder) Stage(t *observe.Target, st observe.Stage) {
	if !r.stagesEnabled.Load() {
		return
	}
	k := stageKey{id: t.Identity, stage: st.Name, op: st.Op}
	h, ok := r.stageChildren.load(k)
	if !ok {
		h = r.stageChildren.loadOrMake(k, func() *histogram {
			return newHistogram(stageLayout, r.stageDesc, r.stageLabelNames, append([]string{st.Name, st.Op}, labelValues(t.Identity)...))
		})
	}
	h.Observe(st.Duration())
	for _, o := range r.currentObservers() {
		o.Stage(t, st)
	}
}

// TargetGone passes the end of a target on to the added observers. The recorder itself
// keeps its series: they belong to the target's identity, which outlives one process
// (a service's next process has the same labels), and Forget drops them when wanted.
func (r *Recorder) TargetGone(t *observe.Target) {
	for _, o := range r.currentObservers() {
		o.TargetGone(t)
	}
}

func (r *Recorder) capCollection(id *Identity, namespace, set string) string {
	service := ""
	if id != nil {
		service = id.Service
	}
	k := collectionKey{service: service, namespace: namespace, set: set}
	r.capMu.Lock()
	defer r.capMu.Unlock()
	if r.collections[k] {
		return set
	}
	if r.perService[service] >= r.collectionCap {
		r.labelOverflow.Inc()
		return OtherCollection
	}
	r.collections[k] = true
	r.perService[service]++
	return set
}

// Forget drops every series of an identity, e.g. when its process exits for good.
func (r *Recorder) Forget(id *Identity) {
	r.opChildren.deleteIf(func(k opKey) bool { return k.id == id })
	r.stageChildren.deleteIf(func(k stageKey) bool { return k.id == id })
}
