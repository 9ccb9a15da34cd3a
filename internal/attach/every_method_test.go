//go:build linux

package attach_test

import (
	"slices"
	"testing"
	"time"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/semconv"
	"github.com/asobserve/asobserve/internal/testserver"
)

// everyMethodFaults fail a share of every command kind the targets' methods send: reads
// and writes (single and object API), batches (batch reads, writes and UDFs), scans and
// queries (with their object forms and background jobs), and a v8 commit's verify and
// roll steps. Result codes that the client does not retry put the server's error in the
// caller's hands; the rest end in the client's own.
var everyMethodFaults = []testserver.Fault{
	{Command: testserver.CmdRead, ResultCode: 4, Percent: 20},
	{Command: testserver.CmdWrite, ResultCode: 5, Percent: 25},
	{Command: testserver.CmdBatch, ResultCode: 4, Percent: 20},
	{Command: testserver.CmdScan, ResultCode: 4, Percent: 25},
	{Command: testserver.CmdQuery, ResultCode: 9, Percent: 25},
	{Command: testserver.CmdTxnVerify, ResultCode: 4, Percent: 30},
	{Command: testserver.CmdTxnRoll, ResultCode: 4, Percent: 30},
	{Latency: time.Millisecond},
}

// Every method asobserve counts, under faults, counted exactly as each target saw it, for
// every client major, stripped builds included. The v6 and v7 builds are the stage test's
// and the matrix sample's (the target cache builds each once per run). Not v8.2.0: its client panics retrying a
// BatchGetComplex that a batch fault failed (newBatchOperateNodeListIfcRetry).
func TestEveryMethodUnderFaults(t *testing.T) {
	e2etest.RequireRoot(t)
	t.Cleanup(e2etest.RemoveTargets)
	stripped := []string{"-ldflags=-s -w"}
	for _, b := range []e2etest.TargetBuild{
		{Client: "v6", Toolchain: "go1.21.13", Flags: stripped},
		{Client: "v7", Toolchain: "go1.24.13", Flags: []string{"-buildmode=pie"}},
		{Client: "v8", Flags: stripped},
		{Client: "v7", Version: "v7.0.0", Flags: []string{"-buildmode=pie", "-ldflags=-s -w"}},
	} {
		t.Run(b.Client+b.Version, func(t *testing.T) { checkEveryMethod(t, b) })
	}
}

func checkEveryMethod(t *testing.T, build e2etest.TargetBuild) {
	bin, err := e2etest.BuildTarget(t, build)
	if err != nil {
		t.Fatal(err)
	}
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 3})
	w := e2etest.StartTarget(t, bin, cluster.Hosts(), "-count", "12", "-every-method")
	rec := metrics.New(metrics.Options{})
	agent := runAgent(t, rec, attach.Options{})
	if _, err := agent.Attach(w.PID, &metrics.Identity{Service: "target"}); err != nil {
		t.Fatal(err)
	}
	cluster.SetFaults(everyMethodFaults)
	w.Go(t)
	truth := w.Wait(t, 2*time.Minute)
	cluster.SetFaults(nil)
	Drain(t, agent)
	want := e2etest.TruthSeries(truth)
	checkExact(t, e2etest.OpSeries(t, rec.Registry, "target"), want)

	ops, errorTypes := map[string]bool{}, map[string]bool{}
	for k := range want {
		ops[k.Op] = true
		errorTypes[k.ErrorType] = true
	}
	wantOps := everyMethodOps(build.Client)
	for _, op := range wantOps {
		if !ops[op] {
			t.Errorf("the target ran no %s: %v", op, ops)
		}
	}
	if len(ops) != len(wantOps) {
		t.Errorf("the target ran %d operation kinds, want %d: %v", len(ops), len(wantOps), ops)
	}
	for _, et := range []string{"", "InvalidArgument", "KeyExistsError", "KeyNotFoundError", "UdfBadResponse", "Connection"} {
		if !errorTypes[et] {
			t.Errorf("the target produced no error_type %q: the test would not prove its decoding", et)
		}
	}
}

// everyMethodOps are the operation names a target run with -every-method records: all of
// semconv.Operations and, for the major, those beyond them.
func everyMethodOps(client string) []string {
	ops := append(slices.Clone(semconv.Operations), semconv.OpBatchApply, semconv.OpQueryBackground)
	if client == "v8" {
		ops = append(ops, semconv.OpCommit, semconv.OpAbort)
	}
	return ops
}
