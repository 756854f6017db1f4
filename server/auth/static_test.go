package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/server/auth"
)

func TestHashToken(t *testing.T) {
	// SHA-256("abc"), FIPS 180-2 appendix B.1.
	if got := auth.HashToken("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("HashToken(abc) = %s", got)
	}
}

func TestNewToken(t *testing.T) {
	tok, hash := auth.NewToken()
	if !regexp.MustCompile(`^elv_[A-Za-z0-9_-]{43}$`).MatchString(tok) {
		t.Errorf("token %q is not elv_ and 43 base64url characters (256 bits)", tok)
	}
	if hash != auth.HashToken(tok) {
		t.Errorf("hash %s is not HashToken(token)", hash)
	}
	tok2, _ := auth.NewToken()
	if tok == tok2 {
		t.Error("two NewToken calls gave the same token")
	}
}

func staticFixture(t *testing.T) (*auth.StaticTokens, map[string]string) {
	t.Helper()
	ciTok, ciHash := auth.NewToken()
	adminTok, adminHash := auth.NewToken()
	devTok, devHash := auth.NewToken()
	legacy := "a-token-without-the-prefix-0123456789"
	s, err := auth.NewStaticTokens([]auth.StaticToken{
		{Name: "ci", Principal: model.MustPrincipal("serviceAccount:ci@example.com"), Groups: principals("group:deployers"), SHA256: ciHash},
		{Name: "ops", Principal: model.MustPrincipal("user:ops@example.com"), Admin: true, SHA256: strings.ToUpper(adminHash)},
		{Name: "dev", Principal: model.MustPrincipal("user:dev@example.com"), Dev: true, Admin: true, SHA256: "sha256:" + devHash},
		{Name: "legacy", Principal: model.MustPrincipal("user:legacy@example.com"), SHA256: auth.HashToken(legacy)},
	})
	if err != nil {
		t.Fatalf("NewStaticTokens: %v", err)
	}
	return s, map[string]string{"ci": ciTok, "ops": adminTok, "dev": devTok, "legacy": legacy}
}

func TestStaticTokensLookup(t *testing.T) {
	s, toks := staticFixture(t)
	cases := []struct {
		name  string
		token string
		want  *auth.Identity
	}{
		{"right", toks["ci"], &auth.Identity{Principal: model.MustPrincipal("serviceAccount:ci@example.com"),
			Groups: principals("group:deployers"), Method: auth.MethodStatic, Subject: "static:ci"}},
		{"admin, hash configured in upper case", toks["ops"], &auth.Identity{Principal: model.MustPrincipal("user:ops@example.com"),
			Method: auth.MethodStatic, Admin: true, Subject: "static:ops"}},
		{"dev token, hash with sha256: prefix", toks["dev"], &auth.Identity{Principal: model.MustPrincipal("user:dev@example.com"),
			Method: auth.MethodDev, Admin: true, Subject: "static:dev"}},
		{"without the elv_ prefix", toks["legacy"], &auth.Identity{Principal: model.MustPrincipal("user:legacy@example.com"),
			Method: auth.MethodStatic, Subject: "static:legacy"}},
		{"wrong", toks["ci"][:len(toks["ci"])-1] + "x", nil},
		{"empty", "", nil},
		{"the hash instead of the token", auth.HashToken(toks["ci"]), nil},
		{"token with trailing space", toks["ci"] + " ", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := s.Lookup(tc.token)
			if ok != (tc.want != nil) {
				t.Fatalf("Lookup ok = %v, want %v", ok, tc.want != nil)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("identity (-want +got):\n%s", diff)
			}
		})
	}
	// The identity is a copy: changing it does not change the configuration.
	id, _ := s.Lookup(toks["ci"])
	id.Groups[0] = model.MustPrincipal("group:admins")
	id.Admin = true
	again, _ := s.Lookup(toks["ci"])
	if again.Admin || again.Groups[0].String() != "group:deployers" {
		t.Errorf("a returned identity aliases the configuration: %+v", again)
	}
}

