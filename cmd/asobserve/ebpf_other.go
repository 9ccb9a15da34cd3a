//go:build !linux

package main

import (
	"fmt"
	"runtime"
	"time"

	"github.com/spf13/cobra"
)

// On systems without Linux eBPF the out-of-process commands explain themselves and the
// demo runs in in-process mode.
func init() {
	for _, name := range []string{"attach", "daemon", "profile"} {
		name := name
		rootCmd.AddCommand(&cobra.Command{
			Use:                name,
			Short:              "Needs Linux eBPF (unavailable on " + runtime.GOOS + ")",
			DisableFlagParsing: true,
			RunE: func(*cobra.Command, []string) error {
				return fmt.Errorf("%s needs Linux with eBPF (kernel >= 5.15); on %s use the in-process package github.com/asobserve/asobserve/inproc (a one-line change: client := inproc.Wrap(asClient))", name, runtime.GOOS)
			},
		})
	}
	var listen string
	var duration time.Duration
	demo := &cobra.Command{
		Use:   "demo",
		Short: "Run a test server and a workload with in-process instrumentation and show live numbers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "eBPF is not available on %s: running the demo in in-process mode\n", runtime.GOOS)
			return runInprocDemo(listen, duration, cmd.OutOrStdout())
		},
	}
	demo.Flags().StringVar(&listen, "listen", "127.0.0.1:9464", "address for /metrics")
	demo.Flags().DurationVar(&duration, "duration", 30*time.Second, "how long the demo runs")
	rootCmd.AddCommand(demo)
}
