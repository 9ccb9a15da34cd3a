package testserver

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Built-in UDFs, callable under any package name:
//
//	echo(v)        returns v
//	add(bin, n)    adds integer n to bin (creating the record), returns the new value
//	get(bin)       returns the bin's value (nil when absent)
//	fail()         fails with UDF_BAD_RESPONSE and FAILURE "deliberate failure"
//
// Any other function fails with UDF_BAD_RESPONSE "function not found".
func (s *store) execUDF(p *partition, k recKey, rec *record, rq *recordRequest, w *writer, index uint32, now uint32) {
	args, err := decodeArgs(rq.udfArgs)
	if err != nil {
		udfFailure(w, index, "bad arglist: "+err.Error())
		return
	}
	arg := func(i int) any {
		if i < len(args) {
			return args[i]
		}
		return nil
	}
	switch string(rq.udfFunc) {
	case "echo":
		udfSuccess(w, index, arg(0))
	case "get":
		name, _ := arg(0).(string)
		if rec == nil {
			udfSuccess(w, index, nil)
			return
		}
		b := rec.bin([]byte(name))
		if b == nil {
			udfSuccess(w, index, nil)
			return
		}
		w.header(0, rcOK, 0, 0, index, 0, 1)
		w.op(opRead, b.ptype, "SUCCESS", b.value)
	case "add":
		name, _ := arg(0).(string)
		n, ok := arg(1).(int64)
		if name == "" || !ok {
			udfFailure(w, index, "add(bin, integer) expected")
			return
		}
		var bins []bin
		var cur int64
		if rec != nil {
			bins = append([]bin(nil), rec.bins...)
			if b := rec.bin([]byte(name)); b != nil {
				if b.ptype != ptInteger || len(b.value) != 8 {
					udfFailure(w, index, "bin is not an integer")
					return
				}
				cur = int64(binary.BigEndian.Uint64(b.value))
			}
		}
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, uint64(cur+n))
		bins = setBin(bins, []byte(name), ptInteger, v)
		nr := &record{set: string(rq.set), gen: 1, voidTime: voidTimeFor(rq.ttl, rec, now), version: s.nextVersion(), bins: bins}
		if rec != nil {
			nr.gen = rec.gen + 1
			nr.set = rec.set
		}
		p.recs[k] = nr
		udfSuccess(w, index, cur+n)
	case "fail":
		udfFailure(w, index, "deliberate failure")
	default:
		udfFailure(w, index, "function not found")
	}
}

func udfSuccess(w *writer, index uint32, v any) {
	w.header(0, rcOK, 0, 0, index, 0, 1)
	ptype, val := particle(v)
	w.op(opRead, ptype, "SUCCESS", val)
}

func udfFailure(w *writer, index uint32, msg string) {
	w.header(0, rcUDFBadReponse, 0, 0, index, 0, 1)
	w.op(opRead, ptString, "FAILURE", []byte(msg))
}

func particle(v any) (byte, []byte) {
	switch x := v.(type) {
	case int64:
		return ptInteger, binary.BigEndian.AppendUint64(nil, uint64(x))
	case float64:
		return ptFloat, binary.BigEndian.AppendUint64(nil, math.Float64bits(x))
	case string:
		return ptString, []byte(x)
	case []byte:
		return ptBlob, x
	case bool:
		if x {
			return ptInteger, binary.BigEndian.AppendUint64(nil, 1)
		}
		return ptInteger, binary.BigEndian.AppendUint64(nil, 0)
	default:
		return ptNull, nil
	}
}

// decodeArgs decodes the client's msgpack argument list. Scalars and nested lists are
// understood; maps and extension types are rejected.
func decodeArgs(b []byte) ([]any, error) {
	if len(b) == 0 {
		return nil, nil
	}
	d := mpDecoder{b: b}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("arglist is not a list")
	}
	return list, nil
}

type mpDecoder struct {
	b   []byte
	pos int
}

func (d *mpDecoder) take(n int) ([]byte, error) {
	if n < 0 || d.pos+n > len(d.b) {
		return nil, fmt.Errorf("truncated msgpack")
	}
	s := d.b[d.pos : d.pos+n]
	d.pos += n
	return s, nil
}

func (d *mpDecoder) uint(n int) (uint64, error) {
	s, err := d.take(n)
	if err != nil {
		return 0, err
	}
	var v uint64
	for _, c := range s {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

func (d *mpDecoder) value(depth int) (any, error) {
	if depth > 16 {
		return nil, fmt.Errorf("msgpack nested too deep")
	}
	t, err := d.take(1)
	if err != nil {
		return nil, err
	}
	c := t[0]
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	case c&0xf0 == 0x90:
		return d.list(int(c&0x0f), depth)
	case c&0xe0 == 0xa0:
		return d.str(int(c & 0x1f))
	}
	switch c {
	case 0xc0:
		return nil, nil
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	case 0xcc, 0xcd, 0xce, 0xcf:
		v, err := d.uint(1 << (c - 0xcc))
		return int64(v), err
	case 0xd0:
		v, err := d.uint(1)
		return int64(int8(v)), err
	case 0xd1:
		v, err := d.uint(2)
		return int64(int16(v)), err
	case 0xd2:
		v, err := d.uint(4)
		return int64(int32(v)), err
	case 0xd3:
		v, err := d.uint(8)
		return int64(v), err
	case 0xca:
		v, err := d.uint(4)
		return float64(math.Float32frombits(uint32(v))), err
	case 0xcb:
		v, err := d.uint(8)
		return math.Float64frombits(v), err
	case 0xd9, 0xda, 0xdb, 0xc4, 0xc5, 0xc6:
		sizeBytes := map[byte]int{0xd9: 1, 0xda: 2, 0xdb: 4, 0xc4: 1, 0xc5: 2, 0xc6: 4}[c]
		n, err := d.uint(sizeBytes)
		if err != nil {
			return nil, err
		}
		return d.str(int(n))
	case 0xdc, 0xdd:
		n, err := d.uint(2 << (c - 0xdc))
		if err != nil {
			return nil, err
		}
		return d.list(int(n), depth)
	}
	return nil, fmt.Errorf("unsupported msgpack type 0x%02x", c)
}

func (d *mpDecoder) list(n int, depth int) (any, error) {
	if n > len(d.b)-d.pos {
		return nil, fmt.Errorf("truncated msgpack list")
	}
	out := make([]any, 0, n)
	for i := 0; i < n; i++ {
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// str decodes an Aerospike msgpack string/blob: the first byte is the particle type.
func (d *mpDecoder) str(n int) (any, error) {
	s, err := d.take(n)
	if err != nil {
		return nil, err
	}
	if len(s) == 0 {
		return "", nil
	}
	switch s[0] {
	case ptString:
		return string(s[1:]), nil
	default:
		return append([]byte(nil), s[1:]...), nil
	}
}
