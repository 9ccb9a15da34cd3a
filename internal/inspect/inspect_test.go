package inspect

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/mod/semver"
)

// probed are the v7 client functions the attach layer probes (relative to
// the client package).
var probed = []string{
	"(*Client).Put", "(*Client).PutBins", "(*Client).Get", "(*Client).GetHeader", "(*Client).Exists",
	"(*Client).Delete", "(*Client).Touch", "(*Client).Append", "(*Client).Prepend", "(*Client).Add",
	"(*Client).operate", "(*Client).Execute",
	"(*Client).BatchGet", "(*Client).BatchGetHeader", "(*Client).BatchGetOperate", "(*Client).BatchGetComplex",
	"(*Client).BatchExists", "(*Client).BatchOperate", "(*Client).BatchDelete", "(*Client).BatchExecute",
	"(*Client).QueryPartitions", "(*Client).ScanPartitions", "(*Client).queryPartitions", "(*Client).scanPartitions",
	"(*Client).queryNodePartitions", "(*Client).scanNodePartitions", "(*Recordset).signalEnd",
	"(*baseCommand).executeAt", "(*Connection).Read", "(*Connection).Write",
}

func TestOpenVariants(t *testing.T) {
	cases := []struct {
		tg                       target
		goPrefix                 string
		pie, stripped, withDWARF bool
	}{
		{tPlain, "go1.26", false, false, true},
		{tStrip, "go1.26", false, true, false},
		{tPIE, "go1.26", true, false, true},
		{tPIEStr, "go1.26", true, true, false},
		{tGo122, "go1.22.12", false, true, false},
		{tGo122Plain, "go1.22.12", false, false, true},
	}
	for _, c := range cases {
		t.Run(c.tg.name, func(t *testing.T) {
			b, err := Open(build(t, c.tg))
			must(t, err)
			defer b.Close()
			if !strings.HasPrefix(b.GoVersion, c.goPrefix) {
				t.Errorf("GoVersion = %q, want prefix %q", b.GoVersion, c.goPrefix)
			}
			if b.Arch != "amd64" || b.ClientModule != "github.com/aerospike/aerospike-client-go/v7" ||
				b.ClientVersion != clientVersion || b.ClientMajor != 7 {
				t.Errorf("got arch %q client %q %q major %d", b.Arch, b.ClientModule, b.ClientVersion, b.ClientMajor)
			}
			if b.PIE != c.pie || b.Stripped != c.stripped || b.HasDWARF != c.withDWARF {
				t.Errorf("PIE/Stripped/HasDWARF = %v/%v/%v, want %v/%v/%v", b.PIE, b.Stripped, b.HasDWARF, c.pie, c.stripped, c.withDWARF)
			}
			for _, rel := range probed {
				sym := b.ClientSymbol(rel)
				if !b.HasFunc(sym) {
					t.Errorf("HasFunc(%s) = false", sym)
					continue
				}
				fn, err := b.Func(sym)
				if err != nil {
					t.Errorf("Func(%s): %v", sym, err)
					continue
				}
				if len(fn.RetOffsets) == 0 {
					t.Errorf("%s: no RET found", rel)
				}
				if fn.EntryOffset <= fn.Offset || fn.EntryOffset >= fn.Offset+fn.Size {
					t.Errorf("%s: EntryOffset %#x not after the prologue of [%#x, %#x)", rel, fn.EntryOffset, fn.Offset, fn.Offset+fn.Size)
				}
				for _, r := range fn.RetOffsets {
					if r < fn.Offset || r >= fn.Offset+fn.Size {
						t.Errorf("%s: RET %#x outside the function", rel, r)
					}
				}
			}
			if b.HasFunc("github.com/aerospike/aerospike-client-go/v7.(*Client).NoSuchMethod") {
				t.Error("HasFunc reports a function that does not exist")
			}
			_, err = b.Func("main.noSuchFunc")
			if !errors.Is(err, ErrNoFunc) {
				t.Errorf("Func(missing) error = %v, want ErrNoFunc", err)
			}
		})
	}
}

