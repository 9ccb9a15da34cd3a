// Package testserver is an in-memory server that speaks the Aerospike wire protocol well
// enough for the unmodified aerospike-client-go v6, v7 and v8: cluster tending (info),
// single-record commands, batches, partition scans and queries, built-in UDFs, UDF
// module registration, background jobs and their status, stream aggregation, v8
// multi-record transactions, compressed frames, a multi-node cluster mode with disjoint
// partition ownership, and fault injection. It exists so that end-to-end tests, the demo and benchmarks need no real
// Aerospike server.
package testserver

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a cluster. The zero value is a single node serving namespace "test".
type Config struct {
	Nodes  int
	Faults []Fault
	Logf   func(string, ...any)
	// Namespaces served; default {"test"}.
	Namespaces []string
}

// Cluster is a running set of nodes sharing one in-memory store.
type Cluster struct {
	nodes      []*node
	store      *store
	faults     atomic.Pointer[[]*faultRule]
	logf       func(string, ...any)
	namespaces []string

	modules            udfModules
	compressedRequests atomic.Int64
	maxConns           atomic.Int64

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

type node struct {
	c        *Cluster
	idx      int
	name     string
	ln       net.Listener
	host     string
	port     int
	requests atomic.Int64
	replicas string
	jobs     jobHistory
}

// Start listens on listen (port 0 picks a free port) for the first node; further nodes
// listen on free ports of the same host.
func Start(listen string, cfg Config) (*Cluster, error) {
	if cfg.Nodes <= 0 {
		cfg.Nodes = 1
	}
	if len(cfg.Namespaces) == 0 {
		cfg.Namespaces = []string{"test"}
	}
	logf := cfg.Logf
	if logf == nil {
		logf = log.Printf
	}
	c := &Cluster{store: newStore(), logf: logf, namespaces: cfg.Namespaces, conns: map[net.Conn]struct{}{}}
	c.SetFaults(cfg.Faults)
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("bad listen address %q: %v (use host:port, e.g. 127.0.0.1:3000)", listen, err)
	}
	for i := 0; i < cfg.Nodes; i++ {
		addr := listen
		if i > 0 {
			addr = net.JoinHostPort(host, "0")
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("listen %s: %v (pick a free port or use port 0)", addr, err)
		}
		tcp := ln.Addr().(*net.TCPAddr)
		n := &node{c: c, idx: i, ln: ln, host: tcp.IP.String(), port: tcp.Port,
			name: fmt.Sprintf("BB9%012X", 0xA0000+i)}
		c.nodes = append(c.nodes, n)
	}
	for _, n := range c.nodes {
		n.replicas = c.replicasFor(n.idx)
		c.wg.Add(1)
		go n.acceptLoop()
	}
	return c, nil
}

// Hosts returns "host:port" of every node, first node first.
func (c *Cluster) Hosts() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = net.JoinHostPort(n.host, strconv.Itoa(n.port))
	}
	return out
}

// SetFaults replaces the fault rules; it takes effect for the next request.
func (c *Cluster) SetFaults(f []Fault) {
	rules := compileFaults(f)
	c.faults.Store(&rules)
}

// NodeRequests returns the number of AS_MSG requests each node has served.
func (c *Cluster) NodeRequests() []int64 {
	out := make([]int64, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.requests.Load()
	}
	return out
}

// Close stops listening, closes every connection and waits for their goroutines.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	for _, n := range c.nodes {
		n.ln.Close()
	}
	for conn := range c.conns {
		conn.Close()
	}
	c.mu.Unlock()
	c.wg.Wait()
	return nil
}

// owner returns the node index owning partition p: round-robin, so every node owns a
// disjoint, evenly spread share.
func (c *Cluster) owner(p int) int { return p % len(c.nodes) }

func (c *Cluster) replicasFor(idx int) string {
	bitmap := make([]byte, partitionCount/8)
	for p := 0; p < partitionCount; p++ {
		if c.owner(p) == idx {
			bitmap[p>>3] |= 0x80 >> (p & 7)
		}
	}
	enc := base64.StdEncoding.EncodeToString(bitmap)
	parts := make([]string, len(c.namespaces))
	for i, ns := range c.namespaces {
		parts[i] = ns + ":0,1," + enc
	}
	return strings.Join(parts, ";")
}

func (n *node) acceptLoop() {
	defer n.c.wg.Done()
	for {
		conn, err := n.ln.Accept()
		if err != nil {
			return
		}
		c := n.c
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			conn.Close()
			return
		}
		c.conns[conn] = struct{}{}
		if n := int64(len(c.conns)); n > c.maxConns.Load() {
			c.maxConns.Store(n)
		}
		c.wg.Add(1)
		c.mu.Unlock()
		go func() {
			defer c.wg.Done()
			n.serve(conn)
			conn.Close()
			c.mu.Lock()
			delete(c.conns, conn)
			c.mu.Unlock()
		}()
	}
}

