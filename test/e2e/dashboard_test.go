//go:build e2e && linux

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/asobserve/asobserve/internal/e2etest"
)

type dashboard struct {
	Title  string  `json:"title"`
	Panels []panel `json:"panels"`
}

type panel struct {
	Title   string   `json:"title"`
	Type    string   `json:"type"`
	Targets []target `json:"targets"`
	Panels  []panel  `json:"panels"` // collapsed rows
}

type target struct {
	Expr     string `json:"expr"`
	RefID    string `json:"refId"`
	Exemplar bool   `json:"exemplar"` // Grafana also asks /api/v1/query_exemplars
}

// grafanaVars are what Grafana substitutes before sending a panel's query: the built-in
// interval variables with values a 1 s scrape interval satisfies, and "all services".
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "1m",
	"${__rate_interval}", "1m",
	"$__interval", "5s",
	"${__interval}", "5s",
	"$__range", "1m",
	"${service}", ".*",
	"$service", ".*",
)

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	path := filepath.Join(e2etest.RepoRoot(t), "deploy", "grafana", "asobserve-dashboard.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return d
}

func flatten(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, flatten(p.Panels)...)
	}
	return out
}

// dashboardChecks runs every panel query of the dashboard against the live Prometheus.
func dashboardChecks(t *testing.T, prom string) {
	t.Helper()
	d := loadDashboard(t)
	queries := 0
	titles := map[string]bool{}
	for _, p := range flatten(d.Panels) {
		if p.Type == "row" {
			continue
		}
		titles[p.Title] = true
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			expr := grafanaVars.Replace(tg.Expr)
			if strings.Contains(expr, "$") {
				t.Errorf("panel %q query %s: unsubstituted variable", p.Title, tg.RefID)
				continue
			}
			queries++
			if got := query(t, prom, expr); len(got) == 0 {
				t.Errorf("panel %q query %s is empty: %s", p.Title, tg.RefID, expr)
			}
		}
	}
	for _, want := range []string{"Ops/sec", "P50/P95/P99 latency", "Error rate", "By namespace", "Stage breakdown (batch_read and others)",
		"Events lost", "Attached processes"} {
		if !titles[want] {
			t.Errorf("dashboard has no panel %q (panels: %v)", want, titles)
		}
	}
	t.Logf("dashboard %q: %d panel queries non-empty", d.Title, queries)
}

func TestDashboardJSONShape(t *testing.T) {
	d := loadDashboard(t)
	for _, p := range flatten(d.Panels) {
		for _, tg := range p.Targets {
			if tg.RefID == "" || tg.Expr == "" {
				t.Errorf("panel %q has a target without refId or expr", p.Title)
			}
		}
	}
}
