package probes

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strings"

	"golang.org/x/mod/semver"
)

// Field names a struct field of the client package, resolved per binary (DWARF or table).
// Struct is qualified with its import path when it is not the client's.
type Field struct{ Struct, Name string }

// Row is one probed function, as written in the table: what it is and where, by name, its
// arguments live. Everything the BPF programs need (register-ABI words, entry and return
// points) is derived from it, so a row reads like the client's own declaration.
type Row struct {
	// Func is the function's declaration as in the client source, parameter and result
	// names ours. It names the symbol and places every argument in register-ABI words.
	Func string
	// Pkg is the import path of a function outside the client package.
	Pkg   string
	Kind  Kind
	Op    string // db_operation_name of an operation row
	AltOp string // the operation when the AltIf slice is non-empty (Get with bins: select)
	AltIf string
	Stage StageID // the stage a stage row times
	Names Loc     // how namespace and set are found
	At    string  // the argument Names reads (LocStrings: the namespace, the set follows)
	Err   string  // the argument or result that holds the returned Error
	Ptr   string  // the recordset (async, errsink) or receiver (links, nodes) argument
	Flags Flags
	Corr  Field // Link: the command's slice field that shares the op's argument
	// Remaining: an async worker that is one of several (per-node queries of old
	// clients) names the field of Ptr's struct that points to the count of workers still
	// running, an int64; the op ends at the entry that finds it one (no other is left to
	// close the stream), or else at the return that finds it zero.
	Remaining Field
	// SentThrough, on an errsink row, names the function (in full) through which the
	// row's function hands the error to the caller: the error counts at those calls, not
	// at the entry, for the function may drop it (sendError does once the caller closed
	// the recordset, and the caller never sees it).
	SentThrough string
	// Counts lists the exported *Client methods whose calls the row counts besides its
	// own function's: callers that the compiler inlines into it (ScanAll, Query).
	Counts []string
	// Versions limits the row to some client versions; empty means every version.
	Versions Range
	// Optional: the function may be missing from a build (inlined, or dropped by the
	// linker). A required row that is missing refuses the attach.
	Optional bool
}

// Probe is a Row resolved for one client version: symbol and register words.
type Probe struct {
	Row
	Symbol   string // relative to the client package, or in full when External
	External bool
	LocWord  uint8
	AltWord  uint8
	ErrWord  uint8
	PtrWord  uint8
}

// Methods lists the exported *Client methods whose calls the probe counts.
func (p Probe) Methods() []string {
	var out []string
	if name, ok := strings.CutPrefix(p.Symbol, "(*Client)."); ok && !p.External && token.IsExported(name) {
		out = append(out, name)
	}
	return append(out, p.Counts...)
}

// NestedCallee reports whether a nested caller may call the probe's function.
func (p Probe) NestedCallee() bool { return !p.External && slices.Contains(NestedCallees, p.Symbol) }

// Counted reports whether the probe's function starts an operation that is counted.
func (p Probe) Counted() bool { return p.Kind == KindOp || p.Kind == KindAsyncStart }

// Entry reports whether the kind is probed at the function's entry.
func (k Kind) Entry() bool {
	switch k {
	case KindIoRead, KindParseEnd, KindSpanStart:
		return false
	}
	return true
}

// Return reports whether the kind is probed at every RET of the function.
func (k Kind) Return() bool {
	switch k {
	case KindErrsink, KindIoWrite, KindSpanEnd, KindStreamEnd:
		return false
	}
	return true
}

// ForTracing reports whether the row serves tracing only: the node an op was sent to, and
// the target's own OTel spans that become parents.
func (r Row) ForTracing() bool { return r.Flags&FlagNode != 0 || r.FollowsAppSpans() }

// FollowsAppSpans reports whether the row tracks the target's own OTel spans.
func (r Row) FollowsAppSpans() bool {
	return r.Kind == KindSpanStart || r.Kind == KindSpanEnd || r.Kind == KindSpawn
}

// Core reports whether the row serves the operation metrics: neither a stage nor tracing.
func (r Row) Core() bool { return !r.IsStage() && !r.ForTracing() }

