package policies

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// MaxFileSize is the largest policy file the loader reads (10 MiB).
const MaxFileSize = 10 << 20

// Load reads every .hcl file under paths (files, or directories read
// recursively in lexical order), parses and decodes them into one Set. It
// does not run the lint rules: Validate does. The returned Set is never nil;
// with errors it holds whatever decoded cleanly.
func Load(paths ...string) (*Set, Diagnostics) {
	var diags Diagnostics
	files := findFiles(paths, &diags)
	if len(files) == 0 && !diags.HasErrors() {
		diags.errorf(RuleIO, hcl.Range{}, "No policy files found",
			"No .hcl files under %s. Point elevate at the directory that holds your policies.", strings.Join(paths, ", "))
	}
	sources := make(map[string][]byte, len(files))
	for _, f := range files {
		src, err := readFile(f)
		if err != nil {
			diags.errorf(RuleIO, pathRange(f), "Cannot read policy file", "%v", err)
			continue
		}
		sources[f] = src
	}
	set, more := LoadSources(files, sources)
	return set, append(diags, more...)
}

// LoadSources parses and decodes in-memory files (names in load order,
// sources by name). Names missing from sources are skipped.
func LoadSources(names []string, sources map[string][]byte) (*Set, Diagnostics) {
	var diags Diagnostics
	set := &Set{Sources: make(map[string][]byte, len(names))}
	for _, name := range names {
		if src, ok := sources[name]; ok {
			set.Files = append(set.Files, name)
			set.Sources[name] = src
		}
	}
	// Parsing dominates loading and files are independent: parse them in
	// parallel, then decode in file order so diagnostics and block order
	// stay deterministic.
	// Parsing dominates loading and files are independent, so files are
	// parsed in parallel; decoding happens in file order (diagnostics and
	// block order stay deterministic) as soon as each file is parsed, and
	// the syntax tree is dropped right after, so only a few trees are ever
	// in memory at once.
	workers := runtime.GOMAXPROCS(0)
	results := make([]chan parsedFile, len(set.Files))
	for i := range results {
		results[i] = make(chan parsedFile, 1)
	}
	ahead := make(chan struct{}, 2*workers) // parsed but not yet decoded
	go func() {
		sem := make(chan struct{}, workers)
		for i, name := range set.Files {
			ahead <- struct{}{}
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				results[i] <- parseFile(name, set.Sources[name])
			}()
		}
	}()
	d := &decoder{set: set, diags: &diags}
	for i := range results {
		pf := <-results[i]
		<-ahead
		diags = append(diags, pf.diags...)
		if pf.file != nil {
			d.decodeFile(pf.file)
		}
	}
	d.finish()
	set.index()
	return set, diags
}

type parsedFile struct {
	file  *hcl.File // nil when the file could not be parsed
	diags Diagnostics
}

// parseFile checks the encoding and parses one file.
func parseFile(name string, src []byte) parsedFile {
	var pf parsedFile
	if !utf8.Valid(src) {
		pf.diags.errorf(RuleSyntax, invalidUTF8Range(name, src), "Invalid file encoding",
			"Policy files must be UTF-8 text. Re-save %s as UTF-8.", name)
		return pf
	}
	file, hdiags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
	if hdiags.HasErrors() {
		pf.diags.fromHCL(RuleSyntax, hdiags)
		return pf
	}
	pf.file = file
	return pf
}

// findFiles expands paths into .hcl files, sorted within each directory.
func findFiles(paths []string, diags *Diagnostics) []string {
	var files []string
	seen := map[string]bool{}
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			diags.errorf(RuleIO, pathRange(p), "Cannot read policy path", "%v", cleanPathErr(err))
			continue
		}
		if !info.IsDir() {
			if !seen[p] {
				seen[p] = true
				files = append(files, p)
			}
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				diags.errorf(RuleIO, pathRange(path), "Cannot read policy directory", "%v", cleanPathErr(err))
				if e != nil && e.IsDir() && path != p {
					return fs.SkipDir
				}
				return nil
			}
			if e.IsDir() {
				if path != p && strings.HasPrefix(e.Name(), ".") {
					return fs.SkipDir // .git, .terraform and friends
				}
				return nil
			}
			if strings.HasSuffix(e.Name(), ".hcl") && !strings.HasPrefix(e.Name(), ".") {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			diags.errorf(RuleIO, pathRange(p), "Cannot read policy directory", "%v", err)
		}
		slices.Sort(found)
		for _, f := range found {
			if !seen[f] {
				seen[f] = true
				files = append(files, f)
			}
		}
	}
	return files
}

// pathRange points an I/O diagnostic at the start of the file or directory,
// so every diagnostic about a path has a line (SARIF and editors need one).
func pathRange(name string) hcl.Range {
	return hcl.Range{Filename: name, Start: hcl.InitialPos, End: hcl.InitialPos}
}

func cleanPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}

// readFile reads at most MaxFileSize bytes and refuses larger files.
func readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, cleanPathErr(err)
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, cleanPathErr(err)
	}
	if len(src) > MaxFileSize {
		return nil, fmt.Errorf("%s is larger than %d MiB; split it into several files", name, MaxFileSize>>20)
	}
	return src, nil
}

// invalidUTF8Range points at the first invalid byte.
func invalidUTF8Range(name string, src []byte) hcl.Range {
	pos := hcl.Pos{Line: 1, Column: 1}
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRune(src[i:])
		if r == utf8.RuneError && size <= 1 {
			end := pos
			end.Byte++
			end.Column++
			return hcl.Range{Filename: name, Start: pos, End: end}
		}
		if r == '\n' {
			pos.Line++
			pos.Column = 1
		} else {
			pos.Column++
		}
		pos.Byte += size
		i += size
	}
	return hcl.Range{Filename: name, Start: pos, End: pos}
}
