//go:build !race

package workload

import as "github.com/aerospike/aerospike-client-go/v7"

// batchGetComplexPolicy is p: only race-detector builds work around the client's
// BatchGetComplex race (race.go).
func batchGetComplexPolicy(p *as.BatchPolicy) *as.BatchPolicy { return p }
