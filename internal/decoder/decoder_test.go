//go:build linux

package decoder

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/asobserve/asobserve/bpf"
)

// The records under test are the generated Go declarations of the C records, serialised
// little endian: they have the layout the programs write, whatever the decoder assumes.

func opEvent(ns, set string, flags uint8, code, cause int32, start, end uint64) bpf.AsobserveEventOp {
	rec := bpf.AsobserveEventOp{Type: uint8(bpf.AsobserveEventTypeEVENT_OP), Flags: flags,
		NsLen: uint8(len(ns)), SetLen: uint8(len(set)), Tgid: 4242, Gen: 3, Row: 17, Code: code, Cause: cause,
		OpId: 99, Start: start, End: end, Node: 0xc000123000}
	for i := range len(ns) {
		rec.Ns[i] = int8(ns[i])
	}
	for i := range len(set) {
		rec.Set[i] = int8(set[i])
	}
	for i := range rec.Parent.TraceId {
		rec.Parent.TraceId[i] = byte(0xa0 + i)
	}
	rec.Parent.SpanId = [8]uint8{1, 2, 3, 4, 5, 6, 7, 8}
	rec.Parent.Flags = 1
	return rec
}

func opRecord(ns, set string, flags uint8, code, cause int32, start, end uint64) []byte {
	return encode(opEvent(ns, set, flags, code, cause, start, end))
}

func encode(rec any) []byte {
	b, err := binary.Append(nil, binary.LittleEndian, rec)
	if err != nil {
		panic(err)
	}
	return b
}

func TestDecodeOp(t *testing.T) {
	d := New()
	var ev OpEvent
	rec := opRecord("test", "users", 3, -16, 9, 1000, 5000)
	if err := d.DecodeOp(rec, &ev); err != nil {
		t.Fatal(err)
	}
	want := OpEvent{PID: 4242, Gen: 3, Row: 17, Alternate: true, Failed: true, Code: -16, Cause: 9, OpID: 99,
		Start: 1000, End: 5000, Namespace: "test", Set: "users", Node: 0xc000123000,
		ParentTraceID: [16]byte{0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf},
		ParentSpanID:  [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, ParentFlags: 1}
	if ev != want {
		t.Fatalf("got %+v\nwant %+v", ev, want)
	}
	allocs := testing.AllocsPerRun(100, func() { _ = d.DecodeOp(rec, &ev) })
	if allocs != 0 {
		t.Fatalf("steady-state decode allocates %.0f times per record, want 0", allocs)
	}
}

func TestDecodeOpRejects(t *testing.T) {
	d := New()
	var ev OpEvent
	stageTyped := bpf.AsobserveEventOp{Type: TypeStage}
	cases := map[string]struct {
		rec  []byte
		want error
	}{
		"short":       {opRecord("a", "b", 0, 0, 0, 1, 2)[:OpRecordSize-1], ErrShort},
		"stage type":  {encode(stageTyped), ErrType},
		"bad flags":   {opRecord("a", "b", 16, 0, 0, 1, 2), ErrField},
		"end < start": {opRecord("a", "b", 0, 0, 0, 5, 2), ErrDuration},
	}
	long := opEvent("a", "b", 0, 0, 0, 1, 2)
	long.NsLen = uint8(nsMax)
	cases["ns too long"] = struct {
		rec  []byte
		want error
	}{encode(long), ErrField}
	for name, c := range cases {
		if err := d.DecodeOp(c.rec, &ev); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		}
	}
}

