package gcp

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"
	"google.golang.org/genproto/googleapis/type/expr"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/providers"
)

var (
	t0    = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	scope = model.ScopeKey{Cloud: model.CloudGCP, Scope: "projects/acme-prod"}
	admin = model.Target{Cloud: model.CloudGCP, Scope: scope.Scope, Role: "roles/cloudsql.admin"}
	alice = model.MustPrincipal("user:alice@example.com")
)

func TestExpressionRoundTrip(t *testing.T) {
	for _, w := range []struct{ nb, exp time.Time }{
		{time.Time{}, t0},
		{t0, t0.Add(time.Hour)},
		{t0.Add(500 * time.Millisecond), t0.Add(time.Hour + 123*time.Microsecond)},
	} {
		e := Expression(w.nb, w.exp)
		nb, exp, ok := parseCanonical(e)
		if !ok || !nb.Equal(w.nb) || !exp.Equal(w.exp) {
			t.Errorf("parseCanonical(%q) = %v %v %v, want %v %v", e, nb, exp, ok, w.nb, w.exp)
		}
	}
	if got := Expression(t0, t0.Add(time.Hour)); got != `request.time >= timestamp("2026-12-01T10:00:00Z") && request.time < timestamp("2026-12-01T11:00:00Z")` {
		t.Errorf("canonical form changed: %s", got)
	}
}

func TestParseCanonicalRejectsEdits(t *testing.T) {
	for _, e := range []string{
		`true`,
		``,
		`request.time < timestamp('2026-12-01T10:00:00Z')`,                                                      // other quotes
		`request.time < timestamp("2026-12-01T10:00:00+00:00")`,                                                 // not the canonical literal
		`request.time < timestamp("2026-12-01T10:00:00.000Z")`,                                                  // not the canonical literal
		`request.time <= timestamp("2026-12-01T10:00:00Z")`,                                                     // other operator
		`request.time < timestamp("2026-12-01T10:00:00Z") || true`,                                              // widened
		`request.time >= timestamp("2026-12-01T11:00:00Z") && request.time < timestamp("2026-12-01T10:00:00Z")`, // empty window
		`request.time < timestamp("2026-13-01T10:00:00Z")`,
	} {
		if nb, exp, ok := parseCanonical(e); ok {
			t.Errorf("parseCanonical(%q) accepted: %v %v", e, nb, exp)
		}
	}
}

func TestParseWindowOfOthers(t *testing.T) {
	tests := []struct {
		expr    string
		nb, exp time.Time
		ok      bool
	}{
		{`request.time < timestamp("2026-12-01T10:00:00Z")`, time.Time{}, t0, true},
		{`request.time < timestamp('2026-12-01T10:00:00Z')`, time.Time{}, t0, true},
		{`(request.time >= timestamp("2026-12-01T09:00:00Z")) && (request.time < timestamp("2026-12-01T10:00:00Z"))`, t0.Add(-time.Hour), t0, true},
		{`resource.name.startsWith("projects/x") && request.time < timestamp("2026-12-01T10:00:00Z")`, time.Time{}, t0, true},
		{`request.time < timestamp("2026-12-01T11:00:00Z") && request.time < timestamp("2026-12-01T10:00:00Z")`, time.Time{}, t0, true},
		{`resource.name.startsWith("projects/x")`, time.Time{}, time.Time{}, false},
		{`request.time < timestamp("2026-12-01T10:00:00Z") || resource.type == "x"`, time.Time{}, time.Time{}, false},
		{`!(request.time > timestamp("2026-12-01T10:00:00Z"))`, time.Time{}, time.Time{}, false},
		{`request.time > timestamp("2026-12-01T10:00:00Z")`, time.Time{}, time.Time{}, false},
	}
	for _, tc := range tests {
		nb, exp, ok := parseWindow(tc.expr)
		if ok != tc.ok || !nb.Equal(tc.nb) || !exp.Equal(tc.exp) {
			t.Errorf("parseWindow(%q) = %v %v %v, want %v %v %v", tc.expr, nb, exp, ok, tc.nb, tc.exp, tc.ok)
		}
	}
}

