package breakglass

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// ctLogin is one CloudTrail ConsoleLogin record of IAM user name in the
// fixtures' account, as a JSON line.
func ctLogin(id, user string, at time.Time, success bool) string {
	result, extra := "Success", ""
	if !success {
		result, extra = "Failure", `"errorMessage":"Failed authentication",`
	}
	return fmt.Sprintf(`{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::123456789012:user/%s","accountId":"123456789012","userName":"%s"},"eventTime":"%s","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7",%s"responseElements":{"ConsoleLogin":"%s"},"additionalEventData":{"MFAUsed":"Yes"},"eventID":"%s","eventType":"AwsConsoleSignIn"}`+"\n",
		user, user, at.UTC().Format(time.RFC3339), extra, result, id)
}

// trailFile is a CloudTrail trail file holding records.
func trailFile(records ...string) string {
	var b bytes.Buffer
	b.WriteString(`{"Records":[`)
	for i, r := range records {
		if i > 0 {
			b.WriteString(",\n")
		}
		b.WriteString(string(bytes.TrimSpace([]byte(r))))
	}
	b.WriteString("]}\n")
	return b.String()
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func appendFile(t testing.TB, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// t0 is the fixtures' time: the night of the IdP outage.
var t0 = time.Date(2026, 11, 29, 3, 12, 0, 0, time.UTC)
