package testserver

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	as "github.com/aerospike/aerospike-client-go/v7"
	"github.com/aerospike/aerospike-client-go/v7/types"

	"github.com/asobserve/asobserve/internal/clienterr"
)

// person is the struct the object API tests map to and from bins.
type person struct {
	Name string `as:"name"`
	Age  int    `as:"age"`
}

// drainObjects reads an object recordset to its end. Objects and errors are read
// together: the client blocks on a full error channel before it closes the objects'.
func drainObjects(rs *as.Recordset, ch chan *person) ([]person, []error) {
	var got []person
	var errs []error
	objects, errors := ch, rs.Errors()
	for objects != nil || errors != nil {
		select {
		case p, ok := <-objects:
			if !ok {
				objects = nil
				continue
			}
			got = append(got, *p)
		case err, ok := <-errors:
			if !ok {
				errors = nil
				continue
			}
			errs = append(errs, err)
		}
	}
	slices.SortFunc(got, func(a, b person) int { return a.Age - b.Age })
	return got, errs
}

func people(ages ...int) []person {
	out := make([]person, len(ages))
	for i, a := range ages {
		out[i] = person{Name: "p" + string(rune('a'+a)), Age: a}
	}
	return out
}

func TestObjectAPI(t *testing.T) {
	c, cl := startCluster(t, Config{Nodes: 2})
	var keys []*as.Key
	for i := 0; i < 10; i++ {
		k := key(t, "obj", i)
		keys = append(keys, k)
		must(t, "PutObject", cl.PutObject(nil, k, &person{Name: "p" + string(rune('a'+i)), Age: i}))
	}
	var got person
	must(t, "GetObject", cl.GetObject(nil, keys[3], &got))
	if got != people(3)[0] {
		t.Fatalf("GetObject = %+v", got)
	}
	wantCode(t, "GetObject missing", cl.GetObject(nil, key(t, "obj", "missing"), &got), types.KEY_NOT_FOUND_ERROR)

	objs := []any{&person{}, &person{}, &person{}}
	found, err := cl.BatchGetObjects(nil, []*as.Key{keys[1], key(t, "obj", "missing"), keys[9]}, objs)
	must(t, "BatchGetObjects", err)
	if !slices.Equal(found, []bool{true, false, true}) || *objs[0].(*person) != people(1)[0] || *objs[2].(*person) != people(9)[0] {
		t.Fatalf("BatchGetObjects: found %v, objects %+v %+v", found, objs[0], objs[2])
	}

	all := people(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	check := func(what string, want []person, run func(ch chan *person) (*as.Recordset, as.Error)) {
		t.Helper()
		ch := make(chan *person, 4)
		rs, err := run(ch)
		must(t, what, err)
		got, errs := drainObjects(rs, ch)
		if len(errs) != 0 || !slices.Equal(got, want) {
			t.Fatalf("%s: objects %+v errors %v, want %+v", what, got, errs, want)
		}
	}
	rangeStmt := func() *as.Statement {
		stmt := as.NewStatement("test", "obj")
		must(t, "filter", stmt.SetFilter(as.NewRangeFilter("age", 2, 5)))
		return stmt
	}
	check("ScanAllObjects", all, func(ch chan *person) (*as.Recordset, as.Error) {
		return cl.ScanAllObjects(nil, ch, "test", "obj")
	})
	check("ScanPartitionObjects", all, func(ch chan *person) (*as.Recordset, as.Error) {
		return cl.ScanPartitionObjects(nil, ch, as.NewPartitionFilterAll(), "test", "obj")
	})
	check("QueryObjects", people(2, 3, 4, 5), func(ch chan *person) (*as.Recordset, as.Error) {
		return cl.QueryObjects(nil, rangeStmt(), ch)
	})
	check("QueryPartitionObjects", people(2, 3, 4, 5), func(ch chan *person) (*as.Recordset, as.Error) {
		return cl.QueryPartitionObjects(nil, rangeStmt(), ch, as.NewPartitionFilterAll())
	})
	// Each node returns its own share; together they are the whole set, once.
	var scanned, queried []person
	for _, n := range cl.GetNodes() {
		ch := make(chan *person, 4)
		rs, err := cl.ScanNodeObjects(nil, n, ch, "test", "obj")
		must(t, "ScanNodeObjects", err)
		got, errs := drainObjects(rs, ch)
		if len(errs) != 0 || len(got) == 0 {
			t.Fatalf("ScanNodeObjects %s: %+v %v", n.GetName(), got, errs)
		}
		scanned = append(scanned, got...)
		ch = make(chan *person, 4)
		rs, err = cl.QueryNodeObjects(nil, n, rangeStmt(), ch)
		must(t, "QueryNodeObjects", err)
		got, errs = drainObjects(rs, ch)
		if len(errs) != 0 {
			t.Fatalf("QueryNodeObjects %s: %v", n.GetName(), errs)
		}
		queried = append(queried, got...)
	}
	slices.SortFunc(scanned, func(a, b person) int { return a.Age - b.Age })
	slices.SortFunc(queried, func(a, b person) int { return a.Age - b.Age })
	if !slices.Equal(scanned, all) || !slices.Equal(queried, people(2, 3, 4, 5)) {
		t.Fatalf("per-node objects: scanned %+v, queried %+v", scanned, queried)
	}

	t.Run("faults", func(t *testing.T) {
		c.SetFaults([]Fault{{Set: "obj", ResultCode: int(types.PARAMETER_ERROR)}})
		defer c.SetFaults(nil)
		wantCode(t, "PutObject", cl.PutObject(nil, keys[0], &person{}), types.PARAMETER_ERROR)
		wantCode(t, "GetObject", cl.GetObject(nil, keys[0], &got), types.PARAMETER_ERROR)
		_, err := cl.BatchGetObjects(nil, keys, make([]any, 0, len(keys)))
		if err == nil {
			t.Fatal("BatchGetObjects under a fault: nil error")
		}
		sp := as.NewScanPolicy()
		sp.MaxRetries = 0
		ch := make(chan *person, 4)
		rs, err := cl.ScanAllObjects(sp, ch, "test", "obj")
		must(t, "ScanAllObjects start", err)
		got, errs := drainObjects(rs, ch)
		if len(got) != 0 || len(errs) == 0 || clienterr.Code(errs[0]) != int(types.PARAMETER_ERROR) {
			t.Fatalf("ScanAllObjects under a fault: objects %v errors %v", got, errs)
		}
	})
}

func TestBatchExecute(t *testing.T) {
	c, cl := startCluster(t, Config{Nodes: 2})
	keys := []*as.Key{key(t, "bu", 1), key(t, "bu", 2), key(t, "bu", 3)}
	must(t, "put", cl.Put(nil, keys[0], as.BinMap{"n": 10}))
	brs, err := cl.BatchExecute(nil, nil, keys, "asobserve", "add", as.NewValue("n"), as.NewValue(5))
	must(t, "BatchExecute", err)
	for i, want := range []int{15, 5, 5} {
		if brs[i].ResultCode != types.OK || brs[i].Record.Bins["SUCCESS"] != want {
			t.Fatalf("BatchExecute[%d] = %v, want SUCCESS %d", i, brs[i], want)
		}
	}
	rec, err := cl.Get(nil, keys[1])
	must(t, "get", err)
	if rec.Bins["n"] != 5 {
		t.Fatalf("after BatchExecute: %v", rec.Bins)
	}
	brs, err = cl.BatchExecute(nil, nil, keys[:1], "asobserve", "fail")
	wantCode(t, "BatchExecute of a failing UDF", err, types.UDF_BAD_RESPONSE)
	if brs[0].ResultCode != types.UDF_BAD_RESPONSE || !strings.Contains(brs[0].Err.Error(), "deliberate failure") {
		t.Fatalf("failing BatchExecute = %v", brs[0])
	}
	c.SetFaults([]Fault{{Command: CmdBatch, ResultCode: int(types.TIMEOUT)}})
	defer c.SetFaults(nil)
	bp := as.NewBatchPolicy()
	bp.MaxRetries = 0
	_, err = cl.BatchExecute(bp, nil, keys, "asobserve", "echo", as.NewValue(1))
	if clienterr.Code(err) != int(types.TIMEOUT) {
		t.Fatalf("BatchExecute under a fault: %v", err)
	}
}

// waitTask waits for the task's completion through its own polling.
func waitTask(t *testing.T, what string, task *as.ExecuteTask) {
	t.Helper()
	select {
	case err := <-task.OnComplete():
		must(t, what+" OnComplete", err)
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: task %d not done after 10s", what, task.TaskId())
	}
	done, err := task.IsDone()
	if err != nil || !done {
		t.Fatalf("%s: IsDone = %v, %v", what, done, err)
	}
}

func TestBackgroundJobs(t *testing.T) {
	c, cl := startCluster(t, Config{Nodes: 2})
	keys := putN(t, cl, "bg", 20) // bins i, grp (i%5), tag

	stmt := as.NewStatement("test", "bg")
	must(t, "filter", stmt.SetFilter(as.NewEqualFilter("grp", 1)))
	task, err := cl.QueryExecute(nil, nil, stmt, as.PutOp(as.NewBin("marked", "yes")), as.AddOp(as.NewBin("i", 100)))
	must(t, "QueryExecute", err)
	waitTask(t, "QueryExecute", task)
	for i, k := range keys {
		rec, err := cl.Get(nil, k)
		must(t, "get", err)
		if i%5 == 1 {
			if rec.Bins["marked"] != "yes" || rec.Bins["i"] != i+100 {
				t.Fatalf("QueryExecute missed record %d: %v", i, rec.Bins)
			}
		} else if _, ok := rec.Bins["marked"]; ok || rec.Bins["i"] != i {
			t.Fatalf("QueryExecute touched record %d outside its filter: %v", i, rec.Bins)
		}
	}

	task, err = cl.ExecuteUDF(nil, as.NewStatement("test", "bg"), "asobserve", "add", as.NewValue("hits"), as.NewValue(2))
	must(t, "ExecuteUDF", err)
	waitTask(t, "ExecuteUDF", task)
	node := cl.GetNodes()[0]
	task, err = cl.ExecuteUDFNode(nil, node, as.NewStatement("test", "bg"), "asobserve", "add", as.NewValue("hits"), as.NewValue(1))
	must(t, "ExecuteUDFNode", err)
	waitTask(t, "ExecuteUDFNode", task)
	counts := map[any]int{}
	for _, k := range keys {
		rec, err := cl.Get(nil, k)
		must(t, "get", err)
		counts[rec.Bins["hits"]]++
		if rec.Node.GetName() == node.GetName() && rec.Bins["hits"] != 3 || rec.Node.GetName() != node.GetName() && rec.Bins["hits"] != 2 {
			t.Fatalf("record on %s has hits %v after ExecuteUDF and ExecuteUDFNode(%s)", rec.Node.GetName(), rec.Bins["hits"], node.GetName())
		}
	}
	if counts[2] == 0 || counts[3] == 0 || counts[2]+counts[3] != len(keys) {
		t.Fatalf("hits per record: %v", counts)
	}

	// The status of a job the nodes never ran is "not found", which a client of a
	// partition-query server reads as finished.
	unknown := as.NewExecuteTask(cl.Cluster(), as.NewStatement("test", "bg"), 12345)
	if done, err := unknown.IsDone(); !done || err != nil {
		t.Fatalf("unknown job: IsDone = %v, %v", done, err)
	}
	resp, err := node.RequestInfo(as.NewInfoPolicy(), "query-show:trid=12345", "jobs:module=scan;cmd=get-job;trid=12345")
	must(t, "info", err)
	if resp["query-show:trid=12345"] != "ERROR:2:job not found" || resp["jobs:module=scan;cmd=get-job;trid=12345"] != "ERROR:2:job not found" {
		t.Fatalf("unknown job status: %q", resp)
	}

	c.SetFaults([]Fault{{Set: "bg", Command: CmdScan, ResultCode: int(types.PARAMETER_ERROR)}})
	defer c.SetFaults(nil)
	qp := as.NewQueryPolicy()
	qp.MaxRetries = 0
	_, err = cl.ExecuteUDF(qp, as.NewStatement("test", "bg"), "asobserve", "add", as.NewValue("hits"), as.NewValue(1))
	wantCode(t, "ExecuteUDF under a fault", err, types.PARAMETER_ERROR)
	_, err = cl.QueryExecute(qp, nil, as.NewStatement("test", "bg"), as.PutOp(as.NewBin("x", 1)))
	wantCode(t, "QueryExecute under a fault", err, types.PARAMETER_ERROR)
}

// setLuaPath points the client's Lua path, where QueryAggregate loads the module to
// run its final reduce, at a copy of the aggregation module.
func setLuaPath(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, AggregateUDFModule), []byte(AggregateUDFSource), 0o644); err != nil {
		t.Fatal(err)
	}
	as.SetLuaPath(dir + string(filepath.Separator))
}

