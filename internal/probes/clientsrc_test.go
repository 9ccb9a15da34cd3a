package probes

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/semver"

	"github.com/asobserve/asobserve/internal/inspect"
)

// clientSource parses the client module of version (from the module cache, downloading
// it through the module proxy if needed) and indexes its top-level functions by symbol.
func clientSource(t *testing.T, version string) map[string]*ast.FuncDecl {
	t.Helper()
	mod := "github.com/aerospike/aerospike-client-go/" + semver.Major(version) + "@" + version
	cmd := exec.Command("go", "mod", "download", "-json", mod)
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v\n%s", mod, err, out)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		t.Fatalf("go mod download %s: %s %v", mod, info.Error, err)
	}
	files, err := filepath.Glob(filepath.Join(info.Dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	funcs := map[string]*ast.FuncDecl{}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok {
				funcs[symbolOf(fd)] = fd
			}
		}
	}
	return funcs
}

func signature(fd *ast.FuncDecl) string {
	params, results := fieldsOf(fd)
	return fmt.Sprintf("(%s) (%s)", strings.Join(typesOf(params), ", "), strings.Join(typesOf(results), ", "))
}

// Every client-package row of a tabulated version declares the function as the client's
// source does: the register words the probes read come from these declarations.
func TestDeclarationsMatchTheClientSource(t *testing.T) {
	for _, version := range inspect.TableVersions("amd64") {
		t.Run(version, func(t *testing.T) {
			src := clientSource(t, version)
			major := int(semver.Major(version)[1] - '0')
			probes, err := ForVersion(major, version)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range probes {
				if p.External {
					continue
				}
				fd, ok := src[p.Symbol]
				if !ok {
					t.Errorf("%s: the table has %s, the client source has no such function", version, p.Symbol)
					continue
				}
				f, _ := parser.ParseFile(token.NewFileSet(), "", "package p\n"+p.Func, parser.SkipObjectResolution)
				if got, want := signature(f.Decls[0].(*ast.FuncDecl)), signature(fd); got != want {
					t.Errorf("%s: the table declares %s%s, the client %s%s", version, p.Symbol, got, p.Symbol, want)
				}
			}
			countedBy := map[string]string{}
			for _, p := range probes {
				for _, m := range p.Methods() {
					if !p.Counted() {
						t.Errorf("%s: %s claims %s but counts no operation", version, p.Symbol, m)
					}
					if other, dup := countedBy[m]; dup {
						t.Errorf("%s: %s is counted by %s and %s: its calls would count twice", version, m, other, p.Symbol)
					}
					countedBy[m] = p.Symbol
					if _, ok := src["(*Client)."+m]; !ok {
						t.Errorf("%s: %s counts (*Client).%s, which the client does not have", version, p.Symbol, m)
					}
				}
			}
			for _, sym := range NestedFor(major, version) {
				if _, ok := src[sym]; !ok {
					t.Errorf("%s: nested caller %s is not in the client source", version, sym)
				}
			}
		})
	}
}
