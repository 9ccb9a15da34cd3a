package testserver

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	as "github.com/aerospike/aerospike-client-go/v7"
)

// TestGenerateFuzzCorpus records the frames a real v7 client sends for every command
// kind and writes them as FuzzFrame seeds. Run with ASOBSERVE_GEN_CORPUS=1 to refresh.
func TestGenerateFuzzCorpus(t *testing.T) {
	if os.Getenv("ASOBSERVE_GEN_CORPUS") == "" {
		t.Skip("corpus generator, not a test (CI never needs it): set ASOBSERVE_GEN_CORPUS=1 to regenerate testdata/fuzz/FuzzFrame")
	}
	c, err := Start("127.0.0.1:0", Config{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var frames [][]byte
	go func() {
		for {
			cc, err := ln.Accept()
			if err != nil {
				return
			}
			sc, err := net.Dial("tcp", c.Hosts()[0])
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(cc, sc) }()
			go func() {
				for {
					hdr := make([]byte, 8)
					if _, err := io.ReadFull(cc, hdr); err != nil {
						sc.Close()
						return
					}
					_, _, size := parseProtoHeader(hdr)
					body := make([]byte, size)
					if _, err := io.ReadFull(cc, body); err != nil {
						sc.Close()
						return
					}
					f := append(hdr, body...)
					mu.Lock()
					frames = append(frames, f)
					mu.Unlock()
					_, _ = sc.Write(f)
				}
			}()
		}
	}()
	cl, err := as.NewClientWithPolicyAndHost(as.NewClientPolicy(), as.NewHost("127.0.0.1", ln.Addr().(*net.TCPAddr).Port))
	if err != nil {
		t.Fatal(err)
	}
	k := key(t, "c", 1)
	keys := []*as.Key{k, key(t, "c", 2), key(t, "c", 3)}
	wp := as.NewWritePolicy(0, 0)
	wp.UseCompression = true
	_ = cl.Put(nil, k, as.BinMap{"a": 1, "s": "x"})
	_ = cl.Put(wp, k, as.BinMap{"big": fmt.Sprintf("%0500d", 1)})
	_, _ = cl.Get(nil, k)
	_, _ = cl.Get(nil, k, "a")
	_, _ = cl.Exists(nil, k)
	_, _ = cl.Operate(nil, k, as.AddOp(as.NewBin("a", 1)), as.AppendOp(as.NewBin("s", "y")), as.GetOp())
	_, _ = cl.Delete(nil, keys[1])
	_, _ = cl.BatchGet(nil, keys)
	_, _ = cl.BatchExists(nil, keys)
	_ = cl.BatchOperate(nil, []as.BatchRecordIfc{as.NewBatchWrite(nil, keys[0], as.PutOp(as.NewBin("a", 2))), as.NewBatchDelete(nil, keys[1]), as.NewBatchRead(nil, keys[2], nil)})
	_, _ = cl.Execute(nil, k, "p", "add", as.NewValue("a"), as.NewValue(1))
	rs, _ := cl.ScanAll(nil, "test", "c")
	drain(t, rs)
	stmt := as.NewStatement("test", "c")
	_ = stmt.SetFilter(as.NewEqualFilter("a", 2))
	rs, _ = cl.Query(nil, stmt)
	drain(t, rs)
	_, _ = cl.BatchExecute(nil, nil, keys, "p", "echo", as.NewValue(1))
	_, _ = cl.QueryExecute(nil, nil, stmt, as.PutOp(as.NewBin("b", 1)))
	if task, err := cl.ExecuteUDF(nil, as.NewStatement("test", "c"), "p", "add", as.NewValue("a"), as.NewValue(1)); err == nil {
		_, _ = task.IsDone()
	}
	registerAggregateModule(t, cl)
	setLuaPath(t)
	if rs, err = cl.QueryAggregate(nil, as.NewStatement("test", "c"), "asobserve_aggregate", "sum", as.NewValue("a")); err == nil {
		for range rs.Results() {
		}
	}
	cl.Close()

	dir := filepath.Join("testdata", "fuzz", "FuzzFrame")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	seen := map[string]bool{}
	n := 0
	for _, f := range frames {
		if seen[string(f)] {
			continue
		}
		seen[string(f)] = true
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", f)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("client-%03d", n)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		n++
	}
	t.Logf("wrote %d seeds", n)
}
