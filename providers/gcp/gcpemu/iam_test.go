package gcpemu_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"
	resourcemanager "cloud.google.com/go/resourcemanager/apiv3"
	"cloud.google.com/go/resourcemanager/apiv3/resourcemanagerpb"
	"google.golang.org/genproto/googleapis/type/expr"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/elevatehq/elevate/providers/gcp/gcpemu"
)

// base is the fake clock's start.
var base = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

// fakeClock is a settable clock for the emulator.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is an emulator on a loopback port and real SDK clients talking to it.
type env struct {
	emu      *gcpemu.Emulator
	clock    *fakeClock
	addr     string
	projects *resourcemanager.ProjectsClient
	folders  *resourcemanager.FoldersClient
	orgs     *resourcemanager.OrganizationsClient
	ctx      context.Context
}

func newEnv(t testing.TB, opts gcpemu.Options) *env {
	t.Helper()
	clock := &fakeClock{now: base}
	if opts.Clock == nil {
		opts.Clock = clock.Now
	}
	emu := gcpemu.New(opts)
	addr, stop, err := emu.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	projects, err := resourcemanager.NewProjectsClient(ctx, gcpemu.ClientOptions(addr)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { projects.Close() })
	folders, err := resourcemanager.NewFoldersClient(ctx, gcpemu.ClientOptions(addr)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { folders.Close() })
	orgs, err := resourcemanager.NewOrganizationsClient(ctx, gcpemu.ClientOptions(addr)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { orgs.Close() })
	return &env{emu: emu, clock: clock, addr: addr, projects: projects, folders: folders, orgs: orgs, ctx: ctx}
}

func (e *env) get(t *testing.T, res string, version int32) *iampb.Policy {
	t.Helper()
	p, err := e.projects.GetIamPolicy(e.ctx, &iampb.GetIamPolicyRequest{
		Resource: res, Options: &iampb.GetPolicyOptions{RequestedPolicyVersion: version},
	})
	if err != nil {
		t.Fatalf("GetIamPolicy(%s, v%d): %v", res, version, err)
	}
	return p
}

func (e *env) set(res string, p *iampb.Policy) (*iampb.Policy, error) {
	return e.projects.SetIamPolicy(e.ctx, &iampb.SetIamPolicyRequest{Resource: res, Policy: p})
}

func (e *env) mustSet(t *testing.T, res string, p *iampb.Policy) *iampb.Policy {
	t.Helper()
	out, err := e.set(res, p)
	if err != nil {
		t.Fatalf("SetIamPolicy(%s): %v", res, err)
	}
	return out
}

func expiring(title string, until time.Time) *expr.Expr {
	return &expr.Expr{
		Title:       title,
		Description: "granted by elevate",
		Expression:  fmt.Sprintf("request.time < timestamp('%s')", until.UTC().Format(time.RFC3339)),
	}
}

func wantCode(t *testing.T, err error, code codes.Code, contains string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("got %v (code %v), want code %v", err, status.Code(err), code)
	}
	if contains != "" && !strings.Contains(status.Convert(err).Message(), contains) {
		t.Fatalf("error %q does not mention %q", status.Convert(err).Message(), contains)
	}
}

