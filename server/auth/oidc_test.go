package auth_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/server/auth"
)

func principals(ss ...string) []model.Principal {
	var out []model.Principal
	for _, s := range ss {
		out = append(out, model.MustPrincipal(s))
	}
	return out
}

func TestOIDCValidTokens(t *testing.T) {
	idp := newIdP(t)
	clock := newClock()
	v := idp.verifier(t, clock)
	now := clock.Now()

	for _, key := range []signingKey{rsaKey1, ecKey1} {
		t.Run(string(key.alg), func(t *testing.T) {
			id, err := v.VerifyToken(context.Background(), sign(t, key, idp.claims(now)))
			if err != nil {
				t.Fatalf("VerifyToken: %v", err)
			}
			want := &auth.Identity{
				Principal: model.MustPrincipal("user:alice@example.com"),
				Groups:    principals("group:sre@example.com", "group:oncall@example.com"),
				Method:    auth.MethodOIDC,
				Subject:   "oidc:00u-alice",
			}
			if diff := cmp.Diff(want, id); diff != "" {
				t.Errorf("identity (-want +got):\n%s", diff)
			}
		})
	}
	if got := idp.discoveryHits.Load(); got != 1 {
		t.Errorf("discovery fetched %d times, want 1 (cached after the first token)", got)
	}
	if got := idp.jwksHits.Load(); got != 1 {
		t.Errorf("keys fetched %d times, want 1 (both keys come in one set)", got)
	}
}

// tamper replaces the payload of a compact JWS, keeping header and signature.
func tamper(t *testing.T, token string, edit func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	edit(c)
	b, _ := json.Marshal(c)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// unsigned builds a compact token with a hand-written header and no or a
// fake signature.
func unsigned(header map[string]any, claims map[string]any, sig string) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "." + sig
}