// registerAggregateModule registers the aggregation module with the cluster.
func registerAggregateModule(t *testing.T, cl *as.Client) {
	t.Helper()
	task, err := cl.RegisterUDF(nil, []byte(AggregateUDFSource), AggregateUDFModule, as.LUA)
	must(t, "RegisterUDF", err)
	select {
	case err := <-task.OnComplete():
		must(t, "RegisterUDF task", err)
	case <-time.After(10 * time.Second):
		t.Fatal("RegisterUDF task not done after 10s")
	}
}

func aggregate(t *testing.T, cl *as.Client, stmt *as.Statement, fn string, args ...as.Value) ([]any, error) {
	t.Helper()
	rs, err := cl.QueryAggregate(nil, stmt, "asobserve_aggregate", fn, args...)
	if err != nil {
		return nil, err
	}
	var out []any
	for res := range rs.Results() {
		if res.Err != nil {
			return out, res.Err
		}
		out = append(out, res.Record.Bins["SUCCESS"])
	}
	return out, nil
}

func TestQueryAggregate(t *testing.T) {
	c, cl := startCluster(t, Config{Nodes: 2})
	putN(t, cl, "agg", 30) // i = 0..29, grp = i%5
	must(t, "put string bin", cl.Put(nil, key(t, "agg", "s"), as.BinMap{"i": "not a number", "grp": 9}))

	setLuaPath(t)
	_, err := aggregate(t, cl, as.NewStatement("test", "agg"), "count")
	if err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Fatalf("aggregation before registering the module: %v", err)
	}
	registerAggregateModule(t, cl)
	udfs, err := cl.ListUDF(nil)
	must(t, "ListUDF", err)
	if len(udfs) != 1 || udfs[0].Filename != AggregateUDFModule || udfs[0].Language != as.LUA {
		t.Fatalf("ListUDF = %+v", udfs)
	}

	got, err := aggregate(t, cl, as.NewStatement("test", "agg"), "count")
	must(t, "count", err)
	// Lua has one number type: the client's reduce hands back float64.
	if !slices.Equal(got, []any{31.0}) {
		t.Fatalf("count = %v, want [31]", got)
	}
	got, err = aggregate(t, cl, as.NewStatement("test", "agg"), "sum", as.NewValue("i"))
	must(t, "sum", err)
	if !slices.Equal(got, []any{435.0}) { // 0+1+...+29
		t.Fatalf("sum(i) = %v, want [435]", got)
	}
	stmt := as.NewStatement("test", "agg")
	must(t, "filter", stmt.SetFilter(as.NewEqualFilter("grp", 2)))
	got, err = aggregate(t, cl, stmt, "sum", as.NewValue("i"))
	must(t, "sum grp=2", err)
	if !slices.Equal(got, []any{87.0}) { // 2+7+12+17+22+27
		t.Fatalf("sum(i) where grp=2 = %v, want [87]", got)
	}
	got, err = aggregate(t, cl, as.NewStatement("test", "nothing"), "count")
	must(t, "count of an empty set", err)
	if len(got) != 0 {
		t.Fatalf("count of an empty set = %v, want no result", got)
	}
	_, err = aggregate(t, cl, as.NewStatement("test", "agg"), "median", as.NewValue("i"))
	if err == nil || !strings.Contains(err.Error(), "function not found") {
		t.Fatalf("unknown stream function: %v", err)
	}

	c.SetFaults([]Fault{{Set: "agg", Command: CmdScan, ResultCode: int(types.PARAMETER_ERROR)}})
	_, err = aggregate(t, cl, as.NewStatement("test", "agg"), "count")
	if clienterr.Code(err) != int(types.PARAMETER_ERROR) {
		t.Fatalf("aggregation under a fault: %v", err)
	}
	c.SetFaults(nil)

	task, err := cl.RemoveUDF(nil, AggregateUDFModule)
	must(t, "RemoveUDF", err)
	select {
	case err := <-task.OnComplete():
		must(t, "RemoveUDF task", err)
	case <-time.After(10 * time.Second):
		t.Fatal("RemoveUDF task not done after 10s")
	}
	if udfs, err = cl.ListUDF(nil); err != nil || len(udfs) != 0 {
		t.Fatalf("ListUDF after RemoveUDF = %+v, %v", udfs, err)
	}
	_, err = aggregate(t, cl, as.NewStatement("test", "agg"), "count")
	if err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Fatalf("aggregation after removing the module: %v", err)
	}
}

func TestJobHistoryKeepsTheLatest(t *testing.T) {
	var h jobHistory
	for id := uint64(1); id <= maxJobHistory+1; id++ {
		h.add(job{id: id, kind: "background-ops", ns: "test", set: "s", succeeded: int64(id)})
	}
	if got := h.show("query-show:trid=1"); got != "ERROR:2:job not found" {
		t.Fatalf("oldest job after %d more: %q", maxJobHistory, got)
	}
	want := "trid=2:job-type=background-ops:ns=test:set=s:status=done(ok):recs-succeeded=2:recs-failed=0"
	for _, cmd := range []string{"query-show:trid=2", "scan-show:id=2", "jobs:module=query;cmd=get-job;trid=2"} {
		if got := h.show(cmd); got != want {
			t.Fatalf("%s = %q, want %q", cmd, got, want)
		}
	}
	if got := h.show("query-show:trid=x"); !strings.HasPrefix(got, "ERROR:4:") {
		t.Fatalf("bad job id: %q", got)
	}
}
