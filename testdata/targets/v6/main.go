// Command target is a compatibility-matrix target: it runs a fixed, deterministic mix of
// the 15 seed operations with aerospike-client-go and prints its ground truth as JSON
// (the shape of internal/workload.Truth). The v6, v7 and v8 targets differ only in the
// client import path.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	as "github.com/aerospike/aerospike-client-go/v6"
)

type count struct {
	Op         string  `json:"op"`
	Namespace  string  `json:"namespace"`
	Set        string  `json:"set"`
	ErrorType  string  `json:"error_type"`
	Count      int64   `json:"count"`
	SumSeconds float64 `json:"sum_seconds"`
}

type truth struct {
	Counts            []count `json:"counts"`
	TotalOps          int64   `json:"total_ops"`
	LatencySumSeconds float64 `json:"latency_sum_seconds"`
	P50Ms             float64 `json:"p50_ms"`
	P99Ms             float64 `json:"p99_ms"`
}

// classify is the seed's error_type rule in miniature (internal/outcome has the full one).
func classify(op string, err error) string {
	if err == nil {
		return ""
	}
	var ae *as.AerospikeError
	if !errors.As(err, &ae) {
		return "ResultCodeMinus1"
	}
	code := int(ae.ResultCode)
	if code == -16 { // MAX_RETRIES_EXCEEDED: classify the cause
		var cause *as.AerospikeError
		if inner := errors.Unwrap(ae); inner != nil && errors.As(inner, &cause) {
			code = int(cause.ResultCode)
		}
	}
	switch code {
	case 0:
		return ""
	case 2:
		if op == "exists" || op == "remove" {
			return ""
		}
		return "KeyNotFoundError"
	case 3:
		return "GenerationError"
	case 4:
		return "InvalidArgument"
	case 5:
		return "KeyExistsError"
	case 9:
		return "Timeout"
	case 27:
		return "FilteredOut"
	case -18, -19, -8, -11, -3:
		return "Connection"
	}
	if code < 0 {
		return fmt.Sprintf("ResultCodeMinus%d", -code)
	}
	return fmt.Sprintf("ResultCode%d", code)
}

func drain(rs *as.Recordset, err error) error {
	if err != nil {
		return err
	}
	var first error
	for res := range rs.Results() {
		if res.Err != nil && first == nil {
			first = res.Err
		}
	}
	return first
}

