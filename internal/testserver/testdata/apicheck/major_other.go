package main

import as "github.com/aerospike/aerospike-client-go/v8"

// majorChecks: this major has no calls beyond those of main.go.
var majorChecks []struct {
	name string
	run  func(cl *as.Client) error
}
