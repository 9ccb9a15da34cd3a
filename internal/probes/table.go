// Package probes is the declarative table of every client function asobserve probes.
// One row per function and client-version range: what it is (an operation, a stage, or a
// helper that keeps the counting exact), its declaration as in the client source, and by
// name which argument holds the key or namespace/set, the returned Error, the recordset.
// Register words, probe points, struct fields and nested callers are derived from, or
// listed beside, the rows here; the attach code turns them into BPF configuration and
// nothing else knows about individual client functions.
package probes

import (
	"fmt"

	"golang.org/x/mod/semver"

	"github.com/asobserve/asobserve/internal/semconv"
)

// The struct fields the rows read, and those user space reads itself.
var (
	ConnNode       = Field{"Connection", "node"}
	NodeHost       = Field{"Node", "host"}
	HostName       = Field{"Host", "Name"}
	HostPort       = Field{"Host", "Port"}
	KeyNamespace   = Field{"Key", "namespace"}
	KeySet         = Field{"Key", "setName"}
	StmtNamespace  = Field{"Statement", "Namespace"}
	StmtSet        = Field{"Statement", "SetName"}
	BatchRecordKey = Field{"BatchRecord", "Key"}
	ErrWrapped     = Field{"AerospikeError", "wrapped"}
	ErrResultCode  = Field{"AerospikeError", "ResultCode"}
	// SpanContext is a field of the OTel SDK, not of the client.
	SpanContext = Field{OTelSDKTrace + ".recordingSpan", "spanContext"}
)

// locatorFields are the namespace and set fields (and for batch records, the record's
// key) each locator reads.
var locatorFields = map[Loc][]Field{
	LocKey:            {KeyNamespace, KeySet},
	LocKeySlice:       {KeyNamespace, KeySet},
	LocBrecPtrSlice:   {BatchRecordKey, KeyNamespace, KeySet},
	LocBrecIfaceSlice: {BatchRecordKey, KeyNamespace, KeySet},
	LocStmt:           {StmtNamespace, StmtSet},
}

// errorFields classify a returned Error: its result code, and the cause it wraps.
var errorFields = []Field{ErrWrapped, ErrResultCode}

// ServerAddressFields lead from an op's *Node to the host and port that user space reads
// for server.address; a build without them gets spans without it.
var ServerAddressFields = []Field{NodeHost, HostName, HostPort}

// SpanContextLayout is where the BPF program reads a trace.SpanContext's ids and flags;
// the target's spans are followed only when its SDK lays them out so.
var SpanContextLayout = map[Field]int64{
	{"go.opentelemetry.io/otel/trace.SpanContext", "traceID"}:    0,
	{"go.opentelemetry.io/otel/trace.SpanContext", "spanID"}:     16,
	{"go.opentelemetry.io/otel/trace.SpanContext", "traceFlags"}: 24,
}

// OTelSDKTrace is the import path of the OpenTelemetry Go SDK's trace package.
const OTelSDKTrace = "go.opentelemetry.io/otel/sdk/trace"

// Client version ranges the rows use.
const (
	v6   Range = ">=v6.0.0 <v7.0.0"
	v7   Range = ">=v7.0.0 <v8.0.0"
	v8   Range = ">=v8.0.0 <v9.0.0"
	v6v7 Range = v6 + "||" + v7
	v6v8 Range = v6 + "||" + v8
	// v7.6.0 split Operate into Operate -> operate.
	v7Unsplit Range = ">=v7.0.0 <v7.6.0"
	v7Split   Range = ">=v7.6.0 <v8.0.0"
	// Before v6.13.0 a query with a filter runs one worker per node (queryNodes), not
	// through queryPartitions.
	perNodeQueries   Range = ">=v6.0.0 <v6.13.0"
	partitionQueries Range = ">=v6.13.0 <v9.0.0"
	// From v7.5.0 on, a batch's one-key node share runs a single-record operation.
	singleKeyBatches Range = ">=v7.5.0 <v9.0.0"
)

// SupportedMajors lists the client majors that have rows.
func SupportedMajors() []int { return []int{6, 7, 8} }

