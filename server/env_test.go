package server

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/server/auth"
	"github.com/elevatehq/elevate/state"
	"github.com/elevatehq/elevate/state/pgtest"
)

// testPolicies is the policy set the tests run against.
const testPolicies = `
role "db-read" {
  description = "Read production databases"
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/cloudsql.viewer"
  }
}

role "db-admin" {
  description = "Administer production databases"
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/cloudsql.admin"
  }
  aws {
    account   = "123456789012"
    role_name = "db-admin"
  }
}

role "db-super" {
  description = "Superuser on production databases"
  privileged  = true
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/cloudsql.superuser"
  }
}

role "org-admin" {
  description = "Organization owner, break-glass only"
  gcp {
    resource = "organizations/1234"
    role     = "roles/owner"
  }
}

jit "self-read" {
  roles            = ["db-read"]
  requesters       = ["group:sre@example.com"]
  max_duration     = "2h"
  default_duration = "30m"
  max_renewals     = 1
}

jit "db-admin-approved" {
  roles        = ["db-admin"]
  requesters   = ["group:sre@example.com", "group:sre-leads@example.com"]
  max_duration = "1h"
  ticket_pattern = "^INC-[0-9]+$"
  approval {
    approvers = ["group:sre-leads@example.com"]
  }
}

jit "db-super-two-approvers" {
  roles        = ["db-super"]
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
  approval {
    approvers     = ["group:sre-leads@example.com"]
    min_approvals = 2
  }
}

break_glass "idp-outage" {
  description       = "Identity provider down"
  reasons           = ["identity-provider-outage"]
  accounts          = ["gcp:user:breakglass-1@example.com"]
  roles             = ["org-admin"]
  session_recording = true
  review_within     = "24h"
  notify            = ["security-pager"]
}

notifier "security-pager" {
  type    = "webhook"
  url_env = "SECURITY_WEBHOOK_URL"
}
`

// loadPolicies writes src to a directory and loads it with the real loader.
func loadPolicies(t testing.TB, src string) *policies.Set {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "policies.hcl"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	set, diags := policies.Load(dir)
	if diags.HasErrors() {
		t.Fatalf("loading test policies: %v", diags)
	}
	return set
}

// testClock is the injected clock; the OIDC verifier reads it too.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// signingKey is a key the test identity provider signs with.
type signingKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

var (
	keysOnce                   sync.Once
	issuerRSA, issuerEC, rogue signingKey
)

func testKeys() {
	keysOnce.Do(func() {
		r, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		e, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		o, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		issuerRSA = signingKey{kid: "rsa-1", alg: jose.RS256, priv: r}
		issuerEC = signingKey{kid: "ec-1", alg: jose.ES256, priv: e}
		rogue = signingKey{kid: "ec-1", alg: jose.ES256, priv: o} // the issuer's key ID, not its key
	})
}

// newIdP serves an OpenID Connect discovery document and the issuer's
// public keys on 127.0.0.1.
func newIdP(t testing.TB) *httptest.Server {
	t.Helper()
	testKeys()
	var srv *httptest.Server
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                srv.URL,
			"jwks_uri":                              srv.URL + "/keys",
			"authorization_endpoint":                srv.URL + "/authorize",
			"token_endpoint":                        srv.URL + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		var set jose.JSONWebKeySet
		for _, k := range []signingKey{issuerRSA, issuerEC} {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	})
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

const testAudience = "elevate-api"

