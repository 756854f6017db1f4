package breakglass

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// checkWhole reports whether the checker accepts b as exactly one JSON value
// with optional surrounding whitespace: json.Valid's contract. It checks b
// twice, as the scanner can: knowing nothing, and told where the first
// backslash is; the two must agree on everything.
func checkWhole(t testing.TB, b []byte) bool {
	t.Helper()
	var plain checker
	end, err := plain.value(b, 0, true)
	told := checker{clean: backslashFree(b)}
	end2, err2 := told.value(b, 0, true)
	if end != end2 || (err == nil) != (err2 == nil) || plain.escaped != told.escaped {
		t.Fatalf("%q: checked alone (%d, %v, escaped %v) and told it is clean up to %d (%d, %v, escaped %v)",
			b, end, err, plain.escaped, backslashFree(b), end2, err2, told.escaped)
	}
	if err != nil {
		return false
	}
	return skipSpace(b, end) == len(b)
}

// backslashFree returns the index of the first backslash in b, or len(b).
func backslashFree(b []byte) int {
	if i := bytes.IndexByte(b, '\\'); i >= 0 {
		return i
	}
	return len(b)
}

var checkerCases = []string{
	`{}`, `[]`, `""`, `0`, `-0`, `1.5e10`, `-1E-2`, `true`, `false`, `null`,
	`{"a":1,"b":[1,2,{"c":null}],"d":"x\"y\\z\/\b\f\n\r\t\u00e9"}`,
	` { "a" : [ 1 , 2 ] } `, "\t[\r\n]\n",
	`{"a":1,}`, `[1,]`, `{"a"}`, `{"a":}`, `{:1}`, `{1:1}`, `[1 2]`, `{"a":1 "b":2}`,
	`01`, `1.`, `.5`, `1e`, `1e+`, `-`, `+1`, `tru`, `nul`, `True`,
	`"abc`, `"a` + "\n" + `b"`, "\"a\x01\"", `"\x"`, `"\u12"`, `"\u12G4"`, `"\'"`,
	`{"a":1}}`, `[[]`, `[]]`, `{"a":[}`, `}`, `]`, ``, ` `, `{"a":"é","b":"日本"}`,
	"\"\xff\xfe\"", `[1,2,3]garbage`, `{"a":1}{"b":2}`,
	`"` + strings.Repeat("x", 100) + `\"` + strings.Repeat("y", 17) + `"`,
	`"` + strings.Repeat(`\\`, 9) + `"`,
}

func TestCheckerAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range checkerCases {
		if got, want := checkWhole(t, []byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("checker(%q) = %v, json.Valid = %v", c, got, want)
		}
	}
}

func TestCheckerDepthLimit(t *testing.T) {
	deep := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	if !checkWhole(t, []byte(deep)) {
		t.Errorf("nesting of exactly %d levels rejected", maxDepth)
	}
	tooDeep := strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)
	if checkWhole(t, []byte(tooDeep)) || json.Valid([]byte(tooDeep)) {
		t.Errorf("nesting of %d levels accepted (json.Valid: %v)", maxDepth+1, json.Valid([]byte(tooDeep)))
	}
}

// Objects and arrays nested alternately past the 64 levels the checker
// keeps in a register, closed right and wrong at every depth: the checker
// must remember which kind each level was.
func TestCheckerDeepMixedNesting(t *testing.T) {
	for _, depth := range []int{63, 64, 65, 66, 127, 128, 129, 200} {
		var open, close strings.Builder
		kinds := make([]bool, depth) // true: object
		for d := range depth {
			kinds[d] = (d*7+d/3)%3 != 0
			if kinds[d] {
				open.WriteString(`{"k":`)
			} else {
				open.WriteString(`[1,`)
			}
		}
		for d := depth - 1; d >= 0; d-- {
			if kinds[d] {
				close.WriteString(`}`)
			} else {
				close.WriteString(`]`)
			}
		}
		doc := open.String() + "0" + close.String()
		if got, want := checkWhole(t, []byte(doc)), json.Valid([]byte(doc)); got != want || !got {
			t.Errorf("depth %d: checker %v, json.Valid %v", depth, got, want)
		}
		// Swap one closer at each depth: always invalid.
		cl := []byte(close.String())
		for k := range cl {
			bad := append([]byte(nil), cl...)
			if bad[k] == '}' {
				bad[k] = ']'
			} else {
				bad[k] = '}'
			}
			doc := open.String() + "0" + string(bad)
			if checkWhole(t, []byte(doc)) || json.Valid([]byte(doc)) {
				t.Fatalf("depth %d: a wrong closer at %d accepted", depth, k)
			}
		}
	}
}

