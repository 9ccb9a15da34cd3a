package tui

import (
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// Target is the observed process as the header names it.
type Target struct {
	PID       int
	Service   string
	Client    string // module and version, e.g. "github.com/aerospike/aerospike-client-go/v7 v7.10.2"
	GoVersion string
}

// Cost is the agent's own cost since the previous frame.
type Cost struct {
	CPUPercent    float64 // the agent process, user and system, of one CPU
	BPFPercent    float64 // time the kernel spent in the probes, of one CPU
	ProbeHitsRate float64 // probe program runs per second
	EventsLost    uint64  // since the agent started
}

// Frame is everything one refresh shows.
type Frame struct {
	Target  Target
	Cost    Cost
	Stages  bool // stage probes attached
	Tracing bool
	Window  time.Duration
	Table   Table
}

// Source feeds the view. Frame is called once per refresh, on the program's goroutine;
// SetStages attaches or detaches the stage probes and, as that may take a while, runs on a
// goroutine of its own, concurrently with Frame.
type Source interface {
	Frame() Frame
	SetStages(on bool) error
}

// TargetGone tells the view its target is gone: the view says so, keeps the numbers of
// this moment and waits for q. The command sends it after detaching.
type TargetGone struct {
	Reason string // e.g. "pid 42 exited"
	At     time.Time
}

// SortKey orders the table.
type SortKey int

// The sort keys, each with the key that selects it.
const (
	SortOps    SortKey = iota // o: operations per second, highest first
	SortP99                   // p: p99 latency, highest first
	SortErrors                // e: errors per second, highest first
	SortName                  // n: operation, namespace, set
)

var sortNames = map[SortKey]string{SortOps: "ops/s", SortP99: "p99", SortErrors: "err/s", SortName: "name"}

type tickMsg struct{}

type stagesDone struct {
	on  bool
	err error
}

// Model is the bubbletea model of the view.
type Model struct {
	src      Source
	interval time.Duration
	frame    Frame
	width    int
	height   int
	sort     SortKey
	scroll   int
	gone     *TargetGone
	status   string // outcome of the last key that acted on the agent
	switchTo *bool  // stage switch in progress
}

// New returns the view over src, refreshed every interval (one second if 0).
func New(src Source, interval time.Duration) *Model {
	if interval <= 0 {
		interval = time.Second
	}
	return &Model{src: src, interval: interval, width: 80, height: 24}
}

// Init implements tea.Model: the first frame at once, then one per interval.
func (m *Model) Init() tea.Cmd {
	return func() tea.Msg { return tickMsg{} }
}

func (m *Model) tick() tea.Cmd {
	return tea.Tick(m.interval, func(time.Time) tea.Msg { return tickMsg{} })
}

// Update implements tea.Model.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tickMsg:
		if m.gone == nil {
			m.frame = m.src.Frame()
		}
		return m, m.tick()
	case TargetGone:
		if m.gone == nil {
			m.frame = m.src.Frame()
			m.gone = &msg
		}
		return m, nil
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.scroll = min(m.scroll, m.maxScroll())
		return m, nil
	case stagesDone:
		m.switchTo = nil
		if msg.err != nil {
			m.status = "stages: " + msg.err.Error()
		} else {
			m.status = ""
			m.frame.Stages = msg.on
		}
		return m, nil
	case tea.KeyMsg:
		return m, m.key(msg)
	}
	return m, nil
}

func (m *Model) key(k tea.KeyMsg) tea.Cmd {
	switch k.String() {
	case "q", "ctrl+c", "esc":
		return tea.Quit
	case "s":
		if m.gone != nil || m.switchTo != nil {
			return nil
		}
		on := !m.frame.Stages
		m.switchTo = &on
		return func() tea.Msg { return stagesDone{on: on, err: m.src.SetStages(on)} }
	case "o":
		m.sort = SortOps
	case "p":
		m.sort = SortP99
	case "e":
		m.sort = SortErrors
	case "n":
		m.sort = SortName
	case "down", "j":
		m.scroll = min(m.scroll+1, m.maxScroll())
	case "up", "k":
		m.scroll = max(m.scroll-1, 0)
	case "pgdown", " ":
		m.scroll = min(m.scroll+m.bodyHeight(), m.maxScroll())
	case "pgup":
		m.scroll = max(m.scroll-m.bodyHeight(), 0)
	}
	return nil
}

// View implements tea.Model.
func (m *Model) View() string { return m.render() }