// methodsAlwaysLinked: from v6.14.0, which added the ClientIfc interface, to v8 it keeps
// every exported *Client method in a binary, so a missing operation means a table that
// does not fit. Before and after, the linker drops what a program does not call: there
// every row is optional.
const methodsAlwaysLinked Range = ">=v6.14.0 <v8.0.0"

// Rows is the table. Operations run entry to return on the caller's goroutine unless
// their kind says otherwise; Operate, ScanAll, Query, QueryNode and ScanNode are inlined
// into their callers (checked against v6.16.1, v7.10.2 and v8.8.0, Go 1.21-1.26), so
// their callees are probed.
var Rows = []Row{
	{Func: "func (c *Client) Put(policy *WritePolicy, key *Key, bins BinMap) (err Error)", Kind: KindOp, Op: semconv.OpPut, Names: LocKey, At: "key", Err: "err"},
	{Func: "func (c *Client) PutBins(policy *WritePolicy, key *Key, bins ...*Bin) (err Error)", Kind: KindOp, Op: semconv.OpPut, Names: LocKey, At: "key", Err: "err"},
	{Func: "func (c *Client) Get(policy *BasePolicy, key *Key, binNames ...string) (rec *Record, err Error)", Kind: KindOp, Op: semconv.OpGet, AltOp: semconv.OpSelect, AltIf: "binNames", Names: LocKey, At: "key", Err: "err"},
	{Func: "func (c *Client) GetHeader(policy *BasePolicy, key *Key) (rec *Record, err Error)", Kind: KindOp, Op: semconv.OpGet, Names: LocKey, At: "key", Err: "err"},
	{Func: "func (c *Client) Exists(policy *BasePolicy, key *Key) (found bool, err Error)", Kind: KindOp, Op: semconv.OpExists, Names: LocKey, At: "key", Err: "err"},
	{Func: "func (c *Client) Delete(policy *WritePolicy, key *Key) (existed bool, err Error)", Kind: KindOp, Op: semconv.OpRemove, Names: LocKey, At: "key", Err: "err"},
	{Func: "func (c *Client) Touch(policy *WritePolicy, key *Key) (err Error)", Kind: KindOp, Op: semconv.OpTouch, Names: LocKey, At: "key", Err: "err"},
	{Func: "func (c *Client) Append(policy *WritePolicy, key *Key, bins BinMap) (err Error)", Kind: KindOp, Op: semconv.OpAppend, Names: LocKey, At: "key", Err: "err"},
	{Func: "func (c *Client) AppendBins(policy *WritePolicy, key *Key, bins ...*Bin) (err Error)", Kind: KindOp, Op: semconv.OpAppend, Names: LocKey, At: "key", Err: "err"},
	{Func: "func (c *Client) Prepend(policy *WritePolicy, key *Key, bins BinMap) (err Error)", Kind: KindOp, Op: semconv.OpPrepend, Names: LocKey, At: "key", Err: "err"},
	{Func: "func (c *Client) PrependBins(policy *WritePolicy, key *Key, bins ...*Bin) (err Error)", Kind: KindOp, Op: semconv.OpPrepend, Names: LocKey, At: "key", Err: "err"},
	{Func: "func (c *Client) Add(policy *WritePolicy, key *Key, bins BinMap) (err Error)", Kind: KindOp, Op: semconv.OpIncrement, Names: LocKey, At: "key", Err: "err"},
	{Func: "func (c *Client) AddBins(policy *WritePolicy, key *Key, bins ...*Bin) (err Error)", Kind: KindOp, Op: semconv.OpIncrement, Names: LocKey, At: "key", Err: "err"},
	// v7.6.0 splits Operate into Operate -> operate; v6, older v7 and v8 have one Operate.
	{Func: "func (c *Client) operate(policy *WritePolicy, key *Key, useOpResults bool, operations ...*Operation) (rec *Record, err Error)", Kind: KindOp, Op: semconv.OpOperate, Names: LocKey, At: "key", Err: "err", Counts: []string{"Operate"}, Versions: v7Split},
	{Func: "func (c *Client) Operate(policy *WritePolicy, key *Key, operations ...*Operation) (rec *Record, err Error)", Kind: KindOp, Op: semconv.OpOperate, Names: LocKey, At: "key", Err: "err", Versions: v6v8 + "||" + v7Unsplit},
	{Func: "func (c *Client) Execute(policy *WritePolicy, key *Key, packageName string, functionName string, args ...Value) (res interface{}, err Error)", Kind: KindOp, Op: semconv.OpExecute, Names: LocKey, At: "key", Err: "err"},
	// Batches register their keys' backing array, which their per-node commands share.
	{Func: "func (c *Client) BatchGet(policy *BatchPolicy, keys []*Key, binNames ...string) (recs []*Record, err Error)", Kind: KindOp, Op: semconv.OpBatchRead, Names: LocKeySlice, At: "keys", Err: "err", Flags: FlagCorr},
	{Func: "func (c *Client) BatchGetHeader(policy *BatchPolicy, keys []*Key) (recs []*Record, err Error)", Kind: KindOp, Op: semconv.OpBatchRead, Names: LocKeySlice, At: "keys", Err: "err", Flags: FlagCorr},
	{Func: "func (c *Client) BatchExists(policy *BatchPolicy, keys []*Key) (found []bool, err Error)", Kind: KindOp, Op: semconv.OpBatchRead, Names: LocKeySlice, At: "keys", Err: "err", Flags: FlagCorr},
	{Func: "func (c *Client) BatchGetOperate(policy *BatchPolicy, keys []*Key, ops ...*Operation) (recs []*Record, err Error)", Kind: KindOp, Op: semconv.OpBatchRead, Names: LocKeySlice, At: "keys", Err: "err", Flags: FlagCorr},
	{Func: "func (c *Client) BatchGetComplex(policy *BatchPolicy, records []*BatchRead) (err Error)", Kind: KindOp, Op: semconv.OpBatchRead, Names: LocBrecPtrSlice, At: "records", Err: "err", Flags: FlagCorr},
	{Func: "func (c *Client) BatchOperate(policy *BatchPolicy, records []BatchRecordIfc) (err Error)", Kind: KindOp, Op: semconv.OpBatchOperate, Names: LocBrecIfaceSlice, At: "records", Err: "err", Flags: FlagCorr},
	{Func: "func (c *Client) BatchDelete(policy *BatchPolicy, deletePolicy *BatchDeletePolicy, keys []*Key) (recs []*BatchRecord, err Error)", Kind: KindOp, Op: semconv.OpBatchRemove, Names: LocKeySlice, At: "keys", Err: "err", Flags: FlagCorr},
	// Scans and queries return a recordset; the op ends when the worker goroutine that
	// feeds it returns, and its error is the first one sent to the recordset.
	{Func: "func (c *Client) ScanPartitions(policy *ScanPolicy, partitionFilter *PartitionFilter, namespace string, setName string, binNames ...string) (rs *Recordset, err Error)", Kind: KindAsyncStart, Op: semconv.OpScan, Names: LocStrings, At: "namespace", Err: "err", Ptr: "rs", Counts: []string{"ScanAll"}},
	{Func: "func (c *Client) scanNodePartitions(policy *ScanPolicy, node *Node, namespace string, setName string, binNames ...string) (rs *Recordset, err Error)", Kind: KindAsyncStart, Op: semconv.OpScan, Names: LocStrings, At: "namespace", Err: "err", Ptr: "rs", Counts: []string{"ScanNode"}, Optional: true},
	{Func: "func (c *Client) scanPartitions(policy *ScanPolicy, tracker *partitionTracker, namespace string, setName string, recordset *Recordset, binNames ...string)", Kind: KindAsyncWorker, Op: semconv.OpScan, Names: LocStrings, At: "namespace", Ptr: "recordset"},
	{Func: "func (c *Client) QueryPartitions(policy *QueryPolicy, statement *Statement, partitionFilter *PartitionFilter) (rs *Recordset, err Error)", Kind: KindAsyncStart, Op: semconv.OpQuery, Names: LocStmt, At: "statement", Err: "err", Ptr: "rs", Counts: []string{"Query"}},
	{Func: "func (c *Client) queryNodePartitions(policy *QueryPolicy, node *Node, statement *Statement) (rs *Recordset, err Error)", Kind: KindAsyncStart, Op: semconv.OpQuery, Names: LocStmt, At: "statement", Err: "err", Ptr: "rs", Counts: []string{"QueryNode"}, Optional: true},
	{Func: "func (c *Client) queryPartitions(policy *QueryPolicy, tracker *partitionTracker, statement *Statement, recordset *Recordset)", Kind: KindAsyncWorker, Op: semconv.OpQuery, Names: LocStmt, At: "statement", Ptr: "recordset"},
	// A scan's or query's error is the first one sendError sends on the recordset's
	// channel: it drops those that come once the caller closed the recordset
	// (ScanTerminated, as the client's workers stop), which the caller never sees.
	{Func: "func (rs *Recordset) sendError(err Error)", Kind: KindErrsink, Err: "err", Ptr: "rs", SentThrough: "runtime.chansend1", Optional: true},
	// A scan's or query's stream ends where signalEnd is entered to close it: a program that
	// exits once it read the last record may never run the worker's return. From v6.13.0
	// every counted scan and query makes its recordset with one worker, so that call is the
	// one that closes it (QueryAggregate, with one per node, is not counted: its recordset
	// has no op).
	{Func: "func (rcs *Recordset) signalEnd()", Kind: KindStreamEnd, Ptr: "rcs", Versions: partitionQueries},
	// Old clients: Query and QueryNode with a filter start one worker per node, each of
	// which calls signalEnd when done; the stream ends at the call that leaves no worker,
	// at its entry when it is seen to be the last, else at its return.
	// Without a filter they call QueryPartitions (queryNodePartitions), nested in them.
	// The start call's row names the op: signalEnd ends scans too.
	{Func: "func (c *Client) Query(policy *QueryPolicy, statement *Statement) (rs *Recordset, err Error)", Kind: KindAsyncStart, Op: semconv.OpQuery, Names: LocStmt, At: "statement", Err: "err", Ptr: "rs", Versions: perNodeQueries},
	{Func: "func (c *Client) QueryNode(policy *QueryPolicy, node *Node, statement *Statement) (rs *Recordset, err Error)", Kind: KindAsyncStart, Op: semconv.OpQuery, Names: LocStmt, At: "statement", Err: "err", Ptr: "rs", Versions: perNodeQueries},
	{Func: "func (rcs *Recordset) signalEnd()", Kind: KindAsyncWorker, Op: semconv.OpQuery, Ptr: "rcs", Remaining: Field{"Recordset", "objectset.goroutines"}, Versions: perNodeQueries},

	// The object API (client_reflect.go, left out of builds tagged as_performance, so every
	// row is optional) counts under the seed's names. It calls no probed function: no call
	// counts twice. Its scans and queries feed the caller's channel from workers of their
	// own; a failure they do not send to the recordset never reaches the caller, who sees a
	// success, and so does asobserve.
	{Func: "func (c *Client) PutObject(policy *WritePolicy, key *Key, obj interface{}) (err Error)", Kind: KindOp, Op: semconv.OpPut, Names: LocKey, At: "key", Err: "err", Optional: true},
	{Func: "func (c *Client) GetObject(policy *BasePolicy, key *Key, obj interface{}) (err Error)", Kind: KindOp, Op: semconv.OpGet, Names: LocKey, At: "key", Err: "err", Optional: true},
	{Func: "func (c *Client) BatchGetObjects(policy *BatchPolicy, keys []*Key, objects []interface{}) (found []bool, err Error)", Kind: KindOp, Op: semconv.OpBatchRead, Names: LocKeySlice, At: "keys", Err: "err", Flags: FlagCorr, Optional: true},
	{Func: "func (c *Client) ScanPartitionObjects(policy *ScanPolicy, objChan interface{}, partitionFilter *PartitionFilter, namespace string, setName string, binNames ...string) (rs *Recordset, err Error)", Kind: KindAsyncStart, Op: semconv.OpScan, Names: LocStrings, At: "namespace", Err: "err", Ptr: "rs", Counts: []string{"ScanAllObjects"}, Optional: true},
	{Func: "func (c *Client) scanNodePartitionsObjects(policy *ScanPolicy, node *Node, objChan interface{}, namespace string, setName string, binNames ...string) (rs *Recordset, err Error)", Kind: KindAsyncStart, Op: semconv.OpScan, Names: LocStrings, At: "namespace", Err: "err", Ptr: "rs", Counts: []string{"ScanNodeObjects"}, Optional: true},
	{Func: "func (c *Client) scanPartitionObjects(policy *ScanPolicy, tracker *partitionTracker, namespace string, setName string, recordset *Recordset, binNames ...string) (err Error)", Kind: KindAsyncWorker, Op: semconv.OpScan, Names: LocStrings, At: "namespace", Ptr: "recordset", Optional: true},
	{Func: "func (c *Client) QueryPartitionObjects(policy *QueryPolicy, statement *Statement, objChan interface{}, partitionFilter *PartitionFilter) (rs *Recordset, err Error)", Kind: KindAsyncStart, Op: semconv.OpQuery, Names: LocStmt, At: "statement", Err: "err", Ptr: "rs", Counts: []string{"QueryObjects"}, Optional: true},
	{Func: "func (c *Client) queryNodePartitionsObjects(policy *QueryPolicy, node *Node, statement *Statement, objChan interface{}) (rs *Recordset, err Error)", Kind: KindAsyncStart, Op: semconv.OpQuery, Names: LocStmt, At: "statement", Err: "err", Ptr: "rs", Counts: []string{"QueryNodeObjects"}, Optional: true},
	{Func: "func (c *Client) queryPartitionObjects(policy *QueryPolicy, tracker *partitionTracker, statement *Statement, recordset *Recordset) (err Error)", Kind: KindAsyncWorker, Op: semconv.OpQuery, Names: LocStmt, At: "statement", Ptr: "recordset", Optional: true},
	// Old clients' QueryObjects with a filter runs per-node workers that end the stream
	// through signalEnd, as Query does. (Their QueryNodeObjects with a filter never ends
	// its stream: see the inventory.)
	{Func: "func (c *Client) QueryObjects(policy *QueryPolicy, statement *Statement, objChan interface{}) (rs *Recordset, err Error)", Kind: KindAsyncStart, Op: semconv.OpQuery, Names: LocStmt, At: "statement", Err: "err", Ptr: "rs", Optional: true, Versions: perNodeQueries},

	// A batch UDF; its one-key node share calls the unprobed execute, not Execute.
	{Func: "func (c *Client) BatchExecute(policy *BatchPolicy, udfPolicy *BatchUDFPolicy, keys []*Key, packageName string, functionName string, args ...Value) (recs []*BatchRecord, err Error)", Kind: KindOp, Op: semconv.OpBatchApply, Names: LocKeySlice, At: "keys", Err: "err", Flags: FlagCorr},
	// Background jobs: the call sends the job to every node (or one) and returns; the job
	// runs on the servers afterwards, and polling its ExecuteTask is not part of the op.
	{Func: "func (c *Client) QueryExecute(policy *QueryPolicy, writePolicy *WritePolicy, statement *Statement, ops ...*Operation) (task *ExecuteTask, err Error)", Kind: KindOp, Op: semconv.OpQueryBackground, Names: LocStmt, At: "statement", Err: "err"},
	{Func: "func (c *Client) ExecuteUDF(policy *QueryPolicy, statement *Statement, packageName string, functionName string, functionArgs ...Value) (task *ExecuteTask, err Error)", Kind: KindOp, Op: semconv.OpQueryBackground, Names: LocStmt, At: "statement", Err: "err"},
	{Func: "func (c *Client) ExecuteUDFNode(policy *QueryPolicy, node *Node, statement *Statement, packageName string, functionName string, functionArgs ...Value) (task *ExecuteTask, err Error)", Kind: KindOp, Op: semconv.OpQueryBackground, Names: LocStmt, At: "statement", Err: "err"},
	// v8: a prepared write payload, and the end of a multi-record transaction. Commands
	// inside a transaction go through the same public methods and keep their names; the
	// verify, roll and monitor commands that Commit and Abort send are part of those.
	{Func: "func (c *Client) PutPayload(policy *WritePolicy, key *Key, payload []byte) (err Error)", Kind: KindOp, Op: semconv.OpPut, Names: LocKey, At: "key", Err: "err", Versions: v8},
	{Func: "func (c *Client) Commit(txn *Txn) (status CommitStatus, err Error)", Kind: KindOp, Op: semconv.OpCommit, Err: "err", Versions: v8},
	{Func: "func (c *Client) Abort(txn *Txn) (status AbortStatus, err Error)", Kind: KindOp, Op: semconv.OpAbort, Err: "err", Versions: v8},

	// Stages: attached only while stage profiling is on.
	{Func: "func newBatchNodeList(cluster *Cluster, policy *BatchPolicy, keys []*Key, records []*BatchRecord, hasWrite bool) (nodes []*batchNode, err Error)", Kind: KindStage, Stage: StageIDKeyParse, Optional: true},
	{Func: "func newBatchIndexNodeList(cluster *Cluster, policy *BatchPolicy, records []*BatchRead) (nodes []*batchNode, err Error)", Kind: KindStage, Stage: StageIDKeyParse, Optional: true},
	{Func: "func newBatchOperateNodeListIfc(cluster *Cluster, policy *BatchPolicy, records []BatchRecordIfc) (nodes []*batchNode, err Error)", Kind: KindStage, Stage: StageIDKeyParse, Optional: true},
	// The batch's worker goroutines are spawned when the limiter lets them.
	{Func: "func (s *Weighted) Acquire(ctx context.Context, n int64) (err error)", Pkg: "golang.org/x/sync/semaphore", Kind: KindStage, Stage: StageIDLimiterWait, Flags: FlagSpawnAtRet, Optional: true},
	// Per-node commands run on worker goroutines: their Execute ties the goroutine to the
	// op through the slice (or recordset) they share with its argument.
	{Func: "func (cmd *batchCommandGet) Execute() (err Error)", Kind: KindLink, Stage: StageIDScheduleDelay, Ptr: "cmd", Corr: Field{"batchCommandGet", "keys"}, Optional: true},
	{Func: "func (cmd *batchCommandExists) Execute() (err Error)", Kind: KindLink, Stage: StageIDScheduleDelay, Ptr: "cmd", Corr: Field{"batchCommandExists", "keys"}, Optional: true},
	{Func: "func (cmd *batchCommandDelete) Execute() (err Error)", Kind: KindLink, Stage: StageIDScheduleDelay, Ptr: "cmd", Corr: Field{"batchCommandDelete", "keys"}, Optional: true},
	{Func: "func (cmd *batchCommandUDF) Execute() (err Error)", Kind: KindLink, Stage: StageIDScheduleDelay, Ptr: "cmd", Corr: Field{"batchCommandUDF", "keys"}, Optional: true},
	{Func: "func (cmd *batchCommandOperate) Execute() (err Error)", Kind: KindLink, Stage: StageIDScheduleDelay, Ptr: "cmd", Corr: Field{"batchCommandOperate", "records"}, Optional: true},
	// v8's BatchGetComplex node command keeps a records slice of its own.
	{Func: "func (cmd *batchIndexCommandGet) Execute() (err Error)", Kind: KindLink, Stage: StageIDScheduleDelay, Ptr: "cmd", Corr: Field{"batchIndexCommandGet", "batchCommandGet.indexRecords"}, Optional: true, Versions: v6v7},
	{Func: "func (cmd *batchIndexCommandGet) Execute() (err Error)", Kind: KindLink, Stage: StageIDScheduleDelay, Ptr: "cmd", Corr: Field{"batchIndexCommandGet", "records"}, Optional: true, Versions: v8},
	{Func: "func (cmd *scanPartitionCommand) Execute() (err Error)", Kind: KindLink, Stage: StageIDScheduleDelay, Ptr: "cmd", Corr: Field{"scanPartitionCommand", "baseMultiCommand.recordset"}, Optional: true},
	{Func: "func (cmd *scanPartitionObjectsCommand) Execute() (err Error)", Kind: KindLink, Stage: StageIDScheduleDelay, Ptr: "cmd", Corr: Field{"scanPartitionObjectsCommand", "baseMultiCommand.recordset"}, Optional: true},
	{Func: "func (cmd *queryPartitionObjectsCommand) Execute() (err Error)", Kind: KindLink, Stage: StageIDScheduleDelay, Ptr: "cmd", Corr: Field{"queryPartitionObjectsCommand", "baseMultiCommand.recordset"}, Optional: true},
	{Func: "func (cmd *queryPartitionCommand) Execute() (err Error)", Kind: KindLink, Stage: StageIDScheduleDelay, Ptr: "cmd", Corr: Field{"queryPartitionCommand", "baseMultiCommand.recordset"}, Optional: true},
	// Old clients' per-node query commands. A worker may start before the query call
	// returns and registers the recordset: its stages then go unattributed.
	{Func: "func (cmd *queryCommand) Execute() (err Error)", Kind: KindLink, Stage: StageIDScheduleDelay, Ptr: "cmd", Corr: Field{"queryCommand", "baseMultiCommand.recordset"}, Optional: true, Versions: perNodeQueries},
	{Func: "func (cmd *queryObjectsCommand) Execute() (err Error)", Kind: KindLink, Stage: StageIDScheduleDelay, Ptr: "cmd", Corr: Field{"queryObjectsCommand", "queryCommand.baseMultiCommand.recordset"}, Optional: true, Versions: perNodeQueries},
	{Func: "func (cmd *singleCommand) getConnection(policy Policy) (conn *Connection, err Error)", Kind: KindAttempt, Stage: StageIDConnAcquire, Optional: true},
	{Func: "func (cmd *baseMultiCommand) getConnection(policy Policy) (conn *Connection, err Error)", Kind: KindAttempt, Stage: StageIDConnAcquire, Optional: true},
	// Connection.Write also tells which node an op was sent to (server.address): with
	// tracing on it is attached with the operation probes.
	{Func: "func (ctn *Connection) Write(buf []byte) (total int, err Error)", Kind: KindIoWrite, Stage: StageIDIo, Ptr: "ctn", Flags: FlagNode, Optional: true},
	{Func: "func (ctn *Connection) Read(buf []byte, length int) (total int, err Error)", Kind: KindIoRead, Stage: StageIDIo, Optional: true},
	parseEnd("readCommand", ""), parseEnd("readHeaderCommand", ""), parseEnd("existsCommand", ""),
	parseEnd("writeCommand", ""), parseEnd("deleteCommand", ""), parseEnd("touchCommand", ""),
	parseEnd("baseMultiCommand", ""), parseEnd("queryCommand", ""),
	// v8 split these commands off, each with a parseResult of its own.
	parseEnd("operateCommandWrite", v8), parseEnd("executeCommand", v8), parseEnd("writePayloadCommand", v8),

	// The target's own OpenTelemetry SDK spans, followed so that an operation run on the
	// goroutine of a live span, or on a goroutine started under one, gets it as parent.
	// Any SDK since v1.0: these functions and recordingSpan.spanContext kept their shape.
	{Func: "func (tr *tracer) newRecordingSpan(psc, sc trace.SpanContext, name string, sr SamplingResult, config *trace.SpanConfig) (s *recordingSpan)", Pkg: OTelSDKTrace, Kind: KindSpanStart, Ptr: "s", Optional: true},
	{Func: "func (s *recordingSpan) End(options ...trace.SpanEndOption)", Pkg: OTelSDKTrace, Kind: KindSpanEnd, Ptr: "s", Optional: true},
	// The creator is newproc1's second argument, the new g its result; it runs on g0.
	// (Go 1.23 appends parked and waitreason arguments.)
	{Func: "func newproc1(fn *funcval, callergp *g, callerpc uintptr) (newg *g)", Pkg: "runtime", Kind: KindSpawn, Optional: true},
}

