package probes

// v6 is aerospike-client-go v6 (checked against v6.16.1, Go 1.21-1.26, amd64). Every probed
// function has v7's signature, so the register words are v7's. The differences:
//   - Operate is one function (v7 splits it into Operate -> operate): Operate is probed.
//   - Batches never call single-record operations (there is no executeSingle): see
//     NestedCallers.
//   - ClientIfc keeps every public method linked, as in v7.
//   - The stage functions (batch node lists, the semaphore, per-node Execute, getConnection,
//     Connection.Read/Write, the commands' parseResult) have v7's names and signatures.
func v6() []Row {
	return renamed(v7(), map[string]string{"(*Client).operate": "(*Client).Operate"}, false)
}

// renamed copies base, renaming symbols per rename. With allOptional every row may be
// absent: without an interface that keeps them, the linker drops the client methods a
// program does not call.
func renamed(base []Row, rename map[string]string, allOptional bool) []Row {
	out := make([]Row, 0, len(base))
	for _, r := range base {
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
