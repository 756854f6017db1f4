package breakglass

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// This file is the structural layer of the scanner: a strict JSON syntax
// checker that finds where a value ends without building anything (so every
// record is checked, not only the ones worth decoding), and a lenient
// brace matcher used to step over records that are broken or too large.

// errIncomplete says the value runs past the end of the bytes available.
var errIncomplete = errors.New("value continues past the end of the data")

// errContainer says a top-level object holds a records array (with
// checker.topKeys set): the offset returned is that array's '['.
var errContainer = errors.New("object holds a records array")

// maxDepth is encoding/json's nesting limit: deeper values are rejected by
// the decoder, so the checker rejects them too.
const maxDepth = 10000

// syntaxError is a JSON syntax error at an offset of the checked bytes.
type syntaxError struct {
	off int64 // where the error is: an index into the checked bytes, made absolute by the scanner
	msg string
}

func (e *syntaxError) Error() string { return e.msg }

func syntaxErr(off int, format string, args ...any) error {
	return &syntaxError{off: int64(off), msg: fmt.Sprintf(format, args...)}
}

// checker validates JSON values. It accepts exactly what encoding/json's
// Valid accepts (a fuzz test holds it to that), and records whether any
// string held a backslash escape: the raw bytes of an escape-free record are
// its decoded text, which is what makes the substring pre-filter sound.
type checker struct {
	// deep holds the container kinds below the 64 innermost levels,
	// which value keeps in a register (see value).
	deep    []byte
	escaped bool
	// topKeys makes value stop with errContainer at the array of a
	// top-level member named like a records container (isContainerKey).
	topKeys bool
	// clean, if set, says that the bytes passed to the next call of value
	// hold no backslash before this index; value uses it once and clears
	// it. Strings there need no escape check, which is most of the
	// checker's work on them.
	clean int
	// whole, if set, lists the pre-filter's whole-string needles: value
	// records whether a value string (not a key) was one of them.
	whole    *wholeStrings
	wholeHit bool
}

// reset clears what the checker records about the values it checks.
func (c *checker) reset() { c.escaped, c.wholeHit = false, false }

// noteString records whether the value string body is a whole-string
// needle; its length is already known to be one of theirs.
func (c *checker) noteString(body []byte) {
	if c.whole.has(body) {
		c.wholeHit = true
	}
}

// SWAR constants: one bit pattern per byte lane.
const (
	lanes01 = 0x0101010101010101
	lanes80 = 0x8080808080808080
)

// specialLanes flags the lanes of x holding '"', '\\' or a byte below 0x20.
// XOR with 0x02 maps '"' (0x22) to 0x20 and keeps 0x00-0x1f below 0x20
// while no other byte falls below 0x21, so one less-than test finds both.
// Only the lowest flagged lane is exact (borrows can flag higher lanes),
// which is all the callers use.
func specialLanes(x uint64) uint64 {
	q := x ^ (lanes01 * 0x02)
	bs := x ^ (lanes01 * '\\')
	return ((q-lanes01*0x21)&^q | (bs-lanes01)&^bs) & lanes80
}

// quoteOrControlLanes flags the lanes of x holding '"' or a byte below
// 0x20, like specialLanes without the backslash: for input known to hold
// none, in two fewer operations per word.
func quoteOrControlLanes(x uint64) uint64 {
	q := x ^ (lanes01 * 0x02)
	return (q - lanes01*0x21) &^ q & lanes80
}

// stringSpan returns the offset of the first '"' or control byte at or
// after i, found sixteen bytes at a time, or the offset of the last fewer
// than eight bytes before clean when none comes before them. b[:clean]
// holds no backslash (i <= clean <= len(b)), so these are the only bytes
// that can end or break a string there; past clean, str takes over.
func stringSpan(b []byte, i, clean int) int {
	// Two words a step, both computed before either is tested: most
	// strings end within the first step, so the loop exit is predicted
	// well, which a word-at-a-time loop's is not (BenchmarkChecker: about
	// a quarter faster; four words a step gain nothing more).
	for clean-i >= 16 {
		w := b[i : i+16 : i+16]
		m0 := quoteOrControlLanes(binary.LittleEndian.Uint64(w[0:8]))
		m1 := quoteOrControlLanes(binary.LittleEndian.Uint64(w[8:16]))
		if m0 != 0 {
			return i + bits.TrailingZeros64(m0)>>3
		}
		if m1 != 0 {
			return i + 8 + bits.TrailingZeros64(m1)>>3
		}
		i += 16
	}
	r := b[i:clean]
	for len(r) >= 8 {
		if m := quoteOrControlLanes(binary.LittleEndian.Uint64(r)); m != 0 {
			return clean - len(r) + bits.TrailingZeros64(m)>>3
		}
		r = r[8:]
	}
	return clean - len(r)
}

