package workload

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	as "github.com/aerospike/aerospike-client-go/v7"

	"github.com/asobserve/asobserve/internal/semconv"
)

// Key spaces per set: main keys are preloaded and never deleted; volatile keys are
// preloaded and are what remove and batch_remove delete; missing keys never exist.
type keySpace struct {
	main, volatile, missing []*as.Key
}

type runner struct {
	client Client
	cfg    Config
	cycle  []string
	next   atomic.Int64
	perOp  map[string]*atomic.Int64
	keys   map[string]*keySpace

	batchPolicy *as.BatchPolicy
	scanPolicy  *as.ScanPolicy
	queryPolicy *as.QueryPolicy
	createOnly  *as.WritePolicy
	wrongGen    *as.WritePolicy
}

func newRunner(client Client, cfg Config, cycle []string) *runner {
	r := &runner{client: client, cfg: cfg, cycle: cycle, perOp: map[string]*atomic.Int64{}, keys: map[string]*keySpace{}}
	for _, op := range Operations {
		r.perOp[op] = &atomic.Int64{}
	}
	r.batchPolicy = as.NewBatchPolicy()
	r.scanPolicy = as.NewScanPolicy()
	r.queryPolicy = as.NewQueryPolicy()
	if cfg.ConcurrentNodes > 0 {
		r.batchPolicy.ConcurrentNodes = cfg.ConcurrentNodes
		r.scanPolicy.MaxConcurrentNodes = cfg.ConcurrentNodes
		r.queryPolicy.MaxConcurrentNodes = cfg.ConcurrentNodes
	}
	r.createOnly = as.NewWritePolicy(0, 0)
	r.createOnly.RecordExistsAction = as.CREATE_ONLY
	// No stored record reaches this generation, so the check always fails.
	r.wrongGen = as.NewWritePolicy(0xFFFFFFF0, 0)
	r.wrongGen.GenerationPolicy = as.EXPECT_GEN_EQUAL
	return r
}

func mustKey(ns, set string, v string) *as.Key {
	k, err := as.NewKey(ns, set, v)
	if err != nil {
		panic(err) // only fails for unsupported key types
	}
	return k
}

