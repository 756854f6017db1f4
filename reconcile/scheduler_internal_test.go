package reconcile

import (
	"errors"
	"testing"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/providers"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func TestScheduleOrdersInstants(t *testing.T) {
	var s schedule
	g := func(id string, status model.GrantStatus, starts, expires time.Duration) model.Grant {
		return model.Grant{ID: id, Status: status, Starts: t0.Add(starts), Expires: t0.Add(expires)}
	}
	s.reset(grantPtrs([]model.Grant{
		g("a", model.StatusActive, -time.Hour, 3*time.Minute),
		g("b", model.StatusApproved, time.Minute, 2*time.Minute), // start and expiry
		g("c", model.StatusRevoked, 0, 30*time.Second),           // not live: nothing
		g("d", model.StatusActive, -time.Hour, -time.Minute),     // past: nothing
	}), t0)
	s.add(&model.Grant{ID: "e", Status: model.StatusActive, Starts: t0, Expires: t0.Add(90 * time.Second)}, t0)
	var got []time.Duration
	for {
		at, ok := s.next()
		if !ok {
			break
		}
		got = append(got, at.Sub(t0))
		if n := s.popDue(at); n != 1 {
			t.Fatalf("popDue(%s) = %d, want 1", at.Sub(t0), n)
		}
	}
	want := []time.Duration{time.Minute, 90 * time.Second, 2 * time.Minute, 3 * time.Minute}
	if len(got) != len(want) {
		t.Fatalf("instants %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("instants %v, want %v", got, want)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	err := errors.New("boom")
	for failures := 1; failures <= 30; failures++ {
		d := retryDelay(failures, err, false)
		ceiling := min(retryMaxTransient, retryBase<<min(failures-1, 20))
		if d < ceiling/2 || d > ceiling {
			t.Errorf("failure %d: delay %s outside [%s, %s]", failures, d, ceiling/2, ceiling)
		}
	}
	if d := retryDelay(30, err, true); d < retryMaxPermanent/2 || d > retryMaxPermanent {
		t.Errorf("permanent delay %s", d)
	}
	if d := retryDelay(1, providers.Throttled(err, 45*time.Second), false); d != 45*time.Second {
		t.Errorf("delay with Retry-After 45s: %s", d)
	}
}

func TestGrantCacheVersions(t *testing.T) {
	c := newGrantCache()
	c.reset([]model.Grant{{ID: "a", Status: model.StatusActive, Version: 2}})
	if c.apply(model.Grant{ID: "a", Status: model.StatusApproved, Version: 1}) {
		t.Error("an older version replaced a newer one")
	}
	if !c.apply(model.Grant{ID: "a", Status: model.StatusExpired, Version: 3}) || len(c.list()) != 0 {
		t.Error("an ended grant stayed in the cache")
	}
	if c.apply(model.Grant{ID: "a", Status: model.StatusActive, Version: 2}) || len(c.list()) != 0 {
		t.Error("a stale read brought an ended grant back")
	}
	if !c.apply(model.Grant{ID: "b", Status: model.StatusApproved, Version: 1}) || len(c.list()) != 1 {
		t.Error("a new live grant was not added")
	}
}