// The pclntab path (used for stripped binaries) must give the same ranges as
// .symtab, and a stripped build the same functions as the plain one.
func TestPclntabMatchesSymtab(t *testing.T) {
	for _, pair := range [][2]target{{tPlain, tStrip}, {tPIE, tPIEStr}, {tGo122Plain, tGo122}} {
		full, err := Open(build(t, pair[0]))
		must(t, err)
		defer full.Close()
		stripped, err := Open(build(t, pair[1]))
		must(t, err)
		defer stripped.Close()
		pcln, err := full.pclntabFuncs()
		must(t, err)
		for _, rel := range probed {
			sym := full.ClientSymbol(rel)
			viaSym, viaPcln, viaStripped := full.funcs[sym], pcln[sym], stripped.funcs[sym]
			if viaSym.addr != viaPcln.addr || viaSym.addr != viaStripped.addr {
				t.Errorf("%s %s: entry symtab %#x, pclntab %#x, stripped build %#x", pair[0].name, rel, viaSym.addr, viaPcln.addr, viaStripped.addr)
			}
			a, err := full.Func(sym)
			must(t, err)
			s, err := stripped.Func(sym)
			must(t, err)
			if a.EntryOffset != s.EntryOffset || len(a.RetOffsets) != len(s.RetOffsets) || a.RetOffsets[0] != s.RetOffsets[0] {
				t.Errorf("%s %s: plain entry %#x rets %x, stripped entry %#x rets %x", pair[0].name, rel, a.EntryOffset, a.RetOffsets, s.EntryOffset, s.RetOffsets)
			}
		}
	}
}

// (*Client).Put's entry point and RETs agree with `go tool objdump` (which
// needs .symtab; TestPclntabMatchesSymtab carries the result over to the
// stripped builds).
func TestPutMatchesObjdump(t *testing.T) {
	for _, tg := range []target{tPlain, tPIE, tGo122Plain} {
		t.Run(tg.name, func(t *testing.T) {
			bin := build(t, tg)
			b, err := Open(bin)
			must(t, err)
			defer b.Close()
			sym := b.ClientSymbol("(*Client).Put")
			fn, err := b.Func(sym)
			must(t, err)
			dump := objdump(t, bin, sym)
			var wantRets []uint64
			var wantEntry uint64
			for _, in := range dump.insts {
				if in.text == "RET" {
					wantRets = append(wantRets, vaddrToFileOffset(t, bin, in.addr))
				}
				if in.text == "PUSHQ BP" && wantEntry == 0 {
					wantEntry = vaddrToFileOffset(t, bin, in.addr)
				}
			}
			if fn.Addr != dump.insts[0].addr {
				t.Errorf("Addr = %#x, objdump starts at %#x", fn.Addr, dump.insts[0].addr)
			}
			if fn.EntryOffset != wantEntry {
				t.Errorf("EntryOffset = %#x, objdump's first PUSHQ BP is at file offset %#x", fn.EntryOffset, wantEntry)
			}
			if len(fn.RetOffsets) != len(wantRets) {
				t.Fatalf("RetOffsets = %x, objdump RETs at %x", fn.RetOffsets, wantRets)
			}
			for i := range wantRets {
				if fn.RetOffsets[i] != wantRets[i] {
					t.Errorf("RetOffsets[%d] = %#x, want %#x", i, fn.RetOffsets[i], wantRets[i])
				}
			}
			if tg.toolchain == "" && len(wantRets) != 2 {
				t.Errorf("v7.10.2 (*Client).Put with Go 1.26 has %d RETs, reference says 2", len(wantRets))
			}
		})
	}
}