// signJWT makes a compact JWS of claims with key.
func signJWT(t testing.TB, key signingKey, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: key.alg, Key: jose.JSONWebKey{Key: key.priv, KeyID: key.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Identities of the tests, by name.
const (
	anonymous  = "anonymous"
	requester  = "requester"  // alice, group sre (OIDC, RS256)
	other      = "other"      // bob, group sre (OIDC, ES256)
	approver   = "approver"   // carol, group sre-leads (OIDC)
	approver2  = "approver2"  // erin, group sre-leads (static token)
	admin      = "admin"      // root, admin by the server's Admins option (static token)
	breakglass = "breakglass" // breakglass-1, a break-glass account signing in through OIDC
)

// principalOf is each identity's principal.
var principalOf = map[string]string{
	requester:  "user:alice@example.com",
	other:      "user:bob@example.com",
	approver:   "user:carol@example.com",
	approver2:  "user:erin@example.com",
	admin:      "user:root@example.com",
	breakglass: "user:breakglass-1@example.com",
}

// numStaticApprovers is how many extra approvers (approver-0, ...) have
// static tokens, for the concurrency tests.
const numStaticApprovers = 10

func staticApprover(i int) string { return fmt.Sprintf("approver-%d", i) }

// env is a running API server over real HTTP with a real store, real
// policies and real authenticators.
type env struct {
	t      testing.TB
	url    string
	client *http.Client
	api    *Server
	store  state.Store
	clock  *testClock
	idp    *httptest.Server
	tokens map[string]string
	router routers.Router
	// skipDocCheck turns off the OpenAPI response check (benchmarks).
	skipDocCheck bool

	policies atomic.Pointer[policies.Set]

	mu       sync.Mutex
	triggers [][]model.ScopeKey
	logs     *bytes.Buffer
}

// backend opens a store for a test.
type backend struct {
	name string
	open func(t testing.TB, clock *testClock) state.Store
}

func openStore(t testing.TB, url string, clock *testClock) state.Store {
	t.Helper()
	s, err := state.Open(context.Background(), url, state.WithClock(clock.Now))
	if err != nil {
		t.Fatalf("opening store %s: %v", strings.SplitN(url, ":", 2)[0], err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var (
	memBackend    = backend{"mem", func(t testing.TB, c *testClock) state.Store { return openStore(t, "mem:", c) }}
	sqliteBackend = backend{"sqlite", func(t testing.TB, c *testClock) state.Store {
		return openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "state.db"), c)
	}}
	postgresBackend = backend{"postgres", func(t testing.TB, c *testClock) state.Store {
		return openStore(t, pgtest.Schema(t, "elevate_server_test"), c)
	}}
)

// backends are the stores the service tests run on: memory, SQLite, and
// PostgreSQL when ELEVATE_TEST_POSTGRES is set.
func backends() []backend {
	bs := []backend{memBackend, sqliteBackend}
	if pgtest.Configured() {
		bs = append(bs, postgresBackend)
	}
	return bs
}

// newEnv starts a server on b's store with the test policies.
func newEnv(t testing.TB, b backend) *env {
	t.Helper()
	clock := newTestClock()
	e := &env{t: t, clock: clock, tokens: map[string]string{}, logs: &bytes.Buffer{}}
	e.store = b.open(t, clock)
	e.idp = newIdP(t)
	e.policies.Store(loadPolicies(t, testPolicies))

	oidc, err := auth.NewOIDC(auth.OIDCConfig{
		Issuer:     e.idp.URL,
		Audience:   testAudience,
		Now:        clock.Now,
		HTTPClient: e.idp.Client(),
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("NewOIDC: %v", err)
	}
	now := clock.Now()
	e.tokens[requester] = signJWT(t, issuerRSA, e.claims("alice@example.com", now, "sre@example.com"))
	e.tokens[other] = signJWT(t, issuerEC, e.claims("bob@example.com", now, "sre@example.com"))
	e.tokens[approver] = signJWT(t, issuerEC, e.claims("carol@example.com", now, "sre-leads@example.com"))
	e.tokens[breakglass] = signJWT(t, issuerEC, e.claims("breakglass-1@example.com", now))

	var static []auth.StaticToken
	addStatic := func(name, principal string, groups ...string) {
		tok, hash := auth.NewToken()
		st := auth.StaticToken{Name: name, Principal: model.MustPrincipal(principal), SHA256: hash}
		for _, g := range groups {
			st.Groups = append(st.Groups, model.MustPrincipal(g))
		}
		static = append(static, st)
		e.tokens[name] = tok
	}
	addStatic(approver2, principalOf[approver2], "group:sre-leads@example.com")
	addStatic(admin, principalOf[admin])
	for i := range numStaticApprovers {
		addStatic(staticApprover(i), fmt.Sprintf("user:approver%d@example.com", i), "group:sre-leads@example.com")
	}
	st, err := auth.NewStaticTokens(static)
	if err != nil {
		t.Fatalf("NewStaticTokens: %v", err)
	}
	admins, err := auth.ParseAdmins(principalOf[admin])
	if err != nil {
		t.Fatal(err)
	}

	var logMu sync.Mutex
	e.api = New(Options{
		Store:         e.store,
		Policies:      e.policies.Load,
		Authenticator: &auth.Chain{Static: st, OIDC: oidc},
		Admins:        admins,
		Clock:         clock,
		Trigger: func(scopes ...model.ScopeKey) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.triggers = append(e.triggers, scopes)
		},
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			fmt.Fprintln(w, "elevate_grants_active 0")
		}),
		Logger: slog.New(slog.NewTextHandler(&lockedWriter{mu: &logMu, w: e.logs}, nil)),
	})
	srv := httptest.NewServer(e.api.Handler())
	t.Cleanup(srv.Close)
	e.url = srv.URL
	e.client = srv.Client()
	e.router = openAPIRouter(t)
	return e
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// claims is a valid claim set for email at now.
func (e *env) claims(email string, now time.Time, groups ...string) map[string]any {
	return map[string]any{
		"iss":            e.idp.URL,
		"aud":            testAudience,
		"sub":            "sub-" + email,
		"email":          email,
		"email_verified": true,
		"groups":         groups,
		"iat":            now.Unix(),
		"exp":            now.Add(8 * time.Hour).Unix(),
	}
}

// openAPIRouter loads the embedded OpenAPI document for response checks.
func openAPIRouter(t testing.TB) routers.Router {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPIDocument)
	if err != nil {
		t.Fatalf("loading openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI 3 document: %v", err)
	}
	r, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("routing openapi.json: %v", err)
	}
	return r
}

