package app

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Exit codes shared by every command (CLI.md): 0 success, 1 the thing checked
// failed, 2 usage or I/O error.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// exitError carries an exit status through cobra's error return.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// failed returns an error that exits with status 1 after printing err (if any).
func failed(err error) error { return &exitError{code: ExitFailed, err: err} }

// usageErr returns an error that exits with status 2.
func usageErr(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// silent returns an error that sets the exit status without printing anything.
func silent(code int) error { return &exitError{code: code} }

// streams are the process's standard streams, injected for tests.
type streams struct {
	in       io.Reader
	out, err io.Writer
}

// Main runs the elevate command line with args and returns the exit status.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	s := &streams{in: stdin, out: stdout, err: stderr}
	root := newRootCmd(s)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "Error:", ee.err)
		}
		return ee.code
	}
	// Cobra's own errors: unknown command, bad flag, wrong argument count.
	fmt.Fprintln(stderr, "Error:", err)
	fmt.Fprintln(stderr, "Run 'elevate --help' for usage.")
	return ExitUsage
}

func newRootCmd(s *streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "elevate",
		Short: "Just-in-time, temporary and break-glass cloud access from policies in git",
		Long: `elevate ends standing cloud privilege. Policies in HCL say who may hold which
role for how long; the daemon grants time-bounded role assignments in AWS, GCP
and Azure, removes them at expiry, and watches audit logs for break-glass use.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(
		newValidateCmd(s),
		newFmtCmd(s),
		newTestCmd(s),
		newExplainCmd(s),
		newBreakglassCmd(s),
		newServeCmd(s),
		newDevCmd(s),
		newPlanCmd(s),
		newAuditCmd(s),
		newEmulatorCmd(s),
		newVersionCmd(s),
	)
	root.AddCommand(clientCmds(s)...)
	root.AddCommand(newIncidentsCmd(s), newReportCmd(s))
	return root
}

// Version is set at build time with -ldflags "-X github.com/elevatehq/elevate/app.Version=…".
var Version = "dev"

func newVersionCmd(s *streams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the elevate version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(s.out, "elevate", Version)
			return nil
		},
	}
}
