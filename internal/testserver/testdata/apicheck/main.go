// Command apicheck drives the client's object API, batch UDF, background jobs and
// stream aggregation against a test server and exits non-zero at the first result that
// differs from what the server must produce. The testserver tests build it once per
// client major (this file imports v8; they rewrite the import for the others) and run
// it with -check all, or one named check with a fault injected.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"
)

type person struct {
	Name string `as:"name"`
	Age  int    `as:"age"`
}

// checks are run in this order by -check all, then majorChecks: those of the client
// major only (major_v8.go for v8, major_other.go for the others). Checks named
// fault_* expect a fault the caller injects, so they run only when named.
var checks = []struct {
	name string
	run  func(cl *as.Client) error
}{
	{"objects", checkObjects},
	{"batch_execute", checkBatchExecute},
	{"background", checkBackground},
	{"aggregate", checkAggregate},
}

var luaDir = flag.String("lua", "", "directory holding asobserve_aggregate.lua")

func main() {
	hosts := flag.String("hosts", "127.0.0.1:3000", "comma-separated host:port list")
	check := flag.String("check", "all", "the check to run, or all")
	flag.Parse()
	as.SetLuaPath(*luaDir + string(filepath.Separator))
	var hs []*as.Host
	for _, h := range strings.Split(*hosts, ",") {
		host, port, _ := strings.Cut(h, ":")
		p, _ := strconv.Atoi(port)
		hs = append(hs, as.NewHost(host, p))
	}
	cl, err := as.NewClientWithPolicyAndHost(nil, hs...)
	if err != nil {
		fail("connect: %v", err)
	}
	defer cl.Close()
	ran := 0
	for _, c := range append(checks, majorChecks...) {
		if *check != c.name && (*check != "all" || strings.HasPrefix(c.name, "fault_")) {
			continue
		}
		if err := c.run(cl); err != nil {
			fail("%s: %v", c.name, err)
		}
		fmt.Println("ok", c.name)
		ran++
	}
	if ran == 0 {
		fail("no check named %q", *check)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func key(set string, v any) *as.Key {
	k, err := as.NewKey("test", set, v)
	if err != nil {
		fail("key: %v", err)
	}
	return k
}

func people(ages ...int) []person {
	out := make([]person, len(ages))
	for i, a := range ages {
		out[i] = person{Name: fmt.Sprintf("p%d", a), Age: a}
	}
	return out
}

// drain reads an object recordset to its end, objects and errors together.
func drain(rs *as.Recordset, ch chan *person) ([]person, error) {
	var got []person
	var first error
	objects, errs := ch, rs.Errors()
	for objects != nil || errs != nil {
		select {
		case p, ok := <-objects:
			if !ok {
				objects = nil
				continue
			}
			got = append(got, *p)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			if first == nil {
				first = err
			}
		}
	}
	slices.SortFunc(got, func(a, b person) int { return a.Age - b.Age })
	return got, first
}

func checkObjects(cl *as.Client) error {
	var keys []*as.Key
	for i := 0; i < 10; i++ {
		k := key("obj", i)
		keys = append(keys, k)
		if err := cl.PutObject(nil, k, &people(i)[0]); err != nil {
			return fmt.Errorf("PutObject: %v", err)
		}
	}
	var got person
	if err := cl.GetObject(nil, keys[3], &got); err != nil || got != people(3)[0] {
		return fmt.Errorf("GetObject = %+v, %v", got, err)
	}
	objs := []any{&person{}, &person{}}
	found, err := cl.BatchGetObjects(nil, []*as.Key{keys[1], key("obj", "missing")}, objs)
	if err != nil || !slices.Equal(found, []bool{true, false}) || *objs[0].(*person) != people(1)[0] {
		return fmt.Errorf("BatchGetObjects = %v %+v, %v", found, objs[0], err)
	}
	all := people(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	stmt := func() *as.Statement {
		s := as.NewStatement("test", "obj")
		_ = s.SetFilter(as.NewRangeFilter("age", 2, 5))
		return s
	}
	streams := []struct {
		name string
		want []person
		run  func(ch chan *person) (*as.Recordset, as.Error)
	}{
		{"ScanAllObjects", all, func(ch chan *person) (*as.Recordset, as.Error) { return cl.ScanAllObjects(nil, ch, "test", "obj") }},
		{"ScanPartitionObjects", all, func(ch chan *person) (*as.Recordset, as.Error) {
			return cl.ScanPartitionObjects(nil, ch, as.NewPartitionFilterAll(), "test", "obj")
		}},
		{"QueryObjects", people(2, 3, 4, 5), func(ch chan *person) (*as.Recordset, as.Error) { return cl.QueryObjects(nil, stmt(), ch) }},
		{"QueryPartitionObjects", people(2, 3, 4, 5), func(ch chan *person) (*as.Recordset, as.Error) {
			return cl.QueryPartitionObjects(nil, stmt(), ch, as.NewPartitionFilterAll())
		}},
	}
	for _, s := range streams {
		ch := make(chan *person, 4)
		rs, err := s.run(ch)
		if err != nil {
			return fmt.Errorf("%s: %v", s.name, err)
		}
		if got, err := drain(rs, ch); err != nil || !slices.Equal(got, s.want) {
			return fmt.Errorf("%s = %+v, %v", s.name, got, err)
		}
	}
	var scanned, queried []person
	for _, n := range cl.GetNodes() {
		ch := make(chan *person, 4)
		rs, err := cl.ScanNodeObjects(nil, n, ch, "test", "obj")
		if err != nil {
			return fmt.Errorf("ScanNodeObjects: %v", err)
		}
		got, streamErr := drain(rs, ch)
		if streamErr != nil {
			return fmt.Errorf("ScanNodeObjects: %v", streamErr)
		}
		scanned = append(scanned, got...)
		ch = make(chan *person, 4)
		if rs, err = cl.QueryNodeObjects(nil, n, stmt(), ch); err != nil {
			return fmt.Errorf("QueryNodeObjects: %v", err)
		}
		if got, streamErr = drain(rs, ch); streamErr != nil {
			return fmt.Errorf("QueryNodeObjects: %v", streamErr)
		}
		queried = append(queried, got...)
	}
	slices.SortFunc(scanned, func(a, b person) int { return a.Age - b.Age })
	slices.SortFunc(queried, func(a, b person) int { return a.Age - b.Age })
	if !slices.Equal(scanned, all) || !slices.Equal(queried, people(2, 3, 4, 5)) {
		return fmt.Errorf("per-node objects: scanned %+v, queried %+v", scanned, queried)
	}
	return nil
}

func checkBatchExecute(cl *as.Client) error {
	keys := []*as.Key{key("bu", 1), key("bu", 2)}
	if err := cl.Put(nil, keys[0], as.BinMap{"n": 10}); err != nil {
		return err
	}
	brs, err := cl.BatchExecute(nil, nil, keys, "asobserve", "add", as.NewValue("n"), as.NewValue(5))
	if err != nil || brs[0].Record.Bins["SUCCESS"] != 15 || brs[1].Record.Bins["SUCCESS"] != 5 {
		return fmt.Errorf("BatchExecute = %v, %v", brs, err)
	}
	// The record's own result code is not checked: v6 leaves it NO_RESPONSE when the
	// command fails.
	if _, err = cl.BatchExecute(nil, nil, keys[:1], "asobserve", "fail"); err == nil || !err.Matches(types.UDF_BAD_RESPONSE) {
		return fmt.Errorf("failing BatchExecute: %v, want UDF_BAD_RESPONSE", err)
	}
	return nil
}

func wait(task *as.ExecuteTask) error {
	select {
	case err := <-task.OnComplete():
		if err != nil {
			return err
		}
	case <-time.After(10 * time.Second):
		return fmt.Errorf("task not done after 10s")
	}
	if done, err := task.IsDone(); !done || err != nil {
		return fmt.Errorf("IsDone = %v, %v", done, err)
	}
	return nil
}

func checkBackground(cl *as.Client) error {
	var keys []*as.Key
	for i := 0; i < 10; i++ {
		keys = append(keys, key("bg", i))
		if err := cl.Put(nil, keys[i], as.BinMap{"i": i, "grp": i % 2}); err != nil {
			return err
		}
	}
	stmt := as.NewStatement("test", "bg")
	_ = stmt.SetFilter(as.NewEqualFilter("grp", 1))
	task, err := cl.QueryExecute(nil, nil, stmt, as.PutOp(as.NewBin("odd", true)))
	if err != nil {
		return fmt.Errorf("QueryExecute: %v", err)
	}
	if err := wait(task); err != nil {
		return fmt.Errorf("QueryExecute task: %v", err)
	}
	if task, err = cl.ExecuteUDF(nil, as.NewStatement("test", "bg"), "asobserve", "add", as.NewValue("hits"), as.NewValue(2)); err != nil {
		return fmt.Errorf("ExecuteUDF: %v", err)
	}
	if err := wait(task); err != nil {
		return fmt.Errorf("ExecuteUDF task: %v", err)
	}
	node := cl.GetNodes()[0]
	if task, err = cl.ExecuteUDFNode(nil, node, as.NewStatement("test", "bg"), "asobserve", "add", as.NewValue("hits"), as.NewValue(1)); err != nil {
		return fmt.Errorf("ExecuteUDFNode: %v", err)
	}
	if err := wait(task); err != nil {
		return fmt.Errorf("ExecuteUDFNode task: %v", err)
	}
	for i, k := range keys {
		rec, err := cl.Get(nil, k)
		if err != nil {
			return err
		}
		hits := 2
		if rec.Node.GetName() == node.GetName() {
			hits = 3
		}
		_, odd := rec.Bins["odd"]
		if odd != (i%2 == 1) || rec.Bins["hits"] != hits {
			return fmt.Errorf("record %d on %s after the jobs: %v", i, rec.Node.GetName(), rec.Bins)
		}
	}
	return nil
}

func checkAggregate(cl *as.Client) error {
	task, err := cl.RegisterUDFFromFile(nil, filepath.Join(*luaDir, "asobserve_aggregate.lua"), "asobserve_aggregate.lua", as.LUA)
	if err != nil {
		return fmt.Errorf("RegisterUDF: %v", err)
	}
	if err := <-task.OnComplete(); err != nil {
		return fmt.Errorf("RegisterUDF task: %v", err)
	}
	for i := 0; i < 10; i++ {
		if err := cl.Put(nil, key("agg", i), as.BinMap{"i": i}); err != nil {
			return err
		}
	}
	rs, err := cl.QueryAggregate(nil, as.NewStatement("test", "agg"), "asobserve_aggregate", "sum", as.NewValue("i"))
	if err != nil {
		return fmt.Errorf("QueryAggregate: %v", err)
	}
	var got []any
	for res := range rs.Results() {
		if res.Err != nil {
			return fmt.Errorf("QueryAggregate: %v", res.Err)
		}
		got = append(got, res.Record.Bins["SUCCESS"])
	}
	if !slices.Equal(got, []any{45.0}) {
		return fmt.Errorf("sum(i) = %v, want [45]", got)
	}
	return nil
}
