//go:build e2e && linux

// Package e2e checks asobserve against a real Prometheus (`make e2e`): the seed's PromQL
// examples and every Grafana dashboard panel must return sane, non-empty results.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/asobserve/asobserve/internal/semconv"
	"github.com/asobserve/asobserve/internal/testserver"
)

// The seed's PromQL examples, verbatim (000/001: "PromQL Examples"; 002: stage queries).
const (
	seedAvgLatency = `rate(db_client_operation_duration_seconds_sum[5m])
/ rate(db_client_operation_duration_seconds_count[5m])`
	seedP99          = `histogram_quantile(0.99, rate(db_client_operation_duration_seconds_bucket[5m]))`
	seedErrorsByType = `sum by (error_type) (rate(db_client_operation_duration_seconds_count{error_type!=""}[5m]))`
	seedOpsByNS      = `sum by (db_namespace, db_operation_name) (rate(db_client_operation_duration_seconds_count[1m]))`
	seedStageP95     = `histogram_quantile(
0.95,
sum by (le) (rate(
db_client_internal_stage_seconds_bucket{stage="to_dict"}[5m]
))
)`
	seedStageStacked = `sum by (stage, db_operation_name) (
rate(db_client_internal_stage_seconds_sum[1m])
) / sum by (stage, db_operation_name) (
rate(db_client_internal_stage_seconds_count[1m])
)`
)

const (
	workloadRate = 400.0
	runFor       = 24 * time.Second
	queryAt      = 20 * time.Second // while the workload still runs, so short windows hold a steady rate
)

func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if e2etest.InCI() {
		t.Fatalf("%s is not installed and CI=true forbids skipping: `make deps` installs Debian's prometheus package", name)
	}
	t.Skipf("%s not installed (apt-get install prometheus; with CI=true this fails)", name)
	return ""
}

// startProcess runs a child for the test's lifetime and returns a channel of its
// stderr lines; the child is killed (and reaped) at cleanup.
func startProcess(t *testing.T, name string, args ...string) (*exec.Cmd, *bytes.Buffer, chan string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr, cmd.Stdout = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	var log bytes.Buffer
	lines := make(chan string, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		<-done
	})
	return cmd, &log, lines
}

var servingRE = regexp.MustCompile(`serving http://([0-9.:]+)/metrics`)

func startAgent(t *testing.T, bin string, pid int) string {
	t.Helper()
	_, log, lines := startProcess(t, bin, "attach", "--pid", strconv.Itoa(pid), "--listen", "127.0.0.1:0",
		"--admin-listen", e2etest.FreeAddr(t), "--stages")
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l := <-lines:
			if m := servingRE.FindStringSubmatch(l); m != nil {
				return m[1]
			}
		case <-deadline:
			t.Fatalf("asobserve attach did not start serving in 30s:\n%s", log.String())
		}
	}
}

// startPrometheus runs a Prometheus with the seed's scrape config (job and static target)
// and a 1 s interval.
func startPrometheus(t *testing.T, target string) string {
	t.Helper()
	return startPrometheusWith(t, target, "")
}

type sample struct {
	Metric map[string]string
	Value  float64
}

// query evaluates expr through the HTTP API at the current time. A query Prometheus
// rejects fails the test.
func query(t *testing.T, prom, expr string) []sample {
	t.Helper()
	resp, err := http.PostForm(prom+"/api/v1/query", url.Values{"query": {expr}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("query %q: bad response %s", expr, body)
	}
	if r.Status != "success" {
		t.Fatalf("query %q is invalid: %s: %s", expr, r.ErrorType, r.Error)
	}
	var out []sample
	for _, s := range r.Data.Result {
		str, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			t.Fatalf("query %q: value %v", expr, s.Value)
		}
		out = append(out, sample{Metric: s.Metric, Value: v})
	}
	return out
}

func nonEmpty(t *testing.T, name, expr string, got []sample) {
	t.Helper()
	if len(got) == 0 {
		t.Errorf("%s is empty: %s", name, expr)
	}
}

