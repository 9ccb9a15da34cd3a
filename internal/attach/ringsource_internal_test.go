//go:build linux

package attach

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
)

// Close ends a read wherever it is (waiting in the netpoller, or between its steps) with
// a closed error the pipeline takes for the end, never another error.
func TestRingSourceCloseEndsAWaitingRead(t *testing.T) {
	e2etest.RequireRoot(t) // creating BPF maps
	for i := range 50 {
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: uint32(os.Getpagesize())})
		if err != nil {
			t.Fatal(err)
		}
		src, err := newRingSource(m)
		if err != nil {
			t.Fatal(err)
		}
		src.SetDeadline(time.Now().Add(time.Minute))
		done := make(chan error, 1)
		go func() {
			var rec ringbuf.Record
			done <- src.ReadInto(&rec)
		}()
		// From at once to well after the read waits: every point of the read meets a Close.
		time.Sleep(time.Duration(i%10) * 200 * time.Microsecond)
		if err := src.Close(); err != nil {
			t.Fatalf("close %d: %v", i, err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, os.ErrClosed) && !errors.Is(err, ringbuf.ErrClosed) {
				t.Fatalf("read %d ended with %v, want a closed error", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("read %d still waiting 10 s after Close", i)
		}
		m.Close()
	}
}

// The narrowest point of the race above, made certain: Close has closed the poller's file
// but not yet taken the lock, and a read starts (or is between its steps) right then.
func TestRingSourceReadBetweenCloseStepsEndsClosed(t *testing.T) {
	e2etest.RequireRoot(t) // creating BPF maps
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: uint32(os.Getpagesize())})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	src, err := newRingSource(m)
	if err != nil {
		t.Fatal(err)
	}
	src.SetDeadline(time.Now().Add(time.Minute))
	src.closed.Store(true)
	if err := src.f.Close(); err != nil {
		t.Fatal(err)
	}
	var rec ringbuf.Record
	if err := src.ReadInto(&rec); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("read ended with %v, want os.ErrClosed", err)
	}
	if err := src.r.Close(); err != nil {
		t.Fatal(err)
	}
}