// IsStage reports whether the row is attached only while stage profiling is on.
func (r Row) IsStage() bool {
	switch r.Kind {
	case KindStage, KindLink, KindIoWrite, KindIoRead, KindParseEnd, KindAttempt:
		return true
	}
	return false
}

// Fields lists the struct fields the BPF row reads for this row.
func (r Row) Fields() []Field {
	var out []Field
	if f, ok := locatorFields[r.Names]; ok {
		out = append(out, f...)
	}
	if r.Err != "" {
		out = append(out, errorFields...)
	}
	if r.Kind == KindLink {
		out = append(out, r.Corr)
	}
	if r.Remaining != (Field{}) {
		out = append(out, r.Remaining)
	}
	if r.Flags&FlagNode != 0 {
		out = append(out, ConnNode)
	}
	if r.Kind == KindSpanStart {
		out = append(out, SpanContext)
	}
	return out
}

// Range is a set of client versions: space-separated comparisons that all hold
// (">=v7.2.0 <v8.0.0"), alternatives separated by "||". Empty means every version.
type Range string

// Contains reports whether version (e.g. "v7.10.2") is in the range. A version that is
// not semver is in no bounded range.
func (rg Range) Contains(version string) bool {
	if rg == "" {
		return true
	}
	for _, alt := range strings.Split(string(rg), "||") {
		if rangeHolds(strings.Fields(alt), version) {
			return true
		}
	}
	return false
}

func rangeHolds(conds []string, version string) bool {
	if !semver.IsValid(version) {
		return false
	}
	for _, c := range conds {
		op := strings.TrimRight(c, "v0123456789.-+abcdefghijklmnopqrstuwxyz")
		c := semver.Compare(version, c[len(op):])
		var ok bool
		switch op {
		case ">=":
			ok = c >= 0
		case "<":
			ok = c < 0
		case "=":
			ok = c == 0
		}
		if !ok {
			return false
		}
	}
	return true
}

// valid reports a malformed range.
func (rg Range) valid() error {
	if rg == "" {
		return nil
	}
	for _, alt := range strings.Split(string(rg), "||") {
		conds := strings.Fields(alt)
		if len(conds) == 0 {
			return fmt.Errorf("range %q: empty alternative", rg)
		}
		for _, c := range conds {
			op := strings.TrimRight(c, "v0123456789.-+abcdefghijklmnopqrstuwxyz")
			if (op != ">=" && op != "<" && op != "=") || !semver.IsValid(c[len(op):]) {
				return fmt.Errorf("range %q: %q is not >=, < or = a semantic version", rg, c)
			}
		}
	}
	return nil
}

// abiRegisters is the number of integer argument registers of the Go register ABI on the
// architecture with fewer of them (amd64: 9; arm64 has 16). The BPF programs read no
// word beyond it.
const abiRegisters = 9

// namedWords gives the register words of the named types that the table's declarations
// use: the client's own, or qualified. Floats are not allowed (they take other registers);
// onStack marks types that the ABI always passes in memory (they hold arrays).
var namedWords = map[string]int{
	"bool": 1, "int": 1, "int64": 1, "uint64": 1, "int32": 1, "uint32": 1, "uintptr": 1,
	"string": 2, "error": 2, "any": 2,
	"Error": 2, "BatchRecordIfc": 2, "Policy": 2, "Value": 2, "command": 2,
	"BinMap": 1, "context.Context": 2, "CommitStatus": 2, "AbortStatus": 2,
	"trace.SpanContext": onStack, "SamplingResult": 7, // Decision, Attributes, Tracestate
}

const onStack = -1

