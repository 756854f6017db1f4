package policies

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
)

// FormatError is why Format refused a file: its syntax diagnostics.
type FormatError struct {
	Diagnostics Diagnostics
}

// Error renders one "file:line:col: summary: detail" line per diagnostic.
func (e *FormatError) Error() string {
	lines := make([]string, 0, len(e.Diagnostics))
	for _, d := range e.Diagnostics {
		s := fmt.Sprintf("%s:%d:%d: %s", d.Range.Filename, d.Range.Start.Line, d.Range.Start.Column, d.Summary)
		if d.Detail != "" {
			s += ": " + d.Detail
		}
		lines = append(lines, s)
	}
	return strings.Join(lines, "\n")
}

// Format returns the canonical formatting of one policy file: hclwrite's
// layout (two-space indentation, aligned equals signs, normalised spacing),
// no trailing whitespace, no leading blank lines, at most one blank line in a
// row and exactly one final newline. Heredoc bodies are left byte for byte,
// since their whitespace is part of a value. Format is idempotent. It
// refuses a file that is not valid UTF-8 or has HCL syntax errors, returning
// a *FormatError that says where; filename only labels those positions.
func Format(src []byte, filename string) ([]byte, error) {
	if !utf8.Valid(src) {
		var diags Diagnostics
		diags.errorf(RuleSyntax, invalidUTF8Range(filename, src), "Invalid file encoding",
			"Policy files must be UTF-8 text. Re-save %s as UTF-8.", filename)
		return nil, &FormatError{Diagnostics: diags}
	}
	if err := checkSyntax(src, filename); err != nil {
		return nil, err
	}
	out := tidyLines(hclwrite.Format(src))
	if err := checkSyntax(out, filename); err != nil {
		// hclwrite only moves whitespace, so this would be a bug in it or here.
		return nil, fmt.Errorf("formatting %s produced invalid HCL, so the file was left alone; please report this: %w", filename, err)
	}
	return out, nil
}

func checkSyntax(src []byte, filename string) error {
	_, hdiags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if !hdiags.HasErrors() {
		return nil
	}
	var diags Diagnostics
	diags.fromHCL(RuleSyntax, hdiags)
	diags.Sort()
	return &FormatError{Diagnostics: diags}
}

// tidyLines trims trailing whitespace, drops leading and trailing blank
// lines, squeezes runs of blank lines to one and ends the text with one
// newline. Lines whose newline belongs to a heredoc are copied unchanged.
func tidyLines(src []byte) []byte {
	spans := heredocSpans(src)
	// Offsets are asked for in increasing order, so one cursor suffices.
	cur := 0
	protected := func(off int) bool {
		for cur < len(spans) && spans[cur][1] <= off {
			cur++
		}
		return cur < len(spans) && off >= spans[cur][0]
	}
	var b bytes.Buffer
	b.Grow(len(src) + 1)
	pendingBlank, started := false, false
	for start := 0; start < len(src); {
		end := bytes.IndexByte(src[start:], '\n')
		next := len(src)
		if end < 0 {
			end = len(src)
		} else {
			end += start
			next = end + 1
		}
		line := src[start:end]
		if end < len(src) && protected(end) {
			if pendingBlank {
				b.WriteByte('\n')
				pendingBlank = false
			}
			b.Write(src[start:next])
			started = true
			start = next
			continue
		}
		line = bytes.TrimRight(line, " \t\r")
		if len(line) == 0 {
			pendingBlank = started
			start = next
			continue
		}
		if pendingBlank {
			b.WriteByte('\n')
			pendingBlank = false
		}
		b.Write(line)
		b.WriteByte('\n')
		started = true
		start = next
	}
	return b.Bytes()
}

// heredocSpans returns the byte ranges [start, end) from each outermost
// heredoc opener to its closing marker.
func heredocSpans(src []byte) [][2]int {
	tokens, _ := hclsyntax.LexConfig(src, "", hcl.InitialPos)
	var spans [][2]int
	depth, start := 0, 0
	for _, t := range tokens {
		switch t.Type {
		case hclsyntax.TokenOHeredoc:
			if depth == 0 {
				start = t.Range.Start.Byte
			}
			depth++
		case hclsyntax.TokenCHeredoc:
			if depth > 0 {
				depth--
				if depth == 0 {
					spans = append(spans, [2]int{start, t.Range.End.Byte})
				}
			}
		}
	}
	if depth > 0 {
		spans = append(spans, [2]int{start, len(src)})
	}
	return spans
}

// PolicyFiles expands paths into the policy files Load would read: files as
// given, directories walked recursively for .hcl files (dot-directories and
// dot-files skipped), sorted within each directory. Problems reading a path
// are RuleIO diagnostics; finding no file is not reported here.
func PolicyFiles(paths ...string) ([]string, Diagnostics) {
	var diags Diagnostics
	files := findFiles(paths, &diags)
	return files, diags
}
