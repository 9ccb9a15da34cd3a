// Package clienterr classifies errors returned by aerospike-client-go v7 into the seed's
// error_type values, using the same rules (package outcome) as the eBPF decoder.
// internal/targetsrc copies it into the v6, v7 and v8 matrix targets, with the client
// import rewritten to the target's major: it may import only the standard library, the
// client and outcome, and must stay go1.21 Go.
package clienterr

import (
	"errors"

	as "github.com/aerospike/aerospike-client-go/v7"
	"github.com/aerospike/aerospike-client-go/v7/types"

	"github.com/asobserve/asobserve/internal/outcome"
)

// Code returns the result code that decides an error's class: the error's own code, or,
// for MAX_RETRIES_EXCEEDED, the code of the error it wraps (the last attempt's cause).
func Code(err error) int {
	var ae *as.AerospikeError
	if !errors.As(err, &ae) {
		return int(types.COMMON_ERROR)
	}
	code := int(ae.ResultCode)
	if code == outcome.MaxRetriesExceeded {
		var cause *as.AerospikeError
		if inner := errors.Unwrap(ae); inner != nil && errors.As(inner, &cause) {
			return int(cause.ResultCode)
		}
	}
	return code
}

// Classify returns the error_type label of an operation op that returned err.
func Classify(op string, err error) string {
	if err == nil {
		return outcome.Success
	}
	return outcome.ErrorType(op, true, Code(err))
}
