package publish

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/rolling"
	"github.com/asobserve/asobserve/internal/snapshot"
	"github.com/asobserve/asobserve/internal/snapshot/snapshottest"
)

const (
	redisBin  = "/usr/bin/redis-server"
	redisPass = "s3cret-pass"
)

type redisServer struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
}

func needRedis(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(redisBin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing under CI: install the Debian package redis-server (make deps)", redisBin)
		}
		t.Skipf("%s not installed (apt-get install redis-server; with CI=true this fails)", redisBin)
	}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startRedis(t *testing.T, port int) *redisServer {
	t.Helper()
	r := &redisServer{t: t, port: port}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *redisServer) start() {
	r.t.Helper()
	r.cmd = exec.Command(redisBin, "--port", fmt.Sprint(r.port), "--bind", "127.0.0.1", "--requirepass", redisPass,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	c := r.client()
	defer c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := c.Ping(context.Background()).Err(); err == nil {
			return
		} else if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on port %d not ready: %v", r.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *redisServer) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

func (r *redisServer) client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.port), Password: redisPass})
}

// items returns the list oldest first (LPUSH puts the newest at the head).
func (r *redisServer) items(key string) [][]byte {
	c := r.client()
	defer c.Close()
	vals, err := c.LRange(context.Background(), key, 0, -1).Result()
	if err != nil {
		r.t.Fatal(err)
	}
	out := make([][]byte, len(vals))
	for i, v := range vals {
		out[len(vals)-1-i] = []byte(v)
	}
	return out
}

func (r *redisServer) llen(key string) int64 {
	c := r.client()
	defer c.Close()
	n, err := c.LLen(context.Background(), key).Result()
	if err != nil {
		r.t.Fatal(err)
	}
	return n
}

// seqSource produces real snapshots whose generated_at encodes a sequence number.
type seqSource struct {
	seq atomic.Int64
	src snapshot.Source
}

var base = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func newSeqSource() *seqSource {
	rec := metrics.New(metrics.Options{})
	roll := rolling.New(rolling.Options{})
	rec.AddObserver(roll)
	rec.Op(&observe.Target{Identity: &observe.Identity{Service: "svc"}}, observe.Op{Name: "get", Namespace: "test", Set: "s", End: int64(time.Millisecond)})
	s := &seqSource{}
	s.src = snapshot.Source{Registry: rec.Registry, Rolling: roll, Identity: snapshot.Identity{BlockID: "b", InstanceID: "i", Node: "n"},
		Now: func() time.Time { return base.Add(time.Duration(s.seq.Add(1)) * time.Second) }}
	return s
}

func (s *seqSource) produce() func() ([]byte, error) { return snapshot.JSON(s.src) }

// seqs validates every item against the schema and returns their sequence numbers.
func seqs(t *testing.T, items [][]byte) []int {
	t.Helper()
	var out []int
	for _, it := range items {
		if err := snapshottest.Validate(it); err != nil {
			t.Fatalf("schema: %v", err)
		}
		var s snapshot.Snapshot
		if err := json.Unmarshal(it, &s); err != nil {
			t.Fatal(err)
		}
		out = append(out, int(s.GeneratedAt.Sub(base)/time.Second))
	}
	return out
}

type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (l *logSink) logf(format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *logSink) matching(sub string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			out = append(out, s)
		}
	}
	return out
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type backoffs struct {
	mu sync.Mutex
	d  []time.Duration
}

func (b *backoffs) hook(stop <-chan struct{}, d time.Duration) bool {
	b.mu.Lock()
	b.d = append(b.d, d)
	b.mu.Unlock()
	return sleepOrStop(stop, d)
}

func (b *backoffs) get() []time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.d)
}

func settings(port int) Settings {
	return Settings{Host: "127.0.0.1", Port: port, Password: redisPass, Key: "NODE_METRICS", Interval: time.Hour,
		BatchSize: 1, MaxPending: 5, BackoffInitial: 100 * time.Millisecond, BackoffMax: 400 * time.Millisecond, FlushTimeout: 2 * time.Second}
}

