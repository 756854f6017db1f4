package gcp_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"
	"google.golang.org/genproto/googleapis/type/expr"
	"google.golang.org/protobuf/proto"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/providers"
	"github.com/elevatehq/elevate/providers/gcp"
	"github.com/elevatehq/elevate/providers/gcp/gcpemu"
	"github.com/elevatehq/elevate/providers/providertest"
)

func TestConformance(t *testing.T) {
	providertest.Run(t, func(t *testing.T) providertest.Env {
		e := newEnv(t)
		return providertest.Env{
			Provider: e.prov, OutOfBand: outOfBand{e.emu}, Scope: prod,
			Targets:    []model.Target{target(prod, sqlAdm), target(prod, reviewer)},
			Principals: []model.Principal{alice, bob, ci},
			Now:        e.clock.Now,
		}
	})
}

func TestConformanceOnFoldersAndOrganizations(t *testing.T) {
	for _, scope := range []model.ScopeKey{
		{Cloud: model.CloudGCP, Scope: "folders/1234"},
		{Cloud: model.CloudGCP, Scope: "organizations/5678"},
	} {
		t.Run(strings.Split(scope.Scope, "/")[0], func(t *testing.T) {
			providertest.Run(t, func(t *testing.T) providertest.Env {
				e := newEnv(t)
				e.emu.CreateFolder("1234")
				e.emu.CreateOrganization("5678")
				return providertest.Env{
					Provider: e.prov, OutOfBand: outOfBand{e.emu}, Scope: scope,
					Targets:    []model.Target{target(scope, "roles/resourcemanager.folderViewer"), target(scope, reviewer)},
					Principals: []model.Principal{alice, bob, ci},
					Now:        e.clock.Now,
				}
			})
		})
	}
}

func TestWritesTheMarkerAndWindow(t *testing.T) {
	e := newEnv(t)
	b := grantBinding(prod, sqlAdm, alice, "g-123", t0.Add(time.Hour))
	b.NotBefore = t0.Add(10 * time.Minute)
	mustApply(t, e.prov, prod, create(b))
	bs := e.bindingsOf(prod)
	if len(bs) != 1 {
		t.Fatalf("stored %v", bs)
	}
	c := bs[0].Condition
	if c.Title != "elevate:g-123" || !strings.Contains(c.Description, "g-123") ||
		c.Expression != `request.time >= timestamp("2026-12-01T10:10:00Z") && request.time < timestamp("2026-12-01T11:00:00Z")` {
		t.Errorf("condition %v", c)
	}
	// Native: IAM evaluates the window itself.
	for _, at := range []struct {
		t    time.Time
		want bool
	}{{t0, false}, {t0.Add(10 * time.Minute), true}, {t0.Add(59 * time.Minute), true}, {t0.Add(time.Hour), false}} {
		if got := e.emu.EffectiveAccess(prod.Scope, "user:alice@example.com", sqlAdm, at.t); got != at.want {
			t.Errorf("effective access at %s = %v, want %v", at.t.Format(time.TimeOnly), got, at.want)
		}
	}
}

