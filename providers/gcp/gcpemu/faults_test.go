package gcpemu_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"
	"cloud.google.com/go/logging/apiv2/loggingpb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/elevatehq/elevate/providers/gcp/gcpemu"
)

func TestFaultErrorRate(t *testing.T) {
	e := newEnv(t, gcpemu.Options{Seed: 7})
	res := e.emu.CreateProject("p1")
	e.emu.SetFaults(gcpemu.Faults{ErrorRate: 1})
	// SetIamPolicy is not retried by the Go client: the failure surfaces.
	_, err := e.set(res, &iampb.Policy{})
	wantCode(t, err, codes.Unavailable, "")

	// GetIamPolicy is retried on UNAVAILABLE by the client; at a 50% rate
	// the retries get through and the counter shows the failures.
	e.emu.SetFaults(gcpemu.Faults{ErrorRate: 0.5})
	for range 10 {
		e.get(t, res, 3)
	}
	c := e.emu.Counters()
	if c.InjectedUnavailable < 2 {
		t.Fatalf("InjectedUnavailable = %d after 10 reads at 50%%, want several", c.InjectedUnavailable)
	}
	if got := c.Calls[gcpemu.CallKey{Method: gcpemu.MethodGetIamPolicy, Resource: res}]; got != 10+c.InjectedUnavailable-1 {
		t.Fatalf("GetIamPolicy calls %d, want 10 successes plus %d retried failures", got, c.InjectedUnavailable-1)
	}
}

func TestFaultResourceExhaustedCarriesRetryInfo(t *testing.T) {
	e := newEnv(t, gcpemu.Options{})
	res := e.emu.CreateProject("p1")
	e.emu.SetFaults(gcpemu.Faults{ResourceExhaustedRate: 1, RetryDelay: 3 * time.Second})
	_, err := e.projects.GetIamPolicy(e.ctx, &iampb.GetIamPolicyRequest{Resource: res})
	wantCode(t, err, codes.ResourceExhausted, "Quota exceeded")
	if d := retryDelay(err); d != 3*time.Second {
		t.Fatalf("RetryInfo delay %v, want 3s", d)
	}
	if n := e.emu.Counters().InjectedExhausted; n != 1 {
		t.Fatalf("InjectedExhausted = %d, want 1", n)
	}
}

func TestFaultLatency(t *testing.T) {
	e := newEnv(t, gcpemu.Options{})
	res := e.emu.CreateProject("p1")
	e.emu.SetFaults(gcpemu.Faults{Latency: 80 * time.Millisecond})
	start := time.Now()
	e.get(t, res, 3)
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Fatalf("call took %v with 80ms injected latency", d)
	}
	// A deadline shorter than the latency fails the call.
	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Millisecond)
	defer cancel()
	_, err := e.projects.SetIamPolicy(ctx, &iampb.SetIamPolicyRequest{Resource: res, Policy: &iampb.Policy{}})
	wantCode(t, err, codes.DeadlineExceeded, "")
}

func TestFaultAbortedStorm(t *testing.T) {
	e := newEnv(t, gcpemu.Options{})
	res := e.emu.CreateProject("p1")
	e.emu.SetFaults(gcpemu.Faults{AbortedStorm: 3})
	attempts := 0
	for {
		attempts++
		p := e.get(t, res, 3) // fresh etag every time
		p.Bindings = []*iampb.Binding{{Role: "roles/viewer", Members: []string{"user:a@example.com"}}}
		_, err := e.set(res, p)
		if err == nil {
			break
		}
		wantCode(t, err, codes.Aborted, "concurrent policy changes")
		if attempts > 10 {
			t.Fatal("storm never ended")
		}
	}
	if attempts != 4 {
		t.Fatalf("succeeded on attempt %d, want 4 (3 aborted)", attempts)
	}
	if n := e.emu.Counters().Aborted; n != 3 {
		t.Fatalf("Aborted = %d, want 3", n)
	}
}

func TestFaultPermissionDenied(t *testing.T) {
	e := newEnv(t, gcpemu.Options{})
	res := e.emu.CreateProject("p1")
	ok := e.emu.CreateProject("p2")
	e.emu.SetFaults(gcpemu.Faults{PermissionDenied: map[string]bool{res: true}})
	_, err := e.projects.GetIamPolicy(e.ctx, &iampb.GetIamPolicyRequest{Resource: res})
	wantCode(t, err, codes.PermissionDenied, "resourcemanager.projects.getIamPolicy")
	_, err = e.set(res, &iampb.Policy{})
	wantCode(t, err, codes.PermissionDenied, "resourcemanager.projects.setIamPolicy")
	perms, err := e.projects.TestIamPermissions(e.ctx, &iampb.TestIamPermissionsRequest{Resource: res, Permissions: []string{"resourcemanager.projects.setIamPolicy"}})
	if err != nil || len(perms.Permissions) != 0 {
		t.Fatalf("TestIamPermissions on a denied resource: %v, %v", perms, err)
	}
	perms, err = e.projects.TestIamPermissions(e.ctx, &iampb.TestIamPermissionsRequest{Resource: ok, Permissions: []string{"resourcemanager.projects.setIamPolicy"}})
	if err != nil || len(perms.Permissions) != 1 {
		t.Fatalf("TestIamPermissions on an allowed resource: %v, %v", perms, err)
	}
	raw := e.rawLogging(t)
	_, err = listPage(e, raw, &loggingpb.ListLogEntriesRequest{ResourceNames: []string{res}, Filter: `timestamp >= "2026-01-01T00:00:00Z"`})
	wantCode(t, err, codes.PermissionDenied, "logging.logEntries.list")
}

