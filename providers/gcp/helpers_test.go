package gcp_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"
	"google.golang.org/api/option"
	"google.golang.org/genproto/googleapis/type/expr"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/providers/gcp"
	"github.com/elevatehq/elevate/providers/gcp/gcpemu"
	"github.com/elevatehq/elevate/reconcile/reconciletest"
)

var (
	t0     = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	alice  = model.MustPrincipal("user:alice@example.com")
	bob    = model.MustPrincipal("user:bob@example.com")
	ci     = model.MustPrincipal("serviceAccount:ci@acme-prod.iam.gserviceaccount.com")
	sqlAdm = "roles/cloudsql.admin"
	// reviewer is a second role that takes conditions; viewer, a basic
	// role, does not and appears only in standing bindings.
	reviewer = "roles/iam.securityReviewer"
	viewer   = "roles/viewer"
)

// fakeClock is a reconcile.Clock the test moves by hand.
type fakeClock = reconciletest.FakeClock

func newFakeClock(t time.Time) *fakeClock { return reconciletest.NewFakeClock(t) }

// wire records what elevate's clients put on the wire, and can meddle with
// it: downgrade a read to version 1, or run something just before a write
// reaches the emulator.
type wire struct {
	mu        sync.Mutex
	reads     []int32 // requested policy version of every GetIamPolicy
	writes    []*iampb.Policy
	downgrade bool
	beforeSet func(*iampb.SetIamPolicyRequest)
	afterSet  func(*iampb.SetIamPolicyRequest, error)
}

func (w *wire) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	w.mu.Lock()
	switch r := req.(type) {
	case *iampb.GetIamPolicyRequest:
		if w.downgrade {
			r = proto.CloneOf(r)
			r.Options = &iampb.GetPolicyOptions{RequestedPolicyVersion: 1}
			req = r
		}
		w.reads = append(w.reads, r.GetOptions().GetRequestedPolicyVersion())
	case *iampb.SetIamPolicyRequest:
		w.writes = append(w.writes, proto.CloneOf(r.GetPolicy()))
		before, after := w.beforeSet, w.afterSet
		w.mu.Unlock()
		if before != nil {
			before(r)
		}
		err := invoker(ctx, method, req, reply, cc, opts...)
		if after != nil {
			after(r, err)
		}
		return err
	}
	w.mu.Unlock()
	return invoker(ctx, method, req, reply, cc, opts...)
}

// check fails the test if any read asked for less than version 3, or any
// write carried a version other than 3 or no etag.
func (w *wire) check(t testing.TB) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, v := range w.reads {
		if v != gcp.PolicyVersion && !w.downgrade {
			t.Errorf("GetIamPolicy %d requested policy version %d, want 3", i, v)
		}
	}
	for i, p := range w.writes {
		if p.GetVersion() != gcp.PolicyVersion {
			t.Errorf("SetIamPolicy %d carried policy version %d, want 3", i, p.GetVersion())
		}
		if len(p.GetEtag()) == 0 {
			t.Errorf("SetIamPolicy %d carried no etag", i)
		}
	}
}

func (w *wire) counts() (reads, writes int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.reads), len(w.writes)
}

// env is one emulator on a loopback port and a provider talking to it
// through the real SDK clients.
type env struct {
	clock *fakeClock
	emu   *gcpemu.Emulator
	addr  string
	wire  *wire
	prov  *gcp.Provider
}

// newEnv starts an emulator with projects/acme-prod and a provider on it.
// When the test ends it checks the version 3 and etag traps on the wire
// and in the emulator's counters.
func newEnv(t testing.TB, configure ...func(*gcp.Config)) *env {
	t.Helper()
	e := &env{clock: newFakeClock(t0), wire: &wire{}}
	e.emu = gcpemu.New(gcpemu.Options{Clock: e.clock.Now, Seed: 42, ReadQuotaPerMinute: -1})
	addr, stop, err := e.emu.Listen("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	e.addr = addr
	e.emu.CreateProject("acme-prod")
	cfg := gcp.Config{
		ClientOptions: append(gcpemu.ClientOptions(addr), option.WithGRPCDialOption(grpc.WithChainUnaryInterceptor(e.wire.intercept))),
		Clock:         e.clock.Now,
	}
	cfg.Conflicts.BaseDelay, cfg.Conflicts.MaxDelay = time.Millisecond, 10*time.Millisecond
	for _, f := range configure {
		f(&cfg)
	}
	e.prov, err = gcp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.prov.Close() })
	t.Cleanup(func() {
		e.wire.check(t)
		c := e.emu.Counters()
		if c.V1WriteAttempts != 0 {
			t.Errorf("the emulator saw %d SetIamPolicy calls with version 1 touching conditions", c.V1WriteAttempts)
		}
		if c.SetWithoutEtag != 0 {
			t.Errorf("the emulator saw %d SetIamPolicy calls without an etag", c.SetWithoutEtag)
		}
	})
	return e
}

