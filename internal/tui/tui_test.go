package tui

import (
	"errors"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/asobserve/asobserve/internal/observe"
)

// clock is a settable time for the collector's rolling windows.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

var t0 = time.Unix(1_800_000_000, 0)

func op(name, set, errorType string, d time.Duration) observe.Op {
	return observe.Op{Name: name, Namespace: "test", Set: set, ErrorType: errorType, Start: 0, End: int64(d)}
}

// feed puts, one second into a 5 s old window, 50 gets on users (10 of them not found),
// 20 puts on sessions (4 KeyExistsError, 2 GenerationError) and, for get, an io stage per op.
func feed(t *testing.T) (*Collector, *clock) {
	t.Helper()
	clk := &clock{now: t0}
	c := NewCollector(10*time.Second, clk.Now)
	clk.now = t0.Add(time.Second)
	tgt := &observe.Target{PID: 42, Identity: &observe.Identity{Service: "shop"}}
	for i := range 50 {
		e := ""
		if i%5 == 0 {
			e = "KeyNotFoundError"
		}
		c.Op(tgt, op("get", "users", e, time.Millisecond))
		c.Stage(tgt, observe.Stage{Name: "io", Op: "get", Start: 0, End: int64(250 * time.Microsecond)})
	}
	for i := range 20 {
		e := ""
		switch {
		case i%5 == 0:
			e = "KeyExistsError"
		case i%10 == 1:
			e = "GenerationError"
		}
		c.Op(tgt, op("put", "sessions", e, 2*time.Millisecond))
	}
	clk.now = t0.Add(5 * time.Second)
	return c, clk
}

func TestCollectorTable(t *testing.T) {
	c, _ := feed(t)
	got := c.Table()
	want := []Row{
		{Op: "get", Namespace: "test", Set: "users", OpsPerSec: 10, P50: time.Millisecond, P95: time.Millisecond, P99: time.Millisecond,
			ErrorsPerSec: 2, Errors: []ErrorRate{{"KeyNotFoundError", 2}}},
		{Op: "put", Namespace: "test", Set: "sessions", OpsPerSec: 4, P50: 2 * time.Millisecond, P95: 2 * time.Millisecond, P99: 2 * time.Millisecond,
			ErrorsPerSec: 1.2, Errors: []ErrorRate{{"KeyExistsError", 0.8}, {"GenerationError", 0.4}}},
	}
	if len(got.Rows) != len(want) {
		t.Fatalf("rows %+v, want %+v", got.Rows, want)
	}
	for i := range want {
		g, w := got.Rows[i], want[i]
		if g.Op != w.Op || g.Set != w.Set || !near(g.OpsPerSec, w.OpsPerSec) || g.P50 != w.P50 || g.P99 != w.P99 ||
			!near(g.ErrorsPerSec, w.ErrorsPerSec) || len(g.Errors) != len(w.Errors) {
			t.Fatalf("row %d = %+v, want %+v", i, g, w)
		}
		for j := range w.Errors {
			if g.Errors[j].Type != w.Errors[j].Type || !near(g.Errors[j].PerSec, w.Errors[j].PerSec) {
				t.Errorf("row %d errors %+v, want %+v", i, g.Errors, w.Errors)
			}
		}
	}
	st := got.Stages["get"]
	if len(st) != 1 || st[0].Stage != "io" || !near(st[0].PerSec, 10) || st[0].P50 != 250*time.Microsecond || !near(st[0].Share, 0.25) {
		t.Fatalf("get stages %+v, want io at 10/s, p50 250µs, a quarter of get's time", st)
	}
	if len(got.Stages) != 1 {
		t.Fatalf("stages %+v, want get's only", got.Stages)
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

// fakeSource serves the collector's table; its cost readings change on every frame, so
// a frozen view shows.
type fakeSource struct {
	col    *Collector
	stages bool
	frames int
	fail   error
}

func (f *fakeSource) Frame() Frame {
	f.frames++
	return Frame{Target: Target{PID: 42, Service: "shop", Client: "github.com/aerospike/aerospike-client-go/v7 v7.10.2", GoVersion: "go1.26.8"},
		Cost:   Cost{CPUPercent: float64(f.frames), BPFPercent: 0.5, ProbeHitsRate: 140, EventsLost: 3},
		Stages: f.stages, Window: f.col.Window(), Table: f.col.Table()}
}

func (f *fakeSource) SetStages(on bool) error {
	if f.fail != nil {
		return f.fail
	}
	f.stages = on
	return nil
}

// send runs msg through the model and the messages its commands return at once (not ticks).
func send(m *Model, msg tea.Msg) {
	_, cmd := m.Update(msg)
	if cmd == nil {
		return
	}
	if _, isTick := msg.(tickMsg); isTick {
		return
	}
	if next := cmd(); next != nil {
		if _, quit := next.(tea.QuitMsg); !quit {
			send(m, next)
		}
	}
}

func key(s string) tea.KeyMsg { return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)} }