func TestInjectedEntriesAndOutOfBandAudit(t *testing.T) {
	e := newEnv(t, gcpemu.Options{})
	res := e.emu.CreateProject("p1")
	if err := e.emu.ModifyPolicy(res, "bob@example.com", func(p *iampb.Policy) {
		p.Bindings = append(p.Bindings, &iampb.Binding{Role: "roles/owner", Members: []string{"user:bob@example.com"}})
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.emu.InjectLogEntry(&loggingpb.LogEntry{
		LogName:   res + "/logs/custom",
		Timestamp: timestamppb.New(base.Add(time.Second)),
		Payload:   &loggingpb.LogEntry_TextPayload{TextPayload: "hello"},
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.emu.InjectLogEntry(&loggingpb.LogEntry{LogName: "nowhere"}); err == nil {
		t.Fatal("InjectLogEntry accepted a logName without a parent")
	}
	raw := e.rawLogging(t)
	resp, err := listPage(e, raw, &loggingpb.ListLogEntriesRequest{
		ResourceNames: []string{res},
		Filter:        fmt.Sprintf(`timestamp >= "%s" AND protoPayload.authenticationInfo.principalEmail = "bob@example.com"`, rfc(base)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Entries) != 1 {
		t.Fatalf("want the out-of-band SetIamPolicy entry, got %d", len(resp.Entries))
	}
	al := auditPayloadOf(t, resp.Entries[0])
	if al.MethodName != "google.cloud.resourcemanager.v3.Projects.SetIamPolicy" || resp.Entries[0].LogName != res+"/logs/"+gcpemu.ActivityLogID {
		t.Fatalf("out-of-band entry: %s in %s", al.MethodName, resp.Entries[0].LogName)
	}
	resp, err = listPage(e, raw, &loggingpb.ListLogEntriesRequest{ResourceNames: []string{res}, Filter: fmt.Sprintf(`timestamp >= "%s" AND logName = "%s/logs/custom"`, rfc(base), res)})
	if err != nil || len(resp.Entries) != 1 || resp.Entries[0].GetTextPayload() != "hello" {
		t.Fatalf("injected text entry: %v, %v", resp, err)
	}
}

// Without retries, UNAVAILABLE from GetIamPolicy surfaces too.
func TestFaultErrorRateWithoutClientRetries(t *testing.T) {
	e := newEnv(t, gcpemu.Options{})
	res := e.emu.CreateProject("p1")
	e.emu.SetFaults(gcpemu.Faults{ErrorRate: 1})
	_, err := e.projects.GetIamPolicy(e.ctx, &iampb.GetIamPolicyRequest{Resource: res}, gax.WithRetry(nil))
	wantCode(t, err, codes.Unavailable, "")
}

// The same seed gives the same fault sequence.
func TestFaultsAreSeeded(t *testing.T) {
	outcomes := func() string {
		e := newEnv(t, gcpemu.Options{Seed: 42})
		res := e.emu.CreateProject("p1")
		e.emu.SetFaults(gcpemu.Faults{ErrorRate: 0.5})
		out := ""
		for range 20 {
			_, err := e.set(res, &iampb.Policy{})
			out += status.Code(err).String()[:1]
		}
		return out
	}
	a, b := outcomes(), outcomes()
	if a != b {
		t.Fatalf("seed 42 gave %s then %s", a, b)
	}
	if !strings.Contains(a, "U") || !strings.Contains(a, "O") {
		t.Fatalf("a 50%% error rate gave %s", a)
	}
}

func TestLogEntriesAreBounded(t *testing.T) {
	e := newEnv(t, gcpemu.Options{MaxLogEntries: 10})
	res := e.emu.CreateProject("p1")
	for i := range 25 {
		e.emu.InjectAudit(gcpemu.AuditRecord{Parent: res, MethodName: fmt.Sprint(i), Principal: "a@example.com"})
	}
	got := e.emu.LogEntries(res)
	if len(got) > 10 || len(got) < 9 {
		t.Fatalf("%d entries kept, want at most 10", len(got))
	}
	if last := auditPayloadOf(t, got[len(got)-1]).MethodName; last != "24" {
		t.Fatalf("newest entry %s, want 24 (oldest are dropped)", last)
	}
}
