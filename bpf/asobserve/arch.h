// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// The machine side of a probe hit: the Go register-ABI words, the goroutine pointer g, the
// stack pointer and the return address, per architecture, and reads of target memory.
#pragma once

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

// The Go register-ABI words of a probe hit, plus g and the stack pointer.
struct regs {
	__u64 w[16];
	__u64 g;
	__u64 sp;
	__u64 lr; // arm64 link register; on amd64 the return address is at [SP]
	__u64 fp; // the caller's frame pointer (amd64 BP)
	__u64 cookie;
};

#if defined(__TARGET_ARCH_x86)
struct pt_regs {
	__u64 r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};
#define NWORDS 9
// load_regs copies the Go ABI registers with constant offsets: the verifier rejects
// context reads at computed offsets.
static __always_inline void load_regs(struct pt_regs *ctx, struct regs *r)
{
	r->w[0] = ctx->ax;
	r->w[1] = ctx->bx;
	r->w[2] = ctx->cx;
	r->w[3] = ctx->di;
	r->w[4] = ctx->si;
	r->w[5] = ctx->r8;
	r->w[6] = ctx->r9;
	r->w[7] = ctx->r10;
	r->w[8] = ctx->r11;
	r->g = ctx->r14;
	r->sp = ctx->sp;
	r->fp = ctx->bp;
}
#elif defined(__TARGET_ARCH_arm64)
struct pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
};
#define NWORDS 16
static __always_inline void load_regs(struct pt_regs *ctx, struct regs *r)
{
	r->w[0] = ctx->regs[0];
	r->w[1] = ctx->regs[1];
	r->w[2] = ctx->regs[2];
	r->w[3] = ctx->regs[3];
	r->w[4] = ctx->regs[4];
	r->w[5] = ctx->regs[5];
	r->w[6] = ctx->regs[6];
	r->w[7] = ctx->regs[7];
	r->w[8] = ctx->regs[8];
	r->w[9] = ctx->regs[9];
	r->w[10] = ctx->regs[10];
	r->w[11] = ctx->regs[11];
	r->w[12] = ctx->regs[12];
	r->w[13] = ctx->regs[13];
	r->w[14] = ctx->regs[14];
	r->w[15] = ctx->regs[15];
	r->g = ctx->regs[28];
	r->lr = ctx->regs[30];
	r->sp = ctx->sp;
}
#else
#error "unsupported architecture"
#endif

static __always_inline __u64 go_word(struct regs *R, __u32 i)
{
	if (i >= NWORDS)
		return 0;
	return R->w[i & 15];
}
#define GO_G(R) ((R)->g)
#define GO_SP(R) ((R)->sp)

static __always_inline __u64 return_address(struct regs *R)
{
#if defined(__TARGET_ARCH_x86)
	__u64 ra = 0;
	bpf_probe_read_user(&ra, sizeof(ra), (void *)R->sp);
	return ra;
#else
	return R->lr;
#endif
}

static __always_inline __u64 read_u64(__u64 addr)
{
	__u64 v = 0;
	if (addr)
		bpf_probe_read_user(&v, sizeof(v), (void *)addr);
	return v;
}

// frame_depth is the distance of this frame from the top of its goroutine stack; it
// survives stack copies, so entry and return of one call agree even if the stack moved.
static __always_inline __u64 frame_depth(struct regs *ctx)
{
	__u64 hi = read_u64(GO_G(ctx) + 8); // g.stack.hi
	return hi - GO_SP(ctx);
}
