// Package snapshot builds the agent's JSON snapshot (seed 004's snapshot_json): every
// metric sample, the rolling summaries, self-metrics, CPU and RSS of the agent and of each
// observed process, and the block/instance identity. schema.json describes it; field names
// are a contract for /snapshot and Redis consumers.
package snapshot

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/procfs"

	"github.com/asobserve/asobserve/internal/rolling"
)

// SchemaVersion changes only when a field changes meaning or disappears.
const SchemaVersion = 1

// Identity is the seed's block/instance identity plus the node the agent runs on.
type Identity struct {
	BlockID    string `json:"block_id"`
	InstanceID string `json:"instance_id"`
	Node       string `json:"node"`
}

// HostIdentity fills Node from K8S_NODE_NAME or NODE_NAME, else the host name.
func HostIdentity(blockID, instanceID string) Identity {
	node := os.Getenv("K8S_NODE_NAME")
	if node == "" {
		node = os.Getenv("NODE_NAME")
	}
	if node == "" {
		node, _ = os.Hostname()
	}
	return Identity{BlockID: blockID, InstanceID: instanceID, Node: node}
}

// Target is one observed process.
type Target struct {
	PID     int
	Service string
}

// Source is what a snapshot is built from.
type Source struct {
	Registry *prometheus.Registry
	Rolling  *rolling.Rolling // optional
	Targets  func() []Target  // optional
	Identity Identity
	Now      func() time.Time // optional, default time.Now
}

// Snapshot is the JSON document.
type Snapshot struct {
	SchemaVersion int                `json:"schema_version"`
	GeneratedAt   time.Time          `json:"generated_at"`
	Identity      Identity           `json:"identity"`
	Agent         Agent              `json:"agent"`
	Targets       []Process          `json:"targets"`
	Rolling       []rolling.Summary  `json:"rolling"`
	Metrics       map[string]float64 `json:"metrics"`
}

// Agent holds the agent's self-metrics and its own process usage.
type Agent struct {
	EventsReceived    uint64  `json:"events_received"`
	EventsLost        uint64  `json:"events_lost"`
	EventsInvalid     uint64  `json:"events_invalid"`
	AttachedProcesses int     `json:"attached_processes"`
	Process           Process `json:"process"`
}

// Process is the CPU and memory use of one process, from /proc/PID/stat and status.
type Process struct {
	PID        int     `json:"pid"`
	Service    string  `json:"service_name,omitempty"`
	CPUSeconds float64 `json:"cpu_seconds"` // user + system
	RSSBytes   uint64  `json:"rss_bytes"`
	Error      string  `json:"error,omitempty"` // set when /proc could not be read, e.g. the process exited
}

// Self-metric names read back from the registry.
const (
	metricEventsReceived = "asobserve_events_received_total"
	metricEventsLost     = "asobserve_events_lost_total"
	metricEventsInvalid  = "asobserve_events_invalid_total"
	metricAttached       = "asobserve_attached_processes"
)

// Build gathers one snapshot.
func Build(src Source) (*Snapshot, error) {
	now := time.Now
	if src.Now != nil {
		now = src.Now
	}
	s := &Snapshot{SchemaVersion: SchemaVersion, GeneratedAt: now().UTC(), Identity: src.Identity,
		Targets: []Process{}, Rolling: []rolling.Summary{}, Metrics: map[string]float64{}}
	if src.Registry != nil {
		families, err := src.Registry.Gather()
		if err != nil {
			return nil, fmt.Errorf("gather metrics: %w", err)
		}
		for _, mf := range families {
			encodeFamily(s.Metrics, mf)
			switch mf.GetName() {
			case metricEventsReceived:
				s.Agent.EventsReceived = uint64(sumValues(mf))
			case metricEventsLost:
				s.Agent.EventsLost = uint64(sumValues(mf))
			case metricEventsInvalid:
				s.Agent.EventsInvalid = uint64(sumValues(mf))
			case metricAttached:
				s.Agent.AttachedProcesses = int(sumValues(mf))
			}
		}
	}
	if src.Rolling != nil {
		if sums := src.Rolling.Summaries(); sums != nil {
			s.Rolling = sums
		}
	}
	fs, fsErr := procfs.NewFS(procfs.DefaultMountPoint)
	s.Agent.Process = readProcess(fs, fsErr, os.Getpid(), "")
	if src.Targets != nil {
		for _, t := range src.Targets() {
			s.Targets = append(s.Targets, readProcess(fs, fsErr, t.PID, t.Service))
		}
		sort.Slice(s.Targets, func(i, j int) bool { return s.Targets[i].PID < s.Targets[j].PID })
	}
	return s, nil
}

