//go:build linux && !race

package soak_test

// defaultProcesses is the shortened run of `make test` (race_test.go: under -race).
const defaultProcesses = 60
