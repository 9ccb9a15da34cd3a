package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/asobserve/asobserve/internal/rolling"
	"github.com/asobserve/asobserve/internal/snapshot"
)

func init() {
	var agent string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "snapshot [--agent URL] [--json]",
		Short: "Fetch a running agent's /snapshot and print it readably",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := snapshotURL(agent)
			if err != nil {
				return usageError{err}
			}
			body, err := fetchSnapshot(cmd.Context(), u)
			if err != nil {
				return err
			}
			if asJSON {
				_, err = cmd.OutOrStdout().Write(body)
				return err
			}
			var s snapshot.Snapshot
			if err := json.Unmarshal(body, &s); err != nil {
				return fmt.Errorf("%s did not return a snapshot (%v): is it an asobserve agent?", u, err)
			}
			return printSnapshot(cmd.OutOrStdout(), &s)
		},
	}
	cmd.Flags().StringVar(&agent, "agent", "http://127.0.0.1:9464", "agent base URL (its --listen address)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the raw JSON")
	rootCmd.AddCommand(cmd)
}

// snapshotURL accepts a base URL, a URL ending in /snapshot, or a bare host:port.
func snapshotURL(agent string) (string, error) {
	if !strings.Contains(agent, "://") {
		agent = "http://" + agent
	}
	u, err := url.Parse(agent)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("--agent %q is not a URL: use e.g. http://127.0.0.1:9464", agent)
	}
	if !strings.HasSuffix(u.Path, "/snapshot") {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/snapshot"
	}
	return u.String(), nil
}

func fetchSnapshot(ctx context.Context, u string) ([]byte, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("cannot reach the agent at %s: %v: start one with `asobserve attach --pid PID` or pass --agent", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s: %s", u, resp.Status, strings.TrimSpace(firstLine(string(body))))
	}
	return body, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func printSnapshot(w io.Writer, s *snapshot.Snapshot) error {
	fmt.Fprintf(w, "snapshot %s  block %s  instance %s  node %s\n\n", s.GeneratedAt.UTC().Format(time.RFC3339),
		orDash(s.Identity.BlockID), orDash(s.Identity.InstanceID), orDash(s.Identity.Node))
	a := s.Agent
	fmt.Fprintf(w, "agent: %d events received, %d lost, %d invalid; %d attached processes\n\n",
		a.EventsReceived, a.EventsLost, a.EventsInvalid, a.AttachedProcesses)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tPID\tSERVICE\tCPU\tRSS")
	procRow := func(role string, p snapshot.Process) {
		if p.Error != "" {
			fmt.Fprintf(tw, "%s\t%d\t%s\t-\t-\t(%s)\n", role, p.PID, orDash(p.Service), p.Error)
			return
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.2fs\t%s\n", role, p.PID, orDash(p.Service), p.CPUSeconds, formatBytes(p.RSSBytes))
	}
	procRow("agent", a.Process)
	for _, t := range s.Targets {
		procRow("target", t)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	var ops, stages []rolling.Summary
	for _, r := range s.Rolling {
		if r.Kind == rolling.KindStage {
			stages = append(stages, r)
		} else {
			ops = append(ops, r)
		}
	}
	fmt.Fprintln(w, "\noperations (rolling windows)")
	if len(ops) == 0 {
		fmt.Fprintln(w, "  none observed yet")
	} else {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SERVICE\tOPERATION\tNAMESPACE\tSET\tERROR\tWINDOW\tCOUNT\tRATE/S\tAVG\tP50\tP95\tP99")
		for _, r := range ops {
			l := r.Labels
			prefix := fmt.Sprintf("%s\t%s\t%s\t%s\t%s", orDash(l["service_name"]), l["db_operation_name"], l["db_namespace"],
				l["db_collection_name"], orDash(l["error_type"]))
			windowRows(tw, prefix, r.Windows)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(stages) > 0 {
		fmt.Fprintln(w, "\nstages (rolling windows)")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SERVICE\tOPERATION\tSTAGE\tWINDOW\tCOUNT\tRATE/S\tAVG\tP50\tP95\tP99")
		for _, r := range stages {
			l := r.Labels
			windowRows(tw, fmt.Sprintf("%s\t%s\t%s", orDash(l["service_name"]), l["db_operation_name"], l["stage"]), r.Windows)
		}
		return tw.Flush()
	}
	return nil
}

func windowRows(tw io.Writer, prefix string, windows []rolling.Window) {
	for _, win := range windows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", prefix, formatWindow(win.WindowSeconds), win.Count,
			formatRate(win.RatePerSecond), formatSeconds(win.AvgSeconds), formatSeconds(win.P50Seconds),
			formatSeconds(win.P95Seconds), formatSeconds(win.P99Seconds))
		prefix = "\t\t\t\t"[:strings.Count(prefix, "\t")]
	}
}

func formatRate(r float64) string {
	switch {
	case r >= 100:
		return fmt.Sprintf("%.0f", r)
	case r >= 1:
		return fmt.Sprintf("%.3g", r)
	}
	return fmt.Sprintf("%.2g", r)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func formatWindow(sec float64) string {
	if sec >= 60 && math.Mod(sec, 60) == 0 {
		return fmt.Sprintf("%dm", int(sec/60))
	}
	return fmt.Sprintf("%gs", sec)
}

// formatSeconds prints a latency with three significant digits in a fitting unit.
func formatSeconds(sec float64) string {
	switch {
	case sec == 0:
		return "-"
	case sec < 1e-3:
		return fmt.Sprintf("%.3gµs", sec*1e6)
	case sec < 1:
		return fmt.Sprintf("%.3gms", sec*1e3)
	}
	return fmt.Sprintf("%.3gs", sec)
}

func formatBytes(b uint64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}
