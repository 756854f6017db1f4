package notify_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elevatehq/elevate/breakglass/notify"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/providers"
)

// delivery is one request a receiver got.
type delivery struct {
	header http.Header
	body   []byte
}

// receiver is a webhook endpoint on 127.0.0.1 that answers with the
// statuses it is given, in turn (then 200), and records every request.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []delivery
	// answers are served in order; each is a status and headers.
	answers []answer
}

type answer struct {
	status int
	header map[string]string
	body   string
}

func newReceiver(t *testing.T, answers ...answer) *receiver {
	r := &receiver{answers: answers}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, delivery{header: req.Header.Clone(), body: body})
		a := answer{status: 200, body: "ok"}
		if len(r.answers) > 0 {
			a, r.answers = r.answers[0], r.answers[1:]
		}
		r.mu.Unlock()
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

// verify is the receiver's own check of a signed delivery, written from
// the documented scheme without the package's helpers: HMAC-SHA256 keyed
// with the secret over timestamp "." body, hex, prefixed "sha256=", and a
// timestamp within five minutes.
func verify(secret []byte, d delivery, now time.Time) error {
	ts := d.header.Get("X-Elevate-Timestamp")
	sig := d.header.Get("X-Elevate-Signature")
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("no timestamp")
	}
	if age := now.Sub(time.Unix(secs, 0)); age > 5*time.Minute || age < -5*time.Minute {
		return errors.New("stale timestamp")
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts + "." + string(d.body)))
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return errors.New("bad signature")
	}
	return nil
}

// sleeps records backoff waits instead of sleeping.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

var secret = []byte("whsec-test-0123456789")

func testAlert() []byte {
	a := notify.Alert{Version: 1, ID: "incident-opened/i123", Kind: notify.KindIncidentOpened, Severity: "critical",
		Summary: "Undeclared break-glass use of aws:arn:aws:iam::123456789012:user/breakglass-alice (policy idp-outage)",
		Time:    time.Date(2026, 11, 29, 3, 12, 5, 0, time.UTC), Policy: "idp-outage",
		Account: "aws:arn:aws:iam::123456789012:user/breakglass-alice", Cloud: "aws",
		Incident: &notify.Incident{ID: "i123", Status: "open", Opened: time.Date(2026, 11, 29, 3, 12, 5, 0, time.UTC), EventCount: 1, Successes: 1},
		Event:    &notify.Event{ID: "ev-1", Name: "ConsoleLogin", Time: time.Date(2026, 11, 29, 3, 12, 0, 0, time.UTC), SourceIP: "203.0.113.7", Outcome: "success"},
		Actions:  []string{"elevate incidents review i123 --notes TEXT"}}
	b, _ := json.Marshal(a)
	return b
}

