package memory_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/providers"
	"github.com/elevatehq/elevate/providers/memory"
	"github.com/elevatehq/elevate/providers/providertest"
)

var (
	scope   = model.ScopeKey{Cloud: model.CloudMemory, Scope: "projects/acme-prod"}
	target  = model.Target{Cloud: model.CloudMemory, Scope: scope.Scope, Role: "roles/cloudsql.admin"}
	target2 = model.Target{Cloud: model.CloudMemory, Scope: scope.Scope, Role: "roles/viewer"}
	alice   = model.MustPrincipal("user:alice@example.com")
	bob     = model.MustPrincipal("user:bob@example.com")
	carol   = model.MustPrincipal("user:carol@example.com")
	t0      = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
)

func TestConformance(t *testing.T) {
	providertest.Run(t, func(t *testing.T) providertest.Env {
		p := memory.New(memory.Options{})
		return providertest.Env{
			Provider: p, OutOfBand: p, Scope: scope,
			Targets:    []model.Target{target, target2},
			Principals: []model.Principal{alice, bob, carol},
		}
	})
}

func TestConformanceDaemonEnforcedWithLatency(t *testing.T) {
	providertest.Run(t, func(t *testing.T) providertest.Env {
		p := memory.New(memory.Options{DaemonEnforced: true, Cloud: model.CloudAWS})
		p.SetFaults(memory.Faults{Latency: time.Millisecond})
		s := model.ScopeKey{Cloud: model.CloudAWS, Scope: "123456789012"}
		return providertest.Env{
			Provider: p, OutOfBand: p, Scope: s,
			Targets: []model.Target{
				{Cloud: model.CloudAWS, Scope: s.Scope, Role: "prod-db-admin"},
				{Cloud: model.CloudAWS, Scope: s.Scope, Role: "arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/ps-1234567890abcdef", InstanceARN: "arn:aws:sso:::instance/ssoins-1234567890abcdef"},
			},
			Principals: []model.Principal{alice, bob, carol},
		}
	})
}

func managed(owner string, exp time.Time) model.Binding {
	return model.Binding{Target: target, Principal: alice, Owner: owner, NotBefore: t0, Expires: exp}
}

func TestNativeExpiryMakesBindingInert(t *testing.T) {
	for _, tc := range []struct {
		name           string
		daemonEnforced bool
		afterExpiry    bool
	}{
		{"native", false, false},
		{"daemon-enforced", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := memory.New(memory.Options{DaemonEnforced: tc.daemonEnforced})
			b := managed("g1", t0.Add(time.Hour))
			res, err := p.Apply(context.Background(), scope, []model.Change{{Reason: model.ReasonGranted, New: &b}})
			if err != nil || res[0].Err != nil {
				t.Fatalf("Apply: %v %v", err, res)
			}
			if res[0].Binding.Native == tc.daemonEnforced {
				t.Errorf("written Native = %v, want %v", res[0].Binding.Native, !tc.daemonEnforced)
			}
			if !p.EffectiveAccess(alice, target, t0.Add(30*time.Minute)) {
				t.Error("no access inside the window")
			}
			if p.EffectiveAccess(bob, target, t0.Add(30*time.Minute)) {
				t.Error("another principal has access")
			}
			if p.EffectiveAccess(alice, target2, t0.Add(30*time.Minute)) {
				t.Error("access on another role")
			}
			if got := p.EffectiveAccess(alice, target, t0.Add(time.Hour)); got != tc.afterExpiry {
				t.Errorf("access at expiry = %v, want %v", got, tc.afterExpiry)
			}
			if got := p.EffectiveAccess(alice, target, t0.Add(-time.Second)); got != tc.afterExpiry {
				t.Errorf("access before the window = %v, want %v", got, tc.afterExpiry)
			}
			// The binding stays until deleted, whatever the cloud enforces.
			if n := len(p.Bindings(scope)); n != 1 {
				t.Errorf("%d bindings stored after expiry, want 1", n)
			}
		})
	}
}

func TestStandingUnmanagedAccessIsEffective(t *testing.T) {
	p := memory.New(memory.Options{})
	if err := p.AddUnmanaged(model.Binding{Target: target, Principal: bob}); err != nil {
		t.Fatal(err)
	}
	if !p.EffectiveAccess(bob, target, t0.Add(1000*time.Hour)) {
		t.Error("standing access is not effective")
	}
	if err := p.AddUnmanaged(managed("g1", t0)); err == nil {
		t.Error("AddUnmanaged accepted a binding with an owner")
	}
}

