package providers_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/providers"
	"github.com/elevatehq/elevate/providers/memory"
)

var (
	scope  = model.ScopeKey{Cloud: model.CloudMemory, Scope: "projects/acme-prod"}
	target = model.Target{Cloud: model.CloudMemory, Scope: scope.Scope, Role: "roles/cloudsql.admin"}
	alice  = model.MustPrincipal("user:alice@example.com")
	t0     = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
)

// sleeper records waits instead of sleeping.
type sleeper struct {
	waits []time.Duration
	hook  func(n int)
}

func (s *sleeper) sleep(ctx context.Context, d time.Duration) error {
	s.waits = append(s.waits, d)
	if s.hook != nil {
		s.hook(len(s.waits))
	}
	return ctx.Err()
}

func policy(s *sleeper, attempts int) providers.RetryPolicy {
	return providers.RetryPolicy{
		MaxAttempts: attempts, BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second,
		Sleep: s.sleep, Rand: func() float64 { return 0.5 },
	}
}

func creates(n int) []model.Change {
	out := make([]model.Change, n)
	for i := range out {
		b := model.Binding{Target: target, Principal: alice, Owner: "g" + strconv.Itoa(i), Expires: t0.Add(time.Hour)}
		out[i] = model.Change{Reason: model.ReasonGranted, New: &b}
	}
	return out
}

func TestBackoffFullJitter(t *testing.T) {
	p := providers.RetryPolicy{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second, Rand: func() float64 { return 0.999999 }}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for retry, w := range want {
		d, ok := p.Backoff(retry, errors.New("x"))
		if !ok || d > w*time.Millisecond || d < w*time.Millisecond*99/100 {
			t.Errorf("retry %d: backoff %s, want just under %dms", retry, d, w)
		}
	}
	if d, ok := p.Backoff(200, errors.New("x")); !ok || d > time.Second {
		t.Errorf("huge retry count: %s (overflow?)", d)
	}
	zero := providers.RetryPolicy{Rand: func() float64 { return 0 }}
	if d, _ := zero.Backoff(3, errors.New("x")); d != 0 {
		t.Errorf("full jitter starts at zero, got %s", d)
	}
	// Retry-After is a floor; a too-long one stops the retries.
	if d, ok := zero.Backoff(0, providers.Throttled(errors.New("429"), 7*time.Second)); !ok || d != 7*time.Second {
		t.Errorf("Retry-After 7s: %s %v", d, ok)
	}
	if _, ok := zero.Backoff(0, providers.Throttled(errors.New("429"), 2*time.Minute)); ok {
		t.Error("Retry-After beyond MaxRetryAfter must stop the retries")
	}
}

func TestRetryObserve(t *testing.T) {
	ctx := context.Background()
	t.Run("TransientThenSuccess", func(t *testing.T) {
		mem := memory.New(memory.Options{})
		mem.FailNext(providers.Transient(memory.ErrUnavailable), providers.Throttled(memory.ErrThrottled, 3*time.Second))
		s := &sleeper{}
		if _, err := providers.WithRetry(mem, policy(s, 5)).Observe(ctx, scope, nil); err != nil {
			t.Fatal(err)
		}
		// 0.5 * 100ms jitter, then the 3s Retry-After beats 0.5 * 200ms.
		if len(s.waits) != 2 || s.waits[0] != 50*time.Millisecond || s.waits[1] != 3*time.Second {
			t.Errorf("waits %v, want [50ms 3s]", s.waits)
		}
		if mem.Reads(scope) != 1 {
			t.Errorf("reads %d, want 1", mem.Reads(scope))
		}
	})
	t.Run("PermanentNotRetried", func(t *testing.T) {
		mem := memory.New(memory.Options{})
		denied := errors.New("permission denied")
		mem.FailNext(denied)
		s := &sleeper{}
		if _, err := providers.WithRetry(mem, policy(s, 5)).Observe(ctx, scope, nil); !errors.Is(err, denied) {
			t.Errorf("err %v", err)
		}
		if len(s.waits) != 0 {
			t.Errorf("retried a permanent error: %v", s.waits)
		}
	})
	t.Run("BoundedAttempts", func(t *testing.T) {
		mem := memory.New(memory.Options{})
		mem.SetFaults(memory.Faults{ErrorRate: 1})
		s := &sleeper{}
		_, err := providers.WithRetry(mem, policy(s, 4)).Observe(ctx, scope, nil)
		if !providers.IsTransient(err) || !strings.Contains(err.Error(), "giving up after 4 attempts") || len(s.waits) != 3 {
			t.Errorf("err %v after %d waits; want giving up after 4 attempts, still transient", err, len(s.waits))
		}
	})
	t.Run("LongRetryAfterReturnsAtOnce", func(t *testing.T) {
		mem := memory.New(memory.Options{})
		mem.FailNext(providers.Throttled(memory.ErrThrottled, time.Hour))
		s := &sleeper{}
		_, err := providers.WithRetry(mem, policy(s, 5)).Observe(ctx, scope, nil)
		if providers.RetryAfterOf(err) != time.Hour || len(s.waits) != 0 {
			t.Errorf("err %v, waits %v; want the 1h Retry-After passed up unwaited", err, s.waits)
		}
	})
	t.Run("CancelledWhileWaiting", func(t *testing.T) {
		mem := memory.New(memory.Options{})
		mem.SetFaults(memory.Faults{ErrorRate: 1})
		cctx, cancel := context.WithCancel(ctx)
		s := &sleeper{hook: func(int) { cancel() }}
		_, err := providers.WithRetry(mem, policy(s, 5)).Observe(cctx, scope, nil)
		if !errors.Is(err, context.Canceled) || !errors.Is(err, memory.ErrUnavailable) || len(s.waits) != 1 {
			t.Errorf("err %v after %d waits", err, len(s.waits))
		}
	})
}