func TestEtagConflictIsAborted(t *testing.T) {
	e := newEnv(t, gcpemu.Options{})
	res := e.emu.CreateProject("p1")

	first := e.get(t, res, 3)
	if len(first.Etag) == 0 {
		t.Fatal("a fresh policy has no etag")
	}
	first.Bindings = append(first.Bindings, &iampb.Binding{Role: "roles/viewer", Members: []string{"user:a@example.com"}})
	stale := proto.Clone(first).(*iampb.Policy)
	written := e.mustSet(t, res, first)
	if proto.Equal(&iampb.Policy{Etag: written.Etag}, &iampb.Policy{Etag: first.Etag}) {
		t.Fatal("SetIamPolicy did not change the etag")
	}

	stale.Bindings = append(stale.Bindings, &iampb.Binding{Role: "roles/editor", Members: []string{"user:b@example.com"}})
	_, err := e.set(res, stale)
	wantCode(t, err, codes.Aborted, "concurrent policy changes")
	if got := e.emu.Policy(res); len(got.Bindings) != 1 || got.Bindings[0].Role != "roles/viewer" {
		t.Fatalf("an aborted write changed the policy: %v", got)
	}

	// A write without an etag is last-write-wins, as on GCP, and counted.
	e.mustSet(t, res, &iampb.Policy{Bindings: []*iampb.Binding{{Role: "roles/owner", Members: []string{"user:c@example.com"}}}})
	c := e.emu.Counters()
	if c.SetWithEtag != 2 || c.SetWithoutEtag != 1 || c.Aborted != 1 {
		t.Fatalf("counters with etag %d, without %d, aborted %d; want 2, 1, 1", c.SetWithEtag, c.SetWithoutEtag, c.Aborted)
	}
	if n := e.emu.Calls(gcpemu.MethodSetIamPolicy, res); n != 3 {
		t.Fatalf("SetIamPolicy calls on %s = %d, want 3", res, n)
	}
}

func TestVersion1ViewHidesConditions(t *testing.T) {
	e := newEnv(t, gcpemu.Options{})
	res := e.emu.CreateProject("p1")
	p := e.get(t, res, 3)
	p.Version = 3
	p.Bindings = []*iampb.Binding{
		{Role: "roles/viewer", Members: []string{"user:a@example.com"}},
		{Role: "roles/cloudsql.admin", Members: []string{"user:b@example.com"}, Condition: expiring("elevate:g1", base.Add(time.Hour))},
	}
	written := e.mustSet(t, res, p)
	if written.Version != 3 {
		t.Fatalf("a policy with conditions is stored as version %d, want 3", written.Version)
	}

	for _, v := range []int32{0, 1} {
		got := e.get(t, res, v)
		if got.Version != 1 {
			t.Errorf("v%d read: version %d, want 1", v, got.Version)
		}
		var roles []string
		for _, b := range got.Bindings {
			if b.Condition != nil {
				t.Errorf("v%d read shows condition %v", v, b.Condition)
			}
			roles = append(roles, b.Role)
		}
		if len(roles) != 2 || roles[0] != "roles/viewer" || !strings.HasPrefix(roles[1], "roles/cloudsql.admin_withcond_") || len(roles[1]) != len("roles/cloudsql.admin_withcond_")+20 {
			t.Errorf("v%d read roles %q, want roles/viewer and roles/cloudsql.admin_withcond_<20 hex>", v, roles)
		}
	}
	full := e.get(t, res, 3)
	if full.Version != 3 || full.Bindings[1].Condition.GetTitle() != "elevate:g1" {
		t.Fatalf("v3 read lost the condition: %v", full)
	}

	// Version 3 requested on a policy without conditions answers version 1.
	other := e.emu.CreateProject("p2")
	if got := e.get(t, other, 3); got.Version != 1 {
		t.Fatalf("v3 read of an unconditional policy: version %d, want 1", got.Version)
	}
	_, err := e.projects.GetIamPolicy(e.ctx, &iampb.GetIamPolicyRequest{Resource: res, Options: &iampb.GetPolicyOptions{RequestedPolicyVersion: 2}})
	wantCode(t, err, codes.InvalidArgument, "version 2")
}

