//go:build linux

package main

import "testing"

// The in-process goals take the benchmarks' CPU time per op where they report it, and split
// the same run's record figure into the clock reads and what lies beyond them.
func TestInprocGoalsUseCPUTimeOfTheSameRun(t *testing.T) {
	r := &report{}
	g := func(sub string, wall, cpu float64) goBench {
		return goBench{Name: "BenchmarkWrapperOverhead/" + sub + "-2", NsPerOp: wall, Extra: map[string]float64{inprocCPUUnit: cpu, "allocs/op": 0}}
	}
	r.addGoBench("inproc", []goBench{g("clock", 90, 56), g("observe", 60, 36), g("record", 200, 126)})
	r.evaluateGoals()
	got := map[string]float64{}
	for _, f := range r.Goals {
		got[f.Name] = f.Value
	}
	if got["inproc_ns_per_op"] != 126 || got["inproc_record_beyond_clock"] != 70 {
		t.Fatalf("inproc_ns_per_op %v, inproc_record_beyond_clock %v: want 126 and 70 (CPU time: 126 - 56)",
			got["inproc_ns_per_op"], got["inproc_record_beyond_clock"])
	}
}
