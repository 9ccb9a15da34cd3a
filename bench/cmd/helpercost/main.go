//go:build linux

// Command helpercost measures what each kind of call the asobserve BPF programs make costs
// on this machine, as the kernel's run statistics (BPF_STATS_RUN_TIME) count it. Each call
// gets a uprobe program of its own that makes it once, on a function of this process; the
// figure is that program's ns per run minus an empty program's, median over rounds. Cold:
// between hits the process touches 8 MiB, so every hit fetches the program's code and data
// again, as the probes do between a target's own work. Warm: hits back to back. It needs
// root (eBPF).
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"sort"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// The sizes the asobserve programs use: struct gkey, struct op_state, struct event_op.
const (
	gkeySize    = 16
	opStateSize = 232
	recordSize  = 184
)

type call struct {
	name string
	body func(m maps) asm.Instructions
}

type maps struct {
	pids, lru, hash, slots, ring *ebpf.Map
}

// spOffset is where pt_regs keeps the stack pointer: the read reads the probed frame.
func spOffset() int16 {
	if runtime.GOARCH == "arm64" {
		return 31 * 8
	}
	return 19 * 8
}

// zeroStack initialises n bytes below off on the BPF stack, as helpers that read it need.
func zeroStack(off int16, n int) asm.Instructions {
	var ins asm.Instructions
	for i := 0; i < n; i += 4 {
		ins = append(ins, asm.StoreImm(asm.RFP, off+int16(i), 0, asm.Word))
	}
	return ins
}

func stackPtr(dst asm.Register, off int16) asm.Instructions {
	return asm.Instructions{asm.Mov.Reg(dst, asm.RFP), asm.Add.Imm(dst, int32(off))}
}

func updateDelete(m *ebpf.Map) asm.Instructions {
	const key, val = -gkeySize, -gkeySize - opStateSize
	ins := zeroStack(key, gkeySize)
	ins = append(ins, zeroStack(val, opStateSize)...)
	ins = append(ins, asm.LoadMapPtr(asm.R1, m.FD()))
	ins = append(ins, stackPtr(asm.R2, key)...)
	ins = append(ins, stackPtr(asm.R3, val)...)
	ins = append(ins, asm.Mov.Imm(asm.R4, int32(ebpf.UpdateNoExist)), asm.FnMapUpdateElem.Call(), asm.LoadMapPtr(asm.R1, m.FD()))
	ins = append(ins, stackPtr(asm.R2, key)...)
	return append(ins, asm.FnMapDeleteElem.Call())
}

var calls = []call{
	{"empty program", func(maps) asm.Instructions { return nil }},
	{"clock (bpf_ktime_get_ns)", func(maps) asm.Instructions { return asm.Instructions{asm.FnKtimeGetNs.Call()} }},
	{"pid (bpf_get_current_pid_tgid)", func(maps) asm.Instructions { return asm.Instructions{asm.FnGetCurrentPidTgid.Call()} }},
	{"attach cookie", func(maps) asm.Instructions {
		return asm.Instructions{asm.Mov.Reg(asm.R1, asm.R6), asm.FnGetAttachCookie.Call()}
	}},
	{"read of target memory, 8 bytes", func(maps) asm.Instructions {
		ins := zeroStack(-8, 8)
		ins = append(ins, stackPtr(asm.R1, -8)...)
		return append(ins, asm.Mov.Imm(asm.R2, 8), asm.LoadMem(asm.R3, asm.R6, spOffset(), asm.DWord), asm.FnProbeReadUser.Call())
	}},
	{"hash map lookup (hit)", func(m maps) asm.Instructions {
		ins := asm.Instructions{asm.StoreImm(asm.RFP, -8, 7, asm.Word), asm.StoreImm(asm.RFP, -4, 0, asm.Word), asm.LoadMapPtr(asm.R1, m.pids.FD())}
		ins = append(ins, stackPtr(asm.R2, -8)...)
		return append(ins, asm.FnMapLookupElem.Call())
	}},
	{"LRU hash update + delete", func(m maps) asm.Instructions { return updateDelete(m.lru) }},
	{"hash update + delete", func(m maps) asm.Instructions { return updateDelete(m.hash) }},
	{"array slot claim + free (cmpxchg, xchg)", func(m maps) asm.Instructions {
		ins := asm.Instructions{asm.StoreImm(asm.RFP, -8, 0, asm.Word), asm.LoadMapPtr(asm.R1, m.slots.FD())}
		ins = append(ins, stackPtr(asm.R2, -8)...)
		return append(ins, asm.FnMapLookupElem.Call(), asm.JEq.Imm(asm.R0, 0, "out"),
			asm.Mov.Reg(asm.R7, asm.R0), asm.Mov.Imm(asm.R0, 0), asm.Mov.Imm(asm.R1, 1),
			asm.CmpXchg.Mem(asm.R7, asm.R1, asm.DWord, 0), asm.Mov.Imm(asm.R1, 0), asm.Xchg.Mem(asm.R7, asm.R1, asm.DWord, 0))
	}},
	{fmt.Sprintf("ring buffer reserve + submit, %d bytes", recordSize), func(m maps) asm.Instructions {
		return asm.Instructions{asm.LoadMapPtr(asm.R1, m.ring.FD()), asm.Mov.Imm(asm.R2, recordSize), asm.Mov.Imm(asm.R3, 0),
			asm.FnRingbufReserve.Call(), asm.JEq.Imm(asm.R0, 0, "out"), asm.Mov.Reg(asm.R1, asm.R0),
			asm.Mov.Imm(asm.R2, 1 /* BPF_RB_NO_WAKEUP */), asm.FnRingbufSubmit.Call()}
	}},
}

