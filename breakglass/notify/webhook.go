package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Headers of a webhook delivery.
const (
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256, keyed with the
	// notifier's secret, of the timestamp, a ".", and the body.
	HeaderSignature = "X-Elevate-Signature"
	// HeaderTimestamp is the Unix time (seconds) the delivery was signed;
	// receivers should refuse old ones (replays).
	HeaderTimestamp = "X-Elevate-Timestamp"
	// HeaderIdempotencyKey is the alert's ID: the same for every attempt
	// and every re-raise of one alert, so receivers can drop duplicates.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderAlertKind is the alert's kind.
	HeaderAlertKind = "X-Elevate-Alert"
)

// Webhook posts alerts as JSON to a URL.
type Webhook struct {
	Name string
	URL  string
	// Secret signs deliveries; none are signed when it is empty.
	Secret []byte
	opts   Options
}

// NewWebhook returns a webhook sender; an empty secret sends unsigned.
func NewWebhook(name, url string, secret []byte, o Options) *Webhook {
	return &Webhook{Name: name, URL: url, Secret: secret, opts: o.withDefaults()}
}

// Sign returns the signature header value of body signed at timestamp
// (Unix seconds) with secret.
func Sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Send posts payload. Each attempt is signed afresh (a new timestamp) over
// the same body and key.
func (w *Webhook) Send(ctx context.Context, key string, payload []byte) error {
	kind := alertKind(payload)
	return post(ctx, w.opts, w.Name, w.URL, payload, func(h http.Header) {
		h.Set(HeaderIdempotencyKey, key)
		if kind != "" {
			h.Set(HeaderAlertKind, kind)
		}
		if len(w.Secret) > 0 {
			ts := strconv.FormatInt(w.opts.Now().Unix(), 10)
			h.Set(HeaderTimestamp, ts)
			h.Set(HeaderSignature, Sign(w.Secret, ts, payload))
		}
	})
}

func alertKind(payload []byte) string {
	var a struct {
		Kind string `json:"kind"`
	}
	if json.Unmarshal(payload, &a) != nil || strings.ContainsAny(a.Kind, "\r\n") {
		return ""
	}
	return a.Kind
}

// Slack posts alerts to a Slack incoming webhook as a message with blocks.
// Slack does not verify signatures, so none is sent; the URL is the secret.
type Slack struct {
	Name string
	URL  string
	opts Options
}

// NewSlack returns a Slack incoming-webhook sender.
func NewSlack(name, url string, o Options) *Slack {
	return &Slack{Name: name, URL: url, opts: o.withDefaults()}
}

// Send formats the alert as a Slack message and posts it.
func (s *Slack) Send(ctx context.Context, key string, payload []byte) error {
	var a Alert
	if err := json.Unmarshal(payload, &a); err != nil {
		return fmt.Errorf("notifier %q: the alert is not an elevate alert: %w", s.Name, err)
	}
	body, err := json.Marshal(SlackMessage(&a))
	if err != nil {
		return fmt.Errorf("notifier %q: encoding the Slack message: %w", s.Name, err)
	}
	return post(ctx, s.opts, s.Name, s.URL, body, func(h http.Header) {
		h.Set(HeaderIdempotencyKey, key)
	})
}

// SlackPayload is the body of a Slack incoming-webhook message.
type SlackPayload struct {
	Text   string       `json:"text"`
	Blocks []SlackBlock `json:"blocks"`
}

// SlackBlock is one Block Kit block: a header, a section with text or
// fields, or a context line.
type SlackBlock struct {
	Type     string      `json:"type"`
	Text     *SlackText  `json:"text,omitempty"`
	Fields   []SlackText `json:"fields,omitempty"`
	Elements []SlackText `json:"elements,omitempty"`
}

// SlackText is a Block Kit text object.
type SlackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// slackEscape escapes the three characters Slack's mrkdwn gives meaning.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// SlackMessage renders an alert as a Slack message: the summary as the
// notification text, then a header, the facts as fields, and the next
// steps.
func SlackMessage(a *Alert) SlackPayload {
	icon := ":rotating_light:"
	if a.Severity != "critical" {
		icon = ":warning:"
	}
	title := map[string]string{
		KindIncidentOpened:    "Break-glass account used",
		KindIncidentEscalated: "Break-glass sign-in succeeded",
		KindReviewOverdue:     "Post-incident review overdue",
		KindUseLimitExceeded:  "Break-glass use limit exceeded",
	}[a.Kind]
	if title == "" {
		title = "Break-glass alert"
	}
	mrk := func(s string) SlackText { return SlackText{Type: "mrkdwn", Text: s} }
	fields := []SlackText{
		mrk("*Severity*\n" + slackEscape(a.Severity)),
		mrk("*Policy*\n" + slackEscape(a.Policy)),
		mrk("*Account*\n`" + slackEscape(a.Account) + "`"),
	}
	if inc := a.Incident; inc != nil {
		declared := "no: *undeclared*"
		if inc.Declared {
			declared = "yes"
		}
		fields = append(fields, mrk("*Incident*\n`"+slackEscape(inc.ID)+"`"), mrk("*Declared*\n"+declared))
		if !inc.ReviewDue.IsZero() {
			fields = append(fields, mrk("*Review due*\n"+inc.ReviewDue.UTC().Format("2006-01-02 15:04 MST")))
		}
	}
	if e := a.Event; e != nil {
		what := slackEscape(e.Name) + " (" + slackEscape(e.Outcome) + ")"
		if e.SourceIP != "" {
			what += " from " + slackEscape(e.SourceIP)
		}
		fields = append(fields, mrk("*Event*\n"+what), mrk("*When*\n"+e.Time.UTC().Format("2006-01-02 15:04:05 MST")))
	}
	if d := a.Declaration; d != nil {
		fields = append(fields, mrk("*Declared by*\n"+slackEscape(d.DeclaredBy)+": "+slackEscape(d.Reason)))
	}
	if u := a.Uses; u != nil {
		fields = append(fields, mrk(fmt.Sprintf("*Uses*\n%d in %s (max_uses %d)", u.Count, slackEscape(u.Window), u.MaxUses)))
	}
	if len(fields) > 10 { // Slack's limit per section
		fields = fields[:10]
	}
	blocks := []SlackBlock{
		{Type: "header", Text: &SlackText{Type: "plain_text", Text: title}},
		{Type: "section", Text: &SlackText{Type: "mrkdwn", Text: icon + " " + slackEscape(a.Summary)}},
		{Type: "section", Fields: fields},
	}
	if len(a.Actions) > 0 {
		var lines []string
		for _, act := range a.Actions {
			if strings.HasPrefix(act, "elevate ") {
				act = "`" + act + "`"
			}
			lines = append(lines, "• "+slackEscape(act))
		}
		blocks = append(blocks, SlackBlock{Type: "context", Elements: []SlackText{mrk("*Next*\n" + strings.Join(lines, "\n"))}})
	}
	return SlackPayload{Text: icon + " " + slackEscape(a.Summary), Blocks: blocks}
}