func byLabel(s []sample, label string) map[string]float64 {
	m := map[string]float64{}
	for _, x := range s {
		m[x.Metric[label]] = x.Value
	}
	return m
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func TestSeedPromQLAndDashboardOnRealPrometheus(t *testing.T) {
	e2etest.RequireRoot(t)
	requireTool(t, "prometheus")
	promtool := requireTool(t, "promtool")
	bin := e2etest.BuildAsobserve(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 3})
	w := e2etest.StartWorkload(t, bin, cluster.Hosts(), "--errors", "--rate", fmt.Sprint(workloadRate),
		"--concurrency", "4", "--duration", runFor.String(), "--keys", "200")
	agentAddr := startAgent(t, bin, w.PID)
	prom := startPrometheus(t, agentAddr)
	waitForScrape(t, prom)

	started := time.Now()
	w.Go(t)
	time.Sleep(queryAt)

	// Seed 000/001, verbatim.
	avg := query(t, prom, seedAvgLatency)
	nonEmpty(t, "average latency", seedAvgLatency, avg)
	for _, s := range avg {
		if !finite(s.Value) || s.Value <= 0 || s.Value > 1 {
			t.Errorf("average latency %v for %v: want 0 < v ≤ 1 s", s.Value, s.Metric)
		}
	}
	p99 := query(t, prom, seedP99)
	nonEmpty(t, "P99", seedP99, p99)
	finiteP99 := 0
	for _, s := range p99 {
		if finite(s.Value) {
			finiteP99++
			if s.Value <= 0 || s.Value > 10 {
				t.Errorf("P99 %v for %v is outside the histogram's buckets", s.Value, s.Metric)
			}
		}
	}
	if finiteP99 == 0 {
		t.Errorf("P99 has no finite value: %v", p99)
	}
	errs := query(t, prom, seedErrorsByType)
	nonEmpty(t, "error rate by type", seedErrorsByType, errs)
	errRates := byLabel(errs, "error_type")
	for _, want := range []string{"KeyNotFoundError", "KeyExistsError", "GenerationError"} {
		if errRates[want] <= 0 {
			t.Errorf("error rate by type %v has no %s", errRates, want)
		}
	}
	if _, ok := errRates[""]; ok {
		t.Errorf("error rate by type includes successes: %v", errRates)
	}
	opsNS := query(t, prom, seedOpsByNS)
	nonEmpty(t, "ops/s by namespace", seedOpsByNS, opsNS)
	ops := map[string]bool{}
	for _, s := range opsNS {
		if s.Metric["db_namespace"] != "test" {
			t.Errorf("unexpected namespace in %v", s.Metric)
		}
		ops[s.Metric["db_operation_name"]] = true
	}
	for _, op := range semconv.Operations {
		if !ops[op] {
			t.Errorf("ops/s by namespace has no %s: %v", op, ops)
		}
	}

	// Seed 002. The stage p95 example names the Python client's to_dict stage, which a Go
	// client does not have: the verbatim query must be valid (and is empty); the same query
	// on asobserve's io stage must not be empty.
	query(t, prom, seedStageP95)
	stageP95 := strings.Replace(seedStageP95, `stage="to_dict"`, `stage="io"`, 1)
	io95 := query(t, prom, stageP95)
	nonEmpty(t, "stage p95 (io)", stageP95, io95)
	for _, s := range io95 {
		if !finite(s.Value) || s.Value < 1e-6 || s.Value > 1 {
			t.Errorf("io stage p95 = %v s, want between 1µs and 1s", s.Value)
		}
	}
	stacked := query(t, prom, seedStageStacked)
	nonEmpty(t, "stacked stages", seedStageStacked, stacked)
	stages := map[string]bool{}
	for _, s := range stacked {
		if s.Metric["db_operation_name"] == semconv.OpBatchRead && finite(s.Value) && s.Value > 0 {
			stages[s.Metric["stage"]] = true
		}
	}
	for _, want := range []string{semconv.StageKeyParse, semconv.StageIO} {
		if !stages[want] {
			t.Errorf("stacked stage query has no batch_read %s: %v", want, stacked)
		}
	}

	// The seed's [5m]/[1m] windows reach back before the run began, so they understate the
	// rate of a 20 s run. The rate check uses the same query over a window the run fills.
	shortErrs := strings.Replace(seedErrorsByType, "[5m]", "[10s]", 1)
	knfRate := byLabel(query(t, prom, shortErrs), "error_type")["KeyNotFoundError"]
	dashboardChecks(t, prom)
	checkSelfMetrics(t, prom)
	checkPromtool(t, promtool, agentAddr)

	truth := w.Wait(t, time.Until(started.Add(runFor+30*time.Second)))
	var knf int64
	for _, c := range truth.Counts {
		if c.ErrorType == "KeyNotFoundError" {
			knf += c.Count
		}
	}
	want := float64(knf) / runFor.Seconds()
	t.Logf("KeyNotFoundError: Prometheus %.1f/s over [10s], workload %d in %s = %.1f/s; %d ops", knfRate, knf, runFor, want, truth.TotalOps)
	if want == 0 || knfRate < 0.7*want || knfRate > 1.3*want {
		t.Errorf("KeyNotFoundError rate %.2f/s, workload's %.2f/s: want within 30%%", knfRate, want)
	}
}

func waitForScrape(t *testing.T, prom string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if s := query(t, prom, `up{job="aerospike-py"}`); len(s) == 1 && s[0].Value == 1 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal(`prometheus never scraped the agent successfully (up{job="aerospike-py"} != 1)`)
}

func checkSelfMetrics(t *testing.T, prom string) {
	t.Helper()
	lost := query(t, prom, `asobserve_events_lost_total`)
	if len(lost) != 1 || lost[0].Value != 0 {
		t.Errorf("asobserve_events_lost_total = %v, want one series at 0", lost)
	}
	attached := query(t, prom, `asobserve_attached_processes`)
	if len(attached) != 1 || attached[0].Value != 1 {
		t.Errorf("asobserve_attached_processes = %v, want 1", attached)
	}
}

func checkPromtool(t *testing.T, promtool, agentAddr string) {
	t.Helper()
	resp, err := http.Get("http://" + agentAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
