// Package probes is the declarative table of every client function asobserve probes.
// One row per function: what it is (an operation, a stage, or a helper that keeps the
// counting exact), where its key or namespace/set live (in register-ABI words, receiver
// first), and where its returned Error lives. The attach code turns rows into BPF
// configuration; nothing else knows about individual client functions.
package probes

import "github.com/asobserve/asobserve/internal/semconv"

// Kind mirrors enum row_kind in bpf/asobserve.c.
type Kind uint8

const (
	Op          Kind = 1  // a data operation, entry to return on one goroutine
	AsyncStart  Kind = 2  // starts an op that ends on another goroutine (scan, query)
	AsyncWorker Kind = 3  // the goroutine whose return ends an AsyncStart op
	ErrSink     Kind = 5  // reports an async op's error
	Stage       Kind = 6  // a stage, entry to return
	Link        Kind = 7  // ties a per-node worker goroutine to its batch op
	IOWrite     Kind = 8  // network write starts the io stage
	IORead      Kind = 9  // the first read return after a write ends io, starts parse
	ParseEnd    Kind = 10 // parse and attempt end
	Attempt     Kind = 11 // connection acquire: one attempt starts
	SpanStart   Kind = 12 // the target's OTel SDK made a recording span (return)
	SpanEnd     Kind = 13 // the target's OTel span ends (entry)
	Spawn       Kind = 14 // runtime.newproc1: a goroutine inherits its creator's live span
)

// Loc mirrors enum locator in bpf/asobserve.c: how namespace and set are found.
type Loc uint8

const (
	LocNone           Loc = 0
	LocKey            Loc = 1 // the word is a *Key
	LocKeySlice       Loc = 2 // the words are []*Key; the first key names the batch
	LocBatchRecPtrs   Loc = 3 // []*BatchRead
	LocBatchRecIfaces Loc = 4 // []BatchRecordIfc
	LocStatement      Loc = 5 // *Statement
	LocStrings        Loc = 6 // namespace string, set string
)

// Flags mirror enum row_flags.
const (
	FlagCorr       = 1 // the op registers its keys/records backing array for worker goroutines
	FlagSpawnAtRet = 2 // the stage's return is when a worker goroutine is spawned
	FlagNode       = 4 // the row's receiver is a *Connection whose node serves the op
)

// NoWord marks an absent register word.
const NoWord = 0xff

// Stage ids mirror enum stage_id and decoder's stage constants.
var StageID = map[string]uint8{
	semconv.StageKeyParse: 0, semconv.StageLimiterWait: 1, semconv.StageScheduleDelay: 2,
	semconv.StageConnAcquire: 3, semconv.StageIO: 4, semconv.StageParse: 5, semconv.StageAttempt: 6,
}

// Field names a struct field of the client package, resolved per binary (DWARF or table).
type Field struct{ Struct, Name string }

// Row is one probed function.
type Row struct {
	// Symbol relative to the client package, e.g. "(*Client).Put"; a symbol of another
	// package is written in full and marked External.
	Symbol   string
	External bool
	Kind     Kind
	Op       string // db_operation_name for op kinds
	AltOp    string // op name when the AltWord slice is non-empty (Get with bins: select)
	AltWord  uint8
	Stage    string
	Loc      Loc
	LocWord  uint8
	ErrWord  uint8 // first word of the returned Error, NoWord if none
	PtrWord  uint8 // recordset or receiver word
	Flags    uint8
	Corr     Field // Link: slice field shared with the op's argument
	Entry    bool  // attach at the entry point
	Return   bool  // attach at every RET
	Optional bool  // absent in some builds (dead-code elimination, inlining)
}

// ForTracing reports whether the row serves tracing: the node an op was sent to, and the
// target's own OTel spans that become parents.
func (r Row) ForTracing() bool {
	return r.Flags&FlagNode != 0 || r.FollowsAppSpans()
}

// FollowsAppSpans reports whether the row tracks the target's own OTel spans.
func (r Row) FollowsAppSpans() bool {
	return r.Kind == SpanStart || r.Kind == SpanEnd || r.Kind == Spawn
}

// Core reports whether the row serves the operation metrics: neither a stage nor tracing.
func (r Row) Core() bool { return !r.IsStage() && !r.ForTracing() }

// IsStage reports whether the row is attached only while stage profiling is on.
func (r Row) IsStage() bool {
	switch r.Kind {
	case Stage, Link, IOWrite, IORead, ParseEnd, Attempt:
		return true
	}
	return false
}

func op(sym, name string, loc Loc, locWord, errWord uint8) Row {
	return Row{Symbol: sym, Kind: Op, Op: name, Loc: loc, LocWord: locWord, ErrWord: errWord,
		AltWord: NoWord, PtrWord: NoWord, Entry: true, Return: true}
}