func screen(m *Model) string { return ansi.Strip(m.View()) }

func newView(t *testing.T, width, height int) (*Model, *fakeSource) {
	c, _ := feed(t)
	src := &fakeSource{col: c}
	m := New(src, time.Second)
	send(m, tea.WindowSizeMsg{Width: width, Height: height})
	send(m, tickMsg{})
	return m, src
}

func TestViewAt80Columns(t *testing.T) {
	m, _ := newView(t, 80, 12)
	want := strings.Join([]string{
		"asobserve top · pid 42 · shop · aerospike-client-go/v7 v7.10.2 · go1.26.8",
		"agent cpu 1.0% · bpf 0.5% · probe hits 140/s · events lost 3",
		"stages off · tracing off · rolling 10s window · sorted by ops/s",
		"",
		"OPERATION NAMESPACE SET         OPS/S      P50      P95      P99    ERR/S" + strings.Repeat(" ", 7),
		"get       test      users        10.0  1.000ms  1.000ms  1.000ms      2.0",
		"    ! KeyNotFoundError 2.0/s",
		"put       test      sessions      4.0  2.000ms  2.000ms  2.000ms      1.2",
		"    ! KeyExistsError 0.8/s",
		"    ! GenerationError 0.4/s",
		"",
		"q quit · s stages on/off · sort: o ops/s, p p99, e err/s, n name · ↑/↓ scroll",
	}, "\n")
	if got := screen(m); got != want {
		t.Fatalf("screen at 80x12:\n%s\nwant:\n%s", got, want)
	}
}

func TestViewWideHasErrorColumn(t *testing.T) {
	m, _ := newView(t, 100, 10)
	lines := strings.Split(screen(m), "\n")
	if !strings.HasSuffix(strings.TrimRight(lines[4], " "), " ERRORS BY TYPE") || ansi.StringWidth(lines[4]) != 100 {
		t.Fatalf("header %q lacks the error column", lines[4])
	}
	want := []string{
		"get       test      users        10.0  1.000ms  1.000ms  1.000ms      2.0 KeyNotFoundError 2.0/s",
		"put       test      sessions      4.0  2.000ms  2.000ms  2.000ms      1.2 KeyExistsError 0.8/s",
		"                                                                          GenerationError 0.4/s",
	}
	for i, w := range want {
		if lines[5+i] != w {
			t.Errorf("line %d = %q, want %q", 5+i, lines[5+i], w)
		}
	}
}

func TestEveryLineFitsAndTheScreenIsFull(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {100, 30}, {40, 8}, {60, 5}} {
		m, _ := newView(t, size[0], size[1])
		send(m, key("s"))
		lines := strings.Split(screen(m), "\n")
		if len(lines) != size[1] {
			t.Errorf("%dx%d: %d lines", size[0], size[1], len(lines))
		}
		for _, l := range lines {
			if w := ansi.StringWidth(l); w > size[0] {
				t.Errorf("%dx%d: line of %d columns: %q", size[0], size[1], w, l)
			}
		}
	}
}