func TestV1ViewIsNeverWrittenBack(t *testing.T) {
	e := newEnv(t, func(c *gcp.Config) { c.ReuseRead = -1 })
	mustApply(t, e.prov, prod, create(grantBinding(prod, sqlAdm, alice, "g1", t0.Add(time.Hour))))
	if err := (outOfBand{e.emu}).AddUnmanaged(model.Binding{Target: target(prod, sqlAdm), Principal: bob, Expires: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	before := e.emu.Policy(prod.Scope)
	_, writesBefore := e.wire.counts()

	// Something between elevate and IAM turns every read into a version 1
	// read: the policy comes back with roles/X_withcond_HASH and no
	// conditions.
	e.wire.mu.Lock()
	e.wire.downgrade = true
	e.wire.mu.Unlock()
	ctx := context.Background()
	if _, err := e.prov.Observe(ctx, prod, nil); err == nil || !strings.Contains(err.Error(), "version 1 view") {
		t.Errorf("Observe of a version 1 view: %v", err)
	}
	_, err := e.prov.Apply(ctx, prod, []model.Change{create(grantBinding(prod, reviewer, bob, "g2", t0.Add(time.Hour)))})
	if err == nil || !strings.Contains(err.Error(), "refusing to write it back") || providers.IsTransient(err) {
		t.Errorf("Apply on a version 1 view: %v (want a permanent refusal)", err)
	}
	if _, writes := e.wire.counts(); writes != writesBefore {
		t.Errorf("%d SetIamPolicy calls after a version 1 read", writes-writesBefore)
	}
	if after := e.emu.Policy(prod.Scope); !proto.Equal(before, after) {
		t.Errorf("the policy changed:\nbefore %v\nafter  %v", before, after)
	}
}

func TestAbortedRetriesTheWholeReadModifyWrite(t *testing.T) {
	t.Run("Storm", func(t *testing.T) {
		e := newEnv(t)
		e.emu.SetFaults(gcpemu.Faults{AbortedStorm: 3})
		b := grantBinding(prod, sqlAdm, alice, "g1", t0.Add(time.Hour))
		mustApply(t, e.prov, prod, create(b))
		st := e.prov.Stats()
		if st.Conflicts != 3 || st.Writes != 4 || st.Reads != 4 {
			t.Errorf("stats %+v; want 3 conflicts, 4 writes, and a fresh read before each write", st)
		}
		if c := e.emu.Counters(); c.Aborted != 3 {
			t.Errorf("emulator aborted %d writes", c.Aborted)
		}
		if len(e.bindingsOf(prod)) != 1 {
			t.Errorf("policy %v", e.bindingsOf(prod))
		}
	})
	t.Run("ConcurrentEditWins", func(t *testing.T) {
		e := newEnv(t)
		var edits atomic.Int32
		e.wire.beforeSet = func(*iampb.SetIamPolicyRequest) {
			if edits.Add(1) == 1 { // someone edits between elevate's read and write
				if err := (outOfBand{e.emu}).AddUnmanaged(model.Binding{Target: target(prod, viewer), Principal: bob}); err != nil {
					t.Error(err)
				}
			}
		}
		mustApply(t, e.prov, prod, create(grantBinding(prod, sqlAdm, alice, "g1", t0.Add(time.Hour))))
		if st := e.prov.Stats(); st.Conflicts != 1 || st.Writes != 2 {
			t.Errorf("stats %+v; want 1 conflict and 2 writes", st)
		}
		var gotBob, gotAlice bool
		for _, b := range e.bindingsOf(prod) {
			gotBob = gotBob || (b.Role == viewer && b.Condition == nil && b.Members[0] == "user:bob@example.com")
			gotAlice = gotAlice || b.GetCondition().GetTitle() == "elevate:g1"
		}
		if !gotBob || !gotAlice {
			t.Errorf("after the retried write: %v (the concurrent edit must survive)", e.bindingsOf(prod))
		}
	})
	t.Run("GivesUpTransient", func(t *testing.T) {
		e := newEnv(t, func(c *gcp.Config) { c.Conflicts.MaxAttempts = 3 })
		e.emu.SetFaults(gcpemu.Faults{AbortedStorm: 10})
		_, err := e.prov.Apply(context.Background(), prod, []model.Change{create(grantBinding(prod, sqlAdm, alice, "g1", t0.Add(time.Hour)))})
		if !providers.IsTransient(err) || !strings.Contains(err.Error(), "giving up after 3 read-modify-writes") {
			t.Errorf("err %v; want a transient error after 3 attempts", err)
		}
		if st := e.prov.Stats(); st.Writes != 3 {
			t.Errorf("%d writes, want 3", st.Writes)
		}
	})
}

func TestErrorClassification(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.emu.SetFaults(gcpemu.Faults{ResourceExhaustedRate: 1, RetryDelay: 7 * time.Second})
	_, err := e.prov.Observe(ctx, prod, nil)
	if !providers.IsTransient(err) || providers.RetryAfterOf(err) != 7*time.Second {
		t.Errorf("RESOURCE_EXHAUSTED: %v (retry after %s); want transient honouring RetryInfo 7s", err, providers.RetryAfterOf(err))
	}
	e.emu.SetFaults(gcpemu.Faults{ErrorRate: 1})
	if _, err := e.prov.Observe(ctx, prod, nil); !providers.IsTransient(err) {
		t.Errorf("UNAVAILABLE: %v; want transient", err)
	}
	if st := e.prov.Stats(); st.Reads != 2 {
		t.Errorf("%d reads: the client library must not retry behind the provider's back", st.Reads)
	}
	e.emu.SetFaults(gcpemu.Faults{PermissionDenied: map[string]bool{prod.Scope: true}})
	_, err = e.prov.Apply(ctx, prod, []model.Change{create(grantBinding(prod, sqlAdm, alice, "g1", t0.Add(time.Hour)))})
	if err == nil || providers.IsTransient(err) || !strings.Contains(err.Error(), "getIamPolicy") {
		t.Errorf("PERMISSION_DENIED: %v; want permanent", err)
	}
	e.emu.SetFaults(gcpemu.Faults{})
	if _, err := e.prov.Observe(ctx, project("no-such-project"), nil); err == nil || providers.IsTransient(err) {
		t.Errorf("unknown project: %v; want permanent", err)
	}
	for _, bad := range []string{"acme-prod", "projects/", "projects/a/b", "buckets/x"} {
		_, err := e.prov.Observe(ctx, model.ScopeKey{Cloud: model.CloudGCP, Scope: bad}, nil)
		if !errors.Is(err, providers.ErrInvalidChange) || !strings.Contains(err.Error(), "projects/PROJECT_ID") {
			t.Errorf("scope %q: %v", bad, err)
		}
	}
	if _, err := e.prov.Observe(ctx, model.ScopeKey{Cloud: model.CloudAWS, Scope: "projects/x"}, nil); !errors.Is(err, providers.ErrInvalidChange) {
		t.Errorf("scope of another cloud: %v", err)
	}
}

// pamBindings are bindings elevate does not own: a Google PAM grant, a
// standing binding with several members, a resource-conditioned binding.
func pamBindings() []*iampb.Binding {
	return []*iampb.Binding{
		{Role: viewer, Members: []string{"user:carol@example.com", "group:auditors@example.com", "serviceAccount:ci@acme-prod.iam.gserviceaccount.com"}},
		{Role: sqlAdm, Members: []string{"user:dave@example.com"}, Condition: &expr.Expr{
			Title:       "Grant for entitlement db-break-fix",
			Description: "Privileged Access Manager grant 0f3c2a; justification: INC-123",
			Expression:  `request.time < timestamp("2026-12-01T12:00:00.000Z")`,
		}},
		{Role: sqlAdm, Members: []string{"user:erin@example.com"}, Condition: &expr.Expr{
			Title:      "expired PAM grant",
			Expression: `request.time < timestamp("2026-12-01T09:00:00Z")`,
		}},
		{Role: "roles/storage.admin", Members: []string{"user:alice@example.com"}, Condition: &expr.Expr{
			Title: "buckets only", Expression: `resource.name.startsWith("projects/_/buckets/acme-")`,
		}},
	}
}

func TestPreservesOthersByteForByte(t *testing.T) {
	e := newEnv(t)
	if err := e.emu.ModifyPolicy(prod.Scope, "pam@system.gserviceaccount.com", func(p *iampb.Policy) {
		p.Bindings = pamBindings()
		p.AuditConfigs = []*iampb.AuditConfig{{Service: "allServices", AuditLogConfigs: []*iampb.AuditLogConfig{{LogType: iampb.AuditLogConfig_DATA_READ}}}}
	}); err != nil {
		t.Fatal(err)
	}
	before := e.emu.Policy(prod.Scope)
	others := e.notOurs(prod)
	check := func(when string) {
		t.Helper()
		got := e.notOurs(prod)
		if len(got) != len(others) {
			t.Fatalf("%s: %d bindings not elevate's, want %d:\n%v", when, len(got), len(others), got)
		}
		for i := range others {
			if !proto.Equal(got[i], others[i]) {
				t.Errorf("%s: binding %d changed:\n got %v\nwant %v", when, i, got[i], others[i])
			}
		}
		if !proto.Equal(&iampb.Policy{AuditConfigs: e.emu.Policy(prod.Scope).AuditConfigs}, &iampb.Policy{AuditConfigs: before.AuditConfigs}) {
			t.Errorf("%s: audit configs changed", when)
		}
	}
	a := grantBinding(prod, sqlAdm, alice, "g1", t0.Add(time.Hour))
	b := grantBinding(prod, reviewer, bob, "g2", t0.Add(time.Hour))
	c := grantBinding(prod, sqlAdm, bob, "g3", t0.Add(2*time.Minute))
	mustApply(t, e.prov, prod, create(a), create(b), create(c))
	check("after creates")
	renewed := a
	renewed.Expires = t0.Add(3 * time.Hour)
	mustApply(t, e.prov, prod, model.Change{Reason: model.ReasonWindowChanged, Old: &a, New: &renewed})
	check("after a replace")
	mustApply(t, e.prov, prod, remove(b, model.ReasonRevoked))
	check("after a delete")
	e.clock.Advance(5 * time.Minute) // g3 expires: pruned in passing
	mustApply(t, e.prov, prod, create(grantBinding(prod, reviewer, alice, "g4", t0.Add(time.Hour))))
	check("after a prune")
	var titles []string
	for _, x := range e.bindingsOf(prod) {
		if owner, ok := cutTitle(x); ok {
			titles = append(titles, owner)
		}
	}
	if strings.Join(titles, ",") != "g1,g4" {
		t.Errorf("elevate's bindings %v, want g1,g4", titles)
	}
}

func TestPrunesOnlyElevatesExpiredBindings(t *testing.T) {
	e := newEnv(t)
	oob := outOfBand{e.emu}
	short := grantBinding(prod, sqlAdm, alice, "g-short", t0.Add(time.Minute))
	long := grantBinding(prod, sqlAdm, bob, "g-long", t0.Add(time.Hour))
	mustApply(t, e.prov, prod, create(short), create(long))
	if err := oob.AddUnmanaged(model.Binding{Target: target(prod, sqlAdm), Principal: ci, Expires: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Minute)
	// Native expiry: neither expired binding grants anything any more.
	if e.emu.EffectiveAccess(prod.Scope, "user:alice@example.com", sqlAdm, e.clock.Now()) ||
		e.emu.EffectiveAccess(prod.Scope, "serviceAccount:ci@acme-prod.iam.gserviceaccount.com", sqlAdm, e.clock.Now()) {
		t.Error("an expired conditional binding still grants access")
	}
	if !e.emu.EffectiveAccess(prod.Scope, "user:bob@example.com", sqlAdm, e.clock.Now()) {
		t.Error("the live grant does not grant access")
	}
	mustApply(t, e.prov, prod, create(grantBinding(prod, reviewer, bob, "g-other", t0.Add(time.Hour))))
	var titles []string
	for _, b := range e.bindingsOf(prod) {
		titles = append(titles, b.GetCondition().GetTitle())
	}
	if strings.Join(titles, ",") != "elevate:g-long,temporary access by hand,elevate:g-other" {
		t.Errorf("titles after the write: %v; want the expired elevate binding pruned and nothing else", titles)
	}
	if st := e.prov.Stats(); st.Pruned != 1 {
		t.Errorf("pruned %d", st.Pruned)
	}
}

func TestLimitsFailEarly(t *testing.T) {
	ctx := context.Background()
	t.Run("ConditionalBindings", func(t *testing.T) {
		e := newEnv(t)
		if err := e.emu.ModifyPolicy(prod.Scope, "", func(p *iampb.Policy) { p.Bindings = pamBindings() }); err != nil {
			t.Fatal(err)
		}
		var changes []model.Change
		for i := range 97 { // 3 conditional bindings of others + 97 = 100
			changes = append(changes, create(grantBinding(prod, sqlAdm, model.MustPrincipal(userN(i)), ownerN(i), t0.Add(time.Hour))))
		}
		mustApply(t, e.prov, prod, changes...)
		_, writes := e.wire.counts()
		res, err := e.prov.Apply(ctx, prod, []model.Change{create(grantBinding(prod, sqlAdm, alice, "one-too-many", t0.Add(time.Hour)))})
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(res[0].Err, gcp.ErrPolicyLimit) || providers.IsTransient(res[0].Err) ||
			!strings.Contains(res[0].Err.Error(), "101 conditional role bindings; IAM allows 100") {
			t.Errorf("101st conditional binding: %v", res[0].Err)
		}
		if _, w := e.wire.counts(); w != writes {
			t.Errorf("%d writes were sent for a change refused before writing", w-writes)
		}
	})
	t.Run("SameRoleAndMember", func(t *testing.T) {
		e := newEnv(t)
		var changes []model.Change
		for i := range 21 {
			changes = append(changes, create(grantBinding(prod, sqlAdm, alice, ownerN(i), t0.Add(time.Hour))))
		}
		res, err := e.prov.Apply(ctx, prod, changes)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if (i < 20) != (r.Err == nil) {
				t.Errorf("change %d: %v", i, r.Err)
			}
		}
		if !strings.Contains(res[20].Err.Error(), "21 conditional bindings of roles/cloudsql.admin for user:alice@example.com; IAM allows 20") {
			t.Errorf("message: %v", res[20].Err)
		}
		if n := len(e.bindingsOf(prod)); n != 20 {
			t.Errorf("%d bindings written, want the 20 that fit", n)
		}
	})
	t.Run("Principals", func(t *testing.T) {
		e := newEnv(t)
		if err := e.emu.ModifyPolicy(prod.Scope, "", func(p *iampb.Policy) {
			b := &iampb.Binding{Role: viewer}
			for i := range 1500 {
				b.Members = append(b.Members, "user:"+strings.TrimPrefix(userN(i), "user:"))
			}
			p.Bindings = []*iampb.Binding{b}
		}); err != nil {
			t.Fatal(err)
		}
		res, err := e.prov.Apply(ctx, prod, []model.Change{create(grantBinding(prod, sqlAdm, alice, "g1", t0.Add(time.Hour)))})
		if err != nil || !errors.Is(res[0].Err, gcp.ErrPolicyLimit) || !strings.Contains(res[0].Err.Error(), "1501 principals") {
			t.Errorf("1,501st principal: %v %v", err, res)
		}
		if _, w := e.wire.counts(); w != 0 {
			t.Errorf("%d writes sent", w)
		}
	})
}

func userN(i int) string  { return "user:u" + itoa(i) + "@example.com" }
func ownerN(i int) string { return "grant-" + itoa(i) }

func itoa(i int) string {
	const digits = "0123456789"
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{digits[i%10]}, b...)
	}
	return string(b)
}

