// Package decoder turns raw ring-buffer records written by bpf/asobserve.c into typed
// events. It validates every size and field, so a corrupt record yields an error, never a
// panic, and it interns namespace and set names so steady-state decoding does not allocate.
package decoder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Record types (enum event_type in asobserve.c).
const (
	TypeOp    = 1
	TypeStage = 2
)

// Layout of struct event_op and struct event_stage in bpf/asobserve.c (little endian).
const (
	OpRecordSize    = 184
	StageRecordSize = 40
	nsMax           = 32
	setMax          = 64
	nsOff           = 48
	setOff          = nsOff + nsMax
	parentOff       = setOff + setMax + 8 // after the node word
)

// Stage ids (enum stage_id in asobserve.c), in semconv.Stages order.
const (
	StageKeyParse = iota
	StageLimiterWait
	StageScheduleDelay
	StageConnAcquire
	StageIO
	StageParse
	StageAttempt
	NumStages
)

// OpEvent is one finished operation as the probes saw it.
type OpEvent struct {
	PID       uint32
	Row       uint16 // probe-table row of the function that started the op
	Alternate bool   // the row's alternate op applies (e.g. Get with bin names is "select")
	Failed    bool   // the returned Error was non-nil
	Code      int32  // result code of the returned error
	Cause     int32  // result code of the wrapped cause for MAX_RETRIES_EXCEEDED, else Code
	OpID      uint64
	Start     uint64 // CLOCK_MONOTONIC ns
	End       uint64
	Namespace string
	Set       string
	Node      uint64 // target address of the *Node the op was sent to; 0 unknown, 1 several
	// Parent is the target's own OTel span that was live on the op's goroutine when the
	// op started; all zero when there was none.
	ParentTraceID [16]byte
	ParentSpanID  [8]byte
	ParentFlags   uint8
}

// StageEvent is one internal stage of an operation.
type StageEvent struct {
	PID       uint32
	Row       uint16 // row of the owning operation
	Alternate bool   // the owning operation is its row's alternate op, as in OpEvent
	Stage     uint8
	OpID      uint64
	Start     uint64
	End       uint64
}

var (
	ErrShort    = errors.New("record too short")
	ErrType     = errors.New("unknown record type")
	ErrField    = errors.New("field out of range")
	ErrDuration = errors.New("end before start")
)

// Decoder keeps an intern table for names; it is not safe for concurrent use.
type Decoder struct {
	names map[string]string
}

// maxInterned bounds the intern table; names beyond it are allocated per event.
const maxInterned = 4096

// New returns a Decoder.
func New() *Decoder { return &Decoder{names: make(map[string]string)} }

// Type returns the record type of b, or an error for an empty record.
func Type(b []byte) (uint8, error) {
	if len(b) < 1 {
		return 0, ErrShort
	}
	return b[0], nil
}

// DecodeOp decodes an operation record into ev.
func (d *Decoder) DecodeOp(b []byte, ev *OpEvent) error {
	if len(b) < OpRecordSize {
		return fmt.Errorf("op %w: %d bytes, want %d", ErrShort, len(b), OpRecordSize)
	}
	if b[0] != TypeOp {
		return fmt.Errorf("%w %d", ErrType, b[0])
	}
	flags, nsLen, setLen := b[1], int(b[2]), int(b[3])
	if nsLen >= nsMax || setLen >= setMax || flags > 3 {
		return fmt.Errorf("op %w: flags=%d ns_len=%d set_len=%d", ErrField, flags, nsLen, setLen)
	}
	le := binary.LittleEndian
	ev.PID = le.Uint32(b[4:])
	ev.Row = le.Uint16(b[8:])
	ev.Failed = flags&1 != 0
	ev.Alternate = flags&2 != 0
	ev.Code = int32(le.Uint32(b[12:]))
	ev.Cause = int32(le.Uint32(b[16:]))
	ev.OpID = le.Uint64(b[24:])
	ev.Start = le.Uint64(b[32:])
	ev.End = le.Uint64(b[40:])
	if ev.End < ev.Start {
		return fmt.Errorf("op %w", ErrDuration)
	}
	ev.Namespace = d.name(b[nsOff : nsOff+nsLen])
	ev.Set = d.name(b[setOff : setOff+setLen])
	ev.Node = le.Uint64(b[parentOff-8:])
	copy(ev.ParentTraceID[:], b[parentOff:])
	copy(ev.ParentSpanID[:], b[parentOff+16:])
	ev.ParentFlags = b[parentOff+24]
	return nil
}

// DecodeStage decodes a stage record into ev.
func (d *Decoder) DecodeStage(b []byte, ev *StageEvent) error {
	if len(b) < StageRecordSize {
		return fmt.Errorf("stage %w: %d bytes, want %d", ErrShort, len(b), StageRecordSize)
	}
	if b[0] != TypeStage {
		return fmt.Errorf("%w %d", ErrType, b[0])
	}
	if b[1] >= NumStages {
		return fmt.Errorf("stage %w: stage=%d", ErrField, b[1])
	}
	le := binary.LittleEndian
	ev.Stage = b[1]
	ev.Row = le.Uint16(b[2:])
	ev.PID = le.Uint32(b[4:])
	ev.OpID = le.Uint64(b[8:])
	ev.Start = le.Uint64(b[16:])
	ev.End = le.Uint64(b[24:])
	flags := le.Uint64(b[32:])
	if flags&^2 != 0 {
		return fmt.Errorf("stage %w: flags=%d", ErrField, flags)
	}
	ev.Alternate = flags != 0
	if ev.End < ev.Start {
		return fmt.Errorf("stage %w", ErrDuration)
	}
	return nil
}

// name interns a label value read from target memory. Bytes that are not valid UTF-8
// are replaced, so a label can never carry invalid text.
func (d *Decoder) name(b []byte) string {
	if s, ok := d.names[string(b)]; ok {
		return s
	}
	s := string(b)
	if !utf8.ValidString(s) {
		s = toValidUTF8(s)
	}
	if len(d.names) < maxInterned {
		d.names[string(b)] = s
	}
	return s
}

func toValidUTF8(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		out = append(out, r) // invalid bytes decode as utf8.RuneError
	}
	return string(out)
}
