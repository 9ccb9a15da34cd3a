package discovery

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -target bpfel -type proc_event exec ../../bpf/exec/exec.c -- -O2 -g -Wall -I/usr/include/bpf -I/usr/include/x86_64-linux-gnu
