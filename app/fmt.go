package app

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/elevatehq/elevate/policies"
)

func newFmtCmd(s *streams) *cobra.Command {
	var check, diff bool
	cmd := &cobra.Command{
		Use:   "fmt [PATH...]",
		Short: "Rewrite policy files in the canonical format",
		Long: `Fmt rewrites the policy files under each PATH (default: the current
directory; directories are read recursively for .hcl files, skipping
dot-directories) in the canonical format, and prints the name of every file it
changed.

  --check  change nothing; list the files that need formatting and exit 1 if any do
  --diff   also print a unified diff of each change

A file with syntax errors is left alone and reported with its position
(exit 1). A path that cannot be read exits 2.`,
		Example: `  elevate fmt policies/
  elevate fmt --check --diff policies/`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"."}
			}
			return runFmt(s, args, check, diff)
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "do not write; exit 1 if any file needs formatting")
	cmd.Flags().BoolVar(&diff, "diff", false, "print a unified diff of the changes")
	return cmd
}

func runFmt(s *streams, paths []string, check, diff bool) error {
	files, diags := policies.PolicyFiles(paths...)
	ioFailed := false
	for _, d := range diags {
		fmt.Fprintf(s.err, "Error: %s: %s\n", d.Summary, d.Detail)
		ioFailed = true
	}
	if len(files) == 0 && !ioFailed {
		return usageErr("no .hcl files under %s; point elevate fmt at the directory that holds your policies", strings.Join(paths, ", "))
	}
	var broken, unformatted int
	for _, name := range files {
		src, err := readPolicyFile(name)
		if err != nil {
			fmt.Fprintf(s.err, "Error: %v\n", err)
			ioFailed = true
			continue
		}
		out, err := policies.Format(src, name)
		if err != nil {
			var fe *policies.FormatError
			if errors.As(err, &fe) {
				fmt.Fprintln(s.err, fe.Error())
			} else {
				fmt.Fprintf(s.err, "Error: %v\n", err)
			}
			broken++
			continue
		}
		if bytes.Equal(src, out) {
			continue
		}
		unformatted++
		fmt.Fprintln(s.out, name)
		if diff {
			slash := filepath.ToSlash(name)
			io.WriteString(s.out, unifiedDiff("a/"+slash, "b/"+slash, src, out))
		}
		if !check {
			if err := writeFileKeepMode(name, out); err != nil {
				fmt.Fprintf(s.err, "Error: %v\n", err)
				ioFailed = true
			}
		}
	}
	if broken > 0 {
		fmt.Fprintf(s.err, "%s not formatted: fix the syntax errors above and run elevate fmt again.\n",
			plural(broken, "file", "files"))
	}
	switch {
	case ioFailed:
		return silent(ExitUsage)
	case broken > 0, check && unformatted > 0:
		return silent(ExitFailed)
	}
	return nil
}

// readPolicyFile reads a file up to policies.MaxFileSize.
func readPolicyFile(name string) ([]byte, error) {
	info, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if info.Size() > policies.MaxFileSize {
		return nil, fmt.Errorf("%s is larger than %d MiB; split it into several files", name, policies.MaxFileSize>>20)
	}
	src, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return src, nil
}

// writeFileKeepMode replaces the file name points at (following symlinks)
// with data, keeping its permission bits. It writes a temporary file beside
// it and renames it over, so a crash never leaves half a policy.
func writeFileKeepMode(name string, data []byte) error {
	target, err := filepath.EvalSymlinks(name)
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	info, err := os.Stat(target)
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	// A dot-name, so the loader skips it should anything go wrong.
	tmp, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".fmt-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this finds nothing
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(info.Mode().Perm())
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), target)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// Unified diff of two texts, line by line (Myers' O(ND) algorithm). Written
// here rather than imported: it is small, and fmt output needs nothing more.

type diffOp struct {
	kind byte // ' ', '-' or '+'
	line string
}

// maxDiffEdits bounds the Myers search (its memory is quadratic in the edit
// count); past it the changed middle is shown as one replacement.
const maxDiffEdits = 2000

