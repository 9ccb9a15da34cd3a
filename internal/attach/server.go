//go:build linux

package attach

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"unicode/utf8"

	"github.com/asobserve/asobserve/internal/observe"
)

type hostOffsets struct{ nodeHost, hostName, hostPort int64 }

// ServerAddr is the host and port of the node an operation was sent to.
type ServerAddr = observe.ServerAddr

// maxNodesCached bounds a target's node cache: clusters have tens of nodes, and nodes
// that leave take their entries with them only when the process does.
const maxNodesCached = 1024

type nodeCache struct {
	mu    sync.Mutex
	addrs map[uint64]*ServerAddr // nil: unreadable
}

// Server resolves the *Node address an op event carries (decoder.OpEvent.Node) to the
// node's host and port, reading the target's memory once per node.
func (t *Target) Server(node uint64) (ServerAddr, bool) {
	if node <= 1 || t.exe == nil || !t.exe.hasHostOffs {
		return ServerAddr{}, false
	}
	t.nodes.mu.Lock()
	defer t.nodes.mu.Unlock()
	if a, ok := t.nodes.addrs[node]; ok {
		if a == nil {
			return ServerAddr{}, false
		}
		return *a, true
	}
	a, err := readServer(t.PID, node, t.exe.hostOffs)
	if t.nodes.addrs == nil {
		t.nodes.addrs = map[uint64]*ServerAddr{}
	}
	if len(t.nodes.addrs) < maxNodesCached {
		t.nodes.addrs[node] = a
	}
	if err != nil {
		return ServerAddr{}, false
	}
	return *a, true
}

// readServer follows node.host -> Host{Name, Port} in the target's memory.
func readServer(pid int, node uint64, o hostOffsets) (*ServerAddr, error) {
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		return nil, err
	}
	defer mem.Close()
	word := func(addr uint64) (uint64, error) {
		var b [8]byte
		if _, err := mem.ReadAt(b[:], int64(addr)); err != nil {
			return 0, err
		}
		return binary.LittleEndian.Uint64(b[:]), nil
	}
	host, err := word(node + uint64(o.nodeHost))
	if err != nil || host == 0 {
		return nil, fmt.Errorf("node %#x: no host (%v)", node, err)
	}
	namePtr, err := word(host + uint64(o.hostName))
	if err != nil {
		return nil, err
	}
	nameLen, err := word(host + uint64(o.hostName) + 8)
	if err != nil {
		return nil, err
	}
	port, err := word(host + uint64(o.hostPort))
	if err != nil {
		return nil, err
	}
	if namePtr == 0 || nameLen == 0 || nameLen > 255 || port == 0 || port > 65535 {
		return nil, fmt.Errorf("node %#x: implausible host (len %d, port %d)", node, nameLen, port)
	}
	name := make([]byte, nameLen)
	if _, err := mem.ReadAt(name, int64(namePtr)); err != nil {
		return nil, err
	}
	if !utf8.Valid(name) {
		return nil, fmt.Errorf("node %#x: host name is not text", node)
	}
	return &ServerAddr{Host: string(name), Port: int(port)}, nil
}
