// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// Operations: entry and return of a data operation, async (scan/query) operations and their
// error sink, where namespace and set are located, the returned error, the op's node, and
// the op record.
#pragma once

#include "maps.h"

static __always_inline int in_ranges(struct addr_range *r, int n, __u64 pc)
{
	for (int i = 0; i < n; i++) {
		if (!r[i].hi)
			return 0;
		if (pc >= r[i].lo && pc < r[i].hi)
			return 1;
	}
	return 0;
}

// called_from_client reports whether the caller is one of the nested-caller functions,
// or is a public operation (Operate, for operate) whose own caller is one: that
// operation's entry was skipped as nested. Reads of target memory are the programs'
// dearest calls: the caller's caller is read only behind such an operation.
static __always_inline int called_from_client(struct regs *R, struct target *t)
{
	struct nest_ranges *nr = bpf_map_lookup_elem(&nested, &t->exe);
	if (!nr)
		return 0;
	__u64 caller = return_address(R) - t->bias;
	if (in_ranges(nr->callers, NEST_RANGES, caller))
		return 1;
	if (!in_ranges(nr->callees, NEST_CALLEES, caller))
		return 0;
#if defined(__TARGET_ARCH_x86)
	// Go keeps frame pointers: the caller's return address is at [BP+8].
	if (R->fp && in_ranges(nr->callers, NEST_RANGES, read_u64(R->fp + 8) - t->bias))
		return 1;
#endif
	return 0;
}

static __always_inline void locate(struct regs *ctx, struct row *r, struct op_state *st)
{
	__u64 obj = 0;
	__u64 w = go_word(ctx, r->loc_word);

	switch (r->loc) {
	case LOC_KEY:
	case LOC_STMT:
		obj = w;
		break;
	case LOC_KEY_SLICE:
		if (go_word(ctx, r->loc_word + 1) > 0)
			obj = read_u64(w);
		break;
	case LOC_BREC_PTR_SLICE:
		if (go_word(ctx, r->loc_word + 1) > 0)
			obj = read_u64(read_u64(w) + r->off_key);
		break;
	case LOC_BREC_IFACE_SLICE:
		if (go_word(ctx, r->loc_word + 1) > 0)
			obj = read_u64(read_u64(w + 8) + r->off_key);
		break;
	case LOC_STRINGS:
		st->ns_ptr = w;
		st->ns_len = go_word(ctx, r->loc_word + 1);
		st->set_ptr = go_word(ctx, r->loc_word + 2);
		st->set_len = go_word(ctx, r->loc_word + 3);
		return;
	default:
		return;
	}
	if (!obj)
		return;
	// Reads of target memory are the programs' dearest calls: the set's string header
	// mostly follows the namespace's (Key, Statement), and then one read takes both.
	__u64 hdr[4] = {};
	if (r->off_set == r->off_ns + 16) {
		bpf_probe_read_user(hdr, sizeof(hdr), (void *)(obj + r->off_ns));
	} else {
		bpf_probe_read_user(hdr, 16, (void *)(obj + r->off_ns));
		bpf_probe_read_user(&hdr[2], 16, (void *)(obj + r->off_set));
	}
	st->ns_ptr = hdr[0];
	st->ns_len = hdr[1];
	st->set_ptr = hdr[2];
	st->set_len = hdr[3];
}

// read_error fills code/cause from the Error interface starting at word err_word.
static __always_inline void read_error(struct regs *ctx, struct row *r, struct op_state *st)
{
	if (r->err_word == NO_WORD)
		return;
	__u64 itab = go_word(ctx, r->err_word);
	__u64 data = go_word(ctx, r->err_word + 1);
	if (!itab)
		return;
	st->failed = 1;
	if (!data)
		return;
	__s64 code = (__s64)read_u64(data + r->off_err_code);
	st->code = (__s32)code;
	st->cause = (__s32)code;
	if (code == -16) { // MAX_RETRIES_EXCEEDED: classify by the wrapped cause
		__u64 inner = read_u64(data + r->off_err_wrapped + 8);
		if (inner)
			st->cause = (__s32)(__s64)read_u64(inner + r->off_err_code);
	}
}