func webhook(t *testing.T, env map[string]string, sl *sleeps) notify.Sender {
	t.Helper()
	s, err := notify.New(&policies.Notifier{Block: policies.Block{Name: "pager"}, Type: "webhook", URLEnv: "HOOK_URL", SecretEnv: "HOOK_SECRET"},
		func(k string) string { return env[k] },
		notify.Options{Retry: providers.RetryPolicy{Sleep: sl.sleep, Rand: func() float64 { return 0.5 }}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWebhookSignedDelivery(t *testing.T) {
	r := newReceiver(t)
	sl := &sleeps{}
	s := webhook(t, map[string]string{"HOOK_URL": r.srv.URL + "/hooks/elevate", "HOOK_SECRET": string(secret)}, sl)
	payload := testAlert()
	if err := s.Send(t.Context(), "incident-opened/i123", payload); err != nil {
		t.Fatal(err)
	}
	got := r.deliveries()
	if len(got) != 1 {
		t.Fatalf("%d deliveries, want 1", len(got))
	}
	d := got[0]
	if err := verify(secret, d, time.Now()); err != nil {
		t.Fatalf("the receiver's own verification failed: %v (headers %v)", err, d.header)
	}
	if err := verify([]byte("another secret"), d, time.Now()); err == nil {
		t.Fatal("a delivery verified with the wrong secret")
	}
	tampered := d
	tampered.body = []byte(strings.Replace(string(d.body), "critical", "warning", 1))
	if err := verify(secret, tampered, time.Now()); err == nil {
		t.Fatal("a tampered body verified")
	}
	if string(d.body) != string(payload) {
		t.Fatalf("body %s, want the alert as queued", d.body)
	}
	if k := d.header.Get("Idempotency-Key"); k != "incident-opened/i123" {
		t.Fatalf("Idempotency-Key %q", k)
	}
	if ct := d.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	if k := d.header.Get("X-Elevate-Alert"); k != "incident-opened" {
		t.Fatalf("X-Elevate-Alert %q", k)
	}
	if len(sl.d) != 0 {
		t.Fatalf("waited %v before a first attempt that worked", sl.d)
	}
}

func TestWebhookRetriesKeepKeyAndBody(t *testing.T) {
	r := newReceiver(t,
		answer{status: 503, body: "upstream down"},
		answer{status: 429, header: map[string]string{"Retry-After": "2"}},
		answer{status: 502},
	)
	sl := &sleeps{}
	s := webhook(t, map[string]string{"HOOK_URL": r.srv.URL, "HOOK_SECRET": string(secret)}, sl)
	payload := testAlert()
	if err := s.Send(t.Context(), "k-1", payload); err != nil {
		t.Fatalf("send after three transient failures: %v", err)
	}
	got := r.deliveries()
	if len(got) != 4 {
		t.Fatalf("%d attempts, want 4 (three failures, then success)", len(got))
	}
	for i, d := range got {
		if d.header.Get("Idempotency-Key") != "k-1" || string(d.body) != string(payload) {
			t.Errorf("attempt %d: key %q, body changed: %v", i+1, d.header.Get("Idempotency-Key"), string(d.body) != string(payload))
		}
		if err := verify(secret, d, time.Now()); err != nil {
			t.Errorf("attempt %d does not verify: %v", i+1, err)
		}
	}
	// Exponential backoff with jitter (Rand fixed at 0.5): 250ms, then
	// the 2 s Retry-After (longer than the 500ms of backoff), then 1s.
	want := []time.Duration{250 * time.Millisecond, 2 * time.Second, time.Second}
	if len(sl.d) != len(want) {
		t.Fatalf("waits %v, want %v", sl.d, want)
	}
	for i := range want {
		if sl.d[i] != want[i] {
			t.Fatalf("waits %v, want %v", sl.d, want)
		}
	}
}

func TestWebhookGivesUpAndClassifies(t *testing.T) {
	t.Run("server errors are retried a bounded number of times", func(t *testing.T) {
		r := newReceiver(t, answer{status: 500}, answer{status: 500}, answer{status: 500}, answer{status: 500}, answer{status: 500})
		sl := &sleeps{}
		s := webhook(t, map[string]string{"HOOK_URL": r.srv.URL, "HOOK_SECRET": string(secret)}, sl)
		err := s.Send(t.Context(), "k", testAlert())
		if err == nil || !providers.IsTransient(err) || !strings.Contains(err.Error(), "4 attempts") {
			t.Fatalf("error %v, want a transient error after 4 attempts", err)
		}
		if n := len(r.deliveries()); n != 4 {
			t.Fatalf("%d attempts, want 4", n)
		}
	})
	t.Run("a long Retry-After is handed back to the caller", func(t *testing.T) {
		r := newReceiver(t, answer{status: 429, header: map[string]string{"Retry-After": "600"}})
		s := webhook(t, map[string]string{"HOOK_URL": r.srv.URL, "HOOK_SECRET": string(secret)}, &sleeps{})
		err := s.Send(t.Context(), "k", testAlert())
		if !providers.IsTransient(err) || providers.RetryAfterOf(err) != 10*time.Minute {
			t.Fatalf("error %v (retry after %s), want transient with retry after 10m", err, providers.RetryAfterOf(err))
		}
		if n := len(r.deliveries()); n != 1 {
			t.Fatalf("%d attempts, want 1", n)
		}
	})
	t.Run("client errors are not retried", func(t *testing.T) {
		r := newReceiver(t, answer{status: 401, body: "bad signature"})
		s := webhook(t, map[string]string{"HOOK_URL": r.srv.URL, "HOOK_SECRET": string(secret)}, &sleeps{})
		err := s.Send(t.Context(), "k", testAlert())
		if err == nil || providers.IsTransient(err) || !strings.Contains(err.Error(), "401") {
			t.Fatalf("error %v, want a permanent error naming 401", err)
		}
		if n := len(r.deliveries()); n != 1 {
			t.Fatalf("%d attempts, want 1", n)
		}
	})
	t.Run("network errors are retried and never show the URL", func(t *testing.T) {
		r := newReceiver(t)
		target := r.srv.URL + "/services/T000/B000/sekrit-token-xyz"
		r.srv.Close()
		sl := &sleeps{}
		s := webhook(t, map[string]string{"HOOK_URL": target, "HOOK_SECRET": string(secret)}, sl)
		err := s.Send(t.Context(), "k", testAlert())
		if err == nil || !providers.IsTransient(err) {
			t.Fatalf("error %v, want transient", err)
		}
		if strings.Contains(err.Error(), "sekrit") || strings.Contains(err.Error(), "/services/") {
			t.Fatalf("the error shows the notifier URL: %v", err)
		}
		if len(sl.d) != 3 {
			t.Fatalf("%d waits, want 3 between 4 attempts", len(sl.d))
		}
	})
}

func TestUnsignedWebhookWithoutSecret(t *testing.T) {
	r := newReceiver(t)
	s, err := notify.New(&policies.Notifier{Block: policies.Block{Name: "n"}, Type: "webhook", URLEnv: "U"},
		func(string) string { return r.srv.URL }, notify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(t.Context(), "k", testAlert()); err != nil {
		t.Fatal(err)
	}
	d := r.deliveries()[0]
	if d.header.Get("X-Elevate-Signature") != "" || d.header.Get("Idempotency-Key") != "k" {
		t.Fatalf("headers %v: want no signature without a secret, and the key", d.header)
	}
}

func TestSlackMessage(t *testing.T) {
	r := newReceiver(t)
	s, err := notify.New(&policies.Notifier{Block: policies.Block{Name: "sec-slack"}, Type: "slack", URLEnv: "SLACK_URL"},
		func(k string) string { return map[string]string{"SLACK_URL": r.srv.URL + "/services/T1/B2/xyz"}[k] }, notify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(t.Context(), "incident-opened/i123", testAlert()); err != nil {
		t.Fatal(err)
	}
	d := r.deliveries()[0]
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type   string `json:"type"`
			Text   *struct{ Type, Text string }
			Fields []struct{ Type, Text string }
		} `json:"blocks"`
	}
	if err := json.Unmarshal(d.body, &msg); err != nil {
		t.Fatalf("Slack body %s: %v", d.body, err)
	}
	if !strings.Contains(msg.Text, "Undeclared break-glass use") || len(msg.Blocks) < 3 || msg.Blocks[0].Type != "header" {
		t.Fatalf("Slack message %s", d.body)
	}
	var fields []string
	for _, f := range msg.Blocks[2].Fields {
		fields = append(fields, f.Text)
	}
	joined := strings.Join(fields, "|")
	for _, want := range []string{"*Severity*\ncritical", "*Declared*\nno: *undeclared*", "ConsoleLogin (success) from 203.0.113.7", "`i123`"} {
		if !strings.Contains(joined, want) {
			t.Errorf("Slack fields %q lack %q", joined, want)
		}
	}
	if d.header.Get("Idempotency-Key") != "incident-opened/i123" || d.header.Get("X-Elevate-Signature") != "" {
		t.Fatalf("Slack headers %v", d.header)
	}
	// Slack's mrkdwn control characters in alert text are escaped.
	m := notify.SlackMessage(&notify.Alert{Summary: "<!channel> & co", Account: "a>b"})
	if !strings.Contains(m.Text, "&lt;!channel&gt; &amp; co") {
		t.Fatalf("unescaped text %q", m.Text)
	}
}

func TestNewExplainsConfiguration(t *testing.T) {
	n := &policies.Notifier{Block: policies.Block{Name: "pager"}, Type: "webhook", URLEnv: "HOOK_URL", SecretEnv: "HOOK_SECRET"}
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no URL", map[string]string{}, "environment variable HOOK_URL is not set"},
		{"not a URL", map[string]string{"HOOK_URL": "ftp://sekrit-host/x"}, "does not hold an http(s) URL"},
		{"no secret", map[string]string{"HOOK_URL": "https://hooks.example/sekrit"}, "HOOK_SECRET (its signing secret) is not set"},
	}
	for _, c := range cases {
		_, err := notify.New(n, func(k string) string { return c.env[k] }, notify.Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "sekrit") {
			t.Errorf("%s: the error shows the environment's value: %v", c.name, err)
		}
	}
	_, err := notify.New(&policies.Notifier{Block: policies.Block{Name: "x"}, Type: "pagerduty", URLEnv: "U"},
		func(string) string { return "https://example.com" }, notify.Options{})
	if err == nil || !strings.Contains(err.Error(), "use webhook or slack") {
		t.Errorf("unknown type: %v", err)
	}
}