func main() {
	hosts := flag.String("hosts", "127.0.0.1:3000", "seed hosts, comma-separated host:port")
	n := flag.Int("count", 10, "times to run each operation")
	ns := flag.String("namespace", "test", "namespace")
	set := flag.String("set", "compat", "set")
	waitSignal := flag.Bool("wait-signal", false, "print 'workload: ready pid=N' on stderr and wait for SIGUSR1")
	flag.Parse()

	var hs []*as.Host
	for _, h := range strings.Split(*hosts, ",") {
		var name string
		var port int
		i := strings.LastIndex(h, ":")
		if i < 0 {
			fail(fmt.Errorf("bad host %q: want host:port", h))
		}
		name = h[:i]
		if _, err := fmt.Sscanf(h[i+1:], "%d", &port); err != nil {
			fail(fmt.Errorf("bad port in %q", h))
		}
		hs = append(hs, as.NewHost(name, port))
	}
	client, err := as.NewClientWithPolicyAndHost(as.NewClientPolicy(), hs...)
	if err != nil {
		fail(err)
	}
	defer client.Close()

	const keys = 20
	key := func(prefix string, i int) *as.Key {
		k, err := as.NewKey(*ns, *set, fmt.Sprintf("%s%d", prefix, i%keys))
		if err != nil {
			fail(err)
		}
		return k
	}
	for i := 0; i < keys; i++ {
		for _, p := range []string{"k", "v"} {
			if err := client.Put(nil, key(p, i), as.BinMap{"n": i, "s": "v", "grp": i % 5}); err != nil {
				fail(err)
			}
		}
	}

	if *waitSignal {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGUSR1)
		fmt.Fprintf(os.Stderr, "workload: ready pid=%d\n", os.Getpid())
		<-sig
		signal.Stop(sig)
	}

	type series struct {
		op, errorType string
	}
	counts := map[series]*count{}
	var latencies []time.Duration
	var total time.Duration
	record := func(op string, start time.Time, err error) {
		d := time.Since(start)
		s := series{op, classify(op, err)}
		c := counts[s]
		if c == nil {
			c = &count{Op: op, Namespace: *ns, Set: *set, ErrorType: s.errorType}
			counts[s] = c
		}
		c.Count++
		c.SumSeconds += d.Seconds()
		latencies = append(latencies, d)
		total += d
	}
	batch := func(prefix string, i int) []*as.Key {
		if i%2 == 0 {
			return []*as.Key{key(prefix, i)} // 1-key batches take the client's single-command path
		}
		return []*as.Key{key(prefix, i), key(prefix, i+1), key(prefix, i+2)}
	}
	for i := 0; i < *n; i++ {
		k := key("k", i)
		var t time.Time
		var err error

		t = time.Now()
		err = client.Put(nil, k, as.BinMap{"n": i % keys, "s": "v", "grp": i % 5})
		record("put", t, err)
		t = time.Now()
		_, err = client.Get(nil, k)
		record("get", t, err)
		t = time.Now()
		_, err = client.Get(nil, k, "s")
		record("select", t, err)
		t = time.Now()
		_, err = client.Exists(nil, k)
		record("exists", t, err)
		t = time.Now()
		_, err = client.Delete(nil, key("v", i))
		record("remove", t, err)
		t = time.Now()
		err = client.Touch(nil, k)
		record("touch", t, err)
		t = time.Now()
		err = client.Append(nil, k, as.BinMap{"s": "a"})
		record("append", t, err)
		t = time.Now()
		err = client.Prepend(nil, k, as.BinMap{"s": "p"})
		record("prepend", t, err)
		t = time.Now()
		err = client.Add(nil, k, as.BinMap{"n": 1})
		record("increment", t, err)
		t = time.Now()
		_, err = client.Operate(nil, k, as.AddOp(as.NewBin("n", 1)), as.GetBinOp("n"))
		record("operate", t, err)
		bk := batch("k", i)
		t = time.Now()
		_, err = client.BatchGet(nil, bk)
		record("batch_read", t, err)
		complexRecs := make([]*as.BatchRead, 0, len(bk))
		for _, k2 := range bk {
			complexRecs = append(complexRecs, as.NewBatchRead(k2, []string{"n"}))
		}
		t = time.Now()
		err = client.BatchGetComplex(nil, complexRecs)
		record("batch_read", t, err)
		recs := []as.BatchRecordIfc{as.NewBatchWrite(nil, bk[0], as.PutOp(as.NewBin("s", "b")))}
		for _, k2 := range bk[1:] {
			recs = append(recs, as.NewBatchRead(k2, []string{"n"})) // v6: no per-record policy
		}
		t = time.Now()
		err = client.BatchOperate(nil, recs)
		record("batch_operate", t, err)
		t = time.Now()
		_, err = client.BatchDelete(nil, nil, batch("v", i+1))
		record("batch_remove", t, err)
		t = time.Now()
		rs, serr := client.ScanAll(nil, *ns, *set)
		err = drain(rs, serr)
		record("scan", t, err)
		stmt := as.NewStatement(*ns, *set)
		if ferr := stmt.SetFilter(as.NewEqualFilter("grp", i%5)); ferr != nil {
			fail(ferr)
		}
		t = time.Now()
		rs, qerr := client.Query(nil, stmt)
		err = drain(rs, qerr)
		record("query", t, err)
	}

	out := truth{Counts: []count{}}
	for _, c := range counts {
		out.Counts = append(out.Counts, *c)
	}
	sort.Slice(out.Counts, func(i, j int) bool {
		if out.Counts[i].Op != out.Counts[j].Op {
			return out.Counts[i].Op < out.Counts[j].Op
		}
		return out.Counts[i].ErrorType < out.Counts[j].ErrorType
	})
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	out.TotalOps = int64(len(latencies))
	out.LatencySumSeconds = total.Seconds()
	if len(latencies) > 0 {
		out.P50Ms = float64(latencies[len(latencies)*50/100]) / 1e6
		out.P99Ms = float64(latencies[len(latencies)*99/100]) / 1e6
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "target:", err)
	os.Exit(1)
}