func readProcess(fs procfs.FS, fsErr error, pid int, service string) Process {
	p := Process{PID: pid, Service: service}
	if fsErr != nil {
		p.Error = fsErr.Error()
		return p
	}
	proc, err := fs.Proc(pid)
	if err != nil {
		p.Error = err.Error()
		return p
	}
	stat, err := proc.Stat()
	if err != nil {
		p.Error = err.Error()
		return p
	}
	p.CPUSeconds = stat.CPUTime()
	status, err := proc.NewStatus()
	if err != nil {
		p.Error = err.Error()
		return p
	}
	p.RSSBytes = status.VmRSS
	return p
}

func sumValues(mf *dto.MetricFamily) float64 {
	var total float64
	for _, m := range mf.GetMetric() {
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Untyped != nil:
			total += m.GetUntyped().GetValue()
		}
	}
	return total
}

// encodeFamily writes the samples of one family as seed 004 does: `name{label=val,...}`.
// Histograms give _bucket (cumulative, with le, +Inf included), _sum and _count; summaries
// give quantile samples, _sum and _count. Non-finite values are left out (JSON has no NaN).
func encodeFamily(out map[string]float64, mf *dto.MetricFamily) {
	name := mf.GetName()
	put := func(key string, v float64) {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			out[key] = v
		}
	}
	for _, m := range mf.GetMetric() {
		labels := m.GetLabel()
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			put(Key(name, labels), m.GetCounter().GetValue())
		case dto.MetricType_GAUGE:
			put(Key(name, labels), m.GetGauge().GetValue())
		case dto.MetricType_UNTYPED:
			put(Key(name, labels), m.GetUntyped().GetValue())
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			h := m.GetHistogram()
			for _, b := range h.GetBucket() {
				put(Key(name+"_bucket", labels, "le", formatFloat(b.GetUpperBound())), float64(b.GetCumulativeCount()))
			}
			put(Key(name+"_bucket", labels, "le", "+Inf"), float64(h.GetSampleCount()))
			put(Key(name+"_sum", labels), h.GetSampleSum())
			put(Key(name+"_count", labels), float64(h.GetSampleCount()))
		case dto.MetricType_SUMMARY:
			sm := m.GetSummary()
			for _, q := range sm.GetQuantile() {
				put(Key(name, labels, "quantile", formatFloat(q.GetQuantile())), q.GetValue())
			}
			put(Key(name+"_sum", labels), sm.GetSampleSum())
			put(Key(name+"_count", labels), float64(sm.GetSampleCount()))
		}
	}
}

// Key renders `name{a=x,b=y}` (just `name` without labels); extra is appended as name/value pairs.
func Key(name string, labels []*dto.LabelPair, extra ...string) string {
	if len(labels) == 0 && len(extra) == 0 {
		return name
	}
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, l := range labels {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.GetName())
		b.WriteByte('=')
		b.WriteString(l.GetValue())
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if len(labels) > 0 || i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(extra[i])
		b.WriteByte('=')
		b.WriteString(extra[i+1])
	}
	b.WriteByte('}')
	return b.String()
}

func formatFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// Handler serves GET /snapshot as JSON.
func Handler(src Source) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "only GET is allowed on /snapshot", http.StatusMethodNotAllowed)
			return
		}
		s, err := Build(src)
		if err != nil {
			http.Error(w, "snapshot failed: "+err.Error(), http.StatusInternalServerError)
			return
		}
		body, err := json.Marshal(s)
		if err != nil {
			http.Error(w, "snapshot failed: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(append(body, '\n'))
	})
}

// JSON builds a snapshot and encodes it; it is the publisher's Produce function.
func JSON(src Source) func() ([]byte, error) {
	return func() ([]byte, error) {
		s, err := Build(src)
		if err != nil {
			return nil, err
		}
		return json.Marshal(s)
	}
}

// Schema is the JSON Schema (2020-12) of a Snapshot.
//
//go:embed schema.json
var Schema []byte
