package app

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const scanPolicy = `
notifier "pager" {
  type    = "webhook"
  url_env = "PAGER_URL"
}

break_glass "idp-outage" {
  accounts = [
    "aws:arn:aws:iam::123456789012:user/breakglass-alice",
    "gcp:user:breakglass-1@example.com",
  ]
  review_within = "24h"
  notify        = ["pager"]
}
`

// Three CloudTrail records: the break-glass user signs in, a user with a
// longer name signs in, and an admin acts on the break-glass user.
const (
	ctAliceLogin   = `{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE1","arn":"arn:aws:iam::123456789012:user/breakglass-alice","accountId":"123456789012","userName":"breakglass-alice"},"eventTime":"2026-11-29T03:12:00Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7","userAgent":"Mozilla/5.0","requestParameters":null,"responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"MFAUsed":"Yes"},"eventID":"ev-1","eventType":"AwsConsoleSignIn","recipientAccountId":"123456789012"}`
	ctAlice2Login  = `{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE2","arn":"arn:aws:iam::123456789012:user/breakglass-alice2","accountId":"123456789012","userName":"breakglass-alice2"},"eventTime":"2026-11-29T03:13:00Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.8","responseElements":{"ConsoleLogin":"Success"},"eventID":"ev-2","eventType":"AwsConsoleSignIn","recipientAccountId":"123456789012"}`
	ctAdminOnAlice = `{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE3","arn":"arn:aws:iam::123456789012:user/ops-bob","accountId":"123456789012","userName":"ops-bob"},"eventTime":"2026-11-29T03:14:00Z","eventSource":"iam.amazonaws.com","eventName":"CreateAccessKey","sourceIPAddress":"198.51.100.23","requestParameters":{"userName":"breakglass-alice"},"eventID":"ev-3","eventType":"AwsApiCall","recipientAccountId":"123456789012"}`
	ctAliceFailed  = `{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","accountId":"123456789012","accessKeyId":"","userName":"breakglass-alice"},"eventTime":"2026-11-29T03:10:41Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","sourceIPAddress":"203.0.113.7","errorMessage":"Failed authentication","responseElements":{"ConsoleLogin":"Failure"},"eventID":"ev-4","eventType":"AwsConsoleSignIn","recipientAccountId":"123456789012"}`
)

// scanDir writes the policy and the given files into a temporary directory.
func scanDir(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, data []byte) {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := files["policies/bg.hcl"]; !ok {
		write("policies/bg.hcl", []byte(scanPolicy))
	}
	for name, data := range files {
		write(name, data)
	}
	return dir
}

func decodeScan(t *testing.T, stdout string) scanOutput {
	t.Helper()
	var out scanOutput
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("stdout is not the scan JSON object: %v\n%s", err, stdout)
	}
	return out
}

