package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/elevatehq/elevate/model"
)

// StaticTokenPrefix starts every token NewToken makes, so secret scanners
// and people recognise an elevate token. Configured tokens need not have it.
const StaticTokenPrefix = "elv_"

// HashToken returns the lowercase hex SHA-256 of token: the form in which
// the daemon configuration stores static tokens.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NewToken returns a fresh static token (StaticTokenPrefix and 256 random
// bits) and its hash for the configuration. Show the token once; store
// only the hash.
func NewToken() (token, hash string) {
	var b [32]byte
	rand.Read(b[:]) // never returns an error; crashes the program if the OS cannot supply randomness
	token = StaticTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashToken(token)
}

// StaticToken is one configured automation token. The daemon holds only
// its SHA-256, never the token.
type StaticToken struct {
	// Name identifies the token in audit records and logs.
	Name      string
	Principal model.Principal
	// Groups are group:NAME principals the token's identity is a member of.
	Groups []model.Principal
	Admin  bool
	// Dev marks the token printed by `elevate dev`; its identities carry
	// MethodDev.
	Dev bool
	// SHA256 is the hex SHA-256 of the token (HashToken).
	SHA256 string
}

type staticEntry struct {
	tok  StaticToken
	hash [sha256.Size]byte
}

// StaticTokens authenticates configured static tokens.
type StaticTokens struct {
	entries []staticEntry
}

// emptyHash is SHA-256 of the empty string: a configuration error, since
// an empty token can never be presented.
var emptyHash = HashToken("")

// NewStaticTokens checks the configured tokens: names present and unique,
// a principal, group principals for groups, and a distinct 64-digit hex
// SHA-256 for each.
func NewStaticTokens(tokens []StaticToken) (*StaticTokens, error) {
	s := &StaticTokens{}
	names := map[string]bool{}
	hashes := map[string]string{}
	for i, t := range tokens {
		if strings.TrimSpace(t.Name) == "" {
			return nil, fmt.Errorf("static token %d has no name: give each token a name for the audit log", i+1)
		}
		if names[t.Name] {
			return nil, fmt.Errorf("static token %q is configured twice: token names must be unique", t.Name)
		}
		names[t.Name] = true
		if t.Principal.IsZero() {
			return nil, fmt.Errorf("static token %q has no principal: say who it acts as (user:EMAIL or serviceAccount:EMAIL)", t.Name)
		}
		if t.Principal.IsGroupLike() {
			return nil, fmt.Errorf("static token %q acts as %s, which names a group: a token must act as one identity", t.Name, t.Principal)
		}
		for _, g := range t.Groups {
			if g.Kind != model.KindGroup {
				return nil, fmt.Errorf("static token %q: group %q is not a group:NAME principal", t.Name, g)
			}
		}
		h := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(t.SHA256), "sha256:"))
		raw, err := hex.DecodeString(h)
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("static token %q: sha256 must be the 64 hex digits of the token's SHA-256 (printf %%s TOKEN | sha256sum prints it), not the token itself", t.Name)
		}
		if h == emptyHash {
			return nil, fmt.Errorf("static token %q: sha256 is the hash of the empty string; hash the real token", t.Name)
		}
		if other, dup := hashes[h]; dup {
			return nil, fmt.Errorf("static tokens %q and %q have the same hash: give each automation its own token", other, t.Name)
		}
		hashes[h] = t.Name
		e := staticEntry{tok: t}
		e.tok.SHA256 = h
		e.tok.Groups = append([]model.Principal(nil), t.Groups...)
		copy(e.hash[:], raw)
		s.entries = append(s.entries, e)
	}
	return s, nil
}

// Len returns the number of configured tokens.
func (s *StaticTokens) Len() int { return len(s.entries) }

// Lookup returns the identity of a configured token. It compares the
// token's SHA-256 with every configured hash in constant time, so neither
// the result nor the position of a match shows in the timing.
func (s *StaticTokens) Lookup(token string) (*Identity, bool) {
	if s == nil || token == "" {
		return nil, false
	}
	sum := sha256.Sum256([]byte(token))
	match := -1
	for i := range s.entries {
		if subtle.ConstantTimeCompare(sum[:], s.entries[i].hash[:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return nil, false
	}
	t := s.entries[match].tok
	id := &Identity{
		Principal: t.Principal,
		Groups:    append([]model.Principal(nil), t.Groups...),
		Method:    MethodStatic,
		Admin:     t.Admin,
		Subject:   "static:" + t.Name,
	}
	if t.Dev {
		id.Method = MethodDev
	}
	return id, true
}

// Authenticate implements Authenticator for static tokens alone.
func (s *StaticTokens) Authenticate(_ context.Context, r *http.Request) (*Identity, error) {
	token, err := BearerToken(r)
	if err != nil {
		return nil, err
	}
	if id, ok := s.Lookup(token); ok {
		return id, nil
	}
	return nil, invalid("the static token is not known: it was revoked, mistyped or belongs to another elevate server")
}