// unifiedDiff returns a unified diff with three lines of context, or "" when
// a and b are equal.
func unifiedDiff(oldName, newName string, a, b []byte) string {
	ops := diffLines(splitLines(a), splitLines(b))
	const ctx = 3
	var changes []int
	for i, op := range ops {
		if op.kind != ' ' {
			changes = append(changes, i)
		}
	}
	if len(changes) == 0 {
		return ""
	}
	// Line numbers (0-based) in a and b before each op.
	aPos, bPos := make([]int, len(ops)+1), make([]int, len(ops)+1)
	for i, op := range ops {
		aPos[i+1], bPos[i+1] = aPos[i], bPos[i]
		if op.kind != '+' {
			aPos[i+1]++
		}
		if op.kind != '-' {
			bPos[i+1]++
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", oldName, newName)
	for g := 0; g < len(changes); {
		last := g
		for last+1 < len(changes) && changes[last+1]-changes[last] <= 2*ctx+1 {
			last++
		}
		start := max(changes[g]-ctx, 0)
		end := min(changes[last]+1+ctx, len(ops))
		fmt.Fprintf(&sb, "@@ -%s +%s @@\n", hunkRange(aPos[start], aPos[end]-aPos[start]), hunkRange(bPos[start], bPos[end]-bPos[start]))
		for _, op := range ops[start:end] {
			sb.WriteByte(op.kind)
			sb.WriteString(op.line)
			if !strings.HasSuffix(op.line, "\n") {
				sb.WriteString("\n\\ No newline at end of file\n")
			}
		}
		g = last + 1
	}
	return sb.String()
}

// hunkRange formats "start,count" the way GNU diff does.
func hunkRange(start, count int) string {
	switch count {
	case 0:
		return fmt.Sprintf("%d,0", start)
	case 1:
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, count)
}

// splitLines splits after each newline; the last line may lack one.
func splitLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	lines := strings.SplitAfter(string(b), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// diffLines returns an edit script turning a into b: the common prefix and
// suffix, and a shortest edit script of the middle, deletions before
// insertions within each change.
func diffLines(a, b []string) []diffOp {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var ops []diffOp
	for _, l := range a[:pre] {
		ops = append(ops, diffOp{' ', l})
	}
	ops = append(ops, myers(a[pre:len(a)-suf], b[pre:len(b)-suf])...)
	for _, l := range a[len(a)-suf:] {
		ops = append(ops, diffOp{' ', l})
	}
	// Within each run of changes, show deletions first.
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		j := i
		for j < len(ops) && ops[j].kind != ' ' {
			j++
		}
		run := ops[i:j]
		var dels, ins []diffOp
		for _, op := range run {
			if op.kind == '-' {
				dels = append(dels, op)
			} else {
				ins = append(ins, op)
			}
		}
		copy(run, append(dels, ins...))
		i = j
	}
	return ops
}

// myers is the greedy forward search of Myers (1986), keeping each round's
// furthest-reaching diagonals to trace the path back.
func myers(a, b []string) []diffOp {
	n, m := len(a), len(b)
	replace := func() []diffOp {
		ops := make([]diffOp, 0, n+m)
		for _, l := range a {
			ops = append(ops, diffOp{'-', l})
		}
		for _, l := range b {
			ops = append(ops, diffOp{'+', l})
		}
		return ops
	}
	if n == 0 || m == 0 {
		return replace()
	}
	limit := min(n+m, maxDiffEdits)
	off := limit + 1
	v := make([]int, 2*limit+3)
	var trace [][]int // trace[d][k+d] is v[k] after round d
	done := -1
	for d := 0; d <= limit && done < 0; d++ {
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1]
			} else {
				x = v[off+k-1] + 1
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			v[off+k] = x
			if x >= n && y >= m {
				done = d
			}
		}
		trace = append(trace, slices.Clone(v[off-d:off+d+1]))
	}
	if done < 0 {
		return replace()
	}
	var rev []diffOp
	x, y := n, m
	for d := done; d > 0; d-- {
		prev := trace[d-1]
		at := func(k int) int { return prev[k+d-1] }
		k := x - y
		var pk int
		if k == -d || (k != d && at(k-1) < at(k+1)) {
			pk = k + 1
		} else {
			pk = k - 1
		}
		px := at(pk)
		py := px - pk
		for x > px && y > py {
			rev = append(rev, diffOp{' ', a[x-1]})
			x--
			y--
		}
		if x == px {
			rev = append(rev, diffOp{'+', b[y-1]})
			y--
		} else {
			rev = append(rev, diffOp{'-', a[x-1]})
			x--
		}
	}
	for x > 0 && y > 0 {
		rev = append(rev, diffOp{' ', a[x-1]})
		x--
		y--
	}
	ops := make([]diffOp, len(rev))
	for i, op := range rev {
		ops[len(rev)-1-i] = op
	}
	return ops
}
