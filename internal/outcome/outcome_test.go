package outcome

import "testing"

func TestErrorType(t *testing.T) {
	cases := []struct {
		op     string
		failed bool
		code   int
		want   string
	}{
		{"get", false, 0, ""},
		{"get", false, 2, ""},
		{"get", true, 2, "KeyNotFoundError"},
		{"exists", true, 2, ""},
		{"remove", true, 2, ""},
		{"put", true, 5, "KeyExistsError"},
		{"put", true, 3, "GenerationError"},
		{"get", true, 9, "Timeout"},
		{"get", true, -18, "Connection"},
		{"get", true, -8, "Connection"},
		{"get", true, 27, "FilteredOut"},
		{"put", true, 4, "InvalidArgument"},
		{"put", true, 14, "KeyBusy"},
		{"put", true, 1, "ServerError"},
		{"put", true, 9999, "ResultCode9999"},
		{"put", true, -99, "ResultCodeMinus99"},
		{"commit", true, -22, "TxnFailed"}, // v8's transaction codes are named too
		{"commit", true, 121, "MrtVersionMismatch"},
	}
	for _, c := range cases {
		if got := ErrorType(c.op, c.failed, c.code); got != c.want {
			t.Errorf("ErrorType(%q, %v, %d) = %q, want %q", c.op, c.failed, c.code, got, c.want)
		}
	}
}