// value checks one JSON value starting at b[i] (leading whitespace allowed)
// and returns the offset just past it. final says b holds all remaining
// input; otherwise a value that reaches the end of b, including a number that
// might continue, yields errIncomplete.
//
// It is the scanner's hot loop: the common tokens (short strings without
// escapes, structure without whitespace) are handled inline, eight string
// bytes at a time; everything else goes through the helpers below.
func (c *checker) value(b []byte, i int, final bool) (int, error) {
	// The open containers: depth of them, the innermost 64 as bits of
	// kinds (1 for an object, 0 for an array; the innermost is bit 0),
	// any deeper in c.deep.
	c.deep = c.deep[:0]
	var (
		depth int
		kinds uint64
	)
	n := len(b)
	var (
		err       error
		ch        byte
		ks        int
		wholeLens uint64
		container bool
	)
	if c.whole != nil {
		wholeLens = c.whole.lens
	}
	clean := min(c.clean, n)
	c.clean = 0

value:
	if i < n && b[i] <= ' ' {
		i = skipSpace(b, i)
	}
	if i >= n {
		return i, errIncomplete
	}
	switch ch = b[i]; ch {
	case '"':
		i++
		ks = i
		i = stringSpan(b, i, max(i, clean))
		if i < n && b[i] == '"' {
			i++
		} else if i, err = c.str(b, i); err != nil {
			return i, err
		}
		if wholeLens>>uint(i-1-ks)&1 != 0 {
			c.noteString(b[ks : i-1])
		}
	case '{':
		if depth >= maxDepth {
			return i, syntaxErr(i, "nesting deeper than %d levels", maxDepth)
		}
		i++
		if i < n && b[i] <= ' ' {
			i = skipSpace(b, i)
		}
		if i >= n {
			return i, errIncomplete
		}
		if b[i] == '}' {
			i++
			break
		}
		if depth >= 64 {
			c.deep = append(c.deep, byte(kinds>>63))
		}
		kinds = kinds<<1 | 1
		depth++
		goto key
	case '[':
		if depth >= maxDepth {
			return i, syntaxErr(i, "nesting deeper than %d levels", maxDepth)
		}
		i++
		if i < n && b[i] <= ' ' {
			i = skipSpace(b, i)
		}
		if i >= n {
			return i, errIncomplete
		}
		if b[i] == ']' {
			i++
			break
		}
		if depth >= 64 {
			c.deep = append(c.deep, byte(kinds>>63))
		}
		kinds <<= 1
		depth++
		goto value
	case 't':
		if i, err = literal(b, i, "true"); err != nil {
			return i, err
		}
	case 'f':
		if i, err = literal(b, i, "false"); err != nil {
			return i, err
		}
	case 'n':
		if i, err = literal(b, i, "null"); err != nil {
			return i, err
		}
	default:
		if ch != '-' && (ch < '0' || ch > '9') {
			return i, syntaxErr(i, "invalid character %s looking for the beginning of a value", quoteChar(ch))
		}
		if i, err = number(b, i, final); err != nil {
			return i, err
		}
	}

	// A value ended: close containers until one continues.
	for depth > 0 {
		if i < n && b[i] <= ' ' {
			i = skipSpace(b, i)
		}
		if i >= n {
			return i, errIncomplete
		}
		ch = b[i]
		obj := kinds&1 != 0
		switch {
		case ch == ',':
			i++
			if obj {
				goto key
			}
			goto value
		case obj && ch == '}', !obj && ch == ']':
			kinds >>= 1
			depth--
			if depth >= 64 {
				kinds |= uint64(c.deep[len(c.deep)-1]) << 63
				c.deep = c.deep[:len(c.deep)-1]
			}
			i++
		case obj:
			return i, syntaxErr(i, "invalid character %s after an object member (expected ',' or '}')", quoteChar(ch))
		default:
			return i, syntaxErr(i, "invalid character %s after an array element (expected ',' or ']')", quoteChar(ch))
		}
	}
	return i, nil

key:
	// An object member's key and colon; then its value.
	if i < n && b[i] <= ' ' {
		i = skipSpace(b, i)
	}
	if i >= n {
		return i, errIncomplete
	}
	if b[i] != '"' {
		return i, syntaxErr(i, "invalid character %s looking for the beginning of an object key", quoteChar(b[i]))
	}
	i++
	ks = i
	i = stringSpan(b, i, max(i, clean))
	if i < n && b[i] == '"' {
		i++
	} else if i, err = c.str(b, i); err != nil {
		return i, err
	}
	if c.topKeys && depth == 1 {
		container = isContainerKey(b[ks : i-1])
	}
	if i < n && b[i] == ':' && !container {
		i++
		goto value
	}
	if i < n && b[i] <= ' ' {
		i = skipSpace(b, i)
	}
	if i >= n {
		return i, errIncomplete
	}
	if b[i] != ':' {
		return i, syntaxErr(i, "invalid character %s after an object key (expected ':')", quoteChar(b[i]))
	}
	i++
	if container {
		if i < n && b[i] <= ' ' {
			i = skipSpace(b, i)
		}
		if i >= n {
			return i, errIncomplete
		}
		if b[i] == '[' {
			return i, errContainer
		}
		container = false
	}
	goto value
}

