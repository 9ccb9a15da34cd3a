//go:build linux

package attach

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// ringSource reads the ring buffer and waits for records in the Go runtime's netpoller, not
// in the reader's blocking epoll_wait. A thread blocked in a system call holds its P, and
// the runtime's sysmon then keeps waking every 20 µs to hand the P off: at 10k ops/s that
// was 650 wakeups/s, more of the agent's CPU than reading and recording the records, taken
// on the cores the observed service runs on.
type ringSource struct {
	// mu is held by ReadInto while it uses r, so that Close frees r only after a waiting
	// read has seen f closed and returned.
	mu       sync.Mutex
	closed   atomic.Bool
	r        *ringbuf.Reader
	f        *os.File // a duplicate of the ring's fd, registered with the netpoller
	rc       syscall.RawConn
	deadline time.Time
}

func newRingSource(m *ebpf.Map) (*ringSource, error) {
	r, err := ringbuf.NewReader(m)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Dup(m.FD())
	if err == nil {
		err = unix.SetNonblock(fd, true)
		if err != nil {
			unix.Close(fd)
		}
	}
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("duplicating the ring buffer's fd: %w", err)
	}
	// A non-blocking fd that epoll accepts is registered with the netpoller.
	f := os.NewFile(uintptr(fd), "asobserve-events")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		r.Close()
		return nil, err
	}
	// The reader never blocks: a deadline in the past makes its epoll_wait return at once.
	r.SetDeadline(time.Unix(1, 0))
	return &ringSource{r: r, f: f, rc: rc}, nil
}

// SetDeadline bounds how long the next ReadInto waits for a record.
func (s *ringSource) SetDeadline(t time.Time) { s.deadline = t }

// ReadInto reads the next record, waiting until the deadline for one.
func (s *ringSource) ReadInto(rec *ringbuf.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		err := s.r.ReadInto(rec)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		err = s.f.SetReadDeadline(s.deadline)
		if err == nil {
			// Returns once the probes wake the agent (records were submitted with a wakeup)
			// or the records the ring holds are found without one.
			err = s.rc.Read(func(uintptr) bool { return s.r.AvailableBytes() > 0 })
		}
		if err != nil {
			// Both steps meet a Close with the poller's own "use of closed file", which no
			// exported error matches.
			if s.closed.Load() {
				return os.ErrClosed
			}
			return err
		}
	}
}

// Close makes a waiting ReadInto return os.ErrClosed, and later ones ringbuf.ErrClosed.
func (s *ringSource) Close() error {
	s.closed.Store(true)
	err := s.f.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(err, s.r.Close())
}
