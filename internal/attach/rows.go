//go:build linux

package attach

import (
	"fmt"

	"github.com/asobserve/asobserve/bpf"
	"github.com/asobserve/asobserve/internal/inspect"
	"github.com/asobserve/asobserve/internal/probes"
)

// fieldOffsets resolves, once per binary, the struct fields the table's rows read.
type fieldOffsets struct {
	bin  *inspect.Binary
	seen map[probes.Field]int32
}

func newFieldOffsets(bin *inspect.Binary) *fieldOffsets {
	return &fieldOffsets{bin: bin, seen: map[probes.Field]int32{}}
}

func (o *fieldOffsets) get(f probes.Field) (int32, error) {
	if off, ok := o.seen[f]; ok {
		return off, nil
	}
	off, err := o.bin.FieldOffset(f.Struct, f.Name)
	if err != nil {
		return 0, err
	}
	o.seen[f] = int32(off)
	return int32(off), nil
}

// rowConfig turns a probe into the BPF row for one binary. spanCtx is the offset of the
// SDK's recordingSpan.spanContext, for the rows that follow the target's own spans.
func rowConfig(p probes.Probe, offs *fieldOffsets, spanCtx int32) (bpf.AsobserveRow, error) {
	cfg := bpf.AsobserveRow{
		Kind: uint8(p.Kind), Loc: uint8(p.Names), LocWord: p.LocWord, ErrWord: p.ErrWord,
		AltWord: p.AltWord, PtrWord: p.PtrWord, Flags: uint8(p.Flags),
	}
	if p.IsStage() {
		cfg.Stage = uint8(p.Stage)
	}
	if p.NestedCallee() {
		cfg.Flags |= uint8(probes.FlagNestedCallee)
	}
	if p.Remaining != (probes.Field{}) {
		cfg.Flags |= uint8(probes.FlagLastWorker)
	}
	slots := map[probes.Field]*int32{
		probes.KeyNamespace: &cfg.OffNs, probes.KeySet: &cfg.OffSet,
		probes.StmtNamespace: &cfg.OffNs, probes.StmtSet: &cfg.OffSet,
		probes.BatchRecordKey: &cfg.OffKey, probes.ErrWrapped: &cfg.OffErrWrapped,
		probes.ErrResultCode: &cfg.OffErrCode, probes.ConnNode: &cfg.OffNode,
	}
	if p.Kind == probes.KindLink {
		slots[p.Corr] = &cfg.OffCorr
	}
	if p.Remaining != (probes.Field{}) {
		slots[p.Remaining] = &cfg.OffRemaining
	}
	for _, f := range p.Fields() {
		if f == probes.SpanContext {
			cfg.OffSpanCtx = spanCtx
			continue
		}
		off, err := offs.get(f)
		if err != nil && f == probes.ConnNode {
			cfg.Flags &^= uint8(probes.FlagNode) // no server.address for this build, nothing else lost
			continue
		}
		if err != nil {
			return cfg, fmt.Errorf("probe %s: %w", p.Symbol, err)
		}
		*slots[f] = off
	}
	return cfg, nil
}

// nodeOffsets locates a node's host name and port for server.address; ok is false when
// the binary does not tell.
func nodeOffsets(offs *fieldOffsets) (o hostOffsets, ok bool) {
	dst := []*int64{&o.nodeHost, &o.hostName, &o.hostPort}
	for i, f := range probes.ServerAddressFields {
		off, err := offs.get(f)
		if err != nil {
			return o, false
		}
		*dst[i] = int64(off)
	}
	return o, true
}

// appSpanOffset locates recordingSpan.spanContext and checks that a SpanContext lays out
// its ids and flags where the BPF program reads them. Only DWARF tells, so stripped
// binaries get no parents.
func appSpanOffset(bin *inspect.Binary) (int32, bool) {
	off, err := bin.QualifiedFieldOffset(probes.SpanContext.Struct, probes.SpanContext.Name)
	if err != nil {
		return 0, false
	}
	for f, want := range probes.SpanContextLayout {
		got, err := bin.QualifiedFieldOffset(f.Struct, f.Name)
		if err != nil || got != want {
			return 0, false
		}
	}
	return int32(off), true
}
