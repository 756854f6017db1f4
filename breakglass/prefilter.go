package breakglass

import "bytes"

// needleSearch finds, in the scanner's buffer, the occurrences of one needle
// ignoring ASCII case. It looks for the needle's anchor byte (in both cases)
// with bytes.IndexByte and checks the needle around each hit, remembering how
// far it has searched, so the whole input is searched once per needle however
// the records fall: the cost is that of a memchr over the input, not of a
// per-record substring search.
type needleSearch struct {
	needle []byte // lower case when fold
	fold   bool
	anchor int         // index in needle of the byte searched for
	lo, up *anchorScan // shared with other needles of the same anchor byte

	hit      int64 // start of the next occurrence found, or -1
	searched int64 // no occurrence starts before searched, other than hit
}

// anchorScan finds successive occurrences of one byte, remembering the
// last answer: queries mostly move forward, so most are answered without a
// search.
type anchorScan struct {
	c      byte
	origin int64 // where the last search started
	found  bool
	pos    int64 // the first occurrence at or after origin, when found
	upto   int64 // when !found: none in [origin, upto)
}

// next returns the first occurrence at or after a that lies in buf, or -1.
func (s *anchorScan) next(buf []byte, base, a int64) int64 {
	if a >= s.origin && s.found && s.pos >= a {
		return s.pos
	}
	from := a
	if a >= s.origin && !s.found && s.upto > from {
		from = s.upto
	}
	s.origin = a
	limit := base + int64(len(buf))
	if from >= limit {
		s.found, s.upto = false, from
		return -1
	}
	i := bytes.IndexByte(buf[from-base:], s.c)
	if i < 0 {
		s.found, s.upto = false, limit
		return -1
	}
	s.found, s.pos = true, from+int64(i)
	return s.pos
}

func newNeedleSearch(nd needle, freq *[256]int, anchors map[byte]*anchorScan) *needleSearch {
	n := &needleSearch{needle: nd.text, fold: nd.fold, hit: -1}
	best := -1
	for i, c := range n.needle {
		cost := freq[c]
		if n.fold && 'a' <= c && c <= 'z' {
			cost += freq[c-'a'+'A']
		}
		if best < 0 || cost <= best {
			best, n.anchor = cost, i
		}
	}
	scan := func(c byte) *anchorScan {
		if anchors[c] == nil {
			anchors[c] = &anchorScan{c: c}
		}
		return anchors[c]
	}
	c := n.needle[n.anchor]
	n.lo, n.up = scan(c), scan(c)
	if n.fold && 'a' <= c && c <= 'z' {
		n.up = scan(c - 'a' + 'A')
	}
	return n
}

// contains reports whether the needle occurs within [start, end), absolute
// offsets of bytes in buf (which holds the input from base). Calls must come
// with non-decreasing start.
func (n *needleSearch) contains(buf []byte, base, start, end int64) bool {
	if n.hit < start {
		n.hit = n.next(buf, base, max(start, n.searched))
	}
	return n.hit >= start && n.hit+int64(len(n.needle)) <= end
}

// next returns the first occurrence starting at or after from that lies
// wholly in buf, or -1; it records how far it searched.
func (n *needleSearch) next(buf []byte, base, from int64) int64 {
	from = max(from, base)
	limit := base + int64(len(buf))
	size := int64(len(n.needle))
	anchor := int64(n.anchor)
	for {
		a := from + anchor // the anchor of an occurrence starting at from or later
		q := n.lo.next(buf, base, a)
		if n.up != n.lo {
			if u := n.up.next(buf, base, a); u >= 0 && (q < 0 || u < q) {
				q = u
			}
		}
		if q < 0 {
			// No anchor up to the end of buf: occurrences can only start
			// in its last len(needle)-1 bytes, once more input arrives.
			n.searched = max(from, limit-size+1)
			return -1
		}
		start := q - anchor
		if start+size > limit {
			n.searched = start
			return -1
		}
		if cand := buf[start-base : start-base+size]; n.fold && equalFoldLower(cand, n.needle) || !n.fold && bytes.Equal(cand, n.needle) {
			n.searched = start + 1
			return start
		}
		from = start + 1
	}
}

// indexFrom returns the absolute offset of the first c at or after off, or
// -1.
func indexFrom(buf []byte, base, off int64, c byte) int64 {
	i := bytes.IndexByte(buf[off-base:], c)
	if i < 0 {
		return -1
	}
	return off + int64(i)
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

// prefilter holds the needle searches of one scan.
type prefilter struct {
	needles []*needleSearch
}

// newPrefilter chooses each needle's anchor: its byte that is rarest in
// sample (the start of the input), so the memchr runs long between hits
// whatever the log format.
func newPrefilter(needles []needle, sample []byte) *prefilter {
	var freq [256]int
	for _, c := range sample {
		freq[c]++
	}
	p := &prefilter{}
	anchors := map[byte]*anchorScan{}
	for _, n := range needles {
		p.needles = append(p.needles, newNeedleSearch(n, &freq, anchors))
	}
	return p
}

// mayMatch reports whether any needle occurs within [start, end).
func (p *prefilter) mayMatch(buf []byte, base, start, end int64) bool {
	for _, n := range p.needles {
		if n.contains(buf, base, start, end) {
			return true
		}
	}
	return false
}
