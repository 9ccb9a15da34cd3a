package inspect

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/arch/arm64/arm64asm"
	"golang.org/x/arch/x86/x86asm"
	"golang.org/x/mod/semver"
)

// A stripped build of a client version that the offsets table does not hold can still be
// observed exactly when its own machine code tells the layout. The client has methods
// whose whole body is `return recv.field`; the smallest displacement such a method loads
// from its receiver register is the field's offset. The fields read that way must match a
// tabulated neighbour version of the same major; the fields no method reveals are taken
// from the table only where it settles them (see settled), and are unknown otherwise: the
// probes that need an unknown field are not attached, and a build whose code settles
// nothing is refused. A guessed layout would count under wrong names.

// fieldAccessor is a client method that returns one field of its receiver, in every
// supported version (TestFieldAccessorsReturnTheirField checks each version's source).
type fieldAccessor struct {
	Method string // relative to the client package
	Field  FieldRef
	// Required: every build links it, as it implements the client's Error interface, so
	// the layout is always checked against its field. The BatchRecordIfc one is linked
	// wherever batches are; the others where the client's ClientIfc keeps them (v6.14.0
	// to v7), and the linker drops them elsewhere.
	Required bool
}

var fieldAccessors = []fieldAccessor{
	{"(*AerospikeError).resultCode", FieldRef{"AerospikeError", "ResultCode"}, true},
	{"(*AerospikeError).Unwrap", FieldRef{"AerospikeError", "wrapped"}, true},
	{"(*BatchRecord).key", FieldRef{"BatchRecord", "Key"}, false},
	{"(*Key).Namespace", FieldRef{"Key", "namespace"}, false},
	{"(*Key).SetName", FieldRef{"Key", "setName"}, false},
	{"(*Node).GetHost", FieldRef{"Node", "host"}, false},
}

// derivedLayout is the layout of a stripped build that the table does not hold.
type derivedLayout struct {
	from    string // the tabulated version its remaining fields come from
	offsets map[FieldRef]int64
	// unknown lists the fields neither its code nor the table settles, with the reason.
	unknown map[FieldRef]string
}

// deriveLayout reads the layout of the binary's client structs from its machine code and
// the tabulated versions of its major. It is an error when the code contradicts every
// neighbour version, or reveals too little to tell.
func (b *Binary) deriveLayout() (*derivedLayout, error) {
	derived := map[FieldRef]int64{}
	for _, a := range fieldAccessors {
		off, err := b.accessorOffset(a.Method)
		if err != nil && a.Required {
			return nil, fmt.Errorf("%v: it cannot show where %s is", err, a.Field)
		}
		if err == nil {
			derived[a.Field] = off
		}
	}
	major := semver.Major(b.ClientVersion)
	var same []string
	for _, v := range TableVersions(b.Arch) {
		if semver.Major(v) == major {
			same = append(same, v)
		}
	}
	if len(same) == 0 {
		return nil, fmt.Errorf("the offsets table holds no %s version to compare its layout with", major)
	}
	near := neighbours(same, b.ClientVersion)
	var mismatches []string
	for _, v := range near {
		table := offsetsTable[tableKey{v, b.Arch}]
		if diff := differences(derived, table); diff != "" {
			mismatches = append(mismatches, v+": "+diff)
			continue
		}
		l := &derivedLayout{from: v, offsets: map[FieldRef]int64{}, unknown: map[FieldRef]string{}}
		for _, ref := range RequiredFields {
			if off, ok := derived[ref]; ok {
				l.offsets[ref] = off
				continue
			}
			if off, ok := settled(near, TableVersions(b.Arch), b.Arch, ref); ok {
				l.offsets[ref] = off
				continue
			}
			l.unknown[ref] = "its code does not show it, and the tabulated versions do not settle it"
		}
		return l, nil
	}
	return nil, fmt.Errorf("its layout matches no neighbouring tabulated version (%s)", strings.Join(mismatches, "; "))
}

// settled returns the offset of a field the binary's code does not show, when the table
// settles it: the tabulated versions just below and just above agree on it (a layout both
// neighbours share is the one between them), or, for a version beyond the tabulated ones,
// every tabulated version of every major agrees (the field never moved). A field that
// moved in the newest tabulated release, as baseCommand.node did in v8.8.0, stays unknown.
func settled(near, all []string, arch string, ref FieldRef) (int64, bool) {
	if len(near) == 2 {
		return uniform(near, arch, ref)
	}
	return uniform(all, arch, ref)
}