func wordsOf(e ast.Expr) (int, error) {
	switch t := e.(type) {
	case *ast.StarExpr, *ast.MapType, *ast.ChanType, *ast.FuncType:
		return 1, nil
	case *ast.ArrayType:
		if t.Len == nil {
			return 3, nil
		}
	case *ast.Ellipsis:
		return 3, nil
	case *ast.InterfaceType:
		return 2, nil
	case *ast.Ident:
		if n, ok := namedWords[t.Name]; ok {
			return n, nil
		}
	case *ast.SelectorExpr:
		if x, ok := t.X.(*ast.Ident); ok {
			if n, ok := namedWords[x.Name+"."+t.Sel.Name]; ok {
				return n, nil
			}
		}
	}
	return 0, fmt.Errorf("type %s: its register words are not known to the probe table", exprString(e))
}

func exprString(e ast.Expr) string {
	var b strings.Builder
	writeExpr(&b, e)
	return b.String()
}

func writeExpr(b *strings.Builder, e ast.Expr) {
	switch t := e.(type) {
	case *ast.Ident:
		if t.Name == "any" { // the same type, spelled two ways across client versions
			b.WriteString("interface{}")
			return
		}
		b.WriteString(t.Name)
	case *ast.StarExpr:
		b.WriteString("*")
		writeExpr(b, t.X)
	case *ast.SelectorExpr:
		writeExpr(b, t.X)
		b.WriteString("." + t.Sel.Name)
	case *ast.ArrayType:
		b.WriteString("[]")
		writeExpr(b, t.Elt)
	case *ast.Ellipsis:
		b.WriteString("...")
		writeExpr(b, t.Elt)
	case *ast.MapType:
		b.WriteString("map[")
		writeExpr(b, t.Key)
		b.WriteString("]")
		writeExpr(b, t.Value)
	case *ast.InterfaceType:
		b.WriteString("interface{}")
	case *ast.FuncType:
		b.WriteString("func(...)")
	case *ast.ChanType:
		b.WriteString("chan ")
		writeExpr(b, t.Value)
	default:
		fmt.Fprintf(b, "%T", e)
	}
}

// Decl is a row's parsed declaration: its symbol and where each named argument lives.
type Decl struct {
	Symbol string
	// Params and Results in order, receiver first; Types are as written.
	Params, Results []Arg
}

// Arg is one named argument or result and its first register word (NoWord: on the stack).
type Arg struct {
	Name, Type string
	Word       uint8
}

// ParseDecl parses a Go function declaration (without a body).
func ParseDecl(src string) (Decl, error) {
	f, err := parser.ParseFile(token.NewFileSet(), "", "package p\n"+src, parser.SkipObjectResolution)
	if err != nil || len(f.Decls) != 1 {
		return Decl{}, fmt.Errorf("declaration %q: %v", src, err)
	}
	fd, ok := f.Decls[0].(*ast.FuncDecl)
	if !ok {
		return Decl{}, fmt.Errorf("declaration %q is not a function", src)
	}
	d := Decl{Symbol: symbolOf(fd)}
	params, results := fieldsOf(fd)
	if d.Params, err = place(params); err != nil {
		return Decl{}, fmt.Errorf("%s: %w", d.Symbol, err)
	}
	if d.Results, err = place(results); err != nil {
		return Decl{}, fmt.Errorf("%s: %w", d.Symbol, err)
	}
	return d, nil
}

// symbolOf is a function's symbol as the Go linker names it within its package.
func symbolOf(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	recv := fd.Recv.List[0].Type
	if _, ptr := recv.(*ast.StarExpr); ptr {
		return "(" + exprString(recv) + ")." + fd.Name.Name
	}
	return exprString(recv) + "." + fd.Name.Name
}

// fieldsOf returns the parameters, receiver first, and the results of a declaration.
func fieldsOf(fd *ast.FuncDecl) (params, results []*ast.Field) {
	if fd.Recv != nil {
		params = append(params, fd.Recv.List...)
	}
	params = append(params, fd.Type.Params.List...)
	if fd.Type.Results != nil {
		results = fd.Type.Results.List
	}
	return params, results
}

// typesOf lists the type of every parameter or result, one per name.
func typesOf(fields []*ast.Field) []string {
	var out []string
	for _, f := range fields {
		for range max(1, len(f.Names)) {
			out = append(out, exprString(f.Type))
		}
	}
	return out
}