func TestFieldOffsets(t *testing.T) {
	want := map[FieldRef]int64{
		{"Key", "namespace"}: 0, {"Key", "setName"}: 16,
		{"AerospikeError", "wrapped"}: 0, {"AerospikeError", "ResultCode"}: 40,
		{"Statement", "Namespace"}: 0, {"Statement", "SetName"}: 16,
		{"BatchRecord", "Key"}: 0, {"batchCommandGet", "keys"}: 312,
		{"baseCommand", "node"}: 32, {"Host", "Name"}: 0, {"Host", "Port"}: 32,
	}
	plain, err := Open(build(t, tPlain))
	must(t, err)
	defer plain.Close()
	stripped, err := Open(build(t, tStrip))
	must(t, err)
	defer stripped.Close()
	fromDWARF, err := plain.Offsets()
	must(t, err)
	fromTable, err := stripped.Offsets()
	must(t, err)
	// batchIndexCommandGet.records is v8's; v7 keeps the slice in its embedded batchCommandGet.
	// queryObjectsCommand, the per-node object query of older clients, is gone since v7.5.0.
	for _, ref := range []FieldRef{{"batchIndexCommandGet", "records"}, {"queryObjectsCommand", "queryCommand.baseMultiCommand.recordset"}} {
		if _, ok := fromDWARF[ref]; ok {
			t.Errorf("v7.10.2 has %s", ref)
		}
	}
	if want := len(RequiredFields) - 2; len(fromDWARF) != want || len(fromTable) != want {
		t.Fatalf("Offsets: %d from DWARF, %d from table, want %d", len(fromDWARF), len(fromTable), want)
	}
	for _, ref := range RequiredFields {
		if fromDWARF[ref] != fromTable[ref] {
			t.Errorf("%s: DWARF %d, table %d", ref, fromDWARF[ref], fromTable[ref])
		}
	}
	for ref, off := range want {
		if fromDWARF[ref] != off {
			t.Errorf("%s = %d, want %d", ref, fromDWARF[ref], off)
		}
	}
	nested, err := plain.FieldOffset("BatchRead", "BatchRecord.Key")
	must(t, err)
	if nested != 0 {
		t.Errorf("BatchRead.BatchRecord.Key = %d, want 0", nested)
	}
	policy, err := plain.FieldOffset("BatchRead", "Policy")
	must(t, err)
	if policy == 0 {
		t.Error("BatchRead.Policy offset is 0, want after the embedded BatchRecord")
	}

	_, err = plain.FieldOffset("Key", "nope")
	wantMsg := "aerospike-client-go v7.10.2 has no field github.com/aerospike/aerospike-client-go/v7.Key.nope: this probe cannot run on that client version"
	if !errors.Is(err, ErrNoField) || err.Error() != wantMsg {
		t.Errorf("missing field error = %q, want %q", err, wantMsg)
	}
	_, err = stripped.FieldOffset("Key", "nope")
	wantMsg = "field Key.nope is not in the offsets table for aerospike-client-go v7.10.2/amd64: add it to inspect.RequiredFields and regenerate with go run ./tools/genoffsets"
	if !errors.Is(err, ErrNoField) || err.Error() != wantMsg {
		t.Errorf("missing table field error = %q, want %q", err, wantMsg)
	}
}

// The offsets table has an entry for every supported client version, on every
// architecture, and nothing else: `make offsets` regenerates it from ClientVersions.
func TestOffsetsTableCoversSupportedVersions(t *testing.T) {
	if ClientVersions[0] != OldestClient || !slices.IsSortedFunc(ClientVersions, semver.Compare) {
		t.Fatalf("ClientVersions %v: want semantic versions from OldestClient %s on, oldest first", ClientVersions, OldestClient)
	}
	for _, arch := range TableArches {
		if got, want := strings.Join(TableVersions(arch), " "), strings.Join(ClientVersions, " "); got != want {
			t.Errorf("TableVersions(%s) = %q, want ClientVersions %q: run make offsets", arch, got, want)
		}
		for _, v := range TableVersions(arch) {
			fields := offsetsTable[tableKey{v, arch}]
			for _, ref := range RequiredFields {
				if _, ok := fields[ref]; !ok {
					t.Errorf("%s/%s: %s missing from the table", v, arch, ref)
				}
			}
		}
	}
	// Layouts that differ between majors (aerospike-client-go.md).
	for v, want := range map[string]int64{"v6.16.1": 288, "v7.10.2": 312, "v8.8.0": 328} {
		if got := offsetsTable[tableKey{v, "amd64"}][FieldRef{"batchCommandGet", "keys"}]; got != want {
			t.Errorf("%s batchCommandGet.keys = %d, want %d", v, got, want)
		}
	}
	if got := offsetsTable[tableKey{"v8.8.0", "amd64"}][FieldRef{"baseCommand", "node"}]; got != 56 {
		t.Errorf("v8.8.0 baseCommand.node = %d, want 56", got)
	}
}

