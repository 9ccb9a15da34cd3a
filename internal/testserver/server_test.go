package testserver

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	as "github.com/aerospike/aerospike-client-go/v7"
	"github.com/aerospike/aerospike-client-go/v7/types"

	"github.com/asobserve/asobserve/internal/clienterr"
)

func startCluster(t *testing.T, cfg Config) (*Cluster, *as.Client) {
	t.Helper()
	if cfg.Logf == nil {
		cfg.Logf = t.Logf
	}
	c, err := Start("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, newClient(t, c, nil)
}

func newClient(t *testing.T, c *Cluster, cp *as.ClientPolicy) *as.Client {
	t.Helper()
	if cp == nil {
		cp = as.NewClientPolicy()
	}
	cl, err := as.NewClientWithPolicyAndHost(cp, as.NewHost("127.0.0.1", mustPort(c.Hosts()[0])))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if got := len(cl.GetNodes()); got != len(c.Hosts()) {
		t.Fatalf("client sees %d nodes, want %d", got, len(c.Hosts()))
	}
	return cl
}

func key(t *testing.T, set string, v any) *as.Key {
	t.Helper()
	k, err := as.NewKey("test", set, v)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func resultCode(err error) types.ResultCode {
	var ae *as.AerospikeError
	if errors.As(err, &ae) {
		return ae.ResultCode
	}
	return types.ResultCode(-999)
}

func wantCode(t *testing.T, what string, err error, code types.ResultCode) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: got nil error, want result code %d", what, code)
	}
	if got := resultCode(err); got != code {
		t.Fatalf("%s: got result code %d (%v), want %d", what, got, err, code)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func TestSingleRecordCommands(t *testing.T) {
	_, cl := startCluster(t, Config{})
	k := key(t, "users", "alice")

	must(t, "put", cl.Put(nil, k, as.BinMap{"name": "Alice", "age": 30, "score": 1.5, "blob": []byte{1, 2}}))
	rec, err := cl.Get(nil, k)
	must(t, "get", err)
	if rec.Bins["name"] != "Alice" || rec.Bins["age"] != 30 || rec.Bins["score"] != 1.5 || len(rec.Bins) != 4 || rec.Generation != 1 {
		t.Fatalf("get all bins: %v gen %d", rec.Bins, rec.Generation)
	}
	rec, err = cl.Get(nil, k, "age")
	must(t, "select", err)
	if len(rec.Bins) != 1 || rec.Bins["age"] != 30 {
		t.Fatalf("select age: %v", rec.Bins)
	}
	rec, err = cl.GetHeader(nil, k)
	must(t, "header", err)
	if len(rec.Bins) != 0 || rec.Generation != 1 {
		t.Fatalf("header: bins %v gen %d", rec.Bins, rec.Generation)
	}
	ok, err := cl.Exists(nil, k)
	must(t, "exists", err)
	if !ok {
		t.Fatal("exists: false for a stored key")
	}
	ok, err = cl.Exists(nil, key(t, "users", "nobody"))
	if err != nil || ok {
		t.Fatalf("exists missing: %v %v", ok, err)
	}
	_, err = cl.Get(nil, key(t, "users", "nobody"))
	wantCode(t, "get missing", err, types.KEY_NOT_FOUND_ERROR)

	must(t, "append", cl.Append(nil, k, as.BinMap{"name": "!"}))
	must(t, "prepend", cl.Prepend(nil, k, as.BinMap{"name": "Dr "}))
	must(t, "add", cl.Add(nil, k, as.BinMap{"age": 12, "score": 0.25, "fresh": 7}))
	rec, err = cl.Get(nil, k)
	must(t, "get after modify", err)
	if rec.Bins["name"] != "Dr Alice!" || rec.Bins["age"] != 42 || rec.Bins["score"] != 1.75 || rec.Bins["fresh"] != 7 || rec.Generation != 4 {
		t.Fatalf("after append/prepend/add: %v gen %d", rec.Bins, rec.Generation)
	}
	wantCode(t, "add to string bin", cl.Add(nil, k, as.BinMap{"name": 1}), types.BIN_TYPE_ERROR)

	wp := as.NewWritePolicy(0, 100)
	must(t, "touch", cl.Touch(wp, k))
	rec, err = cl.GetHeader(nil, k)
	must(t, "header after touch", err)
	if rec.Generation != 5 || rec.Expiration < 98 || rec.Expiration > 100 {
		t.Fatalf("after touch: gen %d expiration %d, want gen 5 expiration ~100", rec.Generation, rec.Expiration)
	}
	wantCode(t, "touch missing", cl.Touch(nil, key(t, "users", "nobody")), types.KEY_NOT_FOUND_ERROR)

	rec, err = cl.Operate(nil, k,
		as.AddOp(as.NewBin("age", 1)), as.GetBinOp("age"),
		as.AppendOp(as.NewBin("name", "?")), as.PrependOp(as.NewBin("name", "<")),
		as.PutOp(as.NewBin("city", "Oslo")), as.GetBinOp("name"), as.GetBinOp("city"))
	must(t, "operate", err)
	if rec.Bins["age"] != 43 || rec.Bins["name"] != "<Dr Alice!?" || rec.Bins["city"] != "Oslo" {
		t.Fatalf("operate results: %v", rec.Bins)
	}
	rec, err = cl.Operate(nil, k, as.TouchOp(), as.GetOp())
	must(t, "operate touch+get", err)
	if len(rec.Bins) != 6 || rec.Generation != 7 {
		t.Fatalf("operate get all: %v gen %d", rec.Bins, rec.Generation)
	}

	existed, err := cl.Delete(nil, k)
	must(t, "delete", err)
	if !existed {
		t.Fatal("delete: existed=false for a stored key")
	}
	existed, err = cl.Delete(nil, k)
	if err != nil || existed {
		t.Fatalf("delete again: existed=%v err=%v", existed, err)
	}
	_, err = cl.Get(nil, k)
	wantCode(t, "get deleted", err, types.KEY_NOT_FOUND_ERROR)

	// Writing a nil bin removes it.
	must(t, "put 2 bins", cl.Put(nil, k, as.BinMap{"a": 1, "b": 2}))
	must(t, "remove bin", cl.Put(nil, k, as.BinMap{"a": nil}))
	rec, err = cl.Get(nil, k)
	must(t, "get after bin removal", err)
	if len(rec.Bins) != 1 || rec.Bins["b"] != 2 {
		t.Fatalf("after removing bin a: %v", rec.Bins)
	}
}

func TestWritePolicies(t *testing.T) {
	_, cl := startCluster(t, Config{})
	k := key(t, "p", 1)
	missing := key(t, "p", 2)
	must(t, "put", cl.Put(nil, k, as.BinMap{"a": 1, "b": 1}))

	create := as.NewWritePolicy(0, 0)
	create.RecordExistsAction = as.CREATE_ONLY
	err := cl.Put(create, k, as.BinMap{"a": 2})
	wantCode(t, "create-only existing", err, types.KEY_EXISTS_ERROR)
	if got := clienterr.Classify("put", err); got != "KeyExistsError" {
		t.Fatalf("classify create-only: %q", got)
	}
	must(t, "create-only new", cl.Put(create, missing, as.BinMap{"a": 2}))
	_, _ = cl.Delete(nil, missing)

	for _, action := range []as.RecordExistsAction{as.UPDATE_ONLY, as.REPLACE_ONLY} {
		p := as.NewWritePolicy(0, 0)
		p.RecordExistsAction = action
		wantCode(t, fmt.Sprintf("action %d on missing", action), cl.Put(p, missing, as.BinMap{"a": 1}), types.KEY_NOT_FOUND_ERROR)
	}
	replace := as.NewWritePolicy(0, 0)
	replace.RecordExistsAction = as.REPLACE_ONLY
	must(t, "replace-only", cl.Put(replace, k, as.BinMap{"c": 3}))
	rec, err := cl.Get(nil, k)
	must(t, "get after replace", err)
	if len(rec.Bins) != 1 || rec.Bins["c"] != 3 || rec.Generation != 2 {
		t.Fatalf("after replace: %v gen %d", rec.Bins, rec.Generation)
	}

	gen := as.NewWritePolicy(1, 0)
	gen.GenerationPolicy = as.EXPECT_GEN_EQUAL
	err = cl.Put(gen, k, as.BinMap{"c": 4})
	wantCode(t, "gen equal mismatch", err, types.GENERATION_ERROR)
	if got := clienterr.Classify("put", err); got != "GenerationError" {
		t.Fatalf("classify generation: %q", got)
	}
	gen.Generation = 2
	must(t, "gen equal match", cl.Put(gen, k, as.BinMap{"c": 4}))
	gt := as.NewWritePolicy(3, 0)
	gt.GenerationPolicy = as.EXPECT_GEN_GT
	wantCode(t, "gen gt equal", cl.Put(gt, k, as.BinMap{"c": 5}), types.GENERATION_ERROR)
	gt.Generation = 4
	must(t, "gen gt greater", cl.Put(gt, k, as.BinMap{"c": 5}))
	rec, _ = cl.Get(nil, k)
	if rec.Bins["c"] != 5 || rec.Generation != 4 {
		t.Fatalf("after generation writes: %v gen %d", rec.Bins, rec.Generation)
	}
	// Delete honours generation too.
	del := as.NewWritePolicy(1, 0)
	del.GenerationPolicy = as.EXPECT_GEN_EQUAL
	_, err = cl.Delete(del, k)
	wantCode(t, "delete gen mismatch", err, types.GENERATION_ERROR)
}

func TestTTL(t *testing.T) {
	c, cl := startCluster(t, Config{})
	k := key(t, "ttl", 1)
	must(t, "put ttl", cl.Put(as.NewWritePolicy(0, 50), k, as.BinMap{"a": 1}))
	rec, err := cl.Get(nil, k)
	must(t, "get", err)
	if rec.Expiration < 48 || rec.Expiration > 50 {
		t.Fatalf("expiration %d, want ~50", rec.Expiration)
	}
	// TTL -2 keeps the existing expiry on update.
	must(t, "put keep ttl", cl.Put(as.NewWritePolicy(0, as.TTLDontUpdate), k, as.BinMap{"a": 2}))
	rec, _ = cl.Get(nil, k)
	if rec.Expiration < 48 || rec.Expiration > 50 {
		t.Fatalf("expiration after TTLDontUpdate %d, want ~50", rec.Expiration)
	}
	must(t, "put never expire", cl.Put(as.NewWritePolicy(0, as.TTLDontExpire), k, as.BinMap{"a": 3}))
	rec, _ = cl.Get(nil, k)
	if rec.Expiration != as.TTLDontExpire {
		t.Fatalf("expiration %d, want never (%d)", rec.Expiration, uint32(as.TTLDontExpire))
	}
	// Age the record past its void time instead of sleeping.
	must(t, "put short ttl", cl.Put(as.NewWritePolicy(0, 5), k, as.BinMap{"a": 4}))
	p := &c.store.parts[partitionID(k.Digest())]
	p.mu.Lock()
	for _, r := range p.recs {
		r.voidTime = nowVoid() - 1
	}
	p.mu.Unlock()
	_, err = cl.Get(nil, k)
	wantCode(t, "get expired", err, types.KEY_NOT_FOUND_ERROR)
}

func putN(t *testing.T, cl *as.Client, set string, n int) []*as.Key {
	t.Helper()
	keys := make([]*as.Key, n)
	for i := range keys {
		keys[i] = key(t, set, i)
		must(t, "put", cl.Put(nil, keys[i], as.BinMap{"i": i, "grp": i % 5, "tag": fmt.Sprintf("t%d", i%4)}))
	}
	return keys
}

func TestBatches(t *testing.T) {
	_, cl := startCluster(t, Config{})
	keys := putN(t, cl, "b", 10)
	keys = append(keys, key(t, "b", "missing"))

	recs, err := cl.BatchGet(nil, keys)
	must(t, "BatchGet", err)
	for i := 0; i < 10; i++ {
		if recs[i] == nil || recs[i].Bins["i"] != i || len(recs[i].Bins) != 3 {
			t.Fatalf("BatchGet[%d] = %v", i, recs[i])
		}
	}
	if recs[10] != nil {
		t.Fatalf("BatchGet missing = %v, want nil", recs[10])
	}
	recs, err = cl.BatchGet(nil, keys, "grp")
	must(t, "BatchGet bins", err)
	if len(recs[7].Bins) != 1 || recs[7].Bins["grp"] != 2 {
		t.Fatalf("BatchGet bins[7] = %v", recs[7].Bins)
	}
	recs, err = cl.BatchGetHeader(nil, keys)
	must(t, "BatchGetHeader", err)
	if recs[3] == nil || len(recs[3].Bins) != 0 || recs[3].Generation != 1 || recs[10] != nil {
		t.Fatalf("BatchGetHeader: %v / %v", recs[3], recs[10])
	}
	exists, err := cl.BatchExists(nil, keys)
	must(t, "BatchExists", err)
	for i, e := range exists {
		if e != (i < 10) {
			t.Fatalf("BatchExists[%d] = %v", i, e)
		}
	}
	recs, err = cl.BatchGetOperate(nil, keys, as.GetBinOp("i"))
	must(t, "BatchGetOperate", err)
	if recs[4].Bins["i"] != 4 || len(recs[4].Bins) != 1 {
		t.Fatalf("BatchGetOperate[4] = %v", recs[4].Bins)
	}
	reads := []*as.BatchRead{
		as.NewBatchRead(nil, keys[1], []string{"tag"}),
		as.NewBatchReadHeader(nil, keys[2]),
		as.NewBatchRead(nil, keys[3], nil),
		as.NewBatchRead(nil, keys[10], nil),
	}
	must(t, "BatchGetComplex", cl.BatchGetComplex(nil, reads))
	if reads[0].Record.Bins["tag"] != "t1" || len(reads[1].Record.Bins) != 0 || reads[2].Record.Bins["i"] != 3 || reads[3].Record != nil {
		t.Fatalf("BatchGetComplex: %v %v %v %v", reads[0].Record, reads[1].Record, reads[2].Record, reads[3].Record)
	}

	gen := as.NewBatchWritePolicy()
	gen.GenerationPolicy = as.EXPECT_GEN_EQUAL
	gen.Generation = 9
	ops := []as.BatchRecordIfc{
		as.NewBatchWrite(nil, keys[0], as.PutOp(as.NewBin("w", "x")), as.AddOp(as.NewBin("i", 100))),
		as.NewBatchRead(nil, keys[1], []string{"i"}),
		as.NewBatchDelete(nil, keys[2]),
		as.NewBatchWrite(gen, keys[3], as.PutOp(as.NewBin("w", "y"))),
		as.NewBatchUDF(nil, keys[4], "pkg", "echo", as.NewValue("hi")),
	}
	must(t, "BatchOperate", cl.BatchOperate(nil, ops))
	if rc := ops[3].BatchRec().ResultCode; rc != types.GENERATION_ERROR {
		t.Fatalf("BatchOperate generation entry rc = %d", rc)
	}
	if r := ops[1].BatchRec().Record; r == nil || r.Bins["i"] != 1 {
		t.Fatalf("BatchOperate read entry = %v", r)
	}
	if r := ops[4].BatchRec().Record; r == nil || r.Bins["SUCCESS"] != "hi" {
		t.Fatalf("BatchOperate UDF entry = %v", r)
	}
	rec, err := cl.Get(nil, keys[0])
	must(t, "get after BatchOperate", err)
	if rec.Bins["w"] != "x" || rec.Bins["i"] != 100 {
		t.Fatalf("after BatchOperate write: %v", rec.Bins)
	}
	if ok, _ := cl.Exists(nil, keys[2]); ok {
		t.Fatal("BatchOperate delete left the record")
	}

	brs, err := cl.BatchDelete(nil, nil, []*as.Key{keys[5], keys[6], keys[10]})
	must(t, "BatchDelete", err)
	if brs[0].ResultCode != 0 || brs[1].ResultCode != 0 || brs[2].ResultCode != types.KEY_NOT_FOUND_ERROR {
		t.Fatalf("BatchDelete codes: %d %d %d", brs[0].ResultCode, brs[1].ResultCode, brs[2].ResultCode)
	}
	exists, _ = cl.BatchExists(nil, keys[5:7])
	if exists[0] || exists[1] {
		t.Fatal("BatchDelete left records")
	}

	// One-key batches take the client's single-command path.
	recs, err = cl.BatchGet(nil, keys[7:8])
	must(t, "1-key BatchGet", err)
	if recs[0].Bins["i"] != 7 {
		t.Fatalf("1-key BatchGet = %v", recs[0])
	}
}

func drain(t *testing.T, rs *as.Recordset) (map[[20]byte]*as.Record, int) {
	t.Helper()
	seen := map[[20]byte]*as.Record{}
	n := 0
	for res := range rs.Results() {
		if res.Err != nil {
			t.Fatalf("recordset: %v", res.Err)
		}
		n++
		var d [20]byte
		copy(d[:], res.Record.Key.Digest())
		seen[d] = res.Record
	}
	return seen, n
}

func TestScanAndQuery(t *testing.T) {
	_, cl := startCluster(t, Config{})
	putN(t, cl, "scanA", 100)
	putN(t, cl, "scanB", 30)

	rs, err := cl.ScanAll(nil, "test", "scanA")
	must(t, "ScanAll", err)
	seen, n := drain(t, rs)
	if n != 100 || len(seen) != 100 {
		t.Fatalf("scan scanA: %d records, %d distinct, want 100", n, len(seen))
	}
	for _, r := range seen {
		if r.Key.SetName() != "scanA" || r.Key.Namespace() != "test" || len(r.Bins) != 3 {
			t.Fatalf("scan record %v", r)
		}
	}
	rs, err = cl.ScanAll(nil, "test", "")
	must(t, "ScanAll namespace", err)
	if _, n := drain(t, rs); n != 130 {
		t.Fatalf("scan whole namespace: %d records, want 130", n)
	}
	sp := as.NewScanPolicy()
	sp.IncludeBinData = false
	rs, err = cl.ScanAll(sp, "test", "scanB")
	must(t, "ScanAll no bins", err)
	seen, n = drain(t, rs)
	for _, r := range seen {
		if len(r.Bins) != 0 {
			t.Fatalf("scan without bin data returned bins %v", r.Bins)
		}
	}
	if n != 30 {
		t.Fatalf("scan scanB: %d", n)
	}

	stmt := as.NewStatement("test", "scanA")
	must(t, "filter", stmt.SetFilter(as.NewEqualFilter("grp", 3)))
	rs, err = cl.Query(nil, stmt)
	must(t, "Query int", err)
	seen, n = drain(t, rs)
	if n != 20 {
		t.Fatalf("query grp=3: %d records, want 20", n)
	}
	for _, r := range seen {
		if r.Bins["grp"] != 3 {
			t.Fatalf("query returned %v", r.Bins)
		}
	}
	stmt = as.NewStatement("test", "scanB", "tag")
	must(t, "filter", stmt.SetFilter(as.NewEqualFilter("tag", "t2")))
	rs, err = cl.Query(nil, stmt)
	must(t, "Query string", err)
	if _, n := drain(t, rs); n != 7 { // i%4==2 for i<30: 2,6,...,26
		t.Fatalf("query tag=t2: %d records, want 7", n)
	}
	stmt = as.NewStatement("test", "scanA")
	must(t, "filter", stmt.SetFilter(as.NewRangeFilter("i", 10, 19)))
	rs, err = cl.Query(nil, stmt)
	must(t, "Query range", err)
	if _, n := drain(t, rs); n != 10 {
		t.Fatalf("query i in 10..19: %d records, want 10", n)
	}
}

func TestUDF(t *testing.T) {
	_, cl := startCluster(t, Config{})
	k := key(t, "udf", 1)
	v, err := cl.Execute(nil, k, "asobserve", "echo", as.NewValue("hello"))
	must(t, "echo", err)
	if v != "hello" {
		t.Fatalf("echo = %#v", v)
	}
	v, err = cl.Execute(nil, k, "asobserve", "add", as.NewValue("n"), as.NewValue(5))
	must(t, "add", err)
	v2, err := cl.Execute(nil, k, "asobserve", "add", as.NewValue("n"), as.NewValue(-2))
	must(t, "add", err)
	if v != 5 || v2 != 3 {
		t.Fatalf("add results %#v %#v, want 5 3", v, v2)
	}
	v, err = cl.Execute(nil, k, "asobserve", "get", as.NewValue("n"))
	must(t, "get", err)
	rec, _ := cl.Get(nil, k)
	if v != 3 || rec.Bins["n"] != 3 {
		t.Fatalf("get = %#v, record %v", v, rec.Bins)
	}
	_, err = cl.Execute(nil, k, "asobserve", "fail")
	wantCode(t, "fail", err, types.UDF_BAD_RESPONSE)
	if !strings.Contains(err.Error(), "deliberate failure") {
		t.Fatalf("fail message: %v", err)
	}
	_, err = cl.Execute(nil, k, "asobserve", "nope")
	wantCode(t, "unknown function", err, types.UDF_BAD_RESPONSE)
}

func TestCompression(t *testing.T) {
	c, cl := startCluster(t, Config{})
	big := strings.Repeat("compressible ", 500)
	wp := as.NewWritePolicy(0, 0)
	wp.UseCompression = true
	k := key(t, "z", 1)
	must(t, "compressed put", cl.Put(wp, k, as.BinMap{"s": big}))
	rp := as.NewPolicy()
	rp.UseCompression = true
	rec, err := cl.Get(rp, k)
	must(t, "get with compressed reply", err)
	if rec.Bins["s"] != big {
		t.Fatalf("compressed round trip lost data: %d bytes", len(rec.Bins["s"].(string)))
	}
	keys := putN(t, cl, "z", 50)
	bp := as.NewBatchPolicy()
	bp.UseCompression = true
	recs, err := cl.BatchGet(bp, keys)
	must(t, "compressed BatchGet", err)
	for i, r := range recs {
		if r == nil || r.Bins["i"] != i {
			t.Fatalf("compressed BatchGet[%d] = %v", i, r)
		}
	}
	if got := c.compressedRequests.Load(); got < 2 {
		t.Fatalf("compressed requests = %d, want >= 2", got)
	}
}

func TestMultiNode(t *testing.T) {
	c, cl := startCluster(t, Config{Nodes: 3})
	keys := putN(t, cl, "multi", 100)
	before := c.NodeRequests()
	recs, err := cl.BatchGet(nil, keys)
	must(t, "BatchGet", err)
	for i, r := range recs {
		if r == nil || r.Bins["i"] != i {
			t.Fatalf("BatchGet[%d] = %v", i, r)
		}
	}
	after := c.NodeRequests()
	for i := range after {
		if after[i]-before[i] != 1 {
			t.Fatalf("node %d served %d batch requests, want exactly 1 (all: %v -> %v)", i, after[i]-before[i], before, after)
		}
	}
	rs, err := cl.ScanAll(nil, "test", "multi")
	must(t, "ScanAll", err)
	seen, n := drain(t, rs)
	if n != 100 || len(seen) != 100 {
		t.Fatalf("scan: %d records, %d distinct, want 100 each", n, len(seen))
	}
	for _, k := range keys {
		if _, ok := seen[[20]byte(k.Digest())]; !ok {
			t.Fatalf("scan missed key %v", k)
		}
	}
	final := c.NodeRequests()
	for i := range final {
		if final[i]-after[i] != 1 {
			t.Fatalf("node %d served %d scan requests, want 1", i, final[i]-after[i])
		}
	}
}

func TestFaults(t *testing.T) {
	c, cl := startCluster(t, Config{})
	keys := putN(t, cl, "f", 10)
	good := key(t, "g", 1)
	must(t, "put good", cl.Put(nil, good, as.BinMap{"a": 1}))
	noRetry := as.NewPolicy()
	noRetry.MaxRetries = 0
	noRetry.TotalTimeout = 300 * time.Millisecond
	noRetry.SocketTimeout = 300 * time.Millisecond

	cases := []struct {
		name      string
		fault     Fault
		run       func() error
		code      types.ResultCode
		errorType string
	}{
		{"rc timeout on read", Fault{Set: "f", Command: CmdRead, ResultCode: 9},
			func() error { _, err := cl.Get(noRetry, keys[0]); return err }, types.TIMEOUT, "Timeout"},
		{"filtered out", Fault{Command: CmdRead, ResultCode: 27},
			func() error { _, err := cl.Get(noRetry, keys[0]); return err }, types.FILTERED_OUT, "FilteredOut"},
		{"parameter error on write", Fault{Command: CmdWrite, ResultCode: 4},
			func() error { return cl.Put(nil, keys[0], as.BinMap{"x": 1}) }, types.PARAMETER_ERROR, "InvalidArgument"},
		{"key busy on delete", Fault{Command: CmdDelete, ResultCode: 14},
			func() error {
				wp := as.NewWritePolicy(0, 0)
				wp.MaxRetries = 0
				_, err := cl.Delete(wp, keys[0])
				return err
			}, types.KEY_BUSY, "KeyBusy"},
		{"batch", Fault{Command: CmdBatch, ResultCode: 9},
			func() error { _, err := cl.BatchGet(nil, keys); return err }, types.TIMEOUT, "Timeout"},
		{"scan", Fault{Command: CmdScan, ResultCode: 4},
			func() error {
				sp := as.NewScanPolicy()
				sp.MaxRetries = 0
				rs, err := cl.ScanAll(sp, "test", "f")
				if err != nil {
					return err
				}
				for r := range rs.Results() {
					if r.Err != nil {
						return r.Err
					}
				}
				return nil
			}, types.PARAMETER_ERROR, "InvalidArgument"},
		{"query", Fault{Command: CmdQuery, ResultCode: 4},
			func() error {
				qp := as.NewQueryPolicy()
				qp.MaxRetries = 0
				stmt := as.NewStatement("test", "f")
				_ = stmt.SetFilter(as.NewEqualFilter("grp", 1))
				rs, err := cl.Query(qp, stmt)
				if err != nil {
					return err
				}
				for r := range rs.Results() {
					if r.Err != nil {
						return r.Err
					}
				}
				return nil
			}, types.PARAMETER_ERROR, "InvalidArgument"},
		{"udf", Fault{Command: CmdUDF, ResultCode: 9},
			func() error { _, err := cl.Execute(nil, keys[0], "p", "echo"); return err }, types.TIMEOUT, "Timeout"},
		{"hang", Fault{Command: CmdRead, Hang: true},
			func() error { _, err := cl.Get(noRetry, keys[0]); return err }, types.TIMEOUT, "Timeout"},
		{"close", Fault{Command: CmdRead, CloseConn: true},
			func() error { _, err := cl.Get(noRetry, keys[0]); return err }, types.NETWORK_ERROR, "Connection"},
		{"close with retries", Fault{Command: CmdRead, CloseConn: true},
			func() error { _, err := cl.Get(nil, keys[0]); return err }, types.NETWORK_ERROR, "Connection"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.SetFaults([]Fault{tc.fault})
			defer c.SetFaults(nil)
			err := tc.run()
			// The client may wrap the cause in MAX_RETRIES_EXCEEDED; Code unwraps it.
			if err == nil || clienterr.Code(err) != int(tc.code) {
				t.Fatalf("got %v (effective code %d), want code %d", err, clienterr.Code(err), tc.code)
			}
			if got := clienterr.Classify("get", err); got != tc.errorType {
				t.Fatalf("classified as %q, want %q (err %v)", got, tc.errorType, err)
			}
			// The fault is scoped: another set still works.
			if tc.fault.Set != "" {
				if _, err := cl.Get(nil, good); err != nil {
					t.Fatalf("unscoped get failed: %v", err)
				}
			}
		})
	}

	t.Run("latency", func(t *testing.T) {
		c.SetFaults([]Fault{{Namespace: "test", Set: "f", Latency: 50 * time.Millisecond}})
		defer c.SetFaults(nil)
		start := time.Now()
		_, err := cl.Get(nil, keys[1])
		must(t, "slow get", err)
		if d := time.Since(start); d < 50*time.Millisecond {
			t.Fatalf("get took %v, want >= 50ms", d)
		}
		start = time.Now()
		_, err = cl.Get(nil, good)
		must(t, "fast get", err)
		if d := time.Since(start); d > 40*time.Millisecond {
			t.Fatalf("unmatched get took %v", d)
		}
	})
	t.Run("percent", func(t *testing.T) {
		c.SetFaults([]Fault{{Command: CmdRead, ResultCode: 14, Percent: 25}})
		defer c.SetFaults(nil)
		failed := 0
		for i := 0; i < 40; i++ {
			if _, err := cl.Get(noRetry, keys[i%10]); err != nil {
				if clienterr.Code(err) != int(types.KEY_BUSY) {
					t.Fatalf("pct: %v", err)
				}
				failed++
			}
		}
		if failed != 10 {
			t.Fatalf("25%% of 40 reads failed %d times, want exactly 10", failed)
		}
	})
}

func TestParseFault(t *testing.T) {
	f, err := ParseFault("ns=test,set=users,cmd=read,latency=5ms,rc=9,close,hang,pct=50")
	must(t, "parse", err)
	want := Fault{Namespace: "test", Set: "users", Command: "read", Latency: 5 * time.Millisecond, ResultCode: 9, CloseConn: true, Hang: true, Percent: 50}
	if f != want {
		t.Fatalf("got %+v, want %+v", f, want)
	}
	if f.String() != "ns=test,set=users,cmd=read,latency=5ms,rc=9,close,hang,pct=50" {
		t.Fatalf("String() = %q", f.String())
	}
	for _, kind := range []string{CmdTxnVerify, CmdTxnRoll} {
		if f, err := ParseFault("cmd=" + kind); err != nil || f.Command != kind {
			t.Fatalf("ParseFault(cmd=%s) = %+v, %v", kind, f, err)
		}
	}
	for _, bad := range []string{"", "cmd=fly", "rc=x", "rc=300", "pct=101", "latency=fast", "bogus=1"} {
		if _, err := ParseFault(bad); err == nil {
			t.Fatalf("ParseFault(%q) accepted", bad)
		}
	}
}

func TestLoad200Connections(t *testing.T) {
	if testing.Short() {
		t.Skip("10 s load test skipped in -short mode (make test and CI do not use -short)")
	}
	c, _ := startCluster(t, Config{Logf: t.Logf})
	cp := as.NewClientPolicy()
	cp.ConnectionQueueSize = 256
	cp.MinConnectionsPerNode = 200
	cl := newClient(t, c, cp)
	keys := putN(t, cl, "load", 1000)
	const workers = 200
	duration := 10 * time.Second
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ops, errs int
	var firstErr error
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			n, e := 0, 0
			var fe error
			for i := w; time.Now().Before(deadline); i++ {
				k := keys[i%len(keys)]
				var err error
				switch i % 10 {
				case 0, 1, 2, 3:
					_, err = cl.Get(nil, k)
				case 4, 5:
					err = cl.Put(nil, k, as.BinMap{"i": i % len(keys), "grp": i % 5, "tag": "x"})
				case 6:
					_, err = cl.Operate(nil, k, as.AddOp(as.NewBin("n", 1)), as.GetBinOp("n"))
				case 7:
					_, err = cl.Exists(nil, k)
				case 8:
					bk := []*as.Key{keys[(i+1)%len(keys)], keys[(i+2)%len(keys)], keys[(i+3)%len(keys)]}
					_, err = cl.BatchGet(nil, bk)
				case 9:
					err = cl.Touch(nil, k)
				}
				n++
				if err != nil {
					e++
					if fe == nil {
						fe = err
					}
				}
			}
			mu.Lock()
			ops += n
			errs += e
			if firstErr == nil {
				firstErr = fe
			}
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	t.Logf("load: %d ops in %v over %d goroutines: %.0f ops/s, %d errors, max open connections %d",
		ops, duration, workers, float64(ops)/duration.Seconds(), errs, c.maxConns.Load())
	if errs != 0 {
		t.Fatalf("%d errors, first: %v", errs, firstErr)
	}
	if got := c.maxConns.Load(); got < workers {
		t.Fatalf("max open connections %d, want >= %d", got, workers)
	}
}
