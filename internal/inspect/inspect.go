// Package inspect reads what asobserve needs from a Go executable before it
// attaches uprobes: Go and aerospike-client-go versions, function addresses
// and the file offsets of their entry probe point and of every RET, struct
// field offsets (DWARF, else the generated table) and the register ABI.
//
// It works on amd64 and arm64 ELF binaries, plain, stripped (-s -w) or PIE.
package inspect

import (
	"debug/buildinfo"
	"debug/dwarf"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/mod/semver"
)

// ClientModulePrefix is the module path of aerospike-client-go without the
// major-version suffix.
const ClientModulePrefix = "github.com/aerospike/aerospike-client-go"

// SupportedMajors lists the client majors asobserve can observe.
var SupportedMajors = []int{6, 7, 8}

// OldestClient is the oldest client release asobserve observes exactly: the oldest v6
// release the module proxy serves, so the oldest the matrix can prove.
const OldestClient = "v6.10.0"

// Binary is an opened, validated Go executable. It keeps the file open until
// Close, so that /proc/PID/exe stays valid even if the target exits.
type Binary struct {
	// Path is the path to attach uprobes to. For OpenPID it is
	// /proc/PID/exe, which the kernel resolves across mount namespaces and
	// for deleted executables.
	Path string
	// Target is the human-readable path (the /proc/PID/exe link target for
	// OpenPID), used in messages.
	Target string
	PID    int // 0 for Open

	Arch          string // "amd64" or "arm64"
	GoVersion     string // e.g. "go1.26.8"
	ClientModule  string // e.g. "github.com/aerospike/aerospike-client-go/v7"
	ClientVersion string // e.g. "v7.10.2"
	ClientMajor   int
	PIE           bool
	Stripped      bool // no .symtab: symbols come from .gopclntab
	HasDWARF      bool

	file  *os.File
	elf   *elf.File
	loads []*elf.Prog

	funcsOnce sync.Once
	funcs     map[string]funcRange
	funcsErr  error

	funcCacheMu sync.Mutex
	funcCache   map[string]*Func

	// derived is the layout of a stripped build that the offsets table does not hold.
	derived *derivedLayout

	dwarfOnce sync.Once
	structs   *dwarfStructs
	dwarfErr  error
}

// Open opens and validates the executable at path.
func Open(path string) (*Binary, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, newErr(ErrExeUnreadable, err, "%s: no such file: check the path", path)
		}
		return nil, newErr(ErrExeUnreadable, err, "cannot read %s: %v: run asobserve as root or with read access to the file", path, unwrapPathErr(err))
	}
	b, err := open(f, path, path, 0)
	if err != nil {
		f.Close()
		return nil, err
	}
	return b, nil
}

// OpenPID opens and validates the executable of a running process through
// /proc/PID/exe.
func OpenPID(pid int) (*Binary, error) {
	if pid <= 0 {
		return nil, newErr(ErrNoProcess, nil, "pid %d: no such process: pass the pid of a running process", pid)
	}
	proc := "/proc/" + strconv.Itoa(pid)
	if _, err := os.Stat(proc); err != nil {
		return nil, newErr(ErrNoProcess, err, "pid %d: no such process: check the pid (is the service running?)", pid)
	}
	exe := proc + "/exe"
	target, linkErr := os.Readlink(exe)
	if linkErr != nil {
		target = exe
	}
	f, err := os.Open(exe)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if _, statErr := os.Stat(proc); statErr != nil {
				return nil, newErr(ErrNoProcess, err, "pid %d: no such process (it exited): check the pid", pid)
			}
			return nil, newErr(ErrExeUnreadable, err, "pid %d has no executable (kernel thread or zombie): pass the pid of a Go service", pid)
		case errors.Is(err, fs.ErrPermission):
			return nil, newErr(ErrExeUnreadable, err, "pid %d: cannot read %s: permission denied: run asobserve as root or with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH", pid, exe)
		default:
			return nil, newErr(ErrExeUnreadable, err, "pid %d: cannot read %s: %v: run asobserve as root or with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH", pid, exe, unwrapPathErr(err))
		}
	}
	b, err := open(f, exe, target, pid)
	if err != nil {
		f.Close()
		return nil, err
	}
	return b, nil
}

