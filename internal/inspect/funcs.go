package inspect

import (
	"debug/elf"
	"debug/gosym"
	"fmt"
	"strings"

	"golang.org/x/arch/arm64/arm64asm"
	"golang.org/x/arch/x86/x86asm"
)

// Func is a function resolved for probing. Offsets are file offsets, ready
// for link.UprobeOptions{Address: ...} with Binary.Path.
type Func struct {
	Name string
	Addr uint64 // virtual address of the first instruction
	Size uint64
	// Offset is the file offset of the first instruction.
	Offset uint64
	// EntryOffset is the file offset of the entry probe point.
	//   amd64: the first PUSHQ BP after the stack-check prologue. The kernel
	//   emulates push (~15x cheaper than single-stepping), arguments are
	//   still in their registers, R14 is still g, and morestack re-runs the
	//   prologue before it, so it fires once per call. Functions without a
	//   frame (no PUSHQ BP before the first RET or CALL) use the start.
	//   arm64: the instruction after the stack-bound check's B.LS (once per
	//   call for the same reason; arguments are still in R0..R15, g in R28).
	//   Functions without a stack check (before the first RET or BL) use the
	//   start.
	EntryOffset uint64
	// RetOffsets are the file offsets of every RET instruction.
	RetOffsets []uint64
	calls      []call
}

// call is a direct call instruction: its file offset and the virtual address it calls.
type call struct{ offset, target uint64 }

// CallsTo returns the file offsets of fn's direct calls of the function symbol callee,
// in the order of the code; none when the binary has no such function.
func (b *Binary) CallsTo(fn *Func, callee string) []uint64 {
	r, ok := b.funcs[callee]
	if !ok {
		return nil
	}
	var offs []uint64
	for _, c := range fn.calls {
		if c.target == r.addr {
			offs = append(offs, c.offset)
		}
	}
	return offs
}

type funcRange struct{ addr, size uint64 }

// ClientSymbol returns the full symbol name of a client function given
// relative to the client package, e.g. "(*Client).Put" ->
// "github.com/aerospike/aerospike-client-go/v7.(*Client).Put".
func (b *Binary) ClientSymbol(rel string) string { return b.ClientModule + "." + rel }

// HasFunc reports whether the binary contains the function symbol.
func (b *Binary) HasFunc(symbol string) bool {
	_, ok := b.funcs[symbol]
	return ok
}

// Func resolves symbol and disassembles it. Results are cached.
func (b *Binary) Func(symbol string) (*Func, error) {
	b.funcCacheMu.Lock()
	defer b.funcCacheMu.Unlock()
	if fn, ok := b.funcCache[symbol]; ok {
		return fn, nil
	}
	r, ok := b.funcs[symbol]
	if !ok {
		return nil, newErr(ErrNoFunc, nil, "%s: function %s not found (client %s, Go %s): it may have been inlined or removed by the linker; probe its callee", b.subject(), symbol, b.ClientVersion, b.GoVersion)
	}
	off, ok := b.fileOffset(r.addr)
	if !ok || r.size == 0 || r.size > 1<<24 {
		return nil, newErr(ErrCorrupt, nil, "%s: function %s at %#x (size %d) lies outside the loadable segments: the file is damaged; rebuild or reinstall it", b.subject(), symbol, r.addr, r.size)
	}
	code := make([]byte, r.size)
	if _, err := b.file.ReadAt(code, int64(off)); err != nil {
		return nil, newErr(ErrCorrupt, err, "%s: reading function %s: %v: the file is truncated; rebuild or reinstall it", b.subject(), symbol, err)
	}
	sc := scan(b.Arch, code)
	fn := &Func{Name: symbol, Addr: r.addr, Size: r.size, Offset: off, EntryOffset: off + sc.entry}
	fn.RetOffsets = make([]uint64, len(sc.rets))
	for i, rel := range sc.rets {
		fn.RetOffsets[i] = off + rel
	}
	for _, c := range sc.calls {
		fn.calls = append(fn.calls, call{offset: off + c.offset, target: uint64(int64(r.addr) + int64(c.target))})
	}
	if b.funcCache == nil {
		b.funcCache = make(map[string]*Func)
	}
	b.funcCache[symbol] = fn
	return fn, nil
}

// index builds the symbol map once: from .symtab when present, else from
// .gopclntab.
func (b *Binary) index() error {
	b.funcsOnce.Do(func() {
		if !b.Stripped {
			b.funcs, b.funcsErr = b.symtabFuncs()
		} else {
			b.funcs, b.funcsErr = b.pclntabFuncs()
		}
	})
	return b.funcsErr
}

