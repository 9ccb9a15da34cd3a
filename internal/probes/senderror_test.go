package probes

import (
	"go/ast"
	"testing"

	"github.com/asobserve/asobserve/internal/inspect"
)

// The errsink row counts a scan's or query's error where sendError sends it on
// (SentThrough), because sendError drops the errors of an inactive recordset: in every
// tabulated version each of its channel sends is under its IsActive check, and it has one.
func TestSendErrorSendsOnlyToAnActiveRecordset(t *testing.T) {
	var row *Row
	for i := range Rows {
		if Rows[i].Kind == KindErrsink {
			row = &Rows[i]
		}
	}
	if row == nil || row.SentThrough != "runtime.chansend1" {
		t.Fatalf("errsink row %+v: want one that counts at its runtime.chansend1 calls", row)
	}
	for _, version := range inspect.TableVersions("amd64") {
		fd := clientSource(t, version)["(*Recordset).sendError"]
		if fd == nil {
			t.Errorf("%s: no (*Recordset).sendError", version)
			continue
		}
		guarded, unguarded := 0, 0
		var walk func(n ast.Node, active bool)
		walk = func(n ast.Node, active bool) {
			ast.Inspect(n, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.IfStmt:
					if isActiveCheck(n.Cond) && n.Else == nil {
						walk(n.Body, true)
						return false
					}
				case *ast.SendStmt:
					if active {
						guarded++
					} else {
						unguarded++
					}
				}
				return true
			})
		}
		walk(fd.Body, false)
		if guarded == 0 || unguarded != 0 {
			t.Errorf("%s: %d channel sends under IsActive, %d not: want some, all under it", version, guarded, unguarded)
		}
	}
}

func isActiveCheck(e ast.Expr) bool {
	c, ok := e.(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := c.Fun.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "IsActive"
}
