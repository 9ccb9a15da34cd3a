package inspect

import (
	"errors"
	"fmt"
)

// Sentinel causes. Every error returned by this package wraps exactly one of
// them, so callers test with errors.Is and print Error() as the one-line
// message for the user (it names the cause and the remedy).
var (
	ErrNoProcess         = errors.New("no such process")
	ErrExeUnreadable     = errors.New("executable unreadable")
	ErrNotGo             = errors.New("not a Go binary")
	ErrGoTooOld          = errors.New("go version too old")
	ErrNoClient          = errors.New("no aerospike client")
	ErrUnsupportedClient = errors.New("unsupported aerospike client")
	ErrCorrupt           = errors.New("corrupt binary")
	ErrNoFunc            = errors.New("function not found")
	ErrNoField           = errors.New("struct field not found")
)

// Error is the concrete error type: Msg is the full one-line message, Kind the
// sentinel it wraps and Err the underlying cause, if any.
type Error struct {
	Kind error
	Msg  string
	Err  error
}

func (e *Error) Error() string { return e.Msg }

func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

func newErr(kind, cause error, format string, args ...any) *Error {
	return &Error{Kind: kind, Err: cause, Msg: fmt.Sprintf(format, args...)}
}
