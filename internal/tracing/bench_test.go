package tracing

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// BenchmarkOnOpToSpan measures the agent's CPU cost per span.
//   - build: the worker's span construction alone (OTEL_TRACES_EXPORTER=none), called
//     synchronously, so ns/op is the CPU time per span.
//   - otlp: OnOp through the queue, worker, batcher and OTLP/gRPC export to a receiver in a
//     child process; cpu-ns/span is this process's user+system CPU per span, all goroutines.
func BenchmarkOnOpToSpan(b *testing.B) {
	proc := &Process{PID: 1, ExecutableName: "bench", K8s: map[string]string{"k8s.pod.name": "p"}}
	ev := OpEvent{Proc: proc, Op: "get", Namespace: "test", Set: "users", ErrorType: "KeyNotFoundError", ResultCode: 2,
		Start: t0, End: t0.Add(time.Millisecond), ServerAddress: "10.0.0.1", ServerPort: 3000}

	b.Run("build", func(b *testing.B) {
		benchEnv(b, map[string]string{"OTEL_TRACES_EXPORTER": "none"})
		tr, err := New(Config{Enabled: true})
		if err != nil {
			b.Fatal(err)
		}
		defer tr.Shutdown(context.Background())
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			ev.ID = uint64(i)
			tr.emitOp(&ev)
		}
	})

	b.Run("otlp", func(b *testing.B) {
		addr := childReceiver(b)
		benchEnv(b, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + addr, "OTEL_BSP_SCHEDULE_DELAY": "50"})
		tr, err := New(Config{Enabled: true, QueueSize: 8192})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		cpu0 := processCPU()
		n := 0
		for i := 0; b.Loop(); i++ {
			// Pace the producer to what the exporter sustains so that nothing is dropped.
			for uint64(i)-tr.exporter.exported.Load()-tr.droppedTotal.Load() > 1536 {
				time.Sleep(50 * time.Microsecond)
			}
			ev.ID = uint64(i)
			tr.OnOp(ev)
			n++
		}
		if err := tr.Shutdown(context.Background()); err != nil {
			b.Fatal(err)
		}
		if cpu := processCPU(); cpu > 0 {
			b.ReportMetric(float64((cpu-cpu0).Nanoseconds())/float64(n), "cpu-ns/span")
		}
		b.ReportMetric(float64(tr.Stats().Dropped), "dropped")
	})
}

// TestHelperReceiver is the child process of childReceiver, not a test.
func TestHelperReceiver(t *testing.T) {
	if os.Getenv("ASOBSERVE_TEST_RECEIVER") != "1" {
		t.Skip("helper process for BenchmarkOnOpToSpan, not a test (CI runs it only as that helper)")
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := serveReceiver(lis)
	fmt.Println("ADDR", r.addr)
	_, _ = io.Copy(io.Discard, os.Stdin) // run until the parent closes stdin
	r.srv.Stop()
}

func childReceiver(b *testing.B) string {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperReceiver$")
	cmd.Env = append(os.Environ(), "ASOBSERVE_TEST_RECEIVER=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
			go func() { _, _ = io.Copy(io.Discard, out) }()
			return addr
		}
	}
	b.Fatal("receiver child exited without an address")
	return ""
}

func benchEnv(b *testing.B, vars map[string]string) {
	for _, k := range otelVars {
		if old, ok := os.LookupEnv(k); ok {
			b.Cleanup(func() { os.Setenv(k, old) })
		} else {
			b.Cleanup(func() { os.Unsetenv(k) })
		}
		os.Unsetenv(k)
	}
	for k, v := range vars {
		os.Setenv(k, v)
	}
}