func TestVersion1WritesRefused(t *testing.T) {
	e := newEnv(t, gcpemu.Options{})
	res := e.emu.CreateProject("p1")
	cond := &iampb.Binding{Role: "roles/cloudsql.admin", Members: []string{"user:b@example.com"}, Condition: expiring("elevate:g1", base.Add(time.Hour))}

	// Conditions sent with version 1.
	p := e.get(t, res, 3)
	p.Bindings = []*iampb.Binding{cond}
	_, err := e.set(res, p)
	wantCode(t, err, codes.InvalidArgument, "version 3")

	// Store it properly, then write back a version 1 read.
	p.Version = 3
	e.mustSet(t, res, p)
	v1 := e.get(t, res, 1)
	_, err = e.set(res, v1)
	wantCode(t, err, codes.InvalidArgument, "_withcond_")

	// A version 1 policy without the withcond binding, with the etag:
	// refused, it would drop the conditions.
	v1 = e.get(t, res, 1)
	v1.Bindings = []*iampb.Binding{{Role: "roles/viewer", Members: []string{"user:a@example.com"}}}
	_, err = e.set(res, v1)
	wantCode(t, err, codes.InvalidArgument, "version 3")

	// Without an etag GCP lets it through and the condition is gone.
	v1.Etag = nil
	e.mustSet(t, res, v1)
	if hasCond := e.emu.Policy(res).Bindings[0].Condition != nil; hasCond || len(e.emu.Policy(res).Bindings) != 1 {
		t.Fatalf("etag-less version 1 write did not replace the policy: %v", e.emu.Policy(res))
	}
	if n := e.emu.Counters().V1WriteAttempts; n != 4 {
		t.Fatalf("V1WriteAttempts = %d, want 4", n)
	}
}

func TestConditionValidation(t *testing.T) {
	e := newEnv(t, gcpemu.Options{})
	res := e.emu.CreateProject("p1")
	for _, tc := range []struct {
		name string
		cond *expr.Expr
		want string
	}{
		{"no title", &expr.Expr{Expression: "request.time < timestamp('2027-01-01T00:00:00Z')"}, "title"},
		{"bad CEL", &expr.Expr{Title: "t", Expression: "request.time < < timestamp("}, "not valid CEL"},
		{"not boolean", &expr.Expr{Title: "t", Expression: "'a string'"}, "not a boolean"},
		{"empty", &expr.Expr{Title: "t"}, "empty expression"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.set(res, &iampb.Policy{Version: 3, Bindings: []*iampb.Binding{{Role: "roles/browser", Members: []string{"user:a@example.com"}, Condition: tc.cond}}})
			wantCode(t, err, codes.InvalidArgument, tc.want)
		})
	}
	// GCP refuses conditions on the basic roles and on allUsers.
	for _, role := range []string{"roles/owner", "roles/editor", "roles/viewer"} {
		_, err := e.set(res, &iampb.Policy{Version: 3, Bindings: []*iampb.Binding{{Role: role, Members: []string{"user:a@example.com"}, Condition: expiring("elevate:g1", base.Add(time.Hour))}}})
		wantCode(t, err, codes.InvalidArgument, "basic role "+role)
	}
	lax := newEnv(t, gcpemu.Options{AllowBasicRoleConditions: true})
	lax.mustSet(t, lax.emu.CreateProject("p1"), &iampb.Policy{Version: 3, Bindings: []*iampb.Binding{{Role: "roles/viewer", Members: []string{"user:a@example.com"}, Condition: expiring("elevate:g1", base.Add(time.Hour))}}})
	_, err := e.set(res, &iampb.Policy{Version: 3, Bindings: []*iampb.Binding{{Role: "roles/storage.objectViewer", Members: []string{"allUsers"}, Condition: expiring("elevate:g1", base.Add(time.Hour))}}})
	wantCode(t, err, codes.InvalidArgument, "allUsers")

	_, err = e.set(res, &iampb.Policy{Bindings: []*iampb.Binding{{Role: "roles/viewer", Members: []string{"alice@example.com"}}}})
	wantCode(t, err, codes.InvalidArgument, "unknown type")
	_, err = e.set(res, &iampb.Policy{Bindings: []*iampb.Binding{{Role: "viewer", Members: []string{"user:a@example.com"}}}})
	wantCode(t, err, codes.InvalidArgument, "not a valid role")
}

