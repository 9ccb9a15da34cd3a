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
	if r.Kind == probes.Link {
		off, err := bin.FieldOffset(r.Corr.Struct, r.Corr.Name)
		if err != nil {
			return cfg, fmt.Errorf("probe %s: %w", r.Symbol, err)
		}
		cfg.OffCorr = int32(off)
	}
	return cfg, nil
}
