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

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
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

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct gkey);
	__type(value, struct op_state);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
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

// Waking the agent for every record costs the target a wakeup per operation. Records are
// submitted without a wakeup until this many bytes wait; the agent also polls on a short
// timer. Set by the agent at load time (a fraction of the ring size).
volatile const __u64 wakeup_bytes = 1 << 20;

static __always_inline void submit(void *rec)
{
	__u64 flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(rec, flags);
}

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);
	if (v)
		*v += 1;
}

static __always_inline void *reserve(__u64 size)
{
	count(0);
	void *p = bpf_ringbuf_reserve(&events, size, 0);
	if (!p)
		count(1);
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

static __always_inline __u64 next_op_id(void)
{
	__u32 zero = 0;
	__u64 *v = bpf_map_lookup_elem(&seq, &zero);
	if (!v)
		return 0;
	return __sync_fetch_and_add(v, 1) + 1;
}
