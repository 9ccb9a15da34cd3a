package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

func TestConfigCommandShowsSourcesAndMasksSecrets(t *testing.T) {
	t.Setenv("METRICS_REDIS_PASSWORD", "hunter2")
	t.Setenv("METRICS_REDIS_HOST", "redis.internal")
	t.Setenv("METRICS_REDIS_PORT", "6390")
	out, err := runCLI(t, "config", "--redis-port", "6380", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "hunter2") {
		t.Fatalf("secret printed:\n%s", out)
	}
	var rows []configRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	got := map[string]configRow{}
	for _, r := range rows {
		got[r.Name] = r
	}
	want := map[string]configRow{
		"redis-password":   {Name: "redis-password", Flag: "--redis-password", Env: "METRICS_REDIS_PASSWORD", Value: "********", Source: "env"},
		"redis-port":       {Name: "redis-port", Flag: "--redis-port", Env: "METRICS_REDIS_PORT", Value: "6380", Source: "flag"},
		"redis-host":       {Name: "redis-host", Flag: "--redis-host", Env: "METRICS_REDIS_HOST", Value: "redis.internal", Source: "env"},
		"redis-enabled":    {Name: "redis-enabled", Flag: "--redis-enabled", Env: "METRICS_REDIS_ENABLED", Value: "false", Source: "default"},
		"bpf-stats":        {Name: "bpf-stats", Flag: "--bpf-stats", Env: "ASOBSERVE_BPF_STATS", Value: "false", Source: "default"},
		"metrics-exporter": {Name: "metrics-exporter", Env: "OTEL_METRICS_EXPORTER", Value: "prometheus", Source: "default"},
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: %+v, want %+v", name, got[name], w)
		}
	}
	if len(rows) != 33 { // 25, and the 8 OTEL_* metric export settings
		t.Errorf("%d settings, want 33", len(rows))
	}

	table, err := runCLI(t, "config", "--json=false")
	if err != nil {
		t.Fatal(err)
	}
	// Column widths follow the longest environment variable name; the row is what matters.
	if !regexp.MustCompile(`(?m)^redis-password +METRICS_REDIS_PASSWORD +\*{8} +env$`).MatchString(table) {
		t.Errorf("table:\n%s", table)
	}
}

func TestConfigCommandRejectsMalformedValue(t *testing.T) {
	t.Setenv("METRICS_PUSH_INTERVAL", "abc")
	_, err := runCLI(t, "config")
	if err == nil || exitCode(err) != 2 || err.Error() != `METRICS_PUSH_INTERVAL="abc": not a duration or number of seconds; use e.g. 30 or 30s` {
		t.Fatalf("error %v (exit %d)", err, exitCode(err))
	}
}