func program(m maps, c call) (*ebpf.Program, error) {
	ins := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	ins = append(ins, c.body(m)...)
	ins = append(ins, asm.Mov.Imm(asm.R0, 0).WithSymbol("out"), asm.Return())
	return ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.Kprobe, Instructions: ins, License: "GPL"})
}

// probed is the probed function; never inlined, so every call is a probe hit.
//
//go:noinline
func probed(x int) int { return x*3 + 1 }

// hits keeps probed's results, so no call of it is dead code.
var hits int

func newMaps() (maps, error) {
	var m maps
	var err error
	mk := func(spec *ebpf.MapSpec) *ebpf.Map {
		if err != nil {
			return nil
		}
		var mp *ebpf.Map
		mp, err = ebpf.NewMap(spec)
		return mp
	}
	m.pids = mk(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 8, ValueSize: 24, MaxEntries: 4096})
	m.lru = mk(&ebpf.MapSpec{Type: ebpf.LRUHash, KeySize: gkeySize, ValueSize: opStateSize, MaxEntries: 16384})
	m.hash = mk(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: gkeySize, ValueSize: opStateSize, MaxEntries: 16384})
	m.slots = mk(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 4096})
	m.ring = mk(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 1 << 23})
	if err != nil {
		return m, err
	}
	return m, m.pids.Put(uint64(7), make([]byte, 24))
}

func main() {
	rounds := flag.Int("rounds", 3, "rounds; each runs every program once")
	coldHits := flag.Int("cold-hits", 2000, "probe hits per program and round, cache-cold")
	warmHits := flag.Int("warm-hits", 50000, "probe hits per program and round, back to back")
	flag.Parse()
	log.SetFlags(0)
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		log.Fatalf("helpercost: enabling BPF run statistics: %v (run as root)", err)
	}
	defer stats.Close()
	m, err := newMaps()
	if err != nil {
		log.Fatalf("helpercost: creating maps: %v", err)
	}
	rd, err := ringbuf.NewReader(m.ring)
	if err != nil {
		log.Fatalf("helpercost: %v", err)
	}
	defer rd.Close()
	go func() {
		for {
			if _, err := rd.Read(); errors.Is(err, os.ErrClosed) {
				return
			}
		}
	}()
	ex, err := link.OpenExecutable("/proc/self/exe")
	if err != nil {
		log.Fatalf("helpercost: %v", err)
	}
	progs := make([]*ebpf.Program, len(calls))
	for i, c := range calls {
		if progs[i], err = program(m, c); err != nil {
			log.Fatalf("helpercost: loading %s: %v", c.name, err)
		}
	}
	evict := make([]byte, 8<<20)
	cold, warm := map[string][]float64{}, map[string][]float64{}
	for r := 0; r < *rounds; r++ {
		for i, c := range calls {
			for _, mode := range []struct {
				into map[string][]float64
				hits int
				cold bool
			}{{cold, *coldHits, true}, {warm, *warmHits, false}} {
				ns, err := nsPerRun(ex, progs[i], mode.hits, mode.cold, evict)
				if err != nil {
					log.Fatalf("helpercost: %s: %v", c.name, err)
				}
				mode.into[c.name] = append(mode.into[c.name], ns)
			}
		}
	}
	empty := calls[0].name
	fmt.Printf("BPF program time per call on %s/%s, %d rounds (median), beyond an empty program's (%0.f ns cold, %0.f ns warm per run):\n\n",
		runtime.GOOS, runtime.GOARCH, *rounds, median(cold[empty]), median(warm[empty]))
	fmt.Println("| call | cold ns | warm ns |")
	fmt.Println("|---|---:|---:|")
	for _, c := range calls[1:] {
		fmt.Printf("| %s | %.0f | %.0f |\n", c.name, median(cold[c.name])-median(cold[empty]), median(warm[c.name])-median(warm[empty]))
	}
}

// nsPerRun attaches p to probed, hits it n times and returns the program's ns per run.
func nsPerRun(ex *link.Executable, p *ebpf.Program, n int, cold bool, evict []byte) (float64, error) {
	l, err := ex.Uprobe("main.probed", p, nil)
	if err != nil {
		return 0, err
	}
	defer l.Close()
	before, err := p.Stats()
	if err != nil {
		return 0, err
	}
	for i := 0; i < n; i++ {
		hits += probed(i)
		if cold {
			for j := 0; j < len(evict); j += 64 {
				evict[j]++
			}
		}
	}
	after, err := p.Stats()
	if err != nil {
		return 0, err
	}
	runs := after.RunCount - before.RunCount
	if runs == 0 {
		return 0, fmt.Errorf("the probe never ran")
	}
	if hits == 0 {
		return 0, fmt.Errorf("the probed function never ran")
	}
	return float64(after.Runtime-before.Runtime) / float64(runs), nil
}

func median(x []float64) float64 {
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	return s[len(s)/2]
}
