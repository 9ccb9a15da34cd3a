//go:build linux

package attach

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/asobserve/asobserve/internal/decoder"
	"github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/outcome"
	"github.com/asobserve/asobserve/internal/probes"
)

// recordSource is where the pipeline reads raw records: the agent's ring buffer reader, or
// recorded records in tests.
type recordSource interface {
	SetDeadline(t time.Time)
	ReadInto(rec *ringbuf.Record) error
}

// resolver tells what a record's process and probe-table row stand for; the loader (Agent)
// knows both.
type resolver interface {
	target(w watched) (*Target, bool)
	// rowOps is a row's operation name and its alternate ("" if it has none).
	rowOps(row uint16) (op, altOp string, ok bool)
}

// kernelCounters returns how many records the probes produced and how many the kernel
// dropped because the ring buffer was full.
type kernelCounters func() (produced, lost uint64, err error)

// pipeline turns records into observer events: ring buffer, decoder, target and operation
// resolution, observer.
type pipeline struct {
	src    recordSource
	res    resolver
	kernel kernelCounters
	obs    observe.Observer
	self   *SelfMetrics

	received     atomic.Uint64
	counterMu    sync.Mutex
	lostSeen     uint64
	producedSeen uint64

	runMu sync.Mutex
	ran   chan struct{} // closed once run and its counter poller have returned; nil before run
}

func newPipeline(src recordSource, res resolver, kernel kernelCounters, obs observe.Observer, self *SelfMetrics) *pipeline {
	return &pipeline{src: src, res: res, kernel: kernel, obs: obs, self: self}
}

// Run reads the ring buffer until Close. It decodes every record and feeds the observers.
func (a *Agent) Run() error { return a.pipe.run() }

func (p *pipeline) run() error {
	p.runMu.Lock()
	ran := make(chan struct{})
	p.ran = ran
	p.runMu.Unlock()
	defer close(ran)
	stop, polled := make(chan struct{}), make(chan struct{})
	defer func() {
		close(stop)
		<-polled // it reads the BPF maps, which Close releases once run has returned
	}()
	go func() {
		defer close(polled)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				p.pollCounters()
			}
		}
	}()
	dec := decoder.New()
	var rec ringbuf.Record
	var op decoder.OpEvent
	var st decoder.StageEvent
	for {
		p.src.SetDeadline(time.Now().Add(PollInterval))
		if err := p.src.ReadInto(&rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			if errors.Is(err, ringbuf.ErrClosed) || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return fmt.Errorf("reading ring buffer: %w", err)
		}
		p.handle(dec, rec.RawSample, &op, &st)
		// Counted after handling, so that a drained count means every record is recorded.
		p.received.Add(1)
	}
}

func (p *pipeline) handle(dec *decoder.Decoder, raw []byte, op *decoder.OpEvent, st *decoder.StageEvent) {
	p.self.EventsReceived.Inc()
	typ, _ := decoder.Type(raw)
	switch typ {
	case decoder.TypeOp:
		if err := dec.DecodeOp(raw, op); err != nil {
			p.self.EventsInvalid.Inc()
			return
		}
		p.handleOp(op)
	case decoder.TypeStage:
		if err := dec.DecodeStage(raw, st); err != nil {
			p.self.EventsInvalid.Inc()
			return
		}
		p.handleStage(st)
	default:
		p.self.EventsInvalid.Inc()
	}
}

// watched names one attach of a process: a pid can be reused by a new process, which the
// agent attaches under another generation, while the records of the pid's previous owner
// are still being read.
type watched struct{ pid, gen uint32 }

// resolve finds the target and operation name a record belongs to; a record of an unknown
// row or process counts as invalid.
func (p *pipeline) resolve(w watched, row uint16, alternate bool) (*Target, string, bool) {
	op, altOp, rowKnown := p.res.rowOps(row)
	t, ok := p.res.target(w)
	if !rowKnown || !ok {
		p.self.EventsInvalid.Inc()
		return nil, "", false
	}
	if alternate && altOp != "" {
		return t, altOp, true
	}
	return t, op, true
}

func (p *pipeline) handleOp(ev *decoder.OpEvent) {
	t, opName, ok := p.resolve(watched{ev.PID, ev.Gen}, ev.Row, ev.Alternate)
	if !ok {
		return
	}
	ns, set, err := t.names(ev)
	if err != nil {
		p.self.EventsInvalid.Inc()
		return
	}
	p.obs.Op(&t.Target, observe.Op{Name: opName, Namespace: ns, Set: set,
		ErrorType: outcome.ErrorType(opName, ev.Failed, int(ev.Cause)), ResultCode: int(ev.Cause), ID: ev.OpID,
		Start: int64(ev.Start), End: int64(ev.End), Node: ev.Node,
		ParentTraceID: ev.ParentTraceID, ParentSpanID: ev.ParentSpanID, ParentFlags: ev.ParentFlags})
}

