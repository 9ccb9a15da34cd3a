// Package observe is the one way results leave an event source (the eBPF pipeline or the
// in-process wrapper): every consumer (the recorder, rolling summaries and what reads them,
// tracing) is an Observer and sees the same events, including the end of a target.
//
// Events are passed by value, so an observer may keep one as it is, and the in-process
// hot path allocates nothing to deliver them (a pointer through an interface would escape).
package observe

import "time"

// Identity names the process an observation belongs to. Its values become the identity
// labels (semconv.IdentityLabels); keep one Identity per process and reuse the pointer.
type Identity struct {
	Service      string
	Node         string
	K8sNamespace string
	Pod          string
	Container    string
}

// ServerAddr is the host and port of the node an operation was sent to.
type ServerAddr struct {
	Host string
	Port int
}

// Target is one observed process. A source hands every event of a process with the same
// pointer, so observers may key what they keep per process by it until TargetGone.
type Target struct {
	PID      int
	Identity *Identity
	// Wall converts an event's Start or End to wall time.
	Wall func(ns int64) time.Time
	// Server resolves Op.Node to the node's address; nil when the source cannot tell.
	Server func(node uint64) (ServerAddr, bool)
}

// Op is one finished data operation.
type Op struct {
	Name      string // db_operation_name, e.g. "put"
	Namespace string
	Set       string
	ErrorType string // "" on success
	// ResultCode is the server result code behind ErrorType.
	ResultCode int
	// ID correlates the operation with its stages within one target.
	ID uint64
	// Start and End are nanoseconds on the source's monotonic clock (Target.Wall).
	Start, End int64
	// Node identifies the node the operation was sent to, for Target.Server; 0 unknown.
	Node uint64
	// Parent is the target's own span the operation ran under; all zero when none.
	ParentTraceID [16]byte
	ParentSpanID  [8]byte
	ParentFlags   uint8
}

// Duration is how long the operation took.
func (o *Op) Duration() time.Duration { return time.Duration(o.End - o.Start) }

// Stage is one internal stage of the operation OpID. A source delivers an operation's
// stages before the operation.
type Stage struct {
	Name string // semconv stage name, e.g. "io"
	Op   string // db_operation_name of the owning operation
	OpID uint64
	// Start and End are on the same clock as Op's.
	Start, End int64
}

// Duration is how long the stage took.
func (s *Stage) Duration() time.Duration { return time.Duration(s.End - s.Start) }

// Observer receives events. Methods are called concurrently from several goroutines and
// must not block. TargetGone comes after every event of that target: the observer may drop
// what it keeps for it.
type Observer interface {
	Op(t *Target, op Op)
	Stage(t *Target, st Stage)
	TargetGone(t *Target)
}

// Fanout delivers every event to each of its observers, in order.
type Fanout []Observer

// Op implements Observer.
func (f Fanout) Op(t *Target, op Op) {
	for _, o := range f {
		o.Op(t, op)
	}
}

// Stage implements Observer.
func (f Fanout) Stage(t *Target, st Stage) {
	for _, o := range f {
		o.Stage(t, st)
	}
}

// TargetGone implements Observer.
func (f Fanout) TargetGone(t *Target) {
	for _, o := range f {
		o.TargetGone(t)
	}
}
