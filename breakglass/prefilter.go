package breakglass

import "bytes"

// The substring pre-filter decides, for each escape-free record, whether it
// may name a break-glass account and so is worth decoding. It must never
// reject a record the matcher would accept, and it runs over every byte of
// the input, so it is built to cost about one memchr per distinct byte it
// looks for, whatever the number of needles and records:
//
//   - A needle that is a whole JSON string (`"Root"`) is found by the
//     checker, which compares the value strings of that length as it
//     validates them (wholeStrings): no extra pass over the input.
//   - Any other needle is found through its anchor, the byte of it that is
//     rarest in the start of the input. Each distinct anchor byte is searched
//     for once with bytes.IndexByte (vectorised), however many needles share
//     it, and each hit is checked against those needles in place.

// prefilter holds the needle searches of one scan.
type prefilter struct {
	cursors []*anchorCursor
	whole   wholeStrings
}

// anchorCursor walks the occurrences of one anchor byte through the input,
// checking at each the needles anchored on it. Queries come record by record
// in input order; an occurrence before the end of one record can never
// matter to a later one, so each occurrence is searched for and examined
// once, and the search runs ahead past records that hold none.
type anchorCursor struct {
	c       byte
	needles []anchored

	done  int64 // occurrences before done have been examined
	pos   int64 // the first occurrence at or after done; posNone or posUnknown
	clear int64 // when pos is posNone: none in [done, clear)
}

const (
	posNone    = -1 // none up to clear, the end of the input seen so far
	posUnknown = -2
)

// anchored is a needle and the index of its anchor byte in it.
type anchored struct {
	needle
	at int
}

// wholeStrings are the needles that are a whole JSON string: the checker
// compares every value string whose length is in lens with bodies. Only
// exact (case-sensitive) needles qualify.
type wholeStrings struct {
	lens   uint64 // bit n set: some body is n bytes long (n < 64)
	bodies [][]byte
}

// has reports whether body is one of the whole-string needles.
func (w *wholeStrings) has(body []byte) bool {
	for _, b := range w.bodies {
		if bytes.Equal(body, b) {
			return true
		}
	}
	return false
}

// wholeBody returns the text between the quotes of a needle that is a whole
// JSON string without escapes, shorter than 64 bytes; false otherwise.
func wholeBody(n needle) ([]byte, bool) {
	t := n.text
	if n.fold || len(t) < 3 || len(t) > 65 || t[0] != '"' || t[len(t)-1] != '"' {
		return nil, false
	}
	body := t[1 : len(t)-1]
	for _, c := range body {
		if c == '"' || c == '\\' || c < 0x20 {
			return nil, false
		}
	}
	return body, true
}

// newPrefilter sorts the needles into whole strings and anchored ones, and
// chooses anchors from the byte frequencies of sample (the start of the
// input): for each needle, the byte (in both cases when it folds) that adds
// the fewest occurrences to search, counting as free the bytes already
// searched for other needles.
func newPrefilter(needles []needle, sample []byte) *prefilter {
	var freq [256]int
	for _, c := range sample {
		freq[c]++
	}
	p := &prefilter{}
	byByte := map[byte]*anchorCursor{}
	for _, n := range needles {
		if body, ok := wholeBody(n); ok {
			p.whole.lens |= 1 << len(body)
			p.whole.bodies = append(p.whole.bodies, body)
			continue
		}
		best, bestAt := -1, 0
		for i, c := range n.text {
			cost := 0
			for _, b := range anchorBytes(n, c) {
				if byByte[b] == nil {
					cost += freq[b]
				}
			}
			if best < 0 || cost < best {
				best, bestAt = cost, i
			}
		}
		for _, b := range anchorBytes(n, n.text[bestAt]) {
			cur := byByte[b]
			if cur == nil {
				cur = &anchorCursor{c: b, pos: posUnknown}
				byByte[b] = cur
				p.cursors = append(p.cursors, cur)
			}
			cur.needles = append(cur.needles, anchored{needle: n, at: bestAt})
		}
	}
	return p
}

// anchorBytes returns the bytes that stand for c of needle n in the input:
// both cases of a letter when n folds.
func anchorBytes(n needle, c byte) []byte {
	if n.fold && 'a' <= c && c <= 'z' {
		return []byte{c, c - 'a' + 'A'}
	}
	return []byte{c}
}

// mayMatch reports whether any needle occurs within [start, end), absolute
// offsets of bytes in buf (which holds the input from base). Calls must come
// in input order: a call's start is at or after the previous call's end.
func (p *prefilter) mayMatch(buf []byte, base, start, end int64) bool {
	return p.anchoredIn(buf, base, start, end) || p.wholeIn(buf[start-base:end-base])
}

// anchoredIn is mayMatch for the anchored needles only: the scanner's
// question when the checker has looked for the whole-string ones.
func (p *prefilter) anchoredIn(buf []byte, base, start, end int64) bool {
	for _, cur := range p.cursors {
		if cur.scan(buf, base, start, end) {
			return true
		}
	}
	return false
}

// wholeIn reports whether raw contains a whole-string needle, quotes
// included: the pre-filter's answer where the checker did not look.
func (p *prefilter) wholeIn(raw []byte) bool {
	for _, b := range p.whole.bodies {
		for i := 1; i < len(raw); {
			k := bytes.Index(raw[i:], b)
			if k < 0 {
				break
			}
			i += k
			if raw[i-1] == '"' && i+len(b) < len(raw) && raw[i+len(b)] == '"' {
				return true
			}
			i++
		}
	}
	return false
}

// scan examines the occurrences of the cursor's byte before end and reports
// whether one of them is the anchor of a needle that lies within
// [start, end).
func (cur *anchorCursor) scan(buf []byte, base, start, end int64) bool {
	if cur.done < start {
		cur.done = start
		if cur.pos >= 0 && cur.pos < start || cur.pos == posNone && cur.clear <= start {
			cur.pos = posUnknown
		}
	}
	for {
		if cur.pos == posUnknown || cur.pos == posNone && cur.clear < end {
			from := max(cur.done, base)
			if cur.pos == posNone {
				from = max(from, cur.clear)
			}
			if i := bytes.IndexByte(buf[from-base:], cur.c); i >= 0 {
				cur.pos = from + int64(i)
			} else {
				cur.pos, cur.clear = posNone, base+int64(len(buf))
			}
		}
		q := cur.pos
		if q < 0 || q >= end {
			return false
		}
		cur.done, cur.pos = q+1, posUnknown
		for _, a := range cur.needles {
			s := q - int64(a.at)
			if s < start || s+int64(len(a.text)) > end {
				continue
			}
			cand := buf[s-base : s-base+int64(len(a.text))]
			if a.fold && equalFoldLower(cand, a.text) || !a.fold && bytes.Equal(cand, a.text) {
				return true
			}
		}
	}
}

// equalFoldLower reports whether s equals lower (already lower case)
// ignoring ASCII case.
func equalFoldLower(s, lower []byte) bool {
	for i, c := range s {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
