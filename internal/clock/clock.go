// Package clock converts CLOCK_MONOTONIC timestamps (what bpf_ktime_get_ns returns) to wall
// time. The offset between the two clocks changes when NTP slews or steps the wall clock, so
// it is re-sampled periodically instead of once at start.
package clock

import (
	"sync"
	"sync/atomic"
	"time"
)

// DefaultResync is how often the wall-minus-monotonic offset is re-sampled.
const DefaultResync = 10 * time.Second

// samplesPerSync paired reads are taken per resync; the one with the smallest gap between
// its two monotonic reads wins, as it was least disturbed by preemption.
const samplesPerSync = 7

// source reads the two clocks in nanoseconds.
type source struct {
	mono func() int64
	wall func() int64
}

// Converter turns monotonic nanoseconds into wall time. It is safe for concurrent use.
type Converter struct {
	src      source
	interval int64

	offset   atomic.Int64 // wall ns - mono ns
	lastSync atomic.Int64 // mono ns of the last resync
	mu       sync.Mutex
}

// New returns a Converter synchronised with the system clocks now.
func New() *Converter { return newConverter(systemSource(), DefaultResync) }

func newConverter(src source, interval time.Duration) *Converter {
	c := &Converter{src: src, interval: int64(interval)}
	c.resync()
	return c
}

// Wall converts a CLOCK_MONOTONIC reading to wall time. The event's own timestamp drives the
// resync schedule, so the hot path reads no clock.
func (c *Converter) Wall(monoNs uint64) time.Time {
	if int64(monoNs)-c.lastSync.Load() > c.interval && c.mu.TryLock() {
		if int64(monoNs)-c.lastSync.Load() > c.interval {
			c.resyncLocked()
		}
		c.mu.Unlock()
	}
	return time.Unix(0, int64(monoNs)+c.offset.Load())
}

// Offset returns the current wall-minus-monotonic offset.
func (c *Converter) Offset() time.Duration { return time.Duration(c.offset.Load()) }

func (c *Converter) resync() {
	c.mu.Lock()
	c.resyncLocked()
	c.mu.Unlock()
}

func (c *Converter) resyncLocked() {
	var best, bestGap int64 = 0, -1
	var at int64
	for range samplesPerSync {
		m1 := c.src.mono()
		w := c.src.wall()
		m2 := c.src.mono()
		gap := m2 - m1
		if bestGap < 0 || gap < bestGap {
			bestGap = gap
			best = w - (m1 + gap/2)
			at = m2
		}
	}
	c.offset.Store(best)
	c.lastSync.Store(at)
}