// response is what a call returned.
type response struct {
	status int
	header http.Header
	body   []byte
}

// decode unmarshals the body into v.
func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

// errCode returns the error code of an error body, "" if it is not one.
func (r response) errCode() string {
	var b struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.body, &b)
	return b.Error.Code
}

// grant decodes a grant view body.
func (r response) grant(t testing.TB) GrantView {
	t.Helper()
	var g GrantView
	r.decode(t, &g)
	return g
}

// rawBody is a request body sent as is, with its Content-Type.
type rawBody struct {
	contentType string
	data        []byte
}

// call sends a request as who (an identity name, or anonymous) and checks
// the response against the OpenAPI document: its status must be
// documented for the operation and its body must match the schema.
func (e *env) call(method, path, who string, body any) response {
	e.t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case rawBody:
		rd, ct = bytes.NewReader(b.data), b.contentType
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd, ct = bytes.NewReader(data), "application/json"
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if who != anonymous {
		tok, ok := e.tokens[who]
		if !ok {
			tok = who // a raw token
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, body: data}
	e.checkDocumented(req, r)
	return r
}

// checkDocumented validates a response against the OpenAPI document.
func (e *env) checkDocumented(req *http.Request, r response) {
	e.t.Helper()
	if e.skipDocCheck {
		return
	}
	route, params, err := e.router.FindRoute(req)
	if err != nil {
		return // 404 and 405 answers for paths or methods the API does not have
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 r.status,
		Header:                 r.header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(r.body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		e.t.Errorf("%s %s -> %d does not match openapi.json: %v\nbody: %s", req.Method, req.URL.Path, r.status, err, r.body)
	}
}

// request asks for role as who and returns the stored grant.
func (e *env) request(who string, body map[string]any) GrantView {
	e.t.Helper()
	r := e.call("POST", "/v1/requests", who, body)
	if r.status != http.StatusCreated {
		e.t.Fatalf("POST /v1/requests as %s = %d %s", who, r.status, r.body)
	}
	return r.grant(e.t)
}

// pendingAdmin is a pending db-admin request by the requester.
func (e *env) pendingAdmin() GrantView {
	e.t.Helper()
	g := e.request(requester, map[string]any{"role": "db-admin", "duration": "45m", "justification": "INC-7 failover", "ticket": "INC-7"})
	if g.Status != "pending" {
		e.t.Fatalf("db-admin request is %s, want pending", g.Status)
	}
	return g
}

// approvedRead is an approved self-service db-read grant of the requester.
func (e *env) approvedRead() GrantView {
	e.t.Helper()
	g := e.request(requester, map[string]any{"role": "db-read", "justification": "slow query"})
	if g.Status != "approved" {
		e.t.Fatalf("db-read request is %s, want approved", g.Status)
	}
	return g
}

func (e *env) triggerCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.triggers)
}

func (e *env) lastTrigger() []model.ScopeKey {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.triggers) == 0 {
		return nil
	}
	return e.triggers[len(e.triggers)-1]
}

// slogTo returns a text logger writing to w.
func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(&lockedWriter{mu: &sync.Mutex{}, w: w}, nil))
}
