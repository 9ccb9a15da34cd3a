//go:build linux

package attach

import (
	"bufio"
	"debug/elf"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// loadBias returns how far pid's executable is mapped from its link-time addresses
// (non-zero for PIE). It finds the mapping of the executable at file offset 0.
func loadBias(pid int) (uint64, error) {
	exe := fmt.Sprintf("/proc/%d/exe", pid)
	f, err := elf.Open(exe)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if f.Type != elf.ET_DYN {
		return 0, nil
	}
	var firstVaddr uint64
	found := false
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Off == 0 {
			firstVaddr, found = p.Vaddr, true
			break
		}
	}
	if !found {
		return 0, fmt.Errorf("%s: no PT_LOAD segment at file offset 0", exe)
	}
	target, err := os.Readlink(exe)
	if err != nil {
		return 0, err
	}
	target = strings.TrimSuffix(target, " (deleted)")
	maps, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return 0, err
	}
	defer maps.Close()
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[2] != "00000000" {
			continue
		}
		path := strings.TrimSuffix(strings.Join(fields[5:], " "), " (deleted)")
		if path != target {
			continue
		}
		start, err := strconv.ParseUint(strings.SplitN(fields[0], "-", 2)[0], 16, 64)
		if err != nil {
			return 0, err
		}
		page := uint64(os.Getpagesize())
		return start - firstVaddr&^(page-1), nil
	}
	return 0, fmt.Errorf("%s is not mapped in pid %d", target, pid)
}
