package inspect

import (
	"bufio"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Test targets are built once per test binary into buildDir and reused.
var buildDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "inspect-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const clientVersion = "v7.10.2"

type target struct {
	name      string
	toolchain string // GOTOOLCHAIN value, "" for the default
	goarch    string
	flags     []string
	noClient  bool
}

var (
	tPlain      = target{name: "plain"}
	tStrip      = target{name: "strip", flags: []string{"-ldflags=-s -w"}}
	tPIE        = target{name: "pie", flags: []string{"-buildmode=pie"}}
	tPIEStr     = target{name: "piestrip", flags: []string{"-buildmode=pie", "-ldflags=-s -w"}}
	tGo122      = target{name: "go122strip", toolchain: "go1.22.12", flags: []string{"-ldflags=-s -w"}}
	tGo122Plain = target{name: "go122", toolchain: "go1.22.12"}
	tHello      = target{name: "hello", noClient: true}
	tARM64      = target{name: "arm64", goarch: "arm64"}
	buildMu     sync.Mutex
	builtBin    = map[string]string{}
)

const helloSource = `package main

import "fmt"

func main() { fmt.Println("hello") }
`

// build returns the path of the target's binary, building it on first use.
func build(t testing.TB, tg target) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := builtBin[tg.name]; ok {
		if p == "" {
			t.Fatalf("target %s failed to build earlier", tg.name)
		}
		return p
	}
	builtBin[tg.name] = ""
	src := filepath.Join(buildDir, "src-"+tg.name)
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if tg.noClient {
		must(t, os.WriteFile(filepath.Join(src, "go.mod"), []byte("module asobserve.test/hello\n\ngo 1.21\n"), 0o644))
		must(t, os.WriteFile(filepath.Join(src, "main.go"), []byte(helloSource), 0o644))
	} else {
		tmpl, err := os.ReadFile("../../tools/genoffsets/target.go.tmpl")
		must(t, err)
		prog := strings.ReplaceAll(string(tmpl), "{{.Module}}", "github.com/aerospike/aerospike-client-go/v7")
		mod := "module asobserve.test/target\n\ngo 1.21\n\nrequire github.com/aerospike/aerospike-client-go/v7 " + clientVersion + "\n"
		must(t, os.WriteFile(filepath.Join(src, "go.mod"), []byte(mod), 0o644))
		must(t, os.WriteFile(filepath.Join(src, "main.go"), []byte(prog), 0o644))
	}
	out := filepath.Join(buildDir, "bin-"+tg.name)
	goarch := tg.goarch
	if goarch == "" {
		goarch = "amd64"
	}
	args := append(append([]string{"build", "-o", out}, tg.flags...), ".")
	cmd := exec.Command("go", args...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod -buildvcs=false", "GOOS=linux", "GOARCH="+goarch, "CGO_ENABLED=0", "GOWORK=off")
	if tg.toolchain != "" {
		cmd.Env = append(cmd.Env, "GOTOOLCHAIN="+tg.toolchain)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building target %s: %v\n%s", tg.name, err, b)
	}
	builtBin[tg.name] = out
	return out
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// objdumpFunc is one function as `go tool objdump` shows it.
type objdumpFunc struct {
	insts []objdumpInst
}

type objdumpInst struct {
	addr uint64
	hex  string
	text string
}

var objdumpLine = regexp.MustCompile(`^\s+\S+:\d+\s+0x([0-9a-f]+)\s+([0-9a-f]+)\s+(.*)$`)

// objdump disassembles symbol (an exact name) with the Go toolchain's own
// disassembler: an independent check of this package's scanning.
func objdump(t testing.TB, bin, symbol string) objdumpFunc {
	t.Helper()
	cmd := exec.Command("go", "tool", "objdump", "-s", "^"+regexp.QuoteMeta(symbol)+"$", bin)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go tool objdump %s: %v", symbol, err)
	}
	var fn objdumpFunc
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		m := objdumpLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		addr, err := strconv.ParseUint(m[1], 16, 64)
		must(t, err)
		fn.insts = append(fn.insts, objdumpInst{addr: addr, hex: m[2], text: strings.TrimSpace(m[3])})
	}
	if len(fn.insts) == 0 {
		t.Fatalf("go tool objdump found no instructions for %s", symbol)
	}
	return fn
}

// vaddrToFileOffset is an independent conversion using the program headers.
func vaddrToFileOffset(t testing.TB, bin string, vaddr uint64) uint64 {
	t.Helper()
	f, err := elf.Open(bin)
	must(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && vaddr >= p.Vaddr && vaddr < p.Vaddr+p.Memsz {
			return vaddr - p.Vaddr + p.Off
		}
	}
	t.Fatalf("%#x is in no PT_LOAD segment of %s", vaddr, bin)
	return 0
}
