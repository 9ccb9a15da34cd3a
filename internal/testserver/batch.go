package testserver

import (
	"encoding/binary"
	"fmt"
)

type batchEntry struct {
	index                      uint32
	digest                     []byte
	ns, set                    []byte
	info1, info2, info3, info4 byte
	generation                 uint32
	ttl                        uint32
	opsStart, opsEnd           int
	udfFunc, udfArgs           []byte
	isUDF                      bool
	txn                        txnFields
}

type batchRequest struct {
	entries []batchEntry
	ops     []op
	fields  []field
}

// maxBatchKeys bounds the declared key count before anything is allocated for it.
const maxBatchKeys = 1 << 20

// parse decodes field 42 (batch index with set: reads) or field 41 (batch index:
// reads, writes, deletes and UDFs with per-key attributes).
func (br *batchRequest) parse(m *message) error {
	br.entries = br.entries[:0]
	br.ops = br.ops[:0]
	withSet := true
	b := m.field(fieldBatchSet)
	if b == nil {
		withSet = false
		if b = m.field(fieldBatch); b == nil {
			return fmt.Errorf("%w: batch without field 41 or 42", errMalformed)
		}
	}
	if len(b) < 5 {
		return fmt.Errorf("%w: truncated batch field", errMalformed)
	}
	count := binary.BigEndian.Uint32(b)
	if count > maxBatchKeys || uint64(count)*25 > uint64(len(b)) {
		return fmt.Errorf("%w: batch declares %d keys in %d bytes", errMalformed, count, len(b))
	}
	b = b[5:]
	var prev *batchEntry
	for i := uint32(0); i < count; i++ {
		if len(b) < 25 {
			return fmt.Errorf("%w: truncated batch entry", errMalformed)
		}
		e := batchEntry{index: binary.BigEndian.Uint32(b), digest: b[4:24]}
		flags := b[24]
		b = b[25:]
		if withSet {
			if flags == 1 {
				if prev == nil {
					return fmt.Errorf("%w: batch repeat without previous entry", errMalformed)
				}
				br.entries = append(br.entries, repeatEntry(prev, e))
				prev = &br.entries[len(br.entries)-1]
				continue
			}
			if len(b) < 5 {
				return fmt.Errorf("%w: truncated batch entry header", errMalformed)
			}
			e.info1 = b[0]
			b = b[1:]
		} else {
			if flags&batchRepeat != 0 {
				if prev == nil {
					return fmt.Errorf("%w: batch repeat without previous entry", errMalformed)
				}
				br.entries = append(br.entries, repeatEntry(prev, e))
				prev = &br.entries[len(br.entries)-1]
				continue
			}
			need := 4
			if flags&batchInfo != 0 {
				need += 3
			}
			if flags&batchInfo4 != 0 {
				need++
			}
			if flags&batchGen != 0 {
				need += 2
			}
			if flags&batchTTL != 0 {
				need += 4
			}
			if len(b) < need {
				return fmt.Errorf("%w: truncated batch entry header", errMalformed)
			}
			if flags&batchInfo != 0 {
				e.info1, e.info2, e.info3 = b[0], b[1], b[2]
				b = b[3:]
			}
			if flags&batchInfo4 != 0 {
				e.info4 = b[0]
				b = b[1:]
			}
			if flags&batchGen != 0 {
				e.generation = uint32(binary.BigEndian.Uint16(b))
				b = b[2:]
			}
			if flags&batchTTL != 0 {
				e.ttl = binary.BigEndian.Uint32(b)
				b = b[4:]
			}
		}
		nFields := int(binary.BigEndian.Uint16(b))
		nOps := int(binary.BigEndian.Uint16(b[2:]))
		b = b[4:]
		var err error
		br.fields = br.fields[:0]
		if b, err = appendFields(b, nFields, &br.fields); err != nil {
			return err
		}
		for _, f := range br.fields {
			switch f.typ {
			case fieldNamespace:
				e.ns = f.data
			case fieldSet:
				e.set = f.data
			case fieldUDFFunc:
				e.udfFunc, e.isUDF = f.data, true
			case fieldUDFArgs:
				e.udfArgs = f.data
			default:
				e.txn.parseTxnField(f)
			}
		}
		e.opsStart = len(br.ops)
		if b, err = appendOps(b, nOps, &br.ops); err != nil {
			return err
		}
		e.opsEnd = len(br.ops)
		br.entries = append(br.entries, e)
		prev = &br.entries[len(br.entries)-1]
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes in batch field", errMalformed, len(b))
	}
	return nil
}

func repeatEntry(prev *batchEntry, e batchEntry) batchEntry {
	r := *prev
	r.index, r.digest = e.index, e.digest
	return r
}

// responseFlushSize is the buffered reply size at which a multi-message reply is
// written out as one frame and a new frame begun.
const responseFlushSize = 256 << 10

func (st *connState) execBatch() {
	w := &st.w
	br := &st.batch
	start := w.beginFrame()
	for i := range br.entries {
		e := &br.entries[i]
		st.rq = recordRequest{ns: e.ns, set: e.set, digest: e.digest, info1: e.info1, info2: e.info2, info3: e.info3,
			info4: e.info4, generation: e.generation, ttl: e.ttl, ops: br.ops[e.opsStart:e.opsEnd],
			isUDF: e.isUDF, udfFunc: e.udfFunc, udfArgs: e.udfArgs, txn: e.txn}
		st.n.c.store.exec(&st.rq, w, e.index)
		if len(w.buf)-start > responseFlushSize {
			w.endFrame(start, typeMsg)
			start = w.beginFrame()
		}
	}
	w.header(info3Last, rcOK, 0, 0, 0, 0, 0)
	w.endFrame(start, typeMsg)
}
