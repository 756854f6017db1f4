package gcpemu

import (
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/genproto/googleapis/cloud/audit"
	ltype "google.golang.org/genproto/googleapis/logging/type"
)

// This file implements the subset of the Logging query language that
// elevate's audit reader uses: comparisons (=, !=, <, <=, >, >=, and the
// ":" has-operator) of a handful of LogEntry and AuditLog fields, combined
// with AND (explicit or by juxtaposition), OR, NOT and parentheses, and
// value lists such as logName = ("a" OR "b"). As in Cloud Logging, OR binds
// tighter than AND, logical operators must be upper case, and string
// comparisons ignore case. Anything else is refused by name.

// maxFilterLength is Cloud Logging's limit on a query's length.
const maxFilterLength = 20000

// filterNode is a parsed filter expression.
type filterNode interface {
	match(entry *loggingpb.LogEntry, al *audit.AuditLog) bool
}

type andNode []filterNode

func (n andNode) match(e *loggingpb.LogEntry, al *audit.AuditLog) bool {
	for _, c := range n {
		if !c.match(e, al) {
			return false
		}
	}
	return true
}

type orNode []filterNode

func (n orNode) match(e *loggingpb.LogEntry, al *audit.AuditLog) bool {
	for _, c := range n {
		if c.match(e, al) {
			return true
		}
	}
	return false
}

type notNode struct{ inner filterNode }

func (n notNode) match(e *loggingpb.LogEntry, al *audit.AuditLog) bool { return !n.inner.match(e, al) }

// comparison is FIELD OP VALUE (or a value list joined by OR).
type comparison struct {
	field  string
	op     string
	values []string
	times  []time.Time // for timestamp comparisons
}

func (c *comparison) match(e *loggingpb.LogEntry, al *audit.AuditLog) bool {
	for i := range c.values {
		if c.matchOne(e, al, i) {
			return true
		}
	}
	return false
}

func (c *comparison) matchOne(e *loggingpb.LogEntry, al *audit.AuditLog, i int) bool {
	if c.field == "timestamp" {
		return compareOrdered(e.GetTimestamp().AsTime().Compare(c.times[i]), c.op)
	}
	if c.field == "severity" {
		want := ltype.LogSeverity_value[strings.ToUpper(c.values[i])]
		return compareOrdered(cmpInt(int32(e.GetSeverity()), want), c.op)
	}
	got, ok := fieldValue(c.field, e, al)
	want := c.values[i]
	switch c.op {
	case ":":
		return ok && strings.Contains(strings.ToLower(got), strings.ToLower(want))
	case "=":
		return ok && strings.EqualFold(got, want)
	case "!=":
		return !ok || !strings.EqualFold(got, want)
	default:
		return ok && compareOrdered(strings.Compare(strings.ToLower(got), strings.ToLower(want)), c.op)
	}
}

