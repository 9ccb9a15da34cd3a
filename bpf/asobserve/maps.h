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

// The pid filter. A watched process is mostly in pid_slots, at the low bits of its tgid:
// an array lookup is inlined where a hash lookup is a helper call, and every entry probe
// of every process that runs the probed code asks. One whose slot another process holds,
// or that took a pid its slot still holds for an older process, is in pids. User space
// writes a slot's target while its tgid is 0, then the tgid with the same target, and
// frees it by writing 0 over the tgid alone: a program that found the tgid reads a whole
// target.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, PID_SLOTS);
	__type(key, __u32);
	__type(value, struct pid_slot);
} pid_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct target);
} pids SEC(".maps");

// pid_slot_mask picks a tgid's slot; the agent may narrow it (tests make every pid share
// one slot).
volatile const __u32 pid_slot_mask = PID_SLOTS - 1;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, MAX_EXES);
	__type(key, __u32);
	__type(value, struct nest_ranges);
} nested SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, MAX_ROWS);
	__type(key, __u32);
	__type(value, struct row);
} rows SEC(".maps");

// In-flight ops. A goroutine's op lives in the slot its (tgid, g) hashes to: its entry
// claims the slot with one compare-and-swap and its return frees it, where a hash map's
// update and delete cost the programs about 0.7 us per op more (cache-cold, measured).
// An op whose slot another goroutine holds goes to inflight, and the slot's count in
// op_spills, never below the number of such entries, tells its goroutine to look there.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1 << OP_SLOT_BITS);
	__type(key, __u32);
	__type(value, struct op_slot);
} op_slots SEC(".maps");

// Apart from op_slots, so that user space can free a dead process's slots whole.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << OP_SLOT_BITS);
	__type(key, __u32);
	__type(value, __u64);
} op_spills SEC(".maps");

// Operations whose slot another goroutine held, by goroutine. A plain hash: LRU eviction is
// approximate by design and may take an entry that is still live, and an evicted entry is
// an operation lost. An entry stays behind only when its goroutine never returns (a panic,
// a killed process): the goroutine's next op replaces it, and a process's entries go with
// its state.
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

// The error each goroutine's sendError call holds between its entry and its send: the
// client drops the errors sent to a closed recordset, and only one it sends on is the op's.
// An LRU: an entry is read within microseconds of being written, or, when the client drops
// the error, never, and then it waits for the goroutine's next error to replace it.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct gkey);
	__type(value, struct unsent_error);
} unsent_errors SEC(".maps");

// When the stream of an old client's per-node query ended, by recordset, while its start
// call had not returned (ops.h, end_per_node_stream). An LRU: QueryAggregate, which is not
// counted, ends its streams through the same workers and leaves its ends here to be
// evicted; a counted op's end is read within microseconds of being written.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct pkey);
	__type(value, __u64);
} early_ends SEC(".maps");

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

// A program stays on its CPU (migration is disabled while it runs) but, where the kernel
// preempts (preempt=full or lazy), another task's run of it may come in between on that
// CPU: a per-CPU count is therefore taken with an atomic add, uncontended and cheap, so
// that no record goes uncounted and no op id is given twice.

// reserve takes a record from the ring, counting it produced, or lost if the ring is full.
// *wake says whether its submit should wake the agent.
static __always_inline void *reserve(__u64 size, __u64 *wake)
{
	__u64 *produced = counter(0);
	__u64 n = 0;
	if (produced)
		n = __sync_fetch_and_add(produced, 1) + 1;
	*wake = n % wakeup_every == 0 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	void *p = bpf_ringbuf_reserve(&events, size, 0);
	if (!p) {
		__u64 *lost = counter(1);
		if (lost)
			__sync_fetch_and_add(lost, 1);
	}
	return p;
}

static __always_inline struct row *row_of(struct regs *R)
{
	__u32 idx = (__u32)R->cookie;
	return bpf_map_lookup_elem(&rows, &idx);
}

static __always_inline struct pid_slot *pid_slot_of(__u32 tgid)
{
	__u32 idx = tgid & pid_slot_mask;
	return bpf_map_lookup_elem(&pid_slots, &idx);
}

static __always_inline struct target *watched(__u32 tgid)
{
	struct pid_slot *s = pid_slot_of(tgid);
	if (s && s->tgid == tgid)
		return &s->t;
	return bpf_map_lookup_elem(&pids, &tgid);
}

// next_op_id is unique within the agent and never 0: a CPU's own count above, the CPU
// below.
static __always_inline __u64 next_op_id(void)
{
	__u32 zero = 0;
	__u64 *v = bpf_map_lookup_elem(&seq, &zero);
	if (!v)
		return 0;
	return ((__sync_fetch_and_add(v, 1) + 1) << 16) | (bpf_get_smp_processor_id() & 0xffff);
}

// live_op finds the goroutine's in-flight op, in its slot (*in_slot) or spilled to
// inflight, and returns NULL if it has none; *slot and *spills are its slot's, NULL only
// if the maps fail. The owner is read by an atomic operation, a full barrier: the g read
// after it is never older than the owner's claim, so a slot that another goroutine of the
// process is claiming never reads as this one's.
static __always_inline struct op_state *live_op(struct gkey *k, struct op_slot **slot, __u64 **spills, int *in_slot)
{
	__u32 idx = (__u32)(((k->g ^ ((__u64)k->tgid << 32)) * 0x9E3779B97F4A7C15ULL) >> (64 - OP_SLOT_BITS));
	*in_slot = 0;
	*slot = bpf_map_lookup_elem(&op_slots, &idx);
	*spills = bpf_map_lookup_elem(&op_spills, &idx);
	struct op_slot *s = *slot;
	__u64 *n = *spills;
	if (!s || !n)
		return NULL;
	if (__sync_fetch_and_or(&s->owner, 0) == k->tgid && s->g == k->g) {
		*in_slot = 1;
		return &s->st;
	}
	if (*n)
		return bpf_map_lookup_elem(&inflight, k);
	return NULL;
}

// goroutine_op is the goroutine's in-flight op, for a reader that neither stores nor drops it.
static __always_inline struct op_state *goroutine_op(struct gkey *k)
{
	struct op_slot *slot;
	__u64 *spills;
	int in_slot;
	return live_op(k, &slot, &spills, &in_slot);
}

// store_op makes *st the goroutine's in-flight op: over cur, the one live_op found, or
// in the free slot, or spilled.
static __always_inline void store_op(struct gkey *k, struct op_slot *s, __u64 *spills, struct op_state *cur, struct op_state *st)
{
	if (cur) {
		*cur = *st;
		return;
	}
	if (__sync_val_compare_and_swap(&s->owner, 0, (__u64)k->tgid) == 0) {
		s->g = k->g;
		s->st = *st;
		return;
	}
	if (bpf_map_update_elem(&inflight, k, st, BPF_NOEXIST) == 0)
		__sync_fetch_and_add(spills, 1);
}

// drop_op ends the goroutine's in-flight op that live_op found.
static __always_inline void drop_op(struct gkey *k, struct op_slot *s, __u64 *spills, int in_slot)
{
	if (in_slot) {
		s->g = 0;
		__sync_lock_test_and_set(&s->owner, 0); // an exchange: g is clear before the slot is free
		return;
	}
	if (bpf_map_delete_elem(&inflight, k) == 0)
		__sync_fetch_and_sub(spills, 1);
}
