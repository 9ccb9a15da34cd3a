package config

import "math"

// Names of the agent's settings (Setting.Name, also the flag name).
const (
	Listen         = "listen"
	AdminListen    = "admin-listen"
	Stages         = "stages"
	Tracing        = "tracing"
	BPFStats       = "bpf-stats"
	RingbufSize    = "ringbuf-size"
	MaxCollections = "max-collections"
	Rolling1m      = "rolling-1m"
	Rolling5m      = "rolling-5m"
	Rolling15m     = "rolling-15m"
	BlockID        = "block-id"
	InstanceID     = "instance-id"

	RedisEnabled        = "redis-enabled"
	RedisHost           = "redis-host"
	RedisPort           = "redis-port"
	RedisDB             = "redis-db"
	RedisPassword       = "redis-password"
	RedisTLS            = "redis-tls"
	RedisQueue          = "redis-queue"
	RedisPushInterval   = "redis-push-interval"
	RedisBatchSize      = "redis-batch-size"
	RedisBackoffInitial = "redis-backoff-initial"
	RedisBackoffMax     = "redis-backoff-max"
	RedisMaxPending     = "redis-max-pending"
	RedisFlushTimeout   = "redis-flush-timeout"
)

// Agent declares every setting of the agent. The environment variable names and defaults
// of the Redis and rolling settings are seed 004's (aios_metrics), except where noted.
var Agent = NewSet(append([]Setting{
	{Name: Listen, Flag: Listen, Env: "ASOBSERVE_LISTEN", Default: "127.0.0.1:9464",
		Help: "address for /metrics, /healthz and /snapshot", Check: listenAddr(false, "127.0.0.1:9464")},
	{Name: AdminListen, Flag: AdminListen, Env: "ASOBSERVE_ADMIN_LISTEN", Default: "127.0.0.1:9465",
		Help: "address for admin endpoints (PUT /stages); keep it on localhost; empty disables", Check: listenAddr(true, "127.0.0.1:9465")},
	{Name: Stages, Flag: Stages, Env: "ASOBSERVE_INTERNAL_METRICS", Default: "false", Kind: Bool,
		Help: "attach internal stage probes from the start"},
	{Name: Tracing, Flag: Tracing, Env: "ASOBSERVE_TRACING", Default: "false", Kind: Bool,
		Help: "export a span per operation over OTLP (OTEL_* environment variables)"},
	{Name: BPFStats, Flag: BPFStats, Env: "ASOBSERVE_BPF_STATS", Default: "false", Kind: Bool,
		Help: "turn on the kernel's BPF run-time statistics for asobserve_bpf_program_*; while they are on, every BPF program on the host costs ≈75 ns more per run"},
	{Name: RingbufSize, Flag: RingbufSize, Env: "ASOBSERVE_RINGBUF_SIZE", Default: "8MiB", Kind: Size,
		Help: "BPF ring buffer size (power of two)", Check: ringSize},
	{Name: MaxCollections, Flag: MaxCollections, Env: "ASOBSERVE_MAX_COLLECTIONS", Default: "1000", Kind: Int,
		Help: `distinct (namespace, set) pairs per service before db_collection_name="_other"`, Check: intRange(1, math.MaxInt32, "1000")},
	{Name: Rolling1m, Flag: Rolling1m, Env: "ROLLING_AVG_1M", Default: "60", Kind: Seconds,
		Help: "length of the first rolling window, seconds", Check: positiveSeconds("60")},
	{Name: Rolling5m, Flag: Rolling5m, Env: "ROLLING_AVG_5M", Default: "300", Kind: Seconds,
		Help: "length of the second rolling window, seconds", Check: positiveSeconds("300")},
	{Name: Rolling15m, Flag: Rolling15m, Env: "ROLLING_AVG_15M", Default: "900", Kind: Seconds,
		Help: "length of the third rolling window, seconds", Check: positiveSeconds("900")},
	{Name: BlockID, Flag: BlockID, Env: "BLOCK_ID", Default: "test-block",
		Help: "logical block identifier in snapshots"},
	{Name: InstanceID, Flag: InstanceID, Env: "INSTANCE_ID", Default: "instance-001",
		Help: "instance identifier in snapshots"},

	{Name: RedisEnabled, Flag: RedisEnabled, Env: "METRICS_REDIS_ENABLED", Default: "false", Kind: Bool,
		Help: "LPUSH JSON snapshots to Redis (off by default, unlike the seed: an agent must not write to a Redis it was not told about)"},
	{Name: RedisHost, Flag: RedisHost, Env: "METRICS_REDIS_HOST", Default: "localhost",
		Help: "Redis host", Check: nonEmpty("localhost")},
	{Name: RedisPort, Flag: RedisPort, Env: "METRICS_REDIS_PORT", Default: "6379", Kind: Int,
		Help: "Redis port", Check: intRange(1, 65535, "6379")},
	{Name: RedisDB, Flag: RedisDB, Env: "METRICS_REDIS_DB", Default: "0", Kind: Int,
		Help: "Redis database index", Check: intRange(0, math.MaxInt32, "0")},
	{Name: RedisPassword, Flag: RedisPassword, Env: "METRICS_REDIS_PASSWORD", Secret: true,
		Help: "Redis password (prefer the environment: flags are visible in ps)"},
	{Name: RedisTLS, Flag: RedisTLS, Env: "METRICS_REDIS_TLS", Default: "false", Kind: Bool,
		Help: "connect to Redis over TLS (system roots)"},
	{Name: RedisQueue, Flag: RedisQueue, Env: "METRICS_REDIS_QUEUE", Default: "NODE_METRICS",
		Help: "Redis list key the snapshots are LPUSHed to", Check: nonEmpty("NODE_METRICS")},
	{Name: RedisPushInterval, Flag: RedisPushInterval, Env: "METRICS_PUSH_INTERVAL", Default: "30", Kind: Seconds,
		Help: "interval between snapshots, seconds", Check: positiveSeconds("30")},
	{Name: RedisBatchSize, Flag: RedisBatchSize, Env: "METRICS_BATCH_SIZE", Default: "1", Kind: Int,
		Help: "snapshots per pipelined LPUSH batch", Check: intRange(1, 10000, "1")},
	{Name: RedisBackoffInitial, Flag: RedisBackoffInitial, Env: "METRICS_REDIS_BACKOFF_INITIAL", Default: "1", Kind: Seconds,
		Help: "first retry delay after a Redis failure, seconds (doubles per failure)", Check: positiveSeconds("1")},
	{Name: RedisBackoffMax, Flag: RedisBackoffMax, Env: "METRICS_REDIS_BACKOFF_MAX", Default: "30", Kind: Seconds,
		Help: "longest retry delay, seconds", Check: positiveSeconds("30")},
	{Name: RedisMaxPending, Flag: RedisMaxPending, Env: "METRICS_REDIS_MAX_PENDING", Default: "120", Kind: Int,
		Help: "snapshots kept while Redis is unreachable; the oldest are dropped (and counted) beyond it (asobserve addition)", Check: intRange(1, 1_000_000, "120")},
	{Name: RedisFlushTimeout, Flag: RedisFlushTimeout, Env: "METRICS_REDIS_FLUSH_TIMEOUT", Default: "5", Kind: Seconds,
		Help: "how long shutdown may spend pushing pending snapshots, seconds (asobserve addition)", Check: positiveSeconds("5")},
}, metricSettings...)...)
