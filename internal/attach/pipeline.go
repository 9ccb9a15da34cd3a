//go:build linux

package attach

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/asobserve/asobserve/internal/decoder"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/outcome"
	"github.com/asobserve/asobserve/internal/semconv"
)

// waitDrained waits until every record counted in produced has been read or lost.
func (a *Agent) waitDrained(produced uint64, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		_, lost, handled, err := a.Counters()
		if err != nil || handled+lost >= produced {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Run reads the ring buffer until Close. It decodes every record and feeds the recorder.
func (a *Agent) Run() error {
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				a.PollCounters()
			}
		}
	}()
	dec := decoder.New()
	var rec ringbuf.Record
	var op decoder.OpEvent
	var st decoder.StageEvent
	for {
		a.reader.SetDeadline(time.Now().Add(PollInterval))
		if err := a.reader.ReadInto(&rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			if errors.Is(err, ringbuf.ErrClosed) || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return fmt.Errorf("reading ring buffer: %w", err)
		}
		a.handle(dec, rec.RawSample, &op, &st)
		// Counted after handling, so that a drained count means every record is recorded.
		a.received.Add(1)
	}
}

func (a *Agent) handle(dec *decoder.Decoder, raw []byte, op *decoder.OpEvent, st *decoder.StageEvent) {
	a.rec.EventsReceived.Inc()
	typ, _ := decoder.Type(raw)
	switch typ {
	case decoder.TypeOp:
		if err := dec.DecodeOp(raw, op); err != nil {
			a.rec.EventsInvalid.Inc()
			return
		}
		a.handleOp(op)
	case decoder.TypeStage:
		if err := dec.DecodeStage(raw, st); err != nil {
			a.rec.EventsInvalid.Inc()
			return
		}
		a.handleStage(st)
	default:
		a.rec.EventsInvalid.Inc()
	}
}

// resolve finds the target and operation name a record belongs to; a record of an unknown
// row or process counts as invalid.
func (a *Agent) resolve(pid uint32, row uint16, alternate bool) (*Target, string, bool) {
	ri := a.rows[row%maxRows].Load()
	v, ok := a.targets.Load(pid)
	if ri == nil || !ok {
		a.rec.EventsInvalid.Inc()
		return nil, "", false
	}
	return v.(*Target), ri.opName(alternate), true
}

func (a *Agent) handleOp(ev *decoder.OpEvent) {
	t, opName, ok := a.resolve(ev.PID, ev.Row, ev.Alternate)
	if !ok {
		return
	}
	errType := outcome.ErrorType(opName, ev.Failed, int(ev.Cause))
	a.rec.ObserveOp(t.Identity, metrics.OpSample{Op: opName, Namespace: ev.Namespace, Set: ev.Set,
		ErrorType: errType, Duration: time.Duration(ev.End - ev.Start)})
	if a.opts.OnOp != nil {
		a.opts.OnOp(t, ev, opName, errType)
	}
}

func (a *Agent) handleStage(ev *decoder.StageEvent) {
	t, opName, ok := a.resolve(ev.PID, ev.Row, ev.Alternate)
	if !ok {
		return
	}
	stage := semconv.Stages[ev.Stage]
	a.rec.ObserveStage(t.Identity, metrics.StageSample{Stage: stage, Op: opName, Duration: time.Duration(ev.End - ev.Start)})
	if a.opts.OnStage != nil {
		a.opts.OnStage(t, ev, stage, opName)
	}
}

// Counters returns the kernel's produced and lost record counts and the records read.
func (a *Agent) Counters() (produced, lost, received uint64, err error) {
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
	return produced, lost, a.received.Load(), nil
}

// PollCounters moves the kernel's produced/lost counts into the self-metrics.
func (a *Agent) PollCounters() {
	produced, lost, _, err := a.Counters()
	if err != nil {
		return
	}
	a.counterMu.Lock()
	defer a.counterMu.Unlock()
	if lost > a.lostSeen {
		a.rec.EventsLost.Add(float64(lost - a.lostSeen))
		a.lostSeen = lost
	}
	if produced > a.producedSeen {
		a.produced.Add(float64(produced - a.producedSeen))
		a.producedSeen = produced
	}
}
