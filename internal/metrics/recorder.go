// Package metrics turns operation and stage observations into the seed's Prometheus
// histograms plus asobserve's self-metrics. It does not care where an observation comes
// from: the eBPF pipeline and the in-process wrapper both feed the same Recorder.
package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/asobserve/asobserve/internal/semconv"
)

// Identity names the process an observation belongs to. Its values become the identity
// labels (semconv.IdentityLabels); keep one Identity per process and reuse the pointer.
type Identity struct {
	Service      string
	Node         string
	K8sNamespace string
	Pod          string
	Container    string
}

func (id *Identity) labelValues() []string {
	if id == nil {
		return []string{"", "", "", "", ""}
	}
	return []string{id.Service, id.Node, id.K8sNamespace, id.Pod, id.Container}
}

// OpSample is one finished data operation.
type OpSample struct {
	Op        string
	Namespace string
	Set       string
	ErrorType string
	Duration  time.Duration
}

// StageSample is one internal stage of an operation.
type StageSample struct {
	Stage    string
	Op       string
	Duration time.Duration
}

// Sink receives observations after the recorder has applied its label policy (the
// cardinality cap). Rolling windows and other summaries implement it.
type Sink interface {
	ObserveOp(id *Identity, s OpSample)
	ObserveStage(id *Identity, s StageSample)
}

// OtherCollection replaces db_collection_name for (namespace, set) pairs beyond the cap.
const OtherCollection = "_other"

// DefaultCollectionCap bounds distinct (namespace, set) pairs per service.
const DefaultCollectionCap = 1000

type opKey struct {
	id                          *Identity
	op, namespace, set, errType string
}

type stageKey struct {
	id        *Identity
	stage, op string
}

type collectionKey struct {
	service, namespace, set string
}

// Recorder owns the registry with the operation and stage histograms and the agent's
// self-metrics.
type Recorder struct {
	Registry *prometheus.Registry

	opHist    *prometheus.HistogramVec
	stageHist *prometheus.HistogramVec

	opsEnabled    atomic.Bool
	stagesEnabled atomic.Bool

	opChildren    sync.Map // opKey -> prometheus.Observer
	stageChildren sync.Map // stageKey -> prometheus.Observer

	capMu         sync.Mutex
	collectionCap int
	collections   map[collectionKey]bool
	perService    map[string]int
	labelOverflow prometheus.Counter
	stagesGauge   prometheus.Gauge
	sinks         atomic.Pointer[[]Sink]
	sinksMu       sync.Mutex

	EventsReceived    prometheus.Counter
	EventsLost        prometheus.Counter
	EventsInvalid     prometheus.Counter
	AttachedProcesses prometheus.Gauge
	ProbeAttachErrors prometheus.Counter
	SpansDropped      prometheus.Counter
}

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
	opLabels := append([]string{semconv.LabelSystem, semconv.LabelNamespace, semconv.LabelCollection,
		semconv.LabelOperation, semconv.LabelErrorType}, semconv.IdentityLabels...)
	stageLabels := append([]string{semconv.LabelStage, semconv.LabelOperation}, semconv.IdentityLabels...)
	r := &Recorder{
		Registry: reg,
		opHist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: semconv.OperationMetric, Help: semconv.OperationHelp, Buckets: semconv.OperationBuckets,
		}, opLabels),
		stageHist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: semconv.StageMetric, Help: semconv.StageHelp, Buckets: semconv.StageBuckets,
		}, stageLabels),
		collectionCap: capN,
		collections:   map[collectionKey]bool{},
		perService:    map[string]int{},
		labelOverflow: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "asobserve_label_overflow_total",
			Help: "Operations whose (namespace, set) exceeded the per-service cap and were recorded as db_collection_name=\"_other\".",
		}),
		stagesGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "asobserve_internal_stage_metrics_enabled",
			Help: "1 if internal stage profiling is on, 0 otherwise.",
		}),
		EventsReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "asobserve_events_received_total", Help: "Probe records read from the ring buffer.",
		}),
		EventsLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "asobserve_events_lost_total", Help: "Probe records dropped in the kernel because the ring buffer was full.",
		}),
		EventsInvalid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "asobserve_events_invalid_total", Help: "Probe records rejected by the decoder.",
		}),
		AttachedProcesses: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "asobserve_attached_processes", Help: "Processes currently observed.",
		}),
		ProbeAttachErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "asobserve_probe_attach_errors_total", Help: "Probe attachments that failed.",
		}),
		SpansDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "asobserve_spans_dropped_total", Help: "Spans dropped because the export queue was full or the exporter failed.",
		}),
	}
	r.opsEnabled.Store(true)
	reg.MustRegister(r.opHist, r.stageHist, r.labelOverflow, r.stagesGauge, r.EventsReceived, r.EventsLost,
		r.EventsInvalid, r.AttachedProcesses, r.ProbeAttachErrors, r.SpansDropped)
	return r
}

