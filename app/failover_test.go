package app

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/reconcile"
	"github.com/elevatehq/elevate/state"
	"github.com/elevatehq/elevate/state/pgtest"
)

// pgSchemaURL returns the URL of a fresh PostgreSQL schema, or skips the
// test when ELEVATE_TEST_POSTGRES is unset.
func pgSchemaURL(t testing.TB) string { return pgtest.Schema(t, "elevate_app") }

// isLeader reads a replica's elevate_leader gauge; false when it does not
// answer.
func isLeader(p *proc) bool {
	client := &http.Client{Timeout: 500 * time.Millisecond}
	resp, err := client.Get(p.url + "/metrics")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return err == nil && strings.Contains(string(body), "\nelevate_leader 1\n")
}

// waitLeader waits until exactly one of replicas reports it leads, and
// returns it.
func waitLeader(t *testing.T, timeout time.Duration, replicas ...*proc) *proc {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var leaders []*proc
		for _, r := range replicas {
			if isLeader(r) {
				leaders = append(leaders, r)
			}
		}
		if len(leaders) == 1 {
			return leaders[0]
		}
		if len(leaders) > 1 {
			t.Fatalf("%d replicas report they lead at once", len(leaders))
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("no replica became leader within %s", timeout)
	return nil
}

// TestFailoverPostgres runs replicas of the real daemon on one PostgreSQL
// schema and a shared memory emulator: every replica serves the API; when
// the leader is killed with SIGKILL another takes over within the lease TTL
// plus a second; the killed leader's fencing token no longer writes; a
// paused leader, once deposed, steps down when it wakes.
func TestFailoverPostgres(t *testing.T) {
	stateURL := pgSchemaURL(t)
	t.Parallel()
	const ttl = 3 * time.Second
	dir := t.TempDir()
	emu := newMemoryEmulator([]model.Cloud{model.CloudGCP, model.CloudAWS}, false)
	es := httptest.NewServer(emu)
	defer es.Close()
	env := []string{
		"ELEVATE_POLICIES=" + writeTestPolicies(t, dir),
		"ELEVATE_STATE=" + stateURL,
		"ELEVATE_STATIC_TOKENS=" + testStaticTokens(),
		"ELEVATE_MEMORY_CLOUDS=gcp,aws",
		"ELEVATE_MEMORY_ENDPOINT=" + es.URL,
		"ELEVATE_LEASE_TTL=" + model.FormatDuration(ttl),
	}
	a := startServe(t, dir, env...)
	b := startServe(t, dir, env...)
	leader := waitLeader(t, 10*time.Second, a, b)
	follower := a
	if leader == a {
		follower = b
	}
	follower.waitHTTP(t, "/readyz", http.StatusOK, 5*time.Second)

	ctx := context.Background()
	store, err := state.Open(ctx, stateURL)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	oldLease, err := store.GetLease(ctx, reconcile.LeaseName)
	if err != nil {
		t.Fatal(err)
	}

	// A request through the follower: the leader finds it and grants it.
	var g grantView
	if st := apiCall(t, follower.url, engToken, "POST", "/v1/requests",
		map[string]string{"role": "sandbox", "duration": "6s", "justification": "failover"}, &g); st != http.StatusCreated {
		t.Fatalf("request through the follower: %d", st)
	}
	waitGrantStatus(t, follower.url, engToken, g.ID, "active", 10*time.Second)

	// Kill the leader; the follower takes over within TTL + 1s.
	killed := time.Now()
	leader.kill9()
	deadline := killed.Add(ttl + time.Second)
	for !isLeader(follower) {
		if time.Now().After(deadline) {
			t.Fatalf("the follower did not take over within %s of the leader's SIGKILL\n%s", ttl+time.Second, daemonLogTail(follower.stderr.String(), 30))
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(killed)
	t.Logf("takeover %s after SIGKILL (lease TTL %s)", took.Round(time.Millisecond), ttl)
	newLease, err := store.GetLease(ctx, reconcile.LeaseName)
	if err != nil {
		t.Fatal(err)
	}
	if newLease.Holder == oldLease.Holder || newLease.Token <= oldLease.Token {
		t.Errorf("after failover the lease is %+v; want another holder and a token above %d", newLease, oldLease.Token)
	}

	// The dead leader's fencing token is refused: a write it had in
	// flight could not land.
	stale := store.WithFence(oldLease.Fence())
	rec := state.BindingRecord{Binding: model.Binding{
		Target:    model.Target{Cloud: model.CloudGCP, Scope: "projects/sandbox", Role: "roles/logging.viewer"},
		Principal: model.MustPrincipal("user:eng@example.com"), Owner: g.ID, Expires: time.Now().Add(time.Hour)},
		State: state.BindingApplied}
	if err := stale.PutBinding(ctx, rec); !errors.Is(err, state.ErrFenced) {
		t.Errorf("a write fenced with the dead leader's token %d: %v, want state.ErrFenced", oldLease.Token, err)
	}
	if _, err := store.WithFence(newLease.Fence()).GetGrant(ctx, g.ID); err != nil {
		t.Errorf("reading through the new leader's fence: %v", err)
	}

	// The grant granted by the dead leader expires under the new one.
	waitGrantStatus(t, follower.url, engToken, g.ID, "expired", 10*time.Second)
	for _, b := range emu.all() {
		if b.Owner == g.ID {
			t.Errorf("binding %s of the expired grant %s is still in the cloud", b.Target, g.ID)
		}
	}

	// A paused leader: a third replica takes over while it is stopped;
	// when it wakes it finds its lease gone and steps down.
	c := startServe(t, dir, env...)
	paused := follower
	paused.signal(t, syscall.SIGSTOP)
	stopped := time.Now()
	deadline = stopped.Add(ttl + time.Second)
	for !isLeader(c) {
		if time.Now().After(deadline) {
			paused.signal(t, syscall.SIGCONT)
			t.Fatalf("no takeover within %s of pausing the leader\n%s", ttl+time.Second, daemonLogTail(c.stderr.String(), 30))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("takeover %s after SIGSTOP", time.Since(stopped).Round(time.Millisecond))
	paused.signal(t, syscall.SIGCONT)
	deadline = time.Now().Add(5 * time.Second)
	for isLeader(paused) || !strings.Contains(paused.stderr.String(), "lost the reconcile lease") {
		if time.Now().After(deadline) {
			t.Fatalf("the deposed leader did not step down after waking\n%s", daemonLogTail(paused.stderr.String(), 30))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !isLeader(c) {
		t.Errorf("the new leader lost the lease to the woken one")
	}
	// Every replica still serves the API, and grants still work.
	var g2 grantView
	apiCall(t, paused.url, engToken, "POST", "/v1/requests", map[string]string{"role": "sandbox", "duration": "5m", "justification": "after failover"}, &g2)
	waitGrantStatus(t, c.url, engToken, g2.ID, "active", 10*time.Second)
}