// neighbours are the closest tabulated versions below and above version, nearest first.
func neighbours(sorted []string, version string) []string {
	var below, above string
	for _, v := range sorted {
		switch c := semver.Compare(v, version); {
		case c < 0:
			below = v
		case c > 0 && above == "":
			above = v
		}
	}
	var out []string
	for _, v := range []string{below, above} {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// differences describes where derived disagrees with a tabulated layout; "" if nowhere.
func differences(derived, table map[FieldRef]int64) string {
	var out []string
	for _, a := range fieldAccessors {
		if off, ok := derived[a.Field]; ok && table[a.Field] != off {
			out = append(out, fmt.Sprintf("%s at %d, not %d", a.Field, off, table[a.Field]))
		}
	}
	return strings.Join(out, ", ")
}

// uniform returns the offset of ref (Missing included) when every tabulated version given
// agrees on it.
func uniform(versions []string, arch string, ref FieldRef) (int64, bool) {
	off, ok := offsetsTable[tableKey{versions[0], arch}][ref]
	for _, v := range versions[1:] {
		if o, has := offsetsTable[tableKey{v, arch}][ref]; !has || o != off {
			return 0, false
		}
	}
	return off, ok
}

// accessorOffset is the field offset that an accessor method of the client reads.
func (b *Binary) accessorOffset(method string) (int64, error) {
	fn, err := b.Func(b.ClientSymbol(method))
	if err != nil {
		return 0, fmt.Errorf("the binary has no %s", method)
	}
	code := make([]byte, fn.Size)
	if _, err := b.file.ReadAt(code, int64(fn.Offset)); err != nil {
		return 0, err
	}
	off, ok := receiverLoad(b.Arch, code)
	if !ok {
		return 0, fmt.Errorf("%s is not one field load", method)
	}
	return off, nil
}

// receiverLoad returns the smallest displacement that code loads from the first argument
// register (the receiver) before it overwrites it, when code is a leaf that ends in RET.
// A string or interface field is loaded as two words: the smaller is the field's.
func receiverLoad(arch string, code []byte) (int64, bool) {
	switch arch {
	case "amd64":
		return receiverLoadAMD64(code)
	case "arm64":
		return receiverLoadARM64(code)
	}
	return 0, false
}

func receiverLoadAMD64(code []byte) (int64, bool) {
	best, found := int64(0), false
	for pc := 0; pc < len(code); {
		if strings.HasPrefix(string(code[pc:]), string(endbr64)) {
			pc += len(endbr64)
			continue
		}
		inst, err := x86asm.Decode(code[pc:], 64)
		if err != nil {
			return 0, false
		}
		pc += inst.Len
		switch inst.Op {
		case x86asm.RET:
			return best, found
		case x86asm.CALL, x86asm.JMP:
			return 0, false
		case x86asm.TEST, x86asm.CMP, x86asm.NOP:
			continue // a nil check reads the receiver without loading a field
		}
		for _, arg := range inst.Args[1:] {
			if m, ok := arg.(x86asm.Mem); ok && m.Base == x86asm.RAX && m.Index == 0 && m.Segment == 0 {
				if !found || m.Disp < best {
					best, found = m.Disp, true
				}
			}
		}
		if r, ok := inst.Args[0].(x86asm.Reg); ok && (r == x86asm.RAX || r == x86asm.EAX) {
			return best, found && followsRET(code[pc:])
		}
	}
	return 0, false
}

// followsRET reports whether what is left of an accessor after its receiver is consumed
// only moves registers and returns.
func followsRET(code []byte) bool {
	for pc := 0; pc < len(code); {
		inst, err := x86asm.Decode(code[pc:], 64)
		if err != nil {
			return false
		}
		pc += inst.Len
		switch inst.Op {
		case x86asm.RET:
			return true
		case x86asm.MOV, x86asm.XOR, x86asm.NOP:
			if _, mem := inst.Args[1].(x86asm.Mem); mem {
				return false
			}
		default:
			return false
		}
	}
	return false
}

func receiverLoadARM64(code []byte) (int64, bool) {
	best, found := int64(0), false
	for pc := 0; pc+4 <= len(code); pc += 4 {
		inst, err := arm64asm.Decode(code[pc:])
		if err != nil {
			return 0, false
		}
		switch inst.Op {
		case arm64asm.RET:
			return best, found
		case arm64asm.BL, arm64asm.BLR, arm64asm.B, arm64asm.BR:
			return 0, false
		case arm64asm.LDRB:
			if inst.Args[0] == arm64asm.W27 {
				continue // a nil check: a byte loaded into the assembler's scratch register
			}
			fallthrough
		case arm64asm.LDR, arm64asm.LDP, arm64asm.LDRH, arm64asm.LDRSW:
			for _, arg := range inst.Args {
				if off, ok := x0Offset(arg); ok && (!found || off < best) {
					best, found = off, true
				}
			}
		case arm64asm.MOV, arm64asm.ORR:
		default:
			return 0, false
		}
		for _, arg := range inst.Args[:2] {
			if r, ok := arg.(arm64asm.Reg); ok && (r == arm64asm.X0 || r == arm64asm.W0) {
				return best, found && retAfterMoves(code[pc+4:])
			}
		}
	}
	return 0, false
}

// x0Offset is the immediate offset of a [X0,#n] operand.
func x0Offset(arg arm64asm.Arg) (int64, bool) {
	m, ok := arg.(arm64asm.MemImmediate)
	if !ok || m.Mode != arm64asm.AddrOffset || m.Base != arm64asm.RegSP(arm64asm.X0) {
		return 0, false
	}
	s := strings.TrimSuffix(strings.TrimPrefix(m.String(), "[X0"), "]")
	if s == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(strings.TrimPrefix(s, ",#"), 10, 64)
	return n, err == nil
}

func retAfterMoves(code []byte) bool {
	for pc := 0; pc+4 <= len(code); pc += 4 {
		inst, err := arm64asm.Decode(code[pc:])
		if err != nil {
			return false
		}
		switch inst.Op {
		case arm64asm.RET:
			return true
		case arm64asm.MOV, arm64asm.ORR:
		default:
			return false
		}
	}
	return false
}