func TestMemberMapping(t *testing.T) {
	for _, s := range []string{
		"user:alice@example.com", "group:sre@example.com", "serviceAccount:ci@p.iam.gserviceaccount.com",
		"gcp:domain:example.com", "gcp:allUsers", "gcp:principalSet://iam.googleapis.com/locations/global/workforcePools/p/*",
	} {
		p := model.MustPrincipal(s)
		m, err := Member(p)
		if err != nil {
			t.Errorf("Member(%s): %v", s, err)
			continue
		}
		if back := principalOf(m); !back.Equal(p) {
			t.Errorf("%s -> %s -> %s", s, m, back)
		}
	}
	if m, _ := Member(model.MustPrincipal("gcp:user:bob@example.com")); m != "user:bob@example.com" {
		t.Errorf("gcp:user: maps to %q", m)
	}
	for _, s := range []string{"group:sre", "aws:arn:aws:iam::123456789012:role/admin", "azure:user:a@contoso.com"} {
		if _, err := Member(model.MustPrincipal(s)); err == nil {
			t.Errorf("Member(%s) accepted", s)
		}
	}
	// A member the model cannot parse still maps back to itself.
	odd := "deleted:user:gone@example.com?uid=123"
	if m, err := Member(principalOf(odd)); err != nil || m != odd {
		t.Errorf("odd member round trip: %q %v", m, err)
	}
	// The description keeps the principal as the grant named it.
	c := condition(model.Binding{Owner: "g1", Principal: model.MustPrincipal("gcp:user:bob@example.com"), Expires: t0})
	if got := principalFromDescription(c, "user:bob@example.com"); got.String() != "gcp:user:bob@example.com" {
		t.Errorf("principal from description: %s", got)
	}
	if got := principalFromDescription(c, "user:mallory@example.com"); got.String() != "user:mallory@example.com" {
		t.Errorf("a changed member must win over the description: %s", got)
	}
}

// withUnknown returns b with an unknown field, as a newer API version would
// send: it must survive elevate's write byte for byte.
func withUnknown(b *iampb.Binding) *iampb.Binding {
	var raw []byte
	raw = protowire.AppendTag(raw, 99, protowire.BytesType)
	raw = protowire.AppendString(raw, "future field")
	b.ProtoReflect().SetUnknown(raw)
	return b
}

func others() []*iampb.Binding {
	return []*iampb.Binding{
		withUnknown(&iampb.Binding{Role: "roles/viewer", Members: []string{"user:bob@example.com", "user:alice@example.com"}}),
		{Role: "roles/cloudsql.admin", Members: []string{"user:carol@example.com"}, Condition: &expr.Expr{
			Title: "PAM grant 7f3a", Description: "Privileged Access Manager", Location: "pam.googleapis.com",
			Expression: `request.time < timestamp("2026-12-01T09:00:00Z")`, // expired: not ours to prune
		}},
		{Role: "roles/cloudsql.admin", Members: []string{"user:alice@example.com"}, Condition: &expr.Expr{
			Title: "only prod", Expression: `resource.name.startsWith("projects/acme-prod")`,
		}},
	}
}

func managedBinding(owner string, p model.Principal, exp time.Time) model.Binding {
	return model.Binding{Target: admin, Principal: p, Owner: owner, Expires: exp}
}