// hmacWithPublicKey signs claims with HS256 using the issuer's RSA public
// key (PEM) as the secret: the classic algorithm-confusion attack.
func hmacWithPublicKey(t *testing.T, claims map[string]any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(rsaKey1.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: jose.JSONWebKey{Key: secret, KeyID: rsaKey1.kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := jws.CompactSerialize()
	return s
}

func TestOIDCRejects(t *testing.T) {
	idp := newIdP(t)
	clock := newClock()
	now := clock.Now()
	with := func(edit func(map[string]any)) map[string]any {
		c := idp.claims(now)
		edit(c)
		return c
	}
	valid := sign(t, rsaKey1, idp.claims(now))

	cases := []struct {
		name   string
		token  string
		reason string // substring of the error message
	}{
		{"expired", sign(t, rsaKey1, with(func(c map[string]any) { c["exp"] = now.Add(-2 * time.Minute).Unix() })), "expired at 2026-11-29T11:58:00Z"},
		{"expired exactly at skew edge", sign(t, rsaKey1, with(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })), "expired"},
		{"not yet valid", sign(t, rsaKey1, with(func(c map[string]any) { c["nbf"] = now.Add(10 * time.Minute).Unix() })), "not valid before 2026-11-29T12:10:00Z"},
		{"issued in the future", sign(t, rsaKey1, with(func(c map[string]any) { c["iat"] = now.Add(10 * time.Minute).Unix() })), "issued in the future"},
		{"no exp", sign(t, rsaKey1, with(func(c map[string]any) { delete(c, "exp") })), "no exp claim"},
		{"exp not a number", sign(t, rsaKey1, with(func(c map[string]any) { c["exp"] = "tomorrow" })), "claims could not be decoded"},
		{"wrong audience", sign(t, rsaKey1, with(func(c map[string]any) { c["aud"] = "another-app" })), `another audience, not "elevate-test"`},
		{"audience list without ours", sign(t, rsaKey1, with(func(c map[string]any) { c["aud"] = []string{"a", "b"} })), "another audience"},
		{"wrong issuer", sign(t, rsaKey1, with(func(c map[string]any) { c["iss"] = "https://evil.example.com" })), `issued by "https://evil.example.com", not by the configured issuer`},
		{"issuer with trailing slash", sign(t, rsaKey1, with(func(c map[string]any) { c["iss"] = idp.issuer() + "/" })), "not by the configured issuer"},
		{"unknown key with a known kid", sign(t, rsaOther, idp.claims(now)), "signature does not verify"},
		{"unknown key and kid", sign(t, ecOther, idp.claims(now)), "signature does not verify"},
		{"tampered payload", tamper(t, valid, func(c map[string]any) { c["email"] = "mallory@example.com" }), "signature does not verify"},
		{"tampered groups", tamper(t, valid, func(c map[string]any) { c["groups"] = []string{"admins"} }), "signature does not verify"},
		{"signature stripped", strings.Join(strings.Split(valid, ".")[:2], ".") + ".", "signature does not verify"},
		{"alg none", unsigned(map[string]any{"alg": "none", "typ": "JWT"}, idp.claims(now), ""), `algorithm "none"`},
		{"alg none with the RS256 signature", unsigned(map[string]any{"alg": "none", "kid": "rsa-1"}, idp.claims(now), strings.Split(valid, ".")[2]), `algorithm "none"`},
		{"HS256 with the public key as secret", hmacWithPublicKey(t, idp.claims(now)), `algorithm "HS256"`},
		{"RS384 not in the allow-list", sign(t, signingKey{kid: "rsa-1", alg: jose.RS384, priv: rsaKey1.priv}, idp.claims(now)), `algorithm "RS384"`},
		{"missing email", sign(t, rsaKey1, with(func(c map[string]any) { delete(c, "email") })), "no email claim"},
		{"email not a string", sign(t, rsaKey1, with(func(c map[string]any) { c["email"] = 42 })), "email claim is not a non-empty string"},
		{"email not an address", sign(t, rsaKey1, with(func(c map[string]any) { c["email"] = "alice" })), `email claim "alice" is not an email address`},
		{"email_verified false", sign(t, rsaKey1, with(func(c map[string]any) { c["email_verified"] = false })), "email_verified is false"},
		{"email_verified \"false\"", sign(t, rsaKey1, with(func(c map[string]any) { c["email_verified"] = "false" })), "email_verified is false"},
		{"email_verified nonsense", sign(t, rsaKey1, with(func(c map[string]any) { c["email_verified"] = "yes" })), "neither true nor false"},
		{"groups a string", sign(t, rsaKey1, with(func(c map[string]any) { c["groups"] = "sre@example.com" })), "groups claim is not an array of strings"},
		{"groups an object", sign(t, rsaKey1, with(func(c map[string]any) { c["groups"] = map[string]any{"sre": true} })), "groups claim is not an array of strings"},
		{"groups with a number", sign(t, rsaKey1, with(func(c map[string]any) { c["groups"] = []any{"sre", 7} })), "groups claim is not an array of strings"},
		{"not a JWT at all", "a.b.c", "not a well-formed signed JWT"},
	}
	v := idp.verifier(t, clock)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := v.VerifyToken(context.Background(), tc.token)
			if err == nil {
				t.Fatalf("VerifyToken accepted the token: %+v", id)
			}
			if !errors.Is(err, auth.ErrInvalidToken) {
				t.Errorf("error %v does not wrap ErrInvalidToken", err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %q does not say %q", err, tc.reason)
			}
			for _, part := range strings.Split(tc.token, ".") {
				if len(part) > 8 && strings.Contains(err.Error(), part) {
					t.Errorf("error %q echoes part of the token", err)
				}
			}
		})
	}
}

