package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/asobserve/asobserve/internal/testserver"
)

func init() {
	var (
		listen     string
		nodes      int
		faultSpecs []string
		namespaces []string
	)
	cmd := &cobra.Command{
		Use:   "testserver",
		Short: "Run an in-memory Aerospike-compatible test server (optionally a multi-node cluster with faults)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nodes < 1 {
				return usageError{fmt.Errorf("--nodes must be at least 1, got %d", nodes)}
			}
			var faults []testserver.Fault
			for _, s := range faultSpecs {
				f, err := testserver.ParseFault(s)
				if err != nil {
					return usageError{err}
				}
				faults = append(faults, f)
			}
			c, err := testserver.Start(listen, testserver.Config{Nodes: nodes, Faults: faults, Namespaces: namespaces})
			if err != nil {
				return err
			}
			defer c.Close()
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
			fmt.Fprintf(cmd.OutOrStdout(), "testserver: listening %s\n", strings.Join(c.Hosts(), ","))
			<-sig
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:3000", "address of the first node (port 0 picks a free port)")
	cmd.Flags().IntVar(&nodes, "nodes", 1, "number of nodes; extra nodes listen on free ports of the same host")
	cmd.Flags().StringArrayVar(&faultSpecs, "fault", nil, `fault rule, repeatable: "ns=test,set=users,cmd=read|write|delete|batch|scan|query|udf|txn_verify|txn_roll,latency=5ms,rc=9,close,hang,pct=50"`)
	cmd.Flags().StringSliceVar(&namespaces, "namespace", []string{"test"}, "namespaces to serve")
	rootCmd.AddCommand(cmd)
}
