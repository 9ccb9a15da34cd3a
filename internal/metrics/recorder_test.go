package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/semconv"
)

// of is the target an identity's events come from in these tests.
func of(id *Identity) *observe.Target { return &observe.Target{Identity: id} }

// lasting is an End for an event that started at 0 and lasted d.
func lasting(d time.Duration) int64 { return int64(d) }

func exposition(t *testing.T, r *Recorder) string {
	return r.Text()
}

func TestHelpAndTypeBeforeAnyOperation(t *testing.T) {
	text := exposition(t, New(Options{}))
	for _, want := range []string{
		"# HELP db_client_operation_duration_seconds Duration of database client operations.\n# TYPE db_client_operation_duration_seconds histogram\n",
		"# HELP db_client_internal_stage_seconds ",
		"# TYPE db_client_internal_stage_seconds histogram\n",
		"asobserve_internal_stage_metrics_enabled 0\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("exposition lacks %q:\n%s", want, text)
		}
	}
}

func TestOperationSeriesLabelsAndBuckets(t *testing.T) {
	r := New(Options{})
	id := &Identity{Service: "svc"}
	r.Op(of(id), observe.Op{Name: "get", Namespace: "test", Set: "users", ErrorType: "KeyNotFoundError", End: lasting(3 * time.Millisecond)})
	r.Op(of(id), observe.Op{Name: "get", Namespace: "test", Set: "users", ErrorType: "KeyNotFoundError", End: lasting(70 * time.Millisecond)})
	text := exposition(t, r)
	prefix := `db_client_operation_duration_seconds_bucket{db_collection_name="users",db_namespace="test",db_operation_name="get",db_system_name="aerospike",error_type="KeyNotFoundError",k8s_container_name="",k8s_namespace_name="",k8s_node_name="",k8s_pod_name="",service_name="svc",le=`
	want := map[string]string{"0.001": "0", "0.005": "1", "0.01": "1", "0.05": "1", "0.1": "2", "0.5": "2", "1": "2", "5": "2", "10": "2", "+Inf": "2"}
	for le, n := range want {
		line := prefix + `"` + le + `"} ` + n + "\n"
		if !strings.Contains(text, line) {
			t.Errorf("missing %q", line)
		}
	}
	if got := len(semconv.OperationBuckets); got != 9 {
		t.Fatalf("%d buckets", got)
	}
}

func TestStagesOnlyWhileEnabled(t *testing.T) {
	r := New(Options{})
	id := &Identity{Service: "svc"}
	r.Stage(of(id), observe.Stage{Name: "io", Op: "batch_read", End: lasting(time.Millisecond)})
	if n := testutil.CollectAndCount(r.stageHist); n != 0 {
		t.Fatalf("stage series while off: %d", n)
	}
	r.SetStagesEnabled(true)
	r.Stage(of(id), observe.Stage{Name: "io", Op: "batch_read", End: lasting(time.Millisecond)})
	if n := testutil.CollectAndCount(r.stageHist); n != 1 {
		t.Fatalf("stage series while on: %d", n)
	}
	if v := testutil.ToFloat64(r.stagesGauge); v != 1 {
		t.Fatalf("gauge %v", v)
	}
}

func TestOperationsSwitch(t *testing.T) {
	r := New(Options{})
	r.SetOperationsEnabled(false)
	r.Op(of(nil), observe.Op{Name: "put", Namespace: "n", Set: "s"})
	if n := testutil.CollectAndCount(r.opHist); n != 0 {
		t.Fatalf("%d series with operations off", n)
	}
}

func TestCollectionCap(t *testing.T) {
	r := New(Options{CollectionCap: 10})
	id := &Identity{Service: "svc"}
	other := &Identity{Service: "other"}
	for i := 0; i < 10000; i++ {
		r.Op(of(id), observe.Op{Name: "put", Namespace: "test", Set: "set" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)})
	}
	r.Op(of(other), observe.Op{Name: "put", Namespace: "test", Set: "fresh"})
	if n := testutil.CollectAndCount(r.opHist); n != 12 { // 10 capped + _other + the other service's
		t.Fatalf("series = %d, want 12", n)
	}
	if v := testutil.ToFloat64(r.labelOverflow); v != 9990 {
		t.Fatalf("overflow = %v, want 9990", v)
	}
}

