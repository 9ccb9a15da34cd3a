// Package tui is asobserve's live terminal view (`asobserve top`, `attach --tui`, and
// `demo` on a terminal): a full-screen table, refreshed in place, of what the probes see.
//
// The view is a bubbletea program (Model) over a Source that the command wires to a
// running agent; Collector is the observer that keeps the view's short rolling window.
package tui

import (
	"sort"
	"sync/atomic"
	"time"

	"github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/rolling"
	"github.com/asobserve/asobserve/internal/semconv"
)

// DefaultWindow is the view's rolling window: short enough to follow a change within
// seconds, long enough for a stable p99 at a few hundred operations per second.
const DefaultWindow = 10 * time.Second

// Collector keeps the rolling window the view shows. It is an observe.Observer.
//
// The agent's own rolling summaries (1m and longer, one series per error type) suit the
// snapshot, not a live view: their windows move in 5 s steps, and a row's latency
// quantiles cannot be rebuilt from per-error-type quantiles. So latencies are kept per
// (operation, namespace, set) over all outcomes, and errors separately per type.
type Collector struct {
	window    time.Duration
	opts      rolling.Options
	latencies *rolling.Rolling // every op with its error type cleared
	errors    *rolling.Rolling // failed ops only, by error type
	stages    atomic.Pointer[rolling.Rolling]
}

// NewCollector returns a Collector over window (DefaultWindow if 0), moving in steps of
// a tenth of it. now is the clock (time.Now if nil).
func NewCollector(window time.Duration, now func() time.Time) *Collector {
	if window <= 0 {
		window = DefaultWindow
	}
	opts := rolling.Options{Windows: []time.Duration{window}, Slots: 10, Now: now}
	c := &Collector{window: window, opts: opts, latencies: rolling.New(opts), errors: rolling.New(opts)}
	c.RestartStages()
	return c
}

// RestartStages forgets the stage window. Call it when stage probes are switched on: a
// rate is over the time since its window began, so stages seen only from the switch on
// would otherwise read low until a whole window has passed.
func (c *Collector) RestartStages() { c.stages.Store(rolling.New(c.opts)) }

// Window is the length of the rolling window.
func (c *Collector) Window() time.Duration { return c.window }

// Op implements observe.Observer.
func (c *Collector) Op(t *observe.Target, op observe.Op) {
	if op.ErrorType != "" {
		c.errors.Op(t, op)
	}
	op.ErrorType = ""
	c.latencies.Op(t, op)
}

// Stage implements observe.Observer.
func (c *Collector) Stage(t *observe.Target, st observe.Stage) { c.stages.Load().Stage(t, st) }

// TargetGone implements observe.Observer: the view keeps a gone target's numbers.
func (c *Collector) TargetGone(*observe.Target) {}

// Row is one (operation, namespace, set) of the table.
type Row struct {
	Op, Namespace, Set string
	OpsPerSec          float64
	P50, P95, P99      time.Duration
	ErrorsPerSec       float64
	Errors             []ErrorRate // by rate, highest first
}

// ErrorRate is how often one error type occurs.
type ErrorRate struct {
	Type   string
	PerSec float64
}

// StageRow is one internal stage of an operation, over all its namespaces and sets.
type StageRow struct {
	Stage         string
	PerSec        float64
	P50, P95, P99 time.Duration
	// Share is the stage's summed time over its operation's summed time.
	Share float64
}

// Table is what the collector holds now.
type Table struct {
	Rows   []Row
	Stages map[string][]StageRow // by operation, in semconv.Stages order
}

type rowKey struct{ op, ns, set string }

// Table summarises the window. Rows come sorted by operation, namespace and set.
func (c *Collector) Table() Table {
	t := Table{Stages: map[string][]StageRow{}}
	index := map[rowKey]int{}
	opTime := map[string]float64{}
	stages := map[string]map[string]StageRow{}
	for _, s := range append(c.latencies.Summaries(), c.stages.Load().Summaries()...) {
		w := s.Windows[0]
		if w.Count == 0 {
			continue
		}
		l := s.Labels
		op := l[semconv.LabelOperation]
		if s.Kind == rolling.KindStage {
			if stages[op] == nil {
				stages[op] = map[string]StageRow{}
			}
			stages[op][l[semconv.LabelStage]] = StageRow{Stage: l[semconv.LabelStage], PerSec: w.RatePerSecond,
				P50: seconds(w.P50Seconds), P95: seconds(w.P95Seconds), P99: seconds(w.P99Seconds),
				Share: w.AvgSeconds * float64(w.Count)}
			continue
		}
		k := rowKey{op, l[semconv.LabelNamespace], l[semconv.LabelCollection]}
		index[k] = len(t.Rows)
		t.Rows = append(t.Rows, Row{Op: k.op, Namespace: k.ns, Set: k.set, OpsPerSec: w.RatePerSecond,
			P50: seconds(w.P50Seconds), P95: seconds(w.P95Seconds), P99: seconds(w.P99Seconds)})
		opTime[op] += w.AvgSeconds * float64(w.Count)
	}
	for _, s := range c.errors.Summaries() {
		w := s.Windows[0]
		l := s.Labels
		i, ok := index[rowKey{l[semconv.LabelOperation], l[semconv.LabelNamespace], l[semconv.LabelCollection]}]
		if !ok || w.Count == 0 {
			continue
		}
		r := &t.Rows[i]
		r.Errors = append(r.Errors, ErrorRate{Type: l[semconv.LabelErrorType], PerSec: w.RatePerSecond})
		r.ErrorsPerSec += w.RatePerSecond
	}
	for i := range t.Rows {
		e := t.Rows[i].Errors
		sort.SliceStable(e, func(a, b int) bool { return e[a].PerSec > e[b].PerSec })
	}
	for op, byStage := range stages {
		for _, name := range semconv.Stages {
			st, ok := byStage[name]
			if !ok {
				continue
			}
			if total := opTime[op]; total > 0 {
				st.Share /= total
			} else {
				st.Share = 0
			}
			t.Stages[op] = append(t.Stages[op], st)
		}
	}
	return t
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
