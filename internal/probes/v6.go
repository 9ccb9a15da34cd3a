package probes

// v6 is aerospike-client-go v6 (checked against v6.16.1, Go 1.21-1.26, amd64). Every probed
// function has v7's signature, so the register words are v7's. The differences:
//   - Operate is one function (v7 splits it into Operate -> operate): Operate is probed.
//   - Batches never call single-record operations (there is no executeSingle): see
//     NestedCallers.
//   - ClientIfc keeps every public method linked, as in v7.
//   - No stage rows: the stage probes are verified on v7 only, and a v6 binary gets no
//     stage series rather than unverified ones.
func v6() []Row {
	return opRows(v7(), map[string]string{"(*Client).operate": "(*Client).Operate"}, false)
}

// opRows copies the operation rows of base (stage rows dropped), renaming symbols per
// rename. With allOptional every row may be absent: without an interface that keeps
// them, the linker drops the client methods a program does not call.
func opRows(base []Row, rename map[string]string, allOptional bool) []Row {
	var out []Row
	for _, r := range base {
		if r.IsStage() {
			continue
		}
		if to, ok := rename[r.Symbol]; ok {
			r.Symbol = to
		}
		if allOptional {
			r.Optional = true
		}
		out = append(out, r)
	}
	return out
}
