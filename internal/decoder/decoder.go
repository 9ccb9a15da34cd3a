//go:build linux

// Package decoder turns raw ring-buffer records written by bpf/asobserve.c into typed
// events. It validates every size and field, so a corrupt record yields an error, never a
// panic, and it interns namespace and set names so steady-state decoding does not allocate.
//
// Record types, flags, sizes and offsets all come from the Go declarations bpf2go
// generates from the C records, so a change to a record is followed by regenerating.
// Fields are read by hand at those constant offsets: binary.Decode into the generated
// struct takes tens of times longer (reflection), and this runs for every event.
package decoder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
	"unsafe"

	"github.com/asobserve/asobserve/bpf"
)

// Record types (enum event_type).
const (
	TypeOp    = uint8(bpf.AsobserveEventTypeEVENT_OP)
	TypeStage = uint8(bpf.AsobserveEventTypeEVENT_STAGE)
)

type (
	eventOp    = bpf.AsobserveEventOp
	eventStage = bpf.AsobserveEventStage
	spanCtx    = bpf.AsobserveSpanCtx
)

// Sizes of struct event_op and struct event_stage. An op record whose set is a string
// constant and that has no parent span ends after the set's address (OP_RECORD_SHORT).
const (
	OpRecordSize      = int(unsafe.Sizeof(eventOp{}))
	OpRecordShortSize = int(unsafe.Offsetof(eventOp{}.Set)) + 8
	StageRecordSize   = int(unsafe.Sizeof(eventStage{}))
)

// Field offsets of struct event_op (little endian).
const (
	opType          = unsafe.Offsetof(eventOp{}.Type)
	opFlags         = unsafe.Offsetof(eventOp{}.Flags)
	opNsLen         = unsafe.Offsetof(eventOp{}.NsLen)
	opSetLen        = unsafe.Offsetof(eventOp{}.SetLen)
	opTgid          = unsafe.Offsetof(eventOp{}.Tgid)
	opRow           = unsafe.Offsetof(eventOp{}.Row)
	opCode          = unsafe.Offsetof(eventOp{}.Code)
	opCause         = unsafe.Offsetof(eventOp{}.Cause)
	opGen           = unsafe.Offsetof(eventOp{}.Gen)
	opOpID          = unsafe.Offsetof(eventOp{}.OpId)
	opStart         = unsafe.Offsetof(eventOp{}.Start)
	opEnd           = unsafe.Offsetof(eventOp{}.End)
	opNs            = unsafe.Offsetof(eventOp{}.Ns)
	opSet           = unsafe.Offsetof(eventOp{}.Set)
	opNode          = unsafe.Offsetof(eventOp{}.Node)
	opParentTraceID = unsafe.Offsetof(eventOp{}.Parent) + unsafe.Offsetof(spanCtx{}.TraceId)
	opParentSpanID  = unsafe.Offsetof(eventOp{}.Parent) + unsafe.Offsetof(spanCtx{}.SpanId)
	opParentFlags   = unsafe.Offsetof(eventOp{}.Parent) + unsafe.Offsetof(spanCtx{}.Flags)
	nsMax           = len(eventOp{}.Ns)
	setMax          = len(eventOp{}.Set)
)

// Field offsets of struct event_stage (little endian).
const (
	stageType  = unsafe.Offsetof(eventStage{}.Type)
	stageStage = unsafe.Offsetof(eventStage{}.Stage)
	stageRow   = unsafe.Offsetof(eventStage{}.Row)
	stageTgid  = unsafe.Offsetof(eventStage{}.Tgid)
	stageOpID  = unsafe.Offsetof(eventStage{}.OpId)
	stageStart = unsafe.Offsetof(eventStage{}.Start)
	stageEnd   = unsafe.Offsetof(eventStage{}.End)
	stageFlags = unsafe.Offsetof(eventStage{}.Flags)
	stageGen   = unsafe.Offsetof(eventStage{}.Gen)
)

// Record flag bits (enum event_flags) and the stage ids a record may carry (enum stage_id).
const (
	flagFailed    = uint8(bpf.AsobserveEventFlagsEVENT_FAILED)
	flagAlternate = uint8(bpf.AsobserveEventFlagsEVENT_ALTERNATE)
	flagNsStatic  = uint8(bpf.AsobserveEventFlagsEVENT_NS_STATIC)
	flagSetStatic = uint8(bpf.AsobserveEventFlagsEVENT_SET_STATIC)
	numStages     = uint8(bpf.AsobserveStageIdNUM_STAGES)
)

// OpEvent is one finished operation as the probes saw it.
type OpEvent struct {
	PID uint32
	// Gen is the attach generation of the process the op was recorded for: a pid that a
	// new process reused is another generation.
	Gen       uint32
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
	// StaticNamespace and StaticSet, when their Len is not 0, locate a name in the
	// executable's read-only data instead (Namespace or Set is then ""): the reader of the
	// record knows the executable, and reads it there.
	StaticNamespace, StaticSet StaticName
	Node                       uint64 // target address of the *Node the op was sent to; 0 unknown, 1 several
	// Parent is the target's own OTel span that was live on the op's goroutine when the
	// op started; all zero when there was none.
	ParentTraceID [16]byte
	ParentSpanID  [8]byte
	ParentFlags   uint8
}

