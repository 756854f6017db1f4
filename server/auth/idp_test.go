package auth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/elevatehq/elevate/server/auth"
)

// signingKey is a key the test identity provider signs with.
type signingKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

var (
	keysOnce                   sync.Once
	rsaKey1, rsaKey2, rsaOther signingKey
	ecKey1, ecOther            signingKey
)

// testKeys generates the keys once per test binary: RSA generation is the
// slow part of these tests.
func testKeys(t *testing.T) {
	t.Helper()
	keysOnce.Do(func() {
		gen := func(bits int) *rsa.PrivateKey {
			k, err := rsa.GenerateKey(rand.Reader, bits)
			if err != nil {
				panic(err)
			}
			return k
		}
		ec := func() *ecdsa.PrivateKey {
			k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				panic(err)
			}
			return k
		}
		rsaKey1 = signingKey{kid: "rsa-1", alg: jose.RS256, priv: gen(2048)}
		rsaKey2 = signingKey{kid: "rsa-2", alg: jose.RS256, priv: gen(2048)}
		rsaOther = signingKey{kid: "rsa-1", alg: jose.RS256, priv: gen(2048)} // same kid, not the issuer's key
		ecKey1 = signingKey{kid: "ec-1", alg: jose.ES256, priv: ec()}
		ecOther = signingKey{kid: "ec-unknown", alg: jose.ES256, priv: ec()}
	})
}

// testIdP is an OpenID Connect provider on 127.0.0.1 over TLS: discovery
// document and JWKS with real public keys, which a test can rotate or
// break.
type testIdP struct {
	srv *httptest.Server

	mu         sync.Mutex
	published  []signingKey
	jwksStatus int
	issuerDoc  string // issuer in the discovery document; "" = the server's URL

	discoveryHits atomic.Int32
	jwksHits      atomic.Int32
}

func newIdP(t *testing.T, keys ...signingKey) *testIdP {
	t.Helper()
	testKeys(t)
	if len(keys) == 0 {
		keys = []signingKey{rsaKey1, ecKey1}
	}
	idp := &testIdP{published: keys, jwksStatus: http.StatusOK}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		idp.discoveryHits.Add(1)
		idp.mu.Lock()
		iss := idp.issuerDoc
		idp.mu.Unlock()
		if iss == "" {
			iss = idp.srv.URL
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                iss,
			"jwks_uri":                              idp.srv.URL + "/keys",
			"authorization_endpoint":                idp.srv.URL + "/authorize",
			"token_endpoint":                        idp.srv.URL + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		idp.jwksHits.Add(1)
		idp.mu.Lock()
		defer idp.mu.Unlock()
		if idp.jwksStatus != http.StatusOK {
			http.Error(w, "unavailable", idp.jwksStatus)
			return
		}
		var set jose.JSONWebKeySet
		for _, k := range idp.published {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	})
	idp.srv = httptest.NewTLSServer(mux)
	t.Cleanup(idp.srv.Close)
	return idp
}

func (idp *testIdP) issuer() string { return idp.srv.URL }

func (idp *testIdP) publish(keys ...signingKey) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.published = keys
}

func (idp *testIdP) setJWKSStatus(code int) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.jwksStatus = code
}

// fakeClock is the injected clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

const testAudience = "elevate-test"

// config returns a verifier configuration for idp with clock.
func (idp *testIdP) config(clock *fakeClock) auth.OIDCConfig {
	return auth.OIDCConfig{
		Issuer:     idp.issuer(),
		Audience:   testAudience,
		Now:        clock.Now,
		HTTPClient: idp.srv.Client(),
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func (idp *testIdP) verifier(t *testing.T, clock *fakeClock) *auth.OIDC {
	t.Helper()
	o, err := auth.NewOIDC(idp.config(clock))
	if err != nil {
		t.Fatalf("NewOIDC: %v", err)
	}
	return o
}

// claims returns a valid claim set for alice, issued by idp at now.
func (idp *testIdP) claims(now time.Time) map[string]any {
	return map[string]any{
		"iss":            idp.issuer(),
		"aud":            testAudience,
		"sub":            "00u-alice",
		"email":          "alice@example.com",
		"email_verified": true,
		"groups":         []string{"sre@example.com", "oncall@example.com"},
		"iat":            now.Unix(),
		"nbf":            now.Unix(),
		"exp":            now.Add(time.Hour).Unix(),
	}
}

// sign makes a compact JWS of claims with key, as an identity provider does.
func sign(t *testing.T, key signingKey, claims map[string]any) string {
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
