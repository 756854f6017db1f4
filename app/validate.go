package app

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/elevatehq/elevate/policies"
)

func newValidateCmd(s *streams) *cobra.Command {
	var format string
	var strict bool
	cmd := &cobra.Command{
		Use:   "validate [PATH...]",
		Short: "Check policy files for errors and design mistakes",
		Long: `Validate loads the policy files under each PATH (default: the current
directory; directories are read recursively for .hcl files) and runs every
lint rule. It never talks to a cloud.

Output formats (--format):
  text    diagnostics with the offending source line, for people (default)
  json    {"valid": bool, "diagnostics": [...]}
  github  GitHub Actions workflow commands that become annotations
  sarif   SARIF 2.1.0 for code scanning

Exit status: 0 when there are no errors (with --strict: no warnings either),
1 when there are, 2 when a path cannot be read or the usage is wrong.`,
		Example: `  elevate validate policies/
  elevate validate --strict --format github policies/`,
		RunE: func(cmd *cobra.Command, args []string) error {
			render, ok := renderers[format]
			if !ok {
				return usageErr("unknown --format %q: use one of %s", format, formatNames())
			}
			if len(args) == 0 {
				args = []string{"."}
			}
			set, diags := policies.Validate(args...)
			wd, _ := os.Getwd() // only used to shorten SARIF URIs
			v := &validation{set: set, diags: diags, strict: strict, wd: wd}
			if err := render(s.out, v, useColor(s.out)); err != nil {
				return usageErr("writing the validation result: %w", err)
			}
			if code := v.exitCode(); code != ExitOK {
				return silent(code)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: "+formatNames())
	cmd.Flags().BoolVar(&strict, "strict", false, "fail on warnings as well as errors")
	return cmd
}

// useColor reports whether w is a terminal that wants colour: NO_COLOR
// (https://no-color.org) unset or empty, and TERM not "dumb".
func useColor(w any) bool {
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