// AddSink registers a receiver of every recorded observation.
func (r *Recorder) AddSink(s Sink) {
	r.sinksMu.Lock()
	defer r.sinksMu.Unlock()
	var next []Sink
	if cur := r.sinks.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, s)
	r.sinks.Store(&next)
}

func (r *Recorder) currentSinks() []Sink {
	if cur := r.sinks.Load(); cur != nil {
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

// ObserveOp records one finished operation. A series seen before takes a lock-free
// path; only new label sets go through the cardinality cap.
func (r *Recorder) ObserveOp(id *Identity, s OpSample) {
	if !r.opsEnabled.Load() {
		return
	}
	var obs prometheus.Observer
	obs, s.Set = r.OpObserver(id, s.Op, s.Namespace, s.Set, s.ErrorType)
	obs.Observe(s.Duration.Seconds())
	r.ObserveOpSinks(id, s)
}

// OpObserver returns the operation histogram's series for these labels and the set label
// it has (the collection cap applied), for callers that keep the series: observing it and
// calling ObserveOpSinks with that set is ObserveOp without the lookup. It ignores
// SetOperationsEnabled; callers check it.
func (r *Recorder) OpObserver(id *Identity, op, namespace, set, errorType string) (prometheus.Observer, string) {
	k := opKey{id: id, op: op, namespace: namespace, set: set, errType: errorType}
	obs, ok := r.opChildren.Load(k)
	if !ok {
		k.set = r.capCollection(id, namespace, set)
		if obs, ok = r.opChildren.Load(k); !ok {
			values := append([]string{semconv.SystemName, namespace, k.set, op, errorType}, id.labelValues()...)
			obs, _ = r.opChildren.LoadOrStore(k, r.opHist.WithLabelValues(values...))
		}
	}
	return obs.(prometheus.Observer), k.set
}

// ObserveOpSinks feeds one operation to the sinks (rolling windows, publishers) only.
func (r *Recorder) ObserveOpSinks(id *Identity, s OpSample) {
	for _, sk := range r.currentSinks() {
		sk.ObserveOp(id, s)
	}
}

// ObserveStage records one internal stage; it is ignored while stages are off.
func (r *Recorder) ObserveStage(id *Identity, s StageSample) {
	if !r.stagesEnabled.Load() {
		return
	}
	k := stageKey{id: id, stage: s.Stage, op: s.Op}
	obs, ok := r.stageChildren.Load(k)
	if !ok {
		values := append([]string{s.Stage, s.Op}, id.labelValues()...)
		obs, _ = r.stageChildren.LoadOrStore(k, r.stageHist.WithLabelValues(values...))
	}
	obs.(prometheus.Observer).Observe(s.Duration.Seconds())
	for _, sk := range r.currentSinks() {
		sk.ObserveStage(id, s)
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
	r.opChildren.Range(func(k, _ any) bool {
		if k.(opKey).id == id {
			r.opChildren.Delete(k)
		}
		return true
	})
	r.stageChildren.Range(func(k, _ any) bool {
		if k.(stageKey).id == id {
			r.stageChildren.Delete(k)
		}
		return true
	})
	match := prometheus.Labels{}
	for i, name := range semconv.IdentityLabels {
		match[name] = id.labelValues()[i]
	}
	r.opHist.DeletePartialMatch(match)
	r.stageHist.DeletePartialMatch(match)
}
