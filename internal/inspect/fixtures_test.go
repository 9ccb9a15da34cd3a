package inspect

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// Fixtures are function bytes from real builds of the v7 client program,
// with the entry point and RETs `go tool objdump` reports for them. They let
// the arm64 scanner be tested on an amd64 machine.
//
// Regenerate: INSPECT_UPDATE_FIXTURES=1 go test ./internal/inspect -run TestUpdateFixtures
type fixture struct {
	Symbol string   `json:"symbol"`
	Arch   string   `json:"arch"`
	Source string   `json:"source"`
	Entry  uint64   `json:"entry"` // offset from the function start
	Rets   []uint64 `json:"rets"`  // offsets from the function start
}

var fixtureFuncs = []struct {
	file, rel string
	tg        target
}{
	{"arm64_client_put", "(*Client).Put", tARM64},
	{"arm64_client_isconnected", "(*Client).IsConnected", tARM64},
	{"arm64_key_namespace", "(*Key).Namespace", tARM64},
	{"amd64_client_put", "(*Client).Put", tPlain},
	{"amd64_key_namespace", "(*Key).Namespace", tPlain},
	{"arm64_error_resultcode", "(*AerospikeError).resultCode", tARM64},
	{"amd64_error_resultcode", "(*AerospikeError).resultCode", tPlain},
}

func TestUpdateFixtures(t *testing.T) {
	if os.Getenv("INSPECT_UPDATE_FIXTURES") != "1" {
		t.Skip("fixture generator, not a test (CI never needs it): set INSPECT_UPDATE_FIXTURES=1 to rewrite testdata/")
	}
	for _, ff := range fixtureFuncs {
		bin := build(t, ff.tg)
		arch := ff.tg.goarch
		if arch == "" {
			arch = "amd64"
		}
		sym := "github.com/aerospike/aerospike-client-go/v7." + ff.rel
		dump := objdump(t, bin, sym)
		start := dump.insts[0].addr
		fx := fixture{Symbol: sym, Arch: arch, Source: "go tool objdump of a GOARCH=" + arch + " " + runtime.Version() + " build of tools/genoffsets/target.go.tmpl with client " + clientVersion}
		var code []byte
		entryFound := false
		for _, in := range dump.insts {
			raw, err := hex.DecodeString(in.hex)
			must(t, err)
			if arch == "arm64" {
				// objdump prints arm64 instructions as 32-bit words.
				raw = binary.LittleEndian.AppendUint32(nil, binary.BigEndian.Uint32(raw))
			}
			code = append(code, raw...)
			rel := in.addr - start
			op := strings.Fields(in.text + " ?")[0]
			switch {
			case op == "RET":
				fx.Rets = append(fx.Rets, rel)
				entryFound = true
			case op == "CALL":
				entryFound = true
			case !entryFound && arch == "amd64" && in.text == "PUSHQ BP":
				fx.Entry, entryFound = rel, true
			case !entryFound && arch == "arm64" && op == "BLS":
				fx.Entry, entryFound = rel+4, true
			}
		}
		must(t, os.WriteFile(filepath.Join("testdata", ff.file+".bin"), code, 0o644))
		js, err := json.MarshalIndent(fx, "", "  ")
		must(t, err)
		must(t, os.WriteFile(filepath.Join("testdata", ff.file+".json"), append(js, '\n'), 0o644))
	}
}

func loadFixture(t testing.TB, name string) (fixture, []byte) {
	t.Helper()
	code, err := os.ReadFile(filepath.Join("testdata", name+".bin"))
	must(t, err)
	js, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	must(t, err)
	var fx fixture
	must(t, json.Unmarshal(js, &fx))
	return fx, code
}