// Close releases the file. The Binary must not be used afterwards.
func (b *Binary) Close() error {
	if b == nil || b.file == nil {
		return nil
	}
	err := b.file.Close()
	b.file = nil
	return err
}

// subject names the binary in messages: "pid 1234 (/usr/bin/foo)" or the path.
func subject(target string, pid int) string {
	if pid > 0 {
		return fmt.Sprintf("pid %d (%s)", pid, target)
	}
	return target
}

func (b *Binary) subject() string { return subject(b.Target, b.PID) }

func open(f *os.File, path, target string, pid int) (b *Binary, err error) {
	subj := subject(target, pid)
	// debug/elf and debug/buildinfo may panic on hostile input.
	defer func() {
		if r := recover(); r != nil {
			b = nil
			err = newErr(ErrCorrupt, fmt.Errorf("panic: %v", r), "%s: corrupt executable (%v): the file is damaged; rebuild or reinstall it", subj, r)
		}
	}()
	ef, err := elf.NewFile(f)
	if err != nil {
		var fe *elf.FormatError
		if errors.As(err, &fe) && strings.Contains(err.Error(), "bad magic number") {
			return nil, newErr(ErrNotGo, err, "%s is not a Go binary (not an ELF executable): point asobserve at a Go service", subj)
		}
		return nil, newErr(ErrCorrupt, err, "%s: corrupt ELF (%v): the file is damaged; rebuild or reinstall it", subj, err)
	}
	b = &Binary{Path: path, Target: target, PID: pid, file: f, elf: ef}
	switch ef.Machine {
	case elf.EM_X86_64:
		b.Arch = "amd64"
	case elf.EM_AARCH64:
		b.Arch = "arm64"
	default:
		return nil, newErr(ErrUnsupportedClient, nil, "%s is a %s ELF binary; asobserve supports amd64 and arm64: run it on a supported architecture", subj, ef.Machine)
	}
	b.PIE = ef.Type == elf.ET_DYN
	b.Stripped = ef.Section(".symtab") == nil
	b.HasDWARF = ef.Section(".debug_info") != nil
	for _, p := range ef.Progs {
		if p.Type == elf.PT_LOAD {
			b.loads = append(b.loads, p)
		}
	}

	info, err := buildinfo.Read(f)
	if err != nil {
		if pclntabSection(ef) == nil && ef.Section(".go.buildinfo") == nil {
			return nil, newErr(ErrNotGo, err, "%s is not a Go binary (no Go build info): asobserve observes Go services only", subj)
		}
		return nil, newErr(ErrCorrupt, err, "%s: corrupt Go build info (%v): the file is damaged; rebuild or reinstall it", subj, err)
	}
	if err := b.checkBuildInfo(info); err != nil {
		return nil, err
	}
	if ef.Section(".text") == nil || pclntabSection(ef) == nil {
		return nil, newErr(ErrCorrupt, nil, "%s: corrupt Go binary (no .text or .gopclntab section): the file is damaged; rebuild or reinstall it", subj)
	}
	// Index the symbols now, so a truncated pclntab fails the open rather
	// than the attach.
	if err := b.index(); err != nil {
		return nil, err
	}
	if _, ok := offsetsTable[tableKey{b.ClientVersion, b.Arch}]; !ok && !b.HasDWARF {
		if b.derived, err = b.deriveLayout(); err != nil {
			return nil, newErr(ErrUnsupportedClient, err,
				"%s uses aerospike-client-go %s, is stripped (no DWARF) and %s/%s is not in the offsets table (%s); its own code does not settle the struct layout (%v): build the service without -ldflags=-s -w, or add the version to internal/inspect/versions.go and run make offsets",
				subj, b.ClientVersion, b.ClientVersion, b.Arch, strings.Join(TableVersions(b.Arch), ", "), err)
		}
	}
	return b, nil
}