// static_name says whether the name of len bytes at *ptr lies in the executable's
// read-only data (a string constant, the common case), and then makes *ptr its link-time
// address: the record carries that instead of the bytes, and user space reads the name
// from the file, which saves a read of target memory, among the programs' dearest calls.
static __always_inline __u8 static_name(struct target *t, __u64 *ptr, __u64 len, __u64 max)
{
	__u64 off = *ptr - t->bias - t->ro_lo;
	if (!*ptr || off >= t->ro_size || len >= max || off + len > t->ro_size)
		return 0;
	*ptr -= t->bias;
	return 1;
}

static __always_inline void static_names(struct target *t, struct op_state *st)
{
	if (static_name(t, &st->ns_ptr, st->ns_len, NS_MAX))
		st->static_names |= EVENT_NS_STATIC;
	if (static_name(t, &st->set_ptr, st->set_len, SET_MAX))
		st->static_names |= EVENT_SET_STATIC;
}

// copy_name fills a record's name field of max bytes (a power of two): with a static
// name's address, or with its bytes read from target memory, truncated to max - 1.
static __always_inline __u8 copy_name(char *dst, __u64 ptr, __u64 len, __u64 max, int is_static)
{
	__u64 n = len > max - 1 ? max - 1 : len;
	if (is_static) {
		*(__u64 *)dst = ptr;
		return n;
	}
	if (ptr && n > 0 && bpf_probe_read_user(dst, n & (max - 1), (void *)ptr) == 0)
		return n;
	return 0;
}

// fill_op fills the fields of an op record that every record has.
static __always_inline void fill_op(struct event_op *ev, struct op_state *st, __u32 tgid, __u64 end)
{
	ev->type = EVENT_OP;
	ev->flags = (st->failed ? EVENT_FAILED : 0) | (st->alt ? EVENT_ALTERNATE : 0) | st->static_names;
	ev->tgid = tgid;
	ev->row = st->row;
	ev->pad = 0;
	ev->code = st->code;
	ev->cause = st->cause;
	ev->gen = st->gen;
	ev->op_id = st->op_id;
	ev->start = st->start;
	ev->end = end;
	ev->node = st->node;
	ev->ns_len = copy_name(ev->ns, st->ns_ptr, st->ns_len, NS_MAX, st->static_names & EVENT_NS_STATIC);
}

static __always_inline void emit_op(struct op_state *st, __u32 tgid, __u64 end)
{
	__u64 wake;
	struct event_op *ev;
	// A span id is never zero: the op had a parent span if its id is not.
	if ((st->static_names & EVENT_SET_STATIC) && !*(__u64 *)st->parent.span_id) {
		ev = reserve(OP_RECORD_SHORT, &wake);
		if (!ev)
			return;
		fill_op(ev, st, tgid, end);
		*(__u64 *)ev->set = st->set_ptr;
		ev->set_len = st->set_len; // static_name took only names shorter than SET_MAX
		bpf_ringbuf_submit(ev, wake);
		return;
	}
	ev = reserve(sizeof(*ev), &wake);
	if (!ev)
		return;
	fill_op(ev, st, tgid, end);
	ev->set_len = copy_name(ev->set, st->set_ptr, st->set_len, SET_MAX, st->static_names & EVENT_SET_STATIC);
	ev->parent = st->parent;
	bpf_ringbuf_submit(ev, wake);
}

static __always_inline int op_entry(struct regs *ctx, struct row *r, struct gkey *k, struct target *t, __u64 now)
{
	// Only the operations nested callers call can be called by one; the check reads
	// target memory, so the others skip it.
	if ((r->flags & FLAG_NESTED_CALLEE) && called_from_client(ctx, t))
		return 0;
	__u64 depth = frame_depth(ctx);

	struct op_state st = {};
	st.op_id = next_op_id();
	st.start = now;
	st.depth = depth;
	st.sp = GO_SP(ctx);
	st.row = (__u16)ctx->cookie;
	st.gen = t->gen;
	if (r->alt_word != NO_WORD && go_word(ctx, r->alt_word) > 0)
		st.alt = 1;
	if (t->flags & TARGET_APP_SPANS) {
		struct app_spans *live = bpf_map_lookup_elem(&app_spans, k);
		if (live && live->depth > 0 && live->depth <= SPAN_DEPTH)
			st.parent = live->sc[(live->depth - 1) & (SPAN_DEPTH - 1)];
	}
	locate(ctx, r, &st);
	static_names(t, &st);
	if (r->flags & FLAG_CORR)
		st.corr = go_word(ctx, r->loc_word);
	// Mostly no op is live on this goroutine. Otherwise a deeper frame of a live op is a
	// nested call (Operate -> operate): it belongs to the outer op. Older entries are
	// leftovers of a panic, or of the pid's previous process.
	struct op_slot *slot;
	__u64 *spills;
	int in_slot;
	struct op_state *cur = live_op(k, &slot, &spills, &in_slot);
	if (!slot || !spills)
		return 0;
	if (cur && cur->gen == st.gen && depth > cur->depth && now - cur->start < STALE_NS) {
		cur->shadowed = 1;
		return 0;
	}
	store_op(k, slot, spills, cur, &st);
	if (st.corr) {
		struct pkey pk = {.tgid = k->tgid, .ptr = st.corr};
		struct owner own = {.op_id = st.op_id, .row = st.row, .alt = st.alt, .gen = st.gen};
		bpf_map_update_elem(&corr, &pk, &own, BPF_ANY);
	}
	return 0;
}