func TestDuplicatesMerged(t *testing.T) {
	e := newEnv(t, gcpemu.Options{})
	res := e.emu.CreateProject("p1")
	c := expiring("elevate:g1", base.Add(time.Hour))
	got := e.mustSet(t, res, &iampb.Policy{Version: 3, Bindings: []*iampb.Binding{
		{Role: "roles/browser", Members: []string{"user:a@example.com", "user:a@example.com", "user:b@example.com"}},
		{Role: "roles/browser", Members: []string{"user:b@example.com", "user:c@example.com"}},
		{Role: "roles/browser", Members: []string{"user:a@example.com"}, Condition: c},
		{Role: "roles/cloudsql.admin"},
	}})
	if len(got.Bindings) != 2 {
		t.Fatalf("want 2 bindings (merged unconditional, conditional; empty dropped), got %v", got.Bindings)
	}
	if m := got.Bindings[0].Members; len(m) != 3 {
		t.Fatalf("members not deduplicated: %v", m)
	}
}

func TestLimits(t *testing.T) {
	e := newEnv(t, gcpemu.Options{})
	res := e.emu.CreateProject("p1")

	members := func(n int, prefix string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("user:%s%d@example.com", prefix, i)
		}
		return out
	}
	// Each appearance counts: 750 in two roles is 1,500 (allowed), one more fails.
	ok := &iampb.Policy{Bindings: []*iampb.Binding{
		{Role: "roles/viewer", Members: members(750, "u")},
		{Role: "roles/browser", Members: members(750, "u")},
	}}
	e.mustSet(t, res, ok)
	ok.Bindings[1].Members = append(ok.Bindings[1].Members, "user:one-more@example.com")
	_, err := e.set(res, ok)
	wantCode(t, err, codes.InvalidArgument, "The number of members in the policy (1,501) is larger than the maximum allowed size 1,500.")

	// 20 conditions for one role and member are allowed, 21 are not.
	var bs []*iampb.Binding
	for i := range 21 {
		bs = append(bs, &iampb.Binding{Role: "roles/cloudsql.admin", Members: []string{"user:a@example.com"},
			Condition: expiring(fmt.Sprintf("elevate:g%d", i), base.Add(time.Duration(i+1)*time.Hour))})
	}
	e.mustSet(t, res, &iampb.Policy{Version: 3, Bindings: bs[:20]})
	_, err = e.set(res, &iampb.Policy{Version: 3, Bindings: bs})
	wantCode(t, err, codes.InvalidArgument, "21 different conditions")

	// 100 conditional bindings are allowed, 101 are not.
	bs = nil
	for i := range 101 {
		bs = append(bs, &iampb.Binding{Role: "roles/cloudsql.admin", Members: []string{fmt.Sprintf("user:m%d@example.com", i)},
			Condition: expiring(fmt.Sprintf("elevate:g%d", i), base.Add(-time.Hour))})
	}
	// Expired conditional bindings are inert but still count.
	e.mustSet(t, res, &iampb.Policy{Version: 3, Bindings: bs[:100]})
	_, err = e.set(res, &iampb.Policy{Version: 3, Bindings: bs})
	wantCode(t, err, codes.InvalidArgument, "conditional role bindings in the policy (101)")
}

