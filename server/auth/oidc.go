package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/elevatehq/elevate/model"
)

// Defaults of OIDCConfig.
const (
	DefaultPrincipalClaim     = "email"
	DefaultGroupsClaim        = "groups"
	DefaultClockSkew          = time.Minute
	MaxClockSkew              = 5 * time.Minute
	DefaultKeyRefreshInterval = 10 * time.Second
	DefaultKeyCacheTTL        = time.Hour
	DefaultHTTPTimeout        = 10 * time.Second
)

// DefaultAlgorithms are the signing algorithms accepted when OIDCConfig
// names none.
var DefaultAlgorithms = []string{"RS256", "ES256"}

// asymmetricAlgorithms are the algorithms an allow-list may name. "none"
// and the HMAC algorithms are never accepted: with HS256 anyone who knows
// the issuer's public key could sign tokens.
var asymmetricAlgorithms = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"EdDSA": true,
}

// OIDCConfig configures verification of OIDC bearer tokens.
type OIDCConfig struct {
	// Issuer is the identity provider's issuer URL; tokens' "iss" must
	// equal it exactly. https, or http on a loopback address for local
	// development.
	Issuer string
	// Audience must be one of a token's "aud" values (the client ID
	// elevate is registered under).
	Audience string
	// JWKSURL is where the issuer publishes its keys. Empty: discover it
	// from Issuer + /.well-known/openid-configuration.
	JWKSURL string
	// PrincipalClaim names the claim whose value X makes the principal
	// user:X; default "email". When it is "email", a token whose
	// email_verified claim is false is rejected.
	PrincipalClaim string
	// GroupsClaim names the claim listing the caller's groups (a JSON
	// array of strings, each becoming group:NAME); default "groups".
	GroupsClaim string
	// Algorithms is the signing algorithm allow-list; default RS256 and
	// ES256. "none" and HS* are refused.
	Algorithms []string
	// ClockSkew is the tolerance on exp, nbf and iat; 0 means
	// DefaultClockSkew, at most MaxClockSkew.
	ClockSkew time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// HTTPClient fetches the discovery document and keys; nil means a
	// client with a DefaultHTTPTimeout timeout.
	HTTPClient *http.Client
	// KeyRefreshInterval is the least time between two fetches of the
	// keys, so tokens with unknown key IDs cannot make elevate hammer the
	// identity provider; 0 means DefaultKeyRefreshInterval.
	KeyRefreshInterval time.Duration
	// KeyCacheTTL is how long fetched keys are used before they are
	// fetched again (a key the issuer withdrew stops being trusted within
	// it); 0 means DefaultKeyCacheTTL.
	KeyCacheTTL time.Duration
	// Logger receives warnings about claims elevate ignores (a group name
	// that is not a valid principal); nil means slog.Default(). Tokens are
	// never logged.
	Logger *slog.Logger
}

// OIDC verifies bearer JWTs issued by one OpenID Connect provider.
type OIDC struct {
	cfg      OIDCConfig
	algs     []jose.SignatureAlgorithm
	keys     *remoteKeys
	verifier *oidc.IDTokenVerifier
}

