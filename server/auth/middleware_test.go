package auth_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/server/auth"
)

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// whoami answers with the identity the middleware put in the context.
var whoami = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	id, ok := auth.FromContext(r.Context())
	if !ok {
		_, _ = w.Write([]byte("anonymous"))
		return
	}
	_, _ = w.Write([]byte(id.Principal.String() + " " + id.Method))
})

func TestMiddleware(t *testing.T) {
	idp := newIdP(t)
	clock := newClock()
	static, toks := staticFixture(t)
	chain := &auth.Chain{Static: static, OIDC: idp.verifier(t, clock)}
	srv := httptest.NewServer(auth.Middleware(chain)(whoami))
	t.Cleanup(srv.Close)

	badSig := sign(t, rsaOther, idp.claims(clock.Now()))
	cases := []struct {
		name, path, token string
		status            int
		body              string // the whole body for 200, the error code otherwise
		wwwAuth           string
	}{
		{"health without credentials", "/healthz", "", 200, "anonymous", ""},
		{"readiness", "/readyz", "", 200, "anonymous", ""},
		{"metrics", "/metrics", "", 200, "anonymous", ""},
		{"openapi", "/v1/openapi.json", "", 200, "anonymous", ""},
		{"health with a bad token is still health", "/healthz", "elv_wrong", 200, "anonymous", ""},
		{"not exactly an anonymous path", "/healthz/", "", 401, "unauthenticated", `Bearer realm="elevate"`},
		{"API without credentials", "/v1/grants", "", 401, "unauthenticated", `Bearer realm="elevate"`},
		{"API with an unknown static token", "/v1/grants", "elv_wrong", 401, "unauthenticated", `Bearer realm="elevate", error="invalid_token"`},
		{"API with a badly signed JWT", "/v1/grants", badSig, 401, "unauthenticated", `Bearer realm="elevate", error="invalid_token"`},
		{"API with a static token", "/v1/grants", toks["ci"], 200, "serviceAccount:ci@example.com static", ""},
		{"API with an OIDC token", "/v1/grants/g1", sign(t, ecKey1, idp.claims(clock.Now())), 200, "user:alice@example.com oidc", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.status)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tc.wwwAuth {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tc.wwwAuth)
			}
			if tc.status == 200 {
				b, _ := io.ReadAll(resp.Body)
				if string(b) != tc.body {
					t.Errorf("body = %q, want %q", b, tc.body)
				}
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			var eb errorBody
			if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
				t.Fatalf("error body is not JSON: %v", err)
			}
			if eb.Error.Code != tc.body || eb.Error.Message == "" {
				t.Errorf("error = %+v, want code %q and a message", eb.Error, tc.body)
			}
			if tc.token != "" && strings.Contains(eb.Error.Message, tc.token) {
				t.Errorf("the error message echoes the token: %q", eb.Error.Message)
			}
		})
	}
}

func TestMiddlewareUnavailableAndCustomPaths(t *testing.T) {
	idp := newIdP(t)
	clock := newClock()
	idp.setJWKSStatus(http.StatusBadGateway)
	chain := &auth.Chain{OIDC: idp.verifier(t, clock)}
	h := auth.Middleware(chain, auth.WithAnonymousPaths("/livez"))(whoami)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, bearer(sign(t, rsaKey1, idp.claims(clock.Now()))))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503 while the identity provider's keys are unreachable", rec.Code)
	}
	var eb errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Code != auth.CodeAuthUnavailable {
		t.Errorf("body = %s (err %v), want code %s", rec.Body, err, auth.CodeAuthUnavailable)
	}
	if strings.Contains(rec.Body.String(), "502") {
		t.Errorf("the body leaks the upstream failure: %s", rec.Body)
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/livez", nil))
	if rec.Code != 200 || rec.Body.String() != "anonymous" {
		t.Errorf("/livez: %d %q, want 200 anonymous", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("/healthz with a replaced anonymous list: %d, want 401", rec.Code)
	}
}

func TestRefuseBreakGlass(t *testing.T) {
	set := loadAuthzSet(t)
	h := auth.RefuseBreakGlass(func() *policies.Set { return set })(whoami)
	cases := []struct {
		name   string
		id     *auth.Identity
		status int
		body   string
	}{
		{"break-glass account, even as admin", breakGlass, http.StatusForbidden, auth.CodeBreakglassAccount},
		{"break-glass AWS user", breakGlassAWS, http.StatusForbidden, auth.CodeBreakglassAccount},
		{"ordinary caller", requester, http.StatusOK, "user:alice@example.com oidc"},
		{"anonymous path", nil, http.StatusOK, "anonymous"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/v1/grants", nil)
			if tc.id != nil {
				r = r.WithContext(auth.WithIdentity(r.Context(), tc.id))
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tc.status {
				t.Fatalf("status = %d, want %d (%s)", rec.Code, tc.status, rec.Body)
			}
			if tc.status == http.StatusOK {
				if rec.Body.String() != tc.body {
					t.Errorf("body = %q, want %q", rec.Body, tc.body)
				}
				return
			}
			var eb errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Code != tc.body {
				t.Errorf("body = %s, want code %q", rec.Body, tc.body)
			}
		})
	}
}

func TestRefuse(t *testing.T) {
	for code, status := range map[string]int{
		auth.CodeUnauthenticated: 401, auth.CodeSelfApproval: 403, auth.CodeNotPending: 409, auth.CodeAdminOnly: 403,
	} {
		rec := httptest.NewRecorder()
		auth.Refuse(rec, code, "because")
		var eb errorBody
		if rec.Code != status || json.Unmarshal(rec.Body.Bytes(), &eb) != nil || eb.Error.Code != code || eb.Error.Message != "because" {
			t.Errorf("Refuse(%s): %d %s, want %d", code, rec.Code, rec.Body, status)
		}
		if (code == auth.CodeUnauthenticated) != (rec.Header().Get("WWW-Authenticate") != "") {
			t.Errorf("Refuse(%s): WWW-Authenticate = %q", code, rec.Header().Get("WWW-Authenticate"))
		}
	}
}