// live_workers reads the count of the recordset's workers that have not called signalEnd.
static __always_inline __u64 live_workers(struct row *r, __u64 rs)
{
	return read_u64(read_u64(rs + r->off_remaining));
}

// finish_async records the async op at pk, which has both started and ended, and drops
// its state.
static __always_inline void finish_async(struct pkey *pk, struct op_state *async)
{
	__u64 op_id = async->op_id;
	emit_op(async, pk->tgid, async->ended);
	bpf_map_delete_elem(&async_ops, pk);
	bpf_map_delete_elem(&corr, pk);
	bpf_map_delete_elem(&spawns, &op_id);
}

// end_stream: the stream of the async op at pk ended at now. A stream is ended where its
// last worker is about to close it and again where that worker returns, whichever is seen
// (a process that exits once it read the last record may never run the worker's return):
// the first end counts. The op ends at whichever of its start call's return and its first
// end comes second: the atomic or that completes the pair.
static __always_inline void end_stream(struct pkey *pk, __u64 now)
{
	struct op_state *async = bpf_map_lookup_elem(&async_ops, pk);
	if (!async)
		return;
	__sync_val_compare_and_swap(&async->ended, 0, now);
	// An atomic or is a full barrier: the end time is in place before the start call's
	// return can see the phase.
	__u64 was = __sync_fetch_and_or(&async->phase, ASYNC_ENDED);
	if (was & ASYNC_ENDED)
		return;
	if (!(was & ASYNC_STARTED)) {
		// The stream ended before the start call returned: that return ends the op.
		bpf_map_delete_elem(&corr, pk);
		return;
	}
	finish_async(pk, async);
}

// end_per_node_stream: the stream of an old client's per-node query ended at now. Its op
// has no state until the start call returns; an end before that is noted in early_ends,
// where that return finds it. Each side writes, fences, then reads what the other writes,
// so at least one sees the other; the phase bits let only one end the op.
static __always_inline void end_per_node_stream(struct pkey *pk, __u64 now)
{
	if (bpf_map_lookup_elem(&async_ops, pk)) {
		end_stream(pk, now);
		return;
	}
	// Over any note an earlier stream of a recordset at this address left.
	bpf_map_update_elem(&early_ends, pk, &now, BPF_ANY);
	__u64 *noted = bpf_map_lookup_elem(&early_ends, pk);
	if (noted)
		__sync_fetch_and_or(noted, 0); // a full barrier: the note before the read below
	if (bpf_map_lookup_elem(&async_ops, pk)) {
		end_stream(pk, now);
		bpf_map_delete_elem(&early_ends, pk);
	}
}

// stream_ended_early: the start call of the async op at pk has returned and made its
// state: an old client's per-node stream may have ended before, noted in early_ends.
static __always_inline void stream_ended_early(struct pkey *pk)
{
	struct op_state *op = bpf_map_lookup_elem(&async_ops, pk);
	if (!op)
		return;
	__sync_fetch_and_or(&op->phase, 0); // a full barrier: the state before the read below
	__u64 *ended = bpf_map_lookup_elem(&early_ends, pk);
	if (!ended)
		return;
	__u64 at = *ended;
	bpf_map_delete_elem(&early_ends, pk);
	// A recordset's address is reused once it is freed: an end noted before this op began
	// is an earlier stream's (a QueryAggregate's, or one that two last workers ended).
	if (at >= op->start)
		end_stream(pk, at);
}

