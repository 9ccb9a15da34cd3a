package config

import (
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func bind(t *testing.T, env map[string]string, args ...string) (*Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	b := Agent.Bind(fs)
	b.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return b.Resolve()
}

func TestDefaults(t *testing.T) {
	c, err := bind(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range c.Values() {
		if v.Source != FromDefault {
			t.Fatalf("%s from %s", v.Name, v.Source)
		}
	}
	if c.String(Listen) != "127.0.0.1:9464" || c.String(AdminListen) != "127.0.0.1:9465" || c.Bool(Stages) || c.Bool(Tracing) || c.Bool(BPFStats) ||
		c.Size(RingbufSize) != 8<<20 || c.Int(MaxCollections) != 1000 || c.Bool(RedisEnabled) ||
		c.String(RedisHost) != "localhost" || c.Int(RedisPort) != 6379 || c.Int(RedisDB) != 0 || c.String(RedisQueue) != "NODE_METRICS" ||
		c.Duration(RedisPushInterval) != 30*time.Second || c.Int(RedisBatchSize) != 1 ||
		c.Duration(RedisBackoffInitial) != time.Second || c.Duration(RedisBackoffMax) != 30*time.Second ||
		c.String(BlockID) != "test-block" || c.String(InstanceID) != "instance-001" {
		t.Fatalf("defaults wrong: %+v", c.Values())
	}
	w := c.RollingWindows()
	if len(w) != 3 || w[0] != time.Minute || w[1] != 5*time.Minute || w[2] != 15*time.Minute {
		t.Fatalf("windows %v", w)
	}
}

func TestFlagBeatsEnvBeatsDefault(t *testing.T) {
	env := map[string]string{"METRICS_REDIS_HOST": "redis.env", "METRICS_REDIS_PORT": "6380", "METRICS_PUSH_INTERVAL": "1m", "ASOBSERVE_INTERNAL_METRICS": "yes"}
	c, err := bind(t, env, "--redis-host=redis.flag", "--redis-batch-size", "5", "--stages=false", "--tracing")
	if err != nil {
		t.Fatal(err)
	}
	check := func(name, raw string, src Source) {
		t.Helper()
		v := c.Lookup(name)
		if v.Raw != raw || v.Source != src {
			t.Fatalf("%s = %q from %s, want %q from %s", name, v.Raw, v.Source, raw, src)
		}
	}
	check(RedisHost, "redis.flag", FromFlag)
	check(RedisPort, "6380", FromEnv)
	check(RedisBatchSize, "5", FromFlag)
	check(RedisDB, "0", FromDefault)
	check(RedisPushInterval, "1m", FromEnv)
	check(Stages, "false", FromFlag) // the flag wins over ASOBSERVE_INTERNAL_METRICS=yes
	check(Tracing, "true", FromFlag) // a bare bool flag means true
	if c.Int(RedisPort) != 6380 || c.Duration(RedisPushInterval) != time.Minute || c.Bool(Stages) || !c.Bool(Tracing) {
		t.Fatal("typed getters disagree with the raw values")
	}
}

func TestSecretsMasked(t *testing.T) {
	c, err := bind(t, map[string]string{"METRICS_REDIS_PASSWORD": "hunter2"})
	if err != nil {
		t.Fatal(err)
	}
	v := c.Lookup(RedisPassword)
	if v.Display() != "********" || v.Raw != "hunter2" || v.Source != FromEnv {
		t.Fatalf("password shown as %q (raw %q, %s)", v.Display(), v.Raw, v.Source)
	}
	if c.Lookup(RedisHost).Display() != "localhost" {
		t.Fatal("non-secret masked")
	}
	empty, _ := bind(t, nil)
	if empty.Lookup(RedisPassword).Display() != "" {
		t.Fatal("an unset password must show as empty, not masked")
	}
}

func TestMalformedValuesGiveOneLineErrors(t *testing.T) {
	cases := []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"METRICS_PUSH_INTERVAL": "abc"}, nil,
			`METRICS_PUSH_INTERVAL="abc": not a duration or number of seconds; use e.g. 30 or 30s`},
		{nil, []string{"--redis-port=70000"}, `--redis-port="70000": must be between 1 and 65535; use e.g. 6379`},
		{map[string]string{"METRICS_REDIS_PORT": "x"}, nil, `METRICS_REDIS_PORT="x": not an integer; use e.g. 6379`},
		{map[string]string{"METRICS_REDIS_ENABLED": "maybe"}, nil,
			`METRICS_REDIS_ENABLED="maybe": not a boolean; use 1, true, yes, on or 0, false, no, off`},
		{map[string]string{"ASOBSERVE_RINGBUF_SIZE": "3MiB"}, nil,
			`ASOBSERVE_RINGBUF_SIZE="3MiB": ring buffer size must be a power of two of at least 4KiB; use e.g. 8MiB`},
		{map[string]string{"ROLLING_AVG_1M": "0"}, nil, `ROLLING_AVG_1M="0": must be positive; use e.g. 60 or 60s`},
		{nil, []string{"--listen=9464"}, `--listen="9464": not a host:port address; use e.g. 127.0.0.1:9464`},
		{map[string]string{"METRICS_BATCH_SIZE": "0"}, nil, `METRICS_BATCH_SIZE="0": must be between 1 and 10000; use e.g. 1`},
	}
	for _, c := range cases {
		_, err := bind(t, c.env, c.args...)
		if err == nil || err.Error() != c.want {
			t.Errorf("env %v args %v: error %v, want %q", c.env, c.args, err, c.want)
		}
	}
}

func TestAdoptsExistingFlagAndUnboundSettings(t *testing.T) {
	fs := pflag.NewFlagSet("attach", pflag.ContinueOnError)
	var ring int
	fs.IntVar(&ring, "ringbuf-size", 8<<20, "typed flag defined by the command")
	b := Agent.Bind(fs, RingbufSize, Listen)
	b.LookupEnv = func(k string) (string, bool) {
		if k == "METRICS_REDIS_HOST" {
			return "from-env", true
		}
		return "", false
	}
	if fs.Lookup("redis-host") != nil {
		t.Fatal("unbound setting got a flag")
	}
	if err := fs.Parse([]string{"--ringbuf-size=1048576"}); err != nil {
		t.Fatal(err)
	}
	c, err := b.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if c.Size(RingbufSize) != 1<<20 || c.Lookup(RingbufSize).Source != FromFlag || ring != 1<<20 {
		t.Fatalf("adopted flag: %+v", c.Lookup(RingbufSize))
	}
	if c.String(RedisHost) != "from-env" { // env still applies to settings without a flag here
		t.Fatalf("redis host %q", c.String(RedisHost))
	}
}

func TestSizeAndSecondsParsing(t *testing.T) {
	for raw, want := range map[string]int{"4096": 4096, "512KiB": 512 << 10, "8M": 8 << 20, "1GiB": 1 << 30} {
		if got, err := parseSize(raw, ""); err != nil || got != want {
			t.Errorf("size %q = %d, %v; want %d", raw, got, err, want)
		}
	}
	for raw, want := range map[string]time.Duration{"30": 30 * time.Second, "0.5": 500 * time.Millisecond, "1m30s": 90 * time.Second} {
		if got, err := parseSeconds(raw, ""); err != nil || got != want {
			t.Errorf("seconds %q = %v, %v; want %v", raw, got, err, want)
		}
	}
}
