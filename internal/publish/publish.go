// Package publish periodically LPUSHes JSON snapshots onto a Redis list, as seed 004
// (aios_metrics) does: batches of BatchSize snapshots go out in one pipelined MULTI/EXEC,
// failures back off exponentially, and while Redis is unreachable a bounded queue keeps the
// newest MaxPending snapshots (the oldest are dropped and counted). Producing a snapshot
// and enqueueing it never waits for Redis.
package publish

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/asobserve/asobserve/internal/config"
)

// Settings of the publisher; the defaults are the seed's.
type Settings struct {
	Host           string
	Port           int
	DB             int
	Password       string
	TLS            bool
	Key            string        // list key, default NODE_METRICS
	Interval       time.Duration // between snapshots, default 30 s
	BatchSize      int           // snapshots per pipelined push, default 1
	MaxPending     int           // queue bound while Redis is down, default 120
	BackoffInitial time.Duration // default 1 s
	BackoffMax     time.Duration // default 30 s
	FlushTimeout   time.Duration // Stop's deadline for pending snapshots, default 5 s
}

// FromConfig reads the METRICS_REDIS_* settings. enabled reports METRICS_REDIS_ENABLED.
func FromConfig(c *config.Config) (s Settings, enabled bool, err error) {
	s = Settings{
		Host: c.String(config.RedisHost), Port: c.Int(config.RedisPort), DB: c.Int(config.RedisDB),
		Password: c.String(config.RedisPassword), TLS: c.Bool(config.RedisTLS), Key: c.String(config.RedisQueue),
		Interval: c.Duration(config.RedisPushInterval), BatchSize: c.Int(config.RedisBatchSize),
		MaxPending: c.Int(config.RedisMaxPending), BackoffInitial: c.Duration(config.RedisBackoffInitial),
		BackoffMax: c.Duration(config.RedisBackoffMax), FlushTimeout: c.Duration(config.RedisFlushTimeout),
	}
	if s.BackoffMax < s.BackoffInitial {
		return s, false, fmt.Errorf("METRICS_REDIS_BACKOFF_MAX=%s is below METRICS_REDIS_BACKOFF_INITIAL=%s: raise the maximum or lower the initial backoff",
			s.BackoffMax, s.BackoffInitial)
	}
	if s.MaxPending < s.BatchSize {
		return s, false, fmt.Errorf("METRICS_REDIS_MAX_PENDING=%d is below METRICS_BATCH_SIZE=%d: a batch could never fill; raise the bound", s.MaxPending, s.BatchSize)
	}
	return s, c.Bool(config.RedisEnabled), nil
}

func (s *Settings) applyDefaults() {
	if s.Host == "" {
		s.Host = "localhost"
	}
	if s.Port == 0 {
		s.Port = 6379
	}
	if s.Key == "" {
		s.Key = "NODE_METRICS"
	}
	if s.Interval <= 0 {
		s.Interval = 30 * time.Second
	}
	if s.BatchSize <= 0 {
		s.BatchSize = 1
	}
	if s.MaxPending <= 0 {
		s.MaxPending = 120
	}
	s.MaxPending = max(s.MaxPending, s.BatchSize)
	if s.BackoffInitial <= 0 {
		s.BackoffInitial = time.Second
	}
	if s.BackoffMax <= 0 {
		s.BackoffMax = 30 * time.Second
	}
	s.BackoffMax = max(s.BackoffMax, s.BackoffInitial)
	if s.FlushTimeout <= 0 {
		s.FlushTimeout = 5 * time.Second
	}
}

// Addr is host:port.
func (s Settings) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Options configure a Publisher.
type Options struct {
	Settings
	// Produce returns one snapshot as JSON; it is called once per tick.
	Produce func() ([]byte, error)
	// Registerer receives the asobserve_redis_* metrics; nil skips registration.
	Registerer prometheus.Registerer
	// Logf writes one log line; default log.Printf.
	Logf func(format string, args ...any)
	// Tick replaces the Interval ticker (tests drive it by hand).
	Tick <-chan time.Time
}

// Publisher owns the queue, the ticker and the Redis client.
type Publisher struct {
	s       Settings
	produce func() ([]byte, error)
	logf    func(string, ...any)
	tick    <-chan time.Time
	client  *redis.Client

	mu       sync.Mutex
	queue    [][]byte
	inflight int // queue[:inflight] is being pushed; drops skip it
	wake     chan struct{}

	stop      chan struct{}
	flushDone chan struct{}
	prodDone  chan struct{}
	startOnce sync.Once
	stopOnce  sync.Once

	pushed, dropped, errs prometheus.Counter
	pending               prometheus.GaugeFunc

	// sleep waits d or until stop closes; it reports whether the full delay elapsed.
	sleep func(stop <-chan struct{}, d time.Duration) bool
}

