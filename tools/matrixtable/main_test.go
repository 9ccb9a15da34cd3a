package main

import (
	"bytes"
	"testing"
	"time"
)

func TestRender(t *testing.T) {
	r := &report{Mode: "full", Started: time.Date(2026, 11, 21, 23, 0, 0, 0, time.UTC), DurationSeconds: 75.4, Cells: []cell{
		{Go: "go1.21", GoVersion: "go1.21.13", Client: "v6.16.1", Flavour: "plain", Status: "pass", Ops: 180},
		{Go: "go1.21", GoVersion: "go1.21.13", Client: "v6.16.1", Flavour: "pie", Status: "fail", Error: "x"},
		{Go: "go1.21", Client: "v8.8.0", Flavour: "plain", Status: "n/a"},
		{Go: "go1.21", Client: "v8.8.0", Flavour: "pie", Status: "n/a"},
		{Go: "go1.26", Client: "v7.10.2", Flavour: "plain", Status: "skipped"},
		{Go: "go1.26", Client: "v7.10.2", Flavour: "pie", Status: "refused", Error: "y"},
	}}
	var buf bytes.Buffer
	if err := render(&buf, r); err != nil {
		t.Fatal(err)
	}
	want := `| Go | aerospike-client-go | plain | pie |
|---|---|---|---|
| go1.21.13 | v6.16.1 | ✅ 180 ops | ❌ |
| go1.26 | v7.10.2 | – | refused |
| go1.21.13 | v8.8.0 | n/a | n/a |

1 cells pass, 1 fail, 2 not applicable (client needs a newer Go), 1 refused; full run on 2026-11-21, 1m15s.
✅ N ops: every operation count per (operation, namespace, set, error_type) equals the target's ground truth.
refused: the attach refused the build with a one-line error, as designed, because its layout could not be settled exactly.
`
	if got := buf.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if err := render(&buf, &report{}); err == nil {
		t.Error("empty results rendered without error")
	}
}

// A later partial run replaces the cells it ran, adds those of a new version in version
// order, and leaves the others (which it skipped) as the first run had them.
func TestRenderMergesPartialRuns(t *testing.T) {
	full := &report{Mode: "full", Started: time.Date(2026, 12, 1, 23, 0, 0, 0, time.UTC), DurationSeconds: 212, Cells: []cell{
		{Go: "go1.26", GoVersion: "go1.26.8", Client: "v6.13.0", Flavour: "plain", Status: "pass", Ops: 564},
		{Go: "go1.26", GoVersion: "go1.26.8", Client: "v6.13.0", Flavour: "pie", Status: "fail"},
		{Go: "go1.26", GoVersion: "go1.26.8", Client: "v7.10.2", Flavour: "plain", Status: "pass", Ops: 564},
		{Go: "go1.26", GoVersion: "go1.26.8", Client: "v7.10.2", Flavour: "pie", Status: "pass", Ops: 564},
	}}
	partial := &report{Mode: "full", Started: time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC), DurationSeconds: 1500, Cells: []cell{
		{Go: "go1.21", GoVersion: "go1.21.13", Client: "v6.10.0", Flavour: "plain", Status: "pass", Ops: 560},
		{Go: "go1.21", GoVersion: "go1.21.13", Client: "v6.10.0", Flavour: "pie", Status: "pass", Ops: 560},
		{Go: "go1.26", GoVersion: "go1.26.8", Client: "v6.10.0", Flavour: "plain", Status: "pass", Ops: 560},
		{Go: "go1.26", GoVersion: "go1.26.8", Client: "v6.10.0", Flavour: "pie", Status: "pass", Ops: 560},
		{Go: "go1.26", GoVersion: "go1.26.8", Client: "v6.13.0", Flavour: "plain", Status: "skipped"},
		{Go: "go1.26", GoVersion: "go1.26.8", Client: "v6.13.0", Flavour: "pie", Status: "pass", Ops: 564},
		{Go: "go1.26", Client: "v7.10.2", Flavour: "plain", Status: "skipped"},
		{Go: "go1.26", Client: "v7.10.2", Flavour: "pie", Status: "skipped"},
	}}
	var buf bytes.Buffer
	if err := render(&buf, full, partial); err != nil {
		t.Fatal(err)
	}
	want := `| Go | aerospike-client-go | plain | pie |
|---|---|---|---|
| go1.21.13 | v6.10.0 | ✅ 560 ops | ✅ 560 ops |
| go1.26.8 | v6.10.0 | ✅ 560 ops | ✅ 560 ops |
| go1.26.8 | v6.13.0 | ✅ 564 ops | ✅ 564 ops |
| go1.26.8 | v7.10.2 | ✅ 564 ops | ✅ 564 ops |

8 cells pass, 0 fail, 0 not applicable (client needs a newer Go), 0 refused; full run on 2026-12-01, 3m32s; the cells of v6.10.0, v6.13.0 from a full run on 2026-12-02, 25m0s.
✅ N ops: every operation count per (operation, namespace, set, error_type) equals the target's ground truth.
`
	if got := buf.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
