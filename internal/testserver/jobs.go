package testserver

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// Background jobs: QueryExecute (a scan or query carrying write operations) and
// ExecuteUDF/ExecuteUDFNode (a scan or query naming a record UDF with UDF_OP
// "background"). A node runs its share of the job before it answers, so the job is
// done by the time the client's ExecuteTask polls "query-show:trid=<id>" (or the older
// "scan-show"/"jobs:module=...;cmd=get-job" forms, or "id=" instead of "trid=").

// UDF_OP values of a scan or query.
const (
	udfOpAggregate  = 1
	udfOpBackground = 2
)

// maxJobHistory bounds the finished jobs a node remembers, as a server's
// query-max-done does.
const maxJobHistory = 100

type job struct {
	id                uint64
	kind              string // "background-udf" or "background-ops"
	ns, set           string
	succeeded, failed int64
}

// jobHistory is a node's record of the background jobs it has finished.
type jobHistory struct {
	mu   sync.Mutex
	jobs []job // oldest first
}

func (h *jobHistory) add(j job) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.jobs) == maxJobHistory {
		h.jobs = append(h.jobs[:0], h.jobs[1:]...)
	}
	h.jobs = append(h.jobs, j)
}

// show answers a job status info command. An unknown job is "ERROR:2", which a client
// of a partition-query server takes as finished and purged.
func (h *jobHistory) show(cmd string) string {
	_, params, _ := strings.Cut(cmd, ":")
	var id string
	for _, kv := range strings.Split(params, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok && (k == "trid" || k == "id") {
			id = v
		}
	}
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return "ERROR:4:bad job id " + strconv.Quote(id)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.jobs) - 1; i >= 0; i-- {
		if j := h.jobs[i]; j.id == n {
			return fmt.Sprintf("trid=%d:job-type=%s:ns=%s:set=%s:status=done(ok):recs-succeeded=%d:recs-failed=%d",
				j.id, j.kind, j.ns, j.set, j.succeeded, j.failed)
		}
	}
	return "ERROR:2:job not found"
}

// execBackground applies the job's operations or record UDF to every matching record
// of the node's share, then answers with a lone LAST message, as a server does once it
// has queued the job.
func (st *connState) execBackground(m *message, sr *scanRequest) error {
	s := st.n.c.store
	now := nowVoid()
	rq := recordRequest{ns: sr.ns, info1: m.hdr.info1, info2: m.hdr.info2, info3: m.hdr.info3,
		generation: m.hdr.generation, ttl: m.hdr.ttl, ops: m.ops}
	j := job{id: taskID(m), kind: "background-ops", ns: string(sr.ns), set: string(sr.set)}
	if m.hasField(fieldUDFFunc) {
		rq.isUDF, rq.udfFunc, rq.udfArgs = true, m.field(fieldUDFFunc), m.field(fieldUDFArgs)
		j.kind = "background-udf"
	}
	var scratch writer
	var keys []recKey
	for _, pid := range sr.pids {
		p := &s.parts[pid]
		p.mu.Lock()
		keys = keys[:0]
		for k, rec := range p.recs {
			if sr.matches(k, rec, now) {
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			rq.digest = k.digest[:]
			scratch.reset()
			s.execLocked(p, k, p.recs[k], &rq, &scratch, 0, now)
			if scratch.buf[5] == rcOK {
				j.succeeded++
			} else {
				j.failed++
			}
		}
		p.mu.Unlock()
	}
	st.n.jobs.add(j)
	st.w.singleReply(info3Last, rcOK)
	return st.reply(nil)
}

// taskID is the job id the client sends in every scan and query.
func taskID(m *message) uint64 {
	if f := m.field(fieldTaskID); len(f) == 8 {
		return binary.BigEndian.Uint64(f)
	}
	return 0
}
