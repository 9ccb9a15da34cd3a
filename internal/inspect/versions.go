package inspect

// ClientVersions are the aerospike-client-go releases asobserve supports and proves: every
// release the module proxy serves from OldestClient on. (It also serves v6.11.0, but the
// checksum database has no record of it, so the go command refuses to build it.)
// `make offsets` tabulates each of them for stripped builds, and the compatibility matrix
// runs each of them; a version added here is supported once both have been run.
var ClientVersions = []string{
	"v6.10.0", "v6.12.0", "v6.13.0", "v6.14.0", "v6.15.0", "v6.16.0", "v6.16.1",
	"v7.0.0", "v7.1.0", "v7.2.0", "v7.5.0", "v7.6.0", "v7.6.1", "v7.7.1", "v7.7.2", "v7.7.3", "v7.8.0", "v7.10.1", "v7.10.2",
	"v8.2.0", "v8.5.0", "v8.6.0", "v8.7.0", "v8.8.0",
}

// TableArches are the architectures the offsets table covers.
var TableArches = []string{"amd64", "arm64"}
