//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// figure is one number with its unit, optionally judged against a goal.
type figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Goal  string  `json:"goal,omitempty"`
	Met   *bool   `json:"met,omitempty"`
	Note  string  `json:"note,omitempty"`
}

type modeRow struct {
	Mode         string            `json:"mode"`
	Description  string            `json:"description"`
	Measured     bool              `json:"measured"`
	NotMeasured  string            `json:"not_measured,omitempty"`
	Rounds       int               `json:"rounds,omitempty"`
	OpsPerSec    float64           `json:"ops_per_sec"`
	MeanUs       float64           `json:"mean_us"`
	P50Us        float64           `json:"p50_us"`
	P99Us        float64           `json:"p99_us"`
	AddedUsPerOp float64           `json:"added_us_per_op"`
	Units        map[string]string `json:"units"`
}

var modeUnits = map[string]string{"ops_per_sec": "operations/s", "mean_us": "µs", "p50_us": "µs", "p99_us": "µs",
	"added_us_per_op": "µs per operation (median over rounds of mode mean − same-round baseline mean)"}

type probeHitRow struct {
	Op             string  `json:"op"`
	Ops            int64   `json:"ops"`
	EntryPerOp     float64 `json:"entry_hits_per_op"`
	ReturnPerOp    float64 `json:"return_hits_per_op"`
	TotalPerOp     float64 `json:"total_hits_per_op"`
	EventsPerOp    float64 `json:"ring_records_per_op"`
	EntryNsPerRun  float64 `json:"entry_ns_per_run"`
	ReturnNsPerRun float64 `json:"return_ns_per_run"`
	NsPerOp        float64 `json:"ns_per_op"`
	FloorNsPerRun  float64 `json:"floor_ns_per_run,omitempty"`
	FloorNsPerOp   float64 `json:"floor_ns_per_op,omitempty"`
	Rounds         int     `json:"rounds,omitempty"`
	Unit           string  `json:"unit"`
	Source         string  `json:"source"`
}

// setCost replaces the row's program times by their medians over rounds, beside the floor's.
func (h *probeHitRow) setCost(rounds []opCost) {
	var ours, entry, ret, floor, floorRun []float64
	for _, c := range rounds {
		ours, entry, ret = append(ours, c.NsPerOp), append(entry, c.EntryNsPerRun), append(ret, c.ReturnNsPerRun)
		floor, floorRun = append(floor, c.FloorNsPerOp), append(floorRun, c.FloorNsPerRun)
	}
	h.Rounds = len(rounds)
	h.NsPerOp, h.EntryNsPerRun, h.ReturnNsPerRun = median(ours), median(entry), median(ret)
	h.FloorNsPerOp, h.FloorNsPerRun = median(floor), median(floorRun)
}

type stageRow struct {
	Stages string            `json:"stages"`
	AvgMs  float64           `json:"avg_ms"`
	P50Ms  float64           `json:"p50_ms"`
	P95Ms  *float64          `json:"p95_ms"`
	P99Ms  float64           `json:"p99_ms"`
	Runs   int               `json:"runs"`
	Units  map[string]string `json:"units"`
	Note   string            `json:"note,omitempty"`
}

type report struct {
	GeneratedAt        string            `json:"generated_at"`
	DurationSeconds    float64           `json:"duration_seconds"`
	Machine            map[string]string `json:"machine"`
	Load               map[string]string `json:"load"`
	OpsOverheadVsFloor float64           `json:"ops_overhead_vs_floor"`
	OverheadUnit       string            `json:"ops_overhead_vs_floor_unit"`
	Modes              []modeRow         `json:"modes"`
	OverheadRounds     []float64         `json:"ops_overhead_vs_floor_rounds,omitempty"`
	ProgramTime        []classRow        `json:"bpf_program_time"`
	StatsOverheadNs    float64           `json:"bpf_stats_overhead_ns_per_run,omitempty"`
	ProbeHits          []probeHitRow     `json:"probe_hits"`
	BatchReadStages    []stageRow        `json:"batch_read_stages"`
	BatchProbeHits     []probeHitRow     `json:"batch_read_probe_hits"`
	Agent              []figure          `json:"agent"`
	FeatureCost        []featureCostRow  `json:"feature_added_cpu,omitempty"`
	FeatureCostNote    string            `json:"feature_added_cpu_note,omitempty"`
	Goals              []figure          `json:"goals"`
	AttachLog          string            `json:"attach_log,omitempty"`
	Notes              []string          `json:"notes,omitempty"`
	InprocNote         string            `json:"-"`
	TracingNote        string            `json:"-"`
	cfg                config
	inprocNs           float64
}

