package targetsrc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	as "github.com/aerospike/aerospike-client-go/v7"
	"github.com/aerospike/aerospike-client-go/v7/types"

	"github.com/asobserve/asobserve/internal/clienterr"
	"github.com/asobserve/asobserve/internal/outcome"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// files lists every regular file under dir, relative to it.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func imports(t *testing.T, file string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, spec := range f.Imports {
		p, err := strconv.Unquote(spec.Path.Value)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func TestRenderMajors(t *testing.T) {
	root := repoRoot(t)
	if got := Majors(); !slices.Equal(got, []string{"v6", "v7", "v8"}) {
		t.Fatalf("Majors() = %v", got)
	}
	for _, major := range Majors() {
		t.Run(major, func(t *testing.T) {
			dir := t.TempDir()
			if err := Render(root, major, dir); err != nil {
				t.Fatal(err)
			}
			want := []string{"go.mod", "go.sum", "internal/clienterr/clienterr.go",
				"internal/outcome/codes_gen.go", "internal/outcome/outcome.go", "main.go"}
			if got := files(t, dir); !slices.Equal(got, want) {
				t.Fatalf("rendered files %v, want %v", got, want)
			}
			module := "github.com/asobserve/asobserve/testdata/targets/" + major
			client := "github.com/aerospike/aerospike-client-go/" + major
			wantMain := []string{"encoding/json", "flag", "fmt", "os", "os/signal", "sort", "strings", "sync", "syscall", "time", "unsafe",
				client, module + "/internal/clienterr"}
			switch major {
			case "v8": // PutPayload's hand-built write frame
				wantMain = append([]string{"encoding/binary"}, wantMain...)
			case "v6": // the linked client version, which decides how QueryNodeObjects is called
				wantMain = slices.Insert(wantMain, slices.Index(wantMain, "os/signal")+1, "runtime/debug")
			}
			if got := imports(t, filepath.Join(dir, "main.go")); !slices.Equal(got, wantMain) {
				t.Errorf("main.go imports %v, want %v", got, wantMain)
			}
			wantClassifier := []string{"errors", client, client + "/types", module + "/internal/outcome"}
			if got := imports(t, filepath.Join(dir, "internal/clienterr/clienterr.go")); !slices.Equal(got, wantClassifier) {
				t.Errorf("clienterr.go imports %v, want %v", got, wantClassifier)
			}
			main, err := os.ReadFile(filepath.Join(dir, "main.go"))
			if err != nil {
				t.Fatal(err)
			}
			batchRead := "as.NewBatchRead(nil, k2, "
			if major == "v6" {
				batchRead = "as.NewBatchRead(k2, "
			}
			if n := bytes.Count(main, []byte(batchRead)); n != 2 || bytes.Count(main, []byte("as.NewBatchRead(")) != 2 {
				t.Errorf("main.go has %d of 2 NewBatchRead calls written %q", n, batchRead)
			}
		})
	}
}

// A target without a template (otel) is its directory, copied as it is.
func TestRenderCopiesOtherTargets(t *testing.T) {
	root := repoRoot(t)
	dir := t.TempDir()
	if err := Render(root, "otel", dir); err != nil {
		t.Fatal(err)
	}
	from := filepath.Join(root, "testdata", "targets", "otel")
	want := files(t, from)
	if got := files(t, dir); !slices.Equal(got, want) || len(want) != 3 {
		t.Fatalf("rendered files %v, want the 3 files %v", got, want)
	}
	for _, name := range want {
		a, errA := os.ReadFile(filepath.Join(from, name))
		b, errB := os.ReadFile(filepath.Join(dir, name))
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs from its source (%v, %v)", name, errA, errB)
		}
	}
}

// A shared package that imports another package of this module cannot build in a target
// module, which gets copies of the shared packages only: Render says so.
func TestRenderRejectsUnsharedImport(t *testing.T) {
	root := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/own\n")
	write("testdata/targets/v7/go.mod", "module example.com/target\n")
	write("testdata/targets/template/main.go.tmpl", "package main\n\nfunc main() {}\n")
	write("internal/clienterr/clienterr.go", "package clienterr\n")
	write("internal/outcome/outcome.go", "package outcome\n\nimport _ \"example.com/own/internal/semconv\"\n")
	err := Render(root, "v7", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "imports example.com/own/internal/semconv, which a target module does not get a copy of") {
		t.Fatalf("Render = %v, want the unshared import named", err)
	}
}

// classifierCase is one error and the error_type the agent gives it.
type classifierCase struct {
	Op       string `json:"op"`
	Code     int    `json:"code"`
	NotAsErr bool   `json:"not_aerospike_error,omitempty"`
	Want     string `json:"want"`
}

