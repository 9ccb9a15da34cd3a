package testserver

import (
	"bytes"
	"encoding/binary"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

const (
	partitionCount = 4096
	// citrusleafEpoch is the server's time origin (2010-01-01 UTC) for record void times.
	citrusleafEpoch = 1262304000
)

type bin struct {
	name  string
	ptype byte
	value []byte
}

type record struct {
	set      string
	gen      uint32
	voidTime uint32 // seconds since citrusleafEpoch; 0 = never expires
	// version changes on every write; a transaction's verify step compares it with the
	// version its reads saw.
	version uint64
	bins    []bin
}

type recKey struct {
	ns     string
	digest [20]byte
}

type partition struct {
	mu   sync.Mutex
	recs map[recKey]*record
	// provisional holds the records a transaction has written and not yet rolled
	// forward or back, with what to restore on roll-back.
	provisional map[recKey]provisionalWrite
	// monitors are the transaction monitor records (set "<ERO~MRT"), kept apart from
	// recs so that scans and queries of a namespace return only the users' records.
	monitors map[recKey]*txnMonitor
}

// store is shared by every node of a cluster: the client routes each digest to its
// owner, and scans name the partitions they want, so ownership needs no separate data.
type store struct {
	parts    [partitionCount]partition
	versions atomic.Uint64
}

func newStore() *store {
	s := &store{}
	for i := range s.parts {
		s.parts[i].recs = make(map[recKey]*record)
		s.parts[i].provisional = make(map[recKey]provisionalWrite)
		s.parts[i].monitors = make(map[recKey]*txnMonitor)
	}
	return s
}

// nextVersion returns a record version no record has had yet.
func (s *store) nextVersion() uint64 { return s.versions.Add(1) }

func partitionID(digest []byte) int {
	return int(binary.LittleEndian.Uint32(digest[:4])&0xFFFF) & (partitionCount - 1)
}

func nowVoid() uint32 { return uint32(time.Now().Unix() - citrusleafEpoch) }

func (r *record) expired(now uint32) bool { return r.voidTime != 0 && r.voidTime <= now }

func (r *record) bin(name []byte) *bin {
	for i := range r.bins {
		if r.bins[i].name == string(name) {
			return &r.bins[i]
		}
	}
	return nil
}

// recordRequest is everything needed to execute one record command, whether it came as
// a single AS_MSG or as one entry of a batch.
type recordRequest struct {
	ns, set                    []byte
	digest                     []byte
	info1, info2, info3, info4 byte
	generation                 uint32
	ttl                        uint32
	ops                        []op
	udfFunc                    []byte
	udfArgs                    []byte
	isUDF                      bool
	txn                        txnFields
}

// exec runs one record command and appends one response message (header + ops) to w.
func (s *store) exec(rq *recordRequest, w *writer, index uint32) {
	if len(rq.digest) != 20 {
		w.header(0, rcParameter, 0, 0, index, 0, 0)
		return
	}
	p := &s.parts[partitionID(rq.digest)]
	k := recKey{digest: [20]byte(rq.digest)}
	p.mu.Lock()
	defer p.mu.Unlock()
	// Look up with a zero-allocation string conversion before materialising the key.
	k.ns = string(rq.ns)
	now := nowVoid()
	if string(rq.set) == txnMonitorSet {
		s.execMonitor(p, k, rq, w, index, now)
		return
	}
	rec := p.recs[k]
	if rec != nil && rec.expired(now) {
		delete(p.recs, k)
		rec = nil
	}
	s.execLocked(p, k, rec, rq, w, index, now)
}

// execLocked runs one record command on rec (nil when absent) with p locked.
func (s *store) execLocked(p *partition, k recKey, rec *record, rq *recordRequest, w *writer, index uint32, now uint32) {
	switch {
	case rq.info4&info4TxnVerifyRead != 0:
		verifyRecord(rec, rq, w, index)
	case rq.info4&(info4TxnRollForward|info4TxnRollBack) != 0:
		rollRecord(p, k, rq, w, index)
	case rq.isUDF || rq.info2&info2Write != 0:
		if rc := lockForTxn(p, k, rec, rq); rc != rcOK {
			w.header(0, rc, 0, 0, index, 0, 0)
			return
		}
		if rq.isUDF {
			s.execUDF(p, k, rec, rq, w, index, now)
		} else {
			s.write(p, k, rec, rq, w, index, now)
		}
	default:
		readRecord(rec, rq, w, index)
	}
}

func readRecord(rec *record, rq *recordRequest, w *writer, index uint32) {
	if rec == nil {
		w.header(0, rcKeyNotFound, 0, 0, index, 0, 0)
		return
	}
	// A read inside a transaction returns the version the commit will verify.
	nFields := 0
	if rq.txn.inTxn {
		nFields = 1
	}
	hdr := w.header(0, rcOK, rec.gen, rec.voidTime, index, nFields, 0)
	if rq.txn.inTxn {
		w.field(fieldRecordVersion, versionBytes(rec.version))
	}
	if rq.info1&info1NoBinData != 0 {
		return
	}
	n := 0
	if rq.info1&info1GetAll != 0 || len(rq.ops) == 0 {
		n = writeAllBins(rec.bins, w)
	} else {
		for i := range rq.ops {
			o := &rq.ops[i]
			if o.code != opRead {
				w.buf = w.buf[:hdr]
				w.header(0, rcParameter, 0, 0, index, 0, 0)
				return
			}
			if len(o.name) == 0 {
				n += writeAllBins(rec.bins, w)
			} else if b := rec.bin(o.name); b != nil {
				w.op(opRead, b.ptype, b.name, b.value)
				n++
			}
		}
	}
	w.setOps(hdr, n)
}

func writeAllBins(bins []bin, w *writer) int {
	for i := range bins {
		w.op(opRead, bins[i].ptype, bins[i].name, bins[i].value)
	}
	return len(bins)
}

// checkWrite applies the existence and generation policies of a write.
func checkWrite(rec *record, rq *recordRequest) byte {
	exists := rec != nil
	if rq.info2&info2CreateOnly != 0 && exists {
		return rcKeyExists
	}
	if rq.info3&(info3UpdateOnly|info3ReplaceOnly) != 0 && !exists {
		return rcKeyNotFound
	}
	if exists {
		if rq.info2&info2Generation != 0 && rq.generation != rec.gen {
			return rcGeneration
		}
		if rq.info2&info2GenerationGT != 0 && rq.generation <= rec.gen {
			return rcGeneration
		}
	}
	return rcOK
}

func voidTimeFor(ttl uint32, old *record, now uint32) uint32 {
	switch int32(ttl) {
	case 0, -1:
		return 0
	case -2:
		if old != nil {
			return old.voidTime
		}
		return 0
	default:
		return now + ttl
	}
}

func (s *store) write(p *partition, k recKey, rec *record, rq *recordRequest, w *writer, index uint32, now uint32) {
	if rc := checkWrite(rec, rq); rc != rcOK {
		w.header(0, rc, 0, 0, index, 0, 0)
		return
	}
	if rq.info2&info2Delete != 0 {
		if rec == nil {
			w.header(0, rcKeyNotFound, 0, 0, index, 0, 0)
			return
		}
		delete(p.recs, k)
		w.header(0, rcOK, 0, 0, index, 0, 0)
		return
	}
	var bins []bin
	if rec != nil && rq.info3&(info3ReplaceOnly|info3CreateOrReplace) == 0 {
		bins = make([]bin, len(rec.bins), len(rec.bins)+len(rq.ops))
		copy(bins, rec.bins)
	}
	hdr := w.header(0, rcOK, 0, 0, index, 0, 0)
	n := 0
	deleted := false
	respondAll := rq.info2&info2RespondAll != 0
	fail := func(rc byte) {
		w.buf = w.buf[:hdr]
		w.header(0, rc, 0, 0, index, 0, 0)
	}
	for i := range rq.ops {
		o := &rq.ops[i]
		switch o.code {
		case opRead:
			if len(o.name) == 0 {
				n += writeAllBins(bins, w)
				continue
			}
			if b := findBin(bins, o.name); b != nil {
				w.op(opRead, b.ptype, b.name, b.value)
				n++
			}
			continue
		case opWrite:
			if o.ptype == ptNull {
				bins = removeBin(bins, o.name)
			} else {
				bins = setBin(bins, o.name, o.ptype, clone(o.value))
			}
		case opAdd:
			var rc byte
			if bins, rc = addBin(bins, o); rc != rcOK {
				fail(rc)
				return
			}
		case opAppend, opPrepend:
			b := findBin(bins, o.name)
			switch {
			case b == nil:
				bins = setBin(bins, o.name, o.ptype, clone(o.value))
			case b.ptype != o.ptype || (o.ptype != ptString && o.ptype != ptBlob):
				fail(rcBinType)
				return
			case o.code == opAppend:
				b.value = append(clone(b.value), o.value...)
			default:
				b.value = append(clone(o.value), b.value...)
			}
		case opTouch:
			if rec == nil {
				fail(rcKeyNotFound)
				return
			}
		case opDelete:
			deleted = true
			bins = nil
		default:
			fail(rcParameter)
			return
		}
		if respondAll {
			w.op(opRead, ptNull, string(o.name), nil)
			n++
		}
	}
	if deleted || len(bins) == 0 {
		if rec == nil && !deleted {
			// A write that leaves no bins on a missing record creates nothing.
			fail(rcKeyNotFound)
			return
		}
		delete(p.recs, k)
		w.setOps(hdr, n)
		return
	}
	nr := &record{set: string(rq.set), gen: 1, voidTime: voidTimeFor(rq.ttl, rec, now), version: s.nextVersion(), bins: bins}
	if rec != nil {
		nr.gen = rec.gen + 1
		if len(rq.set) == 0 {
			nr.set = rec.set
		}
	}
	p.recs[k] = nr
	binary.BigEndian.PutUint32(w.buf[hdr+6:], nr.gen)
	binary.BigEndian.PutUint32(w.buf[hdr+10:], nr.voidTime)
	w.setOps(hdr, n)
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

func findBin(bins []bin, name []byte) *bin {
	for i := range bins {
		if bins[i].name == string(name) {
			return &bins[i]
		}
	}
	return nil
}

func setBin(bins []bin, name []byte, ptype byte, value []byte) []bin {
	if b := findBin(bins, name); b != nil {
		b.ptype, b.value = ptype, value
		return bins
	}
	return append(bins, bin{name: string(name), ptype: ptype, value: value})
}

func removeBin(bins []bin, name []byte) []bin {
	for i := range bins {
		if bins[i].name == string(name) {
			return append(bins[:i:i], bins[i+1:]...)
		}
	}
	return bins
}

func addBin(bins []bin, o *op) ([]bin, byte) {
	if len(o.value) != 8 || (o.ptype != ptInteger && o.ptype != ptFloat) {
		return bins, rcParameter
	}
	b := findBin(bins, o.name)
	if b == nil {
		return setBin(bins, o.name, o.ptype, clone(o.value)), rcOK
	}
	if b.ptype != o.ptype || len(b.value) != 8 {
		return bins, rcBinType
	}
	v := make([]byte, 8)
	if o.ptype == ptInteger {
		binary.BigEndian.PutUint64(v, binary.BigEndian.Uint64(b.value)+binary.BigEndian.Uint64(o.value))
	} else {
		f := math.Float64frombits(binary.BigEndian.Uint64(b.value)) + math.Float64frombits(binary.BigEndian.Uint64(o.value))
		binary.BigEndian.PutUint64(v, math.Float64bits(f))
	}
	b.value = v
	return bins, rcOK
}

// matchesFilter reports whether rec satisfies a query's index-range filter:
// integer begin<=v<=end, or string/blob equality.
func matchesFilter(rec *record, f *queryFilter) bool {
	if f == nil {
		return true
	}
	b := rec.bin(f.bin)
	if b == nil || b.ptype != f.ptype {
		return false
	}
	if f.ptype == ptInteger {
		if len(b.value) != 8 || len(f.begin) != 8 || len(f.end) != 8 {
			return false
		}
		v := int64(binary.BigEndian.Uint64(b.value))
		return v >= int64(binary.BigEndian.Uint64(f.begin)) && v <= int64(binary.BigEndian.Uint64(f.end))
	}
	return bytes.Equal(b.value, f.begin)
}
