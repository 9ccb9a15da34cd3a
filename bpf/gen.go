// Package bpf holds the asobserve uprobe programs. The C source is compiled by bpf2go
// (`make generate`, Debian clang) and the output is committed, so `go build` needs no clang.
//
// Every type user space shares with the programs is generated from the C declarations
// (bpf/asobserve/types.h): the enums as typed constants (AsobserveRowKindKIND_OP...), the
// records and map values as structs. layout_test.go checks each field against BTF.
package bpf

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -tags linux -target amd64,arm64 -cflags "-O2 -g -Wall -Werror -I./include" -type row_kind -type locator -type row_flags -type row_word -type event_type -type event_flags -type stage_id -type op_node -type target_flags -type limits -type event_op -type event_stage -type span_ctx -type row -type target -type pid_slot -type nest_ranges -type addr_range Asobserve asobserve.c
