package tui

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

var (
	titleStyle  = lipgloss.NewStyle().Bold(true)
	headStyle   = lipgloss.NewStyle().Reverse(true).Bold(true)
	goneStyle   = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("9"))
	stageStyle  = lipgloss.NewStyle().Faint(true)
	footerStyle = lipgloss.NewStyle().Faint(true)
)

// Fixed lines around the table body: title, agent, state, status, column header, footer.
const chromeLines = 6

// numWidth fits every number the table prints: "12345.6", "123.456ms".
const numWidth = 9

// errorsColumnMin is the narrowest error column worth having; below it error types go
// on their own lines under the row, so a narrow terminal still shows every type.
const errorsColumnMin = 22

func (m *Model) bodyHeight() int { return max(m.height-chromeLines, 1) }

// maxScroll is the last scroll position: where the body's end shows above the hint line.
func (m *Model) maxScroll() int {
	body, n := len(m.bodyLines()), m.bodyHeight()
	if body <= n {
		return 0
	}
	return body - visibleLines(n)
}

// visibleLines is how many body lines show when the body overflows: one line is the
// scroll hint, unless there is only one.
func visibleLines(n int) int { return max(n-1, 1) }

func (m *Model) render() string {
	f := m.frame
	lines := []string{
		titleStyle.Render(m.fit(m.title())),
		m.fit(m.agentLine()),
		m.fit(m.stateLine()),
		m.statusLine(),
		headStyle.Render(m.pad(m.columns().header())),
	}
	body := m.bodyLines()
	n := m.bodyHeight()
	if len(body) > n {
		v := visibleLines(n)
		start := min(m.scroll, len(body)-v)
		shown := append([]string(nil), body[start:start+v]...)
		if v < n {
			shown = append(shown, footerStyle.Render(m.fit(fmt.Sprintf("… lines %d-%d of %d (↑/↓ to scroll)", start+1, start+v, len(body)))))
		}
		body = shown
	} else if len(f.Table.Rows) == 0 {
		body = []string{m.fit("waiting for operations…")}
	}
	lines = append(lines, body...)
	for len(lines) < m.height-1 {
		lines = append(lines, "")
	}
	lines = append(lines, footerStyle.Render(m.fit("q quit · s stages on/off · sort: o ops/s, p p99, e err/s, n name · ↑/↓ scroll")))
	// A terminal shorter than the chrome shows its top: more would scroll the screen.
	return strings.Join(lines[:min(len(lines), max(m.height, 1))], "\n")
}

func (m *Model) title() string {
	t := m.frame.Target
	parts := []string{fmt.Sprintf("pid %d", t.PID)}
	for _, p := range []string{t.Service, strings.TrimPrefix(t.Client, "github.com/aerospike/"), t.GoVersion} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	s := strings.Join(parts, " · ")
	if full := "asobserve top · " + s; len(full) <= m.width {
		return full
	}
	return s
}

func (m *Model) agentLine() string {
	f := m.frame
	c := f.Cost
	return fmt.Sprintf("agent cpu %.1f%% · bpf %.1f%% · probe hits %s/s · events lost %d",
		c.CPUPercent, c.BPFPercent, rate(c.ProbeHitsRate), c.EventsLost)
}

func (m *Model) stateLine() string {
	f := m.frame
	s := fmt.Sprintf("stages %s · tracing %s · rolling %s window · sorted by %s", onOff(f.Stages), onOff(f.Tracing), f.Window, sortNames[m.sort])
	if f.Stages {
		s += " · └ stages: whole op, % of its time"
	}
	return s
}

func (m *Model) statusLine() string {
	switch {
	case m.gone != nil:
		return goneStyle.Render(m.fit(fmt.Sprintf("%s at %s: detached, showing its last numbers; q quits",
			m.gone.Reason, m.gone.At.Format("15:04:05"))))
	case m.switchTo != nil:
		return m.fit(fmt.Sprintf("switching stage profiling %s…", onOff(*m.switchTo)))
	case m.status != "":
		return goneStyle.Render(m.fit(m.status))
	}
	return ""
}

// columns are the table's widths, from what it holds now.
type columns struct {
	op, ns, set int
	errors      int // 0: error types go on lines of their own
}

