package discovery

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
)

// procSignal asks the watcher to look at one pid now.
type procSignal struct {
	pid  int
	exit bool
}

// startExecProbe loads the sched_process_exec/exit raw tracepoint programs and forwards
// the pids they report. stop detaches everything and waits for the reader goroutine.
func startExecProbe(ctx context.Context) (<-chan procSignal, func(), error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, nil, fmt.Errorf("removing memlock rlimit: %w", err)
	}
	var objs execObjects
	if err := loadExecObjects(&objs, nil); err != nil {
		return nil, nil, fmt.Errorf("loading exec objects: %w", err)
	}
	execLink, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sched_process_exec", Program: objs.OnExec})
	if err != nil {
		objs.Close()
		return nil, nil, fmt.Errorf("attaching sched_process_exec: %w", err)
	}
	exitLink, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sched_process_exit", Program: objs.OnExit})
	if err != nil {
		execLink.Close()
		objs.Close()
		return nil, nil, fmt.Errorf("attaching sched_process_exit: %w", err)
	}
	rd, err := ringbuf.NewReader(objs.ProcEvents)
	if err != nil {
		exitLink.Close()
		execLink.Close()
		objs.Close()
		return nil, nil, fmt.Errorf("opening ring buffer: %w", err)
	}

	out := make(chan procSignal, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		var rec ringbuf.Record
		for {
			if err := rd.ReadInto(&rec); err != nil {
				if errors.Is(err, ringbuf.ErrClosed) {
					return
				}
				continue
			}
			var ev execProcEvent
			if _, err := binary.Decode(rec.RawSample, binary.NativeEndian, &ev); err != nil {
				continue
			}
			sig := procSignal{pid: int(ev.Tgid), exit: ev.Kind == uint32(execProcKindPROC_EXIT)}
			select {
			case out <- sig:
			case <-ctx.Done():
				return
			default:
				// The watcher is busy; the next scan will catch this pid.
			}
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			rd.Close()
			<-done
			exitLink.Close()
			execLink.Close()
			objs.Close()
		})
	}
	return out, stop, nil
}
