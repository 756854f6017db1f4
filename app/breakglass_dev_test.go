package app

import (
	"encoding/json"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var devSampleRe = regexp.MustCompile(`cp (\S+sample-signin-\S+\.json) (\S+)/`)

// TestDevModeBreakglass follows the dev banner's break-glass lines: the
// sample sign-in dropped into the watched directory opens an undeclared
// incident, whose alert prints in the dev terminal, and the readiness check
// passes with every example account watched.
func TestDevModeBreakglass(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d, banner := startDev(t, dir)
	cp := devSampleRe.FindStringSubmatch(banner)
	tok := devTokenRe.FindStringSubmatch(banner)
	if cp == nil || tok == nil || !strings.Contains(banner, "Break-glass detection watches") {
		t.Fatalf("the banner lacks the break-glass lines:\n%s", banner)
	}
	env := clientEnv(d, tok[1])
	if out, err := exec.Command("cp", cp[1], cp[2]+"/").CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	// Both notifiers deliver independently; wait for each.
	for _, want := range []string{
		"[dev notifier security-pager] CRITICAL incident-opened: Undeclared break-glass use",
		"[dev notifier security-slack]",
	} {
		for !strings.Contains(d.stdout.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("no alert %q printed\nstdout:\n%s\nstderr:\n%s", want, d.stdout, d.stderr)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	out, errOut, code := runElevate(t, dir, env, "incidents", "--open", "--format", "json")
	var l struct {
		Incidents []struct {
			Severity string `json:"severity"`
			Declared bool   `json:"declared"`
		} `json:"incidents"`
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil || code != 0 || len(l.Incidents) != 1 || l.Incidents[0].Declared {
		t.Fatalf("incidents: exit %d %v\n%s%s", code, err, out, errOut)
	}
	out, errOut, code = runElevate(t, dir, env, "breakglass", "check")
	if code != 0 || !strings.Contains(out, "Ready") {
		t.Fatalf("breakglass check in dev mode: exit %d\n%s%s", code, out, errOut)
	}
	d.signal(t, syscall.SIGINT)
	if c := d.exitCode(t, 15*time.Second); c != 0 {
		t.Fatalf("dev mode exited %d\n%s", c, d.stderr)
	}
}