func batch(sym, name string, loc Loc, locWord, errWord uint8) Row {
	r := op(sym, name, loc, locWord, errWord)
	r.Flags = FlagCorr
	return r
}

func helper(sym string, kind Kind, entry, ret bool) Row {
	return Row{Symbol: sym, Kind: kind, AltWord: NoWord, PtrWord: NoWord, ErrWord: NoWord, Entry: entry, Return: ret, Optional: true}
}

func stage(sym, stage string, kind Kind, entry, ret bool) Row {
	r := helper(sym, kind, entry, ret)
	r.Stage = stage
	return r
}

// KeyFields and friends are the struct fields every row set needs.
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
	// SpanContext is a fully qualified field of the OTel SDK, not of the client.
	SpanContext = Field{OTelSDKTrace + ".recordingSpan", "spanContext"}
)

// OTelSDKTrace is the import path of the OpenTelemetry Go SDK's trace package.
const OTelSDKTrace = "go.opentelemetry.io/otel/sdk/trace"

// appSpanRows follow the target's own OpenTelemetry SDK spans, so that an operation run
// on the goroutine of a live span, or on a goroutine started under one, gets it as parent. Any client major, any SDK version
// since v1.0 (the functions and recordingSpan.spanContext have kept their shape).
func appSpanRows() []Row {
	start := helper(OTelSDKTrace+".(*tracer).newRecordingSpan", SpanStart, false, true)
	end := helper(OTelSDKTrace+".(*recordingSpan).End", SpanEnd, true, false)
	// The creator is newproc1's second argument, the new g its result; it runs on g0.
	spawn := helper("runtime.newproc1", Spawn, true, true)
	start.External, end.External, spawn.External = true, true, true
	start.PtrWord, end.PtrWord = 0, 0
	return []Row{start, end, spawn}
}

// v7 is aerospike-client-go v7 (checked against v7.10.2, Go 1.21-1.26, amd64).
// Operate, ScanAll, Query, QueryNode and ScanNode are inlined: their callees are probed.
func v7() []Row {
	get := op("(*Client).Get", semconv.OpGet, LocKey, 2, 1)
	get.AltOp, get.AltWord = semconv.OpSelect, 4 // len(binNames)
	scanStart := op("(*Client).ScanPartitions", semconv.OpScan, LocStrings, 3, 1)
	scanStart.Kind, scanStart.PtrWord = AsyncStart, 0
	scanNode := op("(*Client).scanNodePartitions", semconv.OpScan, LocStrings, 3, 1)
	scanNode.Kind, scanNode.PtrWord, scanNode.Optional = AsyncStart, 0, true
	scanWorker := op("(*Client).scanPartitions", semconv.OpScan, LocStrings, 3, NoWord)
	scanWorker.Kind, scanWorker.PtrWord = AsyncWorker, 7
	queryStart := op("(*Client).QueryPartitions", semconv.OpQuery, LocStatement, 2, 1)
	queryStart.Kind, queryStart.PtrWord = AsyncStart, 0
	queryNode := op("(*Client).queryNodePartitions", semconv.OpQuery, LocStatement, 3, 1)
	queryNode.Kind, queryNode.PtrWord, queryNode.Optional = AsyncStart, 0, true
	queryWorker := op("(*Client).queryPartitions", semconv.OpQuery, LocStatement, 3, NoWord)
	queryWorker.Kind, queryWorker.PtrWord = AsyncWorker, 4
	sendError := helper("(*Recordset).sendError", ErrSink, true, false)
	sendError.ErrWord, sendError.PtrWord = 1, 0

	rows := []Row{
		op("(*Client).Put", semconv.OpPut, LocKey, 2, 0),
		op("(*Client).PutBins", semconv.OpPut, LocKey, 2, 0),
		get,
		op("(*Client).GetHeader", semconv.OpGet, LocKey, 2, 1),
		op("(*Client).Exists", semconv.OpExists, LocKey, 2, 1),
		op("(*Client).Delete", semconv.OpRemove, LocKey, 2, 1),
		op("(*Client).Touch", semconv.OpTouch, LocKey, 2, 0),
		op("(*Client).Append", semconv.OpAppend, LocKey, 2, 0),
		op("(*Client).AppendBins", semconv.OpAppend, LocKey, 2, 0),
		op("(*Client).Prepend", semconv.OpPrepend, LocKey, 2, 0),
		op("(*Client).PrependBins", semconv.OpPrepend, LocKey, 2, 0),
		op("(*Client).Add", semconv.OpIncrement, LocKey, 2, 0),
		op("(*Client).AddBins", semconv.OpIncrement, LocKey, 2, 0),
		op("(*Client).operate", semconv.OpOperate, LocKey, 2, 1),
		op("(*Client).Execute", semconv.OpExecute, LocKey, 2, 2),
		batch("(*Client).BatchGet", semconv.OpBatchRead, LocKeySlice, 2, 3),
		batch("(*Client).BatchGetHeader", semconv.OpBatchRead, LocKeySlice, 2, 3),
		batch("(*Client).BatchExists", semconv.OpBatchRead, LocKeySlice, 2, 3),
		batch("(*Client).BatchGetOperate", semconv.OpBatchRead, LocKeySlice, 2, 3),
		batch("(*Client).BatchGetComplex", semconv.OpBatchRead, LocBatchRecPtrs, 2, 0),
		batch("(*Client).BatchOperate", semconv.OpBatchOperate, LocBatchRecIfaces, 2, 0),
		batch("(*Client).BatchDelete", semconv.OpBatchRemove, LocKeySlice, 3, 3),
		scanStart, scanNode, scanWorker, queryStart, queryNode, queryWorker, sendError,
	}
	return append(append(rows, stagesV7()...), appSpanRows()...)
}

