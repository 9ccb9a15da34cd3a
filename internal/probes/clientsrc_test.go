package probes

import (
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

var updateReadme = flag.Bool("update-readme", false, "rewrite the README's method inventory")

// exportedMethods lists the exported methods of *Client in a client source, sorted.
func exportedMethods(src map[string]*ast.FuncDecl) []string {
	var out []string
	for sym := range src {
		if m, ok := strings.CutPrefix(sym, "(*Client)."); ok && token.IsExported(m) {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out
}

// Every exported method of *Client in every tabulated version is counted by a row or
// excluded with a reason, and the README's metrics reference shows that inventory.
func TestEveryClientMethodHasADisposition(t *testing.T) {
	perVersion := map[string][]Disposition{}
	seen, limited := map[string]bool{}, map[string]bool{}
	for _, version := range inspect.TableVersions("amd64") {
		major := int(semver.Major(version)[1] - '0')
		methods := exportedMethods(clientSource(t, version))
		inv, err := Inventory(major, version, methods)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range inv {
			seen[d.Method] = true
			switch {
			case d.Op == "" && d.Reason == "":
				t.Errorf("%s: (*Client).%s has no disposition: count it with a row of the probe table, or list it in probes.Excluded with the reason", version, d.Method)
			case d.Op != "" && d.Reason != "":
				t.Errorf("%s: (*Client).%s is counted as %s and excluded (%s)", version, d.Method, d.Op, d.Reason)
			case d.Op == "" && d.Limit != "":
				t.Errorf("%s: probes.Limits limits (*Client).%s, which is not counted", version, d.Method)
			}
			if d.Limit != "" {
				limited[d.Method] = true
			}
		}
		perVersion[version] = inv
	}
	for m := range Excluded {
		if !seen[m] {
			t.Errorf("probes.Excluded lists %s, which no tabulated client version has", m)
		}
	}
	for _, l := range Limits {
		if !limited[l.Method] {
			t.Errorf("probes.Limits lists %s in %s, which no tabulated client version has", l.Method, l.Versions)
		}
	}
	const begin, end = "<!-- inventory:begin (go test ./internal/probes -run Disposition -update-readme) -->\n", "<!-- inventory:end -->"
	readme := filepath.Join("..", "..", "README.md")
	doc, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	i, j := strings.Index(string(doc), begin), strings.Index(string(doc), end)
	if i < 0 || j < i {
		t.Fatalf("README.md has no inventory section between %q and %q", begin, end)
	}
	want := InventoryMarkdown(perVersion)
	if got := string(doc[i+len(begin) : j]); got != want {
		if !*updateReadme {
			t.Fatalf("README.md's method inventory is out of date: run go test ./internal/probes -run Disposition -update-readme")
		}
		out := string(doc[:i+len(begin)]) + want + string(doc[j:])
		if err := os.WriteFile(readme, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
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
					if other, dup := countedBy[m]; dup && !nestedStart(src, m, other, p.Symbol) {
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

// nestedStart reports whether two rows that both count method m count its calls once: one
// row is m's own and m's body calls the other row's *Client method itself, so that call
// starts inside m's, on its goroutine, and is not counted again (Query of clients before
// v6.13.0 calls QueryPartitions when the statement has no filter).
func nestedStart(src map[string]*ast.FuncDecl, m, a, b string) bool {
	own := "(*Client)." + m
	inner := a
	switch own {
	case a:
		inner = b
	case b:
	default:
		return false
	}
	callee, ok := strings.CutPrefix(inner, "(*Client).")
	fd := src[own]
	if !ok || fd == nil || fd.Body == nil || fd.Recv == nil || len(fd.Recv.List[0].Names) != 1 {
		return false
	}
	recv := fd.Recv.List[0].Names[0].Name
	calls := false
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		if call, ok := n.(*ast.CallExpr); ok {
			if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == callee {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == recv {
					calls = true
				}
			}
		}
		return !calls
	})
	return calls
}
