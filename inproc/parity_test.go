package inproc

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	as "github.com/aerospike/aerospike-client-go/v7"

	"github.com/asobserve/asobserve/internal/probes"
	"github.com/asobserve/asobserve/internal/testserver"
)

// wrapperMethods lists the methods this package declares on *Client itself: any other
// method of *Client is the embedded client's, and its calls are not recorded.
func wrapperMethods(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv == nil {
				continue
			}
			if star, ok := fd.Recv.List[0].Type.(*ast.StarExpr); ok {
				if id, ok := star.X.(*ast.Ident); ok && id.Name == "Client" {
					out[fd.Name.Name] = true
				}
			}
		}
	}
	return out
}

// countedMethods maps every exported client method that the probe table counts for the
// client the wrapper serves to the operation name eBPF mode records for it.
func countedMethods(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range probes.ForMajor(7) { // the wrapper serves the newest v7 (go.mod)
		if !p.Counted() {
			continue
		}
		for _, m := range p.Methods() {
			out[m] = p.Op
		}
	}
	return out
}

// The two modes must not drift: every method the probe table counts is overridden by the
// wrapper, and the wrapper records it under the name eBPF mode gives it.
func TestWrapperRecordsEveryCountedMethodUnderItsTableName(t *testing.T) {
	fresh(t)
	counted := countedMethods(t)
	declared := wrapperMethods(t)
	if len(counted) < 30 {
		t.Fatalf("the table counts only %d methods: %v", len(counted), counted)
	}
	_, cl := startServer(t, testserver.Config{Nodes: 1})
	c := Wrap(cl)
	args := newParityArgs(t, cl)
	wrapper := reflect.ValueOf(c)
	for method, op := range counted {
		if !declared[method] {
			t.Errorf("inproc.Client does not override %s: its calls would not be recorded (eBPF mode counts them as %s)", method, op)
			continue
		}
		m := wrapper.MethodByName(method)
		in := args.for_(t, method, m.Type())
		before := opCounts(t, op)
		out := m.Call(in)
		args.finish(t, method, in, out)
		deadline := time.Now().Add(5 * time.Second)
		for opCounts(t, op) != before+1 {
			if time.Now().After(deadline) {
				t.Errorf("%s: %s count %d, want %d: the wrapper does not record it as eBPF mode does", method, op, opCounts(t, op), before+1)
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// opCounts sums the recorded operations named op, over every label set.
func opCounts(t *testing.T, op string) uint64 {
	var n uint64
	for k, s := range opSeries(t, state().rec.Registry, "") {
		if k.Op == op {
			n += s.Count
		}
	}
	return n
}

type parityObject struct {
	A int `as:"a"`
}

// parityArgs builds a call's arguments from its parameter types.
type parityArgs struct {
	cl  *as.Client
	key *as.Key
}

func newParityArgs(t *testing.T, cl *as.Client) *parityArgs {
	k := key(t, "parity", "p1")
	must(t, cl.Put(nil, k, as.BinMap{"a": 1}))
	return &parityArgs{cl: cl, key: k}
}

func (p *parityArgs) for_(t *testing.T, method string, ft reflect.Type) []reflect.Value {
	t.Helper()
	var in []reflect.Value
	strs := []string{"test", "parity"} // namespace and set, in that order
	if strings.Contains(method, "Execute") {
		strs = []string{"pkg", "echo"} // a UDF package and the test server's echo function
	}
	for i := range ft.NumIn() {
		typ := ft.In(i)
		if ft.IsVariadic() && i == ft.NumIn()-1 {
			if method == "QueryExecute" {
				in = append(in, reflect.ValueOf(as.PutOp(as.NewBin("b", 2))))
			}
			continue // no further variadic arguments: Get without bin names is get
		}
		switch typ {
		case reflect.TypeOf(p.key):
			in = append(in, reflect.ValueOf(p.key))
		case reflect.TypeOf([]*as.Key{}):
			in = append(in, reflect.ValueOf([]*as.Key{p.key}))
		case reflect.TypeOf(as.BinMap{}):
			in = append(in, reflect.ValueOf(as.BinMap{"a": 1}))
		case reflect.TypeOf([]*as.BatchRead{}):
			in = append(in, reflect.ValueOf([]*as.BatchRead{as.NewBatchRead(nil, p.key, []string{"a"})}))
		case reflect.TypeOf([]as.BatchRecordIfc{}):
			in = append(in, reflect.ValueOf([]as.BatchRecordIfc{as.NewBatchRead(nil, p.key, []string{"a"})}))
		case reflect.TypeOf(&as.Statement{}):
			in = append(in, reflect.ValueOf(as.NewStatement("test", "parity")))
		case reflect.TypeOf(&as.PartitionFilter{}):
			in = append(in, reflect.ValueOf(as.NewPartitionFilterAll()))
		case reflect.TypeOf(&as.Node{}):
			in = append(in, reflect.ValueOf(p.cl.GetNodes()[0]))
		case reflect.TypeOf([]interface{}{}):
			in = append(in, reflect.ValueOf([]interface{}{&parityObject{}}))
		case reflect.TypeOf((*interface{})(nil)).Elem():
			if strings.HasSuffix(method, "Objects") {
				in = append(in, reflect.ValueOf(make(chan *parityObject, 16)))
			} else {
				in = append(in, reflect.ValueOf(&parityObject{A: 1}))
			}
		case reflect.TypeOf(""):
			in = append(in, reflect.ValueOf(strs[0]))
			strs = strs[1:]
		default:
			if typ.Kind() != reflect.Pointer || !strings.HasSuffix(typ.Elem().Name(), "Policy") {
				t.Fatalf("%s: no test argument for a %s", method, typ)
			}
			in = append(in, reflect.Zero(typ)) // the client's default policy
		}
	}
	return in
}

// finish reads a streaming call to its end, as a caller does, so that it is recorded.
func (p *parityArgs) finish(t *testing.T, method string, in, out []reflect.Value) {
	t.Helper()
	rs, ok := out[0].Interface().(*as.Recordset)
	if !ok || rs == nil {
		return
	}
	for _, v := range in {
		if v.Kind() == reflect.Chan {
			for {
				if _, ok := v.Recv(); !ok {
					return
				}
			}
		}
	}
	for range rs.Results() { //nolint:revive // drained to reach the end
	}
}