func TestBatchSizeAndFlush(t *testing.T) {
	needRedis(t)
	srv := startRedis(t, freePort(t))
	src := newSeqSource()
	tick := make(chan time.Time)
	s := settings(srv.port)
	s.BatchSize, s.MaxPending = 3, 10
	reg := prometheus.NewRegistry()
	p, err := New(Options{Settings: s, Produce: src.produce(), Registerer: reg, Tick: tick, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	for i := 1; i <= 8; i++ {
		tick <- time.Now()
		switch i {
		case 2:
			waitFor(t, "2 pending", time.Second, func() bool { return p.Pending() == 2 })
			time.Sleep(100 * time.Millisecond)
			if n := srv.llen("NODE_METRICS"); n != 0 {
				t.Fatalf("after 2 ticks with batch size 3: LLEN %d, want 0", n)
			}
		case 3, 6:
			waitFor(t, "a batch", 2*time.Second, func() bool { return srv.llen("NODE_METRICS") == int64(i) })
		}
	}
	waitFor(t, "2 pending", time.Second, func() bool { return p.Pending() == 2 })
	if n := srv.llen("NODE_METRICS"); n != 6 {
		t.Fatalf("after 8 ticks: LLEN %d, want 6", n)
	}
	p.Stop() // flushes the partial batch
	if got := seqs(t, srv.items("NODE_METRICS")); !slices.Equal(got, []int{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("snapshots %v", got)
	}
	if v := testutil.ToFloat64(p.pushed); v != 8 || testutil.ToFloat64(p.dropped) != 0 || testutil.ToFloat64(p.errs) != 0 {
		t.Fatalf("pushed %v dropped %v errors %v", v, testutil.ToFloat64(p.dropped), testutil.ToFloat64(p.errs))
	}
	if n, err := testutil.GatherAndCount(reg, "asobserve_redis_pushed_total", "asobserve_redis_dropped_total", "asobserve_redis_errors_total", "asobserve_redis_pending"); err != nil || n != 4 {
		t.Fatalf("registered metrics: %d, %v", n, err)
	}
}

func TestIntervalWithRealTicker(t *testing.T) {
	needRedis(t)
	srv := startRedis(t, freePort(t))
	src := newSeqSource()
	s := settings(srv.port)
	s.Interval, s.BatchSize, s.MaxPending = 250*time.Millisecond, 2, 10
	p, err := New(Options{Settings: s, Produce: src.produce(), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p.Start()
	defer p.Stop()
	for {
		n := srv.llen("NODE_METRICS")
		if n%2 != 0 {
			t.Fatalf("LLEN %d is not a multiple of the batch size 2", n)
		}
		if n >= 6 {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("only %d snapshots after 5 s at 250 ms", n)
		}
		time.Sleep(3 * time.Millisecond)
	}
	elapsed := time.Since(start)
	// Six snapshots at 250 ms: a ticker never fires early, so the sixth cannot exist
	// before 1.5 s. How late it may come depends on the machine's load: the wait above
	// bounds it generously instead of a wall-clock window.
	if elapsed < 1500*time.Millisecond {
		t.Fatalf("6 snapshots after %v: produced faster than every 250 ms", elapsed)
	}
}

func TestOutageKeepsNewestWithinBoundAndCountsDrops(t *testing.T) {
	needRedis(t)
	srv := startRedis(t, freePort(t))
	src := newSeqSource()
	tick := make(chan time.Time)
	logs := &logSink{}
	bo := &backoffs{}
	s := settings(srv.port)
	s.BackoffInitial, s.BackoffMax = 200*time.Millisecond, 800*time.Millisecond
	p, err := New(Options{Settings: s, Produce: src.produce(), Tick: tick, Logf: logs.logf})
	if err != nil {
		t.Fatal(err)
	}
	p.sleep = bo.hook
	p.Start()
	defer p.Stop()

	tick <- time.Now()
	tick <- time.Now()
	waitFor(t, "2 pushed", 2*time.Second, func() bool { return srv.llen("NODE_METRICS") == 2 })

	srv.kill()
	down := time.Now()
	tick <- time.Now() // snapshot 3: the sender fails once and sleeps 200 ms
	waitFor(t, "first failure", 3*time.Second, func() bool { return testutil.ToFloat64(p.errs) == 1 })
	for i := 0; i < 7; i++ { // snapshots 4..10 while it sleeps: 8 queued against a bound of 5
		tick <- time.Now()
	}
	waitFor(t, "3 drops", time.Second, func() bool { return testutil.ToFloat64(p.dropped) == 3 })
	if p.Pending() != 5 || testutil.ToFloat64(p.dropped) != 3 {
		t.Fatalf("pending %d dropped %v, want 5 and 3", p.Pending(), testutil.ToFloat64(p.dropped))
	}
	time.Sleep(10*time.Second - time.Since(down))
	srv.start()
	waitFor(t, "resumed publishing", 5*time.Second, func() bool { return p.Pending() == 0 })

	// The restarted server has no persistence, so 1 and 2 went with the old one.
	if got := seqs(t, srv.items("NODE_METRICS")); !slices.Equal(got, []int{6, 7, 8, 9, 10}) {
		t.Fatalf("snapshots in Redis %v, want the newest five, 6..10", got)
	}
	// Every snapshot is accounted for exactly once: delivered (2 before the outage plus
	// what the new server holds) or counted as dropped. Whether the in-flight snapshot 3 or
	// a later one gave way depends on where the retry was when the queue overflowed.
	waitFor(t, "every snapshot accounted", 5*time.Second, func() bool {
		return testutil.ToFloat64(p.pushed)+testutil.ToFloat64(p.dropped) == 10
	})
	// A push whose reply is lost while Redis restarts counts as failed although Redis may
	// have applied it, so "pushed" can be one short of what arrived: at-least-once is the
	// contract, and the total must still balance.
	pushed, dropped := testutil.ToFloat64(p.pushed), testutil.ToFloat64(p.dropped)
	if pushed+dropped != 10 || dropped < 3 || pushed > 7 {
		t.Fatalf("pushed %v dropped %v: want every one of 10 snapshots counted once, at least 3 dropped", pushed, dropped)
	}
	errs := int(testutil.ToFloat64(p.errs))
	// 10 s down with 200, 400, 800, 800 … ms of backoff: about 14 attempts.
	if errs < 9 || errs > 16 {
		t.Fatalf("%d failed attempts during 10 s, want about 14", errs)
	}
	d := bo.get()
	if len(d) != errs || !slices.Equal(d[:4], []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 800 * time.Millisecond}) {
		t.Fatalf("backoffs %v for %d errors", d, errs)
	}
	if fails := logs.matching(") failed: "); len(fails) != 1 || !strings.Contains(fails[0], "connection refused") ||
		!strings.Contains(fails[0], "check METRICS_REDIS_HOST/METRICS_REDIS_PORT") {
		t.Fatalf("failure lines %q, want exactly one naming the refusal and the remedy", fails)
	}
	if ok := logs.matching("works again"); len(ok) != 1 || !strings.Contains(ok[0], fmt.Sprintf("after %d failed attempts", errs)) {
		t.Fatalf("recovery lines %q", ok)
	}
}

func TestWrongPasswordLogsOnceAndBacksOff(t *testing.T) {
	needRedis(t)
	srv := startRedis(t, freePort(t))
	src := newSeqSource()
	tick := make(chan time.Time)
	logs := &logSink{}
	bo := &backoffs{}
	s := settings(srv.port)
	s.Password = "wrong"
	s.FlushTimeout = 300 * time.Millisecond
	p, err := New(Options{Settings: s, Produce: src.produce(), Tick: tick, Logf: logs.logf})
	if err != nil {
		t.Fatal(err)
	}
	p.sleep = bo.hook
	p.Start()
	tick <- time.Now()
	waitFor(t, "4 failed attempts", 5*time.Second, func() bool { return testutil.ToFloat64(p.errs) >= 4 })
	p.Stop()

	fails := logs.matching(") failed: ")
	t.Logf("logged: %q", fails)
	if len(fails) != 1 || !strings.Contains(fails[0], "WRONGPASS") || !strings.Contains(fails[0], "check METRICS_REDIS_PASSWORD") ||
		!strings.Contains(fails[0], "retrying in 100ms, backing off up to 400ms") {
		t.Fatalf("failure lines %q, want one WRONGPASS line with the remedy and the backoff", fails)
	}
	if d := bo.get(); len(d) < 4 || !slices.Equal(d[:4], []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 400 * time.Millisecond}) {
		t.Fatalf("backoffs %v", d)
	}
	if srv.llen("NODE_METRICS") != 0 || testutil.ToFloat64(p.pushed) != 0 || testutil.ToFloat64(p.dropped) != 1 {
		t.Fatalf("LLEN %d pushed %v dropped %v, want 0, 0, 1", srv.llen("NODE_METRICS"), testutil.ToFloat64(p.pushed), testutil.ToFloat64(p.dropped))
	}
	if left := logs.matching("before the 300ms shutdown deadline"); len(left) != 1 || !strings.HasPrefix(left[0], "redis publisher: 1 snapshots") {
		t.Fatalf("shutdown lines %q", left)
	}
}

func TestEnqueueNeverBlocksAndDropsOldest(t *testing.T) {
	p, err := New(Options{Settings: Settings{MaxPending: 3, Port: 1}, Produce: func() ([]byte, error) { return nil, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	start := time.Now()
	for i := 1; i <= 1000; i++ {
		p.Enqueue([]byte(fmt.Sprint(i)))
	}
	if time.Since(start) > time.Second {
		t.Fatal("Enqueue blocked")
	}
	p.mu.Lock()
	got := fmt.Sprintf("%s", p.queue)
	p.mu.Unlock()
	if got != "[998 999 1000]" || testutil.ToFloat64(p.dropped) != 997 {
		t.Fatalf("queue %s dropped %v", got, testutil.ToFloat64(p.dropped))
	}
	// In-flight snapshots are never dropped: the oldest one waiting goes instead.
	p.take(2)
	p.Enqueue([]byte("1001"))
	p.mu.Lock()
	got = fmt.Sprintf("%s", p.queue)
	p.mu.Unlock()
	if got != "[998 999 1001]" {
		t.Fatalf("queue with 2 in flight: %s", got)
	}
}
