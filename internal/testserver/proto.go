package testserver

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Wire constants, see /work/shared/reference/wire-protocol.md.
const (
	protoVersion = 2

	typeInfo       = 1
	typeAdmin      = 2
	typeMsg        = 3
	typeCompressed = 4

	msgHeaderSize = 22
	// maxFrameSize bounds one request; larger frames are treated as garbage.
	maxFrameSize = 64 << 20

	info1Read          = 0x01
	info1GetAll        = 0x02
	info1Batch         = 0x08
	info1NoBinData     = 0x20
	info1CompressReply = 0x80

	info2Write        = 0x01
	info2Delete       = 0x02
	info2Generation   = 0x04
	info2GenerationGT = 0x08
	info2CreateOnly   = 0x20
	info2RespondAll   = 0x80

	info3Last            = 0x01
	info3UpdateOnly      = 0x08
	info3CreateOrReplace = 0x10
	info3ReplaceOnly     = 0x20

	// info4 (the header byte the v8 client added for multi-record transactions).
	info4TxnVerifyRead  = 0x01
	info4TxnRollForward = 0x02
	info4TxnRollBack    = 0x04

	fieldNamespace     = 0
	fieldSet           = 1
	fieldKey           = 2
	fieldRecordVersion = 3
	fieldDigest        = 4
	fieldTxnID         = 5
	fieldTxnDeadline   = 6
	fieldTaskID        = 7
	fieldPIDArray      = 11
	fieldDigestArr     = 12
	fieldMaxRecords    = 13
	fieldIndexRange    = 22
	fieldUDFPackage    = 30
	fieldUDFFunc       = 31
	fieldUDFArgs       = 32
	fieldUDFOp         = 33
	fieldBatch         = 41
	fieldBatchSet      = 42

	opRead    = 1
	opWrite   = 2
	opAdd     = 5
	opAppend  = 9
	opPrepend = 10
	opTouch   = 11
	opDelete  = 14

	ptNull    = 0
	ptInteger = 1
	ptFloat   = 2
	ptString  = 3
	ptBlob    = 4

	batchRepeat = 0x1
	batchInfo   = 0x2
	batchGen    = 0x4
	batchTTL    = 0x8
	batchInfo4  = 0x10
)

// Result codes the server produces itself.
const (
	rcOK            = 0
	rcServerError   = 1
	rcKeyNotFound   = 2
	rcGeneration    = 3
	rcParameter     = 4
	rcKeyExists     = 5
	rcBinType       = 12
	rcUDFBadReponse = 100
	rcTxnBlocked    = 120
	rcTxnVersion    = 121
	rcTxnCommitted  = 124
	rcTxnAborted    = 125
)

var errMalformed = errors.New("malformed message")

type msgHeader struct {
	info1, info2, info3, info4 byte
	generation                 uint32
	ttl                        uint32
	nFields, nOps              int
}

type field struct {
	typ  byte
	data []byte
}

type op struct {
	code  byte
	ptype byte
	name  []byte
	value []byte
}

// message is one parsed AS_MSG. Its slices point into the frame buffer, which the
// connection reuses, so anything stored must be copied.
type message struct {
	hdr    msgHeader
	fields []field
	ops    []op
}

func (m *message) field(typ byte) []byte {
	for i := range m.fields {
		if m.fields[i].typ == typ {
			return m.fields[i].data
		}
	}
	return nil
}

func (m *message) hasField(typ byte) bool {
	for i := range m.fields {
		if m.fields[i].typ == typ {
			return true
		}
	}
	return false
}

// parseMessage parses an AS_MSG body (after the 8-byte proto header). The body must be
// consumed exactly.
func parseMessage(body []byte, m *message) error {
	if len(body) < msgHeaderSize || body[0] != msgHeaderSize {
		return fmt.Errorf("%w: short or bad AS_MSG header", errMalformed)
	}
	m.hdr = msgHeader{
		info1:      body[1],
		info2:      body[2],
		info3:      body[3],
		info4:      body[4],
		generation: binary.BigEndian.Uint32(body[6:]),
		ttl:        binary.BigEndian.Uint32(body[10:]),
		nFields:    int(binary.BigEndian.Uint16(body[18:])),
		nOps:       int(binary.BigEndian.Uint16(body[20:])),
	}
	rest, err := parseFieldsOps(body[msgHeaderSize:], m.hdr.nFields, m.hdr.nOps, m)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errMalformed, len(rest))
	}
	return nil
}

// parseFieldsOps reads nFields fields and nOps ops, appending them to m, and returns the rest.
func parseFieldsOps(b []byte, nFields, nOps int, m *message) ([]byte, error) {
	m.fields = m.fields[:0]
	m.ops = m.ops[:0]
	var err error
	if b, err = appendFields(b, nFields, &m.fields); err != nil {
		return nil, err
	}
	return appendOps(b, nOps, &m.ops)
}

func appendFields(b []byte, n int, out *[]field) ([]byte, error) {
	for i := 0; i < n; i++ {
		if len(b) < 5 {
			return nil, fmt.Errorf("%w: truncated field", errMalformed)
		}
		size := binary.BigEndian.Uint32(b)
		if size < 1 || uint64(size) > uint64(len(b)-4) {
			return nil, fmt.Errorf("%w: field size %d out of range", errMalformed, size)
		}
		*out = append(*out, field{typ: b[4], data: b[5 : 4+size]})
		b = b[4+size:]
	}
	return b, nil
}

