// Package notify delivers break-glass alerts to the notifiers of the
// policies' notifier blocks: a generic webhook (a JSON body signed with
// HMAC-SHA256) and a Slack incoming webhook. Every delivery carries the
// alert's idempotency key, is retried on throttling, server errors and
// network failures with exponential backoff and jitter (honouring
// Retry-After), and never writes the notifier's URL or secret into an error
// or a log: both come from environment variables and are secrets.
package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/providers"
)

// Alert kinds.
const (
	// KindIncidentOpened: a break-glass account was used (or someone tried
	// to sign in with it) and a new incident was opened.
	KindIncidentOpened = "incident-opened"
	// KindIncidentEscalated: an incident that had only failed sign-ins now
	// has a successful one.
	KindIncidentEscalated = "incident-escalated"
	// KindReviewOverdue: an incident's post-incident review is past its
	// deadline; repeated at most once per reminder interval.
	KindReviewOverdue = "review-overdue"
	// KindUseLimitExceeded: a policy's accounts were used more than
	// max_uses times within use_window: the normal access model needs work.
	KindUseLimitExceeded = "use-limit-exceeded"
)

// AlertVersion is the version of the Alert body.
const AlertVersion = 1

// Alert is the JSON body a webhook notifier receives, and what the Slack
// message is made from. docs/break-glass.md documents it.
type Alert struct {
	Version  int    `json:"version"`
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Severity string `json:"severity"`
	Summary  string `json:"summary"`
	// Time is when elevate raised the alert.
	Time        time.Time    `json:"time"`
	Policy      string       `json:"policy"`
	Account     string       `json:"account"`
	Cloud       string       `json:"cloud,omitempty"`
	Incident    *Incident    `json:"incident,omitempty"`
	Event       *Event       `json:"event,omitempty"`
	Declaration *Declaration `json:"declaration,omitempty"`
	Uses        *Uses        `json:"uses,omitempty"`
	// Actions are what to do next, as commands.
	Actions []string `json:"actions,omitempty"`
}

// Incident summarises the incident an alert is about.
type Incident struct {
	ID         string    `json:"id"`
	Status     string    `json:"status"`
	Declared   bool      `json:"declared"`
	Opened     time.Time `json:"opened"`
	FirstEvent time.Time `json:"first_event"`
	LastEvent  time.Time `json:"last_event"`
	ReviewDue  time.Time `json:"review_due"`
	EventCount int       `json:"event_count"`
	Successes  int       `json:"successes"`
	Failures   int       `json:"failures"`
	Reminders  int       `json:"reminders"`
}

// Event is the audit record that raised an alert.
type Event struct {
	ID       string    `json:"id,omitempty"`
	Name     string    `json:"name,omitempty"`
	Time     time.Time `json:"time"`
	SourceIP string    `json:"source_ip,omitempty"`
	Outcome  string    `json:"outcome"`
	Source   string    `json:"source,omitempty"`
	Where    string    `json:"where,omitempty"`
}

// Declaration is the declaration covering an incident.
type Declaration struct {
	ID         string    `json:"id"`
	Reason     string    `json:"reason"`
	Incident   string    `json:"incident,omitempty"`
	DeclaredBy string    `json:"declared_by"`
	At         time.Time `json:"at"`
	Expires    time.Time `json:"expires"`
}

// Uses counts a policy's uses within its use window.
type Uses struct {
	Count   int    `json:"count"`
	MaxUses int    `json:"max_uses"`
	Window  string `json:"window"`
}

// Sender delivers alerts to one notifier.
type Sender interface {
	// Send delivers one alert: payload is its JSON (an Alert) and key its
	// idempotency key. Errors are classified with providers.IsTransient
	// and providers.RetryAfterOf, and never contain the notifier's URL or
	// secret.
	Send(ctx context.Context, key string, payload []byte) error
}

// Options are what senders share.
type Options struct {
	// Client defaults to a client with a 10 s timeout.
	Client *http.Client
	// Retry bounds the attempts of one Send (default 4 attempts, 500 ms
	// doubling to 8 s, Retry-After waited up to 30 s).
	Retry providers.RetryPolicy
	// Now stamps webhook signatures; default time.Now.
	Now func() time.Time
	// UserAgent defaults to "elevate".
	UserAgent string
}