func TestOIDCAcceptsWithinSkewAndClaimVariants(t *testing.T) {
	idp := newIdP(t)
	clock := newClock()
	now := clock.Now()
	v := idp.verifier(t, clock)
	cases := []struct {
		name       string
		edit       func(map[string]any)
		wantGroups []model.Principal
	}{
		{"expired 30s ago, within the default 1m skew", func(c map[string]any) { c["exp"] = now.Add(-30 * time.Second).Unix() }, principals("group:sre@example.com", "group:oncall@example.com")},
		{"nbf 30s ahead, within skew", func(c map[string]any) { c["nbf"] = now.Add(30 * time.Second).Unix() }, principals("group:sre@example.com", "group:oncall@example.com")},
		{"fractional exp", func(c map[string]any) { c["exp"] = float64(now.Add(time.Hour).Unix()) + 0.5 }, principals("group:sre@example.com", "group:oncall@example.com")},
		{"audience among several", func(c map[string]any) { c["aud"] = []string{"other", testAudience} }, principals("group:sre@example.com", "group:oncall@example.com")},
		{"email_verified absent", func(c map[string]any) { delete(c, "email_verified") }, principals("group:sre@example.com", "group:oncall@example.com")},
		{"email_verified \"true\"", func(c map[string]any) { c["email_verified"] = "true" }, principals("group:sre@example.com", "group:oncall@example.com")},
		{"no groups claim", func(c map[string]any) { delete(c, "groups") }, nil},
		{"groups null", func(c map[string]any) { c["groups"] = nil }, nil},
		{"groups empty", func(c map[string]any) { c["groups"] = []string{} }, nil},
		{"groups already prefixed, duplicated, or unusable", func(c map[string]any) {
			c["groups"] = []string{"group:sre@example.com", "SRE@example.com", "Domain Users", "a:b"}
		}, principals("group:sre@example.com")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := idp.claims(now)
			tc.edit(c)
			id, err := v.VerifyToken(context.Background(), sign(t, rsaKey1, c))
			if err != nil {
				t.Fatalf("VerifyToken: %v", err)
			}
			if diff := cmp.Diff(tc.wantGroups, id.Groups); diff != "" {
				t.Errorf("groups (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOIDCConfigurableClaimsAndSkew(t *testing.T) {
	idp := newIdP(t)
	clock := newClock()
	now := clock.Now()
	cfg := idp.config(clock)
	cfg.PrincipalClaim = "upn"
	cfg.GroupsClaim = "roles"
	cfg.ClockSkew = 5 * time.Second
	v, err := auth.NewOIDC(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := idp.claims(now)
	c["upn"] = "Bob@Contoso.example"
	c["email_verified"] = false // only checked when the principal comes from email
	c["roles"] = []string{"db-admins"}
	id, err := v.VerifyToken(context.Background(), sign(t, ecKey1, c))
	if err != nil {
		t.Fatalf("VerifyToken: %v", err)
	}
	if id.Principal.String() != "user:Bob@Contoso.example" || !id.Is(model.MustPrincipal("user:bob@contoso.example")) {
		t.Errorf("principal = %s, want user:Bob@Contoso.example", id.Principal)
	}
	if diff := cmp.Diff(principals("group:db-admins"), id.Groups); diff != "" {
		t.Errorf("groups from the roles claim (-want +got):\n%s", diff)
	}
	c["exp"] = now.Add(-30 * time.Second).Unix()
	if _, err := v.VerifyToken(context.Background(), sign(t, ecKey1, c)); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("30s past exp with a 5s skew: err = %v, want ErrInvalidToken", err)
	}
}

func TestOIDCKeyRotation(t *testing.T) {
	idp := newIdP(t, rsaKey1)
	clock := newClock()
	v := idp.verifier(t, clock)
	ctx := context.Background()

	if _, err := v.VerifyToken(ctx, sign(t, rsaKey1, idp.claims(clock.Now()))); err != nil {
		t.Fatalf("token with the first key: %v", err)
	}
	// The issuer rotates: rsa-2 replaces rsa-1.
	idp.publish(rsaKey2)
	clock.Advance(auth.DefaultKeyRefreshInterval + time.Second)
	id, err := v.VerifyToken(ctx, sign(t, rsaKey2, idp.claims(clock.Now())))
	if err != nil {
		t.Fatalf("token with the new key id: %v (the verifier should refetch the keys)", err)
	}
	if id.Principal.String() != "user:alice@example.com" {
		t.Errorf("principal = %s", id.Principal)
	}
	if got := idp.jwksHits.Load(); got != 2 {
		t.Errorf("keys fetched %d times, want 2 (once at start, once for the new kid)", got)
	}
	// The withdrawn key is no longer trusted once the set was refetched.
	if _, err := v.VerifyToken(ctx, sign(t, rsaKey1, idp.claims(clock.Now()))); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("token with the withdrawn key: err = %v, want ErrInvalidToken", err)
	}
}

func TestOIDCRefetchIsRateLimited(t *testing.T) {
	idp := newIdP(t, rsaKey1)
	clock := newClock()
	v := idp.verifier(t, clock)
	ctx := context.Background()
	if _, err := v.VerifyToken(ctx, sign(t, rsaKey1, idp.claims(clock.Now()))); err != nil {
		t.Fatal(err)
	}
	// A stream of tokens with made-up key IDs within one refresh interval
	// causes at most one more fetch.
	for i := range 20 {
		k := ecOther
		k.kid = fmt.Sprintf("made-up-%d", i)
		if _, err := v.VerifyToken(ctx, sign(t, k, idp.claims(clock.Now()))); !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("made-up kid %d: err = %v, want ErrInvalidToken", i, err)
		}
		clock.Advance(100 * time.Millisecond)
	}
	if got := idp.jwksHits.Load(); got != 1 {
		t.Errorf("keys fetched %d times within one refresh interval, want 1", got)
	}
	// A new key published just now is picked up once the interval passed.
	idp.publish(rsaKey1, rsaKey2)
	if _, err := v.VerifyToken(ctx, sign(t, rsaKey2, idp.claims(clock.Now()))); err == nil {
		t.Fatal("new kid accepted although the refresh interval had not passed; the rate limit is not applied")
	}
	clock.Advance(auth.DefaultKeyRefreshInterval)
	if _, err := v.VerifyToken(ctx, sign(t, rsaKey2, idp.claims(clock.Now()))); err != nil {
		t.Fatalf("new kid after the refresh interval: %v", err)
	}
}

func TestOIDCKeyCacheTTL(t *testing.T) {
	idp := newIdP(t, rsaKey1, rsaKey2)
	clock := newClock()
	v := idp.verifier(t, clock)
	ctx := context.Background()
	if _, err := v.VerifyToken(ctx, sign(t, rsaKey1, idp.claims(clock.Now()))); err != nil {
		t.Fatal(err)
	}
	// rsa-1 is withdrawn (say, compromised); tokens with it keep verifying
	// from the cache until the TTL passes, then the set is fetched again.
	idp.publish(rsaKey2)
	clock.Advance(auth.DefaultKeyCacheTTL + time.Second)
	if _, err := v.VerifyToken(ctx, sign(t, rsaKey1, idp.claims(clock.Now()))); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("withdrawn key after the cache TTL: err = %v, want ErrInvalidToken", err)
	}
	if _, err := v.VerifyToken(ctx, sign(t, rsaKey2, idp.claims(clock.Now()))); err != nil {
		t.Errorf("current key after the cache TTL: %v", err)
	}
	if got := idp.jwksHits.Load(); got != 2 {
		t.Errorf("keys fetched %d times, want 2", got)
	}
}

func TestOIDCConfiguredJWKSURLSkipsDiscovery(t *testing.T) {
	idp := newIdP(t)
	clock := newClock()
	cfg := idp.config(clock)
	cfg.JWKSURL = idp.issuer() + "/keys"
	v, err := auth.NewOIDC(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Prefetch(context.Background()); err != nil {
		t.Fatalf("Prefetch: %v", err)
	}
	if _, err := v.VerifyToken(context.Background(), sign(t, ecKey1, idp.claims(clock.Now()))); err != nil {
		t.Fatal(err)
	}
	if got := idp.discoveryHits.Load(); got != 0 {
		t.Errorf("discovery fetched %d times with a configured JWKS URL, want 0", got)
	}
	if got := idp.jwksHits.Load(); got != 1 {
		t.Errorf("keys fetched %d times, want 1 (Prefetch, then the cache)", got)
	}
}

func TestOIDCProviderUnavailable(t *testing.T) {
	idp := newIdP(t)
	clock := newClock()
	v := idp.verifier(t, clock)
	ctx := context.Background()
	idp.setJWKSStatus(http.StatusInternalServerError)

	token := sign(t, rsaKey1, idp.claims(clock.Now()))
	_, err := v.VerifyToken(ctx, token)
	if !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("keys unreachable: err = %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "could not be fetched") || strings.Contains(err.Error(), "500") {
		t.Errorf("caller-facing reason %q should say the keys could not be fetched and keep the cause for logs", err)
	}
	var ae *auth.Error
	if !errors.As(err, &ae) || ae.Cause == nil || !strings.Contains(ae.Cause.Error(), "500") {
		t.Errorf("the cause for operators should carry the HTTP status: %#v", ae)
	}
	if err := v.Prefetch(ctx); err == nil {
		t.Error("Prefetch succeeded while the keys are unreachable")
	}

	idp.setJWKSStatus(http.StatusOK)
	clock.Advance(auth.DefaultKeyRefreshInterval)
	if _, err := v.VerifyToken(ctx, sign(t, rsaKey1, idp.claims(clock.Now()))); err != nil {
		t.Fatalf("after the provider recovered: %v", err)
	}
}

func TestOIDCDiscoveryIssuerMismatch(t *testing.T) {
	idp := newIdP(t)
	idp.issuerDoc = "https://someone-else.example.com"
	clock := newClock()
	v := idp.verifier(t, clock)
	err := v.Prefetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "someone-else") {
		t.Fatalf("Prefetch with a discovery document for another issuer: err = %v, want an issuer mismatch", err)
	}
	if _, err := v.VerifyToken(context.Background(), sign(t, rsaKey1, idp.claims(clock.Now()))); !errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("VerifyToken: err = %v, want ErrUnavailable", err)
	}
	if got := idp.jwksHits.Load(); got != 0 {
		t.Errorf("keys fetched %d times from an issuer that failed discovery, want 0", got)
	}
}

