package testserver

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/asobserve/asobserve/internal/targetsrc"
)

// TestClientVersionTargets builds the v6, v7 and v8 targets (testdata/targets, rendered
// by targetsrc, each with its own go.mod) and runs their fixed mix against a
// 2-node cluster: every operation must succeed exactly -count times (batch_read twice as
// often: BatchGet and BatchGetComplex).
func TestClientVersionTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three client versions; skipped in -short mode (make test and CI do not use -short)")
	}
	c, _ := startCluster(t, Config{Nodes: 2})
	const count = 5
	ops := []string{"append", "batch_operate", "batch_read", "batch_remove", "exists", "get", "increment", "operate",
		"prepend", "put", "query", "remove", "scan", "select", "touch"}
	for _, v := range []string{"v6", "v7", "v8"} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			root, err := filepath.Abs(filepath.Join("..", ".."))
			if err != nil {
				t.Fatal(err)
			}
			tmp := t.TempDir()
			bin := filepath.Join(tmp, "target-"+v)
			if err := (targetsrc.Build{Client: v}).Make(root, filepath.Join(tmp, "src"), bin); err != nil {
				t.Fatalf("build %s: %v", v, err)
			}
			var stdout, stderr bytes.Buffer
			run := exec.Command(bin, "-hosts", strings.Join(c.Hosts(), ","), "-count", "5")
			run.Stdout, run.Stderr = &stdout, &stderr
			if err := run.Run(); err != nil {
				t.Fatalf("run %s: %v\n%s", v, err, stderr.String())
			}
			var tr struct {
				Counts []struct {
					Op, Namespace, Set string
					ErrorType          string `json:"error_type"`
					Count              int64
				}
				TotalOps int64 `json:"total_ops"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &tr); err != nil {
				t.Fatalf("truth JSON: %v\n%s", err, stdout.String())
			}
			if tr.TotalOps != count*int64(len(ops)+1) || len(tr.Counts) != len(ops) {
				t.Fatalf("%s: total %d, %d series: %+v", v, tr.TotalOps, len(tr.Counts), tr.Counts)
			}
			for i, c := range tr.Counts {
				want := int64(count)
				if c.Op == "batch_read" {
					want = 2 * count
				}
				if c.Op != ops[i] || c.ErrorType != "" || c.Count != want || c.Namespace != "test" || c.Set != "compat" {
					t.Fatalf("%s: series %d = %+v, want %s x%d success", v, i, c, ops[i], want)
				}
			}
		})
	}
}
