package inproc

import (
	"reflect"
	"time"
	"unsafe"

	as "github.com/aerospike/aerospike-client-go/v7"
)

// A query or scan returns its *as.Recordset at once and streams records afterwards; the
// operation ends when the client's last producer goroutine finishes (Recordset.signalEnd).
// The wrapper must not consume the caller's records nor change the returned type, so it
// observes the end through the recordset's internal errors channel: for a non-reflection
// recordset nothing is ever sent on it (errors travel in Results()), and signalEnd closes it
// right after closing the results channel. Reading an unexported field is tied to the
// client's layout, so it is checked once; if the layout ever differs, the watcher polls
// IsActive() instead, which signalEnd clears just before closing the channels.
var errorsField = findErrorsField()

func findErrorsField() []int {
	t := reflect.TypeOf(as.Recordset{})
	f, ok := t.FieldByName("errors")
	if !ok || f.Type != reflect.TypeOf((chan as.Error)(nil)) {
		return nil
	}
	return f.Index
}

// endChan returns a channel that is closed when rs ends, or nil if the layout is unknown.
func endChan(rs *as.Recordset) <-chan as.Error {
	if errorsField == nil {
		return nil
	}
	f := reflect.ValueOf(rs).Elem().FieldByIndex(errorsField)
	return *(*chan as.Error)(unsafe.Pointer(f.UnsafeAddr()))
}

const pollInterval = 200 * time.Microsecond

// endWaiter returns a function that blocks until rs ends. It keeps only the channel, not rs,
// so that an abandoned recordset can still be finalized (its finalizer closes it, which ends
// it).
func endWaiter(rs *as.Recordset) func() {
	if ch := endChan(rs); ch != nil {
		return func() {
			for range ch { //nolint:revive // drained only to observe the close
			}
		}
	}
	return func() { waitInactive(rs) }
}

// waitInactive polls until rs ends.
func waitInactive(rs *as.Recordset) {
	for rs.IsActive() {
		time.Sleep(pollInterval)
	}
}
