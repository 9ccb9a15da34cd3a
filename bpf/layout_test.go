//go:build linux

package bpf

import (
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/asobserve/asobserve/internal/decoder"
)

// The decoder reads records by offset: the sizes it expects must be the C structs' sizes.
func TestRecordLayoutsMatchTheDecoder(t *testing.T) {
	spec, err := LoadAsobserve()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{"event_op": decoder.OpRecordSize, "event_stage": decoder.StageRecordSize} {
		var st *btf.Struct
		if err := spec.Types.TypeByName(name, &st); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if int(st.Size) != want {
			t.Errorf("struct %s is %d bytes, the decoder reads %d", name, st.Size, want)
		}
	}
}
