// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// Every type of the programs: the enums and records user space shares (bpf2go generates
// their Go side, see gen.go), and the state the programs keep in their maps.
#pragma once

#include <linux/types.h>

#define NS_MAX 32
#define SET_MAX 64
#define SPAN_DEPTH 8
#define STALE_NS (60ULL * 1000000000ULL)
#define NEST_RANGES 16
#define NEST_CALLEES 8
#define OP_SLOT_BITS 12

// Sizes of maps user space indexes: rows by attach cookie, nested by executable slot.
enum limits {
	MAX_ROWS = 1024,
	MAX_EXES = 64,
	PID_SLOTS = 4096,
};

// A row's word field that names no word.
enum row_word {
	NO_WORD = 0xff,
};

// An op's node when its batch reached several nodes; otherwise the *Node's address.
enum op_node {
	NODE_MANY = 1,
};

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
	KIND_STREAM_END = 15,  // Recordset.signalEnd entry of a one-worker stream: it is about to close
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
	FLAG_NESTED_CALLEE = 8, // nested callers call it: its entry checks who called it
	FLAG_LAST_WORKER = 16,  // one of several workers: the count at off_remaining tells the last one
	FLAG_AT_SEND = 32,      // errsink: the error counts where it is sent on (the return program's points)
};

enum event_type {
	EVENT_OP = 1,
	EVENT_STAGE = 2,
};

// Bits of a record's flags.
enum event_flags {
	EVENT_FAILED = 1,    // the op returned a non-nil Error (op records only)
	EVENT_ALTERNATE = 2, // the op is its row's alternate op
	// The ns (set) field holds the name's link-time address in the executable's read-only
	// data, not its bytes: such a name never changes, and user space reads it from the file.
	EVENT_NS_STATIC = 4,
	EVENT_SET_STATIC = 8,
};

enum stage_id {
	STAGE_KEY_PARSE = 0,
	STAGE_LIMITER_WAIT = 1,
	STAGE_SCHEDULE_DELAY = 2,
	STAGE_CONN_ACQUIRE = 3,
	STAGE_IO = 4,
	STAGE_PARSE = 5,
	STAGE_ATTEMPT = 6,
	NUM_STAGES = 7, // one past the last stage id: a record with any other is corrupt
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
	__s32 off_remaining; // FLAG_LAST_WORKER: the recordset's pointer to its count of live workers
	__u8 pad[20]; // a cache line: each probe hit reads its row, mostly cache-cold
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
	__u32 gen; // the target's attach generation, carried into the op's records
	__u64 node; // *Node of the last attempt; NODE_MANY when a batch spans nodes
	// Async ops: when the stream first ended, and which of the start call's return and the
	// stream's end have happened (enum async_phase, set atomically: whichever comes second
	// ends the op).
	__u64 ended;
	__u64 phase;
	// An entry that found this op live and was not taken as a new op (a nested call, or a
	// call deeper than a panic's leftover) may return at the same SP in the same row: this
	// op's return is then told by its frame depth alone.
	__u8 shadowed;
	__u8 static_names; // EVENT_NS_STATIC, EVENT_SET_STATIC: the name pointers are link-time
	__u8 pad[6];
	__u64 sp; // SP at entry: while the stack has not moved, the return's SP is the same
	struct span_ctx parent; // the app's active span when the op started
};

enum async_phase {
	ASYNC_STARTED = 1, // the start call returned: the op's start, row and names are final
	ASYNC_ENDED = 2,   // the stream ended (it was closed, or its last worker returned)
};

// The error a goroutine's sendError call was given, from its entry to its send (maps.h,
// unsent_errors).
struct unsent_error {
	__u64 rs;
	__s32 code;
	__s32 cause;
};

// A goroutine's in-flight op in the slot its (tgid, g) hashes to (maps.h, op_slots).
struct op_slot {
	__u64 owner; // tgid of the holding goroutine's process; 0 while the slot is free
	__u64 g;
	struct op_state st;
	__u8 pad[8]; // three whole cache lines, where a slot would otherwise straddle four
};

