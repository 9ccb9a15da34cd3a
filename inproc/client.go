package inproc

import (
	"sync/atomic"
	"time"

	as "github.com/aerospike/aerospike-client-go/v7"

	"github.com/asobserve/asobserve/internal/clienterr"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/outcome"
	"github.com/asobserve/asobserve/internal/semconv"
)

// Client is an *as.Client whose data-path methods record db_client_operation_duration_seconds
// (and spans, after InitTracing). Every other method is the embedded client's own.
type Client struct {
	*as.Client
}

// Wrap instruments c. Adoption is one line: client := inproc.Wrap(asClient).
func Wrap(c *as.Client) *Client {
	state()
	return &Client{Client: c}
}

var opIDs atomic.Uint64

// operation is one db_operation_name with the series its calls recorded into lately: an
// application uses a few namespaces, sets and outcomes per operation, and comparing three
// strings with a few cached ones costs far less than finding the series by its labels (a
// map lookup keyed by five strings) every time.
type operation struct {
	name string
	hot  atomic.Pointer[hotSet]
}

// hotSet is immutable: a miss publishes a new one, so a hit reads without locks or writes.
type hotSet struct {
	state  *pkgState // a new state (tests) has a new recorder
	series []hotSeries
}

// hotSeriesMax bounds the cache per operation: beyond it, the oldest series is the one
// found by its labels again.
const hotSeriesMax = 8

type hotSeries struct {
	namespace, set, errType string
	labelSet                string // the set label after the collection cap
	series                  *metrics.OpSeries
}

var (
	opAppend       = &operation{name: semconv.OpAppend}
	opBatchOperate = &operation{name: semconv.OpBatchOperate}
	opBatchRead    = &operation{name: semconv.OpBatchRead}
	opBatchRemove  = &operation{name: semconv.OpBatchRemove}
	opExecute      = &operation{name: semconv.OpExecute}
	opExists       = &operation{name: semconv.OpExists}
	opGet          = &operation{name: semconv.OpGet}
	opIncrement    = &operation{name: semconv.OpIncrement}
	opOperate      = &operation{name: semconv.OpOperate}
	opPrepend      = &operation{name: semconv.OpPrepend}
	opPut          = &operation{name: semconv.OpPut}
	opQuery        = &operation{name: semconv.OpQuery}
	opRemove       = &operation{name: semconv.OpRemove}
	opScan         = &operation{name: semconv.OpScan}
	opSelect       = &operation{name: semconv.OpSelect}
	opTouch        = &operation{name: semconv.OpTouch}

	opBatchApply      = &operation{name: semconv.OpBatchApply}
	opQueryBackground = &operation{name: semconv.OpQueryBackground}
)

// series is the one the call's labels name: a cached one, else the recorder's (the
// collection cap applied), which joins the cache as its newest.
func (op *operation) series(s *pkgState, namespace, set, errType string) *hotSeries {
	cur := op.hot.Load()
	if cur != nil && cur.state == s {
		for i := range cur.series {
			if h := &cur.series[i]; h.namespace == namespace && h.set == set && h.errType == errType {
				return h
			}
		}
	}
	series, labelSet := s.rec.OpSeries(s.target.Identity, op.name, namespace, set, errType)
	next := &hotSet{state: s, series: make([]hotSeries, 1, hotSeriesMax)}
	next.series[0] = hotSeries{namespace: namespace, set: set, errType: errType, labelSet: labelSet, series: series}
	if cur != nil && cur.state == s {
		next.series = append(next.series, cur.series[:min(len(cur.series), hotSeriesMax-1)]...)
	}
	op.hot.Store(next) // a concurrent miss may win instead: its set is as good
	return &next.series[0]
}

// record is the recorder's Op (metrics.Recorder.Op) with the series lookup cached. With
// tracing on (tr not nil), the observation carries an exemplar of ev's span as in eBPF mode.
func (op *operation) record(s *pkgState, ev *observe.Op, tr *tracer) {
	h := op.series(s, ev.Namespace, ev.Set, ev.ErrorType)
	if tr == nil {
		h.series.Observe(ev.Duration())
	} else {
		h.series.ObserveLinked(s.target, *ev, tr.spanOf)
	}
	// The observers see the set label the histogram got (after the collection cap); the
	// caller's ev keeps the set as called, for its span.
	set := ev.Set
	ev.Set = h.labelSet
	s.rec.Relay(s.target, ev)
	ev.Set = set
}

