package app

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/elevatehq/elevate/policies"
)

func newTestCmd(s *streams) *cobra.Command {
	return &cobra.Command{
		Use:   "test [PATH]",
		Short: "Run the test blocks of a policy set",
		Long: `Run every test block under PATH (default: the current directory) through the
request evaluator and compare the decision with expect, expect_policy and
expect_reasons. Prints one line per test and a summary "N passed, N failed".

Exit status: 0 all tests passed, 1 a test failed or the policies have errors,
2 usage or I/O error.`,
		Example: `  elevate test policies/`,
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "."
			if len(args) == 1 {
				path = args[0]
			}
			set, err := loadSetForEvaluation(s, path, "no test was run")
			if err != nil {
				return err
			}
			results := policies.RunTests(set)
			passed, failedCount := 0, 0
			for _, r := range results {
				if r.Passed {
					passed++
					fmt.Fprintf(s.out, "PASS  %s\n", r.Test.Name)
				} else {
					failedCount++
					fmt.Fprintf(s.out, "FAIL  %s: %s\n", r.Test.Name, r.Failure)
				}
			}
			fmt.Fprintf(s.out, "%d passed, %d failed\n", passed, failedCount)
			if len(results) == 0 {
				fmt.Fprintf(s.err, "Note: no test blocks found under %s; add test blocks to pin down who gets which role (see POLICY.md).\n", path)
			}
			if failedCount > 0 {
				return silent(ExitFailed)
			}
			return nil
		},
	}
}

// loadSetForEvaluation loads and lints the policy set under path for test
// and explain. Errors are rendered like `elevate validate` renders them and
// end the command: exit 2 for I/O problems, 1 for policy errors, since
// evaluating a set with errors would answer the wrong question. Warnings
// are left to `elevate validate`. what names what did not happen.
func loadSetForEvaluation(s *streams, path, what string) (*policies.Set, error) {
	set, diags := policies.Validate(path)
	var errs policies.Diagnostics
	for _, d := range diags {
		if d.Severity == policies.SeverityError {
			errs = append(errs, d)
		}
	}
	if len(errs) == 0 {
		return set, nil
	}
	if err := renderText(s.err, &validation{set: set, diags: errs}, useColor(s.err)); err != nil {
		return nil, usageErr("writing diagnostics: %w", err)
	}
	if errs.HasIOErrors() {
		return nil, silent(ExitUsage)
	}
	return nil, failed(fmt.Errorf("the policies under %s have errors, so %s; fix them and run again", path, what))
}