func cmpInt(a, b int32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compareOrdered reports whether a comparison result c (-1, 0, 1 for
// field versus value) satisfies op.
func compareOrdered(c int, op string) bool {
	switch op {
	case "=", ":":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	}
	return false
}

// filterFields are the fields a filter may compare, besides timestamp and
// severity.
var filterFields = map[string]bool{
	"logName":                   true,
	"insertId":                  true,
	"resource.type":             true,
	"protoPayload.@type":        true,
	"protoPayload.serviceName":  true,
	"protoPayload.methodName":   true,
	"protoPayload.resourceName": true,
	"protoPayload.authenticationInfo.principalEmail": true,
	"protoPayload.requestMetadata.callerIp":          true,
}

// fieldValue reads a supported string field; ok is false when the entry
// has no such field (a non-audit payload, say).
func fieldValue(field string, e *loggingpb.LogEntry, al *audit.AuditLog) (string, bool) {
	switch field {
	case "logName":
		return e.GetLogName(), true
	case "insertId":
		return e.GetInsertId(), true
	case "resource.type":
		return e.GetResource().GetType(), e.GetResource() != nil
	case "protoPayload.@type":
		if pp := e.GetProtoPayload(); pp != nil {
			return pp.GetTypeUrl(), true
		}
		return "", false
	}
	if al == nil {
		return "", false
	}
	switch field {
	case "protoPayload.serviceName":
		return al.GetServiceName(), true
	case "protoPayload.methodName":
		return al.GetMethodName(), true
	case "protoPayload.resourceName":
		return al.GetResourceName(), true
	case "protoPayload.authenticationInfo.principalEmail":
		return al.GetAuthenticationInfo().GetPrincipalEmail(), al.GetAuthenticationInfo() != nil
	case "protoPayload.requestMetadata.callerIp":
		return al.GetRequestMetadata().GetCallerIp(), al.GetRequestMetadata() != nil
	}
	return "", false
}

// parsedFilter is a filter ready to match, and whether it bounds the
// timestamp.
type parsedFilter struct {
	root         filterNode // nil matches everything
	hasTimestamp bool
}

// parseFilter parses a ListLogEntries filter.
func parseFilter(src string) (*parsedFilter, error) {
	if len(src) > maxFilterLength {
		return nil, fmt.Errorf("the filter is %d characters long; Cloud Logging accepts at most %d", len(src), maxFilterLength)
	}
	toks, err := lexFilter(src)
	if err != nil {
		return nil, err
	}
	p := &filterParser{toks: toks}
	out := &parsedFilter{}
	if len(toks) == 0 {
		return out, nil
	}
	root, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, fmt.Errorf("unexpected %q at offset %d", p.toks[p.pos].text, p.toks[p.pos].off)
	}
	out.root = root
	out.hasTimestamp = p.sawTimestamp
	return out, nil
}

// token kinds.
const (
	tokWord   = iota // field name, bare value, AND/OR/NOT
	tokString        // "quoted"
	tokOp            // = != < <= > >= : =~ !~
	tokLParen
	tokRParen
	tokMinus
)

type token struct {
	kind int
	text string
	off  int
}

func lexFilter(src string) ([]token, error) {
	var out []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			out = append(out, token{tokLParen, "(", i})
			i++
		case c == ')':
			out = append(out, token{tokRParen, ")", i})
			i++
		case c == '"':
			var b strings.Builder
			j := i + 1
			for ; j < len(src) && src[j] != '"'; j++ {
				if src[j] == '\\' && j+1 < len(src) {
					j++
				}
				b.WriteByte(src[j])
			}
			if j >= len(src) {
				return nil, fmt.Errorf("unterminated string starting at offset %d", i)
			}
			out = append(out, token{tokString, b.String(), i})
			i = j + 1
		case c == '\'':
			return nil, fmt.Errorf("single-quoted string at offset %d: Cloud Logging strings use double quotes", i)
		case strings.IndexByte("=!<>:~", c) >= 0:
			j := i + 1
			for j < len(src) && strings.IndexByte("=<>~", src[j]) >= 0 {
				j++
			}
			op := src[i:j]
			switch op {
			case "=", "!=", "<", "<=", ">", ">=", ":":
			case "=~", "!~":
				return nil, fmt.Errorf("regular expression operator %q at offset %d is not supported by the emulator", op, i)
			default:
				return nil, fmt.Errorf("unknown operator %q at offset %d", op, i)
			}
			out = append(out, token{tokOp, op, i})
			i = j
		case c == '-' && (len(out) == 0 || out[len(out)-1].kind != tokOp):
			out = append(out, token{tokMinus, "-", i})
			i++
		default:
			j := i
			for j < len(src) && strings.IndexByte(" \t\n\r()\"=!<>:~", src[j]) < 0 {
				j++
			}
			out = append(out, token{tokWord, src[i:j], i})
			i = j
		}
	}
	return out, nil
}

type filterParser struct {
	toks         []token
	pos          int
	sawTimestamp bool
}

func (p *filterParser) peek() *token {
	if p.pos < len(p.toks) {
		return &p.toks[p.pos]
	}
	return nil
}

func (p *filterParser) isWord(text string) bool {
	t := p.peek()
	return t != nil && t.kind == tokWord && t.text == text
}

// parseAnd: or { [AND] or } — juxtaposition is an implicit AND.
func (p *filterParser) parseAnd() (filterNode, error) {
	var terms andNode
	for {
		n, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		terms = append(terms, n)
		if p.isWord("AND") {
			p.pos++
			continue
		}
		if t := p.peek(); t == nil || t.kind == tokRParen {
			break
		}
	}
	if len(terms) == 1 {
		return terms[0], nil
	}
	return terms, nil
}