func (m *Model) columns() columns {
	c := columns{op: len("OPERATION"), ns: len("NAMESPACE"), set: len("SET")}
	for _, r := range m.frame.Table.Rows {
		c.op, c.ns, c.set = max(c.op, len(r.Op)), max(c.ns, len(r.Namespace)), max(c.set, len(r.Set))
	}
	// A stage name, indented, spans the three name columns.
	if room := c.op + c.ns + c.set + 2; room < len("  └ schedule_delay") {
		c.set += len("  └ schedule_delay") - room
	}
	if free := m.width - c.names() - 5*numWidth - 1; free >= errorsColumnMin {
		c.errors = free
	}
	return c
}

func (c columns) names() int { return c.op + 1 + c.ns + 1 + c.set }

func (c columns) header() string {
	s := fmt.Sprintf("%-*s %-*s %-*s%*s%*s%*s%*s%*s", c.op, "OPERATION", c.ns, "NAMESPACE", c.set, "SET",
		numWidth, "OPS/S", numWidth, "P50", numWidth, "P95", numWidth, "P99", numWidth, "ERR/S")
	if c.errors > 0 {
		s += " ERRORS BY TYPE"
	}
	return s
}

func (m *Model) bodyLines() []string {
	c := m.columns()
	rows := append([]Row(nil), m.frame.Table.Rows...)
	sortRows(rows, m.sort)
	var out []string
	staged := map[string]bool{}
	for _, r := range rows {
		line := fmt.Sprintf("%-*s %-*s %-*s%*s%*s%*s%*s%*s", c.op, r.Op, c.ns, r.Namespace, c.set, r.Set,
			numWidth, rate(r.OpsPerSec), numWidth, dur(r.P50), numWidth, dur(r.P95), numWidth, dur(r.P99),
			numWidth, rate(r.ErrorsPerSec))
		errs := make([]string, len(r.Errors))
		for i, e := range r.Errors {
			errs[i] = fmt.Sprintf("%s %s/s", e.Type, rate(e.PerSec))
		}
		if c.errors > 0 && len(errs) > 0 {
			out = append(out, m.fit(line+" "+errs[0]))
			for _, e := range errs[1:] {
				out = append(out, m.fit(strings.Repeat(" ", c.names()+5*numWidth)+" "+e))
			}
		} else {
			out = append(out, m.fit(line))
			for _, e := range errs {
				out = append(out, m.fit("    ! "+e))
			}
		}
		// Stages are per operation, over all its namespaces and sets: under its first row.
		if !m.frame.Stages || staged[r.Op] {
			continue
		}
		staged[r.Op] = true
		for _, st := range m.frame.Table.Stages[r.Op] {
			line := fmt.Sprintf("%-*s%*s%*s%*s%*s%*s", c.names(), "  └ "+st.Stage, numWidth, rate(st.PerSec),
				numWidth, dur(st.P50), numWidth, dur(st.P95), numWidth, dur(st.P99), numWidth, fmt.Sprintf("%.1f%%", st.Share*100))
			if c.errors > 0 {
				line += " " + strings.Repeat("█", int(math.Round(min(st.Share, 1)*float64(c.errors-1))))
			}
			out = append(out, stageStyle.Render(m.fit(line)))
		}
	}
	return out
}

func sortRows(rows []Row, by SortKey) {
	name := func(a, b Row) bool {
		if a.Op != b.Op {
			return a.Op < b.Op
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Set < b.Set
	}
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		var x, y float64
		switch by {
		case SortOps:
			x, y = a.OpsPerSec, b.OpsPerSec
		case SortP99:
			x, y = float64(a.P99), float64(b.P99)
		case SortErrors:
			x, y = a.ErrorsPerSec, b.ErrorsPerSec
		}
		if x != y {
			return x > y
		}
		return name(a, b)
	})
}

// fit cuts a line to the terminal's width, so that a long line never wraps and pushes
// the screen up.
func (m *Model) fit(s string) string { return ansi.Truncate(s, m.width, "…") }

func (m *Model) pad(s string) string {
	s = m.fit(s)
	return s + strings.Repeat(" ", max(m.width-ansi.StringWidth(s), 0))
}

func rate(v float64) string {
	// 99.96 prints as 100, not 100.0: the width of a number does not jitter around 100.
	if v >= 99.95 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func dur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond))
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.3fs", d.Seconds())
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
