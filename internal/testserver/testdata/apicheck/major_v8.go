package main

import (
	"encoding/binary"
	"fmt"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"
)

var majorChecks = []struct {
	name string
	run  func(cl *as.Client) error
}{
	{"put_payload", checkPutPayload},
	{"txn_commit", checkTxnCommit},
	{"txn_abort", checkTxnAbort},
	{"txn_version_mismatch", checkTxnVersionMismatch},
	{"txn_batch", checkTxnBatch},
	{"fault_txn_verify", checkTxnVerifyFault},
	{"fault_txn_roll", checkTxnRollFault},
}

// writePayload is a write command of one string bin, built by hand the way the wire
// protocol lays it out: PutPayload sends the caller's bytes unchanged.
func writePayload(k *as.Key, bin, value string) []byte {
	var body []byte
	field := func(typ byte, data []byte) {
		body = binary.BigEndian.AppendUint32(body, uint32(len(data)+1))
		body = append(body, typ)
		body = append(body, data...)
	}
	hdr := make([]byte, 22)
	hdr[0] = 22
	hdr[2] = 0x01 // info2 write
	binary.BigEndian.PutUint16(hdr[18:], 3)
	binary.BigEndian.PutUint16(hdr[20:], 1)
	body = append(body, hdr...)
	field(0, []byte(k.Namespace()))
	field(1, []byte(k.SetName()))
	field(4, k.Digest())
	body = binary.BigEndian.AppendUint32(body, uint32(4+len(bin)+len(value)))
	body = append(body, 2, 3, 0, byte(len(bin))) // op write, particle string
	body = append(body, bin...)
	body = append(body, value...)
	frame := binary.BigEndian.AppendUint64(nil, uint64(len(body))|3<<48|2<<56)
	return append(frame, body...)
}

func checkPutPayload(cl *as.Client) error {
	k := key("payload", 1)
	if err := cl.PutPayload(nil, k, writePayload(k, "raw", "bytes")); err != nil {
		return fmt.Errorf("PutPayload: %v", err)
	}
	rec, err := cl.Get(nil, k)
	if err != nil || rec.Bins["raw"] != "bytes" || len(rec.Bins) != 1 {
		return fmt.Errorf("after PutPayload: %v, %v", rec, err)
	}
	return nil
}

func txnPolicies(txn *as.Txn) (*as.WritePolicy, *as.BasePolicy) {
	wp := as.NewWritePolicy(0, 0)
	wp.Txn = txn
	rp := as.NewPolicy()
	rp.Txn = txn
	return wp, rp
}

func checkTxnCommit(cl *as.Client) error {
	read, written := key("txn", "read"), key("txn", "written")
	if err := cl.Put(nil, read, as.BinMap{"v": 1}); err != nil {
		return err
	}
	txn := as.NewTxn()
	wp, rp := txnPolicies(txn)
	if rec, err := cl.Get(rp, read); err != nil || rec.Bins["v"] != 1 {
		return fmt.Errorf("Get in txn: %v, %v", rec, err)
	}
	if err := cl.Put(wp, written, as.BinMap{"v": 2}); err != nil {
		return fmt.Errorf("Put in txn: %v", err)
	}
	// The transaction holds the record it wrote until it ends.
	if err := cl.Put(nil, written, as.BinMap{"v": 3}); err == nil || !err.Matches(types.MRT_BLOCKED) {
		return fmt.Errorf("Put outside the txn on its record: %v, want MRT_BLOCKED", err)
	}
	status, err := cl.Commit(txn)
	if err != nil || status != as.CommitStatusOK {
		return fmt.Errorf("Commit = %v, %v", status, err)
	}
	if rec, err := cl.Get(nil, written); err != nil || rec.Bins["v"] != 2 {
		return fmt.Errorf("after Commit: %v, %v", rec, err)
	}
	if err := cl.Put(nil, written, as.BinMap{"v": 4}); err != nil {
		return fmt.Errorf("Put after Commit: %v", err)
	}
	return nil
}

func checkTxnAbort(cl *as.Client) error {
	existing, created := key("txn", "existing"), key("txn", "created")
	if err := cl.Put(nil, existing, as.BinMap{"v": 1}); err != nil {
		return err
	}
	txn := as.NewTxn()
	wp, _ := txnPolicies(txn)
	if err := cl.Put(wp, existing, as.BinMap{"v": 2}); err != nil {
		return fmt.Errorf("Put in txn: %v", err)
	}
	if err := cl.Put(wp, created, as.BinMap{"v": 2}); err != nil {
		return fmt.Errorf("Put in txn: %v", err)
	}
	status, err := cl.Abort(txn)
	if err != nil || status != as.AbortStatusOK {
		return fmt.Errorf("Abort = %v, %v", status, err)
	}
	if rec, err := cl.Get(nil, existing); err != nil || rec.Bins["v"] != 1 {
		return fmt.Errorf("after Abort, the overwritten record: %v, %v", rec, err)
	}
	if _, err := cl.Get(nil, created); err == nil || !err.Matches(types.KEY_NOT_FOUND_ERROR) {
		return fmt.Errorf("after Abort, the created record: %v, want KEY_NOT_FOUND", err)
	}
	return nil
}

