// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// The maps, the load-time constant and the ring-buffer and map helpers every concern uses.
#pragma once

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "types.h"
#include "arch.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 23);
} events SEC(".maps");

// counters[0]: records produced (reserve attempted), counters[1]: records lost (reserve failed)
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

// Per-CPU operation counters: an id is a CPU's count and the CPU, so no two CPUs ever
// contend for one counter.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} seq SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct target);
} pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_EXES);
	__type(key, __u32);
	__type(value, struct nest_ranges);
} nested SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_ROWS);
	__type(key, __u32);
	__type(value, struct row);
} rows SEC(".maps");

// Operations in flight, by goroutine. A plain hash: LRU eviction is approximate by design
// and may take an entry that is still live, and an evicted entry is an operation lost.
// An entry stays behind only when its goroutine never returns (a panic, a killed process):
// the goroutine's next op replaces it, and a process's entries go with its state.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct gkey);
	__type(value, struct op_state);
} inflight SEC(".maps");

// Scans and queries in flight, by recordset. A plain hash, not an LRU one: LRU eviction is
// approximate by design and may take an entry that is still live, and an evicted scan is
// an operation lost. Every entry is deleted when its op ends, or with its process's state.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct pkey);
	__type(value, struct op_state);
} async_ops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct pkey);
	__type(value, struct owner);
} corr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct gkey);
	__type(value, struct worker_state);
} workers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct stage_key);
	__type(value, struct stage_state);
} stages SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct gkey);
	__type(value, struct io_state);
} io SEC(".maps");

// The app's own OTel spans live on each goroutine, and which goroutine each span started on.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct gkey);
	__type(value, struct app_spans);
} app_spans SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct pkey);
	__type(value, __u64);
} span_goroutine SEC(".maps");

// The creating goroutine of each newproc1 call in flight, keyed by the g0 it runs on.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct gkey);
	__type(value, __u64);
} spawning SEC(".maps");

// Never written: the zero value app_spans entries start from (too big for the stack).
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct app_spans);
} no_spans SEC(".maps");

// spawn time of the last worker goroutine started for an op, keyed by op id.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u64);
} spawns SEC(".maps");

// Waking the agent for every record costs the target a wakeup per operation. Each CPU
// submits without a wakeup but every this many records it produces; the agent sets it at
// load time so that all CPUs together leave at most a fraction of the ring unannounced,
// and it also polls on a short timer. Counting the records the CPU already counts costs
// nothing, where asking the ring how full it is costs a helper call per record.
volatile const __u64 wakeup_every = 1024;

// counter returns this CPU's counters[idx].
static __always_inline __u64 *counter(__u32 idx)
{
	return bpf_map_lookup_elem(&counters, &idx);
}

// reserve takes a record from the ring, counting it produced, or lost if the ring is full.
// *wake says whether its submit should wake the agent.
static __always_inline void *reserve(__u64 size, __u64 *wake)
{
	__u64 *produced = counter(0);
	__u64 n = 0;
	if (produced)
		n = ++*produced;
	*wake = n % wakeup_every == 0 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	void *p = bpf_ringbuf_reserve(&events, size, 0);
	if (!p) {
		__u64 *lost = counter(1);
		if (lost)
			*lost += 1;
	}
	return p;
}

static __always_inline struct row *row_of(struct regs *R)
{
	__u32 idx = (__u32)R->cookie;
	return bpf_map_lookup_elem(&rows, &idx);
}

static __always_inline struct target *watched(__u32 tgid)
{
	return bpf_map_lookup_elem(&pids, &tgid);
}

// next_op_id is unique within the agent and never 0: a CPU's own count above, the CPU
// below (a program runs on one CPU from start to end, so the count needs no atomics).
static __always_inline __u64 next_op_id(void)
{
	__u32 zero = 0;
	__u64 *v = bpf_map_lookup_elem(&seq, &zero);
	if (!v)
		return 0;
	return (++*v << 16) | (bpf_get_smp_processor_id() & 0xffff);
}
