package gcp

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"

	"google.golang.org/genproto/googleapis/type/expr"

	"github.com/elevatehq/elevate/model"
)

// TitlePrefix starts the condition title of every binding elevate writes;
// the grant ID follows it. The title is the ownership marker.
const TitlePrefix = "elevate:"

// maxOwnerLen keeps "elevate:<grant-id>" inside the 100 characters IAM
// allows for a condition title.
const maxOwnerLen = 100 - len(TitlePrefix)

// Title returns the condition title that marks a binding as owned by grant.
func Title(grant string) string { return TitlePrefix + grant }

// ownerOf returns the grant ID in a condition title, or "" when the title
// is not elevate's marker.
func ownerOf(c *expr.Expr) string {
	if c == nil {
		return ""
	}
	owner, ok := strings.CutPrefix(c.GetTitle(), TitlePrefix)
	if !ok {
		return ""
	}
	return owner
}

// checkOwner reports whether grant can be written as a condition title.
func checkOwner(grant string) error {
	switch {
	case grant == "":
		return fmt.Errorf("elevate writes only bindings with an owner (grant ID)")
	case len(grant) > maxOwnerLen:
		return fmt.Errorf("grant ID %q is longer than the %d characters a condition title leaves for it", grant, maxOwnerLen)
	case strings.IndexFunc(grant, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0:
		return fmt.Errorf("grant ID %q contains spaces or control characters, which a condition title must not carry", grant)
	}
	return nil
}

// formatTime renders t as the RFC 3339 literal of a CEL timestamp: UTC,
// fractional seconds only when t has them, so parsing gives t back.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Expression returns the canonical condition expression of a binding that
// is valid in [notBefore, expires); a zero notBefore means from now on.
func Expression(notBefore, expires time.Time) string {
	upper := `request.time < timestamp("` + formatTime(expires) + `")`
	if notBefore.IsZero() {
		return upper
	}
	return `request.time >= timestamp("` + formatTime(notBefore) + `") && ` + upper
}

// condition returns the condition elevate writes for b.
func condition(b model.Binding) *expr.Expr {
	desc := fmt.Sprintf("elevate grant %s for %s until %s", b.Owner, b.Principal, formatTime(b.Expires))
	if len(desc) > 256 { // IAM's limit on a condition description
		desc = desc[:256]
	}
	return &expr.Expr{
		Title:       Title(b.Owner),
		Description: desc,
		Expression:  Expression(b.NotBefore, b.Expires),
	}
}

var canonicalRE = regexp.MustCompile(`^request\.time (?:>= timestamp\("([^"]+)"\) && request\.time )?< timestamp\("([^"]+)"\)$`)

// parseCanonical reads the window back from an expression elevate wrote. It
// accepts only the exact canonical form: anything else on a managed
// binding was edited out of band (ok is false).
func parseCanonical(expression string) (notBefore, expires time.Time, ok bool) {
	m := canonicalRE.FindStringSubmatch(expression)
	if m == nil {
		return time.Time{}, time.Time{}, false
	}
	expires, err := time.Parse(time.RFC3339Nano, m[2])
	if err != nil || formatTime(expires) != m[2] {
		return time.Time{}, time.Time{}, false
	}
	if m[1] != "" {
		notBefore, err = time.Parse(time.RFC3339Nano, m[1])
		if err != nil || formatTime(notBefore) != m[1] || !notBefore.Before(expires) {
			return time.Time{}, time.Time{}, false
		}
	}
	if Expression(notBefore, expires) != expression {
		return time.Time{}, time.Time{}, false
	}
	return notBefore.UTC(), expires.UTC(), true
}

var timeClauseRE = regexp.MustCompile(`^\(*\s*request\.time\s*(<=|<|>=|>)\s*timestamp\(\s*["']([^"']+)["']\s*\)\s*\)*$`)

// parseWindow reads the time window of a condition someone else wrote (a
// Google PAM grant, a hand-made temporary binding): a conjunction whose
// time clauses compare request.time with timestamps. Other clauses only
// narrow the binding and are ignored. ok is false when the expression has
// no upper time bound or is not a plain conjunction (|| or ! could widen
// it), so the window cannot be known.
func parseWindow(expression string) (notBefore, expires time.Time, ok bool) {
	if strings.Contains(expression, "||") || strings.ContainsAny(expression, "!?") {
		return time.Time{}, time.Time{}, false
	}
	for _, clause := range strings.Split(expression, "&&") {
		m := timeClauseRE.FindStringSubmatch(strings.TrimSpace(clause))
		if m == nil {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, m[2])
		if err != nil {
			return time.Time{}, time.Time{}, false
		}
		t = t.UTC()
		switch m[1] {
		case "<", "<=":
			if m[1] == "<=" {
				t = t.Add(time.Nanosecond)
			}
			if expires.IsZero() || t.Before(expires) {
				expires = t
			}
		case ">", ">=":
			if m[1] == ">" {
				t = t.Add(time.Nanosecond)
			}
			if t.After(notBefore) {
				notBefore = t
			}
		}
	}
	if expires.IsZero() {
		return time.Time{}, time.Time{}, false
	}
	return notBefore, expires, true
}

// Member returns the IAM member string for p: user:, group: and
// serviceAccount: principals map to the same IAM member; gcp:MEMBER maps
// to MEMBER. Principals of other clouds have no GCP member.
func Member(p model.Principal) (string, error) {
	switch p.Kind {
	case model.KindUser, model.KindServiceAccount:
		return string(p.Kind) + ":" + p.Value, nil
	case model.KindGroup:
		if !strings.Contains(p.Value, "@") {
			return "", fmt.Errorf("principal %s: a GCP group is an email address: write group:NAME@DOMAIN", p)
		}
		return "group:" + p.Value, nil
	case model.KindGCP:
		return p.Value, nil
	default:
		return "", fmt.Errorf("principal %s has no GCP IAM member: use user:, group:, serviceAccount: or gcp:MEMBER", p)
	}
}

// principalOf maps an IAM member back to a principal: the short form
// (user:, group:, serviceAccount:) where the model accepts it, gcp:MEMBER
// otherwise, so that every member, even one the model cannot parse, maps
// to a principal whose Member is the member again.
func principalOf(member string) model.Principal {
	kind, _, _ := strings.Cut(member, ":")
	switch model.PrincipalKind(kind) {
	case model.KindUser, model.KindGroup, model.KindServiceAccount:
		if p, err := model.ParsePrincipal(member); err == nil {
			return p
		}
	}
	if p, err := model.ParsePrincipal("gcp:" + member); err == nil {
		return p
	}
	return model.Principal{Kind: model.KindGCP, Value: member}
}

// principalFromDescription prefers the principal elevate wrote into a
// managed condition's description when it names the same member: a grant
// for gcp:user:x is then observed as gcp:user:x, not user:x.
func principalFromDescription(c *expr.Expr, member string) model.Principal {
	p := principalOf(member)
	rest, ok := strings.CutPrefix(c.GetDescription(), "elevate grant "+ownerOf(c)+" for ")
	if !ok {
		return p
	}
	name, _, _ := strings.Cut(rest, " ")
	q, err := model.ParsePrincipal(name)
	if err != nil {
		return p
	}
	if m, err := Member(q); err == nil && strings.EqualFold(m, member) {
		return q
	}
	return p
}