func newReport(c config) *report {
	return &report{
		GeneratedAt:  time.Now().UTC().Format(time.RFC3339),
		Machine:      machine(),
		OverheadUnit: "ratio (asobserve operations added µs/op ÷ floor added µs/op in the same round), median over rounds",
		Load: map[string]string{
			"mix": c.mix, "concurrency": fmt.Sprint(c.concurrency), "duration_per_run": c.duration.String(),
			"rounds": fmt.Sprint(c.rounds), "keys_per_set": fmt.Sprint(c.keys), "server": "internal/testserver, 1 node, loopback, in the harness process",
			"ring_buffer_bytes": fmt.Sprint(c.ringbuf),
		},
		cfg: c,
	}
}

func machine() map[string]string {
	m := map[string]string{"goos": runtime.GOOS, "goarch": runtime.GOARCH, "cpus": fmt.Sprint(runtime.NumCPU()), "go": runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m["kernel"] = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if l, _, ok := strings.Cut(string(b), "\n"); ok {
			m["memory"] = strings.Join(strings.Fields(strings.TrimPrefix(l, "MemTotal:")), " ")
		}
	}
	return m
}

func (r *report) addModes(c config, ms []mode, res map[string][]*truth, tracingNote string) {
	base := res["baseline"]
	for _, m := range ms {
		trs := res[m.name]
		row := modeRow{Mode: m.name, Description: m.desc, Measured: true, Rounds: len(trs), Units: modeUnits}
		var ops int64
		var sum float64
		var p50, p99, diffs []float64
		for i, t := range trs {
			ops += t.TotalOps
			sum += t.LatencySumSeconds
			p50 = append(p50, t.P50Ms*1e3)
			p99 = append(p99, t.P99Ms*1e3)
			if i < len(base) {
				diffs = append(diffs, meanUs(t)-meanUs(base[i]))
			}
		}
		row.OpsPerSec = float64(ops) / (c.duration.Seconds() * float64(len(trs)))
		row.MeanUs = sum / float64(ops) * 1e6
		row.P50Us, row.P99Us = median(p50), median(p99)
		row.AddedUsPerOp = median(diffs)
		r.Modes = append(r.Modes, row)
	}
	for i, ops := range res["operations"] {
		if i >= len(base) || i >= len(res["floor"]) {
			break
		}
		if f := meanUs(res["floor"][i]) - meanUs(base[i]); f > 0 {
			r.OverheadRounds = append(r.OverheadRounds, (meanUs(ops)-meanUs(base[i]))/f)
		}
	}
	r.OpsOverheadVsFloor = median(r.OverheadRounds)
	names := map[string]bool{}
	for _, m := range ms {
		names[m.name] = true
	}
	if !names["tracing"] {
		r.Modes = append(r.Modes, modeRow{Mode: "tracing", Description: "operation metrics plus one OTLP span per operation",
			NotMeasured: "the tracer could not start: " + tracingNote, Units: modeUnits})
	}
	r.Modes = append(r.Modes, modeRow{Mode: "in-process", Description: "inproc.Wrap(client) in the application, no eBPF",
		NotMeasured: "the reference workload process calls *as.Client directly and has no switch to wrap it; the wrapper's recording cost per operation is measured by its Go benchmark (see agent figures)",
		Units:       modeUnits})
}

func (r *report) addAttachTimes(ts []time.Duration) {
	var ms []float64
	var worst float64
	for _, t := range ts {
		v := t.Seconds() * 1e3
		ms = append(ms, v)
		worst = max(worst, v)
	}
	r.Agent = append(r.Agent,
		figure{Name: "attach_time_median", Value: median(ms), Unit: "ms", Note: fmt.Sprintf("Target.Binary.AttachTime of %d fresh attaches to the workload binary", len(ts))},
		figure{Name: "attach_time_max", Value: worst, Unit: "ms"})
}