// clockBase anchors call timestamps: time.Since(clockBase) reads only the monotonic clock,
// half the cost of time.Now().
var clockBase = time.Now()

// stamp is a call's start as monotonic time since clockBase; notRecorded means the call
// is not timed because neither metrics nor tracing want it.
type stamp time.Duration

const notRecorded stamp = -1

func begin() stamp {
	s := state()
	if !s.rec.OperationsEnabled() && s.tracer.Load() == nil {
		return notRecorded
	}
	return stamp(time.Since(clockBase))
}

// finish records one operation that started at start; err is the call's error.
func finish(start stamp, op *operation, namespace, set string, err as.Error) {
	if start == notRecorded {
		return
	}
	end := stamp(time.Since(clockBase))
	errType := outcome.Success
	if err != nil { // a success converts no interface and calls nothing
		errType = clienterr.Classify(op.name, err)
	}
	s := state()
	tr := s.tracer.Load()
	if tr == nil && !s.rec.Relays() {
		// Only the histogram wants the call: it needs no event built.
		if s.rec.OperationsEnabled() {
			op.series(s, namespace, set, errType).series.Observe(time.Duration(end - start))
		}
		return
	}
	ev := observe.Op{Name: op.name, Namespace: namespace, Set: set, ErrorType: errType, Start: int64(start), End: int64(end)}
	if tr != nil {
		// Before recording: the span's IDs derive from ID, and the exemplars name the span.
		ev.ID = opIDs.Add(1)
		if errType != "" {
			ev.ResultCode = clienterr.Code(err)
		}
	}
	if s.rec.OperationsEnabled() {
		op.record(s, &ev, tr)
	}
	if tr != nil {
		tr.Op(s.target, ev)
	}
}

// wall converts a stamp to wall time by the wall clock now, so that spans follow NTP over
// long runs.
func wall(ns int64) time.Time { return time.Now().Add(time.Duration(ns) - time.Since(clockBase)) }

func keyNS(k *as.Key) (string, string) {
	if k == nil {
		return "", ""
	}
	return k.Namespace(), k.SetName()
}

// firstKeyNS gives a batch's namespace and set: those of its first key, as in eBPF mode.
func firstKeyNS(keys []*as.Key) (string, string) {
	if len(keys) == 0 {
		return "", ""
	}
	return keyNS(keys[0])
}

// Put records "put".
func (c *Client) Put(policy *as.WritePolicy, key *as.Key, binMap as.BinMap) as.Error {
	start := begin()
	err := c.Client.Put(policy, key, binMap)
	ns, set := keyNS(key)
	finish(start, opPut, ns, set, err)
	return err
}

// PutBins records "put".
func (c *Client) PutBins(policy *as.WritePolicy, key *as.Key, bins ...*as.Bin) as.Error {
	start := begin()
	err := c.Client.PutBins(policy, key, bins...)
	ns, set := keyNS(key)
	finish(start, opPut, ns, set, err)
	return err
}

// Get records "get", or "select" when bin names are given.
func (c *Client) Get(policy *as.BasePolicy, key *as.Key, binNames ...string) (*as.Record, as.Error) {
	start := begin()
	rec, err := c.Client.Get(policy, key, binNames...)
	ns, set := keyNS(key)
	op := opGet
	if len(binNames) > 0 {
		op = opSelect
	}
	finish(start, op, ns, set, err)
	return rec, err
}

// GetHeader records "get".
func (c *Client) GetHeader(policy *as.BasePolicy, key *as.Key) (*as.Record, as.Error) {
	start := begin()
	rec, err := c.Client.GetHeader(policy, key)
	ns, set := keyNS(key)
	finish(start, opGet, ns, set, err)
	return rec, err
}

