package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"golang.org/x/text/width"

	"github.com/elevatehq/elevate/policies"
)

// This file renders validation results in the four formats of
// `elevate validate --format`: text for people, json for scripts, github
// workflow commands for annotations, and SARIF 2.1.0 for code scanning.

// validation is the outcome of one `elevate validate` run.
type validation struct {
	set    *policies.Set
	diags  policies.Diagnostics
	strict bool
	// wd is the working directory, for making SARIF URIs relative.
	wd  string
	loc *locator
}

// exitCode is 2 for I/O problems, 1 for errors (and, with strict, warnings),
// else 0 (POLICY.md).
func (v *validation) exitCode() int {
	switch {
	case v.diags.HasIOErrors():
		return ExitUsage
	case v.diags.HasErrors(), v.strict && v.diags.HasWarnings():
		return ExitFailed
	}
	return ExitOK
}

func (v *validation) valid() bool { return v.exitCode() == ExitOK }

func (v *validation) sources() map[string][]byte {
	if v.set == nil {
		return nil
	}
	return v.set.Sources
}

// locator returns the validation's shared locator.
func (v *validation) locator() *locator {
	if v.loc == nil {
		v.loc = newLocator(v.sources())
	}
	return v.loc
}

// renderer writes a validation in one output format.
type renderer func(w io.Writer, v *validation, color bool) error

var renderers = map[string]renderer{
	"text":   renderText,
	"json":   func(w io.Writer, v *validation, _ bool) error { return renderJSON(w, v) },
	"github": func(w io.Writer, v *validation, _ bool) error { return renderGitHub(w, v) },
	"sarif":  func(w io.Writer, v *validation, _ bool) error { return renderSARIF(w, v) },
}