func TestEditorPreservesOthers(t *testing.T) {
	mine := condition(managedBinding("g-old", alice, t0.Add(-time.Minute))) // expired: pruned
	live := condition(managedBinding("g-live", alice, t0.Add(time.Hour)))
	read := &iampb.Policy{
		Version: 3, Etag: []byte("e1"),
		AuditConfigs: []*iampb.AuditConfig{{Service: "allServices"}},
		Bindings: append(others(),
			&iampb.Binding{Role: admin.Role, Members: []string{"user:alice@example.com"}, Condition: mine},
			&iampb.Binding{Role: admin.Role, Members: []string{"user:alice@example.com"}, Condition: live},
		),
	}
	orig := proto.CloneOf(read)
	ed := newEditor(scope, read, t0, DefaultLimits)
	if n := ed.prune(); n != 1 {
		t.Fatalf("pruned %d, want the one expired elevate binding", n)
	}
	bob := model.MustPrincipal("user:bob@example.com")
	changes := []model.Change{
		{Reason: model.ReasonRevoked, Old: ptr(managedBinding("g-live", alice, t0.Add(time.Hour)))},
		{Reason: model.ReasonGranted, New: ptr(managedBinding("g-new", bob, t0.Add(2*time.Hour)))},
	}
	for _, c := range changes {
		if _, err := ed.apply(c); err != nil {
			t.Fatalf("%s: %v", c.Reason, err)
		}
	}
	out := ed.policy(read)
	if out.Version != PolicyVersion || string(out.Etag) != "e1" || !proto.Equal(out.AuditConfigs[0], orig.AuditConfigs[0]) {
		t.Errorf("policy metadata: version %d etag %q", out.Version, out.Etag)
	}
	if !proto.Equal(read, orig) {
		t.Error("the read policy was modified in place")
	}
	want := others()
	if len(out.Bindings) != len(want)+1 {
		t.Fatalf("%d bindings after the edit, want %d", len(out.Bindings), len(want)+1)
	}
	for i, w := range want {
		if !proto.Equal(out.Bindings[i], w) {
			t.Errorf("binding %d changed:\n got %v\nwant %v", i, out.Bindings[i], w)
		}
		if out.Bindings[i] != read.Bindings[i] {
			t.Errorf("binding %d was rebuilt: elevate must send the object it read", i)
		}
		a, _ := proto.MarshalOptions{Deterministic: true}.Marshal(out.Bindings[i])
		b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(w)
		if string(a) != string(b) {
			t.Errorf("binding %d differs on the wire", i)
		}
	}
	if len(out.Bindings[0].ProtoReflect().GetUnknown()) == 0 {
		t.Error("the unknown field was dropped")
	}
	added := out.Bindings[len(want)]
	if added.Role != admin.Role || len(added.Members) != 1 || added.Members[0] != "user:bob@example.com" || added.Condition.Title != "elevate:g-new" {
		t.Errorf("added binding %v", added)
	}
}

func ptr[T any](v T) *T { return &v }

func TestEditorStandingRemovalTakesOnlyThatMember(t *testing.T) {
	read := &iampb.Policy{Etag: []byte("e"), Bindings: others()}
	ed := newEditor(scope, read, t0, DefaultLimits)
	viewer := model.Target{Cloud: model.CloudGCP, Scope: scope.Scope, Role: "roles/viewer"}
	if _, err := ed.apply(model.Change{Reason: model.ReasonStandingFixed, Old: &model.Binding{Target: viewer, Principal: alice}}); err != nil {
		t.Fatal(err)
	}
	out := ed.policy(read)
	got := out.Bindings[0]
	if len(got.Members) != 1 || got.Members[0] != "user:bob@example.com" || len(got.ProtoReflect().GetUnknown()) == 0 {
		t.Errorf("standing removal left %v (unknown fields %d bytes)", got, len(got.ProtoReflect().GetUnknown()))
	}
	for i := 1; i < 3; i++ {
		if out.Bindings[i] != read.Bindings[i] {
			t.Errorf("binding %d was touched", i)
		}
	}
	// alice holds cloudsql.admin only under someone else's condition: not
	// standing, not ours.
	_, err := ed.apply(model.Change{Reason: model.ReasonStandingFixed, Old: &model.Binding{Target: admin, Principal: alice}})
	if !errors.Is(err, providers.ErrNotOwned) {
		t.Errorf("standing removal of a conditional member: %v, want ErrNotOwned", err)
	}
}