func TestOpenPID(t *testing.T) {
	bin := build(t, tPlain)
	cmd := exec.Command(bin, "wait")
	stdin, err := cmd.StdinPipe()
	must(t, err)
	must(t, cmd.Start())
	pid := cmd.Process.Pid
	b, err := OpenPID(pid)
	if err != nil {
		stdin.Close()
		cmd.Wait()
		t.Fatal(err)
	}
	defer b.Close()
	stdin.Close()
	must(t, cmd.Wait())
	if b.PID != pid || b.Path != "/proc/"+strconv.Itoa(pid)+"/exe" || b.Target != bin {
		t.Errorf("PID %d Path %q Target %q", b.PID, b.Path, b.Target)
	}
	// The file stays usable after the process exited.
	fn, err := b.Func(b.ClientSymbol("(*Client).Get"))
	must(t, err)
	if len(fn.RetOffsets) == 0 {
		t.Error("no RET in (*Client).Get")
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	hello := build(t, tHello)
	stripped := build(t, tStrip)

	patched := func(name, src string, edit func([]byte) []byte) string {
		data, err := os.ReadFile(src)
		must(t, err)
		p := filepath.Join(dir, name)
		must(t, os.WriteFile(p, edit(data), 0o755))
		return p
	}
	replaceOnce := func(old, new string) func([]byte) []byte {
		return func(b []byte) []byte {
			if bytes.Count(b, []byte(old)) < 1 {
				t.Fatalf("%q not in binary", old)
			}
			return bytes.ReplaceAll(b, []byte(old), []byte(new))
		}
	}
	// Go 1.16 cannot be installed here, so an old version is forged in the
	// build info (same length, so the varint prefix still matches).
	goVer := strings.TrimPrefix(goVersionOf(t, stripped), "go")
	oldGo := "1.16" + goVer[len("1.26"):]
	tooOld := patched("too-old", stripped, replaceOnce("go"+goVer, "go"+oldGo))
	unknownVersion := patched("unknown-version", stripped, replaceOnce("v7.10.2", "v7.10.9"))
	oldClient := patched("old-client", stripped, replaceOnce("v7.10.2", "v6.9.10"))
	badMajor := patched("bad-major", stripped, replaceOnce("aerospike-client-go/v7\tv7.10.2", "aerospike-client-go/v5\tv5.10.2"))
	corruptELF := patched("corrupt-elf", hello, func(b []byte) []byte {
		b[0x28] = 0xff // e_shoff far beyond the file
		b[0x2f] = 0x7f
		return b
	})
	truncatedPclntab := patched("truncated-pclntab", stripped, func(b []byte) []byte {
		return setSectionSize(t, b, ".gopclntab", 4096)
	})
	notELF := patched("script", "/bin/true", func([]byte) []byte { return []byte("#!/bin/sh\nexit 0\n") })

	cases := []struct {
		path string
		kind error
		msg  string
	}{
		{"/bin/true", ErrNotGo, "/bin/true is not a Go binary (no Go build info): asobserve observes Go services only"},
		{notELF, ErrNotGo, notELF + " is not a Go binary (not an ELF executable): point asobserve at a Go service"},
		{hello, ErrNoClient, hello + " does not use aerospike-client-go (not in its Go build info): point asobserve at a service built with aerospike-client-go v6, v7 or v8"},
		{tooOld, ErrGoTooOld, tooOld + " is a Go go" + oldGo + " binary; asobserve needs Go >= 1.17 (register ABI): rebuild the service with a newer Go"},
		{oldClient, ErrUnsupportedClient, oldClient + " uses aerospike-client-go v6.9.10; asobserve supports v6.10.0 and later (older releases are not tested): upgrade the client to v6.10.0 or later"},
		{badMajor, ErrUnsupportedClient, badMajor + " uses aerospike-client-go v5.10.2 (github.com/aerospike/aerospike-client-go/v5); asobserve supports v6, v7 and v8: upgrade the client"},
		{corruptELF, ErrCorrupt, corruptELF + ": corrupt ELF (EOF): the file is damaged; rebuild or reinstall it"},
		{truncatedPclntab, ErrCorrupt, truncatedPclntab + ": corrupt or truncated .gopclntab (function table): the file is damaged; rebuild or reinstall it"},
		{filepath.Join(dir, "missing"), ErrExeUnreadable, filepath.Join(dir, "missing") + ": no such file: check the path"},
	}
	for _, c := range cases {
		b, err := Open(c.path)
		if err == nil {
			b.Close()
			t.Errorf("Open(%s) succeeded, want %v", c.path, c.kind)
			continue
		}
		if !errors.Is(err, c.kind) {
			t.Errorf("Open(%s) = %v, want errors.Is %v", c.path, err, c.kind)
		}
		if err.Error() != c.msg {
			t.Errorf("Open(%s) message\n got %q\nwant %q", c.path, err.Error(), c.msg)
		}
	}

	checkDerivedUnknownVersion(t, unknownVersion)

	_, err := OpenPID(1 << 30)
	if want := "pid 1073741824: no such process: check the pid (is the service running?)"; !errors.Is(err, ErrNoProcess) || err.Error() != want {
		t.Errorf("OpenPID(no such pid) = %v, want %q", err, want)
	}
	self, _ := os.Executable()
	_, err = OpenPID(os.Getpid())
	if want := "pid " + strconv.Itoa(os.Getpid()) + " (" + self + ") does not use aerospike-client-go (not in its Go build info): point asobserve at a service built with aerospike-client-go v6, v7 or v8"; !errors.Is(err, ErrNoClient) || err.Error() != want {
		t.Errorf("OpenPID(self) = %v, want %q", err, want)
	}
}

func goVersionOf(t *testing.T, bin string) string {
	out, err := exec.Command("go", "version", bin).Output()
	must(t, err)
	f := strings.Fields(string(out))
	return f[len(f)-1]
}

// setSectionSize rewrites a section header's sh_size in an ELF64 LE image.
func setSectionSize(t *testing.T, img []byte, name string, size uint64) []byte {
	f, err := elf.NewFile(bytes.NewReader(img))
	must(t, err)
	idx := -1
	for i, s := range f.Sections {
		if s.Name == name {
			idx = i
		}
	}
	if idx < 0 {
		t.Fatalf("no section %s", name)
	}
	shoff := le64(img[0x28:])
	shentsize := uint64(le16(img[0x3a:]))
	at := shoff + uint64(idx)*shentsize + 0x20 // sh_size
	for i := 0; i < 8; i++ {
		img[at+uint64(i)] = byte(size >> (8 * i))
	}
	return img
}

func le64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }

