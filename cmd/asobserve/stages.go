package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func init() {
	var admin string
	cmd := &cobra.Command{
		Use:   "stages on|off",
		Short: "Switch internal stage profiling of a running agent (attaches or detaches the stage probes)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			state := args[0]
			if state != "on" && state != "off" {
				return usageError{fmt.Errorf("stages takes on or off, not %q", state)}
			}
			return putStages(admin, state, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&admin, "admin", "http://127.0.0.1:9465", "the agent's admin address (--admin-listen of attach/daemon)")
	rootCmd.AddCommand(cmd)
}

func putStages(admin, state string, out io.Writer) error {
	req, err := http.NewRequest(http.MethodPut, strings.TrimSuffix(admin, "/")+"/stages", strings.NewReader(state))
	if err != nil {
		return usageError{fmt.Errorf("--admin %q: %v", admin, err)}
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the agent at %s: %v: is `asobserve attach` or `daemon` running with --admin-listen?", admin, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("agent at %s refused: %s: %s", admin, resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprintf(out, "stages %s\n", strings.TrimSpace(string(body)))
	return nil
}