func TestFaultInjection(t *testing.T) {
	ctx := context.Background()
	t.Run("FailNextThenRecover", func(t *testing.T) {
		p := memory.New(memory.Options{})
		boom := errors.New("boom")
		p.FailNext(boom, providers.Throttled(memory.ErrThrottled, 3*time.Second))
		if _, err := p.Observe(ctx, scope, nil); !errors.Is(err, boom) || providers.IsTransient(err) {
			t.Errorf("first call: %v, want permanent boom", err)
		}
		_, err := p.Apply(ctx, scope, nil)
		if !errors.Is(err, memory.ErrThrottled) || !providers.IsTransient(err) || providers.RetryAfterOf(err) != 3*time.Second {
			t.Errorf("second call: %v (retry after %s), want throttled with 3s", err, providers.RetryAfterOf(err))
		}
		if _, err := p.Observe(ctx, scope, nil); err != nil {
			t.Errorf("third call: %v", err)
		}
		if p.Reads(scope) != 1 || p.Writes(scope) != 0 {
			t.Errorf("counters: reads %d writes %d, want 1 and 0 (failed calls do not reach the store)", p.Reads(scope), p.Writes(scope))
		}
	})
	t.Run("ScopeFailsPermanently", func(t *testing.T) {
		p := memory.New(memory.Options{})
		other := model.ScopeKey{Cloud: model.CloudMemory, Scope: "projects/other"}
		denied := errors.New("permission denied on projects/acme-prod")
		p.FailScope(scope, denied)
		if _, err := p.Observe(ctx, scope, nil); !errors.Is(err, denied) || providers.IsTransient(err) {
			t.Errorf("failing scope: %v", err)
		}
		if _, err := p.Observe(ctx, other, nil); err != nil {
			t.Errorf("other scope: %v", err)
		}
		p.FailScope(scope, nil)
		if _, err := p.Observe(ctx, scope, nil); err != nil {
			t.Errorf("after clearing: %v", err)
		}
	})
	t.Run("RatesAreSeededAndClassified", func(t *testing.T) {
		counts := func(seed uint64) (ok, unavailable, throttled int) {
			p := memory.New(memory.Options{Seed: seed})
			p.SetFaults(memory.Faults{ErrorRate: 0.2, ThrottleRate: 0.25, RetryAfter: time.Second})
			for range 1000 {
				_, err := p.Observe(ctx, scope, nil)
				switch {
				case err == nil:
					ok++
				case errors.Is(err, memory.ErrUnavailable) && providers.IsTransient(err) && providers.RetryAfterOf(err) == 0:
					unavailable++
				case errors.Is(err, memory.ErrThrottled) && providers.IsTransient(err) && providers.RetryAfterOf(err) == time.Second:
					throttled++
				default:
					t.Fatalf("unexpected error %v", err)
				}
			}
			return
		}
		ok, un, th := counts(7)
		// 20% unavailable; of the rest 25% throttled = 20%; 60% ok.
		if un < 150 || un > 250 || th < 150 || th > 250 || ok < 530 || ok > 670 {
			t.Errorf("fault mix ok=%d unavailable=%d throttled=%d, want about 600/200/200", ok, un, th)
		}
		if ok2, un2, th2 := counts(7); ok2 != ok || un2 != un || th2 != th {
			t.Errorf("same seed gave a different mix: %d/%d/%d vs %d/%d/%d", ok2, un2, th2, ok, un, th)
		}
	})
	t.Run("Latency", func(t *testing.T) {
		var slept []time.Duration
		p := memory.New(memory.Options{Sleep: func(ctx context.Context, d time.Duration) error {
			slept = append(slept, d)
			return nil
		}})
		p.SetFaults(memory.Faults{Latency: 250 * time.Millisecond})
		p.Observe(ctx, scope, nil)
		p.Apply(ctx, scope, nil)
		if len(slept) != 2 || slept[0] != 250*time.Millisecond {
			t.Errorf("slept %v, want 250ms per call", slept)
		}
		real := memory.New(memory.Options{})
		real.SetFaults(memory.Faults{Latency: time.Hour})
		cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		if _, err := real.Observe(cctx, scope, nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("latency beyond the deadline: %v, want DeadlineExceeded", err)
		}
	})
	t.Run("PerChangeErrors", func(t *testing.T) {
		p := memory.New(memory.Options{Seed: 3})
		p.SetFaults(memory.Faults{ChangeErrorRate: 0.5})
		var changes []model.Change
		for i := range 40 {
			b := managed("g"+strconv.Itoa(i), t0.Add(time.Hour))
			changes = append(changes, model.Change{Reason: model.ReasonGranted, New: &b})
		}
		res, err := p.Apply(ctx, scope, changes)
		if err != nil {
			t.Fatal(err)
		}
		failed := 0
		for _, r := range res {
			if r.Err != nil {
				if !providers.IsTransient(r.Err) {
					t.Errorf("per-change fault not transient: %v", r.Err)
				}
				failed++
			}
		}
		if failed == 0 || failed == 40 || len(p.Bindings(scope)) != 40-failed {
			t.Errorf("%d of 40 failed and %d stored; want a partial batch whose successes are stored", failed, len(p.Bindings(scope)))
		}
	})
}

