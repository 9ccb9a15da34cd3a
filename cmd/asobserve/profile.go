//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/observe"
	"github.com/asobserve/asobserve/internal/procinfo"
	"github.com/asobserve/asobserve/internal/semconv"
)

func init() {
	var pid int
	var duration time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "profile --pid PID [--duration 30s] [--json]",
		Short: "Attach operation and stage probes for a while and print where the time goes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkPID(pid); err != nil {
				return err
			}
			if duration <= 0 {
				return usageError{fmt.Errorf("--duration %s must be positive, e.g. 30s", duration)}
			}
			return runProfile(pid, duration, asJSON, cmd.OutOrStdout())
		},
	}
	cmd.Flags().IntVar(&pid, "pid", 0, "process id of the Go service to profile")
	cmd.Flags().DurationVar(&duration, "duration", 30*time.Second, "how long to profile")
	cmd.Flags().BoolVar(&asJSON, "json", false, "write the report as JSON")
	rootCmd.AddCommand(cmd)
}

// Report is the profile of one process: per operation, its duration and its stages.
type Report struct {
	PID        int         `json:"pid"`
	Service    string      `json:"service_name"`
	Seconds    float64     `json:"duration_seconds"`
	Operations []OpProfile `json:"operations"`
	Stopped    string      `json:"stopped"` // "duration" or the signal
}

// OpProfile is one operation's duration and stage breakdown.
type OpProfile struct {
	Op     string         `json:"db_operation_name"`
	Total  Stats          `json:"total"`
	Stages []StageProfile `json:"stages"`
}

// StageProfile is one stage of an operation; Share is its summed time over the
// operation's summed time.
type StageProfile struct {
	Stage string  `json:"stage"`
	Share float64 `json:"share"`
	Stats
}

// Stats summarise durations in seconds.
type Stats struct {
	Count uint64  `json:"count"`
	Sum   float64 `json:"sum_seconds"`
	Avg   float64 `json:"avg_seconds"`
	P50   float64 `json:"p50_seconds"`
	P95   float64 `json:"p95_seconds"`
	P99   float64 `json:"p99_seconds"`
}

// profileObserver keeps every duration of the window (a profile is short and bounded).
type profileObserver struct {
	mu     sync.Mutex
	ops    map[string][]float64
	stages map[[2]string][]float64
}

const maxProfileSamples = 1 << 20

func (p *profileObserver) Op(_ *observe.Target, op observe.Op) {
	p.mu.Lock()
	if v := p.ops[op.Name]; len(v) < maxProfileSamples {
		p.ops[op.Name] = append(v, op.Duration().Seconds())
	}
	p.mu.Unlock()
}

func (p *profileObserver) Stage(_ *observe.Target, st observe.Stage) {
	p.mu.Lock()
	k := [2]string{st.Op, st.Name}
	if v := p.stages[k]; len(v) < maxProfileSamples {
		p.stages[k] = append(v, st.Duration().Seconds())
	}
	p.mu.Unlock()
}

// TargetGone implements observe.Observer: the report is of the process that went.
func (p *profileObserver) TargetGone(*observe.Target) {}

func summarize(v []float64) Stats {
	if len(v) == 0 {
		return Stats{}
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	var sum float64
	for _, x := range s {
		sum += x
	}
	q := func(p float64) float64 { return s[int(math.Ceil(p*float64(len(s))))-1] }
	return Stats{Count: uint64(len(s)), Sum: sum, Avg: sum / float64(len(s)), P50: q(0.5), P95: q(0.95), P99: q(0.99)}
}

func (p *profileObserver) report() []OpProfile {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []OpProfile
	for op, v := range p.ops {
		o := OpProfile{Op: op, Total: summarize(v)}
		for _, stage := range semconv.Stages {
			sv, ok := p.stages[[2]string{op, stage}]
			if !ok {
				continue
			}
			st := StageProfile{Stage: stage, Stats: summarize(sv)}
			if o.Total.Sum > 0 {
				st.Share = st.Sum / o.Total.Sum
			}
			o.Stages = append(o.Stages, st)
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Op < out[j].Op })
	return out
}

func runProfile(pid int, duration time.Duration, asJSON bool, out io.Writer) error {
	if !procinfo.Alive(pid) {
		return fmt.Errorf("no process with pid %d: check the pid (`pgrep -f <name>`)", pid)
	}
	rec := metrics.New(metrics.Options{})
	agent, err := attach.New(rec, attach.Options{Stages: true})
	if err != nil {
		return err
	}
	sink := &profileObserver{ops: map[string][]float64{}, stages: map[[2]string][]float64{}}
	rec.AddObserver(sink)
	done := make(chan error, 1)
	go func() { done <- agent.Run() }()
	// Detach on every path, including errors and signals.
	defer func() {
		agent.Close()
		<-done
	}()
	// Signals are caught before attaching so that Ctrl-C during attach still detaches.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	id := &metrics.Identity{Service: procinfo.ServiceName(pid)}
	t, err := agent.Attach(pid, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "asobserve: profiling pid %d (%s %s) for %s: operation and stage probes attached in %s\n",
		pid, t.Binary.ClientModule, t.Binary.ClientVersion, duration, t.Binary.AttachTime.Round(time.Millisecond))
	start := time.Now()
	stopped := "duration"
	select {
	case <-time.After(duration):
	case s := <-sig:
		stopped = s.String()
	}
	_ = agent.Detach(pid)
	agent.PollCounters()
	time.Sleep(200 * time.Millisecond) // let records already in the ring buffer arrive
	r := Report{PID: pid, Service: id.Service, Seconds: time.Since(start).Seconds(), Operations: sink.report(), Stopped: stopped}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	printReport(out, r)
	return nil
}

func printReport(out io.Writer, r Report) {
	fmt.Fprintf(out, "asobserve profile: pid %d (%s), %.1fs, stopped by %s\n", r.PID, r.Service, r.Seconds, r.Stopped)
	if len(r.Operations) == 0 {
		fmt.Fprintln(out, "no operations observed")
		return
	}
	ms := func(s float64) string { return fmt.Sprintf("%.3fms", s*1e3) }
	for _, o := range r.Operations {
		fmt.Fprintf(out, "\n%s  count %d  avg %s  p50 %s  p95 %s  p99 %s\n", o.Op, o.Total.Count, ms(o.Total.Avg), ms(o.Total.P50), ms(o.Total.P95), ms(o.Total.P99))
		fmt.Fprintf(out, "  %-15s %8s %10s %10s %10s %10s  %s\n", "stage", "count", "avg", "p50", "p95", "p99", "share of op time")
		for _, s := range o.Stages {
			bar := strings.Repeat("█", int(math.Round(math.Min(s.Share, 1)*30)))
			fmt.Fprintf(out, "  %-15s %8d %10s %10s %10s %10s  %-30s %5.1f%%\n", s.Stage, s.Count, ms(s.Avg), ms(s.P50), ms(s.P95), ms(s.P99), bar, s.Share*100)
		}
	}
}