func (o Options) withDefaults() Options {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Retry.MaxAttempts == 0 {
		o.Retry.MaxAttempts = 4
	}
	if o.Retry.BaseDelay == 0 {
		o.Retry.BaseDelay = 500 * time.Millisecond
	}
	if o.Retry.MaxDelay == 0 {
		o.Retry.MaxDelay = 8 * time.Second
	}
	if o.Retry.MaxRetryAfter == 0 {
		o.Retry.MaxRetryAfter = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.UserAgent == "" {
		o.UserAgent = "elevate"
	}
	return o
}

// New builds the sender of a notifier block, reading its URL (and, for a
// webhook, its signing secret) from the environment through getenv.
func New(n *policies.Notifier, getenv func(string) string, o Options) (Sender, error) {
	if n.URLEnv == "" {
		return nil, fmt.Errorf("notifier %q has no url_env: name the environment variable that holds its URL", n.Name)
	}
	raw := strings.TrimSpace(getenv(n.URLEnv))
	if raw == "" {
		return nil, fmt.Errorf("notifier %q: environment variable %s is not set in the daemon's environment: set it to the notifier's URL and restart elevate", n.Name, n.URLEnv)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("notifier %q: environment variable %s does not hold an http(s) URL", n.Name, n.URLEnv)
	}
	o = o.withDefaults()
	switch n.Type {
	case policies.NotifierWebhook, "":
		w := &Webhook{Name: n.Name, URL: u.String(), opts: o}
		if n.SecretEnv != "" {
			secret := getenv(n.SecretEnv)
			if secret == "" {
				return nil, fmt.Errorf("notifier %q: environment variable %s (its signing secret) is not set in the daemon's environment: set it and restart elevate", n.Name, n.SecretEnv)
			}
			w.Secret = []byte(secret)
		}
		return w, nil
	case policies.NotifierSlack:
		return &Slack{Name: n.Name, URL: u.String(), opts: o}, nil
	}
	return nil, fmt.Errorf("notifier %q has type %q: use webhook or slack", n.Name, n.Type)
}

// post sends body to target with the given headers, retrying transient
// failures, and returns nil on a 2xx answer.
func post(ctx context.Context, o Options, name, target string, body []byte, headers func(h http.Header)) error {
	pol := o.Retry
	for retry := 0; ; retry++ {
		err := postOnce(ctx, o, name, target, body, headers)
		if err == nil || !providers.IsTransient(err) || ctx.Err() != nil {
			return err
		}
		if retry+1 >= pol.MaxAttempts {
			return fmt.Errorf("giving up after %d attempts: %w", retry+1, err)
		}
		d, ok := pol.Backoff(retry, err)
		if !ok {
			return fmt.Errorf("not retrying now: the notifier asked to wait %s: %w", providers.RetryAfterOf(err), err)
		}
		sleep := pol.Sleep
		if sleep == nil {
			sleep = sleepContext
		}
		if serr := sleep(ctx, d); serr != nil {
			return fmt.Errorf("waiting to retry: %w", errors.Join(err, serr))
		}
	}
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func postOnce(ctx context.Context, o Options, name, target string, body []byte, headers func(h http.Header)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(string(body)))
	if err != nil {
		return fmt.Errorf("notifier %q: building the request failed", name)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", o.UserAgent)
	headers(req.Header)
	resp, err := o.Client.Do(req)
	if err != nil {
		// *url.Error carries the whole URL, which may hold a token (Slack's
		// do): keep only what went wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return providers.Transient(fmt.Errorf("notifier %q: posting the alert: %v", name, scrub(err.Error(), target)))
	}
	defer resp.Body.Close()
	var snippet [200]byte
	n, _ := resp.Body.Read(snippet[:])
	text := strings.TrimSpace(scrub(string(snippet[:n]), target))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	msg := fmt.Sprintf("notifier %q answered %d %s", name, resp.StatusCode, http.StatusText(resp.StatusCode))
	if text != "" && isPrintable(text) {
		msg += ": " + text
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return providers.Throttled(errors.New(msg), retryAfter(resp.Header.Get("Retry-After"), o.Now()))
	case resp.StatusCode >= 500:
		if ra := retryAfter(resp.Header.Get("Retry-After"), o.Now()); ra > 0 {
			return providers.Throttled(errors.New(msg), ra)
		}
		return providers.Transient(errors.New(msg))
	}
	return errors.New(msg + " (not retried: check the notifier's URL and secret)")
}

// scrub removes the target URL, its path and its query from s.
func scrub(s, target string) string {
	if target == "" {
		return s
	}
	s = strings.ReplaceAll(s, target, "[notifier URL]")
	if u, err := url.Parse(target); err == nil {
		if len(u.Path) > 1 {
			s = strings.ReplaceAll(s, u.Path, "[path]")
		}
		if u.RawQuery != "" {
			s = strings.ReplaceAll(s, u.RawQuery, "[query]")
		}
	}
	return s
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r < 0x20 && r != '\t' {
			return false
		}
	}
	return true
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var secs int
	if _, err := fmt.Sscanf(v, "%d", &secs); err == nil && fmt.Sprint(secs) == v {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
