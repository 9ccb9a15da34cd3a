package inspect

import (
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/semver"
)

// The accessor fixtures are real builds' code of (*Key).Namespace, whose field is at 0,
// and of (*AerospikeError).resultCode, whose field is at 40; Put is no accessor.
func TestReceiverLoadOfFixtures(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		for fixture, want := range map[string]int64{"key_namespace": 0, "error_resultcode": 40} {
			code, err := os.ReadFile("testdata/" + arch + "_" + fixture + ".bin")
			must(t, err)
			if off, ok := receiverLoad(arch, code); !ok || off != want {
				t.Errorf("%s %s: receiverLoad = %d, %v; want %d, true", arch, fixture, off, ok, want)
			}
		}
		put, err := os.ReadFile("testdata/" + arch + "_client_put.bin")
		must(t, err)
		if off, ok := receiverLoad(arch, put); ok {
			t.Errorf("%s (*Client).Put read as an accessor of offset %d", arch, off)
		}
	}
}

// Every accessor the layout is derived from is `return recv.field` in the source of every
// supported client version: its load displacement is the field's offset.
func TestFieldAccessorsReturnTheirField(t *testing.T) {
	for _, version := range ClientVersions {
		t.Run(version, func(t *testing.T) {
			methods := clientMethods(t, version)
			for _, a := range fieldAccessors {
				fd, ok := methods[a.Method]
				if !ok {
					t.Errorf("%s has no %s", version, a.Method)
					continue
				}
				if got := returnedField(fd); got != a.Field.Field {
					t.Errorf("%s: %s returns %q, want just its receiver's %s", version, a.Method, got, a.Field.Field)
				}
			}
		})
	}
}

// returnedField is the receiver field a method's one return statement returns, if that is
// all the method does.
func returnedField(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List[0].Names) != 1 || fd.Body == nil || len(fd.Body.List) != 1 {
		return ""
	}
	ret, ok := fd.Body.List[0].(*ast.ReturnStmt)
	if !ok || len(ret.Results) != 1 {
		return ""
	}
	sel, ok := ret.Results[0].(*ast.SelectorExpr)
	if !ok {
		return ""
	}
	if x, ok := sel.X.(*ast.Ident); !ok || x.Name != fd.Recv.List[0].Names[0].Name {
		return ""
	}
	return sel.Sel.Name
}

// clientMethods parses the client module of version (from the module cache, downloading
// it through the module proxy if needed) and indexes its pointer-receiver methods as
// "(*T).M".
func clientMethods(t *testing.T, version string) map[string]*ast.FuncDecl {
	t.Helper()
	mod := ClientModulePrefix + "/" + semver.Major(version) + "@" + version
	cmd := exec.Command("go", "mod", "download", "-json", mod)
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v\n%s", mod, err, out)
	}
	var info struct{ Dir string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		t.Fatalf("go mod download %s: %s (%v)", mod, out, err)
	}
	files, err := filepath.Glob(filepath.Join(info.Dir, "*.go"))
	must(t, err)
	methods := map[string]*ast.FuncDecl{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.SkipObjectResolution)
		must(t, err)
		for _, d := range file.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv == nil {
				continue
			}
			if star, ok := fd.Recv.List[0].Type.(*ast.StarExpr); ok {
				if id, ok := star.X.(*ast.Ident); ok {
					methods["(*"+id.Name+")."+fd.Name.Name] = fd
				}
			}
		}
	}
	return methods
}

// A stripped build of a version the table lacks (v7.10.2 code that says it is v7.10.9,
// beyond every tabulated v7) gets the layout its own accessors show, matched with v7.10.2,
// the nearest tabulated version, and the fields every tabulated version places alike; the
// others are unknown. When its code contradicts every neighbour, the open is refused.
func checkDerivedUnknownVersion(t *testing.T, unknownVersion string) {
	t.Helper()
	b, err := Open(unknownVersion)
	if err != nil {
		t.Fatalf("Open(v7.10.9 stripped): %v", err)
	}
	if got := b.DerivedFrom(); got != "v7.10.2" {
		t.Errorf("DerivedFrom = %q, want v7.10.2", got)
	}
	known := 0
	for _, ref := range RequiredFields {
		want := offsetsTable[tableKey{"v7.10.2", "amd64"}][ref]
		varies := false
		for _, v := range TableVersions("amd64") {
			if o, ok := offsetsTable[tableKey{v, "amd64"}][ref]; !ok || o != want {
				varies = true
			}
		}
		got, err := b.FieldOffset(ref.Struct, ref.Field)
		if want == Missing || varies {
			if !errors.Is(err, ErrNoField) {
				t.Errorf("%s: %d, %v; want ErrNoField", ref, got, err)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("%s: %d, %v; want v7.10.2's %d", ref, got, err, want)
		}
		known++
	}
	// Key, AerospikeError, Statement, BatchRecord, Connection, Node and Host: all the
	// fields the operation counts and server.address need; and Recordset's count of
	// running workers, which no version moved.
	if known != 12 {
		t.Errorf("%d fields known, want 12", known)
	}
	b.Close()

	// The same code, with v7.10.2 (its only neighbour) placing Key.setName elsewhere.
	real := offsetsTable[tableKey{"v7.10.2", "amd64"}]
	moved := map[FieldRef]int64{}
	for k, v := range real {
		moved[k] = v
	}
	moved[FieldRef{"Key", "setName"}] = 24
	offsetsTable[tableKey{"v7.10.2", "amd64"}] = moved
	defer func() { offsetsTable[tableKey{"v7.10.2", "amd64"}] = real }()
	_, err = Open(unknownVersion)
	want := unknownVersion + " uses aerospike-client-go v7.10.9, is stripped (no DWARF) and v7.10.9/amd64 is not in the offsets table (" +
		strings.Join(TableVersions("amd64"), ", ") + "); its own code does not settle the struct layout (its layout matches no neighbouring tabulated version (v7.10.2: Key.setName at 16, not 24)): build the service without -ldflags=-s -w, or add the version to internal/inspect/versions.go and run make offsets"
	if !errors.Is(err, ErrUnsupportedClient) || err == nil || err.Error() != want {
		t.Errorf("contradicted layout: Open = %v\nwant %s", err, want)
	}
}