// A static name's field holds its link-time address, not bytes: the decoder hands the
// address on, and leaves the name empty.
func TestStaticNamesCarryTheirAddress(t *testing.T) {
	d := New()
	var ev OpEvent
	rec := opEvent("", "users", uint8(bpf.AsobserveEventFlagsEVENT_NS_STATIC), 0, 0, 1, 2)
	for i, b := range binary.LittleEndian.AppendUint64(nil, 0x4a1b20) {
		rec.Ns[i] = int8(b)
	}
	rec.NsLen = 4
	if err := d.DecodeOp(encode(rec), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Namespace != "" || ev.StaticNamespace != (StaticName{Addr: 0x4a1b20, Len: 4}) {
		t.Errorf("namespace %q at %+v, want \"\" at {0x4a1b20 4}", ev.Namespace, ev.StaticNamespace)
	}
	if ev.Set != "users" || ev.StaticSet != (StaticName{}) {
		t.Errorf("set %q at %+v, want \"users\" read from the record", ev.Set, ev.StaticSet)
	}
}

// An op whose set is a string constant and that had no parent span is sent without the
// rest of the set field and the parent: the record ends after the set's address.
func TestShortRecordOfAStaticSet(t *testing.T) {
	d := New()
	var ev OpEvent
	if err := d.DecodeOp(opRecord("test", "users", 0, 0, 0, 1, 2), &ev); err != nil || ev.ParentFlags != 1 {
		t.Fatalf("full record: parent flags %d, %v", ev.ParentFlags, err)
	}
	rec := opEvent("test", "", uint8(bpf.AsobserveEventFlagsEVENT_SET_STATIC), 0, 0, 1, 2)
	for i, b := range binary.LittleEndian.AppendUint64(nil, 0x4a1c00) {
		rec.Set[i] = int8(b)
	}
	rec.SetLen = 5
	short := encode(rec)[:OpRecordShortSize]
	if err := d.DecodeOp(short, &ev); err != nil {
		t.Fatal(err)
	}
	want := OpEvent{PID: 4242, Gen: 3, Row: 17, OpID: 99, Start: 1, End: 2, Namespace: "test",
		StaticSet: StaticName{Addr: 0x4a1c00, Len: 5}, Node: 0xc000123000}
	if ev != want {
		t.Fatalf("got %+v\nwant %+v", ev, want)
	}
	// The same length without a static set lacks the set's bytes.
	plain := opRecord("test", "users", 0, 0, 0, 1, 2)[:OpRecordShortSize]
	if err := d.DecodeOp(plain, &ev); !errors.Is(err, ErrShort) {
		t.Fatalf("short record of a set read from memory: %v, want %v", err, ErrShort)
	}
	if err := d.DecodeOp(short[:OpRecordShortSize-1], &ev); !errors.Is(err, ErrShort) {
		t.Fatalf("record shorter than the short form: %v, want %v", err, ErrShort)
	}
}

func TestInvalidUTF8IsReplaced(t *testing.T) {
	d := New()
	var ev OpEvent
	if err := d.DecodeOp(opRecord("te\xffst", "ok", 0, 0, 0, 1, 2), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Namespace != "te\uFFFDst" {
		t.Fatalf("namespace %q, want replacement character", ev.Namespace)
	}
}

const stageIO = uint8(bpf.AsobserveStageIdSTAGE_IO)

func TestDecodeStage(t *testing.T) {
	rec := bpf.AsobserveEventStage{Type: TypeStage, Stage: stageIO, Row: 5, Tgid: 77, Gen: 9, OpId: 12, Start: 100, End: 350}
	var ev StageEvent
	if err := New().DecodeStage(encode(rec), &ev); err != nil {
		t.Fatal(err)
	}
	want := StageEvent{PID: 77, Gen: 9, Row: 5, Stage: stageIO, OpID: 12, Start: 100, End: 350}
	if ev != want {
		t.Fatalf("got %+v want %+v", ev, want)
	}
	rec.Flags = 2
	if err := New().DecodeStage(encode(rec), &ev); err != nil || !ev.Alternate {
		t.Fatalf("alternate flag: %+v, %v", ev, err)
	}
	rec.Flags = 1
	if err := New().DecodeStage(encode(rec), &ev); !errors.Is(err, ErrField) {
		t.Fatalf("unknown stage flag: got %v", err)
	}
	rec.Flags = 0
	rec.Stage = uint8(bpf.AsobserveStageIdNUM_STAGES)
	if err := New().DecodeStage(encode(rec), &ev); !errors.Is(err, ErrField) {
		t.Fatalf("unknown stage: got %v", err)
	}
}

// Type reads the type of a record it has not identified yet, at the one offset both share.
func TestRecordsShareTheTypeOffset(t *testing.T) {
	if opType != stageType {
		t.Fatalf("event_op.type at byte %d, event_stage.type at %d", opType, stageType)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(opRecord("test", "users", 1, 2, 2, 1, 2))
	f.Add([]byte{TypeStage, 1, 2, 3})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := New()
		var op OpEvent
		var st StageEvent
		if err := d.DecodeOp(b, &op); err == nil {
			if len(op.Namespace) >= nsMax*3 || len(op.Set) >= setMax*3 || op.End < op.Start {
				t.Fatalf("accepted inconsistent record: %+v", op)
			}
		}
		if err := d.DecodeStage(b, &st); err == nil && st.End < st.Start {
			t.Fatalf("accepted inconsistent stage: %+v", st)
		}
	})
}

func BenchmarkDecodeOp(b *testing.B) {
	d := New()
	rec := opRecord("test", "users", 0, 0, 0, 1000, 5000)
	var ev OpEvent
	b.ReportAllocs()
	for b.Loop() {
		if err := d.DecodeOp(rec, &ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeStage(b *testing.B) {
	d := New()
	rec := encode(bpf.AsobserveEventStage{Type: TypeStage, Stage: stageIO, Start: 1, End: 2})
	var ev StageEvent
	b.ReportAllocs()
	for b.Loop() {
		if err := d.DecodeStage(rec, &ev); err != nil {
			b.Fatal(err)
		}
	}
}
