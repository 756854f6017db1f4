package server

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// want is an expected status and, for errors, the error code.
type want struct {
	status int
	code   string
}

var (
	ok200      = want{http.StatusOK, ""}
	created201 = want{http.StatusCreated, ""}
	unauth401  = want{http.StatusUnauthorized, "unauthenticated"}
	bg403      = want{http.StatusForbidden, "breakglass-account"}
)

func forbid(code string) want { return want{http.StatusForbidden, code} }

// matrixIdentities are the rows of the authorization matrix.
var matrixIdentities = []string{anonymous, requester, other, approver, admin, breakglass}

// TestAuthMatrix sends every endpoint as every kind of caller and checks
// the status (and error code) of each combination.
func TestAuthMatrix(t *testing.T) {
	// Each endpoint's fixture is made fresh for each caller, so one
	// caller's change does not decide another's answer.
	type endpoint struct {
		name   string
		method string
		path   func(e *env) string
		body   any
		want   map[string]want
	}
	grantPath := func(suffix string, make func(e *env) GrantView) func(e *env) string {
		return func(e *env) string { return "/v1/grants/" + make(e).ID + suffix }
	}
	pending := func(e *env) GrantView { return e.pendingAdmin() }
	live := func(e *env) GrantView { return e.approvedRead() }
	static := func(p string) func(*env) string { return func(*env) string { return p } }
	everyone := func(w want) map[string]want {
		m := map[string]want{}
		for _, id := range matrixIdentities {
			m[id] = w
		}
		return m
	}
	adminOnly := map[string]want{anonymous: unauth401, requester: forbid("admin-only"), other: forbid("admin-only"),
		approver: forbid("admin-only"), admin: ok200, breakglass: bg403}
	endpoints := []endpoint{
		{"POST /v1/requests", "POST", static("/v1/requests"), map[string]any{"role": "db-read", "justification": "slow query"},
			map[string]want{anonymous: unauth401, requester: created201, other: created201, approver: created201, admin: created201, breakglass: bg403}},
		{"GET /v1/grants", "GET", static("/v1/grants"), nil,
			map[string]want{anonymous: unauth401, requester: ok200, other: ok200, approver: ok200, admin: ok200, breakglass: bg403}},
		{"GET /v1/grants/{id}", "GET", grantPath("", pending), nil,
			map[string]want{anonymous: unauth401, requester: ok200, other: forbid("not-visible"), approver: ok200, admin: ok200, breakglass: bg403}},
		{"POST /v1/grants/{id}/approve", "POST", grantPath("/approve", pending), map[string]any{"comment": "ok"},
			map[string]want{anonymous: unauth401, requester: forbid("self-approval"), other: forbid("not-approver"), approver: ok200, admin: forbid("not-approver"), breakglass: bg403}},
		{"POST /v1/grants/{id}/deny", "POST", grantPath("/deny", pending), map[string]any{"reason": "no incident open"},
			map[string]want{anonymous: unauth401, requester: forbid("self-approval"), other: forbid("not-approver"), approver: ok200, admin: forbid("not-approver"), breakglass: bg403}},
		{"POST /v1/grants/{id}/extend", "POST", grantPath("/extend", live), map[string]any{"by": "30m", "justification": "still digging"},
			map[string]want{anonymous: unauth401, requester: ok200, other: forbid("not-grantee"), approver: forbid("not-grantee"), admin: forbid("not-grantee"), breakglass: bg403}},
		{"POST /v1/grants/{id}/revoke", "POST", grantPath("/revoke", live), map[string]any{"reason": "done"},
			map[string]want{anonymous: unauth401, requester: ok200, other: forbid("not-grantee"), approver: forbid("not-grantee"), admin: ok200, breakglass: bg403}},
		{"GET /v1/incidents", "GET", static("/v1/incidents"), nil, adminOnly},
		{"GET /v1/incidents/{id}", "GET", func(e *env) string { return "/v1/incidents/" + e.openIncident().ID }, nil, adminOnly},
		{"POST /v1/incidents/{id}/review", "POST", func(e *env) string { return "/v1/incidents/" + e.openIncident().ID + "/review" },
			map[string]any{"notes": "IdP outage INC-9; credentials rotated"}, adminOnly},
		{"POST /v1/declarations", "POST", static("/v1/declarations"), map[string]any{"policy": "idp-outage", "reason": "identity-provider-outage", "for": "1h"},
			map[string]want{anonymous: unauth401, requester: created201, other: created201, approver: created201, admin: created201, breakglass: bg403}},
		{"GET /v1/declarations", "GET", static("/v1/declarations"), nil, adminOnly},
		{"GET /v1/breakglass/check", "GET", static("/v1/breakglass/check"), nil, adminOnly},
		{"GET /v1/report", "GET", static("/v1/report"), nil, adminOnly},
		{"GET /v1/policies", "GET", static("/v1/policies"), nil,
			map[string]want{anonymous: unauth401, requester: ok200, other: ok200, approver: ok200, admin: ok200, breakglass: bg403}},
		{"GET /v1/whoami", "GET", static("/v1/whoami"), nil,
			map[string]want{anonymous: unauth401, requester: ok200, other: ok200, approver: ok200, admin: ok200, breakglass: bg403}},
		{"GET /v1/openapi.json", "GET", static("/v1/openapi.json"), nil, everyone(ok200)},
		{"GET /healthz", "GET", static("/healthz"), nil, everyone(ok200)},
		{"GET /readyz", "GET", static("/readyz"), nil, everyone(ok200)},
		{"GET /metrics", "GET", static("/metrics"), nil, everyone(ok200)},
	}

	for _, b := range []backend{memBackend, sqliteBackend} {
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t, b)
			covered := map[string]bool{}
			for _, ep := range endpoints {
				covered[ep.method+" "+strings.TrimPrefix(ep.name, ep.method+" ")] = true
				for _, who := range matrixIdentities {
					w, ok := ep.want[who]
					if !ok {
						t.Fatalf("%s: no expectation for %s", ep.name, who)
					}
					r := e.call(ep.method, ep.path(e), who, ep.body)
					if r.status != w.status || (w.code != "" && r.errCode() != w.code) {
						t.Errorf("%s as %s = %d %s; want %d %s", ep.name, who, r.status, r.errCode(), w.status, w.code)
					}
					if r.status == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") == "" {
						t.Errorf("%s as %s: 401 without WWW-Authenticate", ep.name, who)
					}
				}
			}
			// The table covers every route the server serves.
			for _, rt := range e.api.routes {
				if !covered[rt.Method+" "+rt.Path] {
					t.Errorf("route %s %s is missing from the auth matrix", rt.Method, rt.Path)
				}
			}
		})
	}
}

