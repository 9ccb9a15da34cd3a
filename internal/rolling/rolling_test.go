package rolling

import (
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/asobserve/asobserve/internal/observe"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// t0 is aligned to every default slot width (5 s, 25 s, 75 s).
var t0 = time.Unix(1_800_000_000-1_800_000_000%300, 0)

var svc = &observe.Target{Identity: &observe.Identity{Service: "checkout"}}

func op(set string, d time.Duration) observe.Op {
	return observe.Op{Name: "get", Namespace: "test", Set: set, ErrorType: "", End: int64(d)}
}

type timedSample struct {
	at time.Time
	d  time.Duration
}

// exactWindow applies the documented window rule to raw samples: a sample counts when its
// slot is one of the last `slots` slots ending with the slot of now.
func exactWindow(samples []timedSample, w time.Duration, slots int, now time.Time) []time.Duration {
	width := int64(w) / int64(slots)
	cur := now.UnixNano() / width
	var in []time.Duration
	for _, s := range samples {
		e := s.at.UnixNano() / width
		if e > cur-int64(slots) && e <= cur {
			in = append(in, s.d)
		}
	}
	return in
}

func TestWindowsMatchExactValues(t *testing.T) {
	clk := &fakeClock{t: t0}
	r := New(Options{Now: clk.Now})
	rnd := rand.New(rand.NewPCG(1, 2))
	var samples []timedSample
	// 20 minutes of samples at irregular times with a log-normal latency spread from ~µs to s.
	at := t0
	for at.Before(t0.Add(20 * time.Minute)) {
		at = at.Add(time.Duration(rnd.IntN(400)) * time.Millisecond)
		d := time.Duration(math.Exp(rnd.NormFloat64()*2+math.Log(2e6))) + time.Duration(rnd.IntN(5))
		clk.Set(at)
		r.Op(svc, op("users", d))
		samples = append(samples, timedSample{at, d})
	}
	for _, now := range []time.Time{at, at.Add(17 * time.Second), at.Add(3 * time.Minute), at.Add(14 * time.Minute)} {
		clk.Set(now)
		sums := r.Summaries()
		if len(sums) != 1 {
			t.Fatalf("want 1 series, got %d", len(sums))
		}
		for i, w := range DefaultWindows {
			got := sums[0].Windows[i]
			exact := exactWindow(samples, w, DefaultSlots, now)
			if got.Count != uint64(len(exact)) {
				t.Fatalf("now+%v window %v: count %d, want %d", now.Sub(at), w, got.Count, len(exact))
			}
			if len(exact) == 0 {
				if got.AvgSeconds != 0 || got.P99Seconds != 0 || got.RatePerSecond != 0 {
					t.Fatalf("window %v empty but values %+v", w, got)
				}
				continue
			}
			var sum int64
			for _, d := range exact {
				sum += int64(d)
			}
			if want := float64(sum) / float64(len(exact)) / 1e9; got.AvgSeconds != want {
				t.Fatalf("window %v: avg %v, want exactly %v", w, got.AvgSeconds, want)
			}
			sort.Slice(exact, func(a, b int) bool { return exact[a] < exact[b] })
			for _, qc := range []struct {
				q   float64
				got float64
			}{{0.5, got.P50Seconds}, {0.95, got.P95Seconds}, {0.99, got.P99Seconds}} {
				want := exact[nearestRank(qc.q, uint64(len(exact)))-1].Seconds()
				if rel := math.Abs(qc.got-want) / want; rel > MaxRelativeError {
					t.Fatalf("window %v p%v: %v vs exact %v, relative error %.4f > %.4f", w, qc.q*100, qc.got, want, rel, MaxRelativeError)
				}
			}
			if got.Window != w.String() || got.WindowSeconds != w.Seconds() {
				t.Fatalf("window label %q/%v for %v", got.Window, got.WindowSeconds, w)
			}
		}
	}
}

func TestWindowExpiresAtSlotBoundary(t *testing.T) {
	clk := &fakeClock{t: t0}
	r := New(Options{Now: clk.Now})
	at := t0.Add(100*time.Second + 2*time.Second) // inside the 1m ring's slot [100 s, 105 s)
	clk.Set(at)
	r.Op(svc, op("users", 3*time.Millisecond))

	counts := func(now time.Time) []uint64 {
		clk.Set(now)
		var c []uint64
		for _, s := range r.Summaries() {
			for _, w := range s.Windows {
				c = append(c, w.Count)
			}
		}
		return c
	}
	slotStart := t0.Add(100 * time.Second)
	cases := []struct {
		now  time.Time
		want []uint64
	}{
		{slotStart.Add(60*time.Second - time.Nanosecond), []uint64{1, 1, 1}}, // still the 12th slot
		{slotStart.Add(60 * time.Second), []uint64{0, 1, 1}},                 // 1m slot rotated out
		{t0.Add(5*time.Minute - time.Nanosecond), []uint64{0, 1, 1}},         // 5m slots are 25 s: [100 s,125 s) lives until 400 s
		{t0.Add(400 * time.Second), []uint64{0, 0, 1}},
		{t0.Add(100*time.Second + 15*time.Minute), []uint64{0, 0, 0}}, // 15m slots are 75 s: [75 s,150 s) expired at 975 s
		{at.Add(15*time.Minute + time.Nanosecond), nil},               // idle longer than the longest window: forgotten
	}
	for _, c := range cases {
		got := counts(c.now)
		if len(got) != len(c.want) {
			t.Fatalf("at +%v: counts %v, want %v", c.now.Sub(at), got, c.want)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Fatalf("at +%v: counts %v, want %v", c.now.Sub(at), got, c.want)
			}
		}
	}
}

