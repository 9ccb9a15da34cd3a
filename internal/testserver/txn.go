package testserver

import (
	"bytes"
	"encoding/binary"
)

// Multi-record transactions (client v8, server 8 protocol). The client keeps the
// transaction's state; the server's part is:
//   - the monitor record (set "<ERO~MRT", keyed by the transaction id): created or
//     extended before each write of the transaction, marked roll-forward ("fwd" bin) at
//     commit, deleted when the transaction closes;
//   - provisional writes: a record written with a transaction id is locked to that
//     transaction (other writers get MRT_BLOCKED) until the transaction's roll-forward
//     keeps it or its roll-back restores what was there before;
//   - record versions: reads inside a transaction return the record's version, and the
//     commit's verify step fails with MRT_VERSION_MISMATCH when it changed since.
//
// Readers outside the transaction see provisional data (a real server would show them
// the last committed version); the monitor's digest list is not kept, as this server
// never rolls abandoned transactions on its own.

// txnMonitorSet is the set the client writes transaction monitor records to.
const txnMonitorSet = "<ERO~MRT"

// defaultTxnTimeout is the monitor's lifetime, in seconds, when the client sends none.
const defaultTxnTimeout = 10

// txnFields are the transaction fields of one record command.
type txnFields struct {
	inTxn   bool
	id      uint64
	version []byte // RECORD_VERSION: 7 bytes, little endian
}

// parseTxnField records f in t when it is a transaction field.
func (t *txnFields) parseTxnField(f field) {
	switch f.typ {
	case fieldTxnID:
		if len(f.data) == 8 {
			t.inTxn, t.id = true, binary.LittleEndian.Uint64(f.data)
		}
	case fieldRecordVersion:
		t.version = f.data
	}
}

func txnFieldsOf(m *message) txnFields {
	var t txnFields
	for _, f := range m.fields {
		t.parseTxnField(f)
	}
	return t
}

type provisionalWrite struct {
	txnID  uint64
	before *record // nil: the record did not exist before the transaction wrote it
}

type txnMonitor struct {
	// deadline is the void time the client echoes in the transaction's writes
	// (MRT_DEADLINE); this server does not expire transactions.
	deadline    uint32
	rollForward bool
}

func versionBytes(v uint64) []byte {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return b[:7]
}

// lockForTxn checks that a write may touch k and, for a transaction's first write of
// k, remembers what roll-back restores.
func lockForTxn(p *partition, k recKey, rec *record, rq *recordRequest) byte {
	prov, locked := p.provisional[k]
	if locked {
		if !rq.txn.inTxn || prov.txnID != rq.txn.id {
			return rcTxnBlocked
		}
		return rcOK
	}
	if rq.txn.inTxn {
		p.provisional[k] = provisionalWrite{txnID: rq.txn.id, before: rec}
	}
	return rcOK
}

// verifyRecord answers a commit's verify read: the record must still have the version
// the transaction read.
func verifyRecord(rec *record, rq *recordRequest, w *writer, index uint32) {
	if rec == nil || !bytes.Equal(versionBytes(rec.version), rq.txn.version) {
		w.header(0, rcTxnVersion, 0, 0, index, 0, 0)
		return
	}
	w.header(0, rcOK, rec.gen, rec.voidTime, index, 0, 0)
}

// rollRecord keeps (roll-forward) or undoes (roll-back) the transaction's write of k.
// Rolling a record the transaction does not hold is a no-op, as a retried roll must be.
func rollRecord(p *partition, k recKey, rq *recordRequest, w *writer, index uint32) {
	if prov, ok := p.provisional[k]; ok && prov.txnID == rq.txn.id {
		if rq.info4&info4TxnRollBack != 0 {
			if prov.before == nil {
				delete(p.recs, k)
			} else {
				p.recs[k] = prov.before
			}
		}
		delete(p.provisional, k)
	}
	w.header(0, rcOK, 0, 0, index, 0, 0)
}

// execMonitor serves the three commands on a transaction monitor record: add keys
// (create or extend; answers with the transaction's deadline, refused once the commit
// has begun), mark roll-forward (a write of bin "fwd") and close (delete).
func (s *store) execMonitor(p *partition, k recKey, rq *recordRequest, w *writer, index uint32, now uint32) {
	mon := p.monitors[k]
	switch {
	case rq.info2&info2Delete != 0:
		if mon == nil {
			w.header(0, rcKeyNotFound, 0, 0, index, 0, 0)
			return
		}
		delete(p.monitors, k)
		w.header(0, rcOK, 0, 0, index, 0, 0)
	case len(rq.ops) == 1 && string(rq.ops[0].name) == "fwd":
		if mon == nil {
			w.header(0, rcTxnAborted, 0, 0, index, 0, 0)
			return
		}
		mon.rollForward = true
		w.header(0, rcOK, 0, 0, index, 0, 0)
	case mon != nil && mon.rollForward:
		w.header(0, rcTxnCommitted, 0, 0, index, 0, 0)
	default:
		if mon == nil {
			timeout := rq.ttl
			if timeout == 0 {
				timeout = defaultTxnTimeout
			}
			mon = &txnMonitor{deadline: now + timeout}
			p.monitors[k] = mon
		}
		w.header(0, rcOK, 0, 0, index, 1, 0)
		w.field(fieldTxnDeadline, binary.LittleEndian.AppendUint32(nil, mon.deadline))
	}
}
