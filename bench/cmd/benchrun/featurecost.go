//go:build linux

package main

import (
	"fmt"
	"strings"
)

// The agent's added CPU per 10k ops/s for each of issue 17's features. The measurement is
// internal/otelmetrics' BenchmarkAddedCPU (the process's own CPU time by getrusage per
// recorded operation, times 10,000, over 8 series at 10k ops/s of source clock), run in its
// own process so that nothing else the harness does is counted; each round runs every
// feature beside its baseline, and a feature's figures are the medians of its per-round
// differences and ratios.
const (
	featureCostPkg       = "internal/otelmetrics"
	featureCostBench     = "BenchmarkAddedCPU"
	featureCostBenchtime = "300000x"
	featureCostRounds    = 3
	featureCostUnit      = "cpu-ms/s@10k"
)

// featureCosts pairs each feature's sub-benchmark with the one that differs from it by that
// feature alone.
var featureCosts = []struct{ feature, with, without, note string }{
	{"native histograms", "classic-and-native-buckets", "classic-buckets", "the recorder's own histogram's Observe (classic and native buckets) against client_golang's classic-only Observe"},
	{"exemplars", "recorder-with-exemplars", "recorder", "Recorder.Op with spans linked (span ids derived, exemplar gate per bucket; spans not exported: that is tracing's cost)"},
	{"OTLP export", "recorder-with-otlp-export", "recorder", "Recorder.Op relaying to the OTel SDK histogram, exported over OTLP/gRPC every 100 ms (600× the 60 s default's export work: an upper bound)"},
}

// featureCostRow is one feature's added CPU, in ms of CPU per second at 10k ops/s (10 is 1%
// of one core).
type featureCostRow struct {
	Feature         string    `json:"feature"`
	AddedMsPerSec   float64   `json:"added_cpu_ms_per_s_at_10k"`
	Ratio           float64   `json:"ratio_with_to_without"`
	WithMsPerSec    float64   `json:"with_cpu_ms_per_s_at_10k"`
	WithoutMsPerSec float64   `json:"without_cpu_ms_per_s_at_10k"`
	With            string    `json:"with"`
	Without         string    `json:"without"`
	Rounds          int       `json:"rounds"`
	RoundRatios     []float64 `json:"round_ratios"`
	Note            string    `json:"note"`
}

func runFeatureCost(rep *report, root string) {
	logger.Printf("added CPU of native histograms, exemplars and OTLP export (%d rounds)", featureCostRounds)
	var rounds []map[string]float64
	for range featureCostRounds {
		res, why := runGoBench(root, featureCostPkg, "^"+featureCostBench+"$", featureCostBenchtime)
		if why != "" {
			rep.FeatureCostNote = why
			return
		}
		rounds = append(rounds, perSubBenchmark(res))
	}
	rows, why := featureCostRows(rounds)
	rep.FeatureCost, rep.FeatureCostNote = rows, why
}

// perSubBenchmark maps "classic-buckets" to its cpu-ms/s@10k from one go test run.
func perSubBenchmark(res []goBench) map[string]float64 {
	out := map[string]float64{}
	for _, g := range res {
		name := strings.TrimPrefix(g.Name, featureCostBench+"/")
		if i := strings.LastIndexByte(name, '-'); i > 0 { // the -GOMAXPROCS suffix
			name = name[:i]
		}
		if v, ok := g.Extra[featureCostUnit]; ok {
			out[name] = v
		}
	}
	return out
}

// featureCostRows folds the rounds into one row per feature; a sub-benchmark missing from
// any round makes the whole table unmeasured, with the reason.
func featureCostRows(rounds []map[string]float64) ([]featureCostRow, string) {
	var rows []featureCostRow
	for _, f := range featureCosts {
		var with, without, added, ratio []float64
		for i, r := range rounds {
			w, okW := r[f.with]
			wo, okWo := r[f.without]
			if !okW || !okWo || wo <= 0 {
				return nil, fmt.Sprintf("round %d of %s lacks %s or %s (%s)", i+1, featureCostBench, f.with, f.without, featureCostUnit)
			}
			with, without = append(with, w), append(without, wo)
			added, ratio = append(added, w-wo), append(ratio, w/wo)
		}
		rows = append(rows, featureCostRow{Feature: f.feature, AddedMsPerSec: median(added), Ratio: median(ratio),
			WithMsPerSec: median(with), WithoutMsPerSec: median(without), With: f.with, Without: f.without,
			Rounds: len(rounds), RoundRatios: ratio, Note: f.note})
	}
	return rows, ""
}

func (r *report) featureCostMarkdown(p func(string, ...any)) {
	p("\n## Added CPU of issue 17's features, per 10k ops/s\n\n")
	if len(r.FeatureCost) == 0 {
		p("Not measured: %s.\n", r.FeatureCostNote)
		return
	}
	p("`go test ./%s -bench '^%s$' -benchtime %s`, %d rounds: the process's CPU time (getrusage, every goroutine) per recorded operation × 10,000, "+
		"so the figures are milliseconds of CPU per second at 10k ops/s (10 = 1%% of one core). Each feature is measured beside the same code without it in the same round; "+
		"added and ratio are the medians of the per-round differences and ratios.\n\n", featureCostPkg, featureCostBench, featureCostBenchtime, featureCostRounds)
	p("| feature | added ms/s @10k | ratio | with | without | round ratios | measured |\n|---|---:|---:|---:|---:|---|---|\n")
	for _, f := range r.FeatureCost {
		p("| %s | %+.2f | %.2f | %.2f (%s) | %.2f (%s) | %s | %s |\n", f.Feature, f.AddedMsPerSec, f.Ratio, f.WithMsPerSec, f.With, f.WithoutMsPerSec, f.Without,
			ratios(f.RoundRatios), f.Note)
	}
}