func TestRateCurrentAndLabels(t *testing.T) {
	clk := &fakeClock{t: t0}
	r := New(Options{Now: clk.Now, Windows: []time.Duration{time.Minute}})
	for i := 0; i < 30; i++ {
		clk.Set(t0.Add(time.Duration(i) * time.Second))
		r.Op(svc, op("users", time.Duration(i+1)*time.Millisecond))
		r.Stage(svc, observe.Stage{Name: "io", Op: "batch_read", End: int64(40 * time.Microsecond)})
	}
	r.Op(&observe.Target{Identity: &observe.Identity{Service: "billing"}}, observe.Op{Name: "put", Namespace: "test", Set: "inv", ErrorType: "Timeout", End: int64(time.Second)})
	clk.Set(t0.Add(30 * time.Second))
	sums := r.Summaries()
	if len(sums) != 3 {
		t.Fatalf("want 3 series, got %d: %+v", len(sums), sums)
	}
	// Sorted: operations first, by service then operation.
	if sums[0].Labels["service_name"] != "billing" || sums[0].Labels["error_type"] != "Timeout" || sums[0].Kind != KindOperation {
		t.Fatalf("first series %+v", sums[0])
	}
	get := sums[1]
	want := map[string]string{"service_name": "checkout", "db_operation_name": "get", "db_namespace": "test", "db_collection_name": "users", "error_type": ""}
	if len(get.Labels) != len(want) {
		t.Fatalf("labels %v", get.Labels)
	}
	for k, v := range want {
		if get.Labels[k] != v {
			t.Fatalf("label %s=%q, want %q", k, get.Labels[k], v)
		}
	}
	w := get.Windows[0]
	if w.Count != 30 || w.RatePerSecond != 1 { // 30 samples over the 30 s since start
		t.Fatalf("count %d rate %v, want 30 and 1/s", w.Count, w.RatePerSecond)
	}
	if w.AvgSeconds != 0.0155 || get.CurrentSeconds != 0.030 {
		t.Fatalf("avg %v current %v, want 0.0155 and 0.030", w.AvgSeconds, get.CurrentSeconds)
	}
	if !get.LastSeen.Equal(t0.Add(29 * time.Second)) {
		t.Fatalf("last seen %v", get.LastSeen)
	}
	stage := sums[2]
	if stage.Kind != KindStage || stage.Labels["stage"] != "io" || stage.Labels["db_operation_name"] != "batch_read" || len(stage.Labels) != 3 {
		t.Fatalf("stage series %+v", stage)
	}
	if stage.Windows[0].Count != 30 || math.Abs(stage.Windows[0].P99Seconds-40e-6)/40e-6 > MaxRelativeError {
		t.Fatalf("stage window %+v", stage.Windows[0])
	}
}

func TestMaxSeriesFoldsIntoOverflow(t *testing.T) {
	clk := &fakeClock{t: t0}
	r := New(Options{Now: clk.Now, MaxSeries: 2})
	r.Op(svc, op("a", time.Millisecond))
	r.Op(svc, op("b", time.Millisecond))
	r.Op(svc, op("c", time.Millisecond))
	r.Op(svc, op("d", time.Millisecond))
	r.Op(svc, op("a", time.Millisecond))
	sums := r.Summaries()
	if len(sums) != 3 || r.Overflowed() != 2 {
		t.Fatalf("series %d overflowed %d, want 3 and 2", len(sums), r.Overflowed())
	}
	var sets []string
	for _, s := range sums {
		sets = append(sets, s.Labels["db_collection_name"]+"="+string(rune('0'+s.Windows[0].Count)))
	}
	if got := sets[0] + "," + sets[1] + "," + sets[2]; got != "_other=2,a=2,b=1" {
		t.Fatalf("series %s", got)
	}
}

func TestBucketErrorBound(t *testing.T) {
	for v := int64(0); v < 1<<22; v += 1 + v/1000 {
		b, s := bucketOf(v)
		mid := bucketMid(b, s)
		if v == 0 {
			if mid != 0 {
				t.Fatalf("0 -> %v", mid)
			}
			continue
		}
		if rel := math.Abs(mid-float64(v)) / float64(v); rel > MaxRelativeError {
			t.Fatalf("v=%d bucket (%d,%d) mid %v: relative error %v", v, b, s, mid, rel)
		}
	}
	if b, s := bucketOf(int64(time.Hour)); b != maxBlocks-1 || s != subCount-1 {
		t.Fatalf("1h clamps to (%d,%d)", b, s)
	}
}

func TestConcurrentObserveIsExact(t *testing.T) {
	clk := &fakeClock{t: t0}
	r := New(Options{Now: clk.Now})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000; i++ {
				r.Op(svc, op("users", time.Millisecond))
				if i%1000 == 0 {
					r.Summaries()
				}
			}
		}()
	}
	wg.Wait()
	if c := r.Summaries()[0].Windows[2].Count; c != 40000 {
		t.Fatalf("count %d, want 40000", c)
	}
}

func BenchmarkObserveOp(b *testing.B) {
	r := New(Options{})
	s := op("users", 1500*time.Microsecond)
	b.ReportAllocs()
	for b.Loop() {
		r.Op(svc, s)
	}
}

func BenchmarkObserveOpParallel(b *testing.B) {
	r := New(Options{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			r.Op(svc, op([]string{"a", "b", "c", "d"}[i%4], time.Duration(i%5000)*time.Microsecond))
		}
	})
}
