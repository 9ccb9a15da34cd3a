//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// asobserve uprobe programs. Two programs serve every probe: probe_entry on a function's
// entry point and probe_return on each of its RET instructions. The attach cookie is an
// index into `rows`, which the agent fills from its declarative probe table: what the
// function is (operation, stage, helper) and where its arguments live for this binary.
//
// Go specifics: arguments are in the register ABI (words), the goroutine pointer g is in
// R14 (amd64) / X28 (arm64), and stacks move. A frame is identified by its distance from
// the top of its goroutine stack (g.stack.hi - SP), which stack copying preserves.
//
// The concerns live in asobserve/*.h; this one compile unit holds the programs.

#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#include "asobserve/types.h"
#include "asobserve/arch.h"
#include "asobserve/maps.h"
#include "asobserve/ops.h"
#include "asobserve/stages.h"
#include "asobserve/spans.h"

static __always_inline int handle_entry(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_ns();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct target *tgt = watched(tgid);
	if (!tgt)
		return 0;
	struct regs R = {};
	load_regs(ctx, &R);
	R.cookie = bpf_get_attach_cookie(ctx);
	struct row *r = row_of(&R);
	if (!r)
		return 0;
	struct gkey k = {.tgid = tgid, .g = GO_G(&R)};

	switch (r->kind) {
	case KIND_OP:
	case KIND_ASYNC_START:
		return op_entry(&R, r, &k, tgt, now);
	case KIND_ASYNC_WORKER:
		return async_worker_entry(&R, r, &k, tgt, now);
	case KIND_ERRSINK:
		errsink(&R, r, &k);
		return 0;
	case KIND_STREAM_END:
		stream_end(&R, r, &k, now);
		return 0;
	case KIND_STAGE:
		stage_entry(&R, r, &k, now);
		return 0;
	case KIND_LINK:
		link_entry(&R, r, &k, now);
		return 0;
	case KIND_ATTEMPT:
		attempt_entry(&R, r, &k, now);
		return 0;
	case KIND_SPAN_END:
		span_end(&R, &k);
		return 0;
	case KIND_SPAWN: {
		__u64 creator = go_word(&R, 1);
		bpf_map_update_elem(&spawning, &k, &creator, BPF_ANY);
		return 0;
	}
	case KIND_IO_WRITE: {
		if (r->flags & FLAG_NODE)
			note_node(&R, r, &k);
		struct io_state *ios = bpf_map_lookup_elem(&io, &k);
		if (ios && !ios->io_start)
			ios->io_start = now;
		return 0;
	}
	}
	return 0;
}

// Returns need no pid filter: every state a return reads, its process's entry probes made
// while it was watched, and the agent deletes a process's state when it stops watching it
// (releaseProcessState). Only span starts make state at a return, and filter there.
static __always_inline int handle_return(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_ns();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct regs R = {};
	load_regs(ctx, &R);
	R.cookie = bpf_get_attach_cookie(ctx);
	struct row *r = row_of(&R);
	if (!r)
		return 0;
	struct gkey k = {.tgid = tgid, .g = GO_G(&R)};

	switch (r->kind) {
	case KIND_OP:
	case KIND_ASYNC_START:
	case KIND_ASYNC_WORKER:
		return op_return(&R, r, &k, now);
	case KIND_STAGE:
	case KIND_ATTEMPT:
		stage_return(&R, r, &k, now);
		return 0;
	case KIND_LINK:
		link_return(&R, &k);
		return 0;
	case KIND_ERRSINK: // at sendError's sends, not its RETs (FLAG_AT_SEND)
		errsink_sent(&k);
		return 0;
	case KIND_SPAN_START:
		if (watched(tgid))
			span_start(&R, r, &k);
		return 0;
	case KIND_SPAWN:
		spawn_return(&R, &k);
		return 0;
	case KIND_IO_READ: {
		struct io_state *ios = bpf_map_lookup_elem(&io, &k);
		if (ios && ios->io_start && !ios->parse_start) {
			struct owner own;
			if (owner_of(&k, &own))
				emit_stage(tgid, STAGE_IO, &own, ios->io_start, now);
			ios->parse_start = now;
		}
		return 0;
	}
	case KIND_PARSE_END: {
		struct io_state *ios = bpf_map_lookup_elem(&io, &k);
		if (!ios)
			return 0;
		struct owner own;
		if (owner_of(&k, &own)) {
			if (ios->parse_start)
				emit_stage(tgid, STAGE_PARSE, &own, ios->parse_start, now);
			if (ios->attempt_start)
				emit_stage(tgid, STAGE_ATTEMPT, &own, ios->attempt_start, now);
		}
		bpf_map_delete_elem(&io, &k);
		return 0;
	}
	}
	return 0;
}

// Each program exists twice: one multi-uprobe link attaches a whole executable at once
// (kernel >= 6.6, and far fewer RCU grace periods to wait for than one perf event per
// probe), and the single-uprobe form is the fallback for older kernels.
SEC("uprobe")
int probe_entry(struct pt_regs *ctx)
{
	return handle_entry(ctx);
}

SEC("uprobe.multi")
int probe_entry_multi(struct pt_regs *ctx)
{
	return handle_entry(ctx);
}

SEC("uprobe")
int probe_return(struct pt_regs *ctx)
{
	return handle_return(ctx);
}

SEC("uprobe.multi")
int probe_return_multi(struct pt_regs *ctx)
{
	return handle_return(ctx);
}

// Floor programs for the benchmark: the same probe points with programs that do nothing.
SEC("uprobe")
int probe_empty(struct pt_regs *ctx)
{
	return 0;
}

SEC("uprobe.multi")
int probe_empty_multi(struct pt_regs *ctx)
{
	return 0;
}

// A watched process's thread-group leader exits (a Go program's leader lives until the
// process does): it is no longer watched, so a new process that reuses the pid is not
// counted as this one before the agent attaches it.
SEC("raw_tracepoint/sched_process_exit")
int on_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if ((__u32)id != tgid)
		return 0;
	struct pid_slot *s = pid_slot_of(tgid);
	if (s)
		__sync_val_compare_and_swap(&s->tgid, (__u64)tgid, 0);
	bpf_map_delete_elem(&pids, &tgid);
	return 0;
}