func (r *report) addStages(res map[bool][]*truth) {
	for _, on := range []bool{false, true} {
		var avg, p50, p95, p99 []float64
		for _, t := range res[on] {
			avg = append(avg, meanUs(t)/1e3)
			p50 = append(p50, t.P50Ms)
			p99 = append(p99, t.P99Ms)
			if t.P95Ms != nil {
				p95 = append(p95, *t.P95Ms)
			}
		}
		row := stageRow{Stages: onOff(on), AvgMs: median(avg), P50Ms: median(p50), P99Ms: median(p99), Runs: len(res[on]),
			Units: map[string]string{"avg_ms": "ms", "p50_ms": "ms", "p95_ms": "ms", "p99_ms": "ms"}}
		if len(p95) > 0 {
			v := median(p95)
			row.P95Ms = &v
		} else {
			row.Note = "p95 not measured: the workload's truth JSON carries p50_ms and p99_ms only"
		}
		r.BatchReadStages = append(r.BatchReadStages, row)
	}
}

func (r *report) addAgentProcess(rate, achieved, cpuPct float64, atMax memStatus, hwm uint64) {
	note := ""
	if achieved < 0.95*rate {
		note = fmt.Sprintf("the machine reached %.0f ops/s, not %.0f", achieved, rate)
	}
	r.Agent = append(r.Agent,
		figure{Name: "agent_process_rate", Value: achieved, Unit: "operations/s", Note: note},
		figure{Name: "agent_cpu_at_rate", Value: cpuPct, Unit: "% of one core", Note: "`asobserve attach` process, utime+stime over the run"},
		figure{Name: "agent_rss_at_rate", Value: float64(atMax.rss) / (1 << 20), Unit: "MiB", Note: "largest VmRSS sampled every 250ms"},
		figure{Name: "agent_rss_anon_at_rate", Value: float64(atMax.anon) / (1 << 20), Unit: "MiB", Note: "RssAnon in that sample: heap, stacks, maps"},
		figure{Name: "agent_rss_file_at_rate", Value: float64(atMax.file) / (1 << 20), Unit: "MiB", Note: "RssFile in that sample: clean pages of the executable and libraries, shared and reclaimable"},
		figure{Name: "agent_rss_peak", Value: float64(hwm) / (1 << 20), Unit: "MiB", Note: "VmHWM at the end of the run"})
}

func (r *report) addSaturation(c config, rate float64, cnt counters) {
	r.Agent = append(r.Agent,
		figure{Name: "saturation_rate", Value: rate, Unit: "operations/s", Note: "workload flat out: get, 8 workers"},
		figure{Name: "saturation_events_produced", Value: float64(cnt.Produced), Unit: "events"},
		figure{Name: "saturation_events_lost", Value: float64(cnt.Lost), Unit: "events", Note: fmt.Sprintf("ring buffer %d bytes", c.ringbuf)},
		figure{Name: "ring_buffer_size", Value: float64(c.ringbuf), Unit: "bytes"})
}

func (r *report) addDecode(res testing.BenchmarkResult) {
	ns := float64(res.T.Nanoseconds()) / float64(res.N)
	r.Agent = append(r.Agent,
		figure{Name: "decode_record_ns_per_event", Value: ns, Unit: "ns/event", Note: "decoder.DecodeOp + outcome.ErrorType + Recorder.Op, one goroutine"},
		figure{Name: "decode_record_throughput", Value: 1e9 / ns, Unit: "events/s/core"},
		figure{Name: "decode_record_allocs", Value: float64(res.AllocsPerOp()), Unit: "allocations/event"})
}

func (r *report) addEncode(n int, res testing.BenchmarkResult, size int) {
	r.Agent = append(r.Agent, figure{Name: fmt.Sprintf("scrape_encode_%d_series", n), Value: float64(res.NsPerOp()) / 1e3, Unit: "µs",
		Note: fmt.Sprintf("Recorder.Encode, text format, %d histogram series (%d bytes)", n, size)})
}

