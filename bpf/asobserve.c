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

#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

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

#define NS_MAX 32
#define SET_MAX 64
#define MAX_ROWS 1024
#define NODE_MANY 1
#define SPAN_DEPTH 8
#define NO_WORD 0xff
#define STALE_NS (60ULL * 1000000000ULL)

enum row_kind {
	KIND_OP = 1,           // a data operation, entry to return on one goroutine
	KIND_ASYNC_START = 2,  // Scan/QueryPartitions: returns a recordset, the op ends later
	KIND_ASYNC_WORKER = 3, // scan/queryPartitions: the goroutine whose return ends the op
	KIND_ERRSINK = 5,      // Recordset.sendError: the async op's error
	KIND_STAGE = 6,        // a stage timed entry to return on the owning goroutine
	KIND_LINK = 7,         // per-node batch command Execute: ties a worker goroutine to its op
	KIND_IO_WRITE = 8,     // Connection.Write entry: io starts
	KIND_IO_READ = 9,      // Connection.Read return: the first one after a write ends io
	KIND_PARSE_END = 10,   // parseResult return: parse and attempt end
	KIND_ATTEMPT = 11,     // getConnection: an attempt starts; timed as conn_acquire too
	KIND_SPAN_START = 12,  // the app's OTel SDK made a recording span (return): it is active
	KIND_SPAN_END = 13,    // the app's span ends (entry): the span it was started under is active again
	KIND_SPAWN = 14,       // runtime.newproc1: a new goroutine starts under its creator's live span
};

enum locator {
	LOC_NONE = 0,
	LOC_KEY = 1,           // word is *Key
	LOC_KEY_SLICE = 2,     // word is []*Key; the first key names the batch
	LOC_BREC_PTR_SLICE = 3,   // word is []*BatchRead
	LOC_BREC_IFACE_SLICE = 4, // word is []BatchRecordIfc
	LOC_STMT = 5,          // word is *Statement
	LOC_STRINGS = 6,       // words are namespace string, set string
};

enum row_flags {
	FLAG_CORR = 1,        // register the slice data pointer so worker goroutines find the op
	FLAG_SPAWN_AT_RET = 2, // the stage's return marks a worker spawn (schedule_delay start)
	FLAG_NODE = 4,         // note the connection's node for the op (server.address)
};

enum event_type {
	EVENT_OP = 1,
	EVENT_STAGE = 2,
};

enum stage_id {
	STAGE_KEY_PARSE = 0,
	STAGE_LIMITER_WAIT = 1,
	STAGE_SCHEDULE_DELAY = 2,
	STAGE_CONN_ACQUIRE = 3,
	STAGE_IO = 4,
	STAGE_PARSE = 5,
	STAGE_ATTEMPT = 6,
	STAGE_MAX = 8,
};

struct row {
	__u8 kind;
	__u8 stage;
	__u8 loc;
	__u8 loc_word;
	__u8 err_word;   // first word of the returned Error interface, NO_WORD if none
	__u8 alt_word;   // if this word (a slice length) is non-zero the op is the row's alternate
	__u8 ptr_word;   // recordset / receiver word for async, errsink and link rows
	__u8 flags;
	__s32 off_ns;    // namespace string header within the located object
	__s32 off_set;   // set string header within the located object
	__s32 off_key;   // BatchRecord.Key within a batch record
	__s32 off_err_wrapped;
	__s32 off_err_code;
	__s32 off_corr;  // slice field of a batch command that shares the caller's backing array
	__s32 off_node;  // Connection.node, read when flags has FLAG_NODE
	__s32 off_span_ctx; // recordingSpan.spanContext, for span start rows
};

struct gkey {
	__u32 tgid;
	__u32 pad;
	__u64 g;
};

struct pkey {
	__u32 tgid;
	__u32 pad;
	__u64 ptr;
};

// A trace.SpanContext's ids and flags, as laid out at its start.
struct span_ctx {
	__u8 trace_id[16];
	__u8 span_id[8];
	__u8 flags;
	__u8 pad[7];
};

// The app's live spans on one goroutine, innermost last.
struct app_spans {
	__u64 span[SPAN_DEPTH];
	struct span_ctx sc[SPAN_DEPTH];
	__u32 depth;
	__u32 pad;
};

