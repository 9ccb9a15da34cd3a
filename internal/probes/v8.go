package probes

// v8 is aerospike-client-go v8 (checked against v8.8.0, Go 1.23-1.26, amd64). Every probed
// function has v7's signature, so the register words are v7's. The differences:
//   - Operate is one function (no operate); a one-key batch share calls the public
//     Operate, Get, GetHeader and Exists from executeSingle, which NestedCallers covers.
//   - There is no ClientIfc, so the linker drops every client method the program does not
//     call: all rows are optional. Scan and query keep their worker (scanPartitions,
//     queryPartitions) whenever their start function is linked, because it is the body of
//     the goroutine the start function spawns.
//   - No stage rows: the command types differ (operateCommandRead/Write, baseReadCommand
//     ...) and the stage probes are verified on v7 only; a v8 binary gets no stage series
//     rather than unverified ones.
func v8() []Row {
	return opRows(v7(), map[string]string{"(*Client).operate": "(*Client).Operate"}, true)
}