func TestEffectiveAccess(t *testing.T) {
	e := newEnv(t, gcpemu.Options{})
	res := e.emu.CreateProject("p1")
	start, end := base.Add(time.Hour), base.Add(2*time.Hour)
	e.mustSet(t, res, &iampb.Policy{Version: 3, Bindings: []*iampb.Binding{
		{Role: "roles/logging.viewer", Members: []string{"user:standing@example.com"}},
		{Role: "roles/logging.viewer", Members: []string{"user:standing@example.com"}, Condition: expiring("elevate:g0", base.Add(-time.Hour))},
		{Role: "roles/cloudsql.admin", Members: []string{"user:a@example.com"}, Condition: expiring("elevate:g1", end)},
		{Role: "roles/compute.admin", Members: []string{"user:a@example.com"}, Condition: &expr.Expr{
			Title: "elevate:g2",
			Expression: fmt.Sprintf(`request.time >= timestamp("%s") && request.time < timestamp("%s")`,
				start.Format(time.RFC3339), end.Format(time.RFC3339)),
		}},
		{Role: "roles/browser", Members: []string{"user:a@example.com"}, Condition: &expr.Expr{
			Title: "weekday hours", Expression: `request.time.getHours("UTC") >= 9 && request.time.getHours("UTC") < 17`,
		}},
		{Role: "roles/iam.securityReviewer", Members: []string{"user:a@example.com"}, Condition: &expr.Expr{
			Title: "fails at run time", Expression: `request.nosuch == "x"`,
		}},
	}})
	for _, tc := range []struct {
		member, role string
		at           time.Time
		want         bool
	}{
		{"user:standing@example.com", "roles/logging.viewer", base.Add(1000 * time.Hour), true},
		{"user:a@example.com", "roles/logging.viewer", base, false},
		{"user:a@example.com", "roles/cloudsql.admin", base, true},
		{"user:a@example.com", "roles/cloudsql.admin", end.Add(-time.Second), true},
		{"user:a@example.com", "roles/cloudsql.admin", end, false},
		{"user:a@example.com", "roles/compute.admin", base, false},
		{"user:a@example.com", "roles/compute.admin", start, true},
		{"user:a@example.com", "roles/compute.admin", end, false},
		{"user:a@example.com", "roles/browser", base, true},                      // 09:00
		{"user:a@example.com", "roles/browser", base.Add(10 * time.Hour), false}, // 19:00
		{"user:a@example.com", "roles/iam.securityReviewer", base, false},
		{"user:b@example.com", "roles/cloudsql.admin", base, false},
	} {
		if got := e.emu.EffectiveAccess(res, tc.member, tc.role, tc.at); got != tc.want {
			t.Errorf("EffectiveAccess(%s, %s, %s) = %v, want %v", tc.member, tc.role, tc.at.Format(time.RFC3339), got, tc.want)
		}
	}
}

func TestUpdateMask(t *testing.T) {
	e := newEnv(t, gcpemu.Options{})
	res := e.emu.CreateProject("p1")
	e.mustSet(t, res, &iampb.Policy{Bindings: []*iampb.Binding{{Role: "roles/viewer", Members: []string{"user:a@example.com"}}}})
	audit := []*iampb.AuditConfig{{Service: "allServices", AuditLogConfigs: []*iampb.AuditLogConfig{{LogType: iampb.AuditLogConfig_DATA_READ}}}}

	// The default mask (bindings, etag) leaves audit configs alone.
	e.mustSet(t, res, &iampb.Policy{Bindings: e.emu.Policy(res).Bindings, AuditConfigs: audit})
	if len(e.emu.Policy(res).AuditConfigs) != 0 {
		t.Fatal("audit_configs written without being in the update mask")
	}
	// A mask of audit_configs only leaves the bindings alone.
	_, err := e.projects.SetIamPolicy(e.ctx, &iampb.SetIamPolicyRequest{
		Resource: res, Policy: &iampb.Policy{AuditConfigs: audit}, UpdateMask: fieldMask("audit_configs"),
	})
	if err != nil {
		t.Fatal(err)
	}
	got := e.emu.Policy(res)
	if len(got.AuditConfigs) != 1 || len(got.Bindings) != 1 {
		t.Fatalf("mask audit_configs: got %v", got)
	}
	_, err = e.projects.SetIamPolicy(e.ctx, &iampb.SetIamPolicyRequest{
		Resource: res, Policy: &iampb.Policy{}, UpdateMask: fieldMask("owners"),
	})
	wantCode(t, err, codes.InvalidArgument, "owners")
}

