//go:build linux

package main

import (
	"reflect"
	"testing"
)

// A class's figure is the median over its operations in each round, then over rounds;
// operations of other classes never enter it.
func TestProgramTimeIsTheMedianOverOperationsThenRounds(t *testing.T) {
	round := func(put, get, exists, batch, query float64) map[string]opCost {
		c := func(ns float64) opCost {
			return opCost{NsPerOp: ns, FloorNsPerOp: ns / 10, EntryNsPerRun: ns / 2, ReturnNsPerRun: ns / 4, FloorNsPerRun: ns / 20}
		}
		return map[string]opCost{"put": c(put), "get": c(get), "exists": c(exists), "batch_read": c(batch), "query": c(query)}
	}
	rows := programTime([]map[string]opCost{
		round(1000, 2000, 3000, 5000, 9000),
		round(1200, 1400, 9000, 7000, 11000),
		round(100, 900, 1100, 6000, 10000),
	})
	got := map[string]float64{}
	for _, r := range rows {
		got[r.Class] = r.NsPerOp
		if r.Rounds != 3 {
			t.Errorf("%s: %d rounds, want 3", r.Class, r.Rounds)
		}
	}
	// Single-record medians per round: 2000, 1400, 900; their median 1400.
	want := map[string]float64{classSingle: 1400, classBatch: 6000, classAsync: 10000}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ns/op by class %v, want %v", got, want)
	}
	if s := rows[0]; s.FloorNsPerOp != 140 || s.EntryNsPerRun != 700 || s.ReturnNsPerRun != 350 || s.FloorNsPerRun != 70 {
		t.Fatalf("single-record row %+v: the floor and per-run figures are not the same medians", s)
	}
}
