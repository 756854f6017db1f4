package app

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The end-to-end test, on the real binary: `elevate serve` with a
// file audit source on a directory and a webhook notifier pointing at a
// receiver in this test process.

const e2eWebhookSecret = "whsec-e2e-0123456789"

// e2eBreakglassPolicies adds a break-glass procedure to the test policies.
// review_within is seconds long so that the deadline passes during the
// test on the real clock.
const e2eBreakglassPolicies = `
break_glass "idp-outage" {
  description       = "Identity provider down: sign in with the emergency IAM user"
  reasons           = ["identity-provider-outage"]
  accounts          = ["aws:arn:aws:iam::111122223333:user/breakglass-bob"]
  session_recording = true
  review_within     = "4s"
  notify            = ["security-pager"]
}

notifier "security-pager" {
  type       = "webhook"
  url_env    = "E2E_PAGER_URL"
  secret_env = "E2E_PAGER_SECRET"
}
`

// receivedAlert is an alert the receiver accepted, with when it arrived.
type receivedAlert struct {
	at   time.Time
	body map[string]any
}

func (a receivedAlert) str(path ...string) string {
	var v any = a.body
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// alertReceiver is a webhook endpoint that checks each delivery's
// signature with its own HMAC code and keeps the alerts by arrival.
type alertReceiver struct {
	t   testing.TB
	srv *httptest.Server
	mu  sync.Mutex
	got []receivedAlert
	bad int
	ch  chan receivedAlert
}

func newAlertReceiver(t testing.TB) *alertReceiver {
	r := &alertReceiver{t: t, ch: make(chan receivedAlert, 256)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		at := time.Now()
		body, _ := io.ReadAll(req.Body)
		ts := req.Header.Get("X-Elevate-Timestamp")
		mac := hmac.New(sha256.New, []byte(e2eWebhookSecret))
		mac.Write([]byte(ts + "." + string(body)))
		want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
		secs, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || time.Since(time.Unix(secs, 0)).Abs() > 5*time.Minute || !hmac.Equal([]byte(want), []byte(req.Header.Get("X-Elevate-Signature"))) {
			r.mu.Lock()
			r.bad++
			r.mu.Unlock()
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var a receivedAlert
		a.at = at
		if err := json.Unmarshal(body, &a.body); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		if key := req.Header.Get("Idempotency-Key"); key != a.str("id") {
			r.t.Errorf("Idempotency-Key %q for alert %q", key, a.str("id"))
		}
		r.mu.Lock()
		r.got = append(r.got, a)
		r.mu.Unlock()
		r.ch <- a
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// next waits for the next alert.
func (r *alertReceiver) next(t testing.TB, within time.Duration, what string) receivedAlert {
	t.Helper()
	select {
	case a := <-r.ch:
		return a
	case <-time.After(within):
		t.Fatalf("no alert within %s: %s", within, what)
	}
	return receivedAlert{}
}

// consoleLogin is a CloudTrail ConsoleLogin record of IAM user user.
func consoleLogin(id, user string, at time.Time, success bool) string {
	result := "Success"
	if !success {
		result = "Failure"
	}
	return fmt.Sprintf(`{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::111122223333:user/%s","accountId":"111122223333","userName":"%s"},"eventTime":"%s","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7","responseElements":{"ConsoleLogin":"%s"},"additionalEventData":{"MFAUsed":"Yes"},"eventID":"%s","eventType":"AwsConsoleSignIn"}`+"\n",
		user, user, at.UTC().Format(time.RFC3339), result, id)
}

// dropRecord lands a record in dir the way log shippers do: written under
// a temporary name, then renamed.
func dropRecord(t testing.TB, dir, name, record string) time.Time {
	t.Helper()
	tmp := filepath.Join(dir, name+".tmp")
	if err := os.WriteFile(tmp, []byte(record), 0o644); err != nil {
		t.Fatal(err)
	}
	landed := time.Now()
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
	return landed
}

// breakglassDaemon starts elevate serve with the test policies plus the
// break-glass procedure, a file audit source on a fresh directory, and a
// webhook receiver. It returns the daemon, the audit directory and the
// receiver.
func breakglassDaemon(t testing.TB) (*proc, string, *alertReceiver, []string) {
	t.Helper()
	dir := t.TempDir()
	pol := writeTestPolicies(t, dir)
	if err := os.WriteFile(filepath.Join(pol, "breakglass.hcl"), []byte(e2eBreakglassPolicies), 0o644); err != nil {
		t.Fatal(err)
	}
	audit := filepath.Join(dir, "audit")
	if err := os.MkdirAll(audit, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`
audit_source "aws-trail" {
  type   = "file"
  path   = %q
  format = "cloudtrail"
  poll   = "1s"
}
`, audit)
	if err := os.WriteFile(filepath.Join(dir, "elevate.hcl"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	recv := newAlertReceiver(t)
	env := []string{
		"ELEVATE_CONFIG=" + filepath.Join(dir, "elevate.hcl"),
		"ELEVATE_POLICIES=" + pol,
		"ELEVATE_STATE=sqlite:" + filepath.Join(dir, "state.db"),
		"ELEVATE_STATIC_TOKENS=" + testStaticTokens(),
		"ELEVATE_MEMORY_CLOUDS=gcp,aws",
		"E2E_PAGER_URL=" + recv.srv.URL + "/hooks/elevate",
		"E2E_PAGER_SECRET=" + e2eWebhookSecret,
	}
	p := startServe(t, dir, env...)
	clientEnv := []string{"ELEVATE_ADDR=" + p.url, "ELEVATE_TOKEN=" + devToken}
	return p, audit, recv, clientEnv
}

type e2eIncident struct {
	ID          string `json:"id"`
	Severity    string `json:"severity"`
	Declared    bool   `json:"declared"`
	Declaration string `json:"declaration"`
	Status      string `json:"status"`
	Overdue     bool   `json:"overdue"`
	EventCount  int    `json:"event_count"`
	Reminders   int    `json:"reminders"`
}

func listIncidents(t testing.TB, dir string, clientEnv []string, args ...string) []e2eIncident {
	t.Helper()
	out, errOut, code := runElevate(t, dir, clientEnv, append([]string{"incidents", "--format", "json"}, args...)...)
	if code != 0 {
		t.Fatalf("elevate incidents: exit %d\n%s%s", code, out, errOut)
	}
	var l struct {
		Incidents []e2eIncident `json:"incidents"`
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("elevate incidents output %q: %v", out, err)
	}
	return l.Incidents
}

func TestServeBreakglassEndToEnd(t *testing.T) {
	p, audit, recv, clientEnv := breakglassDaemon(t)
	dir := t.TempDir()

	// 1. A break-glass sign-in nobody declared: a signed, critical alert;
	// the incident is undeclared.
	landed := dropRecord(t, audit, "trail-1.jsonl",
		consoleLogin("ev-other", "carol", time.Now(), true)+consoleLogin("ev-undeclared", "breakglass-bob", time.Now(), true))
	a := recv.next(t, 10*time.Second, "the undeclared sign-in\n"+p.stderr.String())
	t.Logf("undeclared sign-in: record landed to alert received in %s", a.at.Sub(landed).Round(time.Millisecond))
	if a.str("kind") != "incident-opened" || a.str("severity") != "critical" || a.str("incident", "declared") != "false" ||
		a.str("event", "id") != "ev-undeclared" || a.str("account") != "aws:arn:aws:iam::111122223333:user/breakglass-bob" {
		t.Fatalf("first alert: %v", a.body)
	}
	incs := listIncidents(t, dir, clientEnv)
	if len(incs) != 1 || incs[0].Declared || incs[0].Severity != "critical" || incs[0].Status != "open" {
		t.Fatalf("incidents after the undeclared sign-in: %+v", incs)
	}
	undeclared := incs[0].ID

	// 2. Declared first, then used: the alert and the incident are declared.
	out, errOut, code := runElevate(t, dir, clientEnv, "breakglass", "declare", "--policy", "idp-outage",
		"--reason", "identity-provider-outage", "--incident", "INC-4711", "--for", "1h")
	if code != 0 || !strings.Contains(out, "Declared dcl-") {
		t.Fatalf("elevate breakglass declare: exit %d\n%s%s", code, out, errOut)
	}
	var declared receivedAlert
	dropRecord(t, audit, "trail-2.jsonl", consoleLogin("ev-declared", "breakglass-bob", time.Now(), true))
	for declared.body == nil {
		a := recv.next(t, 10*time.Second, "the declared sign-in")
		if a.str("kind") == "incident-opened" {
			declared = a
		}
	}
	if declared.str("severity") != "warning" || declared.str("incident", "declared") != "true" ||
		declared.str("declaration", "incident") != "INC-4711" || declared.str("event", "id") != "ev-declared" {
		t.Fatalf("declared alert: %v", declared.body)
	}
	incs = listIncidents(t, dir, clientEnv)
	if len(incs) != 2 || !incs[1].Declared || incs[1].Severity != "warning" || incs[1].ID == undeclared {
		t.Fatalf("incidents after the declared sign-in: %+v", incs)
	}

	out, _, code = runElevate(t, dir, clientEnv, "incidents", "--open")
	if code != 0 || !strings.Contains(out, undeclared) || !strings.Contains(out, "critical (undeclared)") || !strings.Contains(out, "warning (declared)") {
		t.Fatalf("elevate incidents --open: exit %d\n%s", code, out)
	}
	out, _, code = runElevate(t, dir, clientEnv, "incidents", "show", undeclared)
	if code != 0 || !strings.Contains(out, "ConsoleLogin  success  203.0.113.7  trail-1.jsonl: record 2") || !strings.Contains(out, "incident-opened  security-pager  delivered") {
		t.Fatalf("elevate incidents show: exit %d\n%s", code, out)
	}
	// Incidents are for admins.
	_, errOut, code = runElevate(t, dir, []string{"ELEVATE_ADDR=" + p.url, "ELEVATE_TOKEN=" + engToken}, "incidents")
	if code != 1 || !strings.Contains(errOut, "admin-only") {
		t.Fatalf("elevate incidents as a non-admin: exit %d\n%s", code, errOut)
	}

	// 3. The review deadline (4s) passes: each incident is re-alerted.
	reminded := map[string]bool{}
	deadline := time.Now().Add(20 * time.Second)
	for len(reminded) < 2 && time.Now().Before(deadline) {
		a := recv.next(t, time.Until(deadline), "the overdue-review re-alerts")
		if a.str("kind") == "review-overdue" {
			reminded[a.str("incident", "id")] = true
		}
	}
	if !reminded[undeclared] || !reminded[incs[1].ID] {
		t.Fatalf("review-overdue alerts for %v, want both incidents", reminded)
	}
	// Not ready: two reviews overdue.
	out, _, code = runElevate(t, dir, clientEnv, "breakglass", "check")
	if code != 1 || !strings.Contains(out, "Not ready") || !strings.Contains(out, "the review of incident "+undeclared) {
		t.Fatalf("breakglass check with overdue reviews: exit %d\n%s", code, out)
	}

	// 4. File the reviews: the check passes.
	for _, inc := range incs {
		out, errOut, code := runElevate(t, dir, clientEnv, "incidents", "review", inc.ID, "--notes", "IdP outage drill; credentials re-sealed")
		if code != 0 || !strings.Contains(out, "is reviewed") {
			t.Fatalf("elevate incidents review %s: exit %d\n%s%s", inc.ID, code, out, errOut)
		}
	}
	if open := listIncidents(t, dir, clientEnv, "--open"); len(open) != 0 {
		t.Fatalf("open incidents after the reviews: %+v", open)
	}
	out, errOut, code = runElevate(t, dir, clientEnv, "breakglass", "check", "--format", "json")
	var check struct {
		Ready    bool     `json:"ready"`
		Problems []string `json:"problems"`
		Sources  []struct {
			Name    string `json:"name"`
			Healthy bool   `json:"healthy"`
		} `json:"sources"`
	}
	if err := json.Unmarshal([]byte(out), &check); err != nil || code != 0 || !check.Ready || len(check.Sources) != 1 || !check.Sources[0].Healthy {
		t.Fatalf("breakglass check after the reviews: exit %d %v\n%s%s", code, err, out, errOut)
	}

	// The access report counts both, one undeclared.
	out, _, code = runElevate(t, dir, clientEnv, "report", "--since", "1d", "--format", "json")
	var rep struct {
		BreakGlass []struct {
			Policy     string `json:"policy"`
			Incidents  int    `json:"incidents"`
			Undeclared int    `json:"undeclared"`
		} `json:"breakglass"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || len(rep.BreakGlass) != 1 ||
		rep.BreakGlass[0].Incidents != 2 || rep.BreakGlass[0].Undeclared != 1 {
		t.Fatalf("report: exit %d %v\n%s", code, err, out)
	}
	// Every delivery was signed correctly, and none came twice.
	recv.mu.Lock()
	defer recv.mu.Unlock()
	var ids []string
	for _, a := range recv.got {
		ids = append(ids, a.str("id"))
	}
	slices.Sort(ids)
	if recv.bad != 0 || len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Fatalf("%d badly signed deliveries; alert IDs %v", recv.bad, ids)
	}
	if v, ok := metricValue(t, p.url, `elevate_breakglass_incidents_total{policy="idp-outage",severity="critical"}`); !ok || v != 1 {
		t.Logf("metrics:\n%s", metricsText(t, p.url))
		t.Fatalf("elevate_breakglass_incidents_total{severity=critical} = %v (%v), want 1", v, ok)
	}
}

// BenchmarkServeDetectionLatency measures, on the real daemon with a 1 s
// poll, the time from a record landing in the watched directory to the
// webhook receiver having the signed alert, for b.N records landing at
// random points of the poll cycle. Run with -benchtime 20x.
func BenchmarkServeDetectionLatency(b *testing.B) {
	_, audit, recv, _ := breakglassDaemon(b)
	time.Sleep(2 * time.Second) // the watcher takes its lease and polls once
	base := time.Now().Add(-24 * time.Hour)
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		time.Sleep(time.Duration(i*7919%1000) * time.Millisecond) // spread over the poll cycle
		id := "lat-" + strconv.Itoa(i)
		landed := dropRecord(b, audit, id+".jsonl", consoleLogin(id, "breakglass-bob", base.Add(time.Duration(i)*2*time.Hour), true))
		for {
			a := recv.next(b, 10*time.Second, "record "+id)
			if a.str("kind") == "incident-opened" && a.str("event", "id") == id {
				lat = append(lat, a.at.Sub(landed))
				break
			}
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(0, "ns/op")
}
