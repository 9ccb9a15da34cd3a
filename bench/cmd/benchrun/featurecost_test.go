//go:build linux

package main

import (
	"reflect"
	"strings"
	"testing"
)

// Each feature is its sub-benchmark against its baseline of the same round: the added CPU
// and the ratio are the medians of the per-round differences and ratios.
func TestFeatureCostIsTheMedianOfPerRoundDifferencesAndRatios(t *testing.T) {
	round := func(classic, native, recorder, exemplars, otlp float64) []goBench {
		g := func(name string, v float64) goBench {
			return goBench{Name: featureCostBench + "/" + name + "-2", NsPerOp: 1, Extra: map[string]float64{featureCostUnit: v, "B/op": 0}}
		}
		return []goBench{g("classic-buckets", classic), g("classic-and-native-buckets", native), g("recorder", recorder),
			g("recorder-with-exemplars", exemplars), g("recorder-with-otlp-export", otlp)}
	}
	rows, why := featureCostRows([]map[string]float64{
		perSubBenchmark(round(1, 2, 4, 5, 40)),
		perSubBenchmark(round(2, 3, 2, 4, 10)),
		perSubBenchmark(round(1, 1.5, 5, 6, 20)),
	})
	if why != "" {
		t.Fatal(why)
	}
	type fig struct{ added, ratio, with, without float64 }
	got := map[string]fig{}
	for _, r := range rows {
		got[r.Feature] = fig{r.AddedMsPerSec, r.Ratio, r.WithMsPerSec, r.WithoutMsPerSec}
		if r.Rounds != 3 || len(r.RoundRatios) != 3 {
			t.Errorf("%s: %d rounds, %d round ratios; want 3 each", r.Feature, r.Rounds, len(r.RoundRatios))
		}
	}
	want := map[string]fig{
		// native: differences 1, 1, 0.5; ratios 2, 1.5, 1.5
		"native histograms": {1, 1.5, 2, 1},
		// exemplars: differences 1, 2, 1; ratios 1.25, 2, 1.2
		"exemplars": {1, 1.25, 5, 4},
		// OTLP: differences 36, 8, 15; ratios 10, 5, 4
		"OTLP export": {15, 5, 20, 4},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("feature rows %+v, want %+v", got, want)
	}
}

func TestFeatureCostUnmeasuredWhenASubBenchmarkIsMissing(t *testing.T) {
	full := map[string]float64{"classic-buckets": 1, "classic-and-native-buckets": 2, "recorder": 3, "recorder-with-exemplars": 4, "recorder-with-otlp-export": 5}
	partial := map[string]float64{"classic-buckets": 1, "classic-and-native-buckets": 2, "recorder": 3, "recorder-with-exemplars": 4}
	rows, why := featureCostRows([]map[string]float64{full, partial})
	if rows != nil || !strings.Contains(why, "round 2") || !strings.Contains(why, "recorder-with-otlp-export") {
		t.Fatalf("rows %v, reason %q: want none, and the reason naming round 2's missing recorder-with-otlp-export", rows, why)
	}
}