func gz(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestBreakglassScanEndToEnd(t *testing.T) {
	trail := `{"Records":[` + ctAliceLogin + "," + ctAlice2Login + "," + ctAdminOnAlice + `]}`
	lines := ctAliceFailed + "\n" + `{"eventVersion": oops}` + "\n" + ctAdminOnAlice + "\n"
	dir := scanDir(t, map[string][]byte{
		"logs/trail.json.gz": gz(t, trail),
		"logs/lines.jsonl":   []byte(lines),
	})
	stdout, stderr, code := runElevate(t, dir, nil, "breakglass", "scan", "--source", "cloudtrail", "--policies", "policies", "logs/trail.json.gz", "logs/lines.jsonl")
	if code != 0 {
		t.Fatalf("exit %d, want 0\nstderr:\n%s", code, stderr)
	}
	got := decodeScan(t, stdout)
	want := scanOutput{Scanned: 6, Malformed: 1, Detections: []detectionOutput{
		{Policy: "idp-outage", Account: "aws:arn:aws:iam::123456789012:user/breakglass-alice", Cloud: "aws", EventID: "ev-1", EventName: "ConsoleLogin", EventTime: "2026-11-29T03:12:00Z", SourceIP: "203.0.113.7", Outcome: "success"},
		{Policy: "idp-outage", Account: "aws:arn:aws:iam::123456789012:user/breakglass-alice", Cloud: "aws", EventID: "ev-4", EventName: "ConsoleLogin", EventTime: "2026-11-29T03:10:41Z", SourceIP: "203.0.113.7", Outcome: "failure"},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("scan result (-want +got):\n%s", diff)
	}
	if !strings.Contains(stderr, "logs/lines.jsonl: record 2 (line 2, byte 432): malformed JSON at byte 449: invalid character 'o'") {
		t.Errorf("stderr does not report the malformed record with its position:\n%s", stderr)
	}
	// The documented key order of CLI.md, malformed added last.
	if !strings.HasPrefix(stdout, "{\n  \"scanned\": 6,\n  \"detections\": [") || !strings.Contains(stdout, "\"malformed\": 1\n}") {
		t.Errorf("stdout shape:\n%s", stdout)
	}
}

func TestBreakglassScanFailOnDetect(t *testing.T) {
	dir := scanDir(t, map[string][]byte{
		"use.jsonl":   []byte(ctAliceLogin + "\n"),
		"quiet.jsonl": []byte(ctAlice2Login + "\n" + ctAdminOnAlice + "\n"),
	})
	_, stderr, code := runElevate(t, dir, nil, "breakglass", "scan", "--source", "cloudtrail", "--policies", "policies", "--fail-on-detect", "use.jsonl")
	if code != 1 || !strings.Contains(stderr, "1 break-glass use(s) found") {
		t.Errorf("with a use: exit %d, stderr %q; want 1 and a count", code, stderr)
	}
	stdout, _, code := runElevate(t, dir, nil, "breakglass", "scan", "--source", "cloudtrail", "--policies", "policies", "--fail-on-detect", "quiet.jsonl")
	if code != 0 {
		t.Errorf("without a use: exit %d, want 0", code)
	}
	if got := decodeScan(t, stdout); got.Scanned != 2 || len(got.Detections) != 0 || got.Detections == nil {
		t.Errorf("without a use: %+v, want 2 scanned and an empty detections array", got)
	}
	_, _, code = runElevate(t, dir, nil, "breakglass", "scan", "--source", "cloudtrail", "--policies", "policies", "use.jsonl")
	if code != 0 {
		t.Errorf("a use without --fail-on-detect: exit %d, want 0", code)
	}
}

func TestBreakglassScanReadsStandardInput(t *testing.T) {
	dir := scanDir(t, nil)
	bin := elevateBin(t)
	cmd := exec.Command(bin, "breakglass", "scan", "--source", "cloudtrail", "--policies", "policies", "-")
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(ctAdminOnAlice + "\n" + ctAliceLogin + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scanning standard input: %v", err)
	}
	if got := decodeScan(t, string(out)); got.Scanned != 2 || len(got.Detections) != 1 || got.Detections[0].EventID != "ev-1" {
		t.Errorf("result %+v, want ev-1 found among 2 records", got)
	}
}

func TestBreakglassScanErrors(t *testing.T) {
	noAccounts := "notifier \"pager\" {\n  type    = \"webhook\"\n  url_env = \"PAGER_URL\"\n}\n"
	broken := scanPolicy + "\nbreak_glass \"bad\" {\n  accounts = [\"aws:not-an-arn\"]\n}\n"
	tests := []struct {
		name   string
		files  map[string][]byte
		args   []string
		code   int
		stderr string
		stdout bool // the JSON result is still printed
	}{
		{"missing source", nil, []string{"x.json"}, 2, "--source is required: one of cloudtrail, gcp-audit, azure-activity, azure-signin", false},
		{"unknown source", nil, []string{"--source", "syslog", "x.json"}, 2, `unknown log source "syslog"`, false},
		{"no files", nil, []string{"--source", "cloudtrail"}, 2, "name the exported log files to scan", false},
		{"no policies there", nil, []string{"--source", "cloudtrail", "--policies", "nowhere", "x.json"}, 2, "cannot read the policies under nowhere", false},
		{"no break-glass accounts", map[string][]byte{"policies/bg.hcl": []byte(noAccounts)}, []string{"--source", "cloudtrail", "x.json"}, 2, "declare no break-glass accounts", false},
		{"policies with errors", map[string][]byte{"policies/bg.hcl": []byte(broken)}, []string{"--source", "cloudtrail", "x.json"}, 1, "have errors, so the break-glass accounts are not known for sure", false},
		{"no account of the source's cloud", nil, []string{"--source", "azure-signin", "x.json"}, 2, "none of the 2 break-glass accounts under policies is a azure identity", false},
		{"a missing log file among others", map[string][]byte{"ok.jsonl": []byte(ctAliceLogin + "\n")}, []string{"--source", "cloudtrail", "missing.json", "ok.jsonl"}, 2, "opening missing.json: no such file or directory", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := scanDir(t, tc.files)
			args := append([]string{"breakglass", "scan"}, tc.args...)
			if !slicesContains(tc.args, "--policies") {
				args = append(args[:2], append([]string{"--policies", "policies"}, tc.args...)...)
			}
			stdout, stderr, code := runElevate(t, dir, nil, args...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d, want %d; stderr:\n%s\nwant it to contain %q", code, tc.code, stderr, tc.stderr)
			}
			if tc.stdout {
				if got := decodeScan(t, stdout); got.Scanned != 1 || len(got.Detections) != 1 {
					t.Errorf("the readable file's result is missing: %+v", got)
				}
			} else if stdout != "" {
				t.Errorf("stdout should be empty on this error, got:\n%s", stdout)
			}
		})
	}
}

func slicesContains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func TestBreakglassCommandNeedsASubcommand(t *testing.T) {
	_, stderr, code := runElevate(t, t.TempDir(), nil, "breakglass")
	if code != 2 || !strings.Contains(stderr, "scan") {
		t.Errorf("bare breakglass: exit %d, stderr %q; want 2 and help naming scan", code, stderr)
	}
	_, stderr, code = runElevate(t, t.TempDir(), nil, "breakglass", "sacn")
	if code != 2 || !strings.Contains(stderr, `unknown command "sacn"`) {
		t.Errorf("misspelt subcommand: exit %d, stderr %q; want 2", code, stderr)
	}
	stdout, _, code := runElevate(t, t.TempDir(), nil, "breakglass", "scan", "--help")
	if code != 0 || !strings.Contains(stdout, "--fail-on-detect") || !strings.Contains(stdout, "azure-signin") {
		t.Errorf("scan --help: exit %d, stdout:\n%s", code, stdout)
	}
}
