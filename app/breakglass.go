package app

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/elevatehq/elevate/breakglass"
	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
)

func newBreakglassCmd(s *streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "breakglass",
		Short: "Break-glass accounts: declare an emergency, check detection, scan audit logs",
		Long: `Commands about the named emergency accounts of the policies' break_glass
blocks.

  scan     find break-glass account use in exported audit logs (no server, no cloud)
  declare  announce an emergency before using a break-glass account (server)
  check    readiness of break-glass detection (server)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SetOut(s.err)
			_ = cmd.Help()
			return usageErr("name a subcommand, e.g. elevate breakglass scan --help")
		},
	}
	cmd.AddCommand(newBreakglassScanCmd(s), newBreakglassDeclareCmd(s), newBreakglassCheckCmd(s))
	return cmd
}

// scanOutput is the JSON object `breakglass scan` prints (CLI.md).
// Malformed is an addition to CLI.md's shape.
type scanOutput struct {
	Scanned    int               `json:"scanned"`
	Detections []detectionOutput `json:"detections"`
	Malformed  int               `json:"malformed"`
}

type detectionOutput struct {
	Policy    string `json:"policy"`
	Account   string `json:"account"`
	Cloud     string `json:"cloud"`
	EventID   string `json:"event_id"`
	EventName string `json:"event_name"`
	EventTime string `json:"event_time"`
	SourceIP  string `json:"source_ip"`
	Outcome   string `json:"outcome"`
}

func newBreakglassScanCmd(s *streams) *cobra.Command {
	var (
		source       string
		policyDir    string
		failOnDetect bool
	)
	names := make([]string, len(breakglass.Sources))
	for i, src := range breakglass.Sources {
		names[i] = string(src)
	}
	cmd := &cobra.Command{
		Use:   "scan --source " + strings.Join(names, "|") + " [--policies DIR] [--fail-on-detect] FILE...",
		Short: "Find break-glass account use in exported audit logs",
		Long: `Scan exported audit logs for use of the accounts named in the policies'
break_glass blocks, and print what was found as one JSON object:

  {"scanned": N, "detections": [{"policy", "account", "cloud", "event_id",
   "event_name", "event_time", "source_ip", "outcome"}, ...], "malformed": N}

A use is any record whose actor is a break-glass account, failed sign-ins
included (outcome "failure"). An account named elsewhere in a record (the
target of a request, a policy binding) is not a use.

Sources:
  cloudtrail      CloudTrail trail files ({"Records":[...]}), JSON lines,
                  'aws cloudtrail lookup-events' output, EventBridge events
  gcp-audit       Cloud Audit Logs LogEntry JSON ('gcloud logging read
                  --format=json', Cloud Storage sink files)
  azure-activity  Activity Log events ('az monitor activity-log list',
                  diagnostic-settings exports)
  azure-signin    Entra ID sign-ins (Microsoft Graph auditLogs/signIns pages,
                  diagnostic-settings exports)

Files may be JSON arrays, JSON lines or objects holding the records array,
gzip-compressed or not; "-" reads standard input. A malformed record is
counted, reported on standard error with its file, record number, line and
byte offset, and skipped; the scan goes on. The policies are read from
--policies (default: the current directory) and must load without errors.

Exit status: 0 whether or not anything was found (1 with --fail-on-detect when
something was), 2 on usage errors, policy files that cannot be read, or log
files that cannot be read (the other files are still scanned).`,
		Example: `  elevate breakglass scan --source cloudtrail --policies policies/ trail/*.json.gz
  gcloud logging read 'logName:"cloudaudit.googleapis.com"' --freshness=30d --format=json |
    elevate breakglass scan --source gcp-audit --fail-on-detect -`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if source == "" {
				return usageErr("--source is required: one of %s", strings.Join(names, ", "))
			}
			src, err := breakglass.ParseSource(source)
			if err != nil {
				return usageErr("%w", err)
			}
			if len(args) == 0 {
				return usageErr("name the exported log files to scan (\"-\" reads standard input)")
			}
			m, err := loadBreakglassAccounts(s, policyDir, src)
			if err != nil {
				return err
			}
			return runScan(s, src, m, args, failOnDetect)
		},
	}
	cmd.Flags().StringVar(&source, "source", "", "log format: "+strings.Join(names, ", "))
	cmd.Flags().StringVar(&policyDir, "policies", ".", "policy file or directory holding the break_glass blocks")
	cmd.Flags().BoolVar(&failOnDetect, "fail-on-detect", false, "exit 1 when any break-glass use is found")
	return cmd
}

// loadBreakglassAccounts loads the policy set and builds the matcher. The
// set must decode without errors: with an error the account list may be
// incomplete, and a scan that silently misses an account is worse than
// none. Lint findings do not block a scan (elevate validate reports them).
func loadBreakglassAccounts(s *streams, dir string, src breakglass.Source) (*breakglass.Matcher, error) {
	set, diags := policies.Load(dir)
	var errs policies.Diagnostics
	for _, d := range diags {
		if d.Severity == policies.SeverityError {
			errs = append(errs, d)
		}
	}
	if len(errs) > 0 {
		errs.Sort()
		if err := renderText(s.err, &validation{set: set, diags: errs}, useColor(s.err)); err != nil {
			return nil, usageErr("writing diagnostics: %w", err)
		}
		if errs.HasIOErrors() {
			return nil, usageErr("cannot read the policies under %s: point --policies at your policy directory", dir)
		}
		return nil, failed(fmt.Errorf("the policies under %s have errors, so the break-glass accounts are not known for sure and nothing was scanned; fix them (elevate validate %s) and scan again", dir, dir))
	}
	m := breakglass.NewMatcher(set)
	if m.Accounts() == 0 {
		return nil, usageErr("the policies under %s declare no break-glass accounts: add a break_glass block with accounts, or point --policies at your policy directory", dir)
	}
	for _, u := range m.Unwatchable() {
		fmt.Fprintf(s.err, "Warning: break_glass %q account %s can never match an audit record: %s.\n", u.Policy, u.Principal, u.Reason)
	}
	if cloud := src.Cloud(); !m.Watches(cloud) {
		return nil, usageErr("none of the %d break-glass accounts under %s is a %s identity, so no %s record can match; add accounts such as %s", m.Accounts(), dir, cloud, src, exampleAccount(cloud))
	}
	return m, nil
}

func exampleAccount(c model.Cloud) string {
	switch c {
	case model.CloudAWS:
		return `"aws:arn:aws:iam::123456789012:user/breakglass-1"`
	case model.CloudGCP:
		return `"gcp:user:breakglass-1@example.com"`
	}
	return `"azure:user:breakglass1@contoso.onmicrosoft.com" or "azure:object:GUID"`
}

// runScan scans every file in order and prints the JSON result. A file that
// cannot be read is reported and skipped; the exit status then says the
// result is incomplete.
func runScan(s *streams, src breakglass.Source, m *breakglass.Matcher, files []string, failOnDetect bool) error {
	out := scanOutput{Detections: []detectionOutput{}}
	progress := newProgress(s.err)
	unreadable := 0
	for _, name := range files {
		var r io.Reader
		if name == "-" {
			r = s.in
		} else {
			f, err := os.Open(name)
			if err != nil {
				progress.clear()
				fmt.Fprintf(s.err, "Error: opening %s: %v\n", name, cleanOSError(err))
				unreadable++
				continue
			}
			defer f.Close()
			r = f
		}
		sc := &breakglass.Scanner{Source: src, Matcher: m, OnProblem: func(p breakglass.Problem) {
			progress.clear()
			fmt.Fprintln(s.err, p.String())
		}}
		res, err := sc.Scan(progress.reader(name, r), name)
		out.Scanned += res.Records
		out.Malformed += res.Malformed
		for _, d := range res.Detections {
			e := d.Event
			out.Detections = append(out.Detections, detectionOutput{
				Policy: d.Account.Policy, Account: d.Account.Principal.String(), Cloud: string(e.Cloud),
				EventID: e.EventID, EventName: e.EventName, EventTime: e.TimeText(), SourceIP: e.SourceIP, Outcome: string(e.Outcome),
			})
		}
		if err != nil {
			progress.clear()
			fmt.Fprintf(s.err, "Error: %v\n", err)
			unreadable++
		}
	}
	progress.clear()
	enc := json.NewEncoder(s.out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return usageErr("writing the result: %w", err)
	}
	if out.Malformed > 0 {
		fmt.Fprintf(s.err, "%d malformed record(s) skipped; see the positions above.\n", out.Malformed)
	}
	switch {
	case unreadable > 0:
		return usageErr("%d of %d log files could not be read: the result above covers the others only", unreadable, len(files))
	case failOnDetect && len(out.Detections) > 0:
		fmt.Fprintf(s.err, "%d break-glass use(s) found.\n", len(out.Detections))
		return silent(ExitFailed)
	}
	return nil
}

// cleanOSError drops the operation and path that the message repeats.
func cleanOSError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// progress shows how far a long scan is, on a terminal only: after the
// first second, at most a few times a second, on one line it then clears.
type progress struct {
	w       io.Writer
	on      bool
	start   time.Time
	last    time.Time
	shown   bool
	name    string
	scanned int64
}

func newProgress(w io.Writer) *progress {
	return &progress{w: w, on: useColor(w), start: time.Now()}
}

func (p *progress) reader(name string, r io.Reader) io.Reader {
	if !p.on {
		return r
	}
	p.name = name
	return &progressReader{r: r, p: p}
}

func (p *progress) add(n int) {
	p.scanned += int64(n)
	now := time.Now()
	if now.Sub(p.start) < time.Second || now.Sub(p.last) < 250*time.Millisecond {
		return
	}
	p.last = now
	p.shown = true
	fmt.Fprintf(p.w, "\r\x1b[Kscanning %s: %d MB read", p.name, p.scanned>>20)
}

func (p *progress) clear() {
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.shown = false
	}
}

type progressReader struct {
	r io.Reader
	p *progress
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.p.add(n)
	return n, err
}