func TestNewOIDCRejectsUnsafeConfig(t *testing.T) {
	base := auth.OIDCConfig{Issuer: "https://idp.example.com", Audience: "elevate"}
	if _, err := auth.NewOIDC(base); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	cases := []struct {
		name string
		edit func(*auth.OIDCConfig)
		want string
	}{
		{"no issuer", func(c *auth.OIDCConfig) { c.Issuer = "" }, "not an absolute URL"},
		{"relative issuer", func(c *auth.OIDCConfig) { c.Issuer = "idp.example.com" }, "not an absolute URL"},
		{"plain http", func(c *auth.OIDCConfig) { c.Issuer = "http://idp.example.com" }, "uses plain http"},
		{"issuer with query", func(c *auth.OIDCConfig) { c.Issuer = "https://idp.example.com/?x=1" }, "query or fragment"},
		{"plain http JWKS", func(c *auth.OIDCConfig) { c.JWKSURL = "http://idp.example.com/keys" }, "uses plain http"},
		{"no audience", func(c *auth.OIDCConfig) { c.Audience = " " }, "audience is empty"},
		{"alg none", func(c *auth.OIDCConfig) { c.Algorithms = []string{"RS256", "none"} }, `algorithm "none" is not allowed`},
		{"alg HS256", func(c *auth.OIDCConfig) { c.Algorithms = []string{"HS256"} }, `algorithm "HS256" is not allowed`},
		{"skew too large", func(c *auth.OIDCConfig) { c.ClockSkew = time.Hour }, "clock skew 1h0m0s is out of range"},
		{"negative skew", func(c *auth.OIDCConfig) { c.ClockSkew = -time.Second }, "out of range"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.edit(&cfg)
			_, err := auth.NewOIDC(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
	loop := base
	loop.Issuer = "http://127.0.0.1:5556/dex"
	if _, err := auth.NewOIDC(loop); err != nil {
		t.Errorf("http on loopback should be allowed for development: %v", err)
	}
	o, _ := auth.NewOIDC(base)
	got := o.Config()
	if got.PrincipalClaim != "email" || got.GroupsClaim != "groups" || got.ClockSkew != time.Minute ||
		!cmp.Equal(got.Algorithms, []string{"RS256", "ES256"}) {
		t.Errorf("defaults not applied: %+v", got)
	}
}

func TestOIDCConcurrentVerification(t *testing.T) {
	idp := newIdP(t)
	clock := newClock()
	v := idp.verifier(t, clock)
	tokens := []string{
		sign(t, rsaKey1, idp.claims(clock.Now())),
		sign(t, ecKey1, idp.claims(clock.Now())),
		sign(t, ecOther, idp.claims(clock.Now())),
	}
	var wg sync.WaitGroup
	errs := make(chan error, 60)
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := v.VerifyToken(context.Background(), tokens[i%3])
			if (i%3 == 2) != (err != nil) {
				errs <- fmt.Errorf("token %d: err = %v", i%3, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := idp.jwksHits.Load(); got != 1 {
		t.Errorf("keys fetched %d times by 60 concurrent requests, want 1", got)
	}
}

func TestOIDCReasonsClipLongClaimValues(t *testing.T) {
	idp := newIdP(t)
	clock := newClock()
	v := idp.verifier(t, clock)
	c := idp.claims(clock.Now())
	c["iss"] = "https://" + strings.Repeat("é", 200)
	_, err := v.VerifyToken(context.Background(), sign(t, rsaKey1, c))
	if err == nil {
		t.Fatal("accepted a foreign issuer")
	}
	if !utf8.ValidString(err.Error()) || len(err.Error()) > 300 || !strings.Contains(err.Error(), "…") {
		t.Errorf("reason is not a short valid UTF-8 sentence: %q", err)
	}
}