// checkBuildInfo fills the version fields and validates them.
func (b *Binary) checkBuildInfo(info *buildinfo.BuildInfo) error {
	subj := b.subject()
	b.GoVersion = info.GoVersion
	if !goAtLeast(info.GoVersion, 1, 17) {
		return newErr(ErrGoTooOld, nil, "%s is a Go %s binary; asobserve needs Go >= 1.17 (register ABI): rebuild the service with a newer Go", subj, info.GoVersion)
	}
	deps := info.Deps
	if info.Main.Path != "" {
		deps = append([]*debugModule{&info.Main}, deps...)
	}
	for _, d := range deps {
		major, ok := clientMajor(d.Path)
		if !ok {
			continue
		}
		b.ClientModule = d.Path
		b.ClientVersion = d.Version
		b.ClientMajor = major
		if b.ClientVersion == "" || b.ClientVersion == "(devel)" {
			if d.Replace != nil && d.Replace.Version != "" {
				b.ClientVersion = d.Replace.Version
			}
		}
		break
	}
	if b.ClientModule == "" {
		return newErr(ErrNoClient, nil, "%s does not use aerospike-client-go (not in its Go build info): point asobserve at a service built with aerospike-client-go v6, v7 or v8", subj)
	}
	supported := false
	for _, m := range SupportedMajors {
		supported = supported || m == b.ClientMajor
	}
	if !supported {
		return newErr(ErrUnsupportedClient, nil, "%s uses aerospike-client-go %s (%s); asobserve supports v6, v7 and v8: upgrade the client", subj, b.ClientVersion, b.ClientModule)
	}
	if semver.IsValid(b.ClientVersion) && semver.Compare(b.ClientVersion, OldestClient) < 0 {
		return newErr(ErrUnsupportedClient, nil, "%s uses aerospike-client-go %s; asobserve supports %s and later (older releases are not tested): upgrade the client to %s or later", subj, b.ClientVersion, OldestClient, OldestClient)
	}
	return nil
}

// clientMajor reports whether path is the aerospike client module and its major.
func clientMajor(path string) (int, bool) {
	rest, ok := strings.CutPrefix(path, ClientModulePrefix)
	if !ok {
		return 0, false
	}
	if rest == "" {
		return 1, true
	}
	n, err := strconv.Atoi(strings.TrimPrefix(rest, "/v"))
	if !strings.HasPrefix(rest, "/v") || err != nil {
		return 0, false
	}
	return n, true
}

// goAtLeast parses buildinfo Go versions such as "go1.22.12", "go1.21rc2",
// "devel go1.27-abc" or "go1.26.8 X:boringcrypto".
func goAtLeast(v string, major, minor int) bool {
	v = strings.TrimPrefix(v, "devel ")
	v, ok := strings.CutPrefix(v, "go")
	if !ok {
		return false
	}
	end := strings.IndexFunc(v, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if end >= 0 {
		v = v[:end]
	}
	parts := strings.Split(v, ".")
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || (ma == major && mi >= minor)
}

type debugModule = debug.Module

// fileOffset converts a virtual address to its offset in the file, using the
// PT_LOAD segment that contains it.
func (b *Binary) fileOffset(vaddr uint64) (uint64, bool) {
	for _, p := range b.loads {
		if vaddr >= p.Vaddr && vaddr < p.Vaddr+p.Filesz {
			return vaddr - p.Vaddr + p.Off, true
		}
	}
	return 0, false
}

// DWARF returns the parsed DWARF data, or an error if the binary has none.
func (b *Binary) dwarf() (*dwarf.Data, error) {
	if !b.HasDWARF {
		return nil, errors.New("no DWARF")
	}
	return b.elf.DWARF()
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		if errno, ok := pe.Err.(syscall.Errno); ok {
			return errno
		}
		return pe.Err
	}
	return err
}

// ReadOnlyData locates the executable's .rodata, where Go keeps its string constants: its
// link-time address, its offset in the file and its size (0 if it has none). That data is
// never written: the bytes of a constant there are the bytes every process of the file sees.
func (b *Binary) ReadOnlyData() (addr, fileOffset, size uint64) {
	s := b.elf.Section(".rodata")
	if s == nil || s.Type == elf.SHT_NOBITS {
		return 0, 0, 0
	}
	return s.Addr, s.Offset, s.Size
}