struct owner {
	__u64 op_id;
	__u16 row;
	__u8 alt; // the row's alternate op (Get with bin names is select)
	__u8 pad;
	__u32 gen;
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

// Records sent to user space. internal/decoder reads them through their generated Go
// declarations.
struct event_op {
	__u8 type;
	__u8 flags; // enum event_flags
	__u8 ns_len;
	__u8 set_len;
	__u32 tgid;
	__u16 row;
	__u16 pad;
	__s32 code;
	__s32 cause;
	__u32 gen; // the attach generation of the target it was recorded for
	__u64 op_id;
	__u64 start;
	__u64 end;
	__u64 node; // as op_state.node; user space reads its host and port
	char ns[NS_MAX];
	// The record mostly ends after the first 8 bytes of set (OP_RECORD_SHORT): when the
	// set is a string constant (its address is all it holds) and the op had no parent span.
	// Each byte of a record is a byte of the ring the return program writes cache-cold.
	char set[SET_MAX];
	struct span_ctx parent;
};

#define OP_RECORD_SHORT (__builtin_offsetof(struct event_op, set) + 8)

struct event_stage {
	__u8 type;
	__u8 stage;
	__u16 row; // the owning operation's row
	__u32 tgid;
	__u64 op_id;
	__u64 start;
	__u64 end;
	__u32 flags; // EVENT_ALTERNATE or 0
	__u32 gen;   // as event_op.gen
};

// A watched process: which executable slot it runs and its load bias (PIE).
// gen is unique per attach within an agent run and never 0: a process that reuses a pid is
// another generation, so its records and its predecessor's are told apart.
struct target {
	__u64 bias;
	__u32 exe;
	__u32 flags; // enum target_flags
	__u32 gen;
	__u32 pad;
	// The executable's read-only data (.rodata), link-time: where Go keeps its string
	// constants. ro_size 0: unknown, every name is read from target memory.
	__u64 ro_lo;
	__u64 ro_size;
};

// A watched process in the pid filter's array (maps.h, pid_slots).
struct pid_slot {
	__u64 tgid; // 0: free (64 bits: the exit tracepoint clears it by compare-and-swap)
	struct target t;
	__u8 pad[16]; // a cache line: every entry probe of every process that runs probed code reads it
};

enum target_flags {
	TARGET_APP_SPANS = 1, // its own OTel spans are followed
};

struct addr_range {
	__u64 lo;
	__u64 hi;
};

// Per executable, link-time address ranges, the used ones first and the rest empty: the
// client functions that call public operations internally (a batch's one-key node share
// runs client.Get and friends), whose calls are part of the enclosing batch; and the
// public operations that nested callers call, which may themselves call one (Operate ->
// operate): a call from inside those is nested if their caller is a nested caller.
struct nest_ranges {
	struct addr_range callers[NEST_RANGES];
	struct addr_range callees[NEST_CALLEES];
};

// The arrays that every probe hit indexes are page-aligned (BPF_F_MMAPABLE), and their
// values whole cache lines, so that a hit touches as few cold lines as it can.
_Static_assert(sizeof(struct row) == 64, "a row is one cache line");
_Static_assert(sizeof(struct pid_slot) == 64, "a pid slot is one cache line");
_Static_assert(sizeof(struct op_slot) % 64 == 0, "an op slot is whole cache lines");
_Static_assert(sizeof(struct nest_ranges) % 64 == 0, "nest ranges are whole cache lines");

// bpf2go declares in Go only types that are in BTF, and the enums are only ever used as
// values: this pointer, never used, keeps every type user space shares there (gen.go).
struct contract {
	enum row_kind row_kind;
	enum locator locator;
	enum row_flags row_flags;
	enum row_word row_word;
	enum event_type event_type;
	enum event_flags event_flags;
	enum stage_id stage_id;
	enum op_node op_node;
	enum target_flags target_flags;
	enum limits limits;
	struct pid_slot pid_slot;
	struct event_op event_op;
	struct event_stage event_stage;
};

const struct contract *unused_contract __attribute__((unused));