func TestBatchIsOneWrite(t *testing.T) {
	p := memory.New(memory.Options{})
	var changes []model.Change
	for i := range 25 {
		b := managed("g"+strconv.Itoa(i), t0.Add(time.Hour))
		changes = append(changes, model.Change{Reason: model.ReasonGranted, New: &b})
	}
	if _, err := p.Apply(context.Background(), scope, changes); err != nil {
		t.Fatal(err)
	}
	if p.Writes(scope) != 1 || len(p.Bindings(scope)) != 25 {
		t.Errorf("writes %d, bindings %d; want 1 write of 25 bindings", p.Writes(scope), len(p.Bindings(scope)))
	}
}

func TestObserveFiltersUnmanagedByTarget(t *testing.T) {
	p := memory.New(memory.Options{})
	p.AddUnmanaged(model.Binding{Target: target2, Principal: bob})
	p.AddUnmanaged(model.Binding{Target: target, Principal: carol})
	m := managed("g1", t0.Add(time.Hour))
	m.Target = target2
	p.Put(m)
	bs, err := p.Observe(context.Background(), scope, []model.Target{target})
	if err != nil {
		t.Fatal(err)
	}
	// The unmanaged binding on target and the managed one on target2.
	if len(bs) != 2 || !(bs[0].Principal.Equal(carol) && !bs[0].Managed()) || bs[1].Owner != "g1" {
		t.Errorf("Observe(target) = %+v", bs)
	}
	all, _ := p.Observe(context.Background(), scope, nil)
	if len(all) != 3 {
		t.Errorf("Observe(nil) returned %d bindings, want 3", len(all))
	}
}

func TestRefusesOtherCloud(t *testing.T) {
	p := memory.New(memory.Options{Cloud: model.CloudGCP})
	if _, err := p.Observe(context.Background(), scope, nil); !errors.Is(err, providers.ErrInvalidChange) {
		t.Errorf("Observe of a memory scope on a gcp provider: %v", err)
	}
}

func TestAuditLog(t *testing.T) {
	clock := t0
	p := memory.New(memory.Options{Clock: func() time.Time { return clock }})
	ctx := context.Background()
	b := managed("g1", t0.Add(time.Hour))
	p.Apply(ctx, scope, []model.Change{{Reason: model.ReasonGranted, New: &b}})
	clock = clock.Add(time.Minute)
	p.AddUnmanaged(model.Binding{Target: target, Principal: bob})
	p.RecordEvent(providers.AuditEvent{Category: providers.AuditSignIn, Action: "ConsoleLogin", Actor: carol, Success: true})
	p.Apply(ctx, scope, []model.Change{{Reason: model.ReasonExpired, Old: &b}})

	evs, cur, err := p.Read(ctx, "", 2)
	if err != nil || len(evs) != 2 {
		t.Fatalf("Read: %v, %d events", err, len(evs))
	}
	if evs[0].Action != "CreateBinding" || !evs[0].Actor.Equal(model.MustPrincipal("serviceAccount:elevate@elevate.internal")) || !evs[0].Time.Equal(t0) {
		t.Errorf("first event %+v", evs[0])
	}
	if evs[1].Action != "PutBinding" || !evs[1].Actor.Equal(memory.OutOfBandActor) || !evs[1].Time.Equal(t0.Add(time.Minute)) {
		t.Errorf("second event %+v", evs[1])
	}
	evs, cur, err = p.Read(ctx, cur, 10)
	if err != nil || len(evs) != 2 || evs[0].Category != providers.AuditSignIn || evs[1].Action != "DeleteBinding" {
		t.Fatalf("second page: %v %+v", err, evs)
	}
	evs, cur2, err := p.Read(ctx, cur, 10)
	if err != nil || len(evs) != 0 || cur2 != cur {
		t.Errorf("empty page: %v %d events, cursor %q -> %q", err, len(evs), cur, cur2)
	}
	if _, _, err := p.Read(ctx, "x", 10); err == nil {
		t.Error("invalid cursor accepted")
	}
}
