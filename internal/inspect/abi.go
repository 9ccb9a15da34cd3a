package inspect

// ABI describes Go's register-based calling convention (Go >= 1.17) for the
// binary's architecture. Register names use Go assembler spelling (amd64 RAX..R11 are
// pt_regs ax, bx, cx, di, si, r8..r11; arm64 Rn is pt_regs regs[n]).
type ABI struct {
	// IntArgs are the integer argument (and result) registers by word
	// index: the receiver is word 0, a string takes 2 words, a slice 3 and
	// an interface 2.
	IntArgs []string
	// G is the register holding the current goroutine pointer.
	G string
}

var (
	abiAMD64 = ABI{IntArgs: []string{"RAX", "RBX", "RCX", "RDI", "RSI", "R8", "R9", "R10", "R11"}, G: "R14"}
	abiARM64 = ABI{IntArgs: []string{"R0", "R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "R9", "R10", "R11", "R12", "R13", "R14", "R15"}, G: "R28"}
)

// ABI returns the register ABI for the binary's architecture.
func (b *Binary) ABI() ABI { return ABIFor(b.Arch) }

// ABIFor returns the register ABI for "amd64" or "arm64" (zero value otherwise).
func ABIFor(arch string) ABI {
	switch arch {
	case "amd64":
		return abiAMD64
	case "arm64":
		return abiARM64
	}
	return ABI{}
}