// place assigns register words in order, as the Go register ABI does for integer and
// pointer values: an argument that does not fit in the remaining registers goes to the
// stack, and the ones after it may still fit.
func place(fields []*ast.Field) ([]Arg, error) {
	var out []Arg
	next := 0
	for _, f := range fields {
		n, err := wordsOf(f.Type)
		if err != nil {
			return nil, err
		}
		names := f.Names
		if len(names) == 0 {
			names = []*ast.Ident{{Name: "_"}}
		}
		for _, name := range names {
			a := Arg{Name: name.Name, Type: exprString(f.Type), Word: NoWord}
			if n != onStack && next+n <= abiRegisters {
				a.Word = uint8(next)
				next += n
			}
			out = append(out, a)
		}
	}
	return out, nil
}

// find returns the named argument, parameters first.
func (d Decl) find(name string) (Arg, bool) {
	for _, list := range [][]Arg{d.Params, d.Results} {
		for _, a := range list {
			if a.Name == name {
				return a, true
			}
		}
	}
	return Arg{}, false
}

// word resolves a named argument to its register word; "" is NoWord.
func (d Decl) word(name string, offset int) (uint8, error) {
	if name == "" {
		return NoWord, nil
	}
	a, ok := d.find(name)
	if !ok {
		return 0, fmt.Errorf("%s has no argument %q", d.Symbol, name)
	}
	if a.Word == NoWord || int(a.Word)+offset >= abiRegisters {
		return 0, fmt.Errorf("%s: argument %q is passed on the stack, which the probes do not read", d.Symbol, name)
	}
	return a.Word + uint8(offset), nil
}

// Resolve places the row's named arguments in register words.
func (r Row) Resolve() (Probe, error) {
	d, err := ParseDecl(r.Func)
	if err != nil {
		return Probe{}, err
	}
	p := Probe{Row: r, Symbol: d.Symbol, External: r.Pkg != ""}
	if p.External {
		p.Symbol = r.Pkg + "." + d.Symbol
	}
	if err := r.Versions.valid(); err != nil {
		return Probe{}, fmt.Errorf("%s: %w", d.Symbol, err)
	}
	if r.Names == LocStrings {
		if a, _ := d.find(r.At); a.Type != "string" || r.setAfter(d) != "string" {
			return Probe{}, fmt.Errorf("%s: namespace %q must be a string followed by the set string", d.Symbol, r.At)
		}
	}
	if r.Remaining != (Field{}) && (r.Kind != KindAsyncWorker || r.Ptr == "") {
		return Probe{}, fmt.Errorf("%s: only an async worker row with a recordset counts remaining workers", d.Symbol)
	}
	if r.SentThrough != "" && r.Kind != KindErrsink {
		return Probe{}, fmt.Errorf("%s: only an errsink row hands its error on through a call", d.Symbol)
	}
	if r.Kind == KindStreamEnd && r.Ptr == "" {
		return Probe{}, fmt.Errorf("%s: a stream end row needs the recordset whose stream it ends", d.Symbol)
	}
	if (r.Names == LocNone) != (r.At == "") {
		return Probe{}, fmt.Errorf("%s: a locator needs the argument it reads, and only then", d.Symbol)
	}
	altOffset := 1 // a slice's length word
	for _, w := range []struct {
		name   string
		offset int
		dst    *uint8
	}{{r.At, 0, &p.LocWord}, {r.AltIf, altOffset, &p.AltWord}, {r.Err, 0, &p.ErrWord}, {r.Ptr, 0, &p.PtrWord}} {
		if *w.dst, err = d.word(w.name, w.offset); err != nil {
			return Probe{}, err
		}
	}
	if r.Names == LocStrings {
		if _, err := d.word(r.At, 3); err != nil { // the set string's length word
			return Probe{}, err
		}
	}
	return p, nil
}

// setAfter is the type of the parameter after the namespace one.
func (r Row) setAfter(d Decl) string {
	for i, a := range d.Params {
		if a.Name == r.At && i+1 < len(d.Params) {
			return d.Params[i+1].Type
		}
	}
	return ""
}
