package probes

import (
	"slices"
	"testing"

	"github.com/asobserve/asobserve/internal/inspect"
	"github.com/asobserve/asobserve/internal/semconv"
)

func bySymbol(t *testing.T, rows []Probe) map[string]Probe {
	t.Helper()
	m := map[string]Probe{}
	for _, r := range rows {
		if _, dup := m[r.Symbol]; dup {
			t.Errorf("symbol %s has two rows", r.Symbol)
		}
		m[r.Symbol] = r
	}
	return m
}

func TestEveryInspectableMajorHasATable(t *testing.T) {
	if !slices.Equal(SupportedMajors(), inspect.SupportedMajors) {
		t.Fatalf("probes supports %v, inspect accepts %v: a binary would pass inspection and find no probe table", SupportedMajors(), inspect.SupportedMajors)
	}
	for _, m := range SupportedMajors() {
		if len(ForMajor(m)) == 0 {
			t.Errorf("major %d: no rows", m)
		}
	}
	for _, m := range []int{5, 9} {
		if ForMajor(m) != nil {
			t.Errorf("major %d has rows", m)
		}
	}
}

// v6 and v8 have one Operate function; v7 splits Operate -> operate.
func TestOperateRowPerMajor(t *testing.T) {
	for major, want := range map[int]string{6: "(*Client).Operate", 7: "(*Client).operate", 8: "(*Client).Operate"} {
		rows := bySymbol(t, ForMajor(major))
		r, ok := rows[want]
		if !ok || r.Op != semconv.OpOperate || r.LocWord != 2 || r.ErrWord != 1 {
			t.Errorf("v%d: operate row %+v (present %v)", major, r, ok)
		}
		for _, other := range []string{"(*Client).Operate", "(*Client).operate"} {
			if _, ok := rows[other]; ok && other != want {
				t.Errorf("v%d probes both Operate and operate", major)
			}
		}
	}
}

func stageSymbols(rows []Probe) []string {
	var out []string
	for _, r := range rows {
		if r.IsStage() {
			out = append(out, r.Symbol)
		}
	}
	slices.Sort(out)
	return out
}

// objectAPI is client_reflect.go's functions that the table probes.
var objectAPI = []string{"(*Client).PutObject", "(*Client).GetObject", "(*Client).BatchGetObjects",
	"(*Client).ScanPartitionObjects", "(*Client).scanNodePartitionsObjects", "(*Client).scanPartitionObjects",
	"(*Client).QueryPartitionObjects", "(*Client).queryNodePartitionsObjects", "(*Client).queryPartitionObjects"}

func TestV6RowsAreV7Rows(t *testing.T) {
	rows := bySymbol(t, ForMajor(6))
	if len(rows) != len(ForMajor(7)) {
		t.Errorf("v6 has %d rows, want v7's %d", len(rows), len(ForMajor(7)))
	}
	if got, want := stageSymbols(ForMajor(6)), stageSymbols(ForMajor(7)); !slices.Equal(got, want) {
		t.Errorf("v6 stage rows %v, want v7's %v", got, want)
	}
	for sym, r := range rows {
		// ClientIfc keeps every public method linked: a missing operation is an error,
		// but for the object API, which builds tagged as_performance leave out.
		optional := r.IsStage() || r.ForTracing() || sym == "(*Client).scanNodePartitions" || sym == "(*Client).queryNodePartitions" || sym == "(*Recordset).sendError" ||
			slices.Contains(objectAPI, sym)
		if r.Optional != optional {
			t.Errorf("v6 row %s optional=%v, want %v", sym, r.Optional, optional)
		}
	}
}

func TestV8RowsAreAllOptional(t *testing.T) {
	rows := bySymbol(t, ForMajor(8))
	extra := []string{"(*executeCommand).parseResult", "(*operateCommandWrite).parseResult", "(*writePayloadCommand).parseResult"}
	ops := map[string]string{"(*Client).PutPayload": semconv.OpPut, "(*Client).Commit": semconv.OpCommit, "(*Client).Abort": semconv.OpAbort}
	if len(rows) != len(ForMajor(7))+len(extra)+len(ops) {
		t.Errorf("v8 has %d rows, want v7's %d, %d parse rows and %d operations", len(rows), len(ForMajor(7)), len(extra), len(ops))
	}
	for sym, op := range ops {
		if r := rows[sym]; r.Kind != KindOp || r.Op != op {
			t.Errorf("v8 row %s = %+v, want operation %s", sym, r, op)
		}
	}
	for _, sym := range extra {
		if r := rows[sym]; r.Kind != KindParseEnd || r.Stage != StageIDParse || r.Kind.Entry() || !r.Kind.Return() {
			t.Errorf("v8 row %s = %+v, want a parse-end row on return", sym, r)
		}
	}
	for sym, r := range rows {
		if !r.Optional {
			t.Errorf("v8 row %s is required: v8 drops the methods a program does not call", sym)
		}
	}
}

func TestNestedCallersPerMajor(t *testing.T) {
	if n := NestedFor(6, "v6.16.1"); len(n) != 0 {
		t.Errorf("v6 nested callers %v: v6 batches call no single-record operation", n)
	}
	for _, major := range []int{7, 8} {
		n := NestedFor(major, "")
		for _, want := range []string{"(*batchCommandGet).executeSingle", "(*batchCommandOperate).executeSingle",
			"(*batchCommandDelete).executeSingle", "(*batchCommandExists).executeSingle", "(*batchCommandGet).Execute"} {
			if !slices.Contains(n, want) {
				t.Errorf("v%d nested callers lack %s", major, want)
			}
		}
		if len(n) > 16 {
			t.Errorf("v%d: %d nested callers, the BPF table holds 16", major, len(n))
		}
	}
}

func TestEveryMajorFollowsTheTargetsOwnSpans(t *testing.T) {
	for _, major := range SupportedMajors() {
		var kinds []Kind
		for _, r := range ForMajor(major) {
			if r.FollowsAppSpans() {
				if !r.External || !r.Optional || !r.ForTracing() || r.IsStage() {
					t.Errorf("v%d row %s = %+v: want an optional external tracing row", major, r.Symbol, r)
				}
				kinds = append(kinds, r.Kind)
			}
		}
		if !slices.Equal(kinds, []Kind{KindSpanStart, KindSpanEnd, KindSpawn}) {
			t.Errorf("v%d span rows %v, want start, end and spawn", major, kinds)
		}
	}
}