// parseEnd is a command's parseResult: its return ends the parse stage and the attempt.
func parseEnd(cmd string, versions Range) Row {
	return Row{Func: "func (cmd *" + cmd + ") parseResult(ifc command, conn *Connection) (err Error)",
		Kind: KindParseEnd, Stage: StageIDParse, Versions: versions, Optional: true}
}

// Nested callers are the client functions that call public operations internally: a
// batch's one-key node share runs client.Get, Exists, operate... from executeSingle,
// which the compiler may inline into Execute. An operation whose caller lies inside one
// of these belongs to the enclosing batch and is not counted again. The check costs no
// probe hit: the entry probe compares its return address with these ranges.
var NestedCallers = []Caller{
	{"(*batchCommandGet).Execute", singleKeyBatches}, {"(*batchCommandGet).executeSingle", singleKeyBatches},
	{"(*batchCommandExists).Execute", singleKeyBatches}, {"(*batchCommandExists).executeSingle", singleKeyBatches},
	{"(*batchCommandOperate).Execute", singleKeyBatches}, {"(*batchCommandOperate).executeSingle", singleKeyBatches},
	{"(*batchCommandDelete).Execute", singleKeyBatches}, {"(*batchCommandDelete).executeSingle", singleKeyBatches},
	{"(*batchCommandUDF).Execute", singleKeyBatches}, {"(*batchCommandUDF).executeSingle", singleKeyBatches},
	{"(*batchIndexCommandGet).Execute", singleKeyBatches}, {"(*batchIndexCommandGet).executeSingle", singleKeyBatches},
}

