//go:build linux

package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/asobserve/asobserve/bpf"
	"github.com/asobserve/asobserve/internal/semconv"
)

// The classes of operation the program-time goals are stated for.
const (
	classSingle = "single-record"
	classBatch  = "batch"
	classAsync  = "query/scan"
	// The single-record operations with keys made at each call (workload --fresh-keys).
	classSingleFresh = "single-record, keys made per call"
)

func classOf(op string) string {
	switch {
	case strings.HasPrefix(op, "batch_"):
		return classBatch
	case op == semconv.OpQuery || op == semconv.OpScan:
		return classAsync
	}
	return classSingle
}

// progRun is what the kernel's run statistics say about one workload run: program runs
// and time per program name, over the run's operations.
type progRun struct {
	ops      float64
	produced uint64
	runs, ns map[string]float64
}

// perOp is the program time per operation of the named programs.
func (p progRun) perOp(names ...string) float64 {
	var ns float64
	for _, n := range names {
		ns += p.ns[n]
	}
	return ns / p.ops
}

func (p progRun) nsPerRun(name string) float64 {
	if p.runs[name] == 0 {
		return 0
	}
	return p.ns[name] / p.runs[name]
}

// classRow is the BPF program time per operation of one class, ours beside the floor's.
type classRow struct {
	Class          string   `json:"class"`
	Operations     []string `json:"operations"`
	Rounds         int      `json:"rounds"`
	NsPerOp        float64  `json:"ns_per_op"`
	FloorNsPerOp   float64  `json:"floor_ns_per_op"`
	EntryNsPerRun  float64  `json:"entry_ns_per_run"`
	ReturnNsPerRun float64  `json:"return_ns_per_run"`
	FloorNsPerRun  float64  `json:"floor_ns_per_run"`
	Unit           string   `json:"unit"`
}

// programTime folds the rounds of every operation into one row per class: each round's
// figure is the median over the class's operations, the row the median over rounds.
func programTime(rounds []map[string]opCost) []classRow {
	var out []classRow
	for _, class := range []string{classSingle, classBatch, classAsync} {
		row := classRow{Class: class, Rounds: len(rounds), Unit: "ns of BPF program time per operation (entry + return runs), median over operations, then over rounds"}
		for _, op := range semconv.Operations {
			if classOf(op) == class {
				row.Operations = append(row.Operations, op)
			}
		}
		var ours, floor, entry, ret, floorRun []float64
		for _, round := range rounds {
			var o, f, e, r, fr []float64
			for _, op := range row.Operations {
				c, ok := round[op]
				if !ok {
					continue
				}
				o, f = append(o, c.NsPerOp), append(f, c.FloorNsPerOp)
				e, r, fr = append(e, c.EntryNsPerRun), append(r, c.ReturnNsPerRun), append(fr, c.FloorNsPerRun)
			}
			if len(o) == 0 {
				continue
			}
			ours, floor = append(ours, median(o)), append(floor, median(f))
			entry, ret, floorRun = append(entry, median(e)), append(ret, median(r)), append(floorRun, median(fr))
		}
		if len(ours) == 0 {
			continue
		}
		row.NsPerOp, row.FloorNsPerOp = median(ours), median(floor)
		row.EntryNsPerRun, row.ReturnNsPerRun, row.FloorNsPerRun = median(entry), median(ret), median(floorRun)
		out = append(out, row)
	}
	return out
}

// opCost is one operation's program time in one round, ours and the floor's.
type opCost struct {
	NsPerOp, FloorNsPerOp                        float64
	EntryNsPerRun, ReturnNsPerRun, FloorNsPerRun float64
}

// statsOverhead measures what BPF_STATS_RUN_TIME adds to every program run: the kernel
// then reads the clock before and after each run and adds to per-CPU counters. The
// uprobe programs cannot be run by BPF_PROG_TEST_RUN (see testRunSupport), so an empty
// socket filter, which can, is timed by the kernel's own test loop with the statistics
// off and on, alternately, and the median difference is the figure.
func statsOverhead() (perRun float64, err error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.SocketFilter,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		License:      "GPL",
	})
	if err != nil {
		return 0, err
	}
	defer prog.Close()
	const repeat = 2_000_000
	timed := func() (time.Duration, error) {
		_, d, err := prog.Benchmark(make([]byte, 14), repeat, nil)
		return d, err
	}
	var diffs []float64
	for i := 0; i < 5; i++ {
		off, err := timed()
		if err != nil {
			return 0, err
		}
		stop, err := enableStats()
		if err != nil {
			return 0, err
		}
		on, err := timed()
		stop()
		if err != nil {
			return 0, err
		}
		diffs = append(diffs, float64(on-off))
	}
	return median(diffs), nil
}

// testRunSupport says whether the kernel runs the probe programs under BPF_PROG_TEST_RUN
// (uprobe programs are of the kprobe type, which has no test runner), and if not why: the
// program time is then measured live, per operation kind.
func testRunSupport() error {
	spec, err := bpf.LoadAsobserve()
	if err != nil {
		return err
	}
	prog, err := ebpf.NewProgram(spec.Programs["probe_empty"])
	if err != nil {
		return err
	}
	defer prog.Close()
	_, err = prog.Run(&ebpf.RunOptions{Context: make([]byte, 168)})
	if err == nil {
		return nil
	}
	if errors.Is(err, ebpf.ErrNotSupported) {
		return fmt.Errorf("this kernel has no BPF_PROG_TEST_RUN for uprobe (kprobe-type) programs: %w", err)
	}
	return err
}