func project(id string) model.ScopeKey {
	return model.ScopeKey{Cloud: model.CloudGCP, Scope: "projects/" + id}
}

func target(scope model.ScopeKey, role string) model.Target {
	return model.Target{Cloud: model.CloudGCP, Scope: scope.Scope, Role: role}
}

var prod = project("acme-prod")

// outOfBand edits allow policies the way a person in the console or
// another tool would, through the emulator.
type outOfBand struct {
	emu *gcpemu.Emulator
}

// AddUnmanaged implements providertest.OutOfBand: an unconditional binding
// for standing access, or a conditional one with someone else's title.
func (o outOfBand) AddUnmanaged(b model.Binding) error {
	m, err := gcp.Member(b.Principal)
	if err != nil {
		return err
	}
	return o.emu.ModifyPolicy(b.Target.Scope, "someone-else@example.com", func(p *iampb.Policy) {
		nb := &iampb.Binding{Role: b.Target.Role, Members: []string{m}}
		if !b.Expires.IsZero() {
			nb.Condition = &expr.Expr{Title: "temporary access by hand", Expression: gcp.Expression(b.NotBefore, b.Expires)}
		}
		p.Bindings = append(p.Bindings, nb)
	})
}

// TamperExpiry implements providertest.OutOfBand: it rewrites the expiry
// in elevate's condition, keeping the title.
func (o outOfBand) TamperExpiry(b model.Binding, expires time.Time) error {
	return o.editOwned(b, func(x *iampb.Binding) {
		x.Condition.Expression = gcp.Expression(b.NotBefore, expires)
	})
}

// editOwned edits the binding elevate wrote for b.
func (o outOfBand) editOwned(b model.Binding, edit func(*iampb.Binding)) error {
	m, err := gcp.Member(b.Principal)
	if err != nil {
		return err
	}
	found := false
	err = o.emu.ModifyPolicy(b.Target.Scope, "someone-else@example.com", func(p *iampb.Policy) {
		for _, x := range p.Bindings {
			if x.Role == b.Target.Role && x.GetCondition().GetTitle() == gcp.Title(b.Owner) && slices.Contains(x.Members, m) {
				edit(x)
				found = true
			}
		}
	})
	if err == nil && !found {
		err = fmt.Errorf("no binding of %s for %s titled %s", b.Target.Role, m, gcp.Title(b.Owner))
	}
	return err
}

// bindingsOf returns the bindings of the stored policy of scope.
func (e *env) bindingsOf(scope model.ScopeKey) []*iampb.Binding {
	p := e.emu.Policy(scope.Scope)
	if p == nil {
		return nil
	}
	return p.Bindings
}

// notOurs returns the bindings of scope whose condition title is not
// elevate's, in order.
func (e *env) notOurs(scope model.ScopeKey) []*iampb.Binding {
	var out []*iampb.Binding
	for _, b := range e.bindingsOf(scope) {
		if _, ok := cutTitle(b); !ok {
			out = append(out, b)
		}
	}
	return out
}

func cutTitle(b *iampb.Binding) (string, bool) {
	t := b.GetCondition().GetTitle()
	if len(t) > len(gcp.TitlePrefix) && t[:len(gcp.TitlePrefix)] == gcp.TitlePrefix {
		return t[len(gcp.TitlePrefix):], true
	}
	return "", false
}

func mustApply(t testing.TB, p *gcp.Provider, scope model.ScopeKey, changes ...model.Change) {
	t.Helper()
	res, err := p.Apply(context.Background(), scope, changes)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("change %d (%s): %v", i, r.Change.Reason, r.Err)
		}
	}
}

func grantBinding(scope model.ScopeKey, role string, p model.Principal, owner string, expires time.Time) model.Binding {
	return model.Binding{Target: target(scope, role), Principal: p, Owner: owner, Expires: expires}
}

func create(b model.Binding) model.Change { return model.Change{Reason: model.ReasonGranted, New: &b} }

func remove(b model.Binding, r model.Reason) model.Change { return model.Change{Reason: r, Old: &b} }
