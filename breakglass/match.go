package breakglass

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
)

// Account is one break-glass account of one break_glass policy.
type Account struct {
	Policy    string
	Principal model.Principal
}

// Unwatchable is an account that no audit record can name as its actor (a
// group, a domain, a wildcard), with the reason.
type Unwatchable struct {
	Account
	Reason string
}

// Matcher says which break-glass accounts an event's actor is. Identities are
// reduced to normalised keys, so matching is a few map lookups per event
// whatever the number of accounts:
//
//   - AWS: IAM users and roles by account ID and name, the name compared
//     case-insensitively (IAM names are unique regardless of case); the root
//     user by account ID; a role also matches every session of it (the
//     assumed-role ARN and the session issuer); an assumed-role session ARN
//     matches that session only. The partition is not compared.
//   - GCP: principal emails (user and service account) and principal
//     subjects, case-insensitively.
//   - Azure: UPNs and object IDs, case-insensitively.
//
// Case folding is ASCII only, the same folding the substring pre-filter uses,
// so the two can never disagree. Keys are whole identities: a longer name
// that starts with an account's name is a different key.
type Matcher struct {
	byKey map[string][]Account
	// needles holds, per cloud, substrings such that any escape-free record
	// whose actor matches a key contains one of them.
	needles     map[model.Cloud][]needle
	accounts    int
	unwatchable []Unwatchable
}

// NewMatcher builds a matcher from the break_glass blocks of set.
func NewMatcher(set *policies.Set) *Matcher {
	m := &Matcher{byKey: map[string][]Account{}, needles: map[model.Cloud][]needle{}}
	for _, bg := range set.BreakGlass {
		for _, ref := range bg.Accounts {
			m.Add(Account{Policy: bg.Name, Principal: ref.Principal})
		}
	}
	return m
}

// Add registers one account.
func (m *Matcher) Add(a Account) {
	m.accounts++
	ids, reason := accountKeys(a.Principal)
	if reason != "" {
		m.unwatchable = append(m.unwatchable, Unwatchable{Account: a, Reason: reason})
		return
	}
	for _, id := range ids {
		list := m.byKey[id.key]
		if !slices.ContainsFunc(list, func(b Account) bool { return b.Policy == a.Policy && b.Principal == a.Principal }) {
			m.byKey[id.key] = append(list, a)
		}
		if !slices.ContainsFunc(m.needles[id.cloud], func(n needle) bool { return n.fold == id.needle.fold && bytes.Equal(n.text, id.needle.text) }) {
			m.needles[id.cloud] = append(m.needles[id.cloud], id.needle)
		}
	}
}

// Accounts returns how many accounts were added.
func (m *Matcher) Accounts() int { return m.accounts }

// Watches reports whether any account can appear in cloud's audit records.
func (m *Matcher) Watches(cloud model.Cloud) bool { return len(m.needles[cloud]) > 0 }

// Unwatchable returns the accounts that can never match, with the reason.
func (m *Matcher) Unwatchable() []Unwatchable { return m.unwatchable }

