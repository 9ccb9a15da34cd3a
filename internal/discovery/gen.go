package discovery

// The exec probe is built as bpf/ is (bpf/gen.go): the same flags and architecture stand-in
// headers, one object per target, and Go declarations of its record and kinds.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -tags linux -target amd64,arm64 -cflags "-O2 -g -Wall -Werror -I../../bpf/include" -type proc_event -type proc_kind exec ../../bpf/exec/exec.c
