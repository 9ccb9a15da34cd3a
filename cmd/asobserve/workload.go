package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/asobserve/asobserve/internal/workload"
)

func init() {
	var (
		cfg   workload.Config
		hosts string
		mix   string
		sets  string
		out   string
	)
	cmd := &cobra.Command{
		Use:   "workload",
		Short: "Run the reference aerospike-client-go v7 workload and print its ground truth as JSON",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Hosts = workloadSplitList(hosts)
			if len(cfg.Hosts) == 0 {
				return usageError{fmt.Errorf("--hosts is empty: pass host:port[,host:port...]")}
			}
			if cfg.Count < 0 || cfg.Concurrency < 1 || cfg.Rate < 0 || cfg.Keys < 1 || cfg.StackDepth < 0 {
				return usageError{fmt.Errorf("--count, --rate and --stack-depth must be >= 0, --concurrency and --keys >= 1")}
			}
			m, err := workload.ParseMix(mix)
			if err != nil {
				return usageError{err}
			}
			cfg.Mix = m
			cfg.Sets = workloadSplitList(sets)
			if cmd.Flags().Changed("count") && !cmd.Flags().Changed("duration") {
				cfg.Duration = 0
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			truth, err := workload.Run(ctx, cfg)
			if err != nil {
				return err
			}
			data, err := json.MarshalIndent(truth, "", "  ")
			if err != nil {
				return err
			}
			data = append(data, '\n')
			if _, err := cmd.OutOrStdout().Write(data); err != nil {
				return err
			}
			if out != "" {
				if err := os.WriteFile(out, data, 0o644); err != nil {
					return fmt.Errorf("write --out %s: %v", out, err)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&hosts, "hosts", "127.0.0.1:3000", "seed hosts, comma-separated host:port")
	f.DurationVar(&cfg.Duration, "duration", 10*time.Second, "run time (ignored when --count is given)")
	f.Int64Var(&cfg.Count, "count", 0, "total operations to run; 0 = run for --duration")
	f.IntVar(&cfg.Concurrency, "concurrency", 8, "closed-loop workers")
	f.Float64Var(&cfg.Rate, "rate", 0, "total operations per second; 0 = as fast as possible")
	f.StringVar(&mix, "mix", "", "operation weights, e.g. put=1,get=2 (default: every operation, including execute)")
	f.StringVar(&cfg.Namespace, "namespace", "test", "namespace")
	f.StringVar(&sets, "sets", "users", "sets, comma-separated; operations rotate over them")
	f.IntVar(&cfg.Keys, "keys", 1000, "keys per set, written before the run starts")
	f.BoolVar(&cfg.FreshKeys, "fresh-keys", false, "make each operation's keys at the call (as services do) instead of reusing the preloaded Key objects")
	f.DurationVar(&cfg.StartDelay, "start-delay", 0, "wait this long before starting")
	f.BoolVar(&cfg.WaitSignal, "wait-signal", false, "print 'workload: ready pid=N' on stderr and wait for SIGUSR1 before starting")
	f.IntVar(&cfg.StackDepth, "stack-depth", 0, "run each operation under a recursion this deep (forces goroutine stack growth)")
	f.IntVar(&cfg.ConcurrentNodes, "concurrent-nodes", 0, "batch/scan/query node concurrency; 0 = client default")
	f.BoolVar(&cfg.EveryMethod, "every-method", false, "rotate each operation through every client method counted under its name, and add batch_apply and query_background to the default mix")
	f.BoolVar(&cfg.Errors, "errors", false, "include failing outcomes (KeyNotFound, KeyExists, Generation)")
	f.BoolVar(&cfg.NoCircuitBreaker, "no-circuit-breaker", false, "turn off the client's per-node error-rate breaker (ClientPolicy.MaxErrorRate = 0)")
	f.Int64Var(&cfg.Seed, "seed", 0, "seed for key selection")
	f.StringVar(&out, "out", "", "also write the truth JSON to this file")
	rootCmd.AddCommand(cmd)
}

func workloadSplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