func (b *Binary) symtabFuncs() (map[string]funcRange, error) {
	syms, err := b.elf.Symbols()
	if err != nil {
		return nil, newErr(ErrCorrupt, err, "%s: corrupt symbol table (%v): the file is damaged; rebuild or reinstall it", b.subject(), err)
	}
	funcs := make(map[string]funcRange, len(syms)/2)
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Value != 0 {
			funcs[s.Name] = funcRange{s.Value, s.Size}
		}
	}
	return funcs, nil
}

// pclntabFuncs reads function names and ranges from .gopclntab. The text
// start comes from the .text section address: Go 1.26 dropped textStart from
// the pclntab header, so it must not be read from there.
func (b *Binary) pclntabFuncs() (funcs map[string]funcRange, err error) {
	corrupt := func(cause any) error {
		return newErr(ErrCorrupt, fmt.Errorf("%v", cause), "%s: corrupt or truncated .gopclntab (function table): the file is damaged; rebuild or reinstall it", b.subject())
	}
	defer func() {
		if r := recover(); r != nil {
			funcs, err = nil, corrupt(r)
		}
	}()
	sec := pclntabSection(b.elf)
	text := b.elf.Section(".text")
	data, err := sec.Data()
	if err != nil {
		return nil, corrupt(err)
	}
	table, err := gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
	if err != nil {
		return nil, corrupt(err)
	}
	if len(table.Funcs) == 0 {
		return nil, corrupt("no functions")
	}
	textEnd := text.Addr + text.Size
	funcs = make(map[string]funcRange, len(table.Funcs))
	for i := range table.Funcs {
		f := &table.Funcs[i]
		if f.Entry < text.Addr || f.End > textEnd || f.End <= f.Entry {
			return nil, corrupt(fmt.Sprintf("function %s range %#x-%#x outside .text", f.Name, f.Entry, f.End))
		}
		funcs[f.Name] = funcRange{f.Entry, f.End - f.Entry}
	}
	return funcs, nil
}

// pclntabSection returns the function table section. PIE binaries of Go 1.21 and older
// keep it in .data.rel.ro.gopclntab (relro), later ones in .gopclntab.
func pclntabSection(f *elf.File) *elf.Section {
	if s := f.Section(".gopclntab"); s != nil {
		return s
	}
	return f.Section(".data.rel.ro.gopclntab")
}

// scanned is what scan finds in a function's code, as offsets relative to its start: the
// entry probe point, the RET instructions and the direct calls (their targets relative to
// the start too).
type scanned struct {
	entry uint64
	rets  []uint64
	calls []call
}

func scan(arch string, code []byte) scanned {
	switch arch {
	case "amd64":
		return scanAMD64(code)
	case "arm64":
		return scanARM64(code)
	}
	return scanned{}
}

var endbr64 = []byte{0xf3, 0x0f, 0x1e, 0xfa}

func scanAMD64(code []byte) (sc scanned) {
	entryFound := false
	for pc := 0; pc < len(code); {
		if strings.HasPrefix(string(code[pc:]), string(endbr64)) {
			pc += len(endbr64)
			continue
		}
		inst, err := x86asm.Decode(code[pc:], 64)
		if err != nil || inst.Len == 0 {
			pc++ // not code (padding or data): resynchronise byte by byte
			continue
		}
		switch inst.Op {
		case x86asm.RET:
			sc.rets = append(sc.rets, uint64(pc))
			entryFound = true
		case x86asm.CALL:
			entryFound = true
			if rel, ok := inst.Args[0].(x86asm.Rel); ok {
				sc.calls = append(sc.calls, call{offset: uint64(pc), target: uint64(int64(pc) + int64(inst.Len) + int64(rel))})
			}
		case x86asm.PUSH:
			if !entryFound && inst.Args[0] == x86asm.RBP {
				sc.entry, entryFound = uint64(pc), true
			}
		}
		pc += inst.Len
	}
	return sc
}

func scanARM64(code []byte) (sc scanned) {
	entryFound := false
	for pc := 0; pc+4 <= len(code); pc += 4 {
		inst, err := arm64asm.Decode(code[pc:])
		if err != nil {
			continue
		}
		switch inst.Op {
		case arm64asm.RET:
			sc.rets = append(sc.rets, uint64(pc))
			entryFound = true
		case arm64asm.BL, arm64asm.BLR:
			entryFound = true
			if rel, ok := inst.Args[0].(arm64asm.PCRel); ok {
				sc.calls = append(sc.calls, call{offset: uint64(pc), target: uint64(int64(pc) + int64(rel))})
			}
		case arm64asm.B:
			if c, ok := inst.Args[0].(arm64asm.Cond); !entryFound && ok && c.Value == 9 /* LS */ {
				sc.entry, entryFound = uint64(pc+4), true
			}
		}
	}
	return sc
}