func TestFactory(t *testing.T) {
	e := newEnv(t)
	p, err := gcp.Factory(providers.Config{Cloud: model.CloudGCP, Endpoint: e.addr})
	if err != nil {
		t.Fatal(err)
	}
	defer p.(*gcp.Provider).Close()
	if p.Cloud() != model.CloudGCP {
		t.Errorf("cloud %s", p.Cloud())
	}
	// The factory's provider runs on the wall clock.
	b := grantBinding(prod, sqlAdm, alice, "g1", time.Now().Add(time.Hour).Truncate(time.Second))
	mustApply(t, p.(*gcp.Provider), prod, create(b))
	bs, err := p.Observe(context.Background(), prod, []model.Target{target(prod, sqlAdm)})
	if err != nil || len(bs) != 1 || bs[0].Owner != "g1" {
		t.Errorf("observed through the factory's provider: %v %v", bs, err)
	}
	if _, err := gcp.AuditFactory(providers.Config{Cloud: model.CloudGCP, Endpoint: e.addr}); err == nil || !strings.Contains(err.Error(), `setting "parents" is required`) {
		t.Errorf("audit factory without parents: %v", err)
	}
	src, err := gcp.AuditFactory(providers.Config{Cloud: model.CloudGCP, Endpoint: e.addr, Settings: map[string]string{"parents": "projects/acme-prod"}})
	if err != nil {
		t.Fatal(err)
	}
	src.(*gcp.AuditSource).Close()
}

func TestRefusesWhatIAMCannotCondition(t *testing.T) {
	e := newEnv(t)
	res, err := e.prov.Apply(context.Background(), prod, []model.Change{
		create(grantBinding(prod, "roles/owner", alice, "g1", t0.Add(time.Hour))),
		create(grantBinding(prod, sqlAdm, model.MustPrincipal("gcp:allUsers"), "g2", t0.Add(time.Hour))),
		create(grantBinding(prod, sqlAdm, bob, "g3", t0.Add(time.Hour))),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res[0].Err, providers.ErrInvalidChange) || !strings.Contains(res[0].Err.Error(), "basic role roles/owner") {
		t.Errorf("basic role: %v", res[0].Err)
	}
	if !errors.Is(res[1].Err, providers.ErrInvalidChange) || !strings.Contains(res[1].Err.Error(), "allUsers") {
		t.Errorf("allUsers: %v", res[1].Err)
	}
	if res[2].Err != nil || len(e.bindingsOf(prod)) != 1 {
		t.Errorf("the valid change next to them: %v, policy %v", res[2].Err, e.bindingsOf(prod))
	}
}
