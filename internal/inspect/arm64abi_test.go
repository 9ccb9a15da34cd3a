package inspect

import (
	"fmt"
	"testing"

	"golang.org/x/arch/arm64/arm64asm"
)

// The arm64 argument-register mapping, checked against real arm64 code of the client:
// the register of word i is what the compiler treats as word i.
func TestARM64ArgumentRegisters(t *testing.T) {
	abi := ABIFor("arm64")
	reg := func(r arm64asm.Arg) string { return fmt.Sprint(r) } // X0, X1, ...
	word := func(i int) string { return "X" + abi.IntArgs[i][1:] }

	// (*Key).Namespace: receiver in word 0; the string result in words 0 and 1.
	_, code := loadFixture(t, "arm64_key_namespace")
	in, err := arm64asm.Decode(code[:4])
	if err != nil {
		t.Fatal(err)
	}
	if in.Op != arm64asm.LDP || reg(in.Args[0]) != word(0) || reg(in.Args[1]) != word(1) || fmt.Sprint(in.Args[2]) != "["+word(0)+"]" {
		t.Fatalf("(*Key).Namespace starts %v, want LDP [%s] -> %s, %s", in, word(0), word(0), word(1))
	}

	// (*Client).Put(policy, key, binMap): the prologue spills its argument words to
	// consecutive 8-byte slots, slot = base + 8*word. Word 2 is the key the probe reads.
	_, code = loadFixture(t, "arm64_client_put")
	spills := map[string]int64{}
	for off := 0; off+4 <= len(code) && off < 64; off += 4 {
		in, err := arm64asm.Decode(code[off : off+4])
		if err != nil || in.Op != arm64asm.MOV && in.Op != arm64asm.STR {
			continue
		}
		if m, ok := in.Args[1].(arm64asm.MemImmediate); ok && fmt.Sprint(m.Base) == "SP" {
			spills[reg(in.Args[0])] = spOffset(m)
		}
	}
	base, ok := spills[word(0)]
	if !ok {
		t.Fatalf("no spill of the receiver (%s) in the prologue: %v", word(0), spills)
	}
	for _, w := range []int{2, 3} {
		got, ok := spills[word(w)]
		if !ok || got != base+8*int64(w) {
			t.Errorf("word %d (%s) spilled at %d, want %d (spills %v)", w, word(w), got, base+8*int64(w), spills)
		}
	}
	if abi.G != "R28" {
		t.Errorf("arm64 goroutine register %s, want R28 (the prologue reads the stack bound from 16(R28))", abi.G)
	}
}

func spOffset(m arm64asm.MemImmediate) int64 {
	var off int64
	fmt.Sscanf(fmt.Sprint(m), "[SP,#%d]", &off)
	return off
}