type countingObserver struct {
	ops, stages int
	gone        []*observe.Target
}

func (c *countingObserver) Op(*observe.Target, observe.Op)       { c.ops++ }
func (c *countingObserver) Stage(*observe.Target, observe.Stage) { c.stages++ }
func (c *countingObserver) TargetGone(t *observe.Target)         { c.gone = append(c.gone, t) }

func TestSinksSeeCappedObservations(t *testing.T) {
	r := New(Options{})
	s := &countingObserver{}
	r.AddObserver(s)
	r.SetStagesEnabled(true)
	r.Op(of(nil), observe.Op{Name: "put"})
	r.Stage(of(nil), observe.Stage{Name: "io"})
	if s.ops != 1 || s.stages != 1 {
		t.Fatalf("sink saw %+v", s)
	}
}

func TestTargetGoneReachesObserversAndKeepsSeries(t *testing.T) {
	r := New(Options{})
	s := &countingObserver{}
	r.AddObserver(s)
	gone := of(&Identity{Service: "svc"})
	r.Op(gone, observe.Op{Name: "put", Namespace: "test", Set: "s"})
	r.TargetGone(gone)
	if len(s.gone) != 1 || s.gone[0] != gone {
		t.Fatalf("observer saw TargetGone for %v, want exactly the gone target", s.gone)
	}
	if n := testutil.CollectAndCount(r.opHist); n != 1 {
		t.Fatalf("%d operation series after TargetGone, want the identity's 1 kept", n)
	}
}

func BenchmarkObserveOp(b *testing.B) {
	r := New(Options{})
	id := &Identity{Service: "svc"}
	tg := of(id)
	op := observe.Op{Name: "get", Namespace: "test", Set: "users", End: lasting(time.Millisecond)}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r.Op(tg, op)
	}
}

func TestEqualIdentitiesShareOneSeries(t *testing.T) {
	r := New(Options{})
	a, b := &Identity{Service: "svc"}, &Identity{Service: "svc"}
	r.Op(of(a), observe.Op{Name: "get", Namespace: "test", Set: "users", End: lasting(time.Millisecond)})
	r.Op(of(b), observe.Op{Name: "get", Namespace: "test", Set: "users", End: lasting(time.Millisecond)})
	if n := testutil.CollectAndCount(r.opHist); n != 1 {
		t.Fatalf("%d series for two equal identities, want 1", n)
	}
	if !strings.Contains(r.Text(), "db_client_operation_duration_seconds_count{") ||
		!strings.Contains(r.Text(), `service_name="svc"} 2`+"\n") {
		t.Errorf("the shared series lacks a count of 2:\n%s", r.Text())
	}
	r.Forget(a)
	if n := testutil.CollectAndCount(r.opHist); n != 1 {
		t.Fatalf("%d series after forgetting one of two equal identities, want b's 1", n)
	}
	r.Forget(b)
	if n := testutil.CollectAndCount(r.opHist); n != 0 {
		t.Fatalf("%d series after forgetting both, want 0", n)
	}
}

func TestForgetDropsTheIdentitysSeries(t *testing.T) {
	r := New(Options{})
	r.SetStagesEnabled(true)
	gone, kept := &Identity{Service: "gone"}, &Identity{Service: "kept"}
	for _, id := range []*Identity{gone, kept} {
		r.Op(of(id), observe.Op{Name: "get", End: lasting(time.Millisecond)})
		r.Stage(of(id), observe.Stage{Name: "io", Op: "get", End: lasting(time.Millisecond)})
	}
	r.Forget(gone)
	if n, m := testutil.CollectAndCount(r.opHist), testutil.CollectAndCount(r.stageHist); n != 1 || m != 1 {
		t.Fatalf("%d operation and %d stage series after Forget, want the kept identity's 1 and 1", n, m)
	}
	if strings.Contains(r.Text(), `service_name="gone"`) {
		t.Errorf("the forgotten identity's series remain:\n%s", r.Text())
	}
}
