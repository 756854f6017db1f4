package policies

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/hashicorp/hcl/v2"
)

// Severity of a diagnostic.
type Severity string

// Severities. Errors fail validation; warnings fail it only with --strict.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Rule IDs that are not design lint rules.
const (
	// RuleSyntax is an HCL syntax error or an invalid file encoding.
	RuleSyntax = "syntax"
	// RuleSchema is a structural error: unknown or missing block or
	// attribute, wrong type, invalid duration, time, regex or principal.
	RuleSchema = "schema"
	// RuleIO is a file-system problem: unreadable path, no policy files,
	// file too large. The CLI exits 2 for it.
	RuleIO = "io"
)

// Diagnostic is one finding about a policy set, always with a rule ID and,
// where one exists, the source range of the offending token.
type Diagnostic struct {
	Severity Severity
	Rule     string
	Summary  string
	Detail   string
	// Range is the offending source; Range.Filename is "" for diagnostics
	// about the set as a whole.
	Range hcl.Range
}

// Error renders the diagnostic as "file:line,col: summary; detail".
func (d Diagnostic) Error() string {
	pos := ""
	if d.Range.Filename != "" {
		pos = fmt.Sprintf("%s:%d,%d: ", d.Range.Filename, d.Range.Start.Line, d.Range.Start.Column)
	}
	s := fmt.Sprintf("%s%s [%s]: %s", pos, d.Severity, d.Rule, d.Summary)
	if d.Detail != "" {
		s += "; " + d.Detail
	}
	return s
}

// Diagnostics is a list of diagnostics.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == SeverityError {
			return true
		}
	}
	return false
}

// HasWarnings reports whether any diagnostic is a warning.
func (ds Diagnostics) HasWarnings() bool {
	for _, d := range ds {
		if d.Severity == SeverityWarning {
			return true
		}
	}
	return false
}

// HasIOErrors reports whether any diagnostic is an I/O error.
func (ds Diagnostics) HasIOErrors() bool {
	for _, d := range ds {
		if d.Rule == RuleIO {
			return true
		}
	}
	return false
}

// Count returns the number of errors and warnings.
func (ds Diagnostics) Count() (errors, warnings int) {
	for _, d := range ds {
		if d.Severity == SeverityError {
			errors++
		} else {
			warnings++
		}
	}
	return
}

// Sort orders diagnostics by file, line, column, then rule, so output is
// stable whatever order rules ran in.
func (ds Diagnostics) Sort() {
	slices.SortStableFunc(ds, func(a, b Diagnostic) int {
		return cmp.Or(
			cmp.Compare(a.Range.Filename, b.Range.Filename),
			cmp.Compare(a.Range.Start.Line, b.Range.Start.Line),
			cmp.Compare(a.Range.Start.Column, b.Range.Start.Column),
			cmp.Compare(a.Rule, b.Rule),
			cmp.Compare(a.Summary, b.Summary),
		)
	})
}

func (ds *Diagnostics) add(sev Severity, rule string, rng hcl.Range, summary, detail string) {
	*ds = append(*ds, Diagnostic{Severity: sev, Rule: rule, Summary: summary, Detail: detail, Range: rng})
}

// errorf appends an error diagnostic.
func (ds *Diagnostics) errorf(rule string, rng hcl.Range, summary, detailFormat string, args ...any) {
	ds.add(SeverityError, rule, rng, summary, fmt.Sprintf(detailFormat, args...))
}

// warnf appends a warning diagnostic.
func (ds *Diagnostics) warnf(rule string, rng hcl.Range, summary, detailFormat string, args ...any) {
	ds.add(SeverityWarning, rule, rng, summary, fmt.Sprintf(detailFormat, args...))
}

// fromHCL converts HCL's diagnostics, tagging them with rule.
func (ds *Diagnostics) fromHCL(rule string, hds hcl.Diagnostics) {
	for _, h := range hds {
		d := Diagnostic{Severity: SeverityError, Rule: rule, Summary: h.Summary, Detail: h.Detail}
		if h.Severity == hcl.DiagWarning {
			d.Severity = SeverityWarning
		}
		if h.Subject != nil {
			d.Range = *h.Subject
		}
		*ds = append(*ds, d)
	}
}
