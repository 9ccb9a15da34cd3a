package probes

import (
	"go/ast"
	"slices"
	"testing"

	"golang.org/x/mod/semver"

	"github.com/asobserve/asobserve/internal/inspect"
)

// Every probed operation that a nested caller calls is a nested callee: the others skip
// the caller check, so a missing one would count a batch's one-key node share twice.
func TestNestedCalleesAreEveryProbedCallOfANestedCaller(t *testing.T) {
	checked := 0
	eachNestedCaller(t, func(t *testing.T, src map[string]*ast.FuncDecl, probed map[string]bool, caller string) {
		fd, ok := src[caller]
		if !ok {
			return // inlined-only callers are checked by TestDeclarationsMatchTheClientSource
		}
		for _, callee := range clientCalls(fd) {
			if probed[callee] && !slices.Contains(NestedCallees, callee) {
				t.Errorf("%s calls %s, which the table probes, but NestedCallees does not list it", caller, callee)
			}
			if probed[callee] {
				checked++
			}
		}
	})
	if checked == 0 {
		t.Fatal("no nested caller calls a probed operation in any tabulated version: the check looked at nothing")
	}
}

// The entry of a nested callee reads its caller's caller only when its caller is itself a
// nested callee (Operate, for operate): every other client method a nested caller calls
// must call no probed operation, and every probed operation a nested callee calls must be
// a nested callee, or a batch's one-key node share would count twice.
func TestNestedCallsReachProbedOperationsOnlyThroughNestedCallees(t *testing.T) {
	checked := 0
	eachNestedCaller(t, func(t *testing.T, src map[string]*ast.FuncDecl, probed map[string]bool, caller string) {
		fd, ok := src[caller]
		if !ok {
			return
		}
		for _, mid := range clientCalls(fd) {
			body, ok := src[mid]
			if !ok {
				continue
			}
			checked++
			for _, callee := range clientCalls(body) {
				if probed[callee] && !slices.Contains(NestedCallees, mid) {
					t.Errorf("%s calls %s, which is no nested callee and calls the probed %s", caller, mid, callee)
				}
				if probed[callee] && !slices.Contains(NestedCallees, callee) {
					t.Errorf("%s calls %s, which calls the probed %s, but NestedCallees does not list it", caller, mid, callee)
				}
			}
		}
	})
	if checked == 0 {
		t.Fatal("no nested caller calls a client method in any tabulated version: the check looked at nothing")
	}
}

// eachNestedCaller runs check on every nested caller of every tabulated client version,
// with that version's client source and the symbols its table counts.
func eachNestedCaller(t *testing.T, check func(t *testing.T, src map[string]*ast.FuncDecl, probed map[string]bool, caller string)) {
	for _, version := range inspect.TableVersions("amd64") {
		major := int(semver.Major(version)[1] - '0')
		callers := NestedFor(major, version)
		if len(callers) == 0 {
			continue
		}
		t.Run(version, func(t *testing.T) {
			src := clientSource(t, version)
			rows, err := ForVersion(major, version)
			if err != nil {
				t.Fatal(err)
			}
			probed := map[string]bool{}
			for _, p := range rows {
				if p.Counted() && !p.External {
					probed[p.Symbol] = true
				}
			}
			for _, caller := range callers {
				check(t, src, probed, caller)
			}
		})
	}
}

// clientCalls lists the *Client methods fd calls on its receiver or a parameter of type
// *Client or clientIfc, as symbols ("(*Client).Get").
func clientCalls(fd *ast.FuncDecl) []string {
	clients := map[string]bool{}
	params := fd.Type.Params.List
	if fd.Recv != nil {
		params = append(slices.Clone(fd.Recv.List), params...)
	}
	for _, f := range params {
		if typ := exprString(f.Type); typ == "*Client" || typ == "clientIfc" {
			for _, n := range f.Names {
				clients[n.Name] = true
			}
		}
	}
	var out []string
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if id, ok := sel.X.(*ast.Ident); ok && clients[id.Name] {
			out = append(out, "(*Client)."+sel.Sel.Name)
		}
		return true
	})
	return out
}
