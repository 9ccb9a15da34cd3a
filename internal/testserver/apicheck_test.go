package testserver

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// mrtExpired is the v8 client's types.MRT_EXPIRED, which v7 does not know.
const mrtExpired = 122

// buildAPICheck builds testdata/apicheck against client major v: main.go and the
// major's checks, with the import rewritten to v, in a module that pins the client
// version of testdata/targets/<v>.
func buildAPICheck(t *testing.T, v string) string {
	t.Helper()
	majorFile := "major_other.go"
	if v == "v8" {
		majorFile = "major_v8.go"
	}
	return buildClientProgram(t, "apicheck", []string{"main.go", majorFile}, v, "")
}

// buildClientProgram builds the named files of testdata/<name>, their imports of the v8
// client rewritten to major v, in a module with the go.mod and go.sum of
// testdata/targets/<v> (the module line renamed), requiring client version instead of
// the pinned one when version is not "".
func buildClientProgram(t *testing.T, name string, files []string, v, version string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		src, err := os.ReadFile(filepath.Join("testdata", name, f))
		if err != nil {
			t.Fatal(err)
		}
		src = bytes.ReplaceAll(src, []byte("aerospike-client-go/v8"), []byte("aerospike-client-go/"+v))
		if err := os.WriteFile(filepath.Join(dir, f), src, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	targets := filepath.Join("..", "..", "testdata", "targets", v)
	goMod, err := os.ReadFile(filepath.Join(targets, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goMod = regexp.MustCompile(`(?m)^module .*$`).ReplaceAll(goMod, []byte("module "+name))
	goSum, err := os.ReadFile(filepath.Join(targets, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), goMod, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), goSum, 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod -buildvcs=false", "GOWORK=off",
		"CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if version != "" {
		edit := exec.Command("go", "mod", "edit", "-require=github.com/aerospike/aerospike-client-go/"+v+"@"+version)
		edit.Dir, edit.Env = dir, env
		if out, err := edit.CombinedOutput(); err != nil {
			t.Fatalf("go mod edit: client %s: %v\n%s", version, err, out)
		}
	}
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir, cmd.Env = dir, env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s for %s %s: %v\n%s", name, v, version, err, out)
	}
	return bin
}

func runAPICheck(t *testing.T, bin string, c *Cluster, luaDir, check string) string {
	t.Helper()
	return runClientProgram(t, bin, c, "-lua", luaDir, "-check", check)
}

// runClientProgram runs a program of testdata against the cluster and returns its output.
func runClientProgram(t *testing.T, bin string, c *Cluster, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	run := exec.Command(bin, append([]string{"-hosts", strings.Join(c.Hosts(), ",")}, args...)...)
	run.Stdout, run.Stderr = &stdout, &stderr
	if err := run.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(bin), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// TestAPICheckMajors runs testdata/apicheck, built against the v6 and v8 clients, on a
// fresh 2-node cluster each: the object API, BatchExecute, background jobs with their
// status polling and QueryAggregate for both; PutPayload and transactions (commit,
// abort, a version mismatch, batches inside transactions, a fault on the verify step
// and one on the roll step) for v8.
func TestAPICheckMajors(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two client versions; skipped in -short mode (make test and CI do not use -short)")
	}
	luaDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(luaDir, AggregateUDFModule), []byte(AggregateUDFSource), 0o644); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"v6": "ok objects\nok batch_execute\nok background\nok aggregate\n",
		"v8": "ok objects\nok batch_execute\nok background\nok aggregate\nok put_payload\nok txn_commit\nok txn_abort\nok txn_version_mismatch\nok txn_batch\n",
	}
	for _, v := range []string{"v6", "v8"} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			bin := buildAPICheck(t, v)
			c, _ := startCluster(t, Config{Nodes: 2})
			if got := runAPICheck(t, bin, c, luaDir, "all"); got != want[v] {
				t.Fatalf("apicheck ran:\n%swant:\n%s", got, want[v])
			}
			if v != "v8" {
				return
			}
			// MRT_EXPIRED, not a timeout: the client retries timeouts with sleeps between.
			for _, kind := range []string{CmdTxnVerify, CmdTxnRoll} {
				c.SetFaults([]Fault{{Command: kind, ResultCode: mrtExpired}})
				check := "fault_" + kind
				if got := runAPICheck(t, bin, c, luaDir, check); got != "ok "+check+"\n" {
					t.Fatalf("apicheck %s ran %q", check, got)
				}
			}
		})
	}
}

// TestPerNodeQueriesOfOldClients runs testdata/pernodequery, built against the v6 releases
// before v6.13.0 that asobserve supports, on a fresh 2-node cluster each: Query, QueryNode
// and QueryObjects with a filter send each node a query without a partition list, and
// every node answers for the partitions it owns; then, with every query failing, each
// node's stream ends with its error.
func TestPerNodeQueriesOfOldClients(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two client versions; skipped in -short mode (make test and CI do not use -short)")
	}
	for _, version := range []string{"v6.10.0", "v6.12.0"} {
		t.Run(version, func(t *testing.T) {
			t.Parallel()
			bin := buildClientProgram(t, "pernodequery", []string{"main.go"}, "v6", version)
			c, _ := startCluster(t, Config{Nodes: 2})
			if got, want := runClientProgram(t, bin, c, "-check", "all"), "ok query\nok query_node\nok query_objects\n"; got != want {
				t.Fatalf("pernodequery ran:\n%swant:\n%s", got, want)
			}
			c.SetFaults([]Fault{{Command: CmdQuery, ResultCode: 4}})
			if got := runClientProgram(t, bin, c, "-check", "fault"); got != "ok fault\n" {
				t.Fatalf("pernodequery -check fault ran %q", got)
			}
		})
	}
}