// str checks the rest of a string whose opening quote is at b[i-1] and
// returns the offset after the closing quote.
func (c *checker) str(b []byte, i int) (int, error) {
	n := len(b)
	for {
		for i+8 <= n {
			if m := specialLanes(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				goto special
			}
			i += 8
		}
		for i < n && b[i] != '"' && b[i] != '\\' && b[i] >= 0x20 {
			i++
		}
		if i >= n {
			return i, errIncomplete
		}
	special:
		switch ch := b[i]; {
		case ch == '"':
			return i + 1, nil
		case ch < 0x20:
			return i, syntaxErr(i, "invalid control character %s in a string", quoteChar(ch))
		}
		// A backslash escape.
		c.escaped = true
		if i+1 >= n {
			return i, errIncomplete
		}
		switch b[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
		case 'u':
			for k := 2; k < 6; k++ {
				if i+k >= n {
					return i, errIncomplete
				}
				if !isHex(b[i+k]) {
					return i + k, syntaxErr(i+k, "invalid character %s in a \\u escape", quoteChar(b[i+k]))
				}
			}
			i += 6
		default:
			return i + 1, syntaxErr(i+1, "invalid escape character %s in a string", quoteChar(b[i+1]))
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func literal(b []byte, i int, word string) (int, error) {
	for k := 0; k < len(word); k++ {
		if i+k >= len(b) {
			return i + k, errIncomplete
		}
		if b[i+k] != word[k] {
			return i + k, syntaxErr(i+k, "invalid character %s in literal %s", quoteChar(b[i+k]), word)
		}
	}
	return i + len(word), nil
}

// number checks a JSON number at b[i].
func number(b []byte, i int, final bool) (int, error) {
	n := len(b)
	// end reports the end of the number at j: at the end of b it may continue.
	end := func(j int) (int, error) {
		if j >= n && !final {
			return j, errIncomplete
		}
		return j, nil
	}
	need := func(j int, what string) error {
		if j >= n {
			if final {
				return syntaxErr(j, "unexpected end of data in a number (expected %s)", what)
			}
			return errIncomplete
		}
		return syntaxErr(j, "invalid character %s in a number (expected %s)", quoteChar(b[j]), what)
	}
	if b[i] == '-' {
		i++
	}
	switch {
	case i < n && b[i] == '0':
		i++
	case i < n && '1' <= b[i] && b[i] <= '9':
		for i++; i < n && isDigit(b[i]); i++ {
		}
	default:
		return i, need(i, "a digit")
	}
	if i < n && b[i] == '.' {
		i++
		if i >= n || !isDigit(b[i]) {
			return i, need(i, "a digit after the decimal point")
		}
		for i++; i < n && isDigit(b[i]); i++ {
		}
	}
	if i < n && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < n && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= n || !isDigit(b[i]) {
			return i, need(i, "a digit in the exponent")
		}
		for i++; i < n && isDigit(b[i]); i++ {
		}
	}
	return end(i)
}

// skipSpace returns the offset of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

func quoteChar(c byte) string {
	switch {
	case c == '\'':
		return `'\''`
	case c == '"':
		return `'"'`
	case c < 0x20 || c >= 0x7f:
		return fmt.Sprintf("0x%02x", c)
	}
	return "'" + string(c) + "'"
}

// braceSkipper finds the end of an object or array without checking its
// syntax: it tracks strings (with escapes) and bracket depth only. It is
// resumable across chunks, so records larger than the buffer can be stepped
// over without keeping them, and it stops at a raw newline inside a string,
// which valid JSON never has: that is where a damaged record's text ends.
type braceSkipper struct {
	inString bool
	escape   bool
	depth    int
}

// skipResult is how a braceSkipper feed ended.
type skipResult int

const (
	skipMore   skipResult = iota // consumed everything: feed more
	skipDone                     // the value ended at the returned offset
	skipBroken                   // a raw newline inside a string at the returned offset
)

// feed consumes b and returns where the value ended, broke, or len(b).
func (s *braceSkipper) feed(b []byte) (int, skipResult) {
	i := 0
	n := len(b)
	for i < n {
		if s.inString {
			if s.escape {
				s.escape = false
				i++
				continue
			}
			// Jump to the next quote, backslash or newline.
			j := i
			for j < n && b[j] != '"' && b[j] != '\\' && b[j] != '\n' {
				j++
			}
			if j >= n {
				return n, skipMore
			}
			switch b[j] {
			case '"':
				s.inString = false
			case '\\':
				s.escape = true
			case '\n':
				return j, skipBroken
			}
			i = j + 1
			continue
		}
		switch b[i] {
		case '"':
			s.inString = true
		case '{', '[':
			s.depth++
		case '}', ']':
			s.depth--
			if s.depth <= 0 {
				return i + 1, skipDone
			}
		}
		i++
	}
	return n, skipMore
}
