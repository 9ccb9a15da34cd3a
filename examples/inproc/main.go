// Command inproc shows the one-line adoption of asobserve's in-process mode: wrap the
// aerospike client, and every data operation is recorded as
// db_client_operation_duration_seconds (served on :9464/metrics) and, with OTEL_* set, as a
// span.
//
//	go run ./examples/inproc -host 127.0.0.1:3000
//	curl -s localhost:9464/metrics | grep db_client_operation_duration_seconds_count
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"strconv"
	"time"

	as "github.com/aerospike/aerospike-client-go/v7"

	"github.com/asobserve/asobserve/inproc"
)

func main() {
	host := flag.String("host", "127.0.0.1:3000", "Aerospike seed host:port")
	metricsAddr := flag.String("metrics", inproc.DefaultMetricsAddr, "metrics listen address")
	ops := flag.Int("n", 100, "number of put/get pairs")
	linger := flag.Duration("linger", 0, "keep serving /metrics this long before exiting")
	flag.Parse()

	h, p, err := net.SplitHostPort(*host)
	if err != nil {
		log.Fatalf("bad -host %q: %v (want host:port)", *host, err)
	}
	port, _ := strconv.Atoi(p)
	asClient, err := as.NewClientWithPolicyAndHost(as.NewClientPolicy(), as.NewHost(h, port))
	if err != nil {
		log.Fatalf("connect to %s: %v", *host, err)
	}
	defer asClient.Close()

	client := inproc.Wrap(asClient) // the one-line change

	if err := inproc.StartMetricsServer(*metricsAddr); err != nil {
		log.Fatal(err)
	}
	defer inproc.StopMetricsServer()
	if err := inproc.InitTracing(); err != nil {
		log.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = inproc.ShutdownTracing(ctx)
	}()

	for i := range *ops {
		key, _ := as.NewKey("test", "users", i)
		if err := client.Put(nil, key, as.BinMap{"n": i}); err != nil {
			log.Printf("put: %v", err)
		}
		if _, err := client.Get(nil, key); err != nil {
			log.Printf("get: %v", err)
		}
	}
	missing, _ := as.NewKey("test", "users", "missing")
	_, _ = client.Get(nil, missing) // counted with error_type="KeyNotFoundError"

	log.Printf("done; metrics on %s/metrics", inproc.MetricsServerAddr())
	time.Sleep(*linger)
}