func TestFoldersOrganizationsAndUnknownResources(t *testing.T) {
	e := newEnv(t, gcpemu.Options{})
	folder := e.emu.CreateFolder("123")
	org := e.emu.CreateOrganization("456")
	if _, err := e.folders.SetIamPolicy(e.ctx, &iampb.SetIamPolicyRequest{Resource: folder, Policy: &iampb.Policy{
		Bindings: []*iampb.Binding{{Role: "roles/viewer", Members: []string{"group:g@example.com"}}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.orgs.GetIamPolicy(e.ctx, &iampb.GetIamPolicyRequest{Resource: org}); err != nil {
		t.Fatal(err)
	}
	if len(e.emu.Policy(folder).Bindings) != 1 {
		t.Fatal("folder policy not stored")
	}
	_, err := e.projects.GetIamPolicy(e.ctx, &iampb.GetIamPolicyRequest{Resource: "projects/nope"})
	wantCode(t, err, codes.PermissionDenied, "or it may not exist")
	_, err = e.projects.GetProject(e.ctx, &resourcemanagerpb.GetProjectRequest{Name: "projects/nope"})
	wantCode(t, err, codes.NotFound, "")
	_, err = e.projects.GetIamPolicy(e.ctx, &iampb.GetIamPolicyRequest{Resource: folder})
	wantCode(t, err, codes.InvalidArgument, "projects/ID")
	if p, err := e.projects.GetProject(e.ctx, &resourcemanagerpb.GetProjectRequest{Name: e.emu.CreateProject("p9")}); err != nil || p.ProjectId != "p9" {
		t.Fatalf("GetProject: %v, %v", p, err)
	}

	auto := newEnv(t, gcpemu.Options{AutoCreate: true})
	if _, err := auto.projects.GetIamPolicy(auto.ctx, &iampb.GetIamPolicyRequest{Resource: "projects/dev"}); err != nil {
		t.Fatalf("AutoCreate: %v", err)
	}
	if auto.emu.Policy("projects/dev") == nil {
		t.Fatal("AutoCreate did not create projects/dev")
	}
}

func TestModifyPolicyOutOfBand(t *testing.T) {
	e := newEnv(t, gcpemu.Options{})
	res := e.emu.CreateProject("p1")
	read := e.get(t, res, 3)
	err := e.emu.ModifyPolicy(res, "human@example.com", func(p *iampb.Policy) {
		p.Bindings = append(p.Bindings, &iampb.Binding{Role: "roles/owner", Members: []string{"user:human@example.com"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	read.Bindings = append(read.Bindings, &iampb.Binding{Role: "roles/viewer", Members: []string{"user:a@example.com"}})
	_, err = e.set(res, read)
	wantCode(t, err, codes.Aborted, "")
	if err := e.emu.ModifyPolicy(res, "human@example.com", func(p *iampb.Policy) {
		p.Bindings = append(p.Bindings, &iampb.Binding{Role: "roles/owner", Members: []string{"nobody"}})
	}); err == nil {
		t.Fatal("ModifyPolicy accepted an invalid member")
	}
}

func TestConcurrentReadModifyWrite(t *testing.T) {
	e := newEnv(t, gcpemu.Options{})
	res := e.emu.CreateProject("p1")
	const writers = 8
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for attempt := 0; attempt < 50; attempt++ {
				p, err := e.projects.GetIamPolicy(e.ctx, &iampb.GetIamPolicyRequest{Resource: res, Options: &iampb.GetPolicyOptions{RequestedPolicyVersion: 3}})
				if err != nil {
					errs <- err
					return
				}
				p.Bindings = append(p.Bindings, &iampb.Binding{Role: "roles/viewer", Members: []string{fmt.Sprintf("user:w%d@example.com", i)}})
				_, err = e.set(res, p)
				if status.Code(err) == codes.Aborted {
					continue
				}
				errs <- err
				return
			}
			errs <- fmt.Errorf("writer %d never succeeded", i)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := len(e.emu.Policy(res).Bindings[0].Members); got != writers {
		t.Fatalf("lost writes: %d members, want %d", got, writers)
	}
}

func fieldMask(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }
