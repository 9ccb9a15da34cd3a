package probes

import "github.com/asobserve/asobserve/internal/semconv"

// v8 is aerospike-client-go v8 (checked against v8.8.0, Go 1.23-1.26, amd64). Every probed
// function has v7's signature, so the register words are v7's. The differences:
//   - Operate is one function (no operate); a one-key batch share calls the public
//     Operate, Get, GetHeader and Exists from executeSingle, which NestedCallers covers.
//   - There is no ClientIfc, so the linker drops every client method the program does not
//     call: all rows are optional. Scan and query keep their worker (scanPartitions,
//     queryPartitions) whenever their start function is linked, because it is the body of
//     the goroutine the start function spawns.
//   - Stages: v7's functions, plus the commands v8 split off with a parseResult of their
//     own (an Operate that writes, Execute, and the transaction-aware payload write);
//     BatchGetComplex's node command holds its records in a field of its own.
func v8() []Row {
	rows := renamed(v7(), map[string]string{"(*Client).operate": "(*Client).Operate"}, true)
	for i := range rows {
		if rows[i].Symbol == "(*batchIndexCommandGet).Execute" {
			rows[i].Corr.Name = "records" // v8's command keeps its own records slice
		}
	}
	for _, cmd := range []string{"operateCommandWrite", "executeCommand", "writePayloadCommand"} {
		rows = append(rows, stage("(*"+cmd+").parseResult", semconv.StageParse, ParseEnd, false, true))
	}
	return rows
}