// async_started: a scan or query call returned recordset rs. From here its workers end the
// op, and per-node commands that share the recordset find it (link rows). A worker that
// ran first made the op's state: the op began at the call, though, and its id stays the
// worker's, which the worker's stages already carry.
static __always_inline void async_started(struct op_state *st, __u64 rs, __u32 tgid)
{
	struct pkey pk = {.tgid = tgid, .ptr = rs};
	struct op_state *early = bpf_map_lookup_elem(&async_ops, &pk);
	if (!early) {
		st->phase = ASYNC_STARTED;
		if (bpf_map_update_elem(&async_ops, &pk, st, BPF_NOEXIST) == 0) {
			struct owner own = {.op_id = st->op_id, .row = st->row, .alt = st->alt, .gen = st->gen};
			bpf_map_update_elem(&corr, &pk, &own, BPF_ANY);
			stream_ended_early(&pk);
			return;
		}
		// A worker made the op's state since the lookup.
		early = bpf_map_lookup_elem(&async_ops, &pk);
		if (!early)
			return;
	}
	early->start = st->start;
	early->row = st->row;
	early->parent = st->parent;
	early->alt = st->alt;
	early->gen = st->gen;
	if (!early->ns_ptr && !early->set_ptr) {
		early->ns_ptr = st->ns_ptr;
		early->ns_len = st->ns_len;
		early->set_ptr = st->set_ptr;
		early->set_len = st->set_len;
		early->static_names = st->static_names;
	}
	// An atomic or is a full barrier: the fields above are in place before a worker that
	// ends the stream later sees the phase, and the end time before this return sees it.
	if (__sync_fetch_and_or(&early->phase, ASYNC_STARTED) & ASYNC_ENDED) {
		finish_async(&pk, early);
		return;
	}
	struct owner own = {.op_id = early->op_id, .row = early->row, .alt = early->alt, .gen = early->gen};
	bpf_map_update_elem(&corr, &pk, &own, BPF_ANY);
}

// stream_end: signalEnd's entry, on clients whose counted scans and queries have one
// worker: it closes the stream.
static __always_inline void stream_end(struct regs *ctx, struct row *r, struct gkey *k, __u64 now)
{
	struct pkey pk = {.tgid = k->tgid, .ptr = go_word(ctx, r->ptr_word)};
	end_stream(&pk, now);
}

static __always_inline int op_return(struct regs *ctx, struct row *r, struct gkey *k, __u64 now)
{
	struct op_slot *slot;
	__u64 *spills;
	int in_slot;
	struct op_state *cur = live_op(k, &slot, &spills, &in_slot);
	if (!cur || !slot || !spills)
		return 0;
	// The return of the call that made the op is mostly at the entry's SP on an unmoved
	// stack, in the same row: then it needs no read of g.stack.hi. Any other return (a
	// nested call's, an async worker's, one after the stack moved) is told by frame depth.
	int same_frame = cur->row == (__u16)ctx->cookie && cur->sp == GO_SP(ctx) && !cur->shadowed;
	if (!same_frame && cur->depth != frame_depth(ctx))
		return 0;
	struct op_state st = *cur;
	drop_op(k, slot, spills, in_slot);
	if (st.corr) {
		struct pkey pk = {.tgid = k->tgid, .ptr = st.corr};
		bpf_map_delete_elem(&corr, &pk);
		bpf_map_delete_elem(&spawns, &st.op_id);
	}
	read_error(ctx, r, &st);
	if (r->kind == KIND_ASYNC_START && !st.failed) {
		__u64 rs = go_word(ctx, r->ptr_word);
		if (rs) {
			async_started(&st, rs, k->tgid);
			return 0;
		}
	}
	if (r->kind == KIND_ASYNC_WORKER) {
		// One of several workers (per-node queries of old clients): the last one to leave
		// ends the stream. Any that reads zero may end it; the first does, and the others
		// find the op gone.
		if ((r->flags & FLAG_LAST_WORKER) && live_workers(r, st.rs) != 0)
			return 0;
		struct pkey pk = {.tgid = k->tgid, .ptr = st.rs};
		if (r->flags & FLAG_LAST_WORKER)
			end_per_node_stream(&pk, now);
		else
			end_stream(&pk, now);
		return 0;
	}
	emit_op(&st, k->tgid, now);
	return 0;
}

