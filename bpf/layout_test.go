//go:build linux

package bpf

import (
	"reflect"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// The Go side of every record and map value user space shares, by C struct name.
var sharedStructs = map[string]any{
	"event_op":    AsobserveEventOp{},
	"event_stage": AsobserveEventStage{},
	"span_ctx":    AsobserveSpanCtx{},
	"row":         AsobserveRow{},
	"target":      AsobserveTarget{},
	"nest_ranges": AsobserveNestRanges{},
	"pid_slot":    AsobservePidSlot{},
}

// Every field of every shared struct sits at the same offset with the same size in the
// compiled programs (their BTF) as in the generated Go declaration, for both targets.
func TestSharedStructsMatchBTF(t *testing.T) {
	for _, obj := range []string{"asobserve_x86_bpfel.o", "asobserve_arm64_bpfel.o"} {
		spec, err := ebpf.LoadCollectionSpec(obj)
		if err != nil {
			t.Fatal(err)
		}
		for name, goValue := range sharedStructs {
			var st *btf.Struct
			if err := spec.Types.TypeByName(name, &st); err != nil {
				t.Fatalf("%s: struct %s: %v", obj, name, err)
			}
			compareLayout(t, obj, st, reflect.TypeOf(goValue))
		}
	}
}

func compareLayout(t *testing.T, obj string, st *btf.Struct, goType reflect.Type) {
	t.Helper()
	if uintptr(st.Size) != goType.Size() {
		t.Errorf("%s: struct %s is %d bytes, %s is %d", obj, st.Name, st.Size, goType.Name(), goType.Size())
	}
	matched := map[string]bool{}
	for _, m := range st.Members {
		goName := goFieldName(m.Name)
		f, ok := goType.FieldByName(goName)
		if !ok {
			t.Errorf("%s: %s.%s has no Go field %s.%s", obj, st.Name, m.Name, goType.Name(), goName)
			continue
		}
		matched[goName] = true
		if m.Offset.Bytes() != uint32(f.Offset) {
			t.Errorf("%s: %s.%s is at byte %d, %s.%s at %d", obj, st.Name, m.Name, m.Offset.Bytes(), goType.Name(), goName, f.Offset)
		}
		size, err := btf.Sizeof(m.Type)
		if err != nil {
			t.Fatalf("%s: %s.%s: %v", obj, st.Name, m.Name, err)
		}
		if uintptr(size) != f.Type.Size() {
			t.Errorf("%s: %s.%s is %d bytes, %s.%s %d", obj, st.Name, m.Name, size, goType.Name(), goName, f.Type.Size())
		}
	}
	for i := range goType.NumField() {
		if f := goType.Field(i); f.Name != "_" && !matched[f.Name] {
			t.Errorf("%s: %s.%s has no member in struct %s", obj, goType.Name(), f.Name, st.Name)
		}
	}
}

// goFieldName is the name bpf2go gives a C member: each _-separated word capitalised.
func goFieldName(member string) string {
	words := strings.Split(member, "_")
	for i, w := range words {
		if w != "" {
			words[i] = strings.ToUpper(w[:1]) + w[1:]
		}
	}
	return strings.Join(words, "")
}