// StaticName is a string constant of the target's executable: Len bytes at link-time
// address Addr of its .rodata.
type StaticName struct {
	Addr uint64
	Len  int
}

// StageEvent is one internal stage of an operation.
type StageEvent struct {
	PID       uint32
	Gen       uint32 // as in OpEvent
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

// Type returns the record type of b, or an error for an empty record. Both records start
// with their type.
func Type(b []byte) (uint8, error) {
	if len(b) <= int(opType) {
		return 0, ErrShort
	}
	return b[opType], nil
}

// DecodeOp decodes an operation record into ev.
func (d *Decoder) DecodeOp(b []byte, ev *OpEvent) error {
	if len(b) < OpRecordShortSize {
		return fmt.Errorf("op %w: %d bytes, want at least %d", ErrShort, len(b), OpRecordShortSize)
	}
	if b[opType] != TypeOp {
		return fmt.Errorf("%w %d", ErrType, b[opType])
	}
	flags, nsLen, setLen := b[opFlags], int(b[opNsLen]), int(b[opSetLen])
	full := len(b) >= OpRecordSize
	if !full && flags&flagSetStatic == 0 {
		return fmt.Errorf("op %w: %d bytes, want %d for a set that is not a string constant", ErrShort, len(b), OpRecordSize)
	}
	if nsLen >= nsMax || setLen >= setMax || flags&^(flagFailed|flagAlternate|flagNsStatic|flagSetStatic) != 0 {
		return fmt.Errorf("op %w: flags=%d ns_len=%d set_len=%d", ErrField, flags, nsLen, setLen)
	}
	le := binary.LittleEndian
	ev.PID = le.Uint32(b[opTgid:])
	ev.Gen = le.Uint32(b[opGen:])
	ev.Row = le.Uint16(b[opRow:])
	ev.Failed = flags&flagFailed != 0
	ev.Alternate = flags&flagAlternate != 0
	ev.Code = int32(le.Uint32(b[opCode:]))
	ev.Cause = int32(le.Uint32(b[opCause:]))
	ev.OpID = le.Uint64(b[opOpID:])
	ev.Start = le.Uint64(b[opStart:])
	ev.End = le.Uint64(b[opEnd:])
	if ev.End < ev.Start {
		return fmt.Errorf("op %w", ErrDuration)
	}
	ev.Namespace, ev.StaticNamespace = d.nameOrAddr(b[opNs:], nsLen, flags&flagNsStatic != 0)
	ev.Set, ev.StaticSet = d.nameOrAddr(b[opSet:], setLen, flags&flagSetStatic != 0)
	ev.Node = le.Uint64(b[opNode:])
	if !full {
		ev.ParentTraceID, ev.ParentSpanID, ev.ParentFlags = [16]byte{}, [8]byte{}, 0
		return nil
	}
	copy(ev.ParentTraceID[:], b[opParentTraceID:])
	copy(ev.ParentSpanID[:], b[opParentSpanID:])
	ev.ParentFlags = b[opParentFlags]
	return nil
}

// DecodeStage decodes a stage record into ev.
func (d *Decoder) DecodeStage(b []byte, ev *StageEvent) error {
	if len(b) < StageRecordSize {
		return fmt.Errorf("stage %w: %d bytes, want %d", ErrShort, len(b), StageRecordSize)
	}
	if b[stageType] != TypeStage {
		return fmt.Errorf("%w %d", ErrType, b[stageType])
	}
	if b[stageStage] >= numStages {
		return fmt.Errorf("stage %w: stage=%d", ErrField, b[stageStage])
	}
	le := binary.LittleEndian
	ev.Stage = b[stageStage]
	ev.Row = le.Uint16(b[stageRow:])
	ev.PID = le.Uint32(b[stageTgid:])
	ev.Gen = le.Uint32(b[stageGen:])
	ev.OpID = le.Uint64(b[stageOpID:])
	ev.Start = le.Uint64(b[stageStart:])
	ev.End = le.Uint64(b[stageEnd:])
	flags := le.Uint32(b[stageFlags:])
	if flags&^uint32(flagAlternate) != 0 {
		return fmt.Errorf("stage %w: flags=%d", ErrField, flags)
	}
	ev.Alternate = flags != 0
	if ev.End < ev.Start {
		return fmt.Errorf("stage %w", ErrDuration)
	}
	return nil
}

func (d *Decoder) nameOrAddr(field []byte, n int, static bool) (string, StaticName) {
	if static && n > 0 {
		return "", StaticName{Addr: binary.LittleEndian.Uint64(field), Len: n}
	}
	return d.name(field[:n]), StaticName{}
}

// Label is a name read from the target's executable as a label value: bytes that are not
// valid UTF-8 are replaced, as in names read from target memory.
func Label(b []byte) string {
	s := string(b)
	if !utf8.ValidString(s) {
		s = toValidUTF8(s)
	}
	return s
}

// name interns a label value read from target memory. Bytes that are not valid UTF-8
// are replaced, so a label can never carry invalid text.
func (d *Decoder) name(b []byte) string {
	if s, ok := d.names[string(b)]; ok {
		return s
	}
	s := Label(b)
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