func (r *runner) preload() error {
	ns := r.cfg.Namespace
	for _, set := range r.cfg.Sets {
		ks := &keySpace{}
		for i := 0; i < r.cfg.Keys; i++ {
			ks.main = append(ks.main, mustKey(ns, set, fmt.Sprintf("k%d", i)))
			ks.volatile = append(ks.volatile, mustKey(ns, set, fmt.Sprintf("v%d", i)))
			ks.missing = append(ks.missing, mustKey(ns, set, fmt.Sprintf("missing%d", i)))
		}
		r.keys[set] = ks
	}
	type job struct {
		k   *as.Key
		idx int
	}
	jobs := make(chan job)
	errs := make(chan error, r.cfg.Concurrency)
	var wg sync.WaitGroup
	for i := 0; i < r.cfg.Concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := r.client.Put(nil, j.k, r.bins(j.idx)); err != nil {
					select {
					case errs <- fmt.Errorf("preload %v: %v", j.k, err):
					default:
					}
				}
			}
		}()
	}
	for _, set := range r.cfg.Sets {
		for i := 0; i < r.cfg.Keys; i++ {
			jobs <- job{r.keys[set].main[i], i}
			jobs <- job{r.keys[set].volatile[i], i}
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

func (r *runner) bins(idx int) as.BinMap {
	return as.BinMap{"n": idx, "s": "v", "grp": idx % 10}
}

// binList is bins(idx) for the methods that take a bin list.
func (r *runner) binList(idx int) []*as.Bin {
	return []*as.Bin{as.NewBin("n", idx), as.NewBin("s", "v"), as.NewBin("grp", idx%10)}
}

// objectRecord is a record as the object API maps it: the bins that bins writes.
type objectRecord struct {
	N   int    `as:"n"`
	S   string `as:"s"`
	Grp int    `as:"grp"`
}

// mix64 is splitmix64: a cheap, well-spread hash for picking keys deterministically.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// batchSize: every 4th batch has exactly one key (the client's single-command path).
func batchSize(n int64) int {
	if n%4 == 0 {
		return 1
	}
	return 2 + int(n%7)
}

// do runs operation number seq and records its outcome and latency.
func (r *runner) do(w *worker, seq int64) {
	op := r.cycle[seq%int64(len(r.cycle))]
	n := r.perOp[op].Add(1) - 1
	set := r.cfg.Sets[n%int64(len(r.cfg.Sets))]
	ns := r.cfg.Namespace
	ks := r.keys[set]
	idx := int(mix64(uint64(n)^uint64(r.cfg.Seed)^uint64(len(op))<<56) % uint64(r.cfg.Keys))
	key := func(space []*as.Key, i int) *as.Key {
		if r.cfg.FreshKeys {
			return mustKey(ns, set, space[i].Value().String())
		}
		return space[i]
	}
	k := key(ks.main, idx)
	failing := r.cfg.Errors && n%10 == 5
	batchKeys := func(space []*as.Key) []*as.Key {
		size := batchSize(n)
		keys := make([]*as.Key, size)
		for i := range keys {
			keys[i] = key(space, (idx+i*7)%len(space))
		}
		return keys
	}

	// With EveryMethod, operation n runs the variant-th of the methods counted under its
	// name. It changes every 10th operation, so that each variant also gets each of the
	// failing outcomes, which are picked by n%10.
	variant := func(methods int) int {
		if !r.cfg.EveryMethod {
			return 0
		}
		return int(n / 10 % int64(methods))
	}
	// node picks the node of a node-scoped operation, which NodeScoped counts.
	node := func() *as.Node {
		w.nodeScoped[op]++
		nodes := r.client.GetNodes()
		if len(nodes) == 0 {
			return nil
		}
		return nodes[idx%len(nodes)]
	}
	grpStmt := func() *as.Statement {
		stmt := as.NewStatement(ns, set)
		if err := stmt.SetFilter(as.NewEqualFilter("grp", int(n%10))); err != nil {
			panic(err)
		}
		return stmt
	}

	var err error
	var start time.Time
	switch op {
	case semconv.OpPut:
		policy := (*as.WritePolicy)(nil)
		if r.cfg.Errors && n%10 == 3 {
			policy = r.createOnly
		} else if r.cfg.Errors && n%10 == 7 {
			policy = r.wrongGen
		}
		switch variant(3) {
		case 0:
			bins := r.bins(idx)
			start = time.Now()
			err = r.client.Put(policy, k, bins)
		case 1:
			bins := r.binList(idx)
			start = time.Now()
			err = r.client.PutBins(policy, k, bins...)
		default:
			obj := &objectRecord{N: idx, S: "v", Grp: idx % 10}
			start = time.Now()
			err = r.client.PutObject(policy, k, obj)
		}
	case semconv.OpGet:
		if failing {
			k = key(ks.missing, idx)
		}
		switch variant(3) {
		case 0:
			start = time.Now()
			_, err = r.client.Get(nil, k)
		case 1:
			start = time.Now()
			_, err = r.client.GetHeader(nil, k)
		default:
			var obj objectRecord
			start = time.Now()
			err = r.client.GetObject(nil, k, &obj)
		}
	case semconv.OpSelect:
		start = time.Now()
		_, err = r.client.Get(nil, k, "s", "n")
	case semconv.OpExists:
		if failing {
			k = key(ks.missing, idx)
		}
		start = time.Now()
		_, err = r.client.Exists(nil, k)
	case semconv.OpRemove:
		k = key(ks.volatile, idx)
		start = time.Now()
		_, err = r.client.Delete(nil, k)
	case semconv.OpTouch:
		if failing {
			k = key(ks.missing, idx)
		}
		start = time.Now()
		err = r.client.Touch(nil, k)
	case semconv.OpAppend:
		if variant(2) == 0 {
			bins := as.BinMap{"s": "a"}
			start = time.Now()
			err = r.client.Append(nil, k, bins)
		} else {
			bin := as.NewBin("s", "a")
			start = time.Now()
			err = r.client.AppendBins(nil, k, bin)
		}
	case semconv.OpPrepend:
		if variant(2) == 0 {
			bins := as.BinMap{"s": "p"}
			start = time.Now()
			err = r.client.Prepend(nil, k, bins)
		} else {
			bin := as.NewBin("s", "p")
			start = time.Now()
			err = r.client.PrependBins(nil, k, bin)
		}
	case semconv.OpIncrement:
		if variant(2) == 0 {
			bins := as.BinMap{"n": 1}
			start = time.Now()
			err = r.client.Add(nil, k, bins)
		} else {
			bin := as.NewBin("n", 1)
			start = time.Now()
			err = r.client.AddBins(nil, k, bin)
		}
	case semconv.OpOperate:
		ops := []*as.Operation{as.AddOp(as.NewBin("n", 1)), as.GetBinOp("n")}
		start = time.Now()
		_, err = r.client.Operate(nil, k, ops...)
	case semconv.OpBatchRead:
		keys := batchKeys(ks.main)
		err = r.batchRead(n, keys, &start)
	case semconv.OpBatchOperate:
		keys := batchKeys(ks.main)
		recs := make([]as.BatchRecordIfc, len(keys))
		for i, bk := range keys {
			if i%2 == 0 {
				recs[i] = as.NewBatchWrite(nil, bk, as.PutOp(as.NewBin("s", "b")))
			} else {
				recs[i] = as.NewBatchRead(nil, bk, []string{"n"})
			}
		}
		start = time.Now()
		err = r.client.BatchOperate(r.batchPolicy, recs)
	case semconv.OpBatchRemove:
		keys := batchKeys(ks.volatile)
		start = time.Now()
		_, err = r.client.BatchDelete(r.batchPolicy, nil, keys)
	case semconv.OpBatchApply:
		keys := batchKeys(ks.main)
		fn, args := "add", []as.Value{as.NewValue("u"), as.NewValue(1)}
		if failing {
			fn, args = "fail", nil // the test server's UDF that always fails
		}
		start = time.Now()
		_, err = r.client.BatchExecute(r.batchPolicy, nil, keys, "asobserve", fn, args...)
	case semconv.OpQuery:
		stmt := grpStmt()
		switch variant(6) {
		case 0:
			start = time.Now()
			rs, qerr := r.client.Query(r.queryPolicy, stmt)
			err = drain(rs, qerr)
		case 1:
			filter := as.NewPartitionFilterAll()
			start = time.Now()
			rs, qerr := r.client.QueryPartitions(r.queryPolicy, stmt, filter)
			err = drain(rs, qerr)
		case 2:
			nd := node()
			start = time.Now()
			rs, qerr := r.client.QueryNode(r.queryPolicy, nd, stmt)
			err = drain(rs, qerr)
		case 3:
			ch := make(chan *objectRecord, 16)
			start = time.Now()
			rs, qerr := r.client.QueryObjects(r.queryPolicy, stmt, ch)
			err = drainObjects(rs, qerr, ch)
		case 4:
			ch, filter := make(chan *objectRecord, 16), as.NewPartitionFilterAll()
			start = time.Now()
			rs, qerr := r.client.QueryPartitionObjects(r.queryPolicy, stmt, ch, filter)
			err = drainObjects(rs, qerr, ch)
		default:
			ch, nd := make(chan *objectRecord, 16), node()
			start = time.Now()
			rs, qerr := r.client.QueryNodeObjects(r.queryPolicy, nd, stmt, ch)
			err = drainObjects(rs, qerr, ch)
		}
	case semconv.OpScan:
		switch variant(6) {
		case 0:
			start = time.Now()
			rs, serr := r.client.ScanAll(r.scanPolicy, ns, set)
			err = drain(rs, serr)
		case 1:
			filter := as.NewPartitionFilterAll()
			start = time.Now()
			rs, serr := r.client.ScanPartitions(r.scanPolicy, filter, ns, set)
			err = drain(rs, serr)
		case 2:
			nd := node()
			start = time.Now()
			rs, serr := r.client.ScanNode(r.scanPolicy, nd, ns, set)
			err = drain(rs, serr)
		case 3:
			ch := make(chan *objectRecord, 16)
			start = time.Now()
			rs, serr := r.client.ScanAllObjects(r.scanPolicy, ch, ns, set)
			err = drainObjects(rs, serr, ch)
		case 4:
			ch, filter := make(chan *objectRecord, 16), as.NewPartitionFilterAll()
			start = time.Now()
			rs, serr := r.client.ScanPartitionObjects(r.scanPolicy, ch, filter, ns, set)
			err = drainObjects(rs, serr, ch)
		default:
			ch, nd := make(chan *objectRecord, 16), node()
			start = time.Now()
			rs, serr := r.client.ScanNodeObjects(r.scanPolicy, nd, ch, ns, set)
			err = drainObjects(rs, serr, ch)
		}
	case semconv.OpQueryBackground:
		err = r.background(variant(3), failing, grpStmt(), node, &start)
	case semconv.OpExecute:
		args := []as.Value{as.NewValue("u"), as.NewValue(1)}
		start = time.Now()
		_, err = r.client.Execute(nil, k, "asobserve", "add", args...)
	default:
		panic("unknown op " + op)
	}
	w.record(op, ns, set, err, time.Since(start))
}

// batchRead rotates through every batch read API: the five of the seed workload, and the
// object API's with EveryMethod.
func (r *runner) batchRead(n int64, keys []*as.Key, start *time.Time) (err error) {
	apis := int64(5)
	if r.cfg.EveryMethod {
		apis = 6
	}
	switch n % apis {
	case 0:
		*start = time.Now()
		_, err = r.client.BatchGet(r.batchPolicy, keys)
	case 1:
		*start = time.Now()
		_, err = r.client.BatchGetHeader(r.batchPolicy, keys)
	case 2:
		*start = time.Now()
		_, err = r.client.BatchExists(r.batchPolicy, keys)
	case 3:
		*start = time.Now()
		_, err = r.client.BatchGetOperate(r.batchPolicy, keys, as.GetBinOp("n"))
	case 5:
		objects := make([]interface{}, len(keys))
		for i := range objects {
			objects[i] = &objectRecord{}
		}
		*start = time.Now()
		_, err = r.client.BatchGetObjects(r.batchPolicy, keys, objects)
	default:
		// Named bins: v7.10.2 fails a 1-key BatchGetComplex that reads all bins on the
		// client side ("No operations were passed") without contacting the server.
		reads := make([]*as.BatchRead, len(keys))
		for i, bk := range keys {
			reads[i] = as.NewBatchRead(nil, bk, []string{"n", "s"})
		}
		*start = time.Now()
		err = r.client.BatchGetComplex(batchGetComplexPolicy(r.batchPolicy), reads)
	}
	return err
}

// background starts a background job on the records of stmt: write operations, a record
// UDF on every node, or one on a single node. Its failing outcomes are the client's own
// refusals: a read operation in a background query, a node-scoped job without a node.
// Nothing waits for the job: polling its task is not part of the operation.
func (r *runner) background(variant int, failing bool, stmt *as.Statement, node func() *as.Node, start *time.Time) (err error) {
	args := []as.Value{as.NewValue("hits"), as.NewValue(1)}
	switch variant {
	case 0:
		op := as.PutOp(as.NewBin("bg", 1))
		if failing {
			op = as.GetBinOp("n")
		}
		*start = time.Now()
		_, err = r.client.QueryExecute(r.queryPolicy, nil, stmt, op)
	case 1:
		*start = time.Now()
		_, err = r.client.ExecuteUDF(r.queryPolicy, stmt, "asobserve", "add", args...)
	default:
		var nd *as.Node
		if !failing {
			nd = node()
		}
		*start = time.Now()
		_, err = r.client.ExecuteUDFNode(r.queryPolicy, nd, stmt, "asobserve", "add", args...)
	}
	return err
}

// drainObjects reads an object recordset to its end and returns the first error read
// from its Errors channel, which is what its caller sees. The objects and the errors are
// read together: the client blocks on a full errors channel before it closes the objects'.
func drainObjects(rs *as.Recordset, err as.Error, objects chan *objectRecord) error {
	if err != nil {
		return err
	}
	var first error
	objs, errs := objects, rs.Errors()
	for objs != nil || errs != nil {
		select {
		case _, ok := <-objs:
			if !ok {
				objs = nil
			}
		case e, ok := <-errs:
			if !ok {
				errs = nil
			} else if first == nil {
				first = e
			}
		}
	}
	return first
}

// drain reads a recordset to its end and returns the first error.
func drain(rs *as.Recordset, err as.Error) error {
	if err != nil {
		return err
	}
	var first error
	for res := range rs.Results() {
		if res.Err != nil && first == nil {
			first = res.Err
		}
	}
	return first
}