// Exists records "exists"; a missing record is a success.
func (c *Client) Exists(policy *as.BasePolicy, key *as.Key) (bool, as.Error) {
	start := begin()
	ok, err := c.Client.Exists(policy, key)
	ns, set := keyNS(key)
	finish(start, opExists, ns, set, err)
	return ok, err
}

// Delete records "remove"; a missing record is a success.
func (c *Client) Delete(policy *as.WritePolicy, key *as.Key) (bool, as.Error) {
	start := begin()
	existed, err := c.Client.Delete(policy, key)
	ns, set := keyNS(key)
	finish(start, opRemove, ns, set, err)
	return existed, err
}

// Touch records "touch".
func (c *Client) Touch(policy *as.WritePolicy, key *as.Key) as.Error {
	start := begin()
	err := c.Client.Touch(policy, key)
	ns, set := keyNS(key)
	finish(start, opTouch, ns, set, err)
	return err
}

// Append records "append".
func (c *Client) Append(policy *as.WritePolicy, key *as.Key, binMap as.BinMap) as.Error {
	start := begin()
	err := c.Client.Append(policy, key, binMap)
	ns, set := keyNS(key)
	finish(start, opAppend, ns, set, err)
	return err
}

// AppendBins records "append".
func (c *Client) AppendBins(policy *as.WritePolicy, key *as.Key, bins ...*as.Bin) as.Error {
	start := begin()
	err := c.Client.AppendBins(policy, key, bins...)
	ns, set := keyNS(key)
	finish(start, opAppend, ns, set, err)
	return err
}

// Prepend records "prepend".
func (c *Client) Prepend(policy *as.WritePolicy, key *as.Key, binMap as.BinMap) as.Error {
	start := begin()
	err := c.Client.Prepend(policy, key, binMap)
	ns, set := keyNS(key)
	finish(start, opPrepend, ns, set, err)
	return err
}

// PrependBins records "prepend".
func (c *Client) PrependBins(policy *as.WritePolicy, key *as.Key, bins ...*as.Bin) as.Error {
	start := begin()
	err := c.Client.PrependBins(policy, key, bins...)
	ns, set := keyNS(key)
	finish(start, opPrepend, ns, set, err)
	return err
}

// Add records "increment".
func (c *Client) Add(policy *as.WritePolicy, key *as.Key, binMap as.BinMap) as.Error {
	start := begin()
	err := c.Client.Add(policy, key, binMap)
	ns, set := keyNS(key)
	finish(start, opIncrement, ns, set, err)
	return err
}

// AddBins records "increment".
func (c *Client) AddBins(policy *as.WritePolicy, key *as.Key, bins ...*as.Bin) as.Error {
	start := begin()
	err := c.Client.AddBins(policy, key, bins...)
	ns, set := keyNS(key)
	finish(start, opIncrement, ns, set, err)
	return err
}

// Operate records "operate".
func (c *Client) Operate(policy *as.WritePolicy, key *as.Key, operations ...*as.Operation) (*as.Record, as.Error) {
	start := begin()
	rec, err := c.Client.Operate(policy, key, operations...)
	ns, set := keyNS(key)
	finish(start, opOperate, ns, set, err)
	return rec, err
}

// Execute records "execute".
func (c *Client) Execute(policy *as.WritePolicy, key *as.Key, packageName string, functionName string, args ...as.Value) (interface{}, as.Error) {
	start := begin()
	res, err := c.Client.Execute(policy, key, packageName, functionName, args...)
	ns, set := keyNS(key)
	finish(start, opExecute, ns, set, err)
	return res, err
}

// BatchGet records "batch_read".
func (c *Client) BatchGet(policy *as.BatchPolicy, keys []*as.Key, binNames ...string) ([]*as.Record, as.Error) {
	start := begin()
	recs, err := c.Client.BatchGet(policy, keys, binNames...)
	ns, set := firstKeyNS(keys)
	finish(start, opBatchRead, ns, set, err)
	return recs, err
}