// errClose asks the connection loop to close the connection without logging.
var errClose = errors.New("close connection")

type connState struct {
	n     *node
	conn  net.Conn
	r     *bufio.Reader
	frame []byte
	inner []byte
	w     writer
	msg   message
	batch batchRequest
	rq    recordRequest
}

func (n *node) serve(conn net.Conn) {
	st := &connState{n: n, conn: conn, r: bufio.NewReaderSize(conn, 64<<10)}
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(st.r, hdr[:]); err != nil {
			if err != io.EOF && !errors.Is(err, net.ErrClosed) {
				n.c.logf("testserver: %s: read: %v", conn.RemoteAddr(), err)
			}
			return
		}
		err := st.handleFrame(hdr[:])
		if err == errClose {
			return
		}
		if err != nil {
			n.c.logf("testserver: %s: closing connection: %v", conn.RemoteAddr(), err)
			return
		}
	}
}

func (st *connState) readBody(size uint64) ([]byte, error) {
	if cap(st.frame) < int(size) {
		if size > 1<<20 {
			// Grow with the data actually received, not with what a header claims.
			var buf bytes.Buffer
			n, err := io.Copy(&buf, io.LimitReader(st.r, int64(size)))
			if err != nil || uint64(n) != size {
				return nil, fmt.Errorf("%w: truncated frame: %d of %d bytes", errMalformed, n, size)
			}
			st.frame = buf.Bytes()
			return st.frame, nil
		}
		st.frame = make([]byte, size)
	}
	st.frame = st.frame[:size]
	if _, err := io.ReadFull(st.r, st.frame); err != nil {
		return nil, fmt.Errorf("%w: truncated frame: %v", errMalformed, err)
	}
	return st.frame, nil
}

func (st *connState) handleFrame(hdr []byte) error {
	version, typ, size := parseProtoHeader(hdr)
	if version != protoVersion {
		return fmt.Errorf("%w: proto version %d", errMalformed, version)
	}
	if size > maxFrameSize {
		return fmt.Errorf("%w: frame of %d bytes exceeds %d", errMalformed, size, maxFrameSize)
	}
	body, err := st.readBody(size)
	if err != nil {
		return err
	}
	switch typ {
	case typeInfo:
		return st.reply(st.n.info(body, &st.w))
	case typeMsg:
		return st.handleMsg(body)
	case typeCompressed:
		st.n.c.compressedRequests.Add(1)
		st.inner, err = inflate(body, st.inner)
		if err != nil {
			return err
		}
		v, t, sz := parseProtoHeader(st.inner)
		if v != protoVersion || t != typeMsg || sz != uint64(len(st.inner)-8) {
			return fmt.Errorf("%w: bad inner frame in compressed frame", errMalformed)
		}
		return st.handleMsg(st.inner[8:])
	case typeAdmin:
		return fmt.Errorf("admin/security commands are not supported (connect without user/password)")
	default:
		return fmt.Errorf("%w: frame type %d", errMalformed, typ)
	}
}

func (st *connState) reply(err error) error {
	if err != nil {
		return err
	}
	_, werr := st.conn.Write(st.w.buf)
	if werr != nil {
		return errClose
	}
	return nil
}

func (n *node) info(body []byte, w *writer) error {
	w.reset()
	start := w.beginFrame()
	for _, cmd := range strings.Split(string(body), "\n") {
		if cmd == "" {
			continue
		}
		w.buf = append(w.buf, cmd...)
		w.buf = append(w.buf, '\t')
		w.buf = append(w.buf, n.infoValue(cmd)...)
		w.buf = append(w.buf, '\n')
	}
	w.endFrame(start, typeInfo)
	return nil
}

func (n *node) infoValue(cmd string) string {
	name, _, _ := strings.Cut(cmd, ":")
	switch name {
	case "node":
		return n.name
	case "build":
		return "7.2.0.0"
	case "version":
		return "Aerospike Enterprise Edition build 7.2.0.0"
	case "edition":
		return "Aerospike Enterprise Edition"
	case "features":
		return "pscans;query-show;batch-any;pquery;peers;replicas;replicas-all;cdt-list;cdt-map;float;geo;udf;blob-bits;truncate-namespace"
	case "partition-generation", "peers-generation", "rebalance-generation":
		return "1"
	case "cluster-name":
		return "asobserve"
	case "partitions":
		return strconv.Itoa(partitionCount)
	case "namespaces":
		return strings.Join(n.c.namespaces, ";")
	case "service-clear-std", "service", "service-clear-alt":
		return net.JoinHostPort(n.host, strconv.Itoa(n.port))
	case "peers-clear-std", "peers-clear-alt":
		var peers []string
		for _, o := range n.c.nodes {
			if o != n {
				peers = append(peers, fmt.Sprintf("[%s,,[%s]]", o.name, net.JoinHostPort(o.host, strconv.Itoa(o.port))))
			}
		}
		return fmt.Sprintf("1,%d,[%s]", n.port, strings.Join(peers, ","))
	case "peers-tls-std", "peers-tls-alt":
		return "1,,[]"
	case "replicas", "replicas-all":
		return n.replicas
	case "user-agent-set":
		return "ok"
	case "query-show", "scan-show", "jobs":
		return n.jobs.show(cmd)
	case "udf-put":
		return n.c.modules.put(cmd)
	case "udf-get":
		return n.c.modules.get(cmd)
	case "udf-list":
		return n.c.modules.list()
	case "udf-remove":
		return n.c.modules.remove(cmd)
	default:
		return ""
	}
}

