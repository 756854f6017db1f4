package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/elevatehq/elevate/server/auth"
)

// Helpers for end-to-end tests that run the real elevate binary as a
// long-running daemon.

// Tokens of the test identities, and the ELEVATE_STATIC_TOKENS value that
// configures them: dev is an engineer and an administrator, mgr approves
// production access.
const (
	devToken = "elv_test-dev-token-0123456789abcdefghijklmnopq"
	mgrToken = "elv_test-mgr-token-0123456789abcdefghijklmnopq"
	engToken = "elv_test-eng-token-0123456789abcdefghijklmnopq"
)

func testStaticTokens() string {
	return "dev=user:dev@example.com:" + auth.HashToken(devToken) + ";group=group:eng@example.com;admin," +
		"mgr=user:mgr@example.com:" + auth.HashToken(mgrToken) + ";group=group:managers@example.com," +
		"eng=user:eng@example.com:" + auth.HashToken(engToken) + ";group=group:eng@example.com"
}

// testPolicies is a small policy set: sandbox is self-service, prod needs a
// manager's approval.
const testPolicies = `
role "sandbox" {
  description = "Sandbox projects"
  gcp {
    resource = "projects/sandbox"
    role     = "roles/logging.viewer"
  }
  aws {
    account   = "111122223333"
    role_name = "sandbox-readonly"
  }
}

role "prod" {
  description = "Read production"
  privileged  = true
  gcp {
    resource = "projects/prod"
    role     = "roles/monitoring.viewer"
  }
}

jit "sandbox-self" {
  description      = "Self-service sandbox access"
  roles            = ["sandbox"]
  requesters       = ["group:eng@example.com"]
  max_duration     = "1h"
  default_duration = "10m"
  max_renewals     = 2
}

jit "prod-approved" {
  description  = "Production read access with a manager's approval"
  roles        = ["prod"]
  requesters   = ["group:eng@example.com"]
  max_duration = "1h"
  approval {
    approvers = ["group:managers@example.com"]
  }
}
`

// writeTestPolicies writes testPolicies into dir/policies and returns that
// directory.
func writeTestPolicies(t testing.TB, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "policies")
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "policies.hcl"), []byte(testPolicies), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// baseEnv is the test process's environment without any ELEVATE_* or
// OTEL_* setting that could change the daemon under test.
func baseEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if (strings.HasPrefix(kv, "ELEVATE_") && !strings.HasPrefix(kv, "ELEVATE_TEST_")) || strings.HasPrefix(kv, "OTEL_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// lockedBuffer is a bytes.Buffer safe for a writer and readers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is a running elevate process.
type proc struct {
	cmd            *exec.Cmd
	url            string
	stdout, stderr *lockedBuffer
	done           chan struct{}
	waitErr        error
}

// startElevate starts the elevate binary with args and env (added to
// baseEnv) in dir, without waiting for anything. It is killed when the
// test ends if still running.
func startElevate(t testing.TB, dir string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(elevateBin(t), args...)
	cmd.Dir = dir
	cmd.Env = append(baseEnv(), env...)
	p := &proc{cmd: cmd, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting elevate %q: %v", args, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// startServe starts elevate serve on a free port with the given
// environment and waits until /healthz answers.
func startServe(t testing.TB, dir string, env ...string) *proc {
	t.Helper()
	addr := freeAddr(t)
	p := startElevate(t, dir, append([]string{"ELEVATE_LISTEN=" + addr}, env...), "serve")
	p.url = "http://" + addr
	p.waitHTTP(t, "/healthz", http.StatusOK, 20*time.Second)
	return p
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitCode waits up to timeout for the process to end and returns its
// exit status (-1 when killed by a signal).
func (p *proc) exitCode(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("elevate did not exit within %s\nstderr:\n%s", timeout, p.stderr)
	}
	if p.waitErr == nil {
		return 0
	}
	if ee, ok := p.waitErr.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	t.Fatalf("waiting for elevate: %v", p.waitErr)
	return -1
}

func (p *proc) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("sending %v to elevate: %v", sig, err)
	}
}

// kill9 kills the process with SIGKILL and waits for it.
func (p *proc) kill9() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// waitHTTP polls GET path until it answers want, failing the test with
// the daemon's stderr when it exits or time runs out.
func (p *proc) waitHTTP(t testing.TB, path string, want int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	last := ""
	for time.Now().Before(deadline) {
		if p.exited() {
			t.Fatalf("elevate exited while waiting for %s %d: %v\nstdout:\n%s\nstderr:\n%s", path, want, p.waitErr, p.stdout, p.stderr)
		}
		resp, err := client.Get(p.url + path)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("GET %s did not answer %d within %s (last: %s)\nstderr:\n%s", path, want, timeout, last, p.stderr)
}

// apiCall makes one API call with token and decodes the JSON answer into
// out (when not nil); it returns the status.
func apiCall(t testing.TB, base, token, method, path string, body, out any) int {
	t.Helper()
	status, err := tryAPI(base, token, method, path, body, out)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return status
}

var apiClientForTests = &http.Client{Timeout: 10 * time.Second}

// tryAPI is apiCall that returns transport errors instead of failing.
func tryAPI(base, token, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := apiClientForTests.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decoding %s: %w", data, err)
		}
	}
	return resp.StatusCode, nil
}

// waitGrantStatus polls a grant until it has status want.
func waitGrantStatus(t testing.TB, base, token, id, want string, timeout time.Duration) grantView {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var d grantDetail
	for time.Now().Before(deadline) {
		d = grantDetail{}
		if apiCall(t, base, token, "GET", "/v1/grants/"+id, nil, &d) == http.StatusOK && d.Grant.Status == want {
			return d.Grant
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("grant %s is %q after %s, want %q", id, d.Grant.Status, timeout, want)
	return d.Grant
}

// metricsText returns the daemon's /metrics page.
func metricsText(t testing.TB, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading /metrics: %v", err)
	}
	return string(body)
}

// metricValue returns the value of the sample named prefix (the metric
// name with its labels, exactly as exposed) in the daemon's /metrics.
func metricValue(t testing.TB, base, prefix string) (float64, bool) {
	t.Helper()
	for _, line := range strings.Split(metricsText(t, base), "\n") {
		if strings.HasPrefix(line, prefix+" ") {
			var v float64
			fmt.Sscan(strings.TrimSpace(line[len(prefix):]), &v)
			return v, true
		}
	}
	return 0, false
}