// BatchGetHeader records "batch_read".
func (c *Client) BatchGetHeader(policy *as.BatchPolicy, keys []*as.Key) ([]*as.Record, as.Error) {
	start := begin()
	recs, err := c.Client.BatchGetHeader(policy, keys)
	ns, set := firstKeyNS(keys)
	finish(start, opBatchRead, ns, set, err)
	return recs, err
}

// BatchExists records "batch_read".
func (c *Client) BatchExists(policy *as.BatchPolicy, keys []*as.Key) ([]bool, as.Error) {
	start := begin()
	res, err := c.Client.BatchExists(policy, keys)
	ns, set := firstKeyNS(keys)
	finish(start, opBatchRead, ns, set, err)
	return res, err
}

// BatchGetOperate records "batch_read".
func (c *Client) BatchGetOperate(policy *as.BatchPolicy, keys []*as.Key, ops ...*as.Operation) ([]*as.Record, as.Error) {
	start := begin()
	recs, err := c.Client.BatchGetOperate(policy, keys, ops...)
	ns, set := firstKeyNS(keys)
	finish(start, opBatchRead, ns, set, err)
	return recs, err
}

// BatchGetComplex records "batch_read".
func (c *Client) BatchGetComplex(policy *as.BatchPolicy, records []*as.BatchRead) as.Error {
	start := begin()
	err := c.Client.BatchGetComplex(policy, records)
	var ns, set string
	if len(records) > 0 && records[0] != nil {
		ns, set = keyNS(records[0].Key)
	}
	finish(start, opBatchRead, ns, set, err)
	return err
}

// BatchOperate records "batch_operate".
func (c *Client) BatchOperate(policy *as.BatchPolicy, records []as.BatchRecordIfc) as.Error {
	start := begin()
	err := c.Client.BatchOperate(policy, records)
	var ns, set string
	if len(records) > 0 && records[0] != nil {
		if br := records[0].BatchRec(); br != nil {
			ns, set = keyNS(br.Key)
		}
	}
	finish(start, opBatchOperate, ns, set, err)
	return err
}

// BatchDelete records "batch_remove".
func (c *Client) BatchDelete(policy *as.BatchPolicy, deletePolicy *as.BatchDeletePolicy, keys []*as.Key) ([]*as.BatchRecord, as.Error) {
	start := begin()
	recs, err := c.Client.BatchDelete(policy, deletePolicy, keys)
	ns, set := firstKeyNS(keys)
	finish(start, opBatchRemove, ns, set, err)
	return recs, err
}

// Query records "query", timed until the recordset ends.
func (c *Client) Query(policy *as.QueryPolicy, statement *as.Statement) (*as.Recordset, as.Error) {
	start := begin()
	rs, err := c.Client.Query(policy, statement)
	ns, set := stmtNS(statement)
	finishAtEnd(start, opQuery, ns, set, rs, err)
	return rs, err
}

// QueryPartitions records "query", timed until the recordset ends.
func (c *Client) QueryPartitions(policy *as.QueryPolicy, statement *as.Statement, partitionFilter *as.PartitionFilter) (*as.Recordset, as.Error) {
	start := begin()
	rs, err := c.Client.QueryPartitions(policy, statement, partitionFilter)
	ns, set := stmtNS(statement)
	finishAtEnd(start, opQuery, ns, set, rs, err)
	return rs, err
}

// ScanAll records "scan", timed until the recordset ends.
func (c *Client) ScanAll(apolicy *as.ScanPolicy, namespace string, setName string, binNames ...string) (*as.Recordset, as.Error) {
	start := begin()
	rs, err := c.Client.ScanAll(apolicy, namespace, setName, binNames...)
	finishAtEnd(start, opScan, namespace, setName, rs, err)
	return rs, err
}

// ScanPartitions records "scan", timed until the recordset ends.
func (c *Client) ScanPartitions(apolicy *as.ScanPolicy, partitionFilter *as.PartitionFilter, namespace string, setName string, binNames ...string) (*as.Recordset, as.Error) {
	start := begin()
	rs, err := c.Client.ScanPartitions(apolicy, partitionFilter, namespace, setName, binNames...)
	finishAtEnd(start, opScan, namespace, setName, rs, err)
	return rs, err
}