func TestLimitsFailTheChangeThatOverflows(t *testing.T) {
	read := &iampb.Policy{Etag: []byte("e"), Bindings: others()} // 2 conditional bindings
	lim := Limits{Conditional: 4, SameRoleMember: 20, Principals: 1500, Groups: 250}
	ed := newEditor(scope, read, t0, lim)
	var errs []error
	for i := range 4 {
		p := model.MustPrincipal("user:u" + string(rune('a'+i)) + "@example.com")
		_, err := ed.apply(model.Change{Reason: model.ReasonGranted, New: ptr(managedBinding("g"+string(rune('a'+i)), p, t0.Add(time.Hour)))})
		errs = append(errs, err)
	}
	if errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], ErrPolicyLimit) || !errors.Is(errs[3], ErrPolicyLimit) {
		t.Fatalf("errors %v; want two creates to fit and the rest to fail with ErrPolicyLimit", errs)
	}
	if !strings.Contains(errs[2].Error(), "5 conditional role bindings; IAM allows 4") {
		t.Errorf("message: %v", errs[2])
	}
	if n := len(ed.policy(read).Bindings); n != 5 {
		t.Errorf("%d bindings, want 5: a refused change must leave nothing behind", n)
	}
	// A delete still goes through on a full policy.
	if _, err := ed.apply(model.Change{Reason: model.ReasonExpired, Old: ptr(managedBinding("ga", model.MustPrincipal("user:ua@example.com"), t0.Add(time.Hour)))}); err != nil {
		t.Errorf("delete on a full policy: %v", err)
	}

	// Twenty conditions for one role and member, then a twenty-first.
	ed = newEditor(scope, &iampb.Policy{Etag: []byte("e")}, t0, DefaultLimits)
	for i := range 21 {
		_, err := ed.apply(model.Change{Reason: model.ReasonGranted, New: ptr(managedBinding("g"+strings.Repeat("x", i+1), alice, t0.Add(time.Hour)))})
		if (i < 20) != (err == nil) {
			t.Fatalf("create %d: %v", i+1, err)
		}
		if err != nil && !strings.Contains(err.Error(), "21 conditional bindings of roles/cloudsql.admin for user:alice@example.com; IAM allows 20") {
			t.Errorf("message: %v", err)
		}
	}

	// 1,500 principals.
	big := &iampb.Binding{Role: "roles/viewer"}
	for i := range 1500 {
		big.Members = append(big.Members, fmt.Sprintf("user:u%04d@example.com", i))
	}
	ed = newEditor(scope, &iampb.Policy{Etag: []byte("e"), Bindings: []*iampb.Binding{big}}, t0, DefaultLimits)
	if _, err := ed.apply(model.Change{Reason: model.ReasonGranted, New: ptr(managedBinding("g1", alice, t0.Add(time.Hour)))}); !errors.Is(err, ErrPolicyLimit) || !strings.Contains(err.Error(), "1501 principals") {
		t.Errorf("1,501st principal: %v", err)
	}
}

func TestCheckReadableRefusesV1Views(t *testing.T) {
	p := &iampb.Policy{Version: 1, Bindings: []*iampb.Binding{{Role: "roles/viewer_withcond_2656b3a6c29f8ad7", Members: []string{"user:a@example.com"}}}}
	if err := checkReadable(p); err == nil || !strings.Contains(err.Error(), "version 1 view") {
		t.Errorf("checkReadable = %v", err)
	}
	if err := checkReadable(&iampb.Policy{Version: 4}); err == nil {
		t.Error("an unknown policy version was accepted")
	}
}

func TestObserveReportsTamperedAsZeroWindow(t *testing.T) {
	c := condition(managedBinding("g1", alice, t0.Add(time.Hour)))
	c.Expression = "true"
	p := &iampb.Policy{Bindings: append(others(), &iampb.Binding{Role: admin.Role, Members: []string{"user:alice@example.com"}, Condition: c})}
	bs := observe(scope, p, []model.Target{admin})
	var managed, pam, standing int
	for _, b := range bs {
		switch {
		case b.Owner == "g1":
			managed++
			if !b.Expires.IsZero() || b.Native {
				t.Errorf("tampered binding observed with window %v native %v", b.Expires, b.Native)
			}
		case b.Raw == "PAM grant 7f3a":
			pam++
			if !b.Expires.Equal(t0.Add(-time.Hour)) {
				t.Errorf("PAM binding expiry %v", b.Expires)
			}
		case b.Expires.IsZero():
			standing++
		}
	}
	// roles/viewer is not asked for; the resource-name condition has no
	// readable window.
	if managed != 1 || pam != 1 || standing != 0 || len(bs) != 2 {
		t.Errorf("observed %v", bs)
	}
	if all := observe(scope, p, nil); len(all) != 4 {
		t.Errorf("nil targets observed %d bindings, want 4 (2 standing viewers, PAM, managed)", len(all))
	}
}