func TestStagesKeyShowsStageRowsUnderTheOperation(t *testing.T) {
	m, src := newView(t, 100, 20)
	send(m, key("s"))
	if !src.stages {
		t.Fatal("s did not switch stages on")
	}
	lines := strings.Split(screen(m), "\n")
	if !strings.HasPrefix(lines[2], "stages on ·") {
		t.Fatalf("state line %q", lines[2])
	}
	if !strings.HasPrefix(lines[5], "get ") || lines[6] != "  └ io                           10.0  0.250ms  0.250ms  0.250ms    25.0% "+strings.Repeat("█", 6) {
		t.Fatalf("no io row under get:\n%s", strings.Join(lines, "\n"))
	}
	send(m, key("s"))
	if src.stages || strings.Contains(screen(m), "└ io") {
		t.Fatalf("second s left stages on:\n%s", screen(m))
	}
}

func TestStagesFailureIsShown(t *testing.T) {
	m, src := newView(t, 80, 12)
	src.fail = errors.New("attaching stage probes: no such symbol")
	send(m, key("s"))
	if got := strings.Split(screen(m), "\n")[3]; got != "stages: attaching stage probes: no such symbol" {
		t.Fatalf("status line %q", got)
	}
}

func TestSortKeys(t *testing.T) {
	m, _ := newView(t, 100, 10)
	firstRow := func() string { return strings.Fields(strings.Split(screen(m), "\n")[5])[0] }
	for _, c := range []struct{ key, first, state string }{
		{"p", "put", "p99"}, {"o", "get", "ops/s"}, {"n", "get", "name"},
	} {
		send(m, key(c.key))
		if firstRow() != c.first || !strings.Contains(screen(m), "sorted by "+c.state) {
			t.Errorf("after %s: first row %s, want %s:\n%s", c.key, firstRow(), c.first, screen(m))
		}
	}
}

func TestTargetGoneFreezesTheView(t *testing.T) {
	m, src := newView(t, 80, 12)
	send(m, TargetGone{Reason: "pid 42 exited", At: time.Date(2026, 12, 1, 22, 30, 5, 0, time.UTC)})
	frozen := screen(m)
	frames := src.frames
	send(m, tickMsg{})
	send(m, tea.WindowSizeMsg{Width: 80, Height: 12})
	if got := screen(m); got != frozen || src.frames != frames {
		t.Fatalf("view changed after the target went:\n%s\nwas:\n%s", got, frozen)
	}
	if got := strings.Split(frozen, "\n")[3]; got != "pid 42 exited at 22:30:05: detached, showing its last numbers; q quits" {
		t.Fatalf("status line %q", got)
	}
	if !strings.Contains(frozen, "KeyNotFoundError 2.0/s") {
		t.Fatalf("the last numbers are gone:\n%s", frozen)
	}
	_, cmd := m.Update(key("q"))
	if cmd == nil || cmd() != tea.Quit() {
		t.Fatal("q does not quit")
	}
}

func TestScrollShowsWhereYouAre(t *testing.T) {
	m, _ := newView(t, 80, 9) // three body lines for five
	lines := strings.Split(screen(m), "\n")
	if lines[7] != "… lines 1-2 of 5 (↑/↓ to scroll)" {
		t.Fatalf("no scroll hint:\n%s", strings.Join(lines, "\n"))
	}
	send(m, tea.KeyMsg{Type: tea.KeyDown})
	send(m, tea.KeyMsg{Type: tea.KeyDown})
	send(m, tea.KeyMsg{Type: tea.KeyDown})
	send(m, tea.KeyMsg{Type: tea.KeyDown})
	lines = strings.Split(screen(m), "\n")
	if lines[5] != "    ! KeyExistsError 0.8/s" || lines[7] != "… lines 4-5 of 5 (↑/↓ to scroll)" {
		t.Fatalf("after scrolling to the end:\n%s", strings.Join(lines, "\n"))
	}
}

// Numbers keep within their column, and keep their width around 100/s.
func TestNumbersFitTheirColumn(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{rate(99.96), "100"}, {rate(99.94), "99.9"}, {rate(12345.6), "12346"}, {rate(0), "0.0"},
		{dur(0), "-"}, {dur(213 * time.Microsecond), "0.213ms"}, {dur(12345 * time.Microsecond), "12.35ms"},
		{dur(123456 * time.Microsecond), "123.5ms"}, {dur(1500 * time.Millisecond), "1.500s"},
	} {
		if c.got != c.want || len(c.got) >= numWidth {
			t.Errorf("got %q, want %q (narrower than %d)", c.got, c.want, numWidth)
		}
	}
}
