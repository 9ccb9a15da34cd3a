// Package outcome maps Aerospike result codes to the seed's error_type label values.
// It is the single place where this mapping lives: the eBPF decoder, the in-process
// wrapper, the reference workload's ground truth and the matrix targets' truth all call
// it. internal/targetsrc copies it into the target modules, which are built with
// toolchains as old as go1.21: it must stay standard-library only and go1.21 Go.
package outcome

import "strings"

// The code names are those of every supported major's result_code.go.
//go:generate go run ../../tools/genoutcome -o codes_gen.go github.com/aerospike/aerospike-client-go/v6@v6.16.1 github.com/aerospike/aerospike-client-go/v7@v7.10.2 github.com/aerospike/aerospike-client-go/v8@v8.8.0

// Result codes that the classification depends on (types.ResultCode values).
const (
	OK                 = 0
	KeyNotFound        = 2
	Generation         = 3
	Parameter          = 4
	KeyExists          = 5
	Timeout            = 9
	FilteredOut        = 27
	MaxRetriesExceeded = -16
	NetworkError       = -18
	NoResponse         = -19
	NoAvailableConns   = -8
	ServerNotAvailable = -11
	InvalidNode        = -3
	MaxErrorRate       = -15
)

// Error type label values defined by the seed.
const (
	Success         = ""
	TimeoutName     = "Timeout"
	ConnectionName  = "Connection"
	KeyNotFoundName = "KeyNotFoundError"
	KeyExistsName   = "KeyExistsError"
	GenerationName  = "GenerationError"
	FilteredOutName = "FilteredOut"
	InvalidArgName  = "InvalidArgument"
)

// ErrorType returns the error_type label for an operation that finished with result code
// code. failed reports whether the call returned a non-nil error: a nil error is always a
// success, whatever code was last seen. For MAX_RETRIES_EXCEEDED the caller passes the code
// of the wrapped cause, so a retry chain is classified by what really went wrong.
func ErrorType(op string, failed bool, code int) string {
	if !failed || code == OK {
		return Success
	}
	switch code {
	case KeyNotFound:
		if op == "exists" || op == "remove" {
			return Success
		}
		return KeyNotFoundName
	case Timeout:
		return TimeoutName
	case NetworkError, NoResponse, NoAvailableConns, ServerNotAvailable, InvalidNode:
		return ConnectionName
	case KeyExists:
		return KeyExistsName
	case Generation:
		return GenerationName
	case FilteredOut:
		return FilteredOutName
	case Parameter:
		return InvalidArgName
	}
	return CodeName(code)
}

// CodeName gives a stable CamelCase name for any result code, e.g. KEY_BUSY -> KeyBusy.
// Codes the client does not define become ResultCode<N> (ResultCodeMinus<N> when negative).
func CodeName(code int) string {
	name, ok := resultCodeNames[code]
	if !ok {
		if code < 0 {
			return "ResultCodeMinus" + itoa(-code)
		}
		return "ResultCode" + itoa(code)
	}
	var b strings.Builder
	for _, part := range strings.Split(name, "_") {
		if part == "" {
			continue
		}
		b.WriteString(part[:1])
		b.WriteString(strings.ToLower(part[1:]))
	}
	return b.String()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var buf [20]byte
	i := len(buf)
	for n > 0 {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
	}
	return string(buf[i:])
}