// TestWhoami checks what each identity is taken for.
func TestWhoami(t *testing.T) {
	e := newEnv(t, memBackend)
	for _, c := range []struct {
		who  string
		want WhoamiView
	}{
		{requester, WhoamiView{Principal: "user:alice@example.com", Groups: []string{"group:sre@example.com"}, Method: "oidc"}},
		{approver2, WhoamiView{Principal: "user:erin@example.com", Groups: []string{"group:sre-leads@example.com"}, Method: "static"}},
		{admin, WhoamiView{Principal: "user:root@example.com", Groups: []string{}, Admin: true, Method: "static"}},
	} {
		r := e.call("GET", "/v1/whoami", c.who, nil)
		var got WhoamiView
		r.decode(t, &got)
		if r.status != 200 || got.Principal != c.want.Principal || got.Admin != c.want.Admin || got.Method != c.want.Method ||
			strings.Join(got.Groups, ",") != strings.Join(c.want.Groups, ",") {
			t.Errorf("whoami as %s = %d %+v; want %+v", c.who, r.status, got, c.want)
		}
	}
}

// TestRejectedTokens sends tokens that must not authenticate to a
// protected endpoint: each is a 401 with a reason, never the token.
func TestRejectedTokens(t *testing.T) {
	e := newEnv(t, memBackend)
	now := e.clock.Now()
	expired := e.claims("alice@example.com", now.Add(-3*time.Hour), "sre@example.com")
	expired["exp"] = now.Add(-time.Hour).Unix()
	wrongAud := e.claims("alice@example.com", now, "sre@example.com")
	wrongAud["aud"] = "another-app"
	wrongIss := e.claims("alice@example.com", now, "sre@example.com")
	wrongIss["iss"] = "https://idp.evil.example"
	good := e.claims("alice@example.com", now, "sre@example.com")
	valid := signJWT(t, issuerEC, good)
	parts := strings.Split(valid, ".")
	tamperedSig := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))

	cases := []struct {
		name, token, reason string
	}{
		{"expired", signJWT(t, issuerRSA, expired), "expired"},
		{"wrong audience", signJWT(t, issuerRSA, wrongAud), "audience"},
		{"wrong issuer", signJWT(t, issuerRSA, wrongIss), "issued by"},
		{"signed by another key with the issuer's key ID", signJWT(t, rogue, good), "signature"},
		{"signature replaced", tamperedSig, "signature"},
		{"unknown static token", "elv_notarealtokenatall", "not known"},
		{"garbage", "hello", "neither"},
	}
	// The valid token authenticates, so the failures are the tokens' own.
	if r := e.call("GET", "/v1/whoami", valid, nil); r.status != 200 {
		t.Fatalf("valid token: %d %s", r.status, r.body)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.call("GET", "/v1/whoami", c.token, nil)
			if r.status != http.StatusUnauthorized || r.errCode() != "unauthenticated" {
				t.Fatalf("status %d code %q, want 401 unauthenticated; body %s", r.status, r.errCode(), r.body)
			}
			if !strings.Contains(string(r.body), c.reason) {
				t.Errorf("body %s does not say %q", r.body, c.reason)
			}
			if strings.Contains(string(r.body), c.token) {
				t.Errorf("the error body echoes the token")
			}
		})
	}
	// Another scheme is refused too.
	req, _ := http.NewRequest("GET", e.url+"/v1/whoami", nil)
	req.SetBasicAuth("alice", "secret")
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("Basic auth: %d, want 401", resp.StatusCode)
	}
}
