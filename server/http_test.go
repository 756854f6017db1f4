package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/elevatehq/elevate/policies"
)

func TestStrictDecoding(t *testing.T) {
	e := newEnv(t, memBackend)
	js := func(s string) rawBody { return rawBody{"application/json", []byte(s)} }
	cases := []struct {
		name   string
		body   rawBody
		status int
		code   string
		msg    string
	}{
		{"unknown field", js(`{"role":"db-read","justification":"x","colour":"red"}`), 400, CodeUnknownField, `unknown field "colour"`},
		{"field in another case", js(`{"Role":"db-read"}`), 400, CodeUnknownField, `unknown field "Role"`},
		{"field given twice", js(`{"role":"db-read","role":"db-admin"}`), 400, CodeInvalidRequest, `"role" is given twice`},
		{"oversized body", js(`{"role":"db-read","justification":"` + strings.Repeat("x", MaxBodyBytes) + `"}`), 413, CodeBodyTooLarge, "64 KiB"},
		{"wrong content type", rawBody{"text/plain", []byte(`{"role":"db-read"}`)}, 415, CodeUnsupportedMedia, "application/json"},
		{"form content type", rawBody{"application/x-www-form-urlencoded", []byte(`role=db-read`)}, 415, CodeUnsupportedMedia, "application/json"},
		{"no content type", rawBody{"", []byte(`{"role":"db-read"}`)}, 415, CodeUnsupportedMedia, "sent none"},
		{"latin-1 charset", rawBody{"application/json; charset=latin1", []byte(`{"role":"db-read"}`)}, 415, CodeUnsupportedMedia, "UTF-8"},
		{"trailing garbage", js(`{"role":"db-read","justification":"x"} garbage`), 400, CodeTrailingData, "after the JSON object"},
		{"two objects", js(`{"role":"db-read","justification":"x"}{"role":"db-admin"}`), 400, CodeTrailingData, "exactly one object"},
		{"malformed", js(`{"role":"db-read",`), 400, CodeMalformedJSON, "not valid JSON"},
		{"not JSON", js(`role=db-read`), 400, CodeMalformedJSON, "not valid JSON"},
		{"array", js(`[{"role":"db-read"}]`), 400, CodeInvalidRequest, "JSON object"},
		{"null", js(`null`), 400, CodeInvalidRequest, "JSON object"},
		{"wrong type", js(`{"role":5}`), 400, CodeInvalidRequest, `"role" must be a JSON string`},
		{"nested unknown", js(`{"role":{"name":"db-read"}}`), 400, CodeInvalidRequest, `"role" must be a JSON string`},
		{"empty body", js(``), 400, CodeEmptyBody, "JSON object body"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.call("POST", "/v1/requests", requester, c.body)
			if r.status != c.status || r.errCode() != c.code {
				t.Fatalf("= %d %s, want %d %s", r.status, r.body, c.status, c.code)
			}
			var b struct {
				Error struct{ Code, Message string }
			}
			r.decode(t, &b)
			if !strings.Contains(b.Error.Message, c.msg) {
				t.Errorf("message %q does not contain %q", b.Error.Message, c.msg)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	// Nothing above was stored.
	if gs := e.listAs(t, admin, ""); len(gs) != 0 {
		t.Errorf("rejected bodies stored %d grants", len(gs))
	}
	// The accepted forms: charset utf-8, and an empty body where every
	// field is optional.
	if r := e.call("POST", "/v1/requests", requester, rawBody{"application/json; charset=UTF-8", []byte(`{"role":"db-read","justification":"x"}`)}); r.status != 201 {
		t.Errorf("charset=UTF-8: %d %s", r.status, r.body)
	}
	g := e.pendingAdmin()
	if r := e.call("POST", "/v1/grants/"+g.ID+"/approve", approver, rawBody{"", nil}); r.status != 200 {
		t.Errorf("approve with no body: %d %s", r.status, r.body)
	}
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	e := newEnv(t, memBackend)
	r := e.call("GET", "/v1/nothing", requester, nil)
	if r.status != 404 || r.errCode() != CodeNotFound {
		t.Errorf("unknown path = %d %s", r.status, r.body)
	}
	r = e.call("DELETE", "/v1/grants/abc", requester, nil)
	if r.status != 405 || r.errCode() != CodeMethodNotAllowed || r.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("DELETE grant = %d %s Allow %q", r.status, r.body, r.header.Get("Allow"))
	}
	r = e.call("GET", "/v1/requests", requester, nil)
	if r.status != 405 || r.header.Get("Allow") != "POST" {
		t.Errorf("GET /v1/requests = %d Allow %q", r.status, r.header.Get("Allow"))
	}
	r = e.call("POST", "/healthz", anonymous, nil)
	if r.status != 405 || r.errCode() != CodeMethodNotAllowed {
		t.Errorf("POST /healthz = %d %s", r.status, r.body)
	}
	if r := e.call("GET", "/healthz", anonymous, nil); string(r.body) != "ok\n" {
		t.Errorf("healthz body %q", r.body)
	}
}

func TestPanicRecoveryAndLogs(t *testing.T) {
	var logs bytes.Buffer
	set := loadPolicies(t, testPolicies)
	s := New(Options{
		Store:    openStore(t, "mem:", newTestClock()),
		Policies: func() *policies.Set { return set },
		Metrics: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
			panic("metrics exploded")
		}),
		Logger: slogTo(&logs),
	})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var b struct{ Error struct{ Code string } }
	_ = json.NewDecoder(resp.Body).Decode(&b)
	resp.Body.Close()
	if resp.StatusCode != 500 || b.Error.Code != CodeInternal {
		t.Errorf("panicking handler = %d %q", resp.StatusCode, b.Error.Code)
	}
	if !strings.Contains(logs.String(), "metrics exploded") || !strings.Contains(logs.String(), "status=500") {
		t.Errorf("the panic is not logged:\n%s", logs.String())
	}
	// The server keeps serving.
	resp, err = http.Get(srv.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz after a panic: %v %v", resp, err)
	}
	resp.Body.Close()
	// No authenticator configured: protected endpoints are 401.
	resp, err = http.Get(srv.URL + "/v1/whoami")
	if err != nil || resp.StatusCode != 401 {
		t.Fatalf("whoami without an authenticator: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestRequestLogsNeverHoldTokens(t *testing.T) {
	e := newEnv(t, memBackend)
	e.request(requester, map[string]any{"role": "db-read", "justification": "x"})
	e.call("GET", "/v1/grants?principal=user:alice@example.com", admin, nil)
	e.call("GET", "/v1/whoami", "elv_wrongtoken", nil)
	logs := e.logs.String()
	for _, want := range []string{
		"method=POST path=/v1/requests status=201", "principal=user:alice@example.com",
		"path=/v1/grants status=200", "principal=user:root@example.com",
		"path=/v1/whoami status=401", "principal=anonymous",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	for name, tok := range e.tokens {
		if strings.Contains(logs, tok) {
			t.Errorf("logs contain %s's token", name)
		}
	}
	if strings.Contains(logs, "elv_wrongtoken") || strings.Contains(logs, "Bearer") {
		t.Errorf("logs contain a presented token or Authorization header:\n%s", logs)
	}
}

func TestReadiness(t *testing.T) {
	e := newEnv(t, memBackend)
	r := e.call("GET", "/readyz", anonymous, nil)
	var rv ReadyView
	r.decode(t, &rv)
	if r.status != 200 || !rv.Ready || len(rv.Failing) != 0 {
		t.Errorf("readyz = %d %s", r.status, r.body)
	}

	store := openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "s.db"), newTestClock())
	s := New(Options{
		Store:    store,
		Policies: func() *policies.Set { return nil },
		Ready:    func(context.Context) []string { return []string{"leader: unknown"} },
	})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	store.Close()
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rv = ReadyView{}
	_ = json.NewDecoder(resp.Body).Decode(&rv)
	want := []string{"store: unreachable", "policies: no policy set loaded", "leader: unknown"}
	if resp.StatusCode != 503 || rv.Ready || !slices.Equal(rv.Failing, want) {
		t.Errorf("readyz = %d %+v, want 503 %v", resp.StatusCode, rv, want)
	}
}

func TestPoliciesEndpoint(t *testing.T) {
	e := newEnv(t, memBackend)
	r := e.call("GET", "/v1/policies", requester, nil)
	var pv PolicyView
	r.decode(t, &pv)
	if pv.Files != 1 || pv.Roles != 4 || pv.JIT != 3 || pv.Temporary != 0 || pv.BreakGlass != 1 || !pv.LastReload.OK {
		t.Errorf("policies = %s", r.body)
	}

	// With a status: a failed reload keeps the previous set and shows why.
	set := loadPolicies(t, testPolicies)
	_, diags := policies.LoadSources([]string{"bad.hcl"}, map[string][]byte{"bad.hcl": []byte("jit \"x\" {\n  roles = [\n")})
	if !diags.HasErrors() {
		t.Fatal("the broken policy loaded")
	}
	loaded := newTestClock().Now()
	s := New(Options{
		Store:         openStore(t, "mem:", newTestClock()),
		Policies:      func() *policies.Set { return set },
		Authenticator: e.api.opts.Authenticator,
		PolicyStatus: func() PolicyStatus {
			return PolicyStatus{LoadedAt: loaded, LastReload: ReloadStatus{OK: false, At: loaded.Add(60e9), Diagnostics: diags}}
		},
	})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/v1/policies", nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens[requester])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	pv = PolicyView{}
	_ = json.NewDecoder(resp.Body).Decode(&pv)
	d := pv.LastReload.Diagnostics
	if resp.StatusCode != 200 || pv.LastReload.OK || pv.LoadedAt != "2026-11-29T12:00:00Z" || pv.LastReload.At != "2026-11-29T12:01:00Z" ||
		len(d) == 0 || d[0].Rule != "syntax" || d[0].File != "bad.hcl" || d[0].Line == 0 || pv.JIT != 3 {
		t.Errorf("policies with a failed reload = %d %+v", resp.StatusCode, pv)
	}
}

// TestOpenAPIDocument checks that the served document, the embedded one
// and docs/openapi.json are the same valid OpenAPI 3 document, and that
// it describes exactly the routes the server registers.
func TestOpenAPIDocument(t *testing.T) {
	docs, err := os.ReadFile(filepath.Join("..", "docs", "openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(docs, openAPIDocument) {
		t.Fatal("docs/openapi.json and server/openapi.json differ: copy server/openapi.json to docs/")
	}
	e := newEnv(t, memBackend)
	r := e.call("GET", "/v1/openapi.json", anonymous, nil)
	if r.status != 200 || !bytes.Equal(r.body, openAPIDocument) || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("served document differs from the embedded one (status %d)", r.status)
	}
	doc, err := openapi3.NewLoader().LoadFromData(openAPIDocument)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("invalid OpenAPI document: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0") {
		t.Errorf("openapi %q, want 3.0.x", doc.OpenAPI)
	}
	registered := map[string]bool{}
	for _, rt := range e.api.routes {
		registered[rt.Method+" "+rt.Path] = true
		item := doc.Paths.Value(rt.Path)
		if item == nil || item.GetOperation(rt.Method) == nil {
			t.Errorf("route %s %s is not in openapi.json", rt.Method, rt.Path)
		}
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !registered[method+" "+path] {
				t.Errorf("openapi.json describes %s %s, which the server does not serve", method, path)
			}
		}
	}
	if OpenAPI()[0] != '{' || &OpenAPI()[0] == &openAPIDocument[0] {
		t.Error("OpenAPI must return a copy of the document")
	}
}
