//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/asobserve/asobserve/bpf"
	"github.com/asobserve/asobserve/internal/decoder"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/outcome"
	"github.com/asobserve/asobserve/internal/semconv"
)

// opRecord builds a ring-buffer record from the generated declaration of struct event_op,
// serialised little endian: the layout the programs write, whatever the decoder assumes.
func opRecord(row uint16, ns, set string, failed bool, code int32, start, end uint64) []byte {
	rec := bpf.AsobserveEventOp{Type: uint8(bpf.AsobserveEventTypeEVENT_OP), NsLen: uint8(len(ns)), SetLen: uint8(len(set)),
		Tgid: 4242, Row: row, Code: code, Cause: code, OpId: 99, Start: start, End: end}
	if failed {
		rec.Flags = uint8(bpf.AsobserveEventFlagsEVENT_FAILED)
	}
	for i := range len(ns) {
		rec.Ns[i] = int8(ns[i])
	}
	for i := range len(set) {
		rec.Set[i] = int8(set[i])
	}
	b, err := binary.Append(nil, binary.LittleEndian, rec)
	if err != nil {
		panic(err) // a fixed-size struct always encodes
	}
	return b
}

// decodeRecordBench runs the agent's hot path: decode a record, map its row to an
// operation, classify the outcome and observe it in the recorder (cached label children).
func decodeRecordBench() testing.BenchmarkResult {
	var recs [][]byte
	for i := 0; i < 64; i++ {
		code := int32(0)
		if i%8 == 7 {
			code = 2 // KEY_NOT_FOUND_ERROR
		}
		recs = append(recs, opRecord(uint16(i%len(semconv.Operations)), "test", fmt.Sprintf("set%d", i%4), code != 0, code,
			1_000_000, 1_000_000+uint64(50_000+i*1000)))
	}
	return testing.Benchmark(func(b *testing.B) {
		rec := metrics.New(metrics.Options{})
		tg := &observe.Target{Identity: &observe.Identity{Service: "bench"}}
		dec := decoder.New()
		var ev decoder.OpEvent
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := dec.DecodeOp(recs[i%len(recs)], &ev); err != nil {
				b.Fatal(err)
			}
			op := semconv.Operations[int(ev.Row)%len(semconv.Operations)]
			et := outcome.ErrorType(op, ev.Failed, int(ev.Cause))
			rec.Op(tg, observe.Op{Name: op, Namespace: ev.Namespace, Set: ev.Set, ErrorType: et,
				Start: int64(ev.Start), End: int64(ev.End)})
		}
	})
}

// encodeBench times one text exposition of a recorder holding n operation series.
func encodeBench(n int) (testing.BenchmarkResult, int) {
	rec := metrics.New(metrics.Options{CollectionCap: n + 1})
	tg := &observe.Target{Identity: &observe.Identity{Service: "bench"}}
	for i := 0; i < n; i++ {
		op := semconv.Operations[i%len(semconv.Operations)]
		rec.Op(tg, observe.Op{Name: op, Namespace: "test", Set: fmt.Sprintf("set%d", i/len(semconv.Operations)),
			End: int64(time.Millisecond)})
	}
	var buf bytes.Buffer
	_ = rec.Encode(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	size := buf.Len()
	return testing.Benchmark(func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := rec.Encode(io.Discard, expfmt.NewFormat(expfmt.TypeTextPlain)); err != nil {
				b.Fatal(err)
			}
		}
	}), size
}

// goBench is one result line of `go test -bench`.
type goBench struct {
	Name    string
	NsPerOp float64
	Extra   map[string]float64 // custom b.ReportMetric units
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+)\s+\d+\s+(.*)$`)

// runGoBench runs `go test -run ^$ -bench pattern` in pkg and parses its results. A
// package or benchmark that does not exist yields (nil, reason).
func runGoBench(root, pkg, pattern string, benchtime string) ([]goBench, string) {
	if _, err := os.Stat(root + "/" + pkg); err != nil {
		return nil, pkg + " does not exist in this tree"
	}
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", pattern, "-benchtime", benchtime, "-count", "1", "./"+pkg)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	var res []goBench
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		g := goBench{Name: m[1], Extra: map[string]float64{}}
		f := regexp.MustCompile(`\s+`).Split(m[2], -1)
		for i := 0; i+1 < len(f); i += 2 {
			v, perr := strconv.ParseFloat(f[i], 64)
			if perr != nil {
				continue
			}
			if f[i+1] == "ns/op" {
				g.NsPerOp = v
			} else {
				g.Extra[f[i+1]] = v
			}
		}
		res = append(res, g)
	}
	if err != nil && len(res) == 0 {
		tail := string(out)
		if len(tail) > 300 {
			tail = tail[len(tail)-300:]
		}
		return nil, fmt.Sprintf("go test -bench %s ./%s failed: %v: %s", pattern, pkg, err, tail)
	}
	if len(res) == 0 {
		return nil, fmt.Sprintf("no benchmark matching %s in ./%s", pattern, pkg)
	}
	return res, ""
}
