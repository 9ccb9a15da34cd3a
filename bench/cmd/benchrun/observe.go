//go:build linux

package main

import (
	"fmt"
	"time"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/metrics"
)

// observer watches one workload process for one run.
type observer interface {
	attach(pid int) (*attach.Target, error)
	// finish waits for every produced record to be read and releases everything.
	finish() (counters, error)
}

type counters struct {
	Produced, Lost, Received uint64
}

// agentObserver is an in-process attach.Agent, as `asobserve attach` runs it.
type agentObserver struct {
	rec   *metrics.Recorder
	agent *attach.Agent
	done  chan error
	extra func() error // called at finish (e.g. tracer shutdown)
}

func newAgentObserver(opts attach.Options) (*agentObserver, error) {
	rec := metrics.New(metrics.Options{})
	a, err := attach.New(rec, opts)
	if err != nil {
		return nil, err
	}
	o := &agentObserver{rec: rec, agent: a, done: make(chan error, 1)}
	go func() { o.done <- a.Run() }()
	return o, nil
}

func (o *agentObserver) attach(pid int) (*attach.Target, error) {
	return o.agent.Attach(pid, &metrics.Identity{Service: "workload"})
}

func (o *agentObserver) drain(timeout time.Duration) (counters, error) {
	deadline := time.Now().Add(timeout)
	for {
		p, l, r, err := o.agent.Counters()
		if err != nil {
			return counters{}, err
		}
		c := counters{p, l, r}
		if p == l+r {
			return c, nil
		}
		if time.Now().After(deadline) {
			return c, fmt.Errorf("ring buffer not drained after %s: produced %d lost %d received %d", timeout, p, l, r)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (o *agentObserver) finish() (counters, error) {
	c, err := o.drain(10 * time.Second)
	if o.extra != nil {
		if e := o.extra(); e != nil && err == nil {
			err = e
		}
	}
	o.agent.Close()
	<-o.done
	return c, err
}

// heldAgent is an agent that stays attached for the whole benchmark. Detaching uprobes
// costs the kernel a grace period per probe (minutes for a few agents on a small VM), so
// the harness attaches few agents and never detaches during measurements: every mode gets
// its own copy of the target binary (its own inode, hence its own uprobes), and an idle
// "holder" process of each copy keeps the probes in place while the measured workload
// processes come and go.
type heldAgent struct {
	*agentObserver
	holders []*workloadProc
	pid     int
	last    counters
}

// view is one binary copy observed by a held agent; it is the observer of that mode's runs.
type view struct {
	h       *heldAgent
	bin     string
	attachT time.Duration
}

func (h *heldAgent) addView(bin string, hosts []string) (*view, error) {
	holder, err := startWorkload(bin, hosts, "--keys", "1", "--count", "1")
	if err != nil {
		return nil, err
	}
	h.holders = append(h.holders, holder)
	t, err := h.agent.Attach(holder.pid, &metrics.Identity{Service: "holder"})
	if err != nil {
		return nil, err
	}
	return &view{h: h, bin: bin, attachT: t.Binary.AttachTime}, nil
}

func (v *view) attach(pid int) (*attach.Target, error) {
	v.h.pid = pid
	return v.h.agentObserver.attach(pid)
}

// finish waits for the run's records and detaches its process (the holder keeps the
// probes); the counters are the run's own.
func (v *view) finish() (counters, error) {
	h := v.h
	c, err := h.drain(10 * time.Second)
	if h.pid != 0 {
		if derr := h.agent.Detach(h.pid); derr != nil && err == nil {
			err = derr
		}
		h.pid = 0
	}
	run := counters{c.Produced - h.last.Produced, c.Lost - h.last.Lost, c.Received - h.last.Received}
	h.last = c
	return run, err
}

// close releases everything; it takes long (see heldAgent), so callers run it concurrently.
func (h *heldAgent) close() {
	for _, w := range h.holders {
		w.kill()
		<-w.done
	}
	if h.extra != nil {
		_ = h.extra()
	}
	h.agent.Close()
	<-h.done
}

// noObserver is the baseline.
type noObserver struct{}

func (noObserver) attach(int) (*attach.Target, error) { return nil, nil }
func (noObserver) finish() (counters, error)          { return counters{}, nil }
