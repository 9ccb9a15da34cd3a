// Package targetsrc renders and builds the compatibility-matrix target programs under
// testdata/targets. The v6, v7 and v8 targets are one template
// (testdata/targets/template/main.go.tmpl) rendered with each major's differences as
// data; each major keeps only its go.mod and go.sum, which pin the client version. A
// rendered module also gets copies of this module's clienterr and outcome packages, so
// a target's ground truth classifies errors with the very code the agent, the in-process
// wrapper and the reference workload use. The targets cannot import this module: they
// are built with toolchains as old as go1.21, and this module needs a newer one.
package targetsrc

import (
	"bytes"
	"fmt"
	"go/format"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/template"
)

// clientModulePrefix is the client's module path without its major version suffix.
const clientModulePrefix = "github.com/aerospike/aerospike-client-go/"

// major holds what differs between the client majors' target programs.
type major struct {
	// BatchReadTakesPolicy is false for v6, whose NewBatchRead(key, binNames) has no
	// per-record policy argument.
	BatchReadTakesPolicy bool
}

var majors = map[string]major{
	"v6": {BatchReadTakesPolicy: false},
	"v7": {BatchReadTakesPolicy: true},
	"v8": {BatchReadTakesPolicy: true},
}

// sharedPackages are the packages of this module that a rendered target imports, under
// the same path relative to the target's module.
var sharedPackages = []string{"internal/clienterr", "internal/outcome"}

// Majors returns the client majors whose target is rendered from the template, in order.
func Majors() []string {
	return slices.Sorted(maps.Keys(majors))
}

// Render writes the buildable module of target client (a directory under
// testdata/targets of the repository at root, e.g. "v7" or "otel") into dir. Every file
// of the target's directory is copied; for a client major, main.go is rendered from the
// template and the shared packages are copied with their imports pointed at the target's
// module and client major.
func Render(root, client, dir string) error {
	from := filepath.Join(root, "testdata", "targets", client)
	if err := copyFiles(from, dir, everyFile, os.ReadFile); err != nil {
		return err
	}
	m, templated := majors[client]
	if !templated {
		return nil
	}
	targetModule, err := modulePath(filepath.Join(from, "go.mod"))
	if err != nil {
		return err
	}
	clientModule := clientModulePrefix + client
	if err := renderMain(root, m, client, clientModule, targetModule, dir); err != nil {
		return err
	}
	ownModule, err := modulePath(filepath.Join(root, "go.mod"))
	if err != nil {
		return err
	}
	imports := importRewriter{ownModule: ownModule, targetModule: targetModule, clientModule: clientModule}
	for _, pkg := range sharedPackages {
		if err := copyFiles(filepath.Join(root, pkg), filepath.Join(dir, pkg), nonTestGoFile, imports.rewrite); err != nil {
			return err
		}
	}
	return nil
}

// renderMain writes the template, rendered for one client major, as dir/main.go.
func renderMain(root string, m major, client, clientModule, targetModule, dir string) error {
	data := struct {
		major
		Client, ClientModule, Module string
	}{m, client, clientModule, targetModule}
	tmplPath := filepath.Join(root, "testdata", "targets", "template", "main.go.tmpl")
	tmpl, err := template.New(filepath.Base(tmplPath)).Option("missingkey=error").ParseFiles(tmplPath)
	if err != nil {
		return err
	}
	var main bytes.Buffer
	if err := tmpl.Execute(&main, data); err != nil {
		return err
	}
	src, err := format.Source(main.Bytes())
	if err != nil {
		return fmt.Errorf("rendered %s target: %v", client, err)
	}
	return os.WriteFile(filepath.Join(dir, "main.go"), src, 0o644)
}

// Build names one target binary: a target module built with a Go toolchain and extra
// build flags.
type Build struct {
	Client string // the directory under testdata/targets: "v6", "v7", "v8" or "otel"
	// Version is the client release to build against ("v7.2.0"); "" keeps the one the
	// target's go.mod pins. The target's other requirements stay as pinned, so an older
	// release builds with the same dependencies, which every toolchain of the matrix takes.
	Version   string
	Toolchain string   // GOTOOLCHAIN value, e.g. "go1.22.12"; "" or "local" for the default go
	Flags     []string // extra `go build` arguments, e.g. "-ldflags=-s -w", "-buildmode=pie"
}

// Render writes b's target module, requiring b.Version of the client, into dir.
func (b Build) Render(root, dir string) error {
	if err := Render(root, b.Client, dir); err != nil {
		return fmt.Errorf("render testdata/targets/%s: %v", b.Client, err)
	}
	if b.Version == "" {
		return nil
	}
	edit := exec.Command("go", "mod", "edit", "-require="+clientModulePrefix+b.Client+"@"+b.Version)
	edit.Dir = dir
	edit.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOWORK=off")
	if outb, err := edit.CombinedOutput(); err != nil {
		return fmt.Errorf("go mod edit: client %s: %v\n%s", b.Version, err, outb)
	}
	return nil
}

// Make renders b's target from the repository at root into the empty or missing
// directory dir and builds it into the executable out. The go command fetches missing
// modules (and a toolchain other than the local one) from the module proxy and updates
// go.sum in dir only, never in the repository.
func (b Build) Make(root, dir, out string) error {
	if err := b.Render(root, dir); err != nil {
		return err
	}
	args := append(append([]string{"build", "-o", out}, b.Flags...), ".")
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	toolchain := b.Toolchain
	if toolchain == "" {
		toolchain = "local"
	}
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN="+toolchain, "GOFLAGS=-mod=mod -buildvcs=false",
		"GOWORK=off", "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if outb, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("GOTOOLCHAIN=%s go %s (in testdata/targets/%s): %v\n%s", toolchain, strings.Join(args, " "), b.Client, err, outb)
	}
	return nil
}

// copyFiles writes into to, through convert, every regular file of from that keep accepts.
func copyFiles(from, to string, keep func(name string) bool, convert func(path string) ([]byte, error)) error {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !keep(e.Name()) {
			continue
		}
		b, err := convert(filepath.Join(from, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func everyFile(string) bool { return true }

func nonTestGoFile(name string) bool {
	return strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go")
}

// modulePath reads the module path from the module line of a go.mod file.
func modulePath(goMod string) (string, error) {
	b, err := os.ReadFile(goMod)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`), nil
		}
	}
	return "", fmt.Errorf("%s has no module line", goMod)
}

// importRewriter points a shared package's imports at the target module: this module's
// packages become the target's copies, and the client (whatever major the package was
// written against) becomes the target's major.
type importRewriter struct {
	ownModule, targetModule, clientModule string
}

// rewrite returns the source of the Go file with its imports rewritten.
func (r importRewriter) rewrite(file string) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	for _, spec := range f.Imports {
		path, err := strconv.Unquote(spec.Path.Value)
		if err != nil {
			return nil, err
		}
		switch {
		case strings.HasPrefix(path, r.ownModule+"/"):
			rel := strings.TrimPrefix(path, r.ownModule+"/")
			if !slices.Contains(sharedPackages, rel) {
				return nil, fmt.Errorf("%s imports %s, which a target module does not get a copy of", file, path)
			}
			path = r.targetModule + "/" + rel
		case strings.HasPrefix(path, clientModulePrefix):
			_, sub, _ := strings.Cut(strings.TrimPrefix(path, clientModulePrefix), "/")
			path = strings.TrimSuffix(r.clientModule+"/"+sub, "/")
		}
		spec.Path.Value = strconv.Quote(path)
	}
	var out bytes.Buffer
	if err := format.Node(&out, fset, f); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
