// Package bpf holds the asobserve uprobe programs. The C source is compiled by bpf2go
// (`make generate`, Debian clang) and the output is committed, so `go build` needs no clang.
package bpf

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -tags linux -target amd64,arm64 -cflags "-O2 -g -Wall -Werror -I./include" Asobserve asobserve.c
