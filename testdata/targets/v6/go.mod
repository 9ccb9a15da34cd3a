module github.com/asobserve/asobserve/testdata/targets/v6

go 1.21

require github.com/aerospike/aerospike-client-go/v6 v6.16.1

require (
	github.com/yuin/gopher-lua v1.1.1 // indirect
	golang.org/x/net v0.24.0 // indirect
	golang.org/x/sync v0.7.0 // indirect
	golang.org/x/sys v0.19.0 // indirect
	golang.org/x/text v0.14.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20240401170217-c3f982113cda // indirect
	google.golang.org/grpc v1.63.2 // indirect
	google.golang.org/protobuf v1.33.0 // indirect
)