// agreeTest runs inside a rendered target module, against the target's copy of
// clienterr built with that module's client major.
const agreeTest = `package clienterr

import (
	"encoding/json"
	"errors"
	"os"
	"testing"

	as "%s"
	"%[1]s/types"
)

func TestAgreesWithAgent(t *testing.T) {
	b, err := os.ReadFile("cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Op       string ` + "`json:\"op\"`" + `
		Code     int    ` + "`json:\"code\"`" + `
		NotAsErr bool   ` + "`json:\"not_aerospike_error\"`" + `
		Want     string ` + "`json:\"want\"`" + `
	}
	if err := json.Unmarshal(b, &cases); err != nil || len(cases) != %[2]d {
		t.Fatalf("%%d cases (%%v), want %[2]d", len(cases), err)
	}
	for _, c := range cases {
		var e error = &as.AerospikeError{ResultCode: types.ResultCode(c.Code)}
		if c.NotAsErr {
			e = errors.New("not from the client")
		}
		if got := Classify(c.Op, e); got != c.Want {
			t.Errorf("Classify(%%q, code %%d, not aerospike error %%v) = %%q, want %%q", c.Op, c.Code, c.NotAsErr, got, c.Want)
		}
	}
}
`

// lowestCode and highestCode bound every result code the client majors define
// (GRPC_ERROR, -21, to AEROSPIKE_ERR_LUA_FILE_NOT_FOUND, 1302, in v7), with a margin for codes other
// majors add.
const lowestCode, highestCode = -40, 1400

// classifierCases is, for every result code and the operations whose rule depends on the
// op, the error_type that the agent's decoder gives (outcome.ErrorType of the code it
// reads) and that the workload and inproc give (clienterr.Classify of the client's
// error): the two must agree, or a target's ground truth could not be compared with
// what the agent measured.
func classifierCases(t *testing.T) []classifierCase {
	t.Helper()
	var cases []classifierCase
	for code := lowestCode; code <= highestCode; code++ {
		for _, op := range []string{"get", "exists", "remove"} {
			agent := outcome.ErrorType(op, true, code)
			workload := clienterr.Classify(op, &as.AerospikeError{ResultCode: types.ResultCode(code)})
			if agent != workload {
				t.Errorf("code %d op %s: agent %q, workload %q", code, op, agent, workload)
			}
			cases = append(cases, classifierCase{Op: op, Code: code, Want: agent})
		}
	}
	notAerospike := clienterr.Classify("get", errors.New("not from the client"))
	cases = append(cases, classifierCase{Op: "get", NotAsErr: true, Want: notAerospike})
	for _, c := range []struct {
		op   string
		code int
		want string
	}{
		{"put", int(types.KEY_BUSY), "KeyBusy"},
		{"get", int(types.KEY_NOT_FOUND_ERROR), "KeyNotFoundError"},
		{"exists", int(types.KEY_NOT_FOUND_ERROR), ""},
		{"get", int(types.NETWORK_ERROR), "Connection"},
		{"get", 1399, "ResultCode1399"},
		{"get", int(types.MAX_RETRIES_EXCEEDED), "MaxRetriesExceeded"}, // no cause to classify by
	} {
		if got := clienterr.Classify(c.op, &as.AerospikeError{ResultCode: types.ResultCode(c.code)}); got != c.want {
			t.Errorf("Classify(%s, code %d) = %q, want %q", c.op, c.code, got, c.want)
		}
		cases = append(cases, classifierCase{Op: c.op, Code: c.code, Want: c.want})
	}
	if notAerospike != "CommonError" {
		t.Errorf("Classify of a non-client error = %q, want CommonError", notAerospike)
	}
	return cases
}

// Every target's classifier, compiled against its own client major, gives every result
// code the error_type the agent gives it.
func TestTargetClassifierAgreesWithAgent(t *testing.T) {
	cases := classifierCases(t)
	casesJSON, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	root := repoRoot(t)
	for _, major := range Majors() {
		t.Run(major, func(t *testing.T) {
			dir := t.TempDir()
			if err := Render(root, major, dir); err != nil {
				t.Fatal(err)
			}
			pkg := filepath.Join(dir, "internal", "clienterr")
			src := fmt.Sprintf(agreeTest, clientModulePrefix+major, len(cases))
			if err := os.WriteFile(filepath.Join(pkg, "agree_test.go"), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(pkg, "cases.json"), casesJSON, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("go", "test", "-count=1", "-run", "TestAgreesWithAgent", "./internal/clienterr/")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod -buildvcs=false", "GOWORK=off", "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go test in the rendered %s target: %v\n%s", major, err, out)
			}
		})
	}
}
