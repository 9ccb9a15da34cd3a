//go:build linux

package attach_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/testserver"
)

// The compatibility matrix: Go toolchains × client versions × build flavours. `make test`
// runs the diagonal below; ASOBSERVE_MATRIX=full (`make matrix`) runs every cell.
// ASOBSERVE_MATRIX_OUT=file writes the results as JSON for tools/matrixtable.

type matrixGo struct {
	Label, Toolchain string // Toolchain is a GOTOOLCHAIN value
	Minor            int
}

type matrixClient struct {
	Dir, Version string // Dir under testdata/targets
	MinGoMinor   int    // the client's go.mod floor
}

type matrixFlavour struct {
	Name          string
	Flags         []string
	Stripped, PIE bool
}

var (
	matrixGos = []matrixGo{
		{"go1.21", "go1.21.13", 21},
		{"go1.22", "go1.22.12", 22},
		{"go1.24", "go1.24.13", 24},
		{"go1.26", "local", 26},
	}
	matrixClients = []matrixClient{
		{"v6", "v6.16.1", 17},
		{"v7", "v7.10.2", 20},
		{"v8", "v8.8.0", 23},
	}
	matrixFlavours = []matrixFlavour{
		{Name: "plain"},
		{Name: "stripped", Flags: []string{"-ldflags=-s -w"}, Stripped: true},
		{Name: "pie", Flags: []string{"-buildmode=pie"}, PIE: true},
		{Name: "pie+stripped", Flags: []string{"-buildmode=pie", "-ldflags=-s -w"}, Stripped: true, PIE: true},
	}
	// matrixDiagonal covers every client, three toolchains and every flavour in four cells.
	matrixDiagonal = map[[3]string]bool{
		{"go1.21", "v6", "plain"}:        true,
		{"go1.24", "v7", "pie"}:          true,
		{"go1.26", "v8", "stripped"}:     true,
		{"go1.26", "v7", "pie+stripped"}: true,
	}
)

// MatrixResult is one cell of the matrix as ASOBSERVE_MATRIX_OUT records it.
type MatrixResult struct {
	Go            string  `json:"go"`
	GoVersion     string  `json:"go_version,omitempty"` // from the binary's build info
	Client        string  `json:"client"`
	Flavour       string  `json:"flavour"`
	Status        string  `json:"status"` // pass, fail, n/a (toolchain below the client's floor), skipped (not in this run)
	Ops           uint64  `json:"ops,omitempty"`
	Series        int     `json:"series,omitempty"`
	Error         string  `json:"error,omitempty"`
	BuildSeconds  float64 `json:"build_seconds,omitempty"`
	AttachSeconds float64 `json:"attach_seconds,omitempty"`
}

// MatrixReport is the whole ASOBSERVE_MATRIX_OUT file.
type MatrixReport struct {
	Mode            string         `json:"mode"` // full or diagonal
	Started         time.Time      `json:"started"`
	DurationSeconds float64        `json:"duration_seconds"`
	Cells           []MatrixResult `json:"cells"`
}

// matrixFaults give every cell failed reads (InvalidArgument: not retried, unlike a
// server Timeout) and failed writes (KeyExistsError), so that error decoding is checked on
// every build too.
var matrixFaults = []testserver.Fault{
	{Command: testserver.CmdRead, ResultCode: 4, Percent: 20},
	{Command: testserver.CmdWrite, ResultCode: 5, Percent: 25},
}