struct op_state {
	__u64 op_id;
	__u64 start;
	__u64 depth; // g.stack.hi - SP at entry
	__u64 ns_ptr;
	__u64 ns_len;
	__u64 set_ptr;
	__u64 set_len;
	__u64 corr;
	__u64 rs; // recordset of an async op
	__u64 spawn_ts;
	__s32 code;
	__s32 cause;
	__u16 row;
	__u8 failed;
	__u8 alt;
	__u32 pad;
	__u64 node; // *Node of the last attempt; NODE_MANY when a batch spans nodes
	struct span_ctx parent; // the app's active span when the op started
};

struct owner {
	__u64 op_id;
	__u16 row;
	__u8 alt; // the row's alternate op (Get with bin names is select)
	__u8 pad[5];
};

struct worker_state {
	struct owner own;
	__u64 depth;
};

struct stage_key {
	__u32 tgid;
	__u32 stage;
	__u64 g;
};

struct stage_state {
	__u64 start;
	__u64 depth;
};

struct io_state {
	__u64 op_id;
	__u64 io_start;
	__u64 parse_start;
	__u64 attempt_start;
};

// Records sent to user space. internal/decoder mirrors these layouts byte for byte.
struct event_op {
	__u8 type;
	__u8 flags; // bit0 failed, bit1 alternate op
	__u8 ns_len;
	__u8 set_len;
	__u32 tgid;
	__u16 row;
	__u16 pad;
	__s32 code;
	__s32 cause;
	__u32 pad2;
	__u64 op_id;
	__u64 start;
	__u64 end;
	char ns[NS_MAX];
	char set[SET_MAX];
	__u64 node; // as op_state.node; user space reads its host and port
	struct span_ctx parent;
};

struct event_stage {
	__u8 type;
	__u8 stage;
	__u16 row; // the owning operation's row
	__u32 tgid;
	__u64 op_id;
	__u64 start;
	__u64 end;
	__u64 flags; // bit1 alternate op, as in event_op
};

// Keep the record types in BTF, where a test compares them with the decoder's layout.
const struct event_op *unused_event_op __attribute__((unused));
const struct event_stage *unused_event_stage __attribute__((unused));

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

#define NEST_RANGES 16
#define MAX_EXES 64

// A watched process: which executable slot it runs and its load bias (PIE).
struct target {
	__u64 bias;
	__u32 exe;
	__u32 flags; // TARGET_APP_SPANS: its own OTel spans are followed
};

#define TARGET_APP_SPANS 1

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct target);
} pids SEC(".maps");

// Per executable: link-time address ranges of client functions that call public
// operations internally (a batch's one-key node share runs client.Get and friends).
// An operation called from inside them is part of the enclosing batch.
struct nest_ranges {
	__u64 lo[NEST_RANGES];
	__u64 hi[NEST_RANGES];
};

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

static __always_inline struct row *row_of(struct regs *R)
{
	__u32 idx = (__u32)R->cookie;
	return bpf_map_lookup_elem(&rows, &idx);
}

static __always_inline struct target *watched(__u32 tgid)
{
	return bpf_map_lookup_elem(&pids, &tgid);
}

static __always_inline int in_ranges(struct nest_ranges *nr, __u64 pc)
{
	for (int i = 0; i < NEST_RANGES; i++) {
		if (pc >= nr->lo[i] && pc < nr->hi[i])
			return 1;
	}
	return 0;
}

