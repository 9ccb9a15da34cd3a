//go:build linux

package attach_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/asobserve/asobserve/internal/inspect"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/testserver"
)

// The compatibility matrix: client versions × Go toolchains × build flavours.
// ASOBSERVE_MATRIX=full (`make matrix`) runs every version of inspect.ClientVersions with
// the newest toolchain, and each major's oldest and newest version with every toolchain
// that version supports; `make test` runs the sample below. ASOBSERVE_MATRIX_CLIENTS=v1,v2
// runs only those client versions' cells (the others are recorded as skipped), so that a
// version added to the list can be proved without the whole run. ASOBSERVE_MATRIX_OUT=file
// writes the results as JSON for tools/matrixtable, which merges such partial runs into
// the last full one.

type matrixGo struct {
	Label, Toolchain string // Toolchain is a GOTOOLCHAIN value
	Minor            int
}

type matrixClient struct {
	Major, Version string // Major is the target's directory under testdata/targets
	MinGoMinor     int    // the client's go.mod floor
	Edge           bool   // the oldest or newest version of its major
}

type matrixFlavour struct {
	Name          string
	Flags         []string
	Stripped, PIE bool
	// Untabulated hides the version from the offsets table while attaching, so that its
	// layout is derived from the binary's own code (or the attach refused).
	Untabulated bool
}

var (
	matrixGos = []matrixGo{
		{"go1.21", "go1.21.13", 21},
		{"go1.22", "go1.22.12", 22},
		{"go1.24", "go1.24.13", 24},
		{"go1.26", "local", 26},
	}
	newestGo       = matrixGos[len(matrixGos)-1]
	matrixFlavours = []matrixFlavour{
		{Name: "plain"},
		{Name: "stripped", Flags: []string{"-ldflags=-s -w"}, Stripped: true},
		{Name: "pie", Flags: []string{"-buildmode=pie"}, PIE: true},
		{Name: "pie+stripped", Flags: []string{"-buildmode=pie", "-ldflags=-s -w"}, Stripped: true, PIE: true},
		{Name: "untabulated", Flags: []string{"-ldflags=-s -w"}, Stripped: true, Untabulated: true},
	}
	// matrixSample covers each major's oldest and newest version, three toolchains and
	// every flavour. Its builds of the newest versions are those of TestStagesPerClientMajor,
	// and its untabulated cell is its stripped v8.2.0 build, so the shared target cache
	// builds each once per run.
	matrixSample = map[[3]string]bool{
		{"go1.21", "v6.16.1", "stripped"}:    true,
		{"go1.26", "v6.10.0", "plain"}:       true,
		{"go1.26", "v7.0.0", "pie+stripped"}: true,
		{"go1.24", "v7.10.2", "pie"}:         true,
		{"go1.26", "v8.2.0", "stripped"}:     true,
		{"go1.26", "v8.2.0", "untabulated"}:  true,
		{"go1.26", "v8.8.0", "plain"}:        true,
	}
)

// inMatrix reports whether the full matrix has a cell: every version in plain, stripped,
// PIE and untabulated builds of the newest toolchain; the majors' oldest and newest
// versions also in PIE stripped builds, and with every older toolchain.
func inMatrix(g matrixGo, c matrixClient, f matrixFlavour) bool {
	if f.Untabulated {
		return g == newestGo
	}
	if c.Edge {
		return true
	}
	return g == newestGo && f.Name != "pie+stripped"
}

// matrixClients lists inspect.ClientVersions with each one's Go floor, read from the
// client's go.mod in the module cache (the go command downloads it if needed).
func matrixClients(t *testing.T) []matrixClient {
	var out []matrixClient
	for i, v := range inspect.ClientVersions {
		major := semver.Major(v)
		edge := i == 0 || semver.Major(inspect.ClientVersions[i-1]) != major ||
			i == len(inspect.ClientVersions)-1 || semver.Major(inspect.ClientVersions[i+1]) != major
		out = append(out, matrixClient{Major: major, Version: v, MinGoMinor: clientGoFloor(t, major, v), Edge: edge})
	}
	return out
}