func TestRetryApply(t *testing.T) {
	ctx := context.Background()
	t.Run("RetriesOnlyFailedChanges", func(t *testing.T) {
		mem := memory.New(memory.Options{Seed: 11})
		mem.SetFaults(memory.Faults{ChangeErrorRate: 0.4})
		s := &sleeper{}
		changes := creates(30)
		res, err := providers.WithRetry(mem, policy(s, 30)).Apply(ctx, scope, changes)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Err != nil || r.Binding == nil || r.Change.New.Owner != changes[i].New.Owner {
				t.Errorf("result %d: %+v", i, r)
			}
		}
		if len(mem.Bindings(scope)) != 30 || mem.Writes(scope) < 2 {
			t.Errorf("%d bindings after %d writes", len(mem.Bindings(scope)), mem.Writes(scope))
		}
		// Each change was written exactly once: successes are not re-sent.
		evs, _, _ := mem.Read(ctx, "", 1000)
		if len(evs) != 30 {
			t.Errorf("%d writes of single bindings, want 30", len(evs))
		}
	})
	t.Run("BatchFailureRetriedWhole", func(t *testing.T) {
		mem := memory.New(memory.Options{})
		mem.FailNext(providers.Transient(errors.New("409 concurrent policy changes")))
		s := &sleeper{}
		res, err := providers.WithRetry(mem, policy(s, 5)).Apply(ctx, scope, creates(3))
		if err != nil || len(res) != 3 || len(s.waits) != 1 || len(mem.Bindings(scope)) != 3 {
			t.Errorf("err %v, %d results, %d waits, %d bindings", err, len(res), len(s.waits), len(mem.Bindings(scope)))
		}
	})
	t.Run("PermanentBatchFailure", func(t *testing.T) {
		mem := memory.New(memory.Options{})
		denied := errors.New("403")
		mem.FailScope(scope, denied)
		res, err := providers.WithRetry(mem, policy(&sleeper{}, 5)).Apply(ctx, scope, creates(2))
		if !errors.Is(err, denied) || res != nil {
			t.Errorf("res %v err %v", res, err)
		}
	})
	t.Run("BatchFailureAfterPartialSuccess", func(t *testing.T) {
		mem := memory.New(memory.Options{Seed: 5})
		mem.SetFaults(memory.Faults{ChangeErrorRate: 0.5})
		denied := errors.New("403 after the first attempt")
		s := &sleeper{hook: func(int) { mem.FailScope(scope, denied) }}
		res, err := providers.WithRetry(mem, policy(s, 5)).Apply(ctx, scope, creates(20))
		if err != nil {
			t.Fatalf("a batch failure after partial success must come back per change, got %v", err)
		}
		ok, failed := 0, 0
		for _, r := range res {
			switch {
			case r.Err == nil && r.Binding != nil:
				ok++
			case errors.Is(r.Err, denied) && r.Change.New != nil:
				failed++
			default:
				t.Errorf("result %+v", r)
			}
		}
		if ok == 0 || failed == 0 || ok != len(mem.Bindings(scope)) {
			t.Errorf("ok %d failed %d stored %d", ok, failed, len(mem.Bindings(scope)))
		}
	})
}