// checkTxnVersionMismatch: a record the transaction read changes before the commit, so
// verification fails and the commit is rolled back.
func checkTxnVersionMismatch(cl *as.Client) error {
	read, written := key("txn", "mismatch-read"), key("txn", "mismatch-written")
	if err := cl.Put(nil, read, as.BinMap{"v": 1}); err != nil {
		return err
	}
	txn := as.NewTxn()
	wp, rp := txnPolicies(txn)
	if _, err := cl.Get(rp, read); err != nil {
		return fmt.Errorf("Get in txn: %v", err)
	}
	if err := cl.Put(wp, written, as.BinMap{"v": 1}); err != nil {
		return fmt.Errorf("Put in txn: %v", err)
	}
	if err := cl.Put(nil, read, as.BinMap{"v": 2}); err != nil {
		return fmt.Errorf("Put outside the txn on a record it only read: %v", err)
	}
	status, err := cl.Commit(txn)
	if err == nil || status != as.CommitStatusUnverified || !err.Matches(types.MRT_VERSION_MISMATCH) {
		return fmt.Errorf("Commit = %v, %v; want CommitStatusUnverified with MRT_VERSION_MISMATCH", status, err)
	}
	if _, err := cl.Get(nil, written); err == nil || !err.Matches(types.KEY_NOT_FOUND_ERROR) {
		return fmt.Errorf("after the failed commit, the written record: %v, want KEY_NOT_FOUND (rolled back)", err)
	}
	return nil
}

// checkTxnBatch reads and writes inside transactions with batches, so that the commit
// verifies and rolls several keys per node in batch commands.
func checkTxnBatch(cl *as.Client) error {
	var reads, writes []*as.Key
	for i := 0; i < 6; i++ {
		reads = append(reads, key("txnbatch", fmt.Sprintf("r%d", i)))
		writes = append(writes, key("txnbatch", fmt.Sprintf("w%d", i)))
		if err := cl.Put(nil, reads[i], as.BinMap{"v": i}); err != nil {
			return err
		}
	}
	batchWrites := func(txn *as.Txn, v int) error {
		bp := as.NewBatchPolicy()
		bp.Txn = txn
		ops := make([]as.BatchRecordIfc, len(writes))
		for i, k := range writes {
			ops[i] = as.NewBatchWrite(nil, k, as.PutOp(as.NewBin("v", v)))
		}
		return cl.BatchOperate(bp, ops)
	}
	txn := as.NewTxn()
	bp := as.NewBatchPolicy()
	bp.Txn = txn
	recs, err := cl.BatchGet(bp, reads)
	if err != nil {
		return fmt.Errorf("BatchGet in txn: %v", err)
	}
	for i, r := range recs {
		if r == nil || r.Bins["v"] != i {
			return fmt.Errorf("BatchGet in txn [%d] = %v", i, r)
		}
	}
	if err := batchWrites(txn, 1); err != nil {
		return fmt.Errorf("BatchOperate in txn: %v", err)
	}
	if status, err := cl.Commit(txn); err != nil || status != as.CommitStatusOK {
		return fmt.Errorf("Commit = %v, %v", status, err)
	}
	txn = as.NewTxn()
	if err := batchWrites(txn, 2); err != nil {
		return fmt.Errorf("BatchOperate in the second txn: %v", err)
	}
	if status, err := cl.Abort(txn); err != nil || status != as.AbortStatusOK {
		return fmt.Errorf("Abort = %v, %v", status, err)
	}
	recs, err = cl.BatchGet(nil, writes)
	if err != nil {
		return err
	}
	for i, r := range recs {
		if r == nil || r.Bins["v"] != 1 {
			return fmt.Errorf("after the commit and the abort, written record %d = %v, want v=1", i, r)
		}
	}
	return nil
}

// checkTxnVerifyFault runs with every verify command failing with MRT_EXPIRED: the
// commit must fail unverified.
func checkTxnVerifyFault(cl *as.Client) error {
	k := key("txn", "fault")
	if err := cl.Put(nil, k, as.BinMap{"v": 1}); err != nil {
		return err
	}
	txn := as.NewTxn()
	_, rp := txnPolicies(txn)
	if _, err := cl.Get(rp, k); err != nil {
		return fmt.Errorf("Get in txn: %v", err)
	}
	status, err := cl.Commit(txn)
	if err == nil || status != as.CommitStatusUnverified || !err.Matches(types.MRT_EXPIRED) {
		return fmt.Errorf("Commit = %v, %v; want CommitStatusUnverified with MRT_EXPIRED", status, err)
	}
	return nil
}

// checkTxnRollFault runs with every roll command failing with MRT_EXPIRED: the commit is
// verified and marked, so it reports the abandoned roll-forward.
func checkTxnRollFault(cl *as.Client) error {
	txn := as.NewTxn()
	wp, _ := txnPolicies(txn)
	if err := cl.Put(wp, key("txn", "roll-fault"), as.BinMap{"v": 1}); err != nil {
		return fmt.Errorf("Put in txn: %v", err)
	}
	status, err := cl.Commit(txn)
	if err == nil || status != as.CommitStatusRollForwardAbandoned || !err.Matches(types.MRT_EXPIRED) {
		return fmt.Errorf("Commit = %v, %v; want CommitStatusRollForwardAbandoned with MRT_EXPIRED", status, err)
	}
	return nil
}
