// Package semconv holds the metric and span contract from the seed documents: names,
// help texts, label names, buckets, operation and stage names. Every producer (eBPF agent,
// in-process wrapper) and every consumer (recorder, tracing, dashboards' tests) reads it
// from here so that the two modes cannot drift apart.
package semconv

import "strings"

const (
	OperationMetric = "db_client_operation_duration_seconds"
	OperationHelp   = "Duration of database client operations."
	StageMetric     = "db_client_internal_stage_seconds"
	StageHelp       = "Duration of internal stages of database client operations."

	SystemName = "aerospike"
)

// Seed buckets, in seconds.
var (
	OperationBuckets = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0}
	StageBuckets     = []float64{0.000001, 0.000005, 0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0}
)

// Label names of the seed, in the seed's order.
const (
	LabelSystem     = "db_system_name"
	LabelNamespace  = "db_namespace"
	LabelCollection = "db_collection_name"
	LabelOperation  = "db_operation_name"
	LabelErrorType  = "error_type"
	LabelStage      = "stage"
)

// Identity labels added by asobserve to tell services and pods apart. They are bounded:
// one value set per observed process, never per request.
var IdentityLabels = []string{"service_name", "k8s_node_name", "k8s_namespace_name", "k8s_pod_name", "k8s_container_name"}

// Operation names (db_operation_name), the seed's 15 plus UDF execute.
const (
	OpPut          = "put"
	OpGet          = "get"
	OpSelect       = "select"
	OpExists       = "exists"
	OpRemove       = "remove"
	OpTouch        = "touch"
	OpAppend       = "append"
	OpPrepend      = "prepend"
	OpIncrement    = "increment"
	OpOperate      = "operate"
	OpBatchRead    = "batch_read"
	OpBatchOperate = "batch_operate"
	OpBatchRemove  = "batch_remove"
	OpQuery        = "query"
	OpScan         = "scan"
	OpExecute      = "execute"
)

// Operation names beyond the seed's, for the client's other data methods. They follow the
// Python client's method names where one exists (batch_apply for a batch UDF) and name
// the rest after what the call does: a background query job, a transaction's end.
const (
	OpBatchApply      = "batch_apply"
	OpQueryBackground = "query_background"
	OpCommit          = "commit"
	OpAbort           = "abort"
)

// Operations lists every operation name in a fixed order: the seed's and UDF execute.
var Operations = []string{OpPut, OpGet, OpSelect, OpExists, OpRemove, OpTouch, OpAppend, OpPrepend,
	OpIncrement, OpOperate, OpBatchRead, OpBatchOperate, OpBatchRemove, OpQuery, OpScan, OpExecute}

// MoreOperations lists the operation names beyond Operations.
var MoreOperations = []string{OpBatchApply, OpQueryBackground, OpCommit, OpAbort}

// Stage names (stage label). Seed names are reused where the meaning matches.
const (
	StageKeyParse      = "key_parse"
	StageLimiterWait   = "limiter_wait"
	StageScheduleDelay = "schedule_delay"
	StageConnAcquire   = "conn_acquire"
	StageIO            = "io"
	StageParse         = "parse"
	StageAttempt       = "attempt"
)

// Stages lists every stage name in pipeline order.
var Stages = []string{StageKeyParse, StageLimiterWait, StageScheduleDelay, StageConnAcquire, StageIO, StageParse, StageAttempt}

// SpanName is the seed's span name: "{OPERATION} {namespace}.{set}", e.g. "PUT test.users".
func SpanName(op, namespace, set string) string {
	return strings.ToUpper(op) + " " + namespace + "." + set
}
