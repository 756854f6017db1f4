package gcpemu_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"
	logging "cloud.google.com/go/logging/apiv2"
	"cloud.google.com/go/logging/apiv2/loggingpb"
	"cloud.google.com/go/logging/logadmin"
	resourcemanager "cloud.google.com/go/resourcemanager/apiv3"
	"google.golang.org/api/iterator"
	"google.golang.org/genproto/googleapis/cloud/audit"
	iamlogging "google.golang.org/genproto/googleapis/iam/v1/logging"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/elevatehq/elevate/providers/gcp/gcpemu"
)

func (e *env) logadmin(t *testing.T, parent string) *logadmin.Client {
	t.Helper()
	c, err := logadmin.NewClient(e.ctx, parent, gcpemu.ClientOptions(e.addr)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (e *env) rawLogging(t *testing.T) *logging.Client {
	t.Helper()
	c, err := logging.NewClient(e.ctx, gcpemu.ClientOptions(e.addr)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// auditOf returns the AuditLog payload logadmin decoded.
func auditOf(t *testing.T, payload any) *audit.AuditLog {
	t.Helper()
	al, ok := payload.(*audit.AuditLog)
	if !ok {
		t.Fatalf("payload is %T, want *audit.AuditLog", payload)
	}
	return al
}

func TestAuditEntriesThroughLogadmin(t *testing.T) {
	e := newEnv(t, gcpemu.Options{})
	res := e.emu.CreateProject("p1")

	// Calls by two principals at different times.
	human, err := resourcemanager.NewProjectsClient(e.ctx, append(gcpemu.ClientOptions(e.addr), gcpemu.WithPrincipal("alice@example.com"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer human.Close()
	p := e.get(t, res, 3)
	p.Version = 3
	p.Bindings = []*iampb.Binding{{Role: "roles/cloudsql.admin", Members: []string{"user:b@example.com"}, Condition: expiring("elevate:g1", base.Add(time.Hour))}}
	e.mustSet(t, res, p) // t0: Get, Set by the default principal
	e.clock.Advance(time.Minute)
	if _, err := human.GetIamPolicy(e.ctx, &iampb.GetIamPolicyRequest{Resource: res}); err != nil { // t0+1m
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	if _, err := e.set(res, p); status.Code(err) != codes.Aborted { // t0+2m, failed call is audited too
		t.Fatalf("stale write: %v", err)
	}

	la := e.logadmin(t, res)
	var got []*audit.AuditLog
	var times []time.Time
	it := la.Entries(e.ctx, logadmin.Filter(fmt.Sprintf(`timestamp >= "%s"`, rfc(base))))
	for {
		entry, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, auditOf(t, entry.Payload))
		times = append(times, entry.Timestamp)
	}
	if len(got) != 4 {
		t.Fatalf("want 4 audit entries (get, set, get, aborted set), got %d", len(got))
	}
	set := got[1]
	if set.MethodName != "google.cloud.resourcemanager.v3.Projects.SetIamPolicy" || set.ResourceName != res ||
		set.AuthenticationInfo.PrincipalEmail != gcpemu.DefaultPrincipal || set.RequestMetadata.CallerIp != "127.0.0.1" {
		t.Fatalf("SetIamPolicy entry: %v", set)
	}
	var data iamlogging.AuditData
	if err := set.ServiceData.UnmarshalTo(&data); err != nil {
		t.Fatalf("serviceData: %v", err)
	}
	deltas := data.PolicyDelta.GetBindingDeltas()
	if len(deltas) != 1 || deltas[0].Action != iampb.BindingDelta_ADD || deltas[0].Role != "roles/cloudsql.admin" ||
		deltas[0].Member != "user:b@example.com" || deltas[0].Condition.GetTitle() != "elevate:g1" {
		t.Fatalf("binding deltas: %v", deltas)
	}
	if got[2].AuthenticationInfo.PrincipalEmail != "alice@example.com" || !times[2].Equal(base.Add(time.Minute)) {
		t.Fatalf("third entry: principal %s at %s", got[2].AuthenticationInfo.PrincipalEmail, times[2])
	}
	if got[3].Status.GetCode() != int32(codes.Aborted) {
		t.Fatalf("aborted call logged with status %v", got[3].Status)
	}

	// Filters elevate uses.
	count := func(filter string, opts ...logadmin.EntriesOption) int {
		t.Helper()
		n := 0
		it := la.Entries(e.ctx, append([]logadmin.EntriesOption{logadmin.Filter(filter)}, opts...)...)
		for {
			_, err := it.Next()
			if err == iterator.Done {
				return n
			}
			if err != nil {
				t.Fatalf("filter %s: %v", filter, err)
			}
			n++
		}
	}
	activity := res + "/logs/" + gcpemu.ActivityLogID
	for _, tc := range []struct {
		filter string
		want   int
	}{
		{fmt.Sprintf(`timestamp > "%s"`, rfc(base)), 2},
		{fmt.Sprintf(`timestamp >= "%s" AND timestamp < "%s"`, rfc(base), rfc(base.Add(time.Minute))), 2},
		{fmt.Sprintf(`timestamp >= "%s" AND logName = "%s"`, rfc(base), activity), 2},
		{fmt.Sprintf(`timestamp >= "%s" logName:"cloudaudit.googleapis.com"`, rfc(base)), 4},
		{fmt.Sprintf(`timestamp >= "%s" AND protoPayload.methodName = "google.cloud.resourcemanager.v3.Projects.GetIamPolicy"`, rfc(base)), 2},
		{fmt.Sprintf(`timestamp >= "%s" AND protoPayload.methodName:"SetIamPolicy"`, rfc(base)), 2},
		{fmt.Sprintf(`timestamp >= "%s" AND protoPayload.authenticationInfo.principalEmail = "ALICE@example.com"`, rfc(base)), 1},
		{fmt.Sprintf(`timestamp >= "%s" AND (protoPayload.authenticationInfo.principalEmail = "alice@example.com" OR logName = "%s")`, rfc(base), activity), 3},
		{fmt.Sprintf(`timestamp >= "%s" AND NOT protoPayload.methodName:"Get"`, rfc(base)), 2},
		{fmt.Sprintf(`timestamp >= "%s" AND severity >= NOTICE`, rfc(base)), 2},
	} {
		if n := count(tc.filter); n != tc.want {
			t.Errorf("filter %s: %d entries, want %d", tc.filter, n, tc.want)
		}
	}

	// Newest first.
	it = la.Entries(e.ctx, logadmin.Filter(fmt.Sprintf(`timestamp >= "%s"`, rfc(base))), logadmin.NewestFirst())
	first, err := it.Next()
	if err != nil || !first.Timestamp.Equal(base.Add(2*time.Minute)) {
		t.Fatalf("newest first: %v at %v", err, first)
	}
}

func TestListPagingAndOrder(t *testing.T) {
	e := newEnv(t, gcpemu.Options{})
	res := e.emu.CreateProject("p1")
	for i := range 25 {
		e.emu.InjectAudit(gcpemu.AuditRecord{
			Parent: res, Activity: i%2 == 0, Time: base.Add(time.Duration(i%5) * time.Second), // ties on purpose
			ServiceName: "login.googleapis.com", MethodName: "google.login.LoginService.loginSuccess",
			Principal: fmt.Sprintf("u%d@example.com", i),
		})
	}
	raw := e.rawLogging(t)
	filter := fmt.Sprintf(`timestamp >= "%s"`, rfc(base))
	for _, order := range []string{"timestamp asc", "timestamp desc"} {
		seen := map[string]bool{}
		var last time.Time
		token := ""
		pages := 0
		// Page through with explicit tokens on the raw RPC to see page boundaries.
		for {
			resp, err := listPage(e, raw, &loggingpb.ListLogEntriesRequest{
				ResourceNames: []string{res}, Filter: filter, OrderBy: order, PageSize: 7, PageToken: token,
			})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, en := range resp.Entries {
				ts := en.Timestamp.AsTime()
				if !last.IsZero() && ((order == "timestamp asc" && ts.Before(last)) || (order == "timestamp desc" && ts.After(last))) {
					t.Fatalf("%s: out of order at %s", order, ts)
				}
				last = ts
				if seen[en.InsertId] {
					t.Fatalf("%s: entry %s returned twice", order, en.InsertId)
				}
				seen[en.InsertId] = true
			}
			if resp.NextPageToken == "" {
				break
			}
			token = resp.NextPageToken
		}
		if len(seen) != 25 || pages != 4 {
			t.Fatalf("%s: %d entries over %d pages, want 25 over 4", order, len(seen), pages)
		}
	}
	// A token only works for its own query.
	resp, err := listPage(e, raw, &loggingpb.ListLogEntriesRequest{ResourceNames: []string{res}, Filter: filter, PageSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	_, err = listPage(e, raw, &loggingpb.ListLogEntriesRequest{ResourceNames: []string{res}, Filter: filter + ` AND logName:"activity"`, PageSize: 7, PageToken: resp.NextPageToken})
	wantCode(t, err, codes.InvalidArgument, "different query")

	// Through logadmin's iterator with a small page size, everything comes back once.
	la := e.logadmin(t, res)
	it := la.Entries(e.ctx, logadmin.Filter(filter), logadmin.PageSize(4))
	n := 0
	for {
		_, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 25 {
		t.Fatalf("logadmin paged %d entries, want 25", n)
	}
}

// listPage makes one ListLogEntries RPC and returns its raw response.
func listPage(e *env, c *logging.Client, req *loggingpb.ListLogEntriesRequest) (*loggingpb.ListLogEntriesResponse, error) {
	it := c.ListLogEntries(e.ctx, req)
	if _, err := it.Next(); err != nil && err != iterator.Done {
		return nil, err
	}
	resp, _ := it.Response.(*loggingpb.ListLogEntriesResponse)
	if resp == nil {
		resp = &loggingpb.ListLogEntriesResponse{}
	}
	return resp, nil
}

func TestListWithoutTimestampSearchesOneDay(t *testing.T) {
	e := newEnv(t, gcpemu.Options{})
	res := e.emu.CreateProject("p1")
	e.emu.InjectAudit(gcpemu.AuditRecord{Parent: res, Time: base.Add(-25 * time.Hour), MethodName: "old", Principal: "a@example.com"})
	e.emu.InjectAudit(gcpemu.AuditRecord{Parent: res, Time: base.Add(-23 * time.Hour), MethodName: "recent", Principal: "a@example.com"})
	raw := e.rawLogging(t)

	resp, err := listPage(e, raw, &loggingpb.ListLogEntriesRequest{ResourceNames: []string{res}, Filter: `protoPayload.authenticationInfo.principalEmail = "a@example.com"`})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Entries) != 1 || auditPayloadOf(t, resp.Entries[0]).MethodName != "recent" {
		t.Fatalf("a filter without a timestamp returned %d entries, want only the one from the last 24 h", len(resp.Entries))
	}
	resp, err = listPage(e, raw, &loggingpb.ListLogEntriesRequest{ResourceNames: []string{res}, Filter: fmt.Sprintf(`timestamp >= "%s"`, rfc(base.Add(-48*time.Hour)))})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Entries) != 2 {
		t.Fatalf("an explicit bound returned %d entries, want 2", len(resp.Entries))
	}
	if n := e.emu.Counters().ListWithoutTimestamp; n != 1 {
		t.Fatalf("ListWithoutTimestamp = %d, want 1", n)
	}
}

func auditPayloadOf(t *testing.T, en *loggingpb.LogEntry) *audit.AuditLog {
	t.Helper()
	al := &audit.AuditLog{}
	if err := en.GetProtoPayload().UnmarshalTo(al); err != nil {
		t.Fatal(err)
	}
	return al
}

func TestListRejectsUnsupportedQueries(t *testing.T) {
	e := newEnv(t, gcpemu.Options{})
	res := e.emu.CreateProject("p1")
	raw := e.rawLogging(t)
	for _, tc := range []struct {
		req  *loggingpb.ListLogEntriesRequest
		want string
	}{
		{&loggingpb.ListLogEntriesRequest{}, "resource_names"},
		{&loggingpb.ListLogEntriesRequest{ResourceNames: []string{"billingAccounts/1"}}, "billingAccounts/1"},
		{&loggingpb.ListLogEntriesRequest{ResourceNames: []string{res}, Filter: `jsonPayload.x = "y"`}, "jsonPayload.x"},
		{&loggingpb.ListLogEntriesRequest{ResourceNames: []string{res}, Filter: `logName =~ "a.*"`}, "=~"},
		{&loggingpb.ListLogEntriesRequest{ResourceNames: []string{res}, Filter: `robot`}, "global restriction"},
		{&loggingpb.ListLogEntriesRequest{ResourceNames: []string{res}, Filter: `logName = "a" and logName = "b"`}, "upper case"},
		{&loggingpb.ListLogEntriesRequest{ResourceNames: []string{res}, Filter: `timestamp >= "yesterday"`}, "RFC 3339"},
		{&loggingpb.ListLogEntriesRequest{ResourceNames: []string{res}, Filter: `(logName = "a"`}, "missing )"},
		{&loggingpb.ListLogEntriesRequest{ResourceNames: []string{res}, OrderBy: "insertId"}, "order_by"},
		{&loggingpb.ListLogEntriesRequest{ResourceNames: []string{res}, PageSize: 1001}, "page_size"},
		{&loggingpb.ListLogEntriesRequest{ResourceNames: []string{res}, PageToken: "garbage!"}, "page_token"},
	} {
		_, err := listPage(e, raw, tc.req)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("request %v: got %v, want INVALID_ARGUMENT mentioning %q", tc.req, err, tc.want)
		}
	}
}

func TestListOnlyOwnParentAndReadQuota(t *testing.T) {
	e := newEnv(t, gcpemu.Options{ReadQuotaPerMinute: 3})
	p1, p2 := e.emu.CreateProject("p1"), e.emu.CreateProject("p2")
	org := e.emu.CreateOrganization("42")
	for _, r := range []string{p1, p2, org} {
		e.emu.InjectAudit(gcpemu.AuditRecord{Parent: r, MethodName: "m", Principal: "a@example.com"})
	}
	raw := e.rawLogging(t)
	filter := fmt.Sprintf(`timestamp >= "%s"`, rfc(base))
	resp, err := listPage(e, raw, &loggingpb.ListLogEntriesRequest{ResourceNames: []string{org}, Filter: filter})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Entries) != 1 {
		t.Fatalf("organization listing returned %d entries, want only its own 1 (no aggregation without a sink)", len(resp.Entries))
	}
	resp, err = listPage(e, raw, &loggingpb.ListLogEntriesRequest{ResourceNames: []string{p1, p2}, Filter: filter})
	if err != nil || len(resp.Entries) != 2 {
		t.Fatalf("two projects: %v, %d entries", err, len(resp.Entries))
	}
	listPage(e, raw, &loggingpb.ListLogEntriesRequest{ResourceNames: []string{p1}, Filter: filter})
	_, err = listPage(e, raw, &loggingpb.ListLogEntriesRequest{ResourceNames: []string{p1}, Filter: filter})
	wantCode(t, err, codes.ResourceExhausted, "Read requests per minute")
	if d := retryDelay(err); d <= 0 || d > time.Minute {
		t.Fatalf("quota error retry delay %v, want within a minute", d)
	}
	e.clock.Advance(61 * time.Second)
	if _, err := listPage(e, raw, &loggingpb.ListLogEntriesRequest{ResourceNames: []string{p1}, Filter: filter}); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	if n := e.emu.Counters().QuotaExceeded; n != 1 {
		t.Fatalf("QuotaExceeded = %d, want 1", n)
	}
}

func retryDelay(err error) time.Duration {
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}