func TestNewStaticTokensRejects(t *testing.T) {
	_, h := auth.NewToken()
	alice := model.MustPrincipal("user:alice@example.com")
	cases := []struct {
		name   string
		tokens []auth.StaticToken
		want   string
	}{
		{"no name", []auth.StaticToken{{Principal: alice, SHA256: h}}, "has no name"},
		{"duplicate name", []auth.StaticToken{{Name: "a", Principal: alice, SHA256: h}, {Name: "a", Principal: alice, SHA256: auth.HashToken("x")}}, "configured twice"},
		{"no principal", []auth.StaticToken{{Name: "a", SHA256: h}}, "has no principal"},
		{"group principal", []auth.StaticToken{{Name: "a", Principal: model.MustPrincipal("group:sre"), SHA256: h}}, "names a group"},
		{"group that is a user", []auth.StaticToken{{Name: "a", Principal: alice, Groups: []model.Principal{alice}, SHA256: h}}, "is not a group:NAME"},
		{"plaintext token as hash", []auth.StaticToken{{Name: "a", Principal: alice, SHA256: "elv_secret"}}, "64 hex digits"},
		{"short hash", []auth.StaticToken{{Name: "a", Principal: alice, SHA256: h[:40]}}, "64 hex digits"},
		{"hash of empty", []auth.StaticToken{{Name: "a", Principal: alice, SHA256: auth.HashToken("")}}, "empty string"},
		{"same hash twice", []auth.StaticToken{{Name: "a", Principal: alice, SHA256: h}, {Name: "b", Principal: alice, SHA256: strings.ToUpper(h)}}, "same hash"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := auth.NewStaticTokens(tc.tokens)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func bearer(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v1/grants", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

func TestBearerToken(t *testing.T) {
	cases := []struct {
		name    string
		headers []string
		want    string
		wantErr error
	}{
		{"bearer", []string{"Bearer abc.def"}, "abc.def", nil},
		{"scheme is case-insensitive", []string{"bearer abc"}, "abc", nil},
		{"missing", nil, "", auth.ErrNoCredentials},
		{"basic", []string{"Basic dXNlcjpwYXNz"}, "", auth.ErrInvalidToken},
		{"empty token", []string{"Bearer "}, "", auth.ErrInvalidToken},
		{"scheme only", []string{"Bearer"}, "", auth.ErrInvalidToken},
		{"two headers", []string{"Bearer a", "Bearer b"}, "", auth.ErrInvalidToken},
		{"space inside", []string{"Bearer a b"}, "", auth.ErrInvalidToken},
		{"oversized", []string{"Bearer " + strings.Repeat("a", auth.MaxTokenBytes+1)}, "", auth.ErrInvalidToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, h := range tc.headers {
				r.Header.Add("Authorization", h)
			}
			got, err := auth.BearerToken(r)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("token = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestChain(t *testing.T) {
	idp := newIdP(t)
	clock := newClock()
	static, toks := staticFixture(t)
	admins, err := auth.ParseAdmins("group:platform-admins", "user:root@example.com")
	if err != nil {
		t.Fatal(err)
	}
	chain := &auth.Chain{Static: static, OIDC: idp.verifier(t, clock), Admins: admins}
	ctx := context.Background()

	// A static token is found without asking the identity provider.
	id, err := chain.Authenticate(ctx, bearer(toks["ci"]))
	if err != nil || id.Principal.String() != "serviceAccount:ci@example.com" || id.Method != auth.MethodStatic || id.Admin {
		t.Fatalf("static token: id=%+v err=%v", id, err)
	}
	// An unknown elv_ token is rejected without being sent to OIDC.
	_, err = chain.Authenticate(ctx, bearer("elv_not.a.jwt"))
	if !errors.Is(err, auth.ErrInvalidToken) || !strings.Contains(err.Error(), "static token is not known") {
		t.Errorf("unknown elv_ token: err = %v", err)
	}
	if idp.discoveryHits.Load()+idp.jwksHits.Load() != 0 {
		t.Error("static tokens made the chain contact the identity provider")
	}
	// Something that is neither.
	if _, err := chain.Authenticate(ctx, bearer("opaque-token")); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("opaque token: err = %v, want ErrInvalidToken", err)
	}
	if _, err := chain.Authenticate(ctx, bearer("")); !errors.Is(err, auth.ErrNoCredentials) {
		t.Errorf("no header: err = %v, want ErrNoCredentials", err)
	}

	// An OIDC token; admin through a group.
	c := idp.claims(clock.Now())
	id, err = chain.Authenticate(ctx, bearer(sign(t, rsaKey1, c)))
	if err != nil || id.Method != auth.MethodOIDC || id.Admin {
		t.Fatalf("OIDC token: id=%+v err=%v", id, err)
	}
	c["groups"] = []string{"sre@example.com", "platform-admins"}
	id, err = chain.Authenticate(ctx, bearer(sign(t, rsaKey1, c)))
	if err != nil || !id.Admin {
		t.Errorf("member of group:platform-admins should be admin: id=%+v err=%v", id, err)
	}
	c = idp.claims(clock.Now())
	c["email"] = "ROOT@example.com"
	id, err = chain.Authenticate(ctx, bearer(sign(t, rsaKey1, c)))
	if err != nil || !id.Admin {
		t.Errorf("user:root@example.com (any case) should be admin: id=%+v err=%v", id, err)
	}

	// Without OIDC, a JWT is just an unknown token.
	staticOnly := &auth.Chain{Static: static}
	if _, err := staticOnly.Authenticate(ctx, bearer(sign(t, rsaKey1, idp.claims(clock.Now())))); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("JWT without OIDC configured: err = %v", err)
	}
}

func TestParseAdminsRejectsBadPrincipals(t *testing.T) {
	if _, err := auth.ParseAdmins("alice@example.com"); err == nil || !strings.Contains(err.Error(), "no kind prefix") {
		t.Errorf("err = %v, want a principal syntax error", err)
	}
	if _, err := auth.NewAdmins(model.Principal{}); err == nil {
		t.Error("an empty admin principal was accepted")
	}
}
