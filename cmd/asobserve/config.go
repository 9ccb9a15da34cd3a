package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/asobserve/asobserve/internal/config"
)

func init() {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the effective configuration (flag > environment > default), secrets masked",
		Long: "Print every agent setting with its value and where it came from. Flags given here are\n" +
			"resolved exactly as attach and daemon resolve them, so `asobserve config --redis-port 6380`\n" +
			"shows the effect of a flag before using it.",
		Args: cobra.NoArgs,
	}
	binding := config.Agent.Bind(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := binding.Resolve()
		if err != nil {
			return usageError{err}
		}
		return printConfig(cmd.OutOrStdout(), cfg, asJSON)
	}
	rootCmd.AddCommand(cmd)
}

type configRow struct {
	Name   string `json:"name"`
	Flag   string `json:"flag,omitempty"` // settings read from the environment only have none
	Env    string `json:"env"`
	Value  string `json:"value"`
	Source string `json:"source"`
}

func printConfig(w io.Writer, cfg *config.Config, asJSON bool) error {
	var rows []configRow
	for _, v := range cfg.Values() {
		flag := ""
		if v.Flag != "" {
			flag = "--" + v.Flag
		}
		rows = append(rows, configRow{Name: v.Name, Flag: flag, Env: v.Env, Value: v.Display(), Source: string(v.Source)})
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tENV\tVALUE\tSOURCE")
	for _, r := range rows {
		value := r.Value
		if value == "" {
			value = `""`
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, r.Env, value, r.Source)
	}
	return tw.Flush()
}
