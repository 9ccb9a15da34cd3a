//go:build race

package workload

import as "github.com/aerospike/aerospike-client-go/v7"

// batchGetComplexPolicy runs the node commands of a BatchGetComplex one after another
// under the race detector. aerospike-client-go v7 (up to v7.10.2; fixed in v8.8.0) has a
// node whose share of the batch is one key read every record of the whole batch
// (batchIndexCommandGet.executeSingle ranges over all records, not the node's offsets),
// so two such nodes write the same BatchRead concurrently: a race in the client, not
// here. In sequence the writes are ordered by the client's semaphore; every record
// still gets its own key's result, so the call's outcome, and the ground truth, are
// those of the concurrent run.
func batchGetComplexPolicy(p *as.BatchPolicy) *as.BatchPolicy {
	sequential := *p
	sequential.ConcurrentNodes = 1
	return &sequential
}
