package testserver

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	as "github.com/aerospike/aerospike-client-go/v7"
)

type discardConn struct{ net.Conn }

func (discardConn) Write(b []byte) (int, error) { return len(b), nil }

// FuzzFrame feeds arbitrary bytes through the frame loop (proto header, info, AS_MSG,
// compressed frames, batch, scan and query parsing) of one connection. Seeds are real
// client frames in testdata/fuzz/FuzzFrame plus hand-made broken ones.
func FuzzFrame(f *testing.F) {
	f.Add(frame(typeInfo, []byte("node\nreplicas\n")))
	f.Add(frame(typeMsg, []byte{22, 1, 0, 0}))                    // truncated header
	f.Add(append(frame(typeMsg, nil)[:8], 0xff, 0xff))            // short body
	f.Add([]byte{2, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})       // oversized
	f.Add(frame(typeCompressed, []byte{0, 0, 0, 0, 0, 0, 0, 30})) // bad zlib
	c := &Cluster{store: newStore(), logf: func(string, ...any) {}, namespaces: []string{"test"}}
	c.SetFaults(nil)
	n := &node{c: c, name: "BB9", host: "127.0.0.1", port: 3000}
	c.nodes = []*node{n}
	n.replicas = c.replicasFor(0)
	f.Fuzz(func(t *testing.T, data []byte) {
		st := &connState{n: n, conn: discardConn{}, r: bufio.NewReader(bytes.NewReader(data))}
		var hdr [8]byte
		for i := 0; i < 64; i++ {
			if _, err := io.ReadFull(st.r, hdr[:]); err != nil {
				return
			}
			if err := st.handleFrame(hdr[:]); err != nil {
				return
			}
		}
	})
}

func frame(typ byte, body []byte) []byte {
	out := make([]byte, 8, 8+len(body))
	binary.BigEndian.PutUint64(out, uint64(len(body))|uint64(typ)<<48|uint64(protoVersion)<<56)
	return append(out, body...)
}

type lineLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, format)
}

func (l *lineLog) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

// TestMalformedInputClosesOnlyThatConnection sends garbage on raw connections while a
// real client keeps working: each bad connection is closed with exactly one log line.
func TestMalformedInputClosesOnlyThatConnection(t *testing.T) {
	log := &lineLog{}
	c, cl := startCluster(t, Config{Logf: log.logf})
	k := key(t, "m", 1)
	must(t, "put", cl.Put(nil, k, as.BinMap{"a": 1}))
	bad := [][]byte{
		{9, 3, 0, 0, 0, 0, 0, 1, 0},                       // bad version
		{2, 3, 0x10, 0, 0, 0, 0, 0},                       // oversized
		{2, 7, 0, 0, 0, 0, 0, 0},                          // unknown type
		frame(typeMsg, []byte{22, 1, 0, 0, 0, 0}),         // truncated AS_MSG header
		frame(typeMsg, append(make([]byte, 21), 0, 0, 5)), // bad header size byte
		frame(typeCompressed, []byte{0, 0, 0, 0, 0, 0, 1, 0, 'x', 'y'}),
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
	}
	// A valid header whose field claims more bytes than the message holds.
	msg := make([]byte, 22, 40)
	msg[0] = 22
	msg[19] = 1
	msg = append(msg, 0, 0, 1, 0, fieldNamespace)
	bad = append(bad, frame(typeMsg, msg))
	for i, b := range bad {
		conn, err := net.Dial("tcp", c.Hosts()[0])
		if err != nil {
			t.Fatal(err)
		}
		_, _ = conn.Write(b)
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := conn.Read(make([]byte, 1)); err == nil {
			t.Fatalf("case %d: server answered garbage instead of closing", i)
		}
		conn.Close()
		if _, err := cl.Get(nil, k); err != nil {
			t.Fatalf("case %d: server stopped serving: %v", i, err)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for log.count("closing connection") < len(bad) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := log.count("closing connection"); got != len(bad) {
		t.Fatalf("%d 'closing connection' log lines for %d bad connections: %q", got, len(bad), log.lines)
	}
}
