package app

import "github.com/spf13/cobra"

// PLACEHOLDER: replaced by the real command.
func newFmtCmd(s *streams) *cobra.Command {
	return &cobra.Command{Use: "fmt", Short: "not yet implemented", RunE: func(*cobra.Command, []string) error { return usageErr("not implemented") }}
}
