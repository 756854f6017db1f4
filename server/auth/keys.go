package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// maxJWKSBytes bounds the key set document.
const maxJWKSBytes = 1 << 20

// remoteKeys is the issuer's JSON Web Key Set, fetched over HTTP and
// cached. It implements go-oidc's KeySet. Unlike go-oidc's RemoteKeySet it
// refetches at most once per minRefresh (a stream of tokens with made-up
// key IDs cannot turn elevate into a load generator against the identity
// provider), and it refetches after ttl so a withdrawn key stops being
// trusted.
type remoteKeys struct {
	issuer     string
	client     *http.Client
	now        func() time.Time
	algs       []jose.SignatureAlgorithm
	minRefresh time.Duration
	ttl        time.Duration

	// fetchMu serialises discovery and fetches.
	fetchMu sync.Mutex

	mu          sync.RWMutex
	jwksURL     string // configured, or found by discovery
	keys        []jose.JSONWebKey
	fetchedAt   time.Time // last successful fetch
	attemptedAt time.Time // last attempt, successful or not
	lastErr     error     // error of the last attempt, nil when it succeeded
}

func (k *remoteKeys) snapshot() ([]jose.JSONWebKey, time.Time) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.keys, k.fetchedAt
}

func (k *remoteKeys) lastError() error {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.lastErr
}

// VerifySignature implements oidc.KeySet: it returns the payload of jwt if
// one of the issuer's keys verifies its signature.
func (k *remoteKeys) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	rep, _ := ctx.Value(reportKey{}).(*verifyReport)
	fail := func(err error) ([]byte, error) {
		if rep != nil {
			rep.signatureFailed = true
			rep.fetchErr = k.lastError()
		}
		return nil, err
	}
	jws, err := jose.ParseSignedCompact(jwt, k.algs)
	if err != nil {
		return fail(fmt.Errorf("parsing token: %w", err))
	}
	if len(jws.Signatures) != 1 {
		return fail(errors.New("token must carry exactly one signature"))
	}
	now := k.now()
	keys, fetchedAt := k.snapshot()
	if fetchedAt.IsZero() || now.Sub(fetchedAt) >= k.ttl {
		// A failed refresh keeps the previous keys; the error shows only
		// if no key verifies.
		_ = k.refresh(ctx, now, false)
		keys, _ = k.snapshot()
	}
	if payload, ok := verifyWith(jws, keys); ok {
		return payload, nil
	}
	// An unknown key ID is how key rotation looks from here: fetch the
	// keys again (rate-limited) and retry, as OpenID Connect Core 10.1 says.
	if err := k.refresh(ctx, now, false); err == nil {
		keys, _ = k.snapshot()
		if payload, ok := verifyWith(jws, keys); ok {
			return payload, nil
		}
	}
	return fail(errors.New("no key of the issuer verifies the token's signature"))
}

// verifyWith tries the keys whose ID (when the token names one) and
// algorithm (when the key names one) match the token's header.
func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey) ([]byte, bool) {
	h := jws.Signatures[0].Header
	for i := range keys {
		key := &keys[i]
		if h.KeyID != "" && key.KeyID != h.KeyID {
			continue
		}
		if key.Algorithm != "" && key.Algorithm != h.Algorithm {
			continue
		}
		if payload, err := jws.Verify(key.Key); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// refresh fetches the keys unless an attempt was made less than minRefresh
// ago (force skips that check). It returns nil when the cache holds keys
// fetched at or after now-minRefresh, whether by this call or another.
func (k *remoteKeys) refresh(ctx context.Context, now time.Time, force bool) error {
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	k.mu.RLock()
	attempted, lastErr := k.attemptedAt, k.lastErr
	k.mu.RUnlock()
	if !force && !attempted.IsZero() && now.Sub(attempted) < k.minRefresh {
		if lastErr != nil {
			return lastErr
		}
		return nil
	}
	// The request's cancellation must not abort a fetch other requests
	// wait for; the client's timeout bounds it.
	ctx = context.WithoutCancel(ctx)
	keys, err := k.fetch(ctx)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.attemptedAt = now
	k.lastErr = err
	if err != nil {
		return err
	}
	k.keys = keys
	k.fetchedAt = now
	return nil
}

// fetch discovers the JWKS URL if needed and downloads the key set.
func (k *remoteKeys) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	k.mu.RLock()
	jwksURL := k.jwksURL
	k.mu.RUnlock()
	if jwksURL == "" {
		var err error
		if jwksURL, err = k.discover(ctx); err != nil {
			return nil, err
		}
		k.mu.Lock()
		k.jwksURL = jwksURL
		k.mu.Unlock()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, jwksURL, nil)
	if err != nil {
		return nil, fmt.Errorf("building request for %s: %w", jwksURL, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching keys from %s: %w", jwksURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching keys from %s: %s", jwksURL, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading keys from %s: %w", jwksURL, err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("reading keys from %s: the key set is larger than 1 MiB", jwksURL)
	}
	keys, err := parseKeySet(body, k.algs)
	if err != nil {
		return nil, fmt.Errorf("decoding keys from %s: %w", jwksURL, err)
	}
	return keys, nil
}

// discover reads the issuer's discovery document with go-oidc (which
// checks that it names the same issuer) and returns its jwks_uri.
func (k *remoteKeys) discover(ctx context.Context) (string, error) {
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, k.client), k.issuer)
	if err != nil {
		return "", fmt.Errorf("discovering OIDC provider %s: %w", k.issuer, err)
	}
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := p.Claims(&meta); err != nil {
		return "", fmt.Errorf("reading discovery document of %s: %w", k.issuer, err)
	}
	if meta.JWKSURI == "" {
		return "", fmt.Errorf("discovery document of %s has no jwks_uri: configure the JWKS URL", k.issuer)
	}
	if err := checkProviderURL("jwks_uri", meta.JWKSURI); err != nil {
		return "", fmt.Errorf("discovery document of %s: %w", k.issuer, err)
	}
	return meta.JWKSURI, nil
}

// parseKeySet decodes a JWK Set, keeping the public signature keys usable
// with an allowed algorithm. Keys of types go-jose does not know, keys for
// encryption, symmetric and private keys are left out (RFC 7517 section 5:
// ignore what is not understood); a set with no usable key is an error.
func parseKeySet(body []byte, algs []jose.SignatureAlgorithm) ([]jose.JSONWebKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("not a JSON Web Key Set: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var meta struct {
			Use string `json:"use"`
			Alg string `json:"alg"`
		}
		if json.Unmarshal(raw, &meta) != nil {
			continue
		}
		if meta.Use != "" && meta.Use != "sig" {
			continue
		}
		if meta.Alg != "" && !slices.Contains(algs, jose.SignatureAlgorithm(meta.Alg)) {
			continue
		}
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(raw); err != nil {
			continue
		}
		if !key.IsPublic() {
			continue
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("the key set has no public signing key for %v", algs)
	}
	return keys, nil
}
