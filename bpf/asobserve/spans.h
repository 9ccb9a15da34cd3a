// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// The target's own OTel spans: which are live on each goroutine, and which a new goroutine
// inherits from its creator. An op started under one records it as its parent.
#pragma once

#include "maps.h"

// span_start: newRecordingSpan returned the app's new span; it is the innermost live span
// of this goroutine until it ends. A full stack drops its oldest entry.
static __always_inline void span_start(struct regs *ctx, struct row *r, struct gkey *k)
{
	__u64 span = go_word(ctx, 0);
	if (!span)
		return;
	struct span_ctx sc = {};
	if (bpf_probe_read_user(&sc, offsetof(struct span_ctx, pad), (void *)(span + r->off_span_ctx)))
		return;
	struct app_spans *live = bpf_map_lookup_elem(&app_spans, k);
	if (!live) {
		__u32 zero = 0;
		struct app_spans *fresh = bpf_map_lookup_elem(&no_spans, &zero);
		if (!fresh)
			return;
		bpf_map_update_elem(&app_spans, k, fresh, BPF_NOEXIST);
		live = bpf_map_lookup_elem(&app_spans, k);
		if (!live)
			return;
	}
	__u32 d = live->depth;
	if (d >= SPAN_DEPTH) {
		for (int i = 0; i < SPAN_DEPTH - 1; i++) {
			live->span[i] = live->span[i + 1];
			live->sc[i] = live->sc[i + 1];
		}
		d = SPAN_DEPTH - 1;
	}
	live->span[d & (SPAN_DEPTH - 1)] = span;
	live->sc[d & (SPAN_DEPTH - 1)] = sc;
	live->depth = d + 1;
	struct pkey pk = {.tgid = k->tgid, .ptr = span};
	bpf_map_update_elem(&span_goroutine, &pk, &k->g, BPF_ANY);
}

// span_end: the span leaves the goroutine it started on (End may run on any goroutine),
// and so does every span started above it there that never ended.
static __always_inline void span_end(struct regs *ctx, struct gkey *k)
{
	struct pkey pk = {.tgid = k->tgid, .ptr = go_word(ctx, 0)};
	__u64 *g = bpf_map_lookup_elem(&span_goroutine, &pk);
	if (!g)
		return;
	struct gkey owner = {.tgid = k->tgid, .g = *g};
	bpf_map_delete_elem(&span_goroutine, &pk);
	struct app_spans *live = bpf_map_lookup_elem(&app_spans, &owner);
	if (!live)
		return;
	for (int i = SPAN_DEPTH - 1; i >= 0; i--) {
		if (i < live->depth && live->span[i] == pk.ptr) {
			live->depth = i;
			break;
		}
	}
	if (live->depth == 0)
		bpf_map_delete_elem(&app_spans, &owner);
}

// spawn_return: newproc1 (on g0) made newg for the goroutine that said `go`. The new
// goroutine starts with its creator's innermost live span as its own base, as a context
// captured by the goroutine's closure would; a creator without one leaves it none. Either
// way the entry is rewritten, so a reused g never keeps a finished goroutine's spans.
static __always_inline void spawn_return(struct regs *ctx, struct gkey *k)
{
	__u64 *creator = bpf_map_lookup_elem(&spawning, k);
	if (!creator)
		return;
	struct gkey from = {.tgid = k->tgid, .g = *creator};
	struct gkey to = {.tgid = k->tgid, .g = go_word(ctx, 0)};
	bpf_map_delete_elem(&spawning, k);
	if (!to.g)
		return;
	struct app_spans *live = bpf_map_lookup_elem(&app_spans, &from);
	if (!live || live->depth == 0 || live->depth > SPAN_DEPTH) {
		bpf_map_delete_elem(&app_spans, &to);
		return;
	}
	__u32 zero = 0;
	struct app_spans *fresh = bpf_map_lookup_elem(&no_spans, &zero);
	if (!fresh)
		return;
	bpf_map_update_elem(&app_spans, &to, fresh, BPF_ANY);
	struct app_spans *child = bpf_map_lookup_elem(&app_spans, &to);
	if (!child)
		return;
	// span 0 marks an inherited base: no End on this goroutine removes it.
	child->sc[0] = live->sc[(live->depth - 1) & (SPAN_DEPTH - 1)];
	child->depth = 1;
}