// formatNames lists the output formats for help and error messages.
func formatNames() string {
	names := make([]string, 0, len(renderers))
	for n := range renderers {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// location is a diagnostic's range resolved against its file's source.
// Columns count Unicode code points from 1, end positions are exclusive,
// and zero means unknown.
type location struct {
	file                       string
	line, col, endLine, endCol int
	text                       []byte // first line of the range, no newline; nil if unknown
	startOff, endOff           int    // underlined bytes of text
	byteStart                  int    // offset of the range start in the file; -1 if unknown
}

// locator resolves diagnostic ranges against the sources, indexing each
// file's line starts once so thousands of diagnostics stay cheap.
type locator struct {
	sources map[string][]byte
	lines   map[string][]int // byte offset of each line's start, by file
}

func newLocator(sources map[string][]byte) *locator {
	return &locator{sources: sources, lines: map[string][]int{}}
}

func (l *locator) lineStarts(file string) []int {
	if starts, ok := l.lines[file]; ok {
		return starts
	}
	src := l.sources[file]
	starts := []int{0}
	for i, c := range src {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	l.lines[file] = starts
	return starts
}

// lineAt returns the 1-based line holding byte offset b.
func lineAt(starts []int, b int) int {
	return sort.Search(len(starts), func(i int) bool { return starts[i] > b })
}

// locate resolves d.Range. It trusts byte offsets when they agree with the
// line number, and otherwise falls back to the line and column alone, so a
// hand-made or stale range still points somewhere sensible.
func (l *locator) locate(d policies.Diagnostic) location {
	r := d.Range
	loc := location{file: r.Filename, byteStart: -1}
	if r.Filename == "" || r.Start.Line < 1 {
		return loc
	}
	loc.line, loc.col = r.Start.Line, max(r.Start.Column, 1)
	if r.End.Line >= r.Start.Line {
		loc.endLine, loc.endCol = r.End.Line, max(r.End.Column, 1)
	}
	src, ok := l.sources[r.Filename]
	if !ok {
		return loc
	}
	starts := l.lineStarts(r.Filename)
	var lineStart, start int
	if b := r.Start.Byte; b >= 0 && b <= len(src) && lineAt(starts, b) == r.Start.Line {
		lineStart, start = starts[r.Start.Line-1], b
	} else {
		if r.Start.Line > len(starts) {
			return loc
		}
		lineStart = starts[r.Start.Line-1]
		start = lineStart
		for i := 1; i < r.Start.Column && start < len(src) && src[start] != '\n'; i++ {
			_, size := utf8.DecodeRune(src[start:])
			start += size
		}
	}
	lineEnd := len(src)
	if loc.line < len(starts) {
		lineEnd = starts[loc.line] - 1
	}
	loc.text = bytes.TrimSuffix(src[lineStart:lineEnd], []byte("\r"))
	loc.startOff = min(start-lineStart, len(loc.text))
	loc.byteStart = start
	loc.col = utf8.RuneCount(src[lineStart:start]) + 1

	end := r.End.Byte
	if r.End.Line < r.Start.Line || end < start || end > len(src) {
		// No usable end: a point at the start.
		loc.endOff = loc.startOff
		loc.endLine, loc.endCol = loc.line, loc.col
		return loc
	}
	if end <= lineEnd {
		loc.endOff = min(end-lineStart, len(loc.text))
	} else {
		loc.endOff = len(loc.text)
	}
	loc.endLine = lineAt(starts, end)
	loc.endCol = utf8.RuneCount(src[starts[loc.endLine-1]:end]) + 1
	return loc
}

const tabWidth = 4

// snippet returns the source line as it should be displayed (tabs expanded,
// control characters made visible) and a caret line underlining
// text[startOff:endOff], aligned by display width so tabs, wide characters
// and combining marks keep the carets under the right characters.
func snippet(text []byte, startOff, endOff int) (line, carets string) {
	var disp strings.Builder
	col, startCol, endCol := 0, -1, -1
	for i := 0; ; {
		if i >= startOff && startCol < 0 {
			startCol = col
		}
		if i >= endOff && endCol < 0 {
			endCol = col
		}
		if i >= len(text) {
			break
		}
		r, size := utf8.DecodeRune(text[i:])
		i += size
		switch {
		case r == '\t':
			n := tabWidth - col%tabWidth
			disp.WriteString(strings.Repeat(" ", n))
			col += n
		case r == utf8.RuneError && size == 1, unicode.IsControl(r):
			disp.WriteByte('?')
			col++
		default:
			disp.WriteRune(r)
			col += runeWidth(r)
		}
	}
	n := max(endCol-startCol, 1)
	return disp.String(), strings.Repeat(" ", startCol) + strings.Repeat("^", n)
}

// maxSnippetBytes is the longest source line shown whole; longer lines (a
// generated one-line list, say) are cut around the range with "…".
const maxSnippetBytes = 200

// clippedSnippet is snippet for a line cut to at most about
// maxSnippetBytes around the underlined range.
func clippedSnippet(text []byte, startOff, endOff int) (line, carets string) {
	if len(text) <= maxSnippetBytes {
		return snippet(text, startOff, endOff)
	}
	from := max(startOff-maxSnippetBytes/4, 0)
	to := min(max(endOff, startOff+1)+maxSnippetBytes/4, startOff+maxSnippetBytes*3/4, len(text))
	for from > 0 && !utf8.RuneStart(text[from]) {
		from--
	}
	for to < len(text) && !utf8.RuneStart(text[to]) {
		to++
	}
	line, carets = snippet(text[from:to], startOff-from, min(endOff, to)-from)
	if from > 0 {
		line, carets = "…"+line, " "+carets
	}
	if to < len(text) {
		line += "…"
	}
	return line, carets
}

// runeWidth is the number of terminal cells r takes.
func runeWidth(r rune) int {
	switch {
	case unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf):
		return 0
	case r >= 0x1F300 && r <= 0x1FAFF: // pictographs and emoji: wide in practice
		return 2
	}
	switch width.LookupRune(r).Kind() {
	case width.EastAsianWide, width.EastAsianFullwidth:
		return 2
	}
	return 1
}

// sanitize makes terminal control sequences in user-supplied text visible,
// keeping newlines and tabs.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r != '\n' && r != '\t' && unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

type palette struct{ err, warn, bold, reset string }

func newPalette(color bool) palette {
	if !color {
		return palette{}
	}
	return palette{err: "\x1b[1;31m", warn: "\x1b[1;33m", bold: "\x1b[1m", reset: "\x1b[0m"}
}

// renderText writes Terraform-style diagnostics and a one-line summary.
func renderText(w io.Writer, v *validation, color bool) error {
	p := newPalette(color)
	ew := &errWriter{w: w}
	contexts := &blockContexts{sources: v.sources(), blocks: map[string][]*hclsyntax.Block{}}
	for _, d := range v.diags {
		label, c := "Error", p.err
		if d.Severity == policies.SeverityWarning {
			label, c = "Warning", p.warn
		}
		ew.printf("%s%s:%s %s%s%s\n\n", c, label, p.reset, p.bold, sanitize(d.Summary), p.reset)
		loc := v.locator().locate(d)
		if loc.file != "" {
			_, haveSource := v.sources()[loc.file]
			switch {
			case loc.line == 0, !haveSource && d.Rule == policies.RuleIO:
				// I/O problems: the path is the whole story.
				ew.printf("  on %s:\n", sanitize(loc.file))
			default:
				where := ""
				if ctx := contexts.at(loc); ctx != "" {
					where = ", in " + ctx
				}
				ew.printf("  on %s line %d%s:\n", sanitize(loc.file), loc.line, sanitize(where))
			}
			if loc.text != nil {
				line, carets := clippedSnippet(loc.text, loc.startOff, loc.endOff)
				gutter := fmt.Sprintf("%4d: ", loc.line)
				ew.printf("%s%s\n%s%s%s%s\n", gutter, line, strings.Repeat(" ", len(gutter)), c, carets, p.reset)
			}
			ew.printf("\n")
		}
		ew.printf("[%s]", d.Rule)
		if d.Detail != "" {
			ew.printf(" %s", sanitize(d.Detail))
		}
		ew.printf("\n\n")
	}
	ew.printf("%s\n", v.summary())
	return ew.err
}

// blockContexts finds the top-level block around a position, like
// hcled.ContextString but with one parse and a binary search per file.
type blockContexts struct {
	sources map[string][]byte
	blocks  map[string][]*hclsyntax.Block // top-level blocks in source order
}

// at names the top-level block holding loc, like `jit "db"`, or "".
func (c *blockContexts) at(loc location) string {
	if loc.byteStart < 0 {
		return ""
	}
	blocks, ok := c.blocks[loc.file]
	if !ok {
		f, _ := hclsyntax.ParseConfig(c.sources[loc.file], loc.file, hcl.InitialPos)
		if f != nil {
			if body, isSyntax := f.Body.(*hclsyntax.Body); isSyntax {
				blocks = body.Blocks
			}
		}
		c.blocks[loc.file] = blocks
	}
	i := sort.Search(len(blocks), func(i int) bool { return blocks[i].Range().End.Byte > loc.byteStart })
	if i == len(blocks) || !blocks[i].Range().ContainsOffset(loc.byteStart) {
		return ""
	}
	b := blocks[i]
	var sb strings.Builder
	sb.WriteString(b.Type)
	for _, label := range b.Labels {
		fmt.Fprintf(&sb, " %q", label)
	}
	return sb.String()
}

// summary is the closing line of the text and github formats.
func (v *validation) summary() string {
	errs, warns := v.diags.Count()
	if v.valid() {
		s := "Success! The policy set is valid"
		if warns > 0 {
			s += ", with " + plural(warns, "warning", "warnings")
		}
		return s + " (" + v.setCounts() + ")."
	}
	s := plural(errs, "error", "errors") + ", " + plural(warns, "warning", "warnings") + "."
	if errs == 0 && v.strict {
		s += " Warnings fail validation with --strict."
	}
	return s
}

func (v *validation) setCounts() string {
	set := v.set
	if set == nil {
		set = &policies.Set{}
	}
	parts := []string{plural(len(set.Files), "file", "files")}
	for _, c := range []struct {
		n          int
		one, other string
	}{
		{len(set.Roles), "role", "roles"},
		{len(set.JIT), "jit policy", "jit policies"},
		{len(set.Temporary), "temporary grant", "temporary grants"},
		{len(set.BreakGlass), "break-glass policy", "break-glass policies"},
		{len(set.Notifiers), "notifier", "notifiers"},
		{len(set.Tests), "test", "tests"},
	} {
		if c.n > 0 {
			parts = append(parts, plural(c.n, c.one, c.other))
		}
	}
	return strings.Join(parts, ", ")
}

func plural(n int, one, other string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + other
}

// errWriter keeps the first write error so rendering code stays linear.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

type jsonDiagnostic struct {
	Severity  string `json:"severity"`
	Rule      string `json:"rule"`
	Summary   string `json:"summary"`
	Detail    string `json:"detail"`
	File      string `json:"file"`
	Line      int    `json:"line"`
	Column    int    `json:"column"`
	EndLine   int    `json:"end_line"`
	EndColumn int    `json:"end_column"`
}

type jsonValidation struct {
	Valid       bool             `json:"valid"`
	Diagnostics []jsonDiagnostic `json:"diagnostics"`
}

// renderJSON writes CLI.md's {"valid", "diagnostics"} object. Positions are
// 0 and file "" where unknown (diagnostics about the whole set).
func renderJSON(w io.Writer, v *validation) error {
	out := jsonValidation{Valid: v.valid(), Diagnostics: []jsonDiagnostic{}}
	for _, d := range v.diags {
		loc := v.locator().locate(d)
		out.Diagnostics = append(out.Diagnostics, jsonDiagnostic{
			Severity: string(d.Severity), Rule: d.Rule, Summary: d.Summary, Detail: d.Detail,
			File: filepath.ToSlash(loc.file), Line: loc.line, Column: loc.col,
			EndLine: loc.endLine, EndColumn: loc.endCol,
		})
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// renderGitHub writes one GitHub Actions workflow command per diagnostic
// (::error / ::warning), which the runner turns into annotations, then the
// summary as a plain log line.
func renderGitHub(w io.Writer, v *validation) error {
	ew := &errWriter{w: w}
	for _, d := range v.diags {
		loc := v.locator().locate(d)
		var props []string
		if loc.file != "" {
			props = append(props, "file="+escapeGitHubProperty(filepath.ToSlash(loc.file)))
		}
		if loc.line > 0 {
			props = append(props, "line="+strconv.Itoa(loc.line), "col="+strconv.Itoa(loc.col))
			if loc.endLine > 0 {
				props = append(props, "endLine="+strconv.Itoa(loc.endLine))
				// GitHub ignores column ranges that span lines.
				if loc.endLine == loc.line {
					props = append(props, "endColumn="+strconv.Itoa(loc.endCol))
				}
			}
		}
		props = append(props, "title="+escapeGitHubProperty(d.Rule))
		msg := d.Summary
		if d.Detail != "" {
			msg += "\n" + d.Detail
		}
		ew.printf("::%s %s::%s\n", d.Severity, strings.Join(props, ","), escapeGitHubData(msg))
	}
	ew.printf("%s\n", v.summary())
	return ew.err
}

var (
	githubDataEscaper     = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")
	githubPropertyEscaper = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C")
)

// escapeGitHubData escapes a workflow command's message.
func escapeGitHubData(s string) string { return githubDataEscaper.Replace(s) }

// escapeGitHubProperty escapes a workflow command's property value.
func escapeGitHubProperty(s string) string { return githubPropertyEscaper.Replace(s) }

// ruleDescriptions are the short descriptions SARIF shows for each rule
// (POLICY.md's table). A test keeps it in step with policies.LintRules.
var ruleDescriptions = map[string]string{
	policies.RuleSyntax:                       "HCL syntax error or invalid file encoding",
	policies.RuleSchema:                       "Unknown or missing block or attribute, wrong type, or invalid value",
	policies.RuleIO:                           "Policy files cannot be read",
	policies.RuleUnknownReference:             "A role, notifier or policy name that is not defined",
	policies.RuleDuplicateName:                "Two blocks of one kind share a name",
	policies.RuleJITMissingMaxDuration:        "A jit policy has no max_duration (temporary access with no hard expiry)",
	policies.RuleDefaultExceedsMax:            "default_duration is longer than max_duration",
	policies.RuleTemporaryMissingExpiry:       "A temporary grant has no expires, or expires is not after starts",
	policies.RuleTemporaryMissingApproval:     "A temporary grant without approved_by or justification",
	policies.RuleRoleSharedJITBreakglass:      "A role is reachable both through jit/temporary and through break_glass",
	policies.RuleBreakglassAccountShared:      "A break-glass account is shared, a group or a service account, or in two break_glass blocks",
	policies.RuleBreakglassTooManyAccounts:    "More break-glass accounts than breakglass_max_accounts",
	policies.RuleBreakglassAccountRequestable: "A break-glass account is among requesters, approvers or temporary principals",
	policies.RuleBreakglassMissingReview:      "A break_glass policy has no review_within",
	policies.RuleBreakglassMissingAlert:       "A break_glass policy has no notify",
	policies.RuleSelfApproval:                 "An approver set that only the requester can satisfy",
	policies.RuleJITDurationTooLong:           "max_duration is longer than jit_duration_cap",
	policies.RuleUnlimitedRenewals:            "Renewals allow access longer than the caps",
	policies.RuleTemporaryTooLong:             "A temporary window is longer than temporary_duration_cap",
	policies.RuleTemporaryRenewalChain:        "Temporary grants for the same principal and role whose windows touch or overlap",
	policies.RulePrivilegedWithoutApproval:    "A privileged role is self-service or auto-approved without a duration bound",
	policies.RuleJustificationNotRequired:     "A jit policy for a privileged role does not require a justification",
	policies.RuleBreakglassWithoutRecording:   "A break_glass policy without session_recording",
	policies.RuleGCPBasicRoleConditional:      "A GCP basic role (owner, editor, viewer) granted with a time condition, which GCP refuses",
}

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool       sarifTool     `json:"tool"`
	ColumnKind string        `json:"columnKind"`
	Results    []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri,omitempty"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID                   string       `json:"id"`
	ShortDescription     sarifMessage `json:"shortDescription"`
	DefaultConfiguration sarifConfig  `json:"defaultConfiguration"`
}

type sarifConfig struct {
	Level string `json:"level"`
}

type sarifMessage struct {
	Text string `json:"text"`
}

type sarifResult struct {
	RuleID    string          `json:"ruleId"`
	RuleIndex int             `json:"ruleIndex"`
	Level     string          `json:"level"`
	Message   sarifMessage    `json:"message"`
	Locations []sarifLocation `json:"locations,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysicalLocation `json:"physicalLocation"`
}

type sarifPhysicalLocation struct {
	ArtifactLocation sarifArtifactLocation `json:"artifactLocation"`
	Region           *sarifRegion          `json:"region,omitempty"`
}

type sarifArtifactLocation struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn,omitempty"`
	EndLine     int `json:"endLine,omitempty"`
	EndColumn   int `json:"endColumn,omitempty"`
}

const sarifSchema = "https://json.schemastore.org/sarif-2.1.0.json"

// renderSARIF writes a SARIF 2.1.0 log with one run. Rules lists every rule
// that has a result; columns are Unicode code points (columnKind).
// Diagnostics about the whole set have no location.
func renderSARIF(w io.Writer, v *validation) error {
	driver := sarifDriver{Name: "elevate", Version: Version, Rules: []sarifRule{}}
	ruleIndex := map[string]int{}
	results := []sarifResult{}
	for _, d := range v.diags {
		level := "error"
		if d.Severity == policies.SeverityWarning {
			level = "warning"
		}
		idx, ok := ruleIndex[d.Rule]
		if !ok {
			desc := ruleDescriptions[d.Rule]
			if desc == "" {
				desc = d.Summary
			}
			defaultLevel := level
			for _, r := range policies.LintRules {
				if r.Rule == d.Rule {
					defaultLevel = string(r.Severity)
				}
			}
			idx = len(driver.Rules)
			ruleIndex[d.Rule] = idx
			driver.Rules = append(driver.Rules, sarifRule{
				ID: d.Rule, ShortDescription: sarifMessage{Text: desc}, DefaultConfiguration: sarifConfig{Level: defaultLevel},
			})
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + d.Detail
		}
		res := sarifResult{RuleID: d.Rule, RuleIndex: idx, Level: level, Message: sarifMessage{Text: msg}}
		if loc := v.locator().locate(d); loc.file != "" {
			pl := sarifPhysicalLocation{ArtifactLocation: sarifArtifactLocation{URI: sarifURI(loc.file, v.wd)}}
			if loc.line > 0 {
				pl.Region = &sarifRegion{StartLine: loc.line, StartColumn: loc.col, EndLine: loc.endLine, EndColumn: loc.endCol}
			}
			res.Locations = []sarifLocation{{PhysicalLocation: pl}}
		}
		results = append(results, res)
	}
	log := sarifLog{
		Schema:  sarifSchema,
		Version: "2.1.0",
		Runs:    []sarifRun{{Tool: sarifTool{Driver: driver}, ColumnKind: "unicodeCodePoints", Results: results}},
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(log)
}

// sarifURI turns a file path into a URI reference: relative with forward
// slashes (relative to wd when the path is absolute and under it), or a
// file:// URI for an absolute path elsewhere.
func sarifURI(path, wd string) string {
	if filepath.IsAbs(path) && wd != "" {
		if rel, err := filepath.Rel(wd, path); err == nil && filepath.IsLocal(rel) {
			path = rel
		}
	}
	if filepath.IsAbs(path) {
		return (&url.URL{Scheme: "file", Path: filepath.ToSlash(path)}).String()
	}
	u := &url.URL{Path: filepath.ToSlash(filepath.Clean(path))}
	return u.String()
}