var quietRedisOnce sync.Once

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}

// New builds a publisher; Start begins ticking.
func New(o Options) (*Publisher, error) {
	if o.Produce == nil {
		return nil, errors.New("publish: Produce is required")
	}
	s := o.Settings
	s.applyDefaults()
	// go-redis logs every failed dial itself; the publisher reports failures once per
	// change instead, so its own chatter is silenced (no other package uses go-redis).
	quietRedisOnce.Do(func() { redis.SetLogger(discardLogger{}) })
	ro := &redis.Options{
		Addr: s.Addr(), Password: s.Password, DB: s.DB,
		DialTimeout: 2 * time.Second, ReadTimeout: 3 * time.Second, WriteTimeout: 3 * time.Second,
		MaxRetries: -1, DialerRetries: 1, PoolSize: 2, DisableIdentity: true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	if s.TLS {
		ro.TLSConfig = &tls.Config{ServerName: s.Host, MinVersion: tls.VersionTLS12}
	}
	p := &Publisher{
		s: s, produce: o.Produce, logf: o.Logf, tick: o.Tick, client: redis.NewClient(ro),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), flushDone: make(chan struct{}), prodDone: make(chan struct{}),
		pushed: prometheus.NewCounter(prometheus.CounterOpts{Name: "asobserve_redis_pushed_total",
			Help: "Snapshots LPUSHed to Redis."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "asobserve_redis_dropped_total",
			Help: "Snapshots dropped because the queue was full while Redis was unreachable, or still pending at shutdown."}),
		errs: prometheus.NewCounter(prometheus.CounterOpts{Name: "asobserve_redis_errors_total",
			Help: "Failed Redis pushes (each is retried with backoff)."}),
		sleep: sleepOrStop,
	}
	p.pending = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "asobserve_redis_pending",
		Help: "Snapshots waiting to be pushed to Redis."}, func() float64 { return float64(p.Pending()) })
	if p.logf == nil {
		p.logf = log.Printf
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{p.pushed, p.dropped, p.errs, p.pending} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("publish: register metrics: %w", err)
			}
		}
	}
	return p, nil
}

func sleepOrStop(stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

// Start launches the ticker and the sender. It returns at once.
func (p *Publisher) Start() {
	p.startOnce.Do(func() {
		tick := p.tick
		var ticker *time.Ticker
		if tick == nil {
			ticker = time.NewTicker(p.s.Interval)
			tick = ticker.C
		}
		go p.produceLoop(tick, ticker)
		go p.sendLoop()
	})
}

func (p *Publisher) produceLoop(tick <-chan time.Time, ticker *time.Ticker) {
	defer close(p.prodDone)
	if ticker != nil {
		defer ticker.Stop()
	}
	failing := false
	for {
		select {
		case <-p.stop:
			return
		case _, ok := <-tick:
			if !ok {
				<-p.stop
				return
			}
			b, err := p.produce()
			if err != nil {
				if !failing {
					p.logf("redis publisher: building a snapshot failed: %v (skipping snapshots until it works again)", err)
				}
				failing = true
				continue
			}
			failing = false
			p.Enqueue(b)
		}
	}
}

// Enqueue adds one snapshot without blocking. At the bound, the oldest snapshot that is not
// being pushed right now is dropped (the new one only when all are in flight).
func (p *Publisher) Enqueue(b []byte) {
	p.mu.Lock()
	if len(p.queue) >= p.s.MaxPending {
		p.dropped.Inc()
		if len(p.queue) == p.inflight {
			p.mu.Unlock()
			return
		}
		p.queue = append(p.queue[:p.inflight], p.queue[p.inflight+1:]...)
	}
	p.queue = append(p.queue, b)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Pending is the number of queued snapshots, including those being pushed.
func (p *Publisher) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue)
}

// Stats are the publisher's counters.
type Stats struct{ Pushed, Dropped, Errors uint64 }

// Stats reads the counters.
func (p *Publisher) Stats() Stats {
	return Stats{Pushed: counterValue(p.pushed), Dropped: counterValue(p.dropped), Errors: counterValue(p.errs)}
}

// take marks up to n queued snapshots in flight and returns them.
func (p *Publisher) take(n int) [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	n = min(n, len(p.queue))
	p.inflight = n
	return append([][]byte(nil), p.queue[:n]...)
}

