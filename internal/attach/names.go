//go:build linux

package attach

import (
	"fmt"
	"os"
	"sync"

	"github.com/asobserve/asobserve/internal/decoder"
	"github.com/asobserve/asobserve/internal/inspect"
)

// maxStaticNames bounds an executable's cache of namespace and set constants; names beyond
// it are read from the file each time.
const maxStaticNames = 1024

// staticNames reads the namespace and set constants an executable's records point to in
// its .rodata (decoder.StaticName) from the file, once each: the probes then need not copy
// them from the process's memory, which costs them two reads of target memory per op.
type staticNames struct {
	f         *os.File // nil: the executable has no .rodata, and no record points there
	addr, off uint64
	size      uint64
	mu        sync.Mutex
	cache     map[decoder.StaticName]string
}

// openStaticNames opens bin's file for its .rodata. Without it (no .rodata, or the file
// cannot be opened again) the probes are told no range, and copy every name as before.
func openStaticNames(bin *inspect.Binary) *staticNames {
	addr, off, size := bin.ReadOnlyData()
	if size == 0 {
		return &staticNames{}
	}
	f, err := os.Open(bin.Path)
	if err != nil {
		return &staticNames{}
	}
	return &staticNames{f: f, addr: addr, off: off, size: size, cache: map[decoder.StaticName]string{}}
}

// rodata returns the range the probes may point records into: none without the file.
func (s *staticNames) rodata() (addr, size uint64) {
	if s.f == nil {
		return 0, 0
	}
	return s.addr, s.size
}

// name is the name n locates in the executable, or read, the one the record carried.
func (s *staticNames) name(read string, n decoder.StaticName) (string, error) {
	if n.Len == 0 {
		return read, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if name, ok := s.cache[n]; ok {
		return name, nil
	}
	if s.f == nil || n.Addr < s.addr || n.Addr-s.addr > s.size || uint64(n.Len) > s.size-(n.Addr-s.addr) {
		return "", fmt.Errorf("%d bytes at %#x are not in the executable's .rodata", n.Len, n.Addr)
	}
	b := make([]byte, n.Len)
	if _, err := s.f.ReadAt(b, int64(s.off+n.Addr-s.addr)); err != nil {
		return "", fmt.Errorf("reading a name from the executable: %w", err)
	}
	name := decoder.Label(b)
	if len(s.cache) < maxStaticNames {
		s.cache[n] = name
	}
	return name, nil
}

func (s *staticNames) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}