// Every proper prefix of a valid object is incomplete, never an error and
// never accepted: that is what lets the scanner read more and retry.
func TestCheckerPrefixesAreIncomplete(t *testing.T) {
	doc := []byte(`{"a":[1,-2.5e3,true,null,"x\u00e9\"y"],"b":{"c":{}},"d":12}`)
	for n := 0; n < len(doc); n++ {
		for _, clean := range []int{0, backslashFree(doc[:n])} {
			c := checker{clean: clean}
			_, err := c.value(doc[:n], 0, false)
			if err != errIncomplete {
				t.Errorf("prefix %q (clean to %d): err = %v, want errIncomplete", doc[:n], clean, err)
			}
		}
	}
	var c checker
	if end, err := c.value(doc, 0, false); err != nil || end != len(doc) {
		t.Errorf("whole document: end %d err %v", end, err)
	}
}

func TestCheckerNumberAtEndNeedsFinal(t *testing.T) {
	var c checker
	if _, err := c.value([]byte("123"), 0, false); err != errIncomplete {
		t.Errorf("non-final number: err = %v, want errIncomplete", err)
	}
	if end, err := c.value([]byte("123"), 0, true); err != nil || end != 3 {
		t.Errorf("final number: end %d err %v", end, err)
	}
}

func TestCheckerNotesEscapes(t *testing.T) {
	for doc, want := range map[string]bool{
		`{"a":"plain"}`:       false,
		`{"a":"x\"y"}`:        true,
		`{"a\/b":1}`:          true,
		`["\u0041"]`:          true,
		`{"arn":"a:b/c@d.e"}`: false,
	} {
		var c checker
		if _, err := c.value([]byte(doc), 0, true); err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		if c.escaped != want {
			t.Errorf("%s: escaped = %v, want %v", doc, c.escaped, want)
		}
	}
}

func TestBraceSkipper(t *testing.T) {
	for _, tc := range []struct {
		in   string
		end  int
		want skipResult
	}{
		{`{"a":"}"}tail`, 9, skipDone},
		{`[{"a":["]"]}],`, 13, skipDone},
		{`{"a":"x\"}"}`, 12, skipDone},
		{`{"a":bad json}x`, 14, skipDone},
		{"{\"a\":\"broken\n{\"b\":1}", 12, skipBroken},
		{`{"a":{"b":1}`, 12, skipMore},
	} {
		var s braceSkipper
		end, res := s.feed([]byte(tc.in))
		if end != tc.end || res != tc.want {
			t.Errorf("%q: got (%d, %d), want (%d, %d)", tc.in, end, res, tc.end, tc.want)
		}
	}
	// Resumable: the same answer fed one byte at a time.
	in := []byte(`{"k":"a\\\"}b","l":[{}]} rest`)
	var s braceSkipper
	for i := range in {
		n, res := s.feed(in[i : i+1])
		if res == skipDone {
			if i+n != 24 {
				t.Errorf("byte-wise feed ended at %d, want 24", i+n)
			}
			return
		}
	}
	t.Error("byte-wise feed never ended")
}