// settle ends the in-flight batch: removed from the queue on success, kept otherwise.
func (p *Publisher) settle(ok bool) {
	p.mu.Lock()
	if ok {
		p.queue = append(p.queue[:0], p.queue[p.inflight:]...)
	}
	p.inflight = 0
	p.mu.Unlock()
}

func (p *Publisher) push(ctx context.Context, batch [][]byte) error {
	_, err := p.client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		for _, b := range batch {
			pipe.LPush(ctx, p.s.Key, b)
		}
		return nil
	})
	return err
}

// failureLog reports a failure streak once per distinct error, and its end.
type failureLog struct {
	p        *Publisher
	last     string
	failures int
}

func (f *failureLog) failed(err error, backoff time.Duration) {
	f.failures++
	msg := err.Error()
	if msg == f.last {
		return
	}
	f.last = msg
	f.p.logf("redis publisher: push to %s (list %s) failed: %s; %s; retrying in %s, backing off up to %s, keeping up to %d snapshots",
		f.p.s.Addr(), f.p.s.Key, strings.TrimRight(strings.TrimSpace(msg), "."), remedy(err), backoff, f.p.s.BackoffMax, f.p.s.MaxPending)
}

func (f *failureLog) ok() {
	if f.failures > 0 {
		f.p.logf("redis publisher: push to %s works again after %d failed attempts", f.p.s.Addr(), f.failures)
	}
	f.last, f.failures = "", 0
}

func remedy(err error) string {
	msg := err.Error()
	var netErr net.Error
	switch {
	case strings.Contains(msg, "WRONGPASS") || strings.Contains(msg, "NOAUTH") || strings.Contains(msg, "invalid password"):
		return "check METRICS_REDIS_PASSWORD"
	case strings.Contains(msg, "tls") || strings.Contains(msg, "x509"):
		return "check METRICS_REDIS_TLS and the server certificate"
	case errors.As(err, &netErr), strings.Contains(msg, "connection refused"):
		return "check METRICS_REDIS_HOST/METRICS_REDIS_PORT and that Redis is running"
	}
	return "check the METRICS_REDIS_* settings"
}

func (p *Publisher) sendLoop() {
	defer close(p.flushDone)
	backoff := p.s.BackoffInitial
	flog := failureLog{p: p}
	for {
		if p.Pending() < p.s.BatchSize {
			select {
			case <-p.wake:
				continue
			case <-p.stop:
				p.flush(&flog)
				return
			}
		}
		select {
		case <-p.stop:
			p.flush(&flog)
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := p.pushBatch(ctx)
		cancel()
		if err == nil {
			flog.ok()
			backoff = p.s.BackoffInitial
			continue
		}
		flog.failed(err, backoff)
		if !p.sleep(p.stop, backoff) {
			p.flush(&flog)
			return
		}
		backoff = min(2*backoff, p.s.BackoffMax)
	}
}

// pushBatch pushes the next batch and settles the queue and counters by the outcome.
func (p *Publisher) pushBatch(ctx context.Context) error {
	batch := p.take(p.s.BatchSize)
	err := p.push(ctx, batch)
	p.settle(err == nil)
	if err != nil {
		p.errs.Inc()
		return err
	}
	p.pushed.Add(float64(len(batch)))
	return nil
}

// flush pushes everything pending, partial batch included, until FlushTimeout; what is left
// then counts as dropped.
func (p *Publisher) flush(flog *failureLog) {
	<-p.prodDone
	deadline := time.Now().Add(p.s.FlushTimeout)
	backoff := p.s.BackoffInitial
	for p.Pending() > 0 && time.Now().Before(deadline) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err := p.pushBatch(ctx)
		cancel()
		if err == nil {
			flog.ok()
			continue
		}
		flog.failed(err, backoff)
		wait := min(backoff, time.Until(deadline))
		if wait > 0 {
			p.sleep(nil, wait)
		}
		backoff = min(2*backoff, p.s.BackoffMax)
	}
	if left := p.Pending(); left > 0 {
		p.dropped.Add(float64(left))
		p.mu.Lock()
		p.queue = nil
		p.mu.Unlock()
		p.logf("redis publisher: %d snapshots not pushed to %s before the %s shutdown deadline; dropped", left, p.s.Addr(), p.s.FlushTimeout)
	}
}

// Stop ends ticking, pushes what is pending within FlushTimeout, and closes the client.
// It is safe to call more than once, and without Start.
func (p *Publisher) Stop() {
	p.stopOnce.Do(func() {
		close(p.stop)
		p.startOnce.Do(func() { close(p.prodDone); close(p.flushDone) }) // never started
		<-p.flushDone
		p.client.Close()
	})
}

func counterValue(c prometheus.Counter) uint64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return uint64(m.GetCounter().GetValue())
}