func appendOps(b []byte, n int, out *[]op) ([]byte, error) {
	for i := 0; i < n; i++ {
		if len(b) < 8 {
			return nil, fmt.Errorf("%w: truncated op", errMalformed)
		}
		size := binary.BigEndian.Uint32(b)
		nameLen := uint32(b[7])
		if size < 4+nameLen || uint64(size) > uint64(len(b)-4) {
			return nil, fmt.Errorf("%w: op size %d out of range", errMalformed, size)
		}
		*out = append(*out, op{code: b[4], ptype: b[5], name: b[8 : 8+nameLen], value: b[8+nameLen : 4+size]})
		b = b[4+size:]
	}
	return b, nil
}

// parseProtoHeader splits the 8-byte proto header.
func parseProtoHeader(h []byte) (version, typ byte, size uint64) {
	v := binary.BigEndian.Uint64(h)
	return byte(v >> 56), byte(v >> 48), v & 0xFFFFFFFFFFFF
}

// inflate decodes a compressed (type 4) frame body: u64 uncompressed size, then a zlib
// stream holding a whole inner frame (proto header included).
func inflate(body []byte, dst []byte) ([]byte, error) {
	if len(body) < 8 {
		return nil, fmt.Errorf("%w: truncated compressed frame", errMalformed)
	}
	want := binary.BigEndian.Uint64(body)
	if want < 8 || want > maxFrameSize {
		return nil, fmt.Errorf("%w: compressed frame declares %d bytes", errMalformed, want)
	}
	zr, err := zlib.NewReader(bytes.NewReader(body[8:]))
	if err != nil {
		return nil, fmt.Errorf("%w: zlib: %v", errMalformed, err)
	}
	buf := bytes.NewBuffer(dst[:0])
	n, err := io.Copy(buf, io.LimitReader(zr, int64(want)))
	if err != nil || uint64(n) != want {
		return nil, fmt.Errorf("%w: zlib: %d of %d bytes: %v", errMalformed, n, want, err)
	}
	return buf.Bytes(), nil
}

// writer builds response frames in a reusable buffer.
type writer struct {
	buf      []byte
	compress bool
	zbuf     bytes.Buffer
	zw       *zlib.Writer
}

func (w *writer) reset() { w.buf = w.buf[:0]; w.compress = false }

// beginFrame starts a type-3 frame and returns its start offset.
func (w *writer) beginFrame() int {
	start := len(w.buf)
	w.buf = append(w.buf, 0, 0, 0, 0, 0, 0, 0, 0)
	return start
}

func (w *writer) endFrame(start int, typ byte) {
	size := uint64(len(w.buf) - start - 8)
	binary.BigEndian.PutUint64(w.buf[start:], size|uint64(typ)<<48|uint64(protoVersion)<<56)
	if w.compress && typ == typeMsg {
		w.compressFrame(start)
	}
}

func (w *writer) compressFrame(start int) {
	w.zbuf.Reset()
	if w.zw == nil {
		w.zw, _ = zlib.NewWriterLevel(&w.zbuf, zlib.BestSpeed)
	} else {
		w.zw.Reset(&w.zbuf)
	}
	inner := w.buf[start:]
	_, _ = w.zw.Write(inner)
	_ = w.zw.Close()
	innerLen := len(inner)
	w.buf = w.buf[:start]
	var hdr [16]byte
	binary.BigEndian.PutUint64(hdr[0:], uint64(8+w.zbuf.Len())|uint64(typeCompressed)<<48|uint64(protoVersion)<<56)
	binary.BigEndian.PutUint64(hdr[8:], uint64(innerLen))
	w.buf = append(w.buf, hdr[:]...)
	w.buf = append(w.buf, w.zbuf.Bytes()...)
}

// msgHeader appends a 22-byte AS_MSG header and returns its offset, so that the op
// count can be patched once known.
func (w *writer) header(info3 byte, rc byte, gen, voidTime, index uint32, nFields, nOps int) int {
	off := len(w.buf)
	var h [msgHeaderSize]byte
	h[0] = msgHeaderSize
	h[3] = info3
	h[5] = rc
	binary.BigEndian.PutUint32(h[6:], gen)
	binary.BigEndian.PutUint32(h[10:], voidTime)
	binary.BigEndian.PutUint32(h[14:], index)
	binary.BigEndian.PutUint16(h[18:], uint16(nFields))
	binary.BigEndian.PutUint16(h[20:], uint16(nOps))
	w.buf = append(w.buf, h[:]...)
	return off
}

func (w *writer) setOps(hdrOff int, nOps int) {
	binary.BigEndian.PutUint16(w.buf[hdrOff+20:], uint16(nOps))
}

func (w *writer) field(typ byte, data []byte) {
	var h [5]byte
	binary.BigEndian.PutUint32(h[:], uint32(len(data)+1))
	h[4] = typ
	w.buf = append(w.buf, h[:]...)
	w.buf = append(w.buf, data...)
}

func (w *writer) fieldString(typ byte, data string) {
	var h [5]byte
	binary.BigEndian.PutUint32(h[:], uint32(len(data)+1))
	h[4] = typ
	w.buf = append(w.buf, h[:]...)
	w.buf = append(w.buf, data...)
}

func (w *writer) op(code, ptype byte, name string, value []byte) {
	var h [8]byte
	binary.BigEndian.PutUint32(h[:], uint32(4+len(name)+len(value)))
	h[4] = code
	h[5] = ptype
	h[7] = byte(len(name))
	w.buf = append(w.buf, h[:]...)
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, value...)
}

// singleReply writes a complete frame holding one header-only message.
func (w *writer) singleReply(info3, rc byte) {
	start := w.beginFrame()
	w.header(info3, rc, 0, 0, 0, 0, 0)
	w.endFrame(start, typeMsg)
}