// NestedCallees are the probed functions that nested callers call (through clientIfc or
// *Client). Only their entry probes check the caller: that check reads target memory,
// which every other operation's entry is spared.
var NestedCallees = []string{"(*Client).Get", "(*Client).GetHeader", "(*Client).Exists", "(*Client).Operate", "(*Client).operate"}

// Caller is a client function, relative to the client package, in some versions.
type Caller struct {
	Symbol   string
	Versions Range // batches before v7.5.0 never call single-record operations
}

// NestedFor lists the nested callers of a client version.
func NestedFor(major int, version string) []string {
	version = effective(major, version)
	var out []string
	for _, c := range NestedCallers {
		if c.Versions.Contains(version) {
			out = append(out, c.Symbol)
		}
	}
	return out
}

// ForVersion resolves the rows of a client version ("v7.10.2"). A version that is not
// semver within the major (a replaced or devel module) gets the major's newest rows.
// It is nil for a major without rows.
func ForVersion(major int, version string) ([]Probe, error) {
	supported := false
	for _, m := range SupportedMajors() {
		supported = supported || m == major
	}
	if !supported {
		return nil, nil
	}
	version = effective(major, version)
	var out []Probe
	for _, r := range Rows {
		if !r.Versions.Contains(version) {
			continue
		}
		p, err := r.Resolve()
		if err != nil {
			return nil, fmt.Errorf("probe table: %w", err)
		}
		p.Optional = r.Optional || !methodsAlwaysLinked.Contains(version)
		out = append(out, p)
	}
	return out, nil
}

// ForMajor resolves the rows of a major's newest version; it panics on a table error,
// which TestEveryRowResolves reports first.
func ForMajor(major int) []Probe {
	out, err := ForVersion(major, "")
	if err != nil {
		panic(err)
	}
	return out
}

// effective is the version the ranges are matched against.
func effective(major int, version string) string {
	if semver.IsValid(version) && semver.Major(version) == fmt.Sprintf("v%d", major) {
		return version
	}
	return fmt.Sprintf("v%d.999999.0", major)
}
