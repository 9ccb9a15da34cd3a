// Command matrixtable turns the compatibility-matrix results that
// `ASOBSERVE_MATRIX_OUT=file go test -run TestCompatMatrix ./internal/attach` writes into
// the Markdown table of the README.
//
// Usage: go run ./tools/matrixtable matrix.json
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
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
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: matrixtable RESULTS.json")
		os.Exit(2)
	}
	b, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "matrixtable:", err)
		os.Exit(1)
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		fmt.Fprintf(os.Stderr, "matrixtable: %s is not matrix results JSON: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	if err := render(os.Stdout, &r); err != nil {
		fmt.Fprintln(os.Stderr, "matrixtable:", err)
		os.Exit(1)
	}
}

var statusMark = map[string]string{"pass": "✅", "fail": "❌", "n/a": "n/a", "skipped": "–", "refused": "refused"}

func render(w io.Writer, r *report) error {
	var flavours, rows []string
	type rowKey struct{ goLabel, client string }
	byRow := map[rowKey]map[string]cell{}
	goVersion := map[string]string{}
	for _, c := range r.Cells {
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
	for _, c := range r.Cells {
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
	fmt.Fprintf(w, "\n%d cells pass, %d fail, %d not applicable (client needs a newer Go), %d refused; %s run on %s, %s.\n",
		pass, fail, na, refused, r.Mode, r.Started.UTC().Format("2006-01-02"), time.Duration(r.DurationSeconds*float64(time.Second)).Round(time.Second))
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
