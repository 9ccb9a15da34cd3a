package tracing

import (
	"os"
	"strconv"
	"time"
)

// bspConfig holds the batch settings of the standard OTEL_BSP_* variables. The SDK's batch
// processor is not used because it drops silently when full; this pipeline counts every loss.
type bspConfig struct {
	scheduleDelay time.Duration
	exportTimeout time.Duration
	maxBatch      int
	maxQueue      int
}

func bspFromEnv(logf func(string, ...any)) bspConfig {
	c := bspConfig{
		scheduleDelay: envMillis(logf, "OTEL_BSP_SCHEDULE_DELAY", 5000),
		exportTimeout: envMillis(logf, "OTEL_BSP_EXPORT_TIMEOUT", 30000),
		maxBatch:      envInt(logf, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512),
		maxQueue:      envInt(logf, "OTEL_BSP_MAX_QUEUE_SIZE", 2048),
	}
	if c.maxBatch > c.maxQueue {
		c.maxBatch = c.maxQueue
	}
	return c
}

// backlog bounds the batches waiting for the export goroutine; small batches flushed by the
// timer count against maxQueue by their size, so this only needs to be generous.
func (c bspConfig) backlog() int { return 64 }

func envInt(logf func(string, ...any), name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		logf("[asobserve] warning: tracing: ignoring %s=%q: want a positive integer", name, v)
		return def
	}
	return n
}

func envMillis(logf func(string, ...any), name string, def int) time.Duration {
	return time.Duration(envInt(logf, name, def)) * time.Millisecond
}