func stagesV7() []Row {
	limiter := stage("golang.org/x/sync/semaphore.(*Weighted).Acquire", semconv.StageLimiterWait, Stage, true, true)
	limiter.External, limiter.Flags = true, FlagSpawnAtRet
	link := func(sym, field string) Row {
		r := stage(sym, semconv.StageScheduleDelay, Link, true, true)
		r.PtrWord = 0
		r.Corr = Field{sym[2 : len(sym)-len(").Execute")], field}
		return r
	}
	// Connection.Write also tells which node an op was sent to (server.address): with
	// With tracing on it is attached with the operation probes.
	connWrite := stage("(*Connection).Write", semconv.StageIO, IOWrite, true, false)
	connWrite.Flags, connWrite.PtrWord = FlagNode, 0
	rows := []Row{
		stage("newBatchNodeList", semconv.StageKeyParse, Stage, true, true),
		stage("newBatchIndexNodeList", semconv.StageKeyParse, Stage, true, true),
		stage("newBatchOperateNodeListIfc", semconv.StageKeyParse, Stage, true, true),
		limiter,
		link("(*batchCommandGet).Execute", "keys"),
		link("(*batchCommandExists).Execute", "keys"),
		link("(*batchCommandDelete).Execute", "keys"),
		link("(*batchCommandUDF).Execute", "keys"),
		link("(*batchCommandOperate).Execute", "records"),
		link("(*batchIndexCommandGet).Execute", "batchCommandGet.indexRecords"),
		// Scan and query node commands share the op's recordset.
		link("(*scanPartitionCommand).Execute", "baseMultiCommand.recordset"),
		link("(*queryPartitionCommand).Execute", "baseMultiCommand.recordset"),
		stage("(*singleCommand).getConnection", semconv.StageConnAcquire, Attempt, true, true),
		stage("(*baseMultiCommand).getConnection", semconv.StageConnAcquire, Attempt, true, true),
		connWrite,
		stage("(*Connection).Read", semconv.StageIO, IORead, false, true),
	}
	for _, cmd := range []string{"readCommand", "readHeaderCommand", "existsCommand", "writeCommand",
		"deleteCommand", "touchCommand", "baseMultiCommand", "queryCommand"} {
		rows = append(rows, stage("(*"+cmd+").parseResult", semconv.StageParse, ParseEnd, false, true))
	}
	return rows
}

// NestedCallers lists the client functions that call public operations internally: a
// batch's one-key node share runs client.Get, Exists, operate... from executeSingle,
// which the compiler may inline into Execute. An operation whose caller lies inside one
// of these belongs to the enclosing batch and is not counted again. The check costs no
// probe hit: the entry probe compares its return address with these ranges.
func NestedCallers(major int) []string {
	if major == 6 {
		return nil // v6 batches never call single-record operations
	}
	var out []string
	for _, cmd := range []string{"batchCommandGet", "batchCommandExists", "batchCommandOperate",
		"batchCommandDelete", "batchCommandUDF", "batchIndexCommandGet"} {
		out = append(out, "(*"+cmd+").Execute", "(*"+cmd+").executeSingle")
	}
	return out
}

// ForMajor returns the rows for a client major version, or nil if it is not supported.
func ForMajor(major int) []Row {
	switch major {
	case 6:
		return v6()
	case 7:
		return v7()
	case 8:
		return v8()
	}
	return nil
}

// SupportedMajors lists the client majors that have a probe table.
func SupportedMajors() []int { return []int{6, 7, 8} }