func (r *report) addGoBench(kind string, res []goBench) {
	for _, g := range res {
		name := strings.TrimPrefix(g.Name, "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i]
		}
		f := figure{Name: kind + ":" + name, Value: g.NsPerOp, Unit: "ns/op"}
		if kind == "inproc" && strings.HasSuffix(name, "/record") {
			r.inprocNs = g.NsPerOp
			if cpu, ok := g.Extra[inprocCPUUnit]; ok {
				r.inprocNs = cpu
			}
		}
		r.Agent = append(r.Agent, f)
		for u, v := range g.Extra {
			if u == "B/op" || u == "allocs/op" {
				continue
			}
			r.Agent = append(r.Agent, figure{Name: kind + ":" + name + ":" + u, Value: v, Unit: u})
		}
	}
}

// addInprocDelta adds the wrapper's cost per call as wrapped − direct on the no-I/O path.
func (r *report) addInprocDelta() {
	d, okD := r.agent("inproc:WrapperOverhead/direct")
	w, okW := r.agent("inproc:WrapperOverhead/wrapped")
	if okD && okW {
		r.Agent = append(r.Agent, figure{Name: "inproc_wrapped_minus_direct", Value: w - d, Unit: "ns/op",
			Note: "wrapper cost per call on a no-I/O path (difference of two ~12 µs calls: noisy)"})
	}
}

// inprocCPUUnit is the in-process benchmarks' CPU time per op of their own thread: on a
// shared VM their wall time also counts the time other processes held the core.
const inprocCPUUnit = "cpu-ns/op"

// inprocCost is an in-process sub-benchmark's CPU ns/op, or its wall ns/op where the
// benchmark reports no CPU time.
func (r *report) inprocCost(sub string) (float64, bool) {
	if v, ok := r.agent("inproc:WrapperOverhead/" + sub + ":" + inprocCPUUnit); ok {
		return v, true
	}
	return r.agent("inproc:WrapperOverhead/" + sub)
}

func (r *report) agent(name string) (float64, bool) {
	for _, f := range r.Agent {
		if f.Name == name {
			return f.Value, true
		}
	}
	return 0, false
}

func (r *report) evaluateGoals() {
	met := func(b bool) *bool { return &b }
	if r.OpsOverheadVsFloor > 0 {
		r.Goals = append(r.Goals, figure{Name: "ops_overhead_vs_floor", Value: r.OpsOverheadVsFloor, Unit: "ratio", Goal: "≤ 1.10",
			Met: met(r.OpsOverheadVsFloor <= 1.10)})
	} else {
		r.Goals = append(r.Goals, figure{Name: "ops_overhead_vs_floor", Unit: "ratio", Goal: "≤ 1.10",
			Note: "not computed: the floor added no measurable time over the baseline in this run"})
	}
	for _, c := range r.ProgramTime {
		if c.Class == classSingle {
			g := figure{Name: "bpf_ns_per_single_record_op", Value: c.NsPerOp, Unit: "ns", Goal: "≤ 1000 (stretch 600)", Met: met(c.NsPerOp <= 1000)}
			if !*g.Met {
				g.Note = fmt.Sprintf("%.0f ns net of the floor (the statistics' own clock reads: what the programs cost as the agent runs, statistics off)", c.NsPerOp-c.FloorNsPerOp)
				for _, f := range r.ProgramTime {
					if f.Class == classSingleFresh {
						g.Note += fmt.Sprintf("; %.0f ns, %.0f net, with keys made per call", f.NsPerOp, f.NsPerOp-f.FloorNsPerOp)
					}
				}
				g.Note += ". " + missReason(g.Name)
			}
			r.Goals = append(r.Goals, g)
		}
	}
	if v, ok := r.agent("saturation_events_lost"); ok {
		r.Goals = append(r.Goals, figure{Name: "events_lost_at_saturation", Value: v, Unit: "events", Goal: "0", Met: met(v == 0)})
	}
	if v, ok := r.agent("decode_record_throughput"); ok {
		r.Goals = append(r.Goals, figure{Name: "decode_record_throughput", Value: v, Unit: "events/s/core", Goal: "≥ 1,000,000", Met: met(v >= 1e6)})
	}
	if v, ok := r.agent("agent_rss_at_rate"); ok {
		r.Goals = append(r.Goals, figure{Name: "agent_rss_at_rate", Value: v, Unit: "MiB", Goal: "≤ 64", Met: met(v <= 64)})
	}
	if v, ok := r.agent("agent_cpu_at_rate"); ok {
		r.Goals = append(r.Goals, figure{Name: "agent_cpu_at_rate", Value: v, Unit: "% of one core", Goal: "≤ 5", Met: met(v <= 5)})
	}
	if r.inprocNs > 0 {
		g := figure{Name: "inproc_ns_per_op", Value: r.inprocNs, Unit: "ns/op", Goal: "≤ 80", Met: met(r.inprocNs <= 80)}
		if clock, ok := r.inprocCost("clock"); ok && r.inprocNs > 80 {
			g.Note = fmt.Sprintf("%.0f ns of it are the two monotonic clock reads every timed call needs (this VM's vDSO clock, timed side by side in the same run, CPU time of the benchmark's thread); the rest, %.0f ns, is the histogram's Observe and the wrapper's own work (see inproc_record_beyond_clock)",
				clock, r.inprocNs-clock)
		}
		r.Goals = append(r.Goals, g)
	} else {
		r.Goals = append(r.Goals, figure{Name: "inproc_ns_per_op", Unit: "ns/op", Goal: "≤ 80", Note: "not measured: " + r.InprocNote})
	}
	if clock, ok := r.inprocCost("clock"); ok && r.inprocNs > 0 {
		beyond := r.inprocNs - clock
		g := figure{Name: "inproc_record_beyond_clock", Value: beyond, Unit: "ns/op", Goal: "≤ 40", Met: met(beyond <= 40)}
		if obs, ok := r.inprocCost("observe"); ok && beyond > 40 {
			g.Note = fmt.Sprintf("%.0f ns of it are the histogram's Observe of the series, timed alone (after the clock's serialising reads it runs slower than alone); the wrapper's own work (the hot-series check) is the other %.0f ns",
				obs, beyond-obs)
		}
		r.Goals = append(r.Goals, g)
	}
	if v, ok := r.agent("attach_time_max"); ok {
		r.Goals = append(r.Goals, figure{Name: "attach_time_max", Value: v, Unit: "ms", Goal: "≤ 1000", Met: met(v <= 1000)})
	}
	for i, g := range r.Goals {
		if g.Met != nil && !*g.Met && g.Note == "" {
			r.Goals[i].Note = missReason(g.Name)
		}
	}
}

