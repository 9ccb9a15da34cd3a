// SPDX-License-Identifier: GPL-2.0
// Process discovery: report the tgid of every exec and every thread-group exit through a
// ring buffer, so that user space checks new processes at once instead of waiting for the
// next /proc scan. Raw tracepoints need no tracefs and no vmlinux.h: the current task is all
// we read.
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum proc_kind {
	PROC_EXEC = 1,
	PROC_EXIT = 2,
};

struct proc_event {
	__u32 tgid;
	__u32 kind; // enum proc_kind
};

// Keeps the record and its kinds in BTF so bpf2go generates their Go declarations.
struct contract {
	struct proc_event event;
	enum proc_kind kind;
};

const struct contract *unused_contract __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} proc_events SEC(".maps");

static __always_inline void emit(__u32 kind)
{
	struct proc_event ev = {
		.tgid = bpf_get_current_pid_tgid() >> 32,
		.kind = kind,
	};
	// A full buffer only delays discovery until the next scan: drop silently.
	bpf_ringbuf_output(&proc_events, &ev, sizeof(ev), 0);
}

SEC("raw_tracepoint/sched_process_exec")
int on_exec(void *ctx)
{
	emit(PROC_EXEC);
	return 0;
}

SEC("raw_tracepoint/sched_process_exit")
int on_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	// Only the thread-group leader's exit ends the process as /proc sees it.
	if ((__u32)id != (__u32)(id >> 32))
		return 0;
	emit(PROC_EXIT);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