// commandKind classifies a message for fault matching. A batch is classified by its
// first entry once parsed (see batchKind).
func commandKind(m *message) string {
	switch {
	case m.hdr.info1&info1Batch != 0:
		return CmdBatch
	case m.hdr.info4&info4TxnVerifyRead != 0:
		return CmdTxnVerify
	case m.hdr.info4&(info4TxnRollForward|info4TxnRollBack) != 0:
		return CmdTxnRoll
	case m.hasField(fieldIndexRange):
		return CmdQuery
	case !m.hasField(fieldDigest):
		return CmdScan
	case m.hasField(fieldUDFFunc):
		return CmdUDF
	case m.hdr.info2&info2Delete != 0:
		return CmdDelete
	case m.hdr.info2&info2Write != 0:
		return CmdWrite
	default:
		return CmdRead
	}
}

func (st *connState) handleMsg(body []byte) error {
	st.n.requests.Add(1)
	m := &st.msg
	if err := parseMessage(body, m); err != nil {
		return err
	}
	kind := commandKind(m)
	w := &st.w
	w.reset()
	w.compress = m.hdr.info1&info1CompressReply != 0

	ns, set := m.field(fieldNamespace), m.field(fieldSet)
	if m.hdr.info1&info1Batch != 0 {
		if err := st.batch.parse(m); err != nil {
			return err
		}
		if len(st.batch.entries) > 0 {
			first := &st.batch.entries[0]
			ns, set = first.ns, first.set
			kind = batchKind(first)
		}
	}
	if f := findFault(*st.n.c.faults.Load(), ns, set, kind); f != nil {
		if done, err := st.applyFault(f); done || err != nil {
			return err
		}
	}
	switch {
	case m.hdr.info1&info1Batch != 0:
		st.execBatch()
		return st.reply(nil)
	case kind == CmdScan || kind == CmdQuery:
		return st.execScan(m)
	default:
		return st.execSingle(m, ns, set)
	}
}

// batchKind classifies a batch by its first entry: a transaction's verify and roll
// steps are batches of their own kind.
func batchKind(e *batchEntry) string {
	switch {
	case e.info4&info4TxnVerifyRead != 0:
		return CmdTxnVerify
	case e.info4&(info4TxnRollForward|info4TxnRollBack) != 0:
		return CmdTxnRoll
	default:
		return CmdBatch
	}
}

// execSingle runs a single-record command and replies.
func (st *connState) execSingle(m *message, ns, set []byte) error {
	rq := &st.rq
	*rq = recordRequest{ns: ns, set: set, digest: m.field(fieldDigest),
		info1: m.hdr.info1, info2: m.hdr.info2, info3: m.hdr.info3, info4: m.hdr.info4,
		generation: m.hdr.generation, ttl: m.hdr.ttl, ops: m.ops, txn: txnFieldsOf(m)}
	if m.hasField(fieldUDFFunc) {
		rq.isUDF = true
		rq.udfFunc = m.field(fieldUDFFunc)
		rq.udfArgs = m.field(fieldUDFArgs)
	}
	w := &st.w
	start := w.beginFrame()
	st.n.c.store.exec(rq, w, 0)
	w.endFrame(start, typeMsg)
	return st.reply(nil)
}

// applyFault carries out f. done reports that the request has been answered (or will
// never be) and must not be executed.
func (st *connState) applyFault(f *Fault) (done bool, err error) {
	if f.Latency > 0 {
		time.Sleep(f.Latency)
	}
	switch {
	case f.Hang:
		// Swallow input until the client gives up and closes, or the server stops.
		_, _ = io.Copy(io.Discard, st.r)
		return true, errClose
	case f.CloseConn:
		st.w.reset()
		st.w.singleReply(info3Last, rcOK)
		_, _ = st.conn.Write(st.w.buf[:len(st.w.buf)/2])
		return true, errClose
	case f.ResultCode != 0:
		st.w.singleReply(info3Last, byte(f.ResultCode))
		return true, st.reply(nil)
	}
	return false, nil
}