// missReason explains a missed goal from what the harness knows about it.
func missReason(name string) string {
	switch name {
	case "ops_overhead_vs_floor":
		return "beyond the trap the floor pays, asobserve's programs spend the program time per operation in the table above (helper calls and reads of target memory are dear on this VM), and the agent decodes beside the workload and the server on 2 cores. The ratio is noisy on a shared VM: the per-round ratios are listed under the mode table, and the same harness has measured 1.10 to 1.58 on unchanged code"
	case "bpf_ns_per_single_record_op":
		return "Where it goes, timed inside the programs on this VM (clock marks between their steps, 2026-12-03, put): at entry the first read of target memory ≈215 ns (the goroutine's stack top) and the key's namespace and set headers ≈100-280 ns more, the pid filter, row, op id and in-flight slot ≈200 ns together; at return the row and slot ≈160 ns, the ring-buffer reserve ≈150-200 ns and submit ≈80 ns. The first read of target memory in each program run costs ≈130-170 ns more than a second one (this VM virtualizes page tables in software, PVM), which no reordering removes: reading the key at return instead of entry saved 45 ns on preloaded keys and cost 120 ns on keys made per call, and was not kept; neither a one-cache-line op record nor ops made in place in their slot (no copy from the stack) measured faster. A helper call costs 30-350 ns of program time when its code and data are cache-cold, as between a target's own work (go run ./bench/cmd/helpercost measures each kind); a single-record operation needs 2 clock reads, 2 pid reads, 2 attach cookies, 3 array lookups (the pid filter's slot, the row at entry and at return), the in-flight slot's claim and free, 2 per-CPU counters, 1 read of the goroutine's stack top, 1 of the key's namespace and set headers (and, for the operations batches call, 1 of the caller's return address, 2 behind a nested callee; the names' bytes only when they are not string constants of the executable) and a ring-buffer reserve and submit. The floor's ns/run shows how loaded the machine was during the measurement: about 60 ns when it is quiet; runs of the same code differ by up to 40%"
	case "agent_cpu_at_rate":
		return "every operation wakes the ring-buffer reader; at this rate the wakeups and per-event Go work dominate"
	case "agent_rss_at_rate":
		return "see agent_rss_anon_at_rate and agent_rss_file_at_rate: most of it is clean file-backed pages of the agent's own executable, which links the client and the OTel SDK (for demo, workload and tracing); the anonymous part is the heap, the ring buffer mapping and the BPF maps"
	case "inproc_ns_per_op":
		return "the record path takes two clock reads, the cached-series check and a histogram observe; the seed's figure is a bare atomic increment"
	case "attach_time_max":
		return "binary inspection (symbols, DWARF, RET scanning) runs first, then the probes attach (multi-uprobe links where the kernel has them, else one perf event per probe point); measured on a 2-core VM shared with the workload"
	case "events_lost_at_saturation":
		return "the reader fell behind the kernel at the saturation rate; a larger --ringbuf-size absorbs bursts"
	}
	return "see the notes"
}

