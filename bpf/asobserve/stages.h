// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// Stages of an operation: timed stages, the per-node workers of batches, attempts, and
// the stage record.
#pragma once

#include "maps.h"

static __always_inline void emit_stage(__u32 tgid, __u8 stage, struct owner *own, __u64 start, __u64 end)
{
	__u64 wake;
	struct event_stage *ev = reserve(sizeof(*ev), &wake);
	if (!ev)
		return;
	ev->type = EVENT_STAGE;
	ev->stage = stage;
	ev->row = own->row;
	ev->flags = own->alt ? EVENT_ALTERNATE : 0;
	ev->tgid = tgid;
	ev->gen = own->gen;
	ev->op_id = own->op_id;
	ev->start = start;
	ev->end = end;
	bpf_ringbuf_submit(ev, wake);
}

// owner_of finds the operation a goroutine is working for: its own op, or the batch op
// whose per-node command it runs.
static __always_inline int owner_of(struct gkey *k, struct owner *own)
{
	struct op_state *st = goroutine_op(k);
	if (st) {
		own->op_id = st->op_id;
		own->row = st->row;
		own->alt = st->alt;
		own->gen = st->gen;
		return 1;
	}
	struct worker_state *w = bpf_map_lookup_elem(&workers, k);
	if (w) {
		*own = w->own;
		return 1;
	}
	return 0;
}

static __always_inline void stage_entry(struct regs *ctx, struct row *r, struct gkey *k, __u64 now)
{
	struct owner own;
	if (!owner_of(k, &own))
		return;
	struct stage_key sk = {.tgid = k->tgid, .stage = r->stage, .g = k->g};
	struct stage_state ss = {.start = now, .depth = frame_depth(ctx)};
	bpf_map_update_elem(&stages, &sk, &ss, BPF_ANY);
}

static __always_inline void stage_return(struct regs *ctx, struct row *r, struct gkey *k, __u64 now)
{
	struct stage_key sk = {.tgid = k->tgid, .stage = r->stage, .g = k->g};
	struct stage_state *ss = bpf_map_lookup_elem(&stages, &sk);
	if (!ss || ss->depth != frame_depth(ctx))
		return;
	__u64 start = ss->start;
	bpf_map_delete_elem(&stages, &sk);
	struct owner own;
	if (!owner_of(k, &own))
		return;
	emit_stage(k->tgid, r->stage, &own, start, now);
	if (r->flags & FLAG_SPAWN_AT_RET)
		bpf_map_update_elem(&spawns, &own.op_id, &now, BPF_ANY);
}

static __always_inline void link_entry(struct regs *ctx, struct row *r, struct gkey *k, __u64 now)
{
	__u64 recv = go_word(ctx, r->ptr_word);
	__u64 shared = read_u64(recv + r->off_corr);
	struct pkey pk = {.tgid = k->tgid, .ptr = shared};
	struct owner *own = bpf_map_lookup_elem(&corr, &pk);
	if (!own)
		return;
	struct worker_state ws = {.own = *own, .depth = frame_depth(ctx)};
	bpf_map_update_elem(&workers, k, &ws, BPF_ANY);
	__u64 *spawned = bpf_map_lookup_elem(&spawns, &own->op_id);
	if (spawned && *spawned <= now)
		emit_stage(k->tgid, STAGE_SCHEDULE_DELAY, &ws.own, *spawned, now);
}

static __always_inline void link_return(struct regs *ctx, struct gkey *k)
{
	struct worker_state *ws = bpf_map_lookup_elem(&workers, k);
	if (ws && ws->depth == frame_depth(ctx))
		bpf_map_delete_elem(&workers, k);
}

static __always_inline void attempt_entry(struct regs *ctx, struct row *r, struct gkey *k, __u64 now)
{
	struct owner own;
	if (!owner_of(k, &own))
		return;
	struct io_state *ios = bpf_map_lookup_elem(&io, k);
	if (ios) {
		// The previous attempt of this op never reached parse end: it failed; close it here.
		if (ios->attempt_start && ios->op_id == own.op_id)
			emit_stage(k->tgid, STAGE_ATTEMPT, &own, ios->attempt_start, now);
		ios->op_id = own.op_id;
		ios->attempt_start = now;
		ios->io_start = 0;
		ios->parse_start = 0;
	} else {
		struct io_state fresh = {.op_id = own.op_id, .attempt_start = now};
		bpf_map_update_elem(&io, k, &fresh, BPF_ANY);
	}
	stage_entry(ctx, r, k, now);
}