// names are the op's namespace and set, read from the executable where the record
// points there.
func (t *Target) names(ev *decoder.OpEvent) (ns, set string, err error) {
	if ev.StaticNamespace.Len == 0 && ev.StaticSet.Len == 0 {
		return ev.Namespace, ev.Set, nil
	}
	if t.exe == nil || t.exe.names == nil {
		return "", "", fmt.Errorf("pid %d: a record names an executable constant, and the executable is not known", t.PID)
	}
	if ns, err = t.exe.names.name(ev.Namespace, ev.StaticNamespace); err != nil {
		return "", "", err
	}
	set, err = t.exe.names.name(ev.Set, ev.StaticSet)
	return ns, set, err
}

func (p *pipeline) handleStage(ev *decoder.StageEvent) {
	t, opName, ok := p.resolve(watched{ev.PID, ev.Gen}, ev.Row, ev.Alternate)
	if !ok {
		return
	}
	p.obs.Stage(&t.Target, observe.Stage{Name: probes.StageName(ev.Stage), Op: opName, OpID: ev.OpID,
		Start: int64(ev.Start), End: int64(ev.End)})
}

// stopped waits, at most timeout, until run has returned, if it was started.
func (p *pipeline) stopped(timeout time.Duration) {
	p.runMu.Lock()
	ran := p.ran
	p.runMu.Unlock()
	if ran == nil {
		return
	}
	select {
	case <-ran:
	case <-time.After(timeout):
	}
}

// Counters returns the kernel's produced and lost record counts and the records read.
func (a *Agent) Counters() (produced, lost, received uint64, err error) { return a.pipe.counters() }

func (p *pipeline) counters() (produced, lost, received uint64, err error) {
	produced, lost, err = p.kernel()
	return produced, lost, p.received.Load(), err
}

// kernelCounters sums the per-CPU produced and lost counts of the BPF programs.
func (a *Agent) kernelCounters() (produced, lost uint64, err error) {
	var vals []uint64
	if err = a.objs.Counters.Lookup(uint32(0), &vals); err != nil {
		return
	}
	for _, v := range vals {
		produced += v
	}
	if err = a.objs.Counters.Lookup(uint32(1), &vals); err != nil {
		return
	}
	for _, v := range vals {
		lost += v
	}
	return produced, lost, nil
}

// PollCounters moves the kernel's produced/lost counts into the self-metrics.
func (a *Agent) PollCounters() { a.pipe.pollCounters() }

func (p *pipeline) pollCounters() {
	produced, lost, err := p.kernel()
	if err != nil {
		return
	}
	p.counterMu.Lock()
	defer p.counterMu.Unlock()
	if lost > p.lostSeen {
		p.self.EventsLost.Add(float64(lost - p.lostSeen))
		p.lostSeen = lost
	}
	if produced > p.producedSeen {
		p.self.EventsProduced.Add(float64(produced - p.producedSeen))
		p.producedSeen = produced
	}
}

// drain waits, at most timeout, until every record the kernel has produced so far has been
// read or lost.
func (p *pipeline) drain(timeout time.Duration) {
	produced, _, err := p.kernel()
	if err != nil {
		return
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		_, lost, handled, err := p.counters()
		if err != nil || handled+lost >= produced {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// retire ends a target that has left the BPF pid filter: its records already in the ring
// buffer are still attributed to it, then forget drops it from the resolver, and only then
// do the observers hear TargetGone, so that nothing of it follows.
func (p *pipeline) retire(t *Target, timeout time.Duration, forget func()) {
	p.drain(timeout)
	forget()
	p.obs.TargetGone(&t.Target)
}

// target implements resolver.
func (a *Agent) target(w watched) (*Target, bool) {
	v, ok := a.targets.Load(w)
	if !ok {
		return nil, false
	}
	return v.(*Target), true
}

// rowOps implements resolver.
func (a *Agent) rowOps(row uint16) (op, altOp string, ok bool) {
	ri := a.rows[int(row)%maxRows].Load()
	if ri == nil {
		return "", "", false
	}
	return ri.row.Op, ri.row.AltOp, true
}

// wall converts a record's CLOCK_MONOTONIC time (observe.Target.Wall).
func (a *Agent) wall(ns int64) time.Time { return a.clock.Wall(uint64(ns)) }

// SelfMetrics returns the agent's own counters.
func (a *Agent) SelfMetrics() *SelfMetrics { return a.self }