func TestScanFixtures(t *testing.T) {
	wantRets := map[string]int{
		"arm64_client_put": 2, "arm64_client_isconnected": 1, "arm64_key_namespace": 1,
		"amd64_client_put": 2, "amd64_key_namespace": 1, "arm64_error_resultcode": 1, "amd64_error_resultcode": 1,
	}
	for _, ff := range fixtureFuncs {
		t.Run(ff.file, func(t *testing.T) {
			fx, code := loadFixture(t, ff.file)
			sc := scan(fx.Arch, code)
			entry, rets := sc.entry, sc.rets
			if entry != fx.Entry {
				t.Errorf("entry = %d, objdump says %d", entry, fx.Entry)
			}
			if len(rets) != wantRets[ff.file] || len(rets) != len(fx.Rets) {
				t.Fatalf("rets = %v, objdump says %v (want %d)", rets, fx.Rets, wantRets[ff.file])
			}
			for i := range rets {
				if rets[i] != fx.Rets[i] {
					t.Errorf("rets[%d] = %d, objdump says %d", i, rets[i], fx.Rets[i])
				}
			}
		})
	}
	// Frameless leaf: the probe goes on the first instruction.
	if fx, _ := loadFixture(t, "arm64_key_namespace"); fx.Entry != 0 {
		t.Errorf("arm64 (*Key).Namespace entry = %d, want 0", fx.Entry)
	}
	// Stack-check prologue: MOVD 16(R28), R16; SUB; CMP; BLS -> entry after BLS.
	if fx, _ := loadFixture(t, "arm64_client_put"); fx.Entry != 16 {
		t.Errorf("arm64 (*Client).Put entry = %d, want 16", fx.Entry)
	}
}

func TestScanAMD64EndbrAndGarbage(t *testing.T) {
	code := []byte{
		0xf3, 0x0f, 0x1e, 0xfa, // ENDBR64
		0x49, 0x3b, 0x66, 0x10, // CMPQ SP, 0x10(R14)
		0x76, 0x08, // JBE +8
		0x06,             // invalid in 64-bit mode: skipped
		0x55,             // PUSHQ BP
		0x48, 0x89, 0xe5, // MOVQ SP, BP
		0x5d,             // POPQ BP
		0xc3,             // RET
		0xc2, 0x08, 0x00, // RET $8
		0x0f, // truncated instruction at the end
	}
	sc := scanAMD64(code)
	entry, rets := sc.entry, sc.rets
	if entry != 11 {
		t.Errorf("entry = %d, want 11 (the PUSHQ BP)", entry)
	}
	if len(rets) != 2 || rets[0] != 16 || rets[1] != 17 {
		t.Errorf("rets = %v, want [16 17]", rets)
	}
	// A frameless function: RET before any PUSHQ BP means entry at start.
	sc = scanAMD64([]byte{0x48, 0x8b, 0x00, 0xc3, 0x55})
	entry, rets = sc.entry, sc.rets
	if entry != 0 || len(rets) != 1 || rets[0] != 3 {
		t.Errorf("frameless: entry %d rets %v, want 0 [3]", entry, rets)
	}
}

func TestScanARM64Garbage(t *testing.T) {
	code := []byte{
		0x00, 0x00, 0x00, 0x00, // undefined: skipped
		0xc0, 0x03, 0x5f, 0xd6, // RET
		0xc0, 0x03, // trailing half instruction
	}
	sc := scanARM64(code)
	entry, rets := sc.entry, sc.rets
	if entry != 0 || len(rets) != 1 || rets[0] != 4 {
		t.Errorf("entry %d rets %v, want 0 [4]", entry, rets)
	}
}

func TestScanFindsDirectCallsAndTheirTargets(t *testing.T) {
	amd := scanAMD64([]byte{
		0x55,                         // PUSHQ BP
		0xe8, 0x10, 0x00, 0x00, 0x00, // CALL +0x10: to 1+5+16 = 22
		0xff, 0xd0, // CALL AX: indirect, no target
		0xe8, 0xf0, 0xff, 0xff, 0xff, // CALL -0x10: to 8+5-16 = -3
		0xc3, // RET
	})
	if want := []call{{offset: 1, target: 22}, {offset: 8, target: uint64(1<<64 - 3)}}; !slices.Equal(amd.calls, want) {
		t.Errorf("amd64 calls = %v, want %v", amd.calls, want)
	}
	arm := scanARM64([]byte{
		0x04, 0x00, 0x00, 0x94, // BL +16: to 0+16
		0x00, 0x00, 0x3f, 0xd6, // BLR X0: indirect, no target
		0xff, 0xff, 0xff, 0x97, // BL -4: to 8-4
		0xc0, 0x03, 0x5f, 0xd6, // RET
	})
	if want := []call{{offset: 0, target: 16}, {offset: 8, target: 4}}; !slices.Equal(arm.calls, want) {
		t.Errorf("arm64 calls = %v, want %v", arm.calls, want)
	}
}