// parseOr: unary { OR unary } — OR binds tighter than AND.
func (p *filterParser) parseOr() (filterNode, error) {
	var terms orNode
	for {
		n, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		terms = append(terms, n)
		if !p.isWord("OR") {
			break
		}
		p.pos++
	}
	if len(terms) == 1 {
		return terms[0], nil
	}
	return terms, nil
}

func (p *filterParser) parseUnary() (filterNode, error) {
	t := p.peek()
	if t == nil {
		return nil, fmt.Errorf("the filter ends where a comparison was expected")
	}
	if (t.kind == tokWord && t.text == "NOT") || t.kind == tokMinus {
		p.pos++
		n, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		return notNode{n}, nil
	}
	if t.kind == tokWord && (t.text == "and" || t.text == "or" || t.text == "not") {
		return nil, fmt.Errorf("lower-case %q at offset %d: logical operators must be upper case (AND, OR, NOT)", t.text, t.off)
	}
	if t.kind == tokLParen {
		p.pos++
		n, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		if r := p.peek(); r == nil || r.kind != tokRParen {
			return nil, fmt.Errorf("missing ) for ( at offset %d", t.off)
		}
		p.pos++
		return n, nil
	}
	return p.parseComparison()
}

func (p *filterParser) parseComparison() (filterNode, error) {
	f := p.peek()
	if f.kind != tokWord {
		return nil, fmt.Errorf("unexpected %q at offset %d: expected a field name", f.text, f.off)
	}
	p.pos++
	op := p.peek()
	if op == nil || op.kind != tokOp {
		return nil, fmt.Errorf("global restriction %q at offset %d (text search without a field) is not supported by the emulator: compare a field, e.g. logName = \"...\"", f.text, f.off)
	}
	p.pos++
	field := f.text
	if field != "timestamp" && field != "severity" && !filterFields[field] {
		return nil, fmt.Errorf("field %q at offset %d is not supported by the emulator: use timestamp, severity, %s", field, f.off, supportedFieldList())
	}
	c := &comparison{field: field, op: op.text}
	values, err := p.parseValues()
	if err != nil {
		return nil, err
	}
	c.values = values
	if field == "timestamp" {
		if op.text == ":" {
			return nil, fmt.Errorf("operator : on timestamp at offset %d is not supported: use <, <=, >, >=", op.off)
		}
		p.sawTimestamp = true
		for _, v := range values {
			ts, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return nil, fmt.Errorf("timestamp value %q is not an RFC 3339 time such as \"2026-01-02T15:04:05Z\"", v)
			}
			c.times = append(c.times, ts)
		}
	}
	if field == "severity" {
		for _, v := range values {
			if _, ok := ltype.LogSeverity_value[strings.ToUpper(v)]; !ok {
				return nil, fmt.Errorf("severity value %q is not a LogSeverity such as INFO, NOTICE or ERROR", v)
			}
		}
	}
	return c, nil
}

// parseValues reads one value or a parenthesised list joined by OR.
func (p *filterParser) parseValues() ([]string, error) {
	t := p.peek()
	if t == nil {
		return nil, fmt.Errorf("the filter ends where a value was expected")
	}
	switch t.kind {
	case tokString, tokWord:
		p.pos++
		return []string{t.text}, nil
	case tokLParen:
		p.pos++
		var out []string
		for {
			v := p.peek()
			if v == nil || (v.kind != tokString && v.kind != tokWord) {
				return nil, fmt.Errorf("value list at offset %d: expected a value", t.off)
			}
			out = append(out, v.text)
			p.pos++
			if p.isWord("OR") {
				p.pos++
				continue
			}
			if r := p.peek(); r != nil && r.kind == tokRParen {
				p.pos++
				return out, nil
			}
			return nil, fmt.Errorf("value list at offset %d: only values joined by OR are supported", t.off)
		}
	}
	return nil, fmt.Errorf("unexpected %q at offset %d: expected a value", t.text, t.off)
}

func supportedFieldList() string {
	return "logName, insertId, resource.type, protoPayload.@type, protoPayload.serviceName, protoPayload.methodName, protoPayload.resourceName, protoPayload.authenticationInfo.principalEmail or protoPayload.requestMetadata.callerIp"
}
