package decoder

import (
	"encoding/binary"
	"errors"
	"testing"
)

func opRecord(ns, set string, flags uint8, code, cause int32, start, end uint64) []byte {
	b := make([]byte, OpRecordSize)
	le := binary.LittleEndian
	b[0] = TypeOp
	b[1] = flags
	b[2] = byte(len(ns))
	b[3] = byte(len(set))
	le.PutUint32(b[4:], 4242)
	le.PutUint16(b[8:], 17)
	le.PutUint32(b[12:], uint32(code))
	le.PutUint32(b[16:], uint32(cause))
	le.PutUint64(b[24:], 99)
	le.PutUint64(b[32:], start)
	le.PutUint64(b[40:], end)
	copy(b[nsOff:], ns)
	copy(b[setOff:], set)
	le.PutUint64(b[parentOff-8:], 0xc000123000)
	for i := range 16 {
		b[parentOff+i] = byte(0xa0 + i)
	}
	copy(b[parentOff+16:], []byte{1, 2, 3, 4, 5, 6, 7, 8})
	b[parentOff+24] = 1
	return b
}

func TestDecodeOp(t *testing.T) {
	d := New()
	var ev OpEvent
	rec := opRecord("test", "users", 3, -16, 9, 1000, 5000)
	if err := d.DecodeOp(rec, &ev); err != nil {
		t.Fatal(err)
	}
	want := OpEvent{PID: 4242, Row: 17, Alternate: true, Failed: true, Code: -16, Cause: 9, OpID: 99,
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
	cases := map[string]struct {
		rec  []byte
		want error
	}{
		"short":       {opRecord("a", "b", 0, 0, 0, 1, 2)[:OpRecordSize-1], ErrShort},
		"stage type":  {append([]byte{TypeStage}, make([]byte, OpRecordSize-1)...), ErrType},
		"bad flags":   {opRecord("a", "b", 4, 0, 0, 1, 2), ErrField},
		"end < start": {opRecord("a", "b", 0, 0, 0, 5, 2), ErrDuration},
	}
	long := opRecord("a", "b", 0, 0, 0, 1, 2)
	long[2] = nsMax
	cases["ns too long"] = struct {
		rec  []byte
		want error
	}{long, ErrField}
	for name, c := range cases {
		if err := d.DecodeOp(c.rec, &ev); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		}
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

func TestDecodeStage(t *testing.T) {
	b := make([]byte, StageRecordSize)
	le := binary.LittleEndian
	b[0], b[1] = TypeStage, StageIO
	le.PutUint16(b[2:], 5)
	le.PutUint32(b[4:], 77)
	le.PutUint64(b[8:], 12)
	le.PutUint64(b[16:], 100)
	le.PutUint64(b[24:], 350)
	var ev StageEvent
	if err := New().DecodeStage(b, &ev); err != nil {
		t.Fatal(err)
	}
	want := StageEvent{PID: 77, Row: 5, Stage: StageIO, OpID: 12, Start: 100, End: 350}
	if ev != want {
		t.Fatalf("got %+v want %+v", ev, want)
	}
	le.PutUint64(b[32:], 2)
	if err := New().DecodeStage(b, &ev); err != nil || !ev.Alternate {
		t.Fatalf("alternate flag: %+v, %v", ev, err)
	}
	le.PutUint64(b[32:], 1)
	if err := New().DecodeStage(b, &ev); !errors.Is(err, ErrField) {
		t.Fatalf("unknown stage flag: got %v", err)
	}
	le.PutUint64(b[32:], 0)
	b[1] = NumStages
	if err := New().DecodeStage(b, &ev); !errors.Is(err, ErrField) {
		t.Fatalf("unknown stage: got %v", err)
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
