package probes

//go:generate go run ../../tools/gencontract -o contract_gen.go ../../bpf/asobserve_x86_bpfel.o