// Match returns the accounts the event's actor is, each once, in the order
// they were added.
func (m *Matcher) Match(ev *ActorEvent) []Account {
	var out []Account
	for _, k := range eventKeys(ev) {
		for _, a := range m.byKey[k] {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

// needle is a substring that every record naming an account contains:
// compared ignoring ASCII case (text is then lower case) or exactly.
type needle struct {
	text []byte
	fold bool
}

func folded(s string) needle { return needle{text: []byte(asciiLower(s)), fold: true} }

// lowerASCII writes src with A-Z mapped to a-z into dst (len(dst) ==
// len(src)), eight bytes at a time.
func lowerASCII(dst, src []byte) {
	i := 0
	for ; i+8 <= len(src); i += 8 {
		x := binary.LittleEndian.Uint64(src[i:])
		// Lanes in 'A'..'Z' get bit 0x20: h7 is x with lane high bits
		// cleared, so the additions cannot carry across lanes.
		h7 := x &^ lanes80
		geA := h7 + lanes01*(0x80-'A')
		gtZ := h7 + lanes01*(0x80-'Z'-1)
		upper := (geA &^ gtZ) &^ x & lanes80
		binary.LittleEndian.PutUint64(dst[i:], x|upper>>2)
	}
	for ; i < len(src); i++ {
		c := src[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst[i] = c
	}
}

// asciiLower lower-cases A-Z only.
func asciiLower(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return 'A' <= r && r <= 'Z' }) {
		return s
	}
	b := []byte(s)
	lowerASCII(b, b)
	return string(b)
}

// identityKey is one normalised identity an account is known by, with the
// substring every record naming it contains.
type identityKey struct {
	cloud  model.Cloud
	key    string
	needle needle
}

// rootNeedle: the root user is known by its identity type, which CloudTrail
// spells exactly so, and which an escape-free record holds in quotes.
var rootNeedle = needle{text: []byte(`"Root"`)}

// accountKeys returns the keys of a policy principal, or why it can never be
// an actor in an audit record.
func accountKeys(p model.Principal) ([]identityKey, string) {
	if p.IsGroupLike() {
		return nil, "it names a group, domain or wildcard, and audit records name single identities"
	}
	switch p.Kind {
	case model.KindAWS:
		a, ok := parseARN(p.Value)
		if !ok {
			return nil, "it is not an IAM user, role, root, assumed-role or federated-user ARN"
		}
		switch a.kind {
		case "root":
			return []identityKey{{model.CloudAWS, awsRootKey(a.account), rootNeedle}}, ""
		case "user":
			return []identityKey{{model.CloudAWS, awsUserKey(a.account, a.name), folded(a.name)}}, ""
		case "role":
			return []identityKey{{model.CloudAWS, awsRoleKey(a.account, a.name), folded(a.name)}}, ""
		case "assumed-role":
			return []identityKey{{model.CloudAWS, awsSessionKey(a.account, a.name, a.session), folded(a.name)}}, ""
		case "federated-user":
			return []identityKey{{model.CloudAWS, awsFederatedKey(a.account, a.name), folded(a.name)}}, ""
		}
		return nil, "it is not an IAM user, role, root, assumed-role or federated-user ARN"
	case model.KindGCP:
		kind, v, _ := strings.Cut(p.Value, ":")
		switch kind {
		case "user", "serviceAccount":
			return []identityKey{{model.CloudGCP, gcpEmailKey(v), folded(v)}}, ""
		case "principal":
			return []identityKey{{model.CloudGCP, gcpSubjectKey(p.Value), folded(p.Value)}}, ""
		}
		return nil, "audit logs name GCP users, service accounts and principal:// subjects only"
	case model.KindAzure:
		kind, v, _ := strings.Cut(p.Value, ":")
		switch kind {
		case "user":
			return []identityKey{{model.CloudAzure, azureUPNKey(v), folded(v)}}, ""
		case "object", "servicePrincipal":
			return []identityKey{{model.CloudAzure, azureObjectKey(v), folded(v)}}, ""
		}
		return nil, "audit logs name Azure users by UPN or object ID only"
	case model.KindUser:
		// A plain email: the same person in Google Cloud and in Entra ID.
		return []identityKey{
			{model.CloudGCP, gcpEmailKey(p.Value), folded(p.Value)},
			{model.CloudAzure, azureUPNKey(p.Value), folded(p.Value)},
		}, ""
	case model.KindServiceAccount:
		return []identityKey{{model.CloudGCP, gcpEmailKey(p.Value), folded(p.Value)}}, ""
	}
	return nil, "it is not an identity that audit logs name"
}

// Key constructors, shared by accounts and events so both sides normalise
// the same way.
func awsRootKey(acct string) string       { return "aws:root:" + acct }
func awsUserKey(acct, name string) string { return "aws:user:" + acct + ":" + asciiLower(name) }
func awsRoleKey(acct, name string) string { return "aws:role:" + acct + ":" + asciiLower(name) }
func awsSessionKey(acct, role, session string) string {
	return "aws:session:" + acct + ":" + asciiLower(role) + "/" + asciiLower(session)
}
func awsFederatedKey(acct, name string) string {
	return "aws:federated:" + acct + ":" + asciiLower(name)
}
func gcpEmailKey(email string) string     { return "gcp:email:" + asciiLower(email) }
func gcpSubjectKey(subject string) string { return "gcp:subject:" + asciiLower(subject) }
func azureUPNKey(upn string) string       { return "azure:upn:" + asciiLower(upn) }
func azureObjectKey(id string) string     { return "azure:object:" + asciiLower(id) }

// arn is the part of an IAM or STS ARN that identifies a principal.
type arn struct {
	account string
	kind    string // root, user, role, assumed-role, federated-user, group
	name    string // user, role or federated user name (without path)
	session string // assumed-role session name
}

// parseARN reads arn:PARTITION:iam|sts::ACCOUNT:RESOURCE. Paths
// (user/PATH/NAME) are dropped: IAM names are unique within an account
// whatever their path.
func parseARN(s string) (arn, bool) {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || (parts[2] != "iam" && parts[2] != "sts") || parts[4] == "" {
		return arn{}, false
	}
	a := arn{account: parts[4]}
	res := parts[5]
	if res == "root" {
		a.kind = "root"
		return a, true
	}
	kind, rest, ok := strings.Cut(res, "/")
	if !ok || rest == "" {
		return arn{}, false
	}
	a.kind = kind
	switch kind {
	case "user", "role", "federated-user", "group":
		a.name = rest[strings.LastIndexByte(rest, '/')+1:]
	case "assumed-role":
		role, session, ok := strings.Cut(rest, "/")
		if !ok || role == "" || session == "" {
			return arn{}, false
		}
		a.name, a.session = role, session
	default:
		return arn{}, false
	}
	if a.name == "" {
		return arn{}, false
	}
	return a, true
}

// hiddenUserName is what CloudTrail writes instead of a user name that does
// not exist in the account (a mistyped sign-in).
const hiddenUserName = "HIDDEN_DUE_TO_SECURITY_REASONS"

// eventKeys returns the normalised identities of the event's actor.
func eventKeys(ev *ActorEvent) []string {
	a := &ev.Actor
	var keys []string
	switch ev.Cloud {
	case model.CloudAWS:
		if x, ok := parseARN(a.ARN); ok {
			switch x.kind {
			case "user":
				keys = append(keys, awsUserKey(x.account, x.name))
			case "role":
				keys = append(keys, awsRoleKey(x.account, x.name))
			case "assumed-role":
				keys = append(keys, awsRoleKey(x.account, x.name), awsSessionKey(x.account, x.name, x.session))
			case "federated-user":
				keys = append(keys, awsFederatedKey(x.account, x.name))
			}
		}
		// The root user is its identity type (its ARN may be missing on a
		// failed sign-in); failed IAM user sign-ins may carry no ARN either:
		// the account and user name still say who tried.
		switch a.Type {
		case "Root":
			if x, ok := parseARN(a.ARN); ok && x.kind == "root" {
				keys = append(keys, awsRootKey(x.account))
			} else if a.AccountID != "" {
				keys = append(keys, awsRootKey(a.AccountID))
			}
		case "IAMUser":
			if a.AccountID != "" && a.UserName != "" && a.UserName != hiddenUserName {
				keys = append(keys, awsUserKey(a.AccountID, a.UserName))
			}
		}
		if x, ok := parseARN(a.IssuerARN); ok && x.kind == "role" {
			keys = append(keys, awsRoleKey(x.account, x.name))
		} else if a.IssuerType == "Role" && a.IssuerUserName != "" {
			if acct := firstNonEmpty(a.IssuerAccountID, a.AccountID); acct != "" {
				keys = append(keys, awsRoleKey(acct, a.IssuerUserName))
			}
		}
	case model.CloudGCP:
		for _, e := range a.Emails {
			keys = append(keys, gcpEmailKey(e))
		}
		for _, s := range a.Subjects {
			keys = append(keys, gcpSubjectKey(s))
			// principalSubject is "user:EMAIL" or "serviceAccount:EMAIL" for
			// Google identities.
			if kind, email, ok := strings.Cut(s, ":"); ok && (kind == "user" || kind == "serviceAccount") {
				keys = append(keys, gcpEmailKey(email))
			}
		}
	case model.CloudAzure:
		for _, u := range a.UPNs {
			keys = append(keys, azureUPNKey(u))
		}
		for _, o := range a.ObjectIDs {
			keys = append(keys, azureObjectKey(o))
		}
	}
	return keys
}