func FuzzChecker(f *testing.F) {
	for _, c := range checkerCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := checkWhole(t, b), json.Valid(b); got != want {
			t.Fatalf("checker(%q) = %v, json.Valid = %v", b, got, want)
		}
		// The ASCII text of an escape-free valid string is its raw bytes'
		// ASCII text: decoding only turns invalid UTF-8 into U+FFFD. That is
		// what makes the pre-filter's raw substring search sound.
		var c checker
		if end, err := c.value(b, 0, true); err == nil && !c.escaped {
			if i := skipSpace(b, 0); b[i] == '"' {
				var s string
				if err := json.Unmarshal(b[:end], &s); err != nil {
					t.Fatalf("valid string %q: %v", b[:end], err)
				}
				if asciiOnly([]byte(s)) != asciiOnly(b[i+1:end-1]) {
					t.Fatalf("escape-free string %q decoded to %q", b[i:end], s)
				}
			}
		}
	})
}

func asciiOnly(b []byte) string {
	return string(bytes.Map(func(r rune) rune {
		if r < 0x80 {
			return r
		}
		return -1
	}, b))
}

// The checker notes a whole-string needle exactly when an escape-free
// value string (never a key) equals one, at any depth and in arrays.
func TestCheckerNotesWholeStrings(t *testing.T) {
	whole := &wholeStrings{lens: 1<<4 | 1<<1, bodies: [][]byte{[]byte("Root"), []byte("x")}}
	for doc, want := range map[string]bool{
		`{"type":"Root"}`:     true,
		`{"a":{"b":[1,"x"]}}`: true,
		`["Root"]`:            true,
		`"Root"`:              true,
		`{"Root":"root"}`:     false,
		`{"type":"Root2","n":"xRoot","m":"ROOT"}`: false,
		`{"x":1,"y":"xx"}`:                        false,
		`{"a":"` + strings.Repeat("R", 40) + `"}`: false,
	} {
		c := checker{whole: whole}
		if _, err := c.value([]byte(doc), 0, true); err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		if c.wholeHit != want {
			t.Errorf("%s: wholeHit = %v, want %v", doc, c.wholeHit, want)
		}
	}
}

// Property: on random escape-free documents, the checker's note agrees
// with decoding the document and looking at every value string.
func TestCheckerWholeStringsAgreeWithDecoding(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	words := []string{"Root", "root", "Root ", "Ro", "Rooot", "xRoot", "Role", "", "Root\u00e9", "type"}
	var gen func(depth int) any
	gen = func(depth int) any {
		switch k := r.IntN(6); {
		case k == 0 && depth < 4:
			m := map[string]any{}
			for range r.IntN(5) {
				m[words[r.IntN(len(words))]] = gen(depth + 1)
			}
			return m
		case k == 1 && depth < 4:
			var a []any
			for range r.IntN(5) {
				a = append(a, gen(depth+1))
			}
			return a
		case k == 2:
			return r.IntN(1000)
		default:
			return words[r.IntN(len(words))]
		}
	}
	var hasValue func(v any) bool
	hasValue = func(v any) bool {
		switch v := v.(type) {
		case string:
			return v == "Root"
		case map[string]any:
			for _, e := range v {
				if hasValue(e) {
					return true
				}
			}
		case []any:
			for _, e := range v {
				if hasValue(e) {
					return true
				}
			}
		}
		return false
	}
	whole := &wholeStrings{lens: 1 << 4, bodies: [][]byte{[]byte("Root")}}
	hits := 0
	for range 3000 {
		v := gen(0)
		doc, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		c := checker{whole: whole}
		if _, err := c.value(doc, 0, true); err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		if c.escaped {
			continue
		}
		want := hasValue(v)
		if want {
			hits++
		}
		if c.wholeHit != want {
			t.Fatalf("%s: wholeHit = %v, want %v", doc, c.wholeHit, want)
		}
	}
	if hits < 100 {
		t.Fatalf("only %d documents held the value: the property was barely exercised", hits)
	}
}