// called_from_client reports whether the caller, or the caller's caller (through a
// public wrapper such as Operate -> operate), is one of the nested-caller functions.
static __always_inline int called_from_client(struct regs *R, struct target *t)
{
	struct nest_ranges *nr = bpf_map_lookup_elem(&nested, &t->exe);
	if (!nr)
		return 0;
	if (in_ranges(nr, return_address(R) - t->bias))
		return 1;
#if defined(__TARGET_ARCH_x86)
	// Go keeps frame pointers: the caller's return address is at [BP+8].
	if (R->fp && in_ranges(nr, read_u64(R->fp + 8) - t->bias))
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
	__u64 hdr[2] = {};
	bpf_probe_read_user(hdr, sizeof(hdr), (void *)(obj + r->off_ns));
	st->ns_ptr = hdr[0];
	st->ns_len = hdr[1];
	bpf_probe_read_user(hdr, sizeof(hdr), (void *)(obj + r->off_set));
	st->set_ptr = hdr[0];
	st->set_len = hdr[1];
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

static __always_inline __u64 next_op_id(void)
{
	__u32 zero = 0;
	__u64 *v = bpf_map_lookup_elem(&seq, &zero);
	if (!v)
		return 0;
	return __sync_fetch_and_add(v, 1) + 1;
}

static __always_inline void emit_op(struct op_state *st, __u32 tgid, __u64 end)
{
	struct event_op *ev = reserve(sizeof(*ev));
	if (!ev)
		return;
	ev->type = EVENT_OP;
	ev->flags = (st->failed ? 1 : 0) | (st->alt ? 2 : 0);
	ev->tgid = tgid;
	ev->row = st->row;
	ev->pad = 0;
	ev->code = st->code;
	ev->cause = st->cause;
	ev->pad2 = 0;
	ev->op_id = st->op_id;
	ev->start = st->start;
	ev->end = end;
	ev->node = st->node;
	ev->parent = st->parent;

	__u64 n = st->ns_len;
	if (n > NS_MAX - 1)
		n = NS_MAX - 1;
	ev->ns_len = 0;
	if (st->ns_ptr && n > 0 && bpf_probe_read_user(ev->ns, n & (NS_MAX - 1), (void *)st->ns_ptr) == 0)
		ev->ns_len = n;
	__u64 m = st->set_len;
	if (m > SET_MAX - 1)
		m = SET_MAX - 1;
	ev->set_len = 0;
	if (st->set_ptr && m > 0 && bpf_probe_read_user(ev->set, m & (SET_MAX - 1), (void *)st->set_ptr) == 0)
		ev->set_len = m;
	submit(ev);
}

static __always_inline void emit_stage(__u32 tgid, __u8 stage, struct owner *own, __u64 start, __u64 end)
{
	struct event_stage *ev = reserve(sizeof(*ev));
	if (!ev)
		return;
	ev->type = EVENT_STAGE;
	ev->stage = stage;
	ev->row = own->row;
	ev->flags = own->alt ? 2 : 0;
	ev->tgid = tgid;
	ev->op_id = own->op_id;
	ev->start = start;
	ev->end = end;
	submit(ev);
}

// owner_of finds the operation a goroutine is working for: its own op, or the batch op
// whose per-node command it runs.
static __always_inline int owner_of(struct gkey *k, struct owner *own)
{
	struct op_state *st = bpf_map_lookup_elem(&inflight, k);
	if (st) {
		own->op_id = st->op_id;
		own->row = st->row;
		own->alt = st->alt;
		return 1;
	}
	struct worker_state *w = bpf_map_lookup_elem(&workers, k);
	if (w) {
		*own = w->own;
		return 1;
	}
	return 0;
}

static __always_inline int op_entry(struct regs *ctx, struct row *r, struct gkey *k, struct target *t, __u64 now)
{
	if (called_from_client(ctx, t))
		return 0;
	__u64 depth = frame_depth(ctx);
	struct op_state *cur = bpf_map_lookup_elem(&inflight, k);
	// A deeper frame of a live op on this goroutine is a nested call (Operate -> operate):
	// it belongs to the outer op. Older entries are leftovers of a panic.
	if (cur && depth > cur->depth && now - cur->start < STALE_NS)
		return 0;

	struct op_state st = {};
	st.op_id = next_op_id();
	st.start = now;
	st.depth = depth;
	st.row = (__u16)ctx->cookie;
	if (r->alt_word != NO_WORD && go_word(ctx, r->alt_word) > 0)
		st.alt = 1;
	if (t->flags & TARGET_APP_SPANS) {
		struct app_spans *live = bpf_map_lookup_elem(&app_spans, k);
		if (live && live->depth > 0 && live->depth <= SPAN_DEPTH)
			st.parent = live->sc[(live->depth - 1) & (SPAN_DEPTH - 1)];
	}
	locate(ctx, r, &st);
	if (r->flags & FLAG_CORR) {
		st.corr = go_word(ctx, r->loc_word);
		if (st.corr) {
			struct pkey pk = {.tgid = k->tgid, .ptr = st.corr};
			struct owner own = {.op_id = st.op_id, .row = st.row, .alt = st.alt};
			bpf_map_update_elem(&corr, &pk, &own, BPF_ANY);
		}
	}
	bpf_map_update_elem(&inflight, k, &st, BPF_ANY);
	return 0;
}

static __always_inline int op_return(struct regs *ctx, struct row *r, struct gkey *k, __u64 now)
{
	struct op_state *cur = bpf_map_lookup_elem(&inflight, k);
	if (!cur || cur->depth != frame_depth(ctx))
		return 0;
	struct op_state st = *cur;
	bpf_map_delete_elem(&inflight, k);
	if (st.corr) {
		struct pkey pk = {.tgid = k->tgid, .ptr = st.corr};
		bpf_map_delete_elem(&corr, &pk);
		bpf_map_delete_elem(&spawns, &st.op_id);
	}
	read_error(ctx, r, &st);
	if (r->kind == KIND_ASYNC_START && !st.failed) {
		__u64 rs = go_word(ctx, r->ptr_word);
		if (rs) {
			struct pkey pk = {.tgid = k->tgid, .ptr = rs};
			struct op_state *early = bpf_map_lookup_elem(&async_ops, &pk);
			if (early) {
				// The worker started before this return: the op began here, though. Its
				// id stays the worker's, which its stages already carry.
				early->start = st.start;
				early->row = st.row;
				early->parent = st.parent;
			} else {
				bpf_map_update_elem(&async_ops, &pk, &st, BPF_ANY);
			}
			return 0;
		}
	}
	if (r->kind == KIND_ASYNC_WORKER) {
		struct pkey pk = {.tgid = k->tgid, .ptr = st.rs};
		struct op_state *async = bpf_map_lookup_elem(&async_ops, &pk);
		if (!async)
			return 0;
		st = *async;
		bpf_map_delete_elem(&async_ops, &pk);
		bpf_map_delete_elem(&corr, &pk);
		bpf_map_delete_elem(&spawns, &st.op_id);
	}
	emit_op(&st, k->tgid, now);
	return 0;
}

// The scan/query goroutine: its return ends the op. The op's state lives in async_ops,
// keyed by recordset, so that errors sent by any goroutine reach it.
static __always_inline int async_worker_entry(struct regs *ctx, struct row *r, struct gkey *k, __u64 now)
{
	__u64 rs = go_word(ctx, r->ptr_word);
	struct pkey pk = {.tgid = k->tgid, .ptr = rs};
	if (!bpf_map_lookup_elem(&async_ops, &pk)) {
		// The starting call has not returned yet (or was not seen): time from here.
		struct op_state fresh = {};
		fresh.op_id = next_op_id();
		fresh.start = now;
		fresh.row = (__u16)ctx->cookie;
		locate(ctx, r, &fresh);
		bpf_map_update_elem(&async_ops, &pk, &fresh, BPF_NOEXIST);
	}
	struct op_state anchor = {.depth = frame_depth(ctx), .rs = rs, .start = now};
	struct op_state *op = bpf_map_lookup_elem(&async_ops, &pk);
	if (op) {
		anchor.op_id = op->op_id;
		anchor.row = op->row;
		// Per-node commands share the recordset: link rows find the op through it.
		struct owner own = {.op_id = op->op_id, .row = op->row};
		bpf_map_update_elem(&corr, &pk, &own, BPF_ANY);
	}
	bpf_map_update_elem(&inflight, k, &anchor, BPF_ANY);
	return 0;
}

// The first error sent to a recordset is the op's error: it is the first the caller reads.
static __always_inline void errsink(struct regs *ctx, struct row *r, struct gkey *k)
{
	struct pkey pk = {.tgid = k->tgid, .ptr = go_word(ctx, r->ptr_word)};
	struct op_state *op = bpf_map_lookup_elem(&async_ops, &pk);
	if (!op || op->failed)
		return;
	struct op_state tmp = {};
	read_error(ctx, r, &tmp);
	if (tmp.failed) {
		op->failed = 1;
		op->code = tmp.code;
		op->cause = tmp.cause;
	}
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

// note_node records which server an operation's command is written to. Only an op's own
// goroutine counts: per-node batch workers each talk to another node. A single-record op
// keeps its last attempt's node; a batch that reaches two nodes has no one server.
static __always_inline void note_node(struct regs *ctx, struct row *r, struct gkey *k)
{
	struct op_state *st = bpf_map_lookup_elem(&inflight, k);
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
		return async_worker_entry(&R, r, &k, now);
	case KIND_ERRSINK:
		errsink(&R, r, &k);
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

static __always_inline int handle_return(struct pt_regs *ctx)
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
	case KIND_ASYNC_WORKER:
		return op_return(&R, r, &k, now);
	case KIND_STAGE:
	case KIND_ATTEMPT:
		stage_return(&R, r, &k, now);
		return 0;
	case KIND_LINK:
		link_return(&R, &k);
		return 0;
	case KIND_SPAN_START:
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