func TestCompatMatrix(t *testing.T) {
	e2etest.RequireRoot(t)
	mode := "diagonal"
	if os.Getenv("ASOBSERVE_MATRIX") == "full" {
		mode = "full"
	}
	report := MatrixReport{Mode: mode, Started: time.Now()}
	t.Cleanup(e2etest.RemoveTargets)
	var closing sync.WaitGroup
	defer closing.Wait()
	for _, g := range matrixGos {
		for _, c := range matrixClients {
			for _, f := range matrixFlavours {
				res := MatrixResult{Go: g.Label, Client: c.Version, Flavour: f.Name}
				switch {
				case g.Minor < c.MinGoMinor:
					res.Status = "n/a"
				case mode != "full" && !matrixDiagonal[[3]string{g.Label, c.Dir, f.Name}]:
					res.Status = "skipped"
				default:
					name := fmt.Sprintf("%s/%s/%s", g.Label, c.Dir, f.Name)
					if t.Run(name, func(t *testing.T) { runMatrixCell(t, &closing, g, c, f, &res) }) {
						res.Status = "pass"
					} else {
						res.Status = "fail"
					}
				}
				report.Cells = append(report.Cells, res)
			}
		}
	}
	closing.Wait()
	report.DurationSeconds = time.Since(report.Started).Seconds()
	if out := os.Getenv("ASOBSERVE_MATRIX_OUT"); out != "" {
		b, err := json.MarshalIndent(report, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func runMatrixCell(t *testing.T, closing *sync.WaitGroup, g matrixGo, c matrixClient, f matrixFlavour, res *MatrixResult) {
	fail := func(format string, args ...any) {
		t.Helper()
		res.Error = fmt.Sprintf(format, args...)
		t.Fatal(res.Error)
	}
	start := time.Now()
	bin, err := e2etest.BuildTarget(t, e2etest.TargetBuild{Client: c.Dir, Toolchain: g.Toolchain, Flags: f.Flags})
	res.BuildSeconds = time.Since(start).Seconds()
	if err != nil {
		fail("build: %v", err)
	}
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 3})
	w := e2etest.StartTarget(t, bin, cluster.Hosts(), "-count", "12")

	rec := metrics.New(metrics.Options{})
	agent, err := attach.New(rec, attach.Options{})
	if err != nil {
		fail("%v", err)
	}
	done := make(chan error, 1)
	go func() { done <- agent.Run() }()
	// Detaching uprobes takes the kernel seconds (an RCU grace period per probe): close
	// in the background while the next cell builds.
	closing.Add(1)
	defer func() {
		go func() {
			defer closing.Done()
			agent.Close()
			<-done
		}()
	}()
	start = time.Now()
	tgt, err := agent.Attach(w.PID, &metrics.Identity{Service: "target"})
	res.AttachSeconds = time.Since(start).Seconds()
	if err != nil {
		fail("attach: %v", err)
	}
	info := tgt.Binary
	res.GoVersion = info.GoVersion
	if info.ClientVersion != c.Version || info.Stripped != f.Stripped || info.PIE != f.PIE ||
		!strings.HasPrefix(info.GoVersion, g.Label) && g.Toolchain != "local" {
		fail("binary is %s client %s stripped=%v pie=%v, built as %s %s stripped=%v pie=%v",
			info.GoVersion, info.ClientVersion, info.Stripped, info.PIE, g.Toolchain, c.Version, f.Stripped, f.PIE)
	}
	t.Logf("%s %s: %d functions, %d RET probes, attach %s", info.GoVersion, info.ClientVersion, info.Functions, info.ReturnProbes, info.AttachTime)

	cluster.SetFaults(matrixFaults)
	w.Go(t)
	truth := w.Wait(t, 2*time.Minute)
	cluster.SetFaults(nil)
	Drain(t, agent)
	got := e2etest.OpSeries(t, rec.Registry, "target")
	want := e2etest.TruthSeries(truth)
	e2etest.CompareCounts(t, got, want)

	ops, errorTypes := map[string]bool{}, map[string]bool{}
	for k, s := range want {
		ops[k.Op] = true
		errorTypes[k.ErrorType] = true
		res.Ops += s.Count
	}
	res.Series = len(want)
	if len(ops) != 15 {
		t.Errorf("the target ran %d operation kinds, want the 15 seed operations: %v", len(ops), ops)
	}
	for _, et := range []string{"", "InvalidArgument", "KeyExistsError"} {
		if !errorTypes[et] {
			t.Errorf("the target produced no error_type %q: the cell would not prove its decoding", et)
		}
	}
	if t.Failed() {
		res.Error = "counts differ from the target's ground truth (see test log)"
	}
}
