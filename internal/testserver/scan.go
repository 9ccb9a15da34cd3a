package testserver

import (
	"encoding/binary"
	"fmt"
)

type queryFilter struct {
	bin        []byte
	ptype      byte
	begin, end []byte
}

// parseFilter decodes an INDEX_RANGE field: u8 count, then per filter u8 nameLen, name,
// u8 particle type, u32 size, begin, u32 size, end. Only the first filter is used.
func parseFilter(b []byte) (*queryFilter, error) {
	bad := fmt.Errorf("%w: bad index range field", errMalformed)
	if len(b) < 2 || b[0] < 1 {
		return nil, bad
	}
	b = b[1:]
	nameLen := int(b[0])
	if len(b) < 1+nameLen+1+4 {
		return nil, bad
	}
	f := &queryFilter{bin: b[1 : 1+nameLen], ptype: b[1+nameLen]}
	b = b[2+nameLen:]
	n := binary.BigEndian.Uint32(b)
	if uint64(n)+4 > uint64(len(b)-4) {
		return nil, bad
	}
	f.begin = b[4 : 4+n]
	b = b[4+n:]
	m := binary.BigEndian.Uint32(b)
	if uint64(m) > uint64(len(b)-4) {
		return nil, bad
	}
	f.end = b[4 : 4+m]
	return f, nil
}

// scanRequest is what selects the records of a scan or query.
type scanRequest struct {
	ns, set []byte
	filter  *queryFilter
	pids    []int
}

func (sr *scanRequest) matches(k recKey, rec *record, now uint32) bool {
	return k.ns == string(sr.ns) && (len(sr.set) == 0 || rec.set == string(sr.set)) && !rec.expired(now) && matchesFilter(rec, sr.filter)
}

// execScan streams every matching record of the requested partitions (or of every
// partition this node owns when none are named), then a LAST message. A stream
// aggregation (aggregate.go) or a background job (jobs.go) runs over the same records
// instead.
func (st *connState) execScan(m *message) error {
	var filter *queryFilter
	if fb := m.field(fieldIndexRange); fb != nil {
		var err error
		if filter, err = parseFilter(fb); err != nil {
			return err
		}
	}
	ns := m.field(fieldNamespace)
	set := m.field(fieldSet)
	noBins := m.hdr.info1&info1NoBinData != 0
	maxRecords := int64(-1)
	if mr := m.field(fieldMaxRecords); len(mr) == 8 {
		maxRecords = int64(binary.BigEndian.Uint64(mr))
	}
	var pids []int
	if pa := m.field(fieldPIDArray); pa != nil {
		if len(pa)%2 != 0 {
			return fmt.Errorf("%w: odd partition id array", errMalformed)
		}
		for i := 0; i < len(pa); i += 2 {
			pid := int(binary.LittleEndian.Uint16(pa[i:]))
			if pid >= partitionCount {
				return fmt.Errorf("%w: partition id %d", errMalformed, pid)
			}
			pids = append(pids, pid)
		}
	}
	if da := m.field(fieldDigestArr); da != nil {
		if len(da)%20 != 0 {
			return fmt.Errorf("%w: bad digest array", errMalformed)
		}
		// Resumed partitions are scanned again from the start: the client's tracker drops
		// records it has already seen only by digest order, which a map cannot give, so
		// resumption only happens after faults, where duplicates are acceptable.
		for i := 0; i < len(da); i += 20 {
			pids = append(pids, partitionID(da[i:i+20]))
		}
	}
	if pids == nil && !m.hasField(fieldPIDArray) && !m.hasField(fieldDigestArr) {
		for p := 0; p < partitionCount; p++ {
			if st.n.c.owner(p) == st.n.idx {
				pids = append(pids, p)
			}
		}
	}
	sr := &scanRequest{ns: ns, set: set, filter: filter, pids: pids}
	switch udfOp := m.field(fieldUDFOp); {
	case len(udfOp) == 1 && udfOp[0] == udfOpAggregate:
		return st.execAggregate(m, sr)
	case len(udfOp) == 1 && udfOp[0] == udfOpBackground, m.hdr.info2&info2Write != 0:
		return st.execBackground(m, sr)
	}
	w := &st.w
	s := st.n.c.store
	now := nowVoid()
	start := w.beginFrame()
	var sent int64
	for _, pid := range pids {
		p := &s.parts[pid]
		p.mu.Lock()
		for k, rec := range p.recs {
			if maxRecords >= 0 && sent >= maxRecords {
				break
			}
			if !sr.matches(k, rec, now) {
				continue
			}
			nOps := len(rec.bins)
			if noBins {
				nOps = 0
			}
			w.header(0, rcOK, rec.gen, rec.voidTime, 0, 3, nOps)
			w.field(fieldNamespace, ns)
			w.fieldString(fieldSet, rec.set)
			w.field(fieldDigest, k.digest[:])
			if !noBins {
				writeAllBins(rec.bins, w)
			}
			sent++
		}
		p.mu.Unlock()
		if len(w.buf)-start > responseFlushSize {
			w.endFrame(start, typeMsg)
			if _, err := st.conn.Write(w.buf); err != nil {
				return errClose
			}
			w.buf = w.buf[:0]
			start = w.beginFrame()
		}
	}
	w.header(info3Last, rcOK, 0, 0, 0, 0, 0)
	w.endFrame(start, typeMsg)
	return st.reply(nil)
}
