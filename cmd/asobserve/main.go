// Command asobserve observes Go applications that use aerospike-client-go, from outside
// the process, with eBPF.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

var rootCmd = &cobra.Command{
	Use:           "asobserve",
	Short:         "Out-of-process metrics and traces for Go applications that use aerospike-client-go",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func init() {
	rootCmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
}

func main() {
	if err := rootCmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "asobserve: "+err.Error())
		os.Exit(exitCode(err))
	}
}
