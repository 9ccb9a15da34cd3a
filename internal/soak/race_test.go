//go:build linux && race

package soak_test

// defaultProcesses is the shortened run of `make test`. Under the race detector each
// executable's attach (its symbols and DWARF) takes several times longer, so the run is
// the least that still has a whole stream after the warm-up wave: every plan (namespaced,
// killed, started on a freed pid) comes up in it.
const defaultProcesses = 2 * maxAlive