// NewOIDC checks cfg and returns a verifier. It does not contact the
// identity provider: discovery and key fetching happen on first use (or
// in Prefetch), so elevate starts, and static tokens work, while the
// provider is down.
func NewOIDC(cfg OIDCConfig) (*OIDC, error) {
	if err := checkProviderURL("issuer", cfg.Issuer); err != nil {
		return nil, err
	}
	if strings.TrimSpace(cfg.Audience) == "" {
		return nil, errors.New("oidc audience is empty: set it to the client ID elevate is registered under at the identity provider")
	}
	if cfg.JWKSURL != "" {
		if err := checkProviderURL("jwks_url", cfg.JWKSURL); err != nil {
			return nil, err
		}
	}
	if cfg.PrincipalClaim == "" {
		cfg.PrincipalClaim = DefaultPrincipalClaim
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = DefaultGroupsClaim
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = DefaultAlgorithms
	}
	cfg.Algorithms = slices.Clone(cfg.Algorithms)
	var algs []jose.SignatureAlgorithm
	for _, a := range cfg.Algorithms {
		if !asymmetricAlgorithms[a] {
			return nil, fmt.Errorf("oidc algorithm %q is not allowed: use asymmetric algorithms such as RS256 or ES256 (none and HS* are never accepted)", a)
		}
		algs = append(algs, jose.SignatureAlgorithm(a))
	}
	switch {
	case cfg.ClockSkew == 0:
		cfg.ClockSkew = DefaultClockSkew
	case cfg.ClockSkew < 0 || cfg.ClockSkew > MaxClockSkew:
		return nil, fmt.Errorf("oidc clock skew %s is out of range: use a value between 0s and %s", cfg.ClockSkew, MaxClockSkew)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	if cfg.KeyRefreshInterval <= 0 {
		cfg.KeyRefreshInterval = DefaultKeyRefreshInterval
	}
	if cfg.KeyCacheTTL <= 0 {
		cfg.KeyCacheTTL = DefaultKeyCacheTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	keys := &remoteKeys{
		issuer:     cfg.Issuer,
		jwksURL:    cfg.JWKSURL,
		client:     cfg.HTTPClient,
		now:        cfg.Now,
		algs:       algs,
		minRefresh: cfg.KeyRefreshInterval,
		ttl:        cfg.KeyCacheTTL,
	}
	// go-oidc checks the signature (through keys) and the algorithm
	// allow-list. Issuer, audience and times are checked in VerifyToken
	// instead, for the configurable clock skew (go-oidc has none on exp
	// and a fixed five minutes on nbf) and for reasons that say exactly
	// what was wrong.
	verifier := oidc.NewVerifier(cfg.Issuer, keys, &oidc.Config{
		ClientID:             cfg.Audience,
		SupportedSigningAlgs: cfg.Algorithms,
		SkipClientIDCheck:    true,
		SkipIssuerCheck:      true,
		SkipExpiryCheck:      true,
		Now:                  cfg.Now,
	})
	return &OIDC{cfg: cfg, algs: algs, keys: keys, verifier: verifier}, nil
}

// checkProviderURL requires an absolute https URL, or http on a loopback
// host (a local identity provider for development and tests).
func checkProviderURL(what, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("oidc %s %q is not an absolute URL: write https://HOST/...", what, raw)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return fmt.Errorf("oidc %s %q uses plain http: use https (http is accepted only on a loopback address, for development)", what, raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("oidc %s %q has a query or fragment: remove it", what, raw)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Config returns the effective configuration, defaults filled in.
func (o *OIDC) Config() OIDCConfig { return o.cfg }

// Prefetch discovers the provider (when no JWKS URL is configured) and
// fetches its keys now, so a misconfiguration shows at startup and the
// first request does not wait. It is optional.
func (o *OIDC) Prefetch(ctx context.Context) error {
	return o.keys.refresh(ctx, o.cfg.Now(), true)
}

// Authenticate implements Authenticator for OIDC tokens alone.
func (o *OIDC) Authenticate(ctx context.Context, r *http.Request) (*Identity, error) {
	token, err := BearerToken(r)
	if err != nil {
		return nil, err
	}
	return o.VerifyToken(ctx, token)
}

type reportKey struct{}

// verifyReport is how remoteKeys tells VerifyToken why a signature check
// failed: go-oidc flattens the key set's error into text.
type verifyReport struct {
	signatureFailed bool
	fetchErr        error
}

// VerifyToken verifies a bearer JWT and returns the caller's identity:
// signature by one of the issuer's keys with an allowed algorithm,
// issuer, audience, expiry and not-before (with the clock skew), the
// principal claim and the groups claim. Errors wrap ErrInvalidToken or
// ErrUnavailable.
func (o *OIDC) VerifyToken(ctx context.Context, token string) (*Identity, error) {
	if _, err := jose.ParseSignedCompact(token, o.algs); err != nil {
		if alg := headerAlgorithm(token); alg != "" && !slices.Contains(o.cfg.Algorithms, alg) {
			return nil, invalid(fmt.Sprintf("the token is signed with algorithm %q, which this server does not accept (allowed: %s)",
				clip(alg), strings.Join(o.cfg.Algorithms, ", ")))
		}
		return nil, invalid("the token is not a well-formed signed JWT")
	}
	rep := &verifyReport{}
	idt, err := o.verifier.Verify(context.WithValue(ctx, reportKey{}, rep), token)
	if err != nil {
		switch {
		case rep.signatureFailed && rep.fetchErr != nil:
			return nil, unavailable("the identity provider's signing keys could not be fetched; try again shortly", rep.fetchErr)
		case rep.signatureFailed:
			return nil, invalid("the token's signature does not verify with any of the issuer's current keys (altered token, unknown key, or another issuer)")
		default:
			return nil, invalid("the token's claims could not be decoded: iss, sub and aud must be strings, exp, nbf and iat numbers")
		}
	}
	var claims map[string]json.RawMessage
	if err := idt.Claims(&claims); err != nil {
		return nil, invalid("the token's claims are not a JSON object")
	}
	if err := o.checkRegistered(idt, claims); err != nil {
		return nil, err
	}
	principal, err := o.principal(claims)
	if err != nil {
		return nil, err
	}
	groups, err := o.groups(claims, principal)
	if err != nil {
		return nil, err
	}
	return &Identity{
		Principal: principal,
		Groups:    groups,
		Method:    MethodOIDC,
		Subject:   "oidc:" + idt.Subject,
	}, nil
}

// checkRegistered checks iss, aud, exp, nbf and iat.
func (o *OIDC) checkRegistered(idt *oidc.IDToken, claims map[string]json.RawMessage) error {
	if idt.Issuer != o.cfg.Issuer {
		return invalid(fmt.Sprintf("the token was issued by %q, not by the configured issuer %q", clip(idt.Issuer), o.cfg.Issuer))
	}
	if !slices.Contains(idt.Audience, o.cfg.Audience) {
		return invalid(fmt.Sprintf("the token is for another audience, not %q: get a token for elevate's client ID", o.cfg.Audience))
	}
	now := o.cfg.Now()
	skew := o.cfg.ClockSkew
	exp, ok, err := numericDate(claims, "exp")
	switch {
	case err != nil:
		return err
	case !ok:
		return invalid("the token has no exp claim: elevate accepts only tokens that expire")
	case !now.Before(exp.Add(skew)):
		return invalid(fmt.Sprintf("the token expired at %s: get a new one", exp.UTC().Format(time.RFC3339)))
	}
	nbf, ok, err := numericDate(claims, "nbf")
	if err != nil {
		return err
	}
	if ok && now.Add(skew).Before(nbf) {
		return invalid(fmt.Sprintf("the token is not valid before %s: check the clocks of the identity provider and this server", nbf.UTC().Format(time.RFC3339)))
	}
	iat, ok, err := numericDate(claims, "iat")
	if err != nil {
		return err
	}
	if ok && now.Add(skew).Before(iat) {
		return invalid(fmt.Sprintf("the token claims to be issued in the future (%s): check the clocks of the identity provider and this server", iat.UTC().Format(time.RFC3339)))
	}
	return nil
}

// numericDate reads a JWT NumericDate claim (seconds since the epoch,
// possibly fractional).
func numericDate(claims map[string]json.RawMessage, name string) (time.Time, bool, error) {
	raw, ok := claims[name]
	if !ok || string(raw) == "null" {
		return time.Time{}, false, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return time.Time{}, false, invalid(fmt.Sprintf("the token's %s claim is not a date in seconds since 1970", name))
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// principal maps the principal claim to user:VALUE.
func (o *OIDC) principal(claims map[string]json.RawMessage) (model.Principal, error) {
	name := o.cfg.PrincipalClaim
	raw, ok := claims[name]
	if !ok {
		return model.Principal{}, invalid(fmt.Sprintf("the token has no %s claim: request the scope that includes it, or set the principal claim in elevate's OIDC settings", name))
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil || strings.TrimSpace(v) == "" {
		return model.Principal{}, invalid(fmt.Sprintf("the token's %s claim is not a non-empty string", name))
	}
	if name == "email" {
		if err := checkEmailVerified(claims); err != nil {
			return model.Principal{}, err
		}
	}
	p, err := model.ParsePrincipal("user:" + v)
	if err != nil {
		return model.Principal{}, invalid(fmt.Sprintf("the token's %s claim %q is not an email address, so it cannot name a user:EMAIL principal", name, clip(v)))
	}
	return p, nil
}

// checkEmailVerified rejects a token whose email_verified claim is false.
// Some providers send the boolean as a string.
func checkEmailVerified(claims map[string]json.RawMessage) error {
	raw, ok := claims["email_verified"]
	if !ok || string(raw) == "null" {
		return nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		var s string
		if json.Unmarshal(raw, &s) != nil || (s != "true" && s != "false") {
			return invalid("the token's email_verified claim is neither true nor false")
		}
		b = s == "true"
	}
	if !b {
		return invalid("the token's email address is not verified (email_verified is false): verify it with the identity provider")
	}
	return nil
}

// groups maps the groups claim, a JSON array of strings, to group
// principals. Names that are not valid group names are left out (they
// could only match nothing) and logged.
func (o *OIDC) groups(claims map[string]json.RawMessage, who model.Principal) ([]model.Principal, error) {
	name := o.cfg.GroupsClaim
	raw, ok := claims[name]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, invalid(fmt.Sprintf("the token's %s claim is not an array of strings: configure the identity provider to send group names as a list", name))
	}
	var out []model.Principal
	seen := map[string]bool{}
	for _, it := range items {
		var v string
		if err := json.Unmarshal(it, &v); err != nil {
			return nil, invalid(fmt.Sprintf("the token's %s claim is not an array of strings: configure the identity provider to send group names as a list", name))
		}
		text := v
		if !strings.HasPrefix(text, string(model.KindGroup)+":") {
			text = string(model.KindGroup) + ":" + text
		}
		g, err := model.ParsePrincipal(text)
		if err != nil || g.Kind != model.KindGroup {
			o.cfg.Logger.Warn("ignoring a group from an OIDC token: not a valid group name",
				"principal", who.String(), "claim", name, "group", clip(v))
			continue
		}
		if !seen[g.Key()] {
			seen[g.Key()] = true
			out = append(out, g)
		}
	}
	return out, nil
}

// headerAlgorithm returns the alg of a compact JWS's header, or "" when
// the header cannot be read.
func headerAlgorithm(token string) string {
	head, _, ok := strings.Cut(token, ".")
	if !ok {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(b, &h) != nil {
		return ""
	}
	return h.Alg
}

// clip shortens a value taken from a token before it goes into a message.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
