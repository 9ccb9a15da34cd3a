package inproc

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	as "github.com/aerospike/aerospike-client-go/v7"
	"github.com/aerospike/aerospike-client-go/v7/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/asobserve/asobserve/internal/clienterr"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/semconv"
	"github.com/asobserve/asobserve/internal/testserver"
)

// fresh replaces the package state with a new one (new recorder, env read again) for the
// duration of the test, capturing the log lines.
func fresh(t testing.TB) *logLines {
	t.Helper()
	logs := &logLines{}
	oldLogf, oldState := logf, state()
	logf = logs.logf
	st = newState()
	t.Cleanup(func() {
		StopMetricsServer()
		logf, st = oldLogf, oldState
	})
	return logs
}

type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logf(format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *logLines) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

func startServer(t testing.TB, cfg testserver.Config) (*testserver.Cluster, *as.Client) {
	t.Helper()
	c, err := testserver.Start("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var hosts []*as.Host
	for _, h := range c.Hosts() {
		host, port, _ := net.SplitHostPort(h)
		p, _ := strconv.Atoi(port)
		hosts = append(hosts, as.NewHost(host, p))
	}
	cl, err := as.NewClientWithPolicyAndHost(as.NewClientPolicy(), hosts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return c, cl
}

func key(t testing.TB, set string, v any) *as.Key {
	t.Helper()
	k, err := as.NewKey("test", set, v)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantCode(t testing.TB, err as.Error, code int) {
	t.Helper()
	if err == nil || clienterr.Code(err) != code {
		t.Fatalf("err = %v, want result code %d", err, code)
	}
}

// drainer returns a function that reads a recordset to its end and counts its records.
func drainer(t testing.TB) func(*as.Recordset, as.Error) int {
	return func(rs *as.Recordset, err as.Error) int {
		t.Helper()
		must(t, err)
		n := 0
		for res := range rs.Results() {
			must(t, res.Err)
			n++
		}
		return n
	}
}

func waitCount(t testing.TB, k Key, want uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for opSeries(t, state().rec.Registry, "")[k].Count != want {
		if time.Now().After(deadline) {
			t.Fatalf("%+v: count %d, want %d", k, opSeries(t, state().rec.Registry, "")[k].Count, want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestExactCountsForEveryOperation(t *testing.T) {
	fresh(t)
	srv, raw := startServer(t, testserver.Config{Nodes: 2})
	c := Wrap(raw)
	u := func(i int) *as.Key { return key(t, "users", i) }
	drain := drainer(t)

	for i := range 5 {
		must(t, c.Put(nil, u(i), as.BinMap{"name": "n" + strconv.Itoa(i), "n": i, "s": "x"}))
	}
	must(t, c.PutBins(nil, u(5), as.NewBin("n", 5), as.NewBin("s", "x")))
	create := as.NewWritePolicy(0, 0)
	create.RecordExistsAction = as.CREATE_ONLY
	wantCode(t, c.Put(create, u(0), as.BinMap{"n": 0}), 5)
	gen := as.NewWritePolicy(99, 0)
	gen.GenerationPolicy = as.EXPECT_GEN_EQUAL
	wantCode(t, c.Put(gen, u(1), as.BinMap{"n": 1}), 3)

	_, err := c.Get(nil, u(0))
	must(t, err)
	_, err = c.Get(nil, u(1))
	must(t, err)
	_, err = c.Get(nil, u(999))
	wantCode(t, err, 2)
	_, err = c.Get(nil, u(2), "name")
	must(t, err)
	_, err = c.GetHeader(nil, u(3))
	must(t, err)

	ok, err := c.Exists(nil, u(0))
	if err != nil || !ok {
		t.Fatalf("Exists = %v, %v", ok, err)
	}
	ok, err = c.Exists(nil, u(999))
	if err != nil || ok {
		t.Fatalf("Exists(missing) = %v, %v", ok, err)
	}
	existed, err := c.Delete(nil, u(4))
	if err != nil || !existed {
		t.Fatalf("Delete = %v, %v", existed, err)
	}
	existed, err = c.Delete(nil, u(998))
	if err != nil || existed {
		t.Fatalf("Delete(missing) = %v, %v", existed, err)
	}
	must(t, c.Touch(nil, u(0)))
	wantCode(t, c.Touch(nil, u(997)), 2)

	must(t, c.Append(nil, u(0), as.BinMap{"s": "a"}))
	must(t, c.AppendBins(nil, u(0), as.NewBin("s", "b")))
	must(t, c.Prepend(nil, u(0), as.BinMap{"s": "c"}))
	must(t, c.PrependBins(nil, u(0), as.NewBin("s", "d")))
	must(t, c.Add(nil, u(0), as.BinMap{"n": 10}))
	must(t, c.AddBins(nil, u(0), as.NewBin("n", 1)))
	rec, err := c.Operate(nil, u(0), as.AddOp(as.NewBin("n", 1)), as.GetBinOp("n"))
	must(t, err)
	if rec.Bins["n"] != 12 {
		t.Fatalf("operate read n=%v, want 12", rec.Bins["n"])
	}
	v, err := c.Execute(nil, u(0), "asobserve", "echo", as.NewValue("hi"))
	must(t, err)
	if v != "hi" {
		t.Fatalf("execute returned %v", v)
	}

	keys := []*as.Key{u(0), u(1), u(2), u(3)}
	_, err = c.BatchGet(nil, keys)
	must(t, err)
	_, err = c.BatchGet(nil, keys[:1]) // one key: the client runs a single read inside
	must(t, err)
	_, err = c.BatchGetHeader(nil, keys)
	must(t, err)
	_, err = c.BatchExists(nil, keys)
	must(t, err)
	_, err = c.BatchGetOperate(nil, keys, as.GetBinOp("n"))
	must(t, err)
	must(t, c.BatchGetComplex(nil, []*as.BatchRead{as.NewBatchRead(nil, u(0), []string{"n"}), as.NewBatchRead(nil, u(1), []string{"n"})}))
	must(t, c.BatchOperate(nil, []as.BatchRecordIfc{as.NewBatchWrite(nil, u(6), as.PutOp(as.NewBin("n", 6))), as.NewBatchRead(nil, u(1), []string{"n"})}))
	_, err = c.BatchDelete(nil, nil, []*as.Key{u(6), u(5)})
	must(t, err)

	// 0..3 remain in "users" (4 deleted, 5 and 6 batch-deleted).
	if n := drain(c.ScanAll(nil, "test", "users")); n != 4 {
		t.Fatalf("ScanAll returned %d records, want 4", n)
	}
	if n := drain(c.ScanPartitions(nil, as.NewPartitionFilterAll(), "test", "users")); n != 4 {
		t.Fatalf("ScanPartitions returned %d records, want 4", n)
	}
	if n := drain(c.Query(nil, as.NewStatement("test", "users"))); n != 4 {
		t.Fatalf("Query returned %d records, want 4", n)
	}
	if n := drain(c.QueryPartitions(nil, as.NewStatement("test", "users"), as.NewPartitionFilterAll())); n != 4 {
		t.Fatalf("QueryPartitions returned %d records, want 4", n)
	}

	srv.SetFaults([]testserver.Fault{{Set: "slow", Command: testserver.CmdRead, ResultCode: 9}})
	pol := as.NewPolicy()
	pol.MaxRetries = 0
	_, err = c.Get(pol, key(t, "slow", 1))
	wantCode(t, err, 9)

	waitCount(t, K("scan", "test", "users", ""), 2)
	waitCount(t, K("query", "test", "users", ""), 2)
	want := map[Key]uint64{
		K("put", "test", "users", ""):                   6,
		K("put", "test", "users", "KeyExistsError"):     1,
		K("put", "test", "users", "GenerationError"):    1,
		K("get", "test", "users", ""):                   3,
		K("get", "test", "users", "KeyNotFoundError"):   1,
		K("select", "test", "users", ""):                1,
		K("exists", "test", "users", ""):                2,
		K("remove", "test", "users", ""):                2,
		K("touch", "test", "users", ""):                 1,
		K("touch", "test", "users", "KeyNotFoundError"): 1,
		K("append", "test", "users", ""):                2,
		K("prepend", "test", "users", ""):               2,
		K("increment", "test", "users", ""):             2,
		K("operate", "test", "users", ""):               1,
		K("execute", "test", "users", ""):               1,
		K("batch_read", "test", "users", ""):            6,
		K("batch_operate", "test", "users", ""):         1,
		K("batch_remove", "test", "users", ""):          1,
		K("scan", "test", "users", ""):                  2,
		K("query", "test", "users", ""):                 2,
		K("get", "test", "slow", "Timeout"):             1,
	}
	got := opSeries(t, state().rec.Registry, "")
	for k, w := range want {
		if got[k].Count != w {
			t.Errorf("%+v: count %d, want %d", k, got[k].Count, w)
		}
		if got[k].Sum <= 0 {
			t.Errorf("%+v: _sum %v, want > 0", k, got[k].Sum)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected series %+v count %d", k, g.Count)
		}
	}
}

func TestQueryAndScanAreTimedToTheEndOfTheRecordset(t *testing.T) {
	if errorsField == nil {
		t.Fatal("as.Recordset has no errors channel field: the end watcher fell back to polling; update recordset.go")
	}
	fresh(t)
	srv, raw := startServer(t, testserver.Config{})
	c := Wrap(raw)
	for i := range 3 {
		must(t, c.Put(nil, key(t, "q", i), as.BinMap{"n": i}))
	}
	const delay = 150 * time.Millisecond
	srv.SetFaults([]testserver.Fault{{Set: "q", Command: testserver.CmdScan, Latency: delay}})

	t0 := time.Now()
	rs, err := c.ScanAll(nil, "test", "q")
	returned := time.Since(t0)
	must(t, err)
	if returned > delay/2 {
		t.Fatalf("ScanAll took %v to return; the test needs it to return before the data", returned)
	}
	if n := drainer(t)(rs, nil); n != 3 {
		t.Fatalf("scan returned %d records", n)
	}
	total := time.Since(t0)
	k := K("scan", "test", "q", "")
	waitCount(t, k, 1)
	sum := time.Duration(opSeries(t, state().rec.Registry, "")[k].Sum * float64(time.Second))
	if sum < delay || sum > total+5*time.Millisecond {
		t.Fatalf("scan recorded %v; want between the injected %v and the caller's %v", sum, delay, total)
	}

	// A recordset the caller closes early ends there, and is recorded once.
	rs, err = c.ScanAll(nil, "test", "q")
	must(t, err)
	must(t, rs.Close())
	waitCount(t, k, 2)
	time.Sleep(2 * delay)
	waitCount(t, k, 2)
}

func TestMetricsDisabledRecordsNothing(t *testing.T) {
	fresh(t)
	_, raw := startServer(t, testserver.Config{})
	c := Wrap(raw)
	if !MetricsEnabled() {
		t.Fatal("operation metrics are off by default")
	}
	SetMetricsEnabled(false)
	must(t, c.Put(nil, key(t, "users", 1), as.BinMap{"n": 1}))
	if n := len(opSeries(t, state().rec.Registry, "")); n != 0 {
		t.Fatalf("%d series recorded while disabled", n)
	}
	SetMetricsEnabled(true)
	must(t, c.Put(nil, key(t, "users", 1), as.BinMap{"n": 1}))
	waitCount(t, K("put", "test", "users", ""), 1)
}

func TestStageToggleFromEnvironment(t *testing.T) {
	cases := []struct {
		value string
		set   bool
		on    bool
	}{
		{"", false, false},
		{"1", true, true}, {"true", true, true}, {"True", true, true}, {"TRUE", true, true},
		{"yes", true, true}, {"on", true, true},
		{"0", true, false}, {"false", true, false}, {"tRUE", true, false}, {"Yes", true, false}, {"", true, false},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%q/%v", tc.value, tc.set), func(t *testing.T) {
			if tc.set {
				t.Setenv(EnvInternalMetrics, tc.value)
			} else {
				t.Setenv(EnvInternalMetrics, "")
				os.Unsetenv(EnvInternalMetrics)
			}
			logs := fresh(t)
			if InternalStageMetricsEnabled() != tc.on {
				t.Fatalf("enabled = %v, want %v", InternalStageMetricsEnabled(), tc.on)
			}
			shown := "None"
			if tc.set {
				shown = tc.value
			}
			want := fmt.Sprintf("[asobserve] internal_stage_metrics_enabled=%t (ASOBSERVE_INTERNAL_METRICS=%s)", tc.on, shown)
			if l := logs.get(); len(l) != 1 || l[0] != want {
				t.Fatalf("log %q, want %q", l, want)
			}
			// Runtime calls win over the environment.
			SetInternalStageMetricsEnabled(!tc.on)
			if InternalStageMetricsEnabled() == tc.on {
				t.Fatal("runtime toggle did not win")
			}
			if !strings.Contains(Metrics(), fmt.Sprintf("asobserve_internal_stage_metrics_enabled %d", b2i(!tc.on))) {
				t.Fatalf("gauge does not follow the toggle:\n%s", Metrics())
			}
		})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestScopedStageProfilingRestoresStateOnPanic(t *testing.T) {
	fresh(t)
	for _, before := range []bool{false, true} {
		SetInternalStageMetricsEnabled(before)
		inside := false
		func() {
			defer func() {
				if r := recover(); r != "boom" {
					t.Fatalf("recovered %v, want the block's panic", r)
				}
			}()
			WithInternalStageProfiling(func() {
				inside = InternalStageMetricsEnabled()
				panic("boom")
			})
		}()
		if !inside {
			t.Fatal("stages were off inside the scoped block")
		}
		if InternalStageMetricsEnabled() != before {
			t.Fatalf("after a panicking block: enabled=%v, want the previous %v", InternalStageMetricsEnabled(), before)
		}
		WithInternalStageProfiling(func() {})
		if InternalStageMetricsEnabled() != before {
			t.Fatalf("after a normal block: enabled=%v, want %v", InternalStageMetricsEnabled(), before)
		}
	}
}

func TestMetricsTextServerAndCollector(t *testing.T) {
	fresh(t)
	text := Metrics()
	for _, line := range []string{
		"# HELP db_client_operation_duration_seconds Duration of database client operations.",
		"# TYPE db_client_operation_duration_seconds histogram",
		"# TYPE db_client_internal_stage_seconds histogram",
	} {
		if !strings.Contains(text, line) {
			t.Fatalf("Metrics() lacks %q before any operation:\n%s", line, text)
		}
	}
	_, raw := startServer(t, testserver.Config{})
	c := Wrap(raw)
	must(t, c.Put(nil, key(t, "users", 1), as.BinMap{"n": 1}))

	must(t, StartMetricsServer("127.0.0.1:0"))
	if err := StartMetricsServer("127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("second start: %v", err)
	}
	addr := MetricsServerAddr()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	series := `db_client_operation_duration_seconds_count{db_collection_name="users",db_namespace="test",db_operation_name="put",db_system_name="aerospike",error_type="",k8s_container_name="",k8s_namespace_name="",k8s_node_name="",k8s_pod_name="",service_name="` + state().target.Identity.Service + `"} 1`
	if resp.StatusCode != 200 || !strings.Contains(string(body), series) {
		t.Fatalf("GET /metrics: %d\n%s\nwant line %s", resp.StatusCode, body, series)
	}
	if !strings.Contains(Metrics(), series) {
		t.Fatal("Metrics() lacks the put series")
	}
	StopMetricsServer()
	if _, err := http.Get("http://" + addr + "/metrics"); err == nil {
		t.Fatal("server still answers after StopMetricsServer")
	}
	StopMetricsServer() // idempotent
	if err := StartMetricsServer(addr); err != nil {
		t.Fatalf("restart on the freed port: %v", err)
	}
	StopMetricsServer()

	// The seed's FastAPI recipe: register in the application's own registry.
	app := prometheus.NewRegistry()
	app.MustRegister(Collector())
	must(t, c.Put(nil, key(t, "users", 2), as.BinMap{"n": 1}))
	got := opSeries(t, app, "")
	if len(got) != 1 || got[K("put", "test", "users", "")].Count != 2 {
		t.Fatalf("app registry series: %+v", got)
	}
}

func TestServiceNameFromEnvironment(t *testing.T) {
	t.Setenv("OTEL_SERVICE_NAME", "checkout")
	fresh(t)
	if state().target.Identity.Service != "checkout" {
		t.Fatalf("service %q, want checkout", state().target.Identity.Service)
	}
	os.Unsetenv("OTEL_SERVICE_NAME")
	fresh(t)
	exe, _ := os.Executable()
	if want := strings.TrimSuffix(baseName(exe), ".exe"); state().target.Identity.Service != want {
		t.Fatalf("service %q, want the executable name %q", state().target.Identity.Service, want)
	}
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// Key names one operation series.
type Key struct{ Op, Namespace, Set, ErrorType string }

// K builds a Key.
func K(op, namespace, set, errorType string) Key { return Key{op, namespace, set, errorType} }

type series struct {
	Count uint64
	Sum   float64
}

// opSeries reads db_client_operation_duration_seconds from g. (internal/e2etest has the same
// helper but does not build on Windows, where this package's tests must run.)
func opSeries(t testing.TB, g prometheus.Gatherer, service string) map[Key]series {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[Key]series{}
	for _, mf := range mfs {
		if mf.GetName() != semconv.OperationMetric {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if service != "" && l["service_name"] != service {
				continue
			}
			k := Key{l[semconv.LabelOperation], l[semconv.LabelNamespace], l[semconv.LabelCollection], l[semconv.LabelErrorType]}
			out[k] = series{Count: m.GetHistogram().GetSampleCount(), Sum: m.GetHistogram().GetSampleSum()}
		}
	}
	return out
}

// Each operation keeps the series its last call recorded into; calls that change
// namespace, set or outcome, a new recorder, and the sinks must still land exactly.
func TestHotSeriesFollowsEveryLabelChange(t *testing.T) {
	fresh(t)
	var sunk atomic.Int64
	state().rec.AddObserver(countingObserver{&sunk})
	for i := 0; i < 10; i++ {
		finish(begin(), opPut, "test", "a", nil)
		finish(begin(), opPut, "test", "b", nil)
		finish(begin(), opPut, "other", "b", nil)
		if i%2 == 0 {
			finish(begin(), opPut, "test", "a", &as.AerospikeError{ResultCode: types.TIMEOUT})
		}
		finish(begin(), opGet, "test", "a", nil)
	}
	got := opSeries(t, state().rec.Registry, "")
	want := map[Key]uint64{
		K("put", "test", "a", ""): 10, K("put", "test", "b", ""): 10, K("put", "other", "b", ""): 10,
		K("put", "test", "a", "Timeout"): 5, K("get", "test", "a", ""): 10,
	}
	if len(got) != len(want) {
		t.Fatalf("%d series, want %d: %v", len(got), len(want), got)
	}
	for k, n := range want {
		if got[k].Count != n {
			t.Errorf("%+v: %d, want %d", k, got[k].Count, n)
		}
	}
	if sunk.Load() != 45 {
		t.Errorf("sinks saw %d operations, want 45", sunk.Load())
	}
	// A new state has a new recorder: the cached series of the old one must not be used.
	fresh(t)
	finish(begin(), opPut, "test", "a", nil)
	if got := opSeries(t, state().rec.Registry, ""); got[K("put", "test", "a", "")].Count != 1 {
		t.Fatalf("after a new recorder: %v", got)
	}
}

type countingObserver struct{ n *atomic.Int64 }

func (c countingObserver) Op(*observe.Target, observe.Op)     { c.n.Add(1) }
func (countingObserver) Stage(*observe.Target, observe.Stage) {}
func (countingObserver) TargetGone(*observe.Target)           {}

// More series per operation than the cache holds, past the collection cap: every call still
// lands in its own series, and the observers see the capped set label as the histogram has it.
func TestHotSeriesBeyondTheCacheAndTheCapStayExact(t *testing.T) {
	fresh(t)
	st.rec = metrics.New(metrics.Options{CollectionCap: 3})
	sets := map[string]*atomic.Int64{}
	st.rec.AddObserver(setCounter{sets: sets})
	for _, name := range []string{"s0", "s1", "s2", metrics.OtherCollection} {
		sets[name] = &atomic.Int64{}
	}
	n := hotSeriesMax + 4
	for range 3 {
		for i := range n {
			finish(begin(), opPut, "test", fmt.Sprintf("s%d", i), nil)
		}
	}
	got := opSeries(t, st.rec.Registry, "")
	want := map[Key]uint64{K("put", "test", "s0", ""): 3, K("put", "test", "s1", ""): 3, K("put", "test", "s2", ""): 3,
		K("put", "test", metrics.OtherCollection, ""): uint64(3 * (n - 3))}
	if len(got) != len(want) {
		t.Fatalf("%d series, want %d: %v", len(got), len(want), got)
	}
	for k, c := range want {
		if got[k].Count != c {
			t.Errorf("%+v: %d, want %d", k, got[k].Count, c)
		}
		if seen := sets[k.Set].Load(); seen != int64(c) {
			t.Errorf("observers saw set %q %d times, want %d", k.Set, seen, c)
		}
	}
}

// setCounter counts relayed operations by set label; its map is filled before the first.
type setCounter struct{ sets map[string]*atomic.Int64 }

func (c setCounter) Op(_ *observe.Target, op observe.Op) { c.sets[op.Set].Add(1) }
func (setCounter) Stage(*observe.Target, observe.Stage)  {}
func (setCounter) TargetGone(*observe.Target)            {}
