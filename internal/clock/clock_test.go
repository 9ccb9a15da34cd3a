package clock

import (
	"testing"
	"time"
)

func TestWallMatchesTimeNow(t *testing.T) {
	c := New()
	for range 100 {
		m := MonotonicNow()
		now := time.Now()
		diff := now.Sub(c.Wall(m))
		if diff < -100*time.Microsecond || diff > 500*time.Microsecond {
			t.Fatalf("Wall(mono) differs from time.Now() by %v", diff)
		}
	}
}

// fakeSource advances both clocks by hand; every read costs readCost ns of monotonic time.
type fakeSource struct {
	mono, wallOffset int64
	readCost         []int64 // per mono read; cycles
	reads            int
}

func (f *fakeSource) source() source {
	return source{
		mono: func() int64 {
			f.mono += f.readCost[f.reads%len(f.readCost)]
			f.reads++
			return f.mono
		},
		wall: func() int64 { return f.mono + f.wallOffset },
	}
}

func TestResyncFollowsWallClockStep(t *testing.T) {
	f := &fakeSource{mono: 1_000_000_000, wallOffset: 1_700_000_000_000_000_000, readCost: []int64{10}}
	c := newConverter(f.source(), 10*time.Second)
	base := f.wallOffset
	if got := int64(c.Offset()); got < base-10 || got > base+10 {
		t.Fatalf("initial offset %d, want %d±10", got, base)
	}

	// NTP steps the wall clock forward by 1.5 s.
	f.wallOffset += 1_500_000_000
	soon := uint64(f.mono + int64(5*time.Second))
	if got := c.Wall(soon).UnixNano(); got < int64(soon)+base-10 || got > int64(soon)+base+10 {
		t.Fatalf("before the resync interval the old offset must hold: got %d want %d", got, int64(soon)+base)
	}
	f.mono += int64(11 * time.Second)
	late := uint64(f.mono)
	want := int64(late) + f.wallOffset
	if got := c.Wall(late).UnixNano(); got < want-10 || got > want+10 {
		t.Fatalf("after the interval the new offset must be used: got %d want %d", got, want)
	}
	reads := f.reads
	c.Wall(late + 1)
	if f.reads != reads {
		t.Fatalf("Wall resynced again right after a resync (%d extra clock reads)", f.reads-reads)
	}
}

func TestResyncPicksLeastDisturbedSample(t *testing.T) {
	// Sample i reads mono twice. Read costs: sample 0 gap 1000, sample 1 gap 4, others 500.
	// A gap straddles the wall read, so the midpoint estimate is exact only for tight gaps
	// when the wall read happens right after the first mono read.
	f := &fakeSource{mono: 0, wallOffset: 42_000}
	costs := []int64{1, 1000}   // sample 0: m1, m2
	costs = append(costs, 1, 4) // sample 1
	for range samplesPerSync - 2 {
		costs = append(costs, 1, 500)
	}
	f.readCost = costs
	c := newConverter(f.source(), time.Hour)
	// For sample 1, wall = m1 + offset and the midpoint is m1 + 2, so the estimate is offset - 2.
	if got := int64(c.Offset()); got != 42_000-2 {
		t.Fatalf("offset %d, want %d from the min-gap sample", got, 42_000-2)
	}
}

func BenchmarkWall(b *testing.B) {
	c := New()
	m := MonotonicNow()
	for i := 0; b.Loop(); i++ {
		c.Wall(m + uint64(i))
	}
}
