package inspect

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/arch/arm64/arm64asm"
	"golang.org/x/arch/x86/x86asm"
)

// FuzzOpen: arbitrary or corrupted ELF bytes never panic, and every failure
// is one of the package's typed errors.
func FuzzOpen(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x7fELF"))
	f.Add([]byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00"))
	if b, err := os.ReadFile("/bin/true"); err == nil {
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	// A real Go binary, whole and with its section headers damaged.
	hello, err := os.ReadFile(build(f, tHello))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(hello)
	f.Add(hello[:4096])
	damaged := append([]byte(nil), hello...)
	damaged[0x3c] ^= 0xff // e_shnum
	f.Add(damaged)

	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "bin")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		b, err := Open(p)
		if err == nil {
			for sym := range b.funcs {
				_, _ = b.Func(sym)
				break
			}
			_, _ = b.Offsets()
			b.Close()
			return
		}
		var e *Error
		if !errors.As(err, &e) || e.Kind == nil {
			t.Fatalf("untyped error %T: %v", err, err)
		}
	})
}

// FuzzFuncScan: any bytes scan without panic, and every reported RET and
// entry lies inside the code.
func FuzzFuncScan(f *testing.F) {
	for _, ff := range fixtureFuncs {
		fx, code := loadFixture(f, ff.file)
		f.Add(fx.Arch == "arm64", code)
	}
	f.Add(false, []byte{0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0xc3})
	f.Add(true, []byte{0xc0, 0x03, 0x5f, 0xd6})
	f.Fuzz(func(t *testing.T, arm bool, code []byte) {
		arch := "amd64"
		if arm {
			arch = "arm64"
		}
		sc := scan(arch, code)
		entry, rets := sc.entry, sc.rets
		if len(code) > 0 && entry >= uint64(len(code)) {
			t.Fatalf("entry %d outside %d bytes", entry, len(code))
		}
		for i, r := range rets {
			if r >= uint64(len(code)) || (i > 0 && r <= rets[i-1]) {
				t.Fatalf("bad RET offsets %v for %d bytes", rets, len(code))
			}
			if arm {
				if in, err := arm64asm.Decode(code[r:]); r%4 != 0 || err != nil || in.Op != arm64asm.RET {
					t.Fatalf("arm64 RET at %d does not decode as an aligned RET", r)
				}
			} else if in, err := x86asm.Decode(code[r:], 64); err != nil || in.Op != x86asm.RET {
				t.Fatalf("amd64 RET at %d does not decode as RET", r)
			}
		}
	})
}