func TestGoAtLeast(t *testing.T) {
	cases := map[string]bool{
		"go1.17": true, "go1.17.13": true, "go1.26.8": true, "go1.21rc2": true, "devel go1.27-abc123": true,
		"go1.16.15": false, "go1.9": false, "go1.16beta1": false, "go2.0": true, "": false, "gox": false, "go1": false,
		"go1.22.12 X:boringcrypto": true,
	}
	for v, want := range cases {
		if got := goAtLeast(v, 1, 17); got != want {
			t.Errorf("goAtLeast(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestClientMajor(t *testing.T) {
	cases := []struct {
		path  string
		major int
		ok    bool
	}{
		{"github.com/aerospike/aerospike-client-go/v7", 7, true},
		{"github.com/aerospike/aerospike-client-go/v6", 6, true},
		{"github.com/aerospike/aerospike-client-go", 1, true},
		{"github.com/aerospike/aerospike-client-go-extra", 0, false},
		{"github.com/aerospike/aerospike-client-go/v7/types", 0, false},
		{"github.com/other/x", 0, false},
	}
	for _, c := range cases {
		m, ok := clientMajor(c.path)
		if m != c.major || ok != c.ok {
			t.Errorf("clientMajor(%q) = %d, %v; want %d, %v", c.path, m, ok, c.major, c.ok)
		}
	}
}

func TestABI(t *testing.T) {
	amd := ABIFor("amd64")
	if strings.Join(amd.IntArgs, ",") != "RAX,RBX,RCX,RDI,RSI,R8,R9,R10,R11" || amd.G != "R14" {
		t.Errorf("amd64 ABI = %+v", amd)
	}
	arm := ABIFor("arm64")
	if len(arm.IntArgs) != 16 || arm.IntArgs[0] != "R0" || arm.IntArgs[15] != "R15" || arm.G != "R28" {
		t.Errorf("arm64 ABI = %+v", arm)
	}
	if abi := ABIFor("386"); abi.G != "" || abi.IntArgs != nil {
		t.Errorf("386 ABI = %+v, want zero", abi)
	}
}

// BenchmarkResolve measures what an attach does: open, resolve the probed
// functions and the required offsets (goal: well under 1 s in total).
func BenchmarkResolve(b *testing.B) {
	for _, tg := range []target{tPlain, tStrip} {
		bin := build(b, tg)
		b.Run(tg.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				bn, err := Open(bin)
				must(b, err)
				for _, rel := range probed {
					_, err := bn.Func(bn.ClientSymbol(rel))
					must(b, err)
				}
				_, err = bn.Offsets()
				must(b, err)
				bn.Close()
			}
		})
	}
}