func clientGoFloor(t *testing.T, major, version string) int {
	mod := inspect.ClientModulePrefix + "/" + major + "@" + version
	cmd := exec.Command("go", "mod", "download", "-json", mod)
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v\n%s", mod, err, out)
	}
	var info struct{ GoMod string }
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("go mod download %s: %v", mod, err)
	}
	data, err := os.ReadFile(info.GoMod)
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.ParseLax(info.GoMod, data, nil)
	if err != nil || f.Go == nil {
		t.Fatalf("%s: no go directive (%v)", info.GoMod, err)
	}
	var minor int
	if _, err := fmt.Sscanf(f.Go.Version, "1.%d", &minor); err != nil {
		t.Fatalf("%s: go %s: %v", info.GoMod, f.Go.Version, err)
	}
	return minor
}

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
	Mode            string         `json:"mode"` // full or sample
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
	mode := "sample"
	if os.Getenv("ASOBSERVE_MATRIX") == "full" {
		mode = "full"
	}
	only := matrixClientFilter(t)
	report := MatrixReport{Mode: mode, Started: time.Now()}
	t.Cleanup(e2etest.RemoveTargets)
	var closing sync.WaitGroup
	defer closing.Wait()
	for _, c := range matrixClients(t) {
		for _, g := range matrixGos {
			for _, f := range matrixFlavours {
				if !inMatrix(g, c, f) {
					continue
				}
				res := MatrixResult{Go: g.Label, Client: c.Version, Flavour: f.Name}
				switch {
				case only != nil && !only[c.Version]:
					res.Status = "skipped"
				case g.Minor < c.MinGoMinor:
					res.Status = "n/a"
				case mode != "full" && !matrixSample[[3]string{g.Label, c.Version, f.Name}]:
					res.Status = "skipped"
				default:
					name := fmt.Sprintf("%s/%s/%s", c.Version, g.Label, f.Name)
					switch {
					case !t.Run(name, func(t *testing.T) { runMatrixCell(t, &closing, g, c, f, &res) }):
						res.Status = "fail"
					case res.Status == "":
						res.Status = "pass"
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

// matrixClientFilter reads ASOBSERVE_MATRIX_CLIENTS: nil (every version) when unset.
func matrixClientFilter(t *testing.T) map[string]bool {
	list := os.Getenv("ASOBSERVE_MATRIX_CLIENTS")
	if list == "" {
		return nil
	}
	only := map[string]bool{}
	for _, v := range strings.Split(list, ",") {
		v = strings.TrimSpace(v)
		if !slices.Contains(inspect.ClientVersions, v) {
			t.Fatalf("ASOBSERVE_MATRIX_CLIENTS=%s: %q is not in inspect.ClientVersions (%s): name versions of that list, comma-separated", list, v, strings.Join(inspect.ClientVersions, ", "))
		}
		only[v] = true
	}
	return only
}

// The sample is a part of the matrix, and each of its cells is one the matrix has.
func TestMatrixSampleIsInTheMatrix(t *testing.T) {
	cells := map[[3]string]bool{}
	for _, c := range matrixClients(t) {
		for _, g := range matrixGos {
			for _, f := range matrixFlavours {
				if inMatrix(g, c, f) && g.Minor >= c.MinGoMinor {
					cells[[3]string{g.Label, c.Version, f.Name}] = true
				}
			}
		}
	}
	for cell := range matrixSample {
		if !cells[cell] {
			t.Errorf("sample cell %v is not in the matrix", cell)
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
	bin, err := e2etest.BuildTarget(t, e2etest.TargetBuild{Client: c.Major, Version: c.Version, Toolchain: g.Toolchain, Flags: f.Flags})
	res.BuildSeconds = time.Since(start).Seconds()
	if err != nil {
		fail("build: %v", err)
	}
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 3})
	w := e2etest.StartTarget(t, bin, cluster.Hosts(), "-count", "12", "-every-method")

	if f.Untabulated {
		tabulated := tabulatedOffsets(t, bin)
		restore := inspect.HideFromOffsetsTable(c.Version)
		defer restore()
		refused := checkDerivedLayout(t, bin, tabulated)
		if refused != nil && matrixSample[[3]string{g.Label, c.Version, f.Name}] {
			fail("the sample's untabulated build must be observed: %v", refused)
		}
		if refused != nil {
			res.Status, res.Error = "refused", refused.Error()
			return
		}
	}
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
	if wantOps := everyMethodOps(c.Major); len(ops) != len(wantOps) {
		t.Errorf("the target ran %d operation kinds, want every counted one of %s (%d): %v", len(ops), c.Major, len(wantOps), ops)
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

// tabulatedOffsets are the offsets table's fields for a stripped build: those genoffsets
// read from the DWARF of a real build of its version.
func tabulatedOffsets(t *testing.T, stripped string) map[inspect.FieldRef]int64 {
	t.Helper()
	b, err := inspect.Open(stripped)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	offs, err := b.Offsets()
	if err != nil {
		t.Fatal(err)
	}
	return offs
}

// checkDerivedLayout opens an untabulated stripped build: either its layout is derived and
// every field it gives is the tabulated one, or the open refuses it with a one-line
// ErrUnsupportedClient, which is returned.
func checkDerivedLayout(t *testing.T, stripped string, tabulated map[inspect.FieldRef]int64) error {
	t.Helper()
	b, err := inspect.Open(stripped)
	if errors.Is(err, inspect.ErrUnsupportedClient) && !strings.Contains(err.Error(), "\n") {
		t.Logf("refused: %v", err)
		return err
	}
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer b.Close()
	if b.DerivedFrom() == "" {
		t.Fatalf("client %s is still in the offsets table", b.ClientVersion)
	}
	var unknown []string
	for _, ref := range inspect.RequiredFields {
		got, err := b.FieldOffset(ref.Struct, ref.Field)
		want, tab := tabulated[ref]
		switch {
		case errors.Is(err, inspect.ErrNoField) && tab:
			unknown = append(unknown, ref.String())
		case err != nil && tab, err == nil && (!tab || got != want):
			t.Errorf("%s: derived %d (%v), tabulated %d (%v)", ref, got, err, want, tab)
		}
	}
	t.Logf("client %s: layout matched with %s; unknown: %v", b.ClientVersion, b.DerivedFrom(), unknown)
	return nil
}