func (r *report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(r.markdown()), 0o644)
}

func (r *report) markdown() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# asobserve benchmark report\n\n")
	p("Generated by `make bench` (`go run ./bench/cmd/benchrun`) at %s in %.0f s.\n\n", r.GeneratedAt, r.DurationSeconds)
	p("Machine: %s, %s CPUs, %s, Linux %s, %s.\n\n", r.Machine["cpu"], r.Machine["cpus"], r.Machine["memory"], r.Machine["kernel"], r.Machine["go"])
	p("## Cost per operation, by mode\n\n")
	p("Load: reference workload (`asobserve workload`, aerospike-client-go v7), mix `%s`, %s closed-loop worker(s), %s per run, "+
		"%s rounds with the modes in rotated order, against the in-memory test server (`asobserve testserver`, a process of its own) on loopback. Latencies are the workload's own measurements.\n\n",
		r.Load["mix"], r.Load["concurrency"], r.Load["duration_per_run"], r.Load["rounds"])
	p("| mode | ops/s | mean µs | p50 µs | p99 µs | added µs/op |\n|---|---:|---:|---:|---:|---:|\n")
	for _, m := range r.Modes {
		if !m.Measured {
			p("| %s | not measured: %s | | | | |\n", m.Mode, m.NotMeasured)
			continue
		}
		p("| %s | %.0f | %.1f | %.1f | %.1f | %+.2f |\n", m.Mode, m.OpsPerSec, m.MeanUs, m.P50Us, m.P99Us, m.AddedUsPerOp)
	}
	p("\n**ops_overhead_vs_floor = %.2f** (asobserve operation metrics' added µs/op ÷ the floor's added µs/op in the same round, median over rounds; goal ≤ 1.10). Rounds: %s.\n\n",
		r.OpsOverheadVsFloor, ratios(r.OverheadRounds))
	if len(r.ProgramTime) > 0 {
		p("## BPF program time per operation\n\n")
		p("The kernel's own run statistics (`BPF_STATS_RUN_TIME`: run time ÷ runs of each program), asobserve's programs and the floor's empty ones on the same probe points, "+
			"each operation kind run alone (%d operations, 1 worker) under each, in %d rounds. Per class: the median over its operations, then over rounds.\n\n", 400, r.ProgramTime[0].Rounds)
		p("Each run's time includes what the statistics' clock reads take; the floor's empty programs take that and almost nothing else, " +
			"so ours minus the floor's is what the programs cost with the statistics off, as the agent runs by default. " +
			"The reference workload reuses preloaded keys, cache-cold when the entry program reads their namespace and set; the last row runs the single-record operations with keys made at each call (`--fresh-keys`), as services make them.\n\n")
		p("| class | ns/op | floor ns/op | ns/op net of the floor | ns/entry run | ns/return run | floor ns/run | operations |\n|---|---:|---:|---:|---:|---:|---:|---|\n")
		for _, c := range r.ProgramTime {
			p("| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %s |\n", c.Class, c.NsPerOp, c.FloorNsPerOp, c.NsPerOp-c.FloorNsPerOp,
				c.EntryNsPerRun, c.ReturnNsPerRun, c.FloorNsPerRun, strings.Join(c.Operations, ", "))
		}
		if r.StatsOverheadNs > 0 {
			p("\nThe statistics themselves add %.0f ns to every program run (an empty socket filter timed by `BPF_PROG_TEST_RUN`'s own loop, statistics off vs on): "+
				"the clock reads around the run and the counter updates; the floor's ns/run, an empty program, is mostly one of those clock reads. "+
				"They are global, every BPF program on the host pays this while they are on: the agent turns them on only with --bpf-stats (asobserve_bpf_program_*) and while asobserve top runs; this benchmark turns them on to measure.\n", r.StatsOverheadNs)
		}
		p("\n")
	}
	p("## Probe hits per operation kind\n\nBPF program runs per operation (kernel `BPF_STATS_RUN_TIME` run counts ÷ the workload's operation count; one kind at a time, 1 worker); ns figures are medians over the rounds above.\n\n")
	p("| operation | entry | return | total | ring records | ns/entry run | ns/return run | ns/op | floor ns/run | floor ns/op | source |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, h := range append(append([]probeHitRow{}, r.ProbeHits...), r.BatchProbeHits...) {
		floorRun, floorOp := "", ""
		if h.FloorNsPerRun > 0 {
			floorRun, floorOp = fmt.Sprintf("%.0f", h.FloorNsPerRun), fmt.Sprintf("%.0f", h.FloorNsPerOp)
		}
		p("| %s | %.2f | %.2f | %.2f | %.2f | %.0f | %.0f | %.0f | %s | %s | %s |\n", h.Op, h.EntryPerOp, h.ReturnPerOp, h.TotalPerOp, h.EventsPerOp,
			h.EntryNsPerRun, h.ReturnNsPerRun, h.NsPerOp, floorRun, floorOp, h.Source)
	}
	p("\n## batch_read with internal stages OFF vs ON (seed 002's table)\n\n3-node test cluster, 20 workers, `--mix batch_read=1`, OFF and ON interleaved.\n\n")
	p("| | avg | p50 | p95 | p99 |\n|---|---:|---:|---:|---:|\n")
	for _, s := range r.BatchReadStages {
		p95 := "n/a"
		if s.P95Ms != nil {
			p95 = fmt.Sprintf("%.3f ms", *s.P95Ms)
		}
		p("| %s | %.3f ms | %.3f ms | %s | %.3f ms |\n", strings.ToUpper(s.Stages), s.AvgMs, s.P50Ms, p95, s.P99Ms)
	}
	if len(r.BatchReadStages) == 2 {
		off, on := r.BatchReadStages[0], r.BatchReadStages[1]
		p("| Δ | %+.3f ms | %+.3f ms | | %+.3f ms |\n", on.AvgMs-off.AvgMs, on.P50Ms-off.P50Ms, on.P99Ms-off.P99Ms)
		if off.Note != "" {
			p("\n%s.\n", off.Note)
		}
	}
	r.featureCostMarkdown(p)
	p("\n## Agent figures\n\n| figure | value | unit | note |\n|---|---:|---|---|\n")
	for _, f := range r.Agent {
		p("| %s | %s | %s | %s |\n", f.Name, num(f.Value), f.Unit, f.Note)
	}
	if r.TracingNote != "" {
		p("| tracing cost per span | not measured | | %s |\n", r.TracingNote)
	}
	if r.InprocNote != "" {
		p("| in-process wrapper | not measured | | %s |\n", r.InprocNote)
	}
	p("\n## Goals\n\n| goal | target | measured | met | why not |\n|---|---|---:|---|---|\n")
	for _, g := range r.Goals {
		met := "not measured"
		if g.Met != nil {
			met = map[bool]string{true: "yes", false: "**no**"}[*g.Met]
		}
		why := ""
		if g.Met == nil || !*g.Met {
			why = g.Note
		}
		p("| %s | %s %s | %s | %s | %s |\n", g.Name, g.Goal, g.Unit, num(g.Value), met, why)
	}
	if r.AttachLog != "" {
		p("\nAttach log line: `%s`\n", r.AttachLog)
	}
	if len(r.Notes) > 0 {
		p("\n## Notes\n\n")
		for _, n := range r.Notes {
			p("- %s\n", n)
		}
	}
	return b.String()
}

func ratios(xs []float64) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%.2f", x))
	}
	return strings.Join(parts, ", ")
}

func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 1e6:
		return fmt.Sprintf("%.3g", v)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}
