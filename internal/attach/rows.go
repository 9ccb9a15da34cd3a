//go:build linux

package attach

import (
	"fmt"

	"github.com/asobserve/asobserve/bpf"
	"github.com/asobserve/asobserve/internal/inspect"
	"github.com/asobserve/asobserve/internal/probes"
)

type offsets map[probes.Field]int32

// resolveOffsets reads the struct field offsets every row may need.
func resolveOffsets(bin *inspect.Binary) (offsets, error) {
	out := offsets{}
	for _, f := range []probes.Field{probes.KeyNamespace, probes.KeySet, probes.StmtNamespace, probes.StmtSet,
		probes.BatchRecordKey, probes.ErrWrapped, probes.ErrResultCode} {
		off, err := bin.FieldOffset(f.Struct, f.Name)
		if err != nil {
			return nil, err
		}
		out[f] = int32(off)
	}
	return out, nil
}

// rowConfig turns a probe-table row into the BPF row for one binary.
func rowConfig(r probes.Row, bin *inspect.Binary, offs offsets) (bpf.AsobserveRow, error) {
	cfg := bpf.AsobserveRow{
		Kind: uint8(r.Kind), Loc: uint8(r.Loc), LocWord: r.LocWord, ErrWord: r.ErrWord,
		AltWord: r.AltWord, PtrWord: r.PtrWord, Flags: r.Flags,
		OffErrWrapped: offs[probes.ErrWrapped], OffErrCode: offs[probes.ErrResultCode],
		OffKey: offs[probes.BatchRecordKey],
	}
	if r.Stage != "" {
		cfg.Stage = probes.StageID[r.Stage]
	}
	switch r.Loc {
	case probes.LocStatement:
		cfg.OffNs, cfg.OffSet = offs[probes.StmtNamespace], offs[probes.StmtSet]
	default:
		cfg.OffNs, cfg.OffSet = offs[probes.KeyNamespace], offs[probes.KeySet]
	}
	if r.Flags&probes.FlagNode != 0 {
		if off, err := bin.FieldOffset(probes.ConnNode.Struct, probes.ConnNode.Name); err == nil {
			cfg.OffNode = int32(off)
		} else {
			cfg.Flags &^= probes.FlagNode // no server.address for this build, nothing else lost
		}
	}
	if r.Kind == probes.SpanStart {
		cfg.OffSpanCtx = offs[probes.SpanContext]
	}
	if r.Kind == probes.Link {
		off, err := bin.FieldOffset(r.Corr.Struct, r.Corr.Name)
		if err != nil {
			return cfg, fmt.Errorf("probe %s: %w", r.Symbol, err)
		}
		cfg.OffCorr = int32(off)
	}
	return cfg, nil
}

// nodeOffsets locates a node's host name and port for server.address; ok is false when
// the binary does not tell.
func nodeOffsets(bin *inspect.Binary) (o hostOffsets, ok bool) {
	for _, f := range []struct {
		field probes.Field
		dst   *int64
	}{{probes.NodeHost, &o.nodeHost}, {probes.HostName, &o.hostName}, {probes.HostPort, &o.hostPort}} {
		off, err := bin.FieldOffset(f.field.Struct, f.field.Name)
		if err != nil {
			return o, false
		}
		*f.dst = off
	}
	return o, true
}

// appSpanOffset locates recordingSpan.spanContext and checks that a SpanContext starts with
// traceID, spanID and traceFlags where the BPF program reads them. Only DWARF tells, so
// stripped binaries get no parents.
func appSpanOffset(bin *inspect.Binary) (int32, bool) {
	off, err := bin.QualifiedFieldOffset(probes.SpanContext.Struct, probes.SpanContext.Name)
	if err != nil {
		return 0, false
	}
	for field, want := range map[string]int64{"traceID": 0, "spanID": 16, "traceFlags": 24} {
		got, err := bin.QualifiedFieldOffset("go.opentelemetry.io/otel/trace.SpanContext", field)
		if err != nil || got != want {
			return 0, false
		}
	}
	return int32(off), true
}