// ScanNode records "scan", timed until the recordset ends.
func (c *Client) ScanNode(apolicy *as.ScanPolicy, node *as.Node, namespace string, setName string, binNames ...string) (*as.Recordset, as.Error) {
	start := begin()
	rs, err := c.Client.ScanNode(apolicy, node, namespace, setName, binNames...)
	finishAtEnd(start, opScan, namespace, setName, rs, err)
	return rs, err
}

// QueryNode records "query", timed until the recordset ends.
func (c *Client) QueryNode(policy *as.QueryPolicy, node *as.Node, statement *as.Statement) (*as.Recordset, as.Error) {
	start := begin()
	rs, err := c.Client.QueryNode(policy, node, statement)
	ns, set := stmtNS(statement)
	finishAtEnd(start, opQuery, ns, set, rs, err)
	return rs, err
}

// PutObject records "put".
func (c *Client) PutObject(policy *as.WritePolicy, key *as.Key, obj interface{}) as.Error {
	start := begin()
	err := c.Client.PutObject(policy, key, obj)
	ns, set := keyNS(key)
	finish(start, opPut, ns, set, err)
	return err
}

// GetObject records "get".
func (c *Client) GetObject(policy *as.BasePolicy, key *as.Key, obj interface{}) as.Error {
	start := begin()
	err := c.Client.GetObject(policy, key, obj)
	ns, set := keyNS(key)
	finish(start, opGet, ns, set, err)
	return err
}

// BatchGetObjects records "batch_read".
func (c *Client) BatchGetObjects(policy *as.BatchPolicy, keys []*as.Key, objects []interface{}) ([]bool, as.Error) {
	start := begin()
	found, err := c.Client.BatchGetObjects(policy, keys, objects)
	ns, set := firstKeyNS(keys)
	finish(start, opBatchRead, ns, set, err)
	return found, err
}

// ScanAllObjects records "scan", timed until the stream ends.
func (c *Client) ScanAllObjects(apolicy *as.ScanPolicy, objChan interface{}, namespace string, setName string, binNames ...string) (*as.Recordset, as.Error) {
	start := begin()
	rs, err := c.Client.ScanAllObjects(apolicy, objChan, namespace, setName, binNames...)
	finishObjectsAtEnd(start, opScan, namespace, setName, rs, err)
	return rs, err
}

// ScanPartitionObjects records "scan", timed until the stream ends.
func (c *Client) ScanPartitionObjects(apolicy *as.ScanPolicy, objChan interface{}, partitionFilter *as.PartitionFilter, namespace string, setName string, binNames ...string) (*as.Recordset, as.Error) {
	start := begin()
	rs, err := c.Client.ScanPartitionObjects(apolicy, objChan, partitionFilter, namespace, setName, binNames...)
	finishObjectsAtEnd(start, opScan, namespace, setName, rs, err)
	return rs, err
}

// ScanNodeObjects records "scan", timed until the stream ends.
func (c *Client) ScanNodeObjects(apolicy *as.ScanPolicy, node *as.Node, objChan interface{}, namespace string, setName string, binNames ...string) (*as.Recordset, as.Error) {
	start := begin()
	rs, err := c.Client.ScanNodeObjects(apolicy, node, objChan, namespace, setName, binNames...)
	finishObjectsAtEnd(start, opScan, namespace, setName, rs, err)
	return rs, err
}

// QueryObjects records "query", timed until the stream ends.
func (c *Client) QueryObjects(policy *as.QueryPolicy, statement *as.Statement, objChan interface{}) (*as.Recordset, as.Error) {
	start := begin()
	rs, err := c.Client.QueryObjects(policy, statement, objChan)
	ns, set := stmtNS(statement)
	finishObjectsAtEnd(start, opQuery, ns, set, rs, err)
	return rs, err
}

