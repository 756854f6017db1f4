package model

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
)

// PrincipalKind names the namespace of a principal.
type PrincipalKind string

// The principal kinds of POLICY.md.
const (
	KindUser           PrincipalKind = "user"
	KindGroup          PrincipalKind = "group"
	KindServiceAccount PrincipalKind = "serviceAccount"
	KindAWS            PrincipalKind = "aws"
	KindGCP            PrincipalKind = "gcp"
	KindAzure          PrincipalKind = "azure"
)

// Principal is a parsed identity such as "user:alice@example.com" or a
// cloud-qualified native identity such as "aws:arn:aws:iam::123456789012:user/bob".
// The zero value is not a valid principal.
type Principal struct {
	Kind PrincipalKind
	// Value is everything after the first colon, e.g. "alice@example.com",
	// "arn:aws:iam::1:user/x", "user:bg@example.com" (gcp) or "object:GUID" (azure).
	Value string
}

// String returns the canonical text form, "kind:value".
func (p Principal) String() string {
	if p.Kind == "" {
		return ""
	}
	return string(p.Kind) + ":" + p.Value
}

// IsZero reports whether p is the zero principal.
func (p Principal) IsZero() bool { return p.Kind == "" }

// IsGroupLike reports whether p names more than one person: a group, a
// domain, a wildcard, or a cloud-native group or domain member.
func (p Principal) IsGroupLike() bool {
	if p.Kind == KindGroup || strings.Contains(p.Value, "*") {
		return true
	}
	switch p.Kind {
	case KindGCP:
		return strings.HasPrefix(p.Value, "group:") || strings.HasPrefix(p.Value, "domain:") ||
			strings.HasPrefix(p.Value, "principalSet:") || p.Value == "allUsers" || p.Value == "allAuthenticatedUsers"
	case KindAzure:
		return strings.HasPrefix(p.Value, "group:")
	case KindAWS:
		return strings.Contains(p.Value, ":group/")
	}
	return false
}

// IsServiceAccount reports whether p is a non-human workload identity.
func (p Principal) IsServiceAccount() bool {
	switch p.Kind {
	case KindServiceAccount:
		return true
	case KindGCP:
		return strings.HasPrefix(p.Value, "serviceAccount:")
	case KindAzure:
		return strings.HasPrefix(p.Value, "servicePrincipal:")
	}
	return false
}

// Equal reports whether two principals name the same identity. Emails, UPNs
// and GUIDs compare case-insensitively; AWS ARNs compare exactly, except for
// the case-insensitive IAM user and role names AWS itself treats as unique.
func (p Principal) Equal(q Principal) bool {
	if p.Kind != q.Kind {
		return false
	}
	if p.Kind == KindAWS {
		return p.Value == q.Value
	}
	return strings.EqualFold(p.Value, q.Value)
}

// Key returns a normalised form suitable as a map key: Equal principals have
// equal keys.
func (p Principal) Key() string {
	if p.Kind == KindAWS {
		return p.String()
	}
	return string(p.Kind) + ":" + strings.ToLower(p.Value)
}

var (
	guidRE   = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	groupRE  = regexp.MustCompile(`^[A-Za-z0-9._@+\-*]+$`)
	awsARNRE = regexp.MustCompile(`^arn:aws[a-zA-Z-]*:(iam|sts)::(\d{12}|\*):(root|user/.+|role/.+|group/.+|assumed-role/.+|federated-user/.+)$`)
)

// ParsePrincipal parses the text form of a principal. The error says what
// form was expected.
func ParsePrincipal(s string) (Principal, error) {
	kind, value, ok := strings.Cut(s, ":")
	if !ok || value == "" {
		return Principal{}, fmt.Errorf("principal %q has no kind prefix: write user:EMAIL, group:NAME, serviceAccount:EMAIL, aws:ARN, gcp:MEMBER or azure:user:UPN / azure:object:GUID", s)
	}
	if strings.TrimSpace(s) != s {
		return Principal{}, fmt.Errorf("principal %q has leading or trailing spaces", s)
	}
	p := Principal{Kind: PrincipalKind(kind), Value: value}
	switch p.Kind {
	case KindUser, KindServiceAccount:
		if err := checkEmail(value); err != nil {
			return Principal{}, fmt.Errorf("principal %q: %s is not an email address", s, value)
		}
	case KindGroup:
		if !groupRE.MatchString(value) {
			return Principal{}, fmt.Errorf("principal %q: group name may contain letters, digits and . _ @ + - only", s)
		}
	case KindAWS:
		if !awsARNRE.MatchString(value) {
			return Principal{}, fmt.Errorf("principal %q: expected an IAM ARN such as aws:arn:aws:iam::123456789012:user/NAME, :role/NAME or :root", s)
		}
	case KindGCP:
		mk, mv, ok := strings.Cut(value, ":")
		switch {
		case value == "allUsers" || value == "allAuthenticatedUsers":
		case !ok || mv == "":
			return Principal{}, fmt.Errorf("principal %q: expected a GCP IAM member such as gcp:user:EMAIL or gcp:serviceAccount:EMAIL", s)
		case mk == "user" || mk == "serviceAccount" || mk == "group":
			if err := checkEmail(mv); err != nil {
				return Principal{}, fmt.Errorf("principal %q: %s is not an email address", s, mv)
			}
		case mk == "domain" || mk == "principal" || mk == "principalSet":
		default:
			return Principal{}, fmt.Errorf("principal %q: unknown GCP member type %q (user, serviceAccount, group, domain, principal, principalSet)", s, mk)
		}
	case KindAzure:
		mk, mv, ok := strings.Cut(value, ":")
		switch {
		case !ok || mv == "":
			return Principal{}, fmt.Errorf("principal %q: expected azure:user:UPN or azure:object:GUID", s)
		case mk == "user":
			if err := checkEmail(mv); err != nil {
				return Principal{}, fmt.Errorf("principal %q: %s is not a user principal name", s, mv)
			}
		case mk == "object" || mk == "group" || mk == "servicePrincipal":
			if !guidRE.MatchString(mv) {
				return Principal{}, fmt.Errorf("principal %q: %s is not an object ID (a GUID)", s, mv)
			}
		default:
			return Principal{}, fmt.Errorf("principal %q: unknown Azure identity type %q (user, object, group, servicePrincipal)", s, mk)
		}
	default:
		return Principal{}, fmt.Errorf("principal %q has unknown kind %q: write user:, group:, serviceAccount:, aws:, gcp: or azure:", s, kind)
	}
	return p, nil
}

func checkEmail(s string) error {
	if strings.Contains(s, "*") {
		// Wildcards are rejected by mail parsing but are a policy smell the
		// lint rules report with a better message.
		s = strings.ReplaceAll(s, "*", "x")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return fmt.Errorf("not an email address")
	}
	return nil
}

// MustPrincipal parses s and panics on error; for tests and constants.
func MustPrincipal(s string) Principal {
	p, err := ParsePrincipal(s)
	if err != nil {
		panic(err)
	}
	return p
}

// MarshalText encodes the principal in its canonical text form.
func (p Principal) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses the canonical text form; empty text is the zero principal.
func (p *Principal) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*p = Principal{}
		return nil
	}
	q, err := ParsePrincipal(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}
