// Package inproc is asobserve's in-process fallback for hosts without eBPF (macOS, Windows,
// locked-down kernels). It wraps an aerospike-client-go v7 *as.Client and produces the same
// telemetry as the eBPF agent — db_client_operation_duration_seconds with the same labels and
// error_type values, and the same spans — because it feeds the agent's own recorder and span
// builder.
//
// Adoption is one line:
//
//	client := inproc.Wrap(asClient) // was: client := asClient
//
// The wrapper has the client's exact signatures for every method that eBPF mode counts
// (the probe table's counted rows; a test fails when one lacks an override): Put, PutBins,
// Get, GetHeader, Exists, Delete, Touch, Append(Bins), Prepend(Bins), Add(Bins), Operate,
// Execute, the batches (BatchGet, BatchGetHeader, BatchExists, BatchGetOperate,
// BatchGetComplex, BatchOperate, BatchDelete, BatchExecute), queries and scans (Query,
// QueryPartitions, QueryNode, ScanAll, ScanPartitions, ScanNode), the object API (PutObject,
// GetObject, BatchGetObjects, Query/Scan...Objects) and background jobs (QueryExecute,
// ExecuteUDF, ExecuteUDFNode); every other method is the embedded client's (README, metrics
// reference: the inventory of every method). Each wrapped call is recorded once, at the
// wrapper: work the client does internally (a one-key batch running as a single read,
// Operate calling operate) is never counted again.
//
// The package-level functions mirror the seeds' module API:
//
//	seed (aerospike-py)                          inproc
//	get_metrics()                                Metrics()
//	start_metrics_server(port=9464)              StartMetricsServer(":9464")
//	stop_metrics_server()                        StopMetricsServer()
//	FastAPI: registry.register(...)              appRegistry.MustRegister(inproc.Collector())
//	set_metrics_enabled / is_metrics_enabled     SetMetricsEnabled / MetricsEnabled
//	set_internal_stage_metrics_enabled / is_...  SetInternalStageMetricsEnabled / InternalStageMetricsEnabled
//	with internal_stage_profiling(): ...         WithInternalStageProfiling(func() { ... })
//	init_tracing() / shutdown_tracing()          InitTracing() / ShutdownTracing(ctx)
//	AEROSPIKE_PY_INTERNAL_METRICS                ASOBSERVE_INTERNAL_METRICS (read once, runtime calls win)
//
// At first use the package logs its stage state in one line, e.g.
//
//	[asobserve] internal_stage_metrics_enabled=false (ASOBSERVE_INTERNAL_METRICS=None)
//
// The service_name label is OTEL_SERVICE_NAME, else the executable name, as in eBPF mode.
//
// After InitTracing, a call whose span is sampled gives its histogram bucket an exemplar
// {trace_id, span_id} naming that span, as in eBPF mode (at most one per bucket and series
// every metrics.ExemplarInterval): on /metrics in OpenMetrics and protobuf, through
// Collector(), and on the OTLP data points of InitMetricsExport.
//
// # Timing
//
// A call is timed from entry to return. Query and scan return their *as.Recordset at once
// and stream afterwards, so they are timed until the recordset ends — when the client's last
// producer finishes, or when the caller closes it — without consuming records or changing the
// returned type (see recordset.go for how the end is observed).
//
// Object-API streams (QueryObjects, ScanAllObjects, ...) deliver their errors on the
// recordset's Errors channel, which the wrapper must not read (it would take them from the
// caller). In-process mode therefore classifies such a stream by the call's own error only:
// a stream that later fails is recorded with error_type "". eBPF mode sees the error.
//
// # Differences from eBPF mode
//
// Internal stages (db_client_internal_stage_seconds): the client has no hooks inside a call,
// and the wrapper sees only the call boundary, so in-process mode records no stage samples.
// The stage histogram's HELP/TYPE lines, the toggles, the scoped form and the
// asobserve_internal_stage_metrics_enabled gauge behave exactly as in eBPF mode, so
// dashboards and alerts work unchanged; the panels simply stay empty. Per stage:
//
//	stage           eBPF mode                                   in-process
//	key_parse       newBatch*NodeList (keys -> per-node batches) not observable: inside the client call
//	limiter_wait    semaphore.Acquire in the batch executor      not observable: inside the client call
//	schedule_delay  spawn -> start of a node command goroutine  not observable: goroutines are the client's
//	conn_acquire    (*Command).getConnection per attempt         not observable: no pool hooks in v7
//	io              Connection.Write .. Connection.Read          not observable: the client dials itself (no Dialer hook)
//	parse           record decoding                              not observable: inside the client call
//	attempt         one row per try, so retries are visible      not observable: no retry callback
//
// Other differences:
//   - Query/scan errors that arrive inside the record stream (Result.Err) are only seen by
//     the caller reading the results; the wrapper does not consume them, so such a query is
//     recorded with the error of the call itself (normally success). eBPF mode sees them.
//   - Spans carry no server.address/server.port: the node that served a call is not visible
//     at the wrapper.
package inproc