// QueryPartitionObjects records "query", timed until the stream ends.
func (c *Client) QueryPartitionObjects(policy *as.QueryPolicy, statement *as.Statement, objChan interface{}, partitionFilter *as.PartitionFilter) (*as.Recordset, as.Error) {
	start := begin()
	rs, err := c.Client.QueryPartitionObjects(policy, statement, objChan, partitionFilter)
	ns, set := stmtNS(statement)
	finishObjectsAtEnd(start, opQuery, ns, set, rs, err)
	return rs, err
}

// QueryNodeObjects records "query", timed until the stream ends.
func (c *Client) QueryNodeObjects(policy *as.QueryPolicy, node *as.Node, statement *as.Statement, objChan interface{}) (*as.Recordset, as.Error) {
	start := begin()
	rs, err := c.Client.QueryNodeObjects(policy, node, statement, objChan)
	ns, set := stmtNS(statement)
	finishObjectsAtEnd(start, opQuery, ns, set, rs, err)
	return rs, err
}

// BatchExecute records "batch_apply".
func (c *Client) BatchExecute(policy *as.BatchPolicy, udfPolicy *as.BatchUDFPolicy, keys []*as.Key, packageName string, functionName string, args ...as.Value) ([]*as.BatchRecord, as.Error) {
	start := begin()
	recs, err := c.Client.BatchExecute(policy, udfPolicy, keys, packageName, functionName, args...)
	ns, set := firstKeyNS(keys)
	finish(start, opBatchApply, ns, set, err)
	return recs, err
}

// QueryExecute records "query_background": the call that starts the job, not the job.
func (c *Client) QueryExecute(policy *as.QueryPolicy, writePolicy *as.WritePolicy, statement *as.Statement, ops ...*as.Operation) (*as.ExecuteTask, as.Error) {
	start := begin()
	task, err := c.Client.QueryExecute(policy, writePolicy, statement, ops...)
	ns, set := stmtNS(statement)
	finish(start, opQueryBackground, ns, set, err)
	return task, err
}

// ExecuteUDF records "query_background": the call that starts the job, not the job.
func (c *Client) ExecuteUDF(policy *as.QueryPolicy, statement *as.Statement, packageName string, functionName string, functionArgs ...as.Value) (*as.ExecuteTask, as.Error) {
	start := begin()
	task, err := c.Client.ExecuteUDF(policy, statement, packageName, functionName, functionArgs...)
	ns, set := stmtNS(statement)
	finish(start, opQueryBackground, ns, set, err)
	return task, err
}

// ExecuteUDFNode records "query_background": the call that starts the job, not the job.
func (c *Client) ExecuteUDFNode(policy *as.QueryPolicy, node *as.Node, statement *as.Statement, packageName string, functionName string, functionArgs ...as.Value) (*as.ExecuteTask, as.Error) {
	start := begin()
	task, err := c.Client.ExecuteUDFNode(policy, node, statement, packageName, functionName, functionArgs...)
	ns, set := stmtNS(statement)
	finish(start, opQueryBackground, ns, set, err)
	return task, err
}

func stmtNS(s *as.Statement) (string, string) {
	if s == nil {
		return "", ""
	}
	return s.Namespace, s.SetName
}

// finishAtEnd records a query or scan when its recordset ends; a call that fails at once is
// recorded at once.
func finishAtEnd(start stamp, op *operation, namespace, set string, rs *as.Recordset, err as.Error) {
	if start == notRecorded {
		return
	}
	if err != nil || rs == nil {
		finish(start, op, namespace, set, err)
		return
	}
	wait := endWaiter(rs)
	go func() {
		wait()
		finish(start, op, namespace, set, nil)
	}()
}

// finishObjectsAtEnd records an object-API query or scan when its stream ends. Its errors
// travel on the recordset's Errors channel, which the wrapper must not read (it would take
// them from the caller), so the end is observed by polling, and an error delivered there
// is not seen: the call's own error is.
func finishObjectsAtEnd(start stamp, op *operation, namespace, set string, rs *as.Recordset, err as.Error) {
	if start == notRecorded {
		return
	}
	if err != nil || rs == nil {
		finish(start, op, namespace, set, err)
		return
	}
	go func() {
		waitInactive(rs)
		finish(start, op, namespace, set, nil)
	}()
}