// The scan/query goroutine: its return ends the op. The op's state lives in async_ops,
// keyed by recordset, so that errors sent by any goroutine reach it.
static __always_inline int async_worker_entry(struct regs *ctx, struct row *r, struct gkey *k, struct target *t, __u64 now)
{
	__u64 rs = go_word(ctx, r->ptr_word);
	struct pkey pk = {.tgid = k->tgid, .ptr = rs};
	if (r->flags & FLAG_LAST_WORKER) {
		// One of an old client's per-node query workers, which QueryAggregate (not
		// counted) runs too: they make no op state, lest every aggregation leave one
		// behind. The last one's signalEnd closes the stream.
		if (live_workers(r, rs) == 1) {
			end_per_node_stream(&pk, now);
			return 0;
		}
	} else if (!bpf_map_lookup_elem(&async_ops, &pk)) {
		// The starting call has not returned yet (or was not seen): time from here.
		struct op_state fresh = {};
		fresh.op_id = next_op_id();
		fresh.start = now;
		fresh.row = (__u16)ctx->cookie;
		fresh.gen = t->gen;
		locate(ctx, r, &fresh);
		static_names(t, &fresh);
		bpf_map_update_elem(&async_ops, &pk, &fresh, BPF_NOEXIST);
	}
	struct op_state anchor = {.depth = frame_depth(ctx), .rs = rs, .start = now};
	struct op_state *op = bpf_map_lookup_elem(&async_ops, &pk);
	if (op) {
		anchor.op_id = op->op_id;
		anchor.gen = op->gen;
		anchor.row = op->row;
		// Per-node commands share the recordset: link rows find the op through it.
		struct owner own = {.op_id = op->op_id, .row = op->row, .gen = op->gen};
		bpf_map_update_elem(&corr, &pk, &own, BPF_ANY);
	}
	struct op_slot *slot;
	__u64 *spills;
	int in_slot;
	struct op_state *cur = live_op(k, &slot, &spills, &in_slot);
	if (slot && spills)
		store_op(k, slot, spills, cur, &anchor);
	return 0;
}

// The first error sent to a recordset is the op's error: it is the first the caller reads.
// Where the row says so (FLAG_AT_SEND), sendError's entry only holds the error, and its
// send on the recordset's channel makes it the op's (errsink_sent): sendError drops the
// errors that come once the caller closed the recordset.
static __always_inline void errsink(struct regs *ctx, struct row *r, struct gkey *k)
{
	__u64 rs = go_word(ctx, r->ptr_word);
	struct pkey pk = {.tgid = k->tgid, .ptr = rs};
	struct op_state *op = bpf_map_lookup_elem(&async_ops, &pk);
	struct op_state tmp = {};
	if (op && !op->failed)
		read_error(ctx, r, &tmp);
	if (op && tmp.failed && !(r->flags & FLAG_AT_SEND)) {
		op->failed = 1;
		op->code = tmp.code;
		op->cause = tmp.cause;
		return;
	}
	if (tmp.failed) {
		struct unsent_error held = {.rs = rs, .code = tmp.code, .cause = tmp.cause};
		if (bpf_map_update_elem(&unsent_errors, k, &held, BPF_ANY) == 0)
			return;
	}
	// Every call replaces what the goroutine's last one held: that one's error may have
	// been dropped, never sent, and a send is only its own call's error.
	if (r->flags & FLAG_AT_SEND)
		bpf_map_delete_elem(&unsent_errors, k);
}

// errsink_sent: sendError sends on the error its entry held. Sends to one recordset hold
// its channel lock, so the first to send is the first seen here.
static __always_inline void errsink_sent(struct gkey *k)
{
	struct unsent_error *held = bpf_map_lookup_elem(&unsent_errors, k);
	if (!held)
		return;
	struct pkey pk = {.tgid = k->tgid, .ptr = held->rs};
	struct op_state *op = bpf_map_lookup_elem(&async_ops, &pk);
	if (op && !op->failed) {
		op->failed = 1;
		op->code = held->code;
		op->cause = held->cause;
	}
	bpf_map_delete_elem(&unsent_errors, k);
}

// note_node records which server an operation's command is written to. Only an op's own
// goroutine counts: per-node batch workers each talk to another node. A single-record op
// keeps its last attempt's node; a batch that reaches two nodes has no one server.
static __always_inline void note_node(struct regs *ctx, struct row *r, struct gkey *k)
{
	struct op_state *st = goroutine_op(k);
	if (!st || st->rs)
		return;
	__u64 conn = go_word(ctx, 0);
	if (!conn)
		return;
	__u64 node = read_u64(conn + r->off_node);
	if (!node)
		return;
	if (st->corr && st->node && st->node != node)
		node = NODE_MANY;
	st->node = node;
}
