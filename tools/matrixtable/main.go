// Command matrixtable turns the compatibility-matrix results that
// `ASOBSERVE_MATRIX_OUT=file go test -run TestCompatMatrix ./internal/attach` writes into
// the Markdown table of the README.
//
// Usage: go run ./tools/matrixtable matrix.json [later.json...]
//
// Later files are partial runs (ASOBSERVE_MATRIX_CLIENTS): each cell they ran replaces the
// same cell (Go, client, flavour) of the files before, and the table says which clients
// come from which run.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/semver"
)

type cell struct {
	Go        string `json:"go"`
	GoVersion string `json:"go_version"`
	Client    string `json:"client"`
	Flavour   string `json:"flavour"`
	Status    string `json:"status"`
	Ops       uint64 `json:"ops"`
	Error     string `json:"error"`
}

type report struct {
	Mode            string    `json:"mode"`
	Started         time.Time `json:"started"`
	DurationSeconds float64   `json:"duration_seconds"`
	Cells           []cell    `json:"cells"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: matrixtable RESULTS.json [LATER.json...]")
		os.Exit(2)
	}
	var runs []*report
	for _, path := range os.Args[1:] {
		b, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "matrixtable:", err)
			os.Exit(1)
		}
		var r report
		if err := json.Unmarshal(b, &r); err != nil {
			fmt.Fprintf(os.Stderr, "matrixtable: %s is not matrix results JSON: %v\n", path, err)
			os.Exit(1)
		}
		runs = append(runs, &r)
	}
	if err := render(os.Stdout, runs...); err != nil {
		fmt.Fprintln(os.Stderr, "matrixtable:", err)
		os.Exit(1)
	}
}

// cellKey names a cell of the matrix.
type cellKey struct{ goLabel, client, flavour string }

// merged is the cells of several runs, each run's cells replacing the same cells of the
// runs before it, and for each run after the first the clients whose cells it gave.
type merged struct {
	cells   []cell
	clients [][]string
}

func merge(runs []*report) merged {
	var m merged
	at := map[cellKey]int{}
	for i, r := range runs {
		var clients []string
		for _, c := range r.Cells {
			k := cellKey{c.Go, c.Client, c.Flavour}
			j, seen := at[k]
			switch {
			case !seen:
				at[k] = len(m.cells)
				m.cells = append(m.cells, c)
			case c.Status != "skipped":
				m.cells[j] = c
			default:
				continue
			}
			if i > 0 && !contains(clients, c.Client) {
				clients = append(clients, c.Client)
			}
		}
		m.clients = append(m.clients, clients)
	}
	// Rows go by client version, then toolchain, as a single run lists them.
	slices.SortStableFunc(m.cells, func(a, b cell) int {
		if c := semver.Compare(a.Client, b.Client); c != 0 {
			return c
		}
		return semver.Compare("v"+strings.TrimPrefix(a.Go, "go"), "v"+strings.TrimPrefix(b.Go, "go"))
	})
	return m
}

var statusMark = map[string]string{"pass": "✅", "fail": "❌", "n/a": "n/a", "skipped": "–", "refused": "refused"}

func render(w io.Writer, runs ...*report) error {
	if len(runs) == 0 {
		return fmt.Errorf("no results")
	}
	m := merge(runs)
	var flavours, rows []string
	type rowKey struct{ goLabel, client string }
	byRow := map[rowKey]map[string]cell{}
	goVersion := map[string]string{}
	for _, c := range m.cells {
		if !contains(flavours, c.Flavour) {
			flavours = append(flavours, c.Flavour)
		}
		k := rowKey{c.Go, c.Client}
		if byRow[k] == nil {
			byRow[k] = map[string]cell{}
			rows = append(rows, c.Go+"\x00"+c.Client)
		}
		byRow[k][c.Flavour] = c
		if c.GoVersion != "" {
			goVersion[c.Go] = c.GoVersion
		}
	}
	if len(rows) == 0 {
		return fmt.Errorf("no cells in the results")
	}
	fmt.Fprintf(w, "| Go | aerospike-client-go | %s |\n", strings.Join(flavours, " | "))
	fmt.Fprintf(w, "|---|---|%s\n", strings.Repeat("---|", len(flavours)))
	for _, row := range rows {
		g, client, _ := strings.Cut(row, "\x00")
		label := g
		if v := goVersion[g]; v != "" {
			label = v
		}
		var marks []string
		for _, f := range flavours {
			c, ok := byRow[rowKey{g, client}][f]
			mark := statusMark[c.Status]
			switch {
			case !ok:
				mark = "–"
			case c.Status == "pass":
				mark = fmt.Sprintf("✅ %d ops", c.Ops)
			case mark == "":
				mark = c.Status
			}
			marks = append(marks, mark)
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", label, client, strings.Join(marks, " | "))
	}
	var pass, fail, na, refused int
	for _, c := range m.cells {
		switch c.Status {
		case "pass":
			pass++
		case "fail":
			fail++
		case "n/a":
			na++
		case "refused":
			refused++
		}
	}
	var from []string
	for i, r := range runs {
		run := fmt.Sprintf("%s run on %s, %s", r.Mode, r.Started.UTC().Format("2006-01-02"), time.Duration(r.DurationSeconds*float64(time.Second)).Round(time.Second))
		switch {
		case i == 0:
			from = append(from, run)
		case len(m.clients[i]) > 0:
			from = append(from, "the cells of "+strings.Join(m.clients[i], ", ")+" from a "+run)
		}
	}
	fmt.Fprintf(w, "\n%d cells pass, %d fail, %d not applicable (client needs a newer Go), %d refused; %s.\n",
		pass, fail, na, refused, strings.Join(from, "; "))
	fmt.Fprintln(w, "✅ N ops: every operation count per (operation, namespace, set, error_type) equals the target's ground truth.")
	if refused > 0 {
		fmt.Fprintln(w, "refused: the attach refused the build with a one-line error, as designed, because its layout could not be settled exactly.")
	}
	return nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
