//go:build linux

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/config"
	"github.com/asobserve/asobserve/internal/daemon"
	"github.com/asobserve/asobserve/internal/discovery"
	"github.com/asobserve/asobserve/internal/k8smeta"
	"github.com/asobserve/asobserve/internal/metrics"
)

// daemonListen is the daemon's default --listen: a DaemonSet is scraped from outside the pod.
const daemonListen = "0.0.0.0:9464"

func init() {
	var include, exclude []string
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Observe every process on this node that uses aerospike-client-go, as they come and go",
		Long: "daemon finds Go processes that link aerospike-client-go v6, v7 or v8 (by scanning /proc and\n" +
			"watching exec), attaches once per executable and labels their telemetry by service and,\n" +
			"in Kubernetes, by pod. --listen defaults to " + daemonListen + " here.",
		Args: cobra.NoArgs,
	}
	binding := config.Agent.Bind(cmd.Flags())
	cmd.Flags().Lookup(config.Listen).DefValue = daemonListen
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		for _, g := range append(append([]string(nil), include...), exclude...) {
			if _, err := path.Match(g, ""); err != nil {
				return usageError{fmt.Errorf("bad glob %q in --include/--exclude: %v: use path.Match syntax, e.g. 'cart-*'", g, err)}
			}
		}
		if interval < 100*time.Millisecond {
			return usageError{fmt.Errorf("--interval=%s is too short: use at least 100ms (default 5s)", interval)}
		}
		if _, envSet := os.LookupEnv("ASOBSERVE_LISTEN"); !envSet && !cmd.Flags().Changed(config.Listen) {
			_ = cmd.Flags().Set(config.Listen, daemonListen)
		}
		cfg, err := binding.Resolve()
		if err != nil {
			return usageError{err}
		}
		return runDaemon(cfg, discovery.Options{Interval: interval, Include: include, Exclude: exclude})
	}
	cmd.Flags().StringSliceVar(&include, "include", nil, "observe only executables whose path or base name matches one of these globs")
	cmd.Flags().StringSliceVar(&exclude, "exclude", nil, "never observe executables whose path or base name matches one of these globs")
	cmd.Flags().DurationVar(&interval, "interval", 5*time.Second, "full /proc scan interval (new processes are also found at exec)")
	rootCmd.AddCommand(cmd)
}

func runDaemon(cfg *config.Config, dopts discovery.Options) error {
	pods, err := k8smeta.FromEnvironment()
	if err != nil {
		return err
	}
	s, err := startSession(cfg, attach.Options{})
	if err != nil {
		return err
	}
	defer s.close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var resolver daemon.PodResolver
	if pods != nil {
		if err := pods.Run(ctx); err != nil {
			return fmt.Errorf("%w: check the ClusterRole allows get/list/watch on pods", err)
		}
		defer pods.Shutdown() // runs after stop(): the informers end with ctx
		defer stop()
		resolver = pods
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	dopts.Logger = logger
	w := discovery.New(dopts)
	d := daemon.New(agentAttacher{s}, w.Events(), daemon.Options{
		Node: os.Getenv("K8S_NODE_NAME"), Pods: resolver, Logger: logger,
	})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		_ = w.Run(ctx)
	}()
	s.logger.Printf("daemon: scanning every %s; %s; serving http://%s/metrics", dopts.Interval,
		stageStateLine(cfg.Bool(config.Stages)), s.public.Addr())

	daemonDone := make(chan error, 1)
	go func() { daemonDone <- d.Run(ctx) }()
	select {
	case <-ctx.Done():
		s.logger.Printf("daemon: stopping, detaching every process")
	case err := <-s.done:
		s.done <- err
		stop()
		if err != nil {
			err = fmt.Errorf("event reader stopped: %w", err)
		}
		<-daemonDone
		<-watchDone
		return err
	}
	err = <-daemonDone
	<-watchDone
	return err
}

// agentAttacher adapts the BPF agent to the daemon: the agent opens /proc/PID/exe itself
// and shares one set of uprobes per executable.
type agentAttacher struct{ s *session }

func (a agentAttacher) Attach(pid int, _ string, id *metrics.Identity) error {
	t, err := a.s.agent.Attach(pid, id)
	if err != nil {
		return err
	}
	a.s.logAttached(t)
	return nil
}

func (a agentAttacher) Detach(pid int) error { return a.s.agent.Detach(pid) }
