package providers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/providers"
	"github.com/elevatehq/elevate/providers/memory"
)

func TestRateLimitPerScope(t *testing.T) {
	mem := memory.New(memory.Options{})
	other := model.ScopeKey{Cloud: model.CloudMemory, Scope: "projects/other"}
	p := providers.WithRateLimit(mem, providers.RateLimit{PerSecond: 0.5, Burst: 1})
	short := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 200*time.Millisecond)
	}
	ctx, cancel := short()
	defer cancel()
	if _, err := p.Observe(ctx, scope, nil); err != nil {
		t.Fatalf("first call: %v", err)
	}
	// The bucket of scope is empty for two seconds; other has its own.
	if _, err := p.Observe(ctx, other, nil); err != nil {
		t.Fatalf("another scope waited on the first one's bucket: %v", err)
	}
	_, err := p.Apply(ctx, scope, nil)
	if err == nil || !strings.Contains(err.Error(), "rate limit of memory:projects/acme-prod") {
		t.Fatalf("second call within the deadline: %v, want a rate-limit error", err)
	}
	if mem.Writes(scope) != 0 {
		t.Error("a rate-limited call reached the provider")
	}
}

func TestRateLimitWaitsAndSharesBuckets(t *testing.T) {
	mem := memory.New(memory.Options{})
	sub := func(s model.ScopeKey) string { return strings.SplitN(s.Scope, "/", 4)[2] }
	p := providers.WithRateLimit(mem, providers.RateLimit{PerSecond: 20, Burst: 1, Bucket: sub})
	a := model.ScopeKey{Cloud: model.CloudMemory, Scope: "/subscriptions/s1/resourceGroups/a"}
	b := model.ScopeKey{Cloud: model.CloudMemory, Scope: "/subscriptions/s1/resourceGroups/b"}
	start := time.Now()
	for i := range 6 {
		s := a
		if i%2 == 1 {
			s = b
		}
		if _, err := p.Observe(context.Background(), s, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Six calls through one 20/s bucket of size 1: at least five 50ms gaps.
	if el := time.Since(start); el < 240*time.Millisecond {
		t.Errorf("6 calls sharing a 20/s bucket took %s, want at least 250ms", el)
	}
	if mem.Reads(a) != 3 || mem.Reads(b) != 3 {
		t.Errorf("reads %d and %d", mem.Reads(a), mem.Reads(b))
	}
	if providers.WithRateLimit(mem, providers.RateLimit{}) != providers.Provider(mem) {
		t.Error("a zero rate limit should not wrap")
	}
}
