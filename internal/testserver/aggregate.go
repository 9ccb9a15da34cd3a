package testserver

import (
	_ "embed"
	"encoding/binary"
)

// AggregateUDFModule is the filename under which to register AggregateUDFSource (with
// RegisterUDF) before running its stream functions with QueryAggregate, package name
// "asobserve_aggregate". The client runs the final reduce itself, so it needs the same
// file in the directory given to SetLuaPath.
const AggregateUDFModule = "asobserve_aggregate.lua"

// AggregateUDFSource is the Lua source of the aggregation module. The server does not
// interpret it: streamAggregations implements each of its functions in Go.
//
//go:embed asobserve_aggregate.lua
var AggregateUDFSource string

// streamAggregation is the server half of a stream function: it takes the matching
// records one by one and yields the node's partial result, if any record contributed.
type streamAggregation interface {
	add(rec *record)
	result() (int64, bool)
}

// newStreamAggregation returns the aggregation function fn of the module, or a failure
// message as a server's Lua runtime would report it.
func newStreamAggregation(modules *udfModules, pkg, fn string, args []any) (streamAggregation, string) {
	module := pkg + ".lua"
	if !modules.registered(module) {
		return nil, "udf module " + module + " is not registered"
	}
	if module != AggregateUDFModule {
		return nil, "module " + module + ": this test server runs only the stream functions of " + AggregateUDFModule
	}
	switch fn {
	case "count":
		return &countAggregation{}, ""
	case "sum":
		bin, _ := firstArg(args).(string)
		if bin == "" {
			return nil, "sum(bin) expects a bin name"
		}
		return &sumAggregation{bin: bin}, ""
	default:
		return nil, "function not found: " + module + ":" + fn
	}
}

func firstArg(args []any) any {
	if len(args) == 0 {
		return nil
	}
	return args[0]
}

type countAggregation struct{ n int64 }

func (a *countAggregation) add(*record)           { a.n++ }
func (a *countAggregation) result() (int64, bool) { return a.n, a.n > 0 }

type sumAggregation struct {
	bin   string
	total int64
	seen  bool
}

func (a *sumAggregation) add(rec *record) {
	b := rec.bin([]byte(a.bin))
	if b == nil || b.ptype != ptInteger || len(b.value) != 8 {
		return
	}
	a.total += int64(binary.BigEndian.Uint64(b.value))
	a.seen = true
}

func (a *sumAggregation) result() (int64, bool) { return a.total, a.seen }

// execAggregate runs a QueryAggregate's server stages over the node's share and sends
// the partial result as one record with a SUCCESS bin, or a FAILURE bin when the
// function cannot run, then LAST.
func (st *connState) execAggregate(m *message, sr *scanRequest) error {
	w := &st.w
	start := w.beginFrame()
	args, err := decodeArgs(m.field(fieldUDFArgs))
	var agg streamAggregation
	failure := ""
	if err != nil {
		failure = "bad arglist: " + err.Error()
	} else {
		agg, failure = newStreamAggregation(&st.n.c.modules, string(m.field(fieldUDFPackage)), string(m.field(fieldUDFFunc)), args)
	}
	if failure != "" {
		w.header(0, rcOK, 0, 0, 0, 0, 1)
		w.op(opRead, ptString, "FAILURE", []byte(failure))
	} else {
		s := st.n.c.store
		now := nowVoid()
		for _, pid := range sr.pids {
			p := &s.parts[pid]
			p.mu.Lock()
			for k, rec := range p.recs {
				if sr.matches(k, rec, now) {
					agg.add(rec)
				}
			}
			p.mu.Unlock()
		}
		if v, ok := agg.result(); ok {
			w.header(0, rcOK, 0, 0, 0, 0, 1)
			ptype, val := particle(v)
			w.op(opRead, ptype, "SUCCESS", val)
		}
	}
	w.header(info3Last, rcOK, 0, 0, 0, 0, 0)
	w.endFrame(start, typeMsg)
	return st.reply(nil)
}
