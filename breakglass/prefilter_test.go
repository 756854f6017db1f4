package breakglass

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

// The incremental needle search agrees with a plain case-folded substring
// test on every record, whatever the records, the needles and the window of
// input the buffer holds.
func TestPrefilterAgreesWithSubstringSearch(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	alphabet := []byte(`abkKRrootBREAKglass-"{}:,@.0123456789 `)
	for round := 0; round < 300; round++ {
		needles := []needle{folded("breakglass-alice"), folded("kk"), {text: []byte(`"Root"`)}, folded("a@b.c")}[:1+r.IntN(4)]
		data := make([]byte, 2000)
		for i := range data {
			data[i] = alphabet[r.IntN(len(alphabet))]
		}
		// Plant needles in random case.
		for k := 0; k < 10; k++ {
			nd := needles[r.IntN(len(needles))]
			at := r.IntN(len(data) - len(nd.text))
			copy(data[at:], nd.text)
			if nd.fold {
				copy(data[at:], randomCase(r, string(nd.text)))
			}
		}
		p := newPrefilter(needles, data[:r.IntN(len(data))])
		lower := bytes.ToLower(data)
		// Records are consecutive spans; the buffer window starts at or
		// before the record and ends at or after it.
		for start := 0; start < len(data); {
			end := min(len(data), start+1+r.IntN(120))
			base := max(0, start-r.IntN(50))
			limit := min(len(data), end+r.IntN(200))
			got := p.mayMatch(data[base:limit], int64(base), int64(start), int64(end))
			want := false
			for _, nd := range needles {
				hay := data[start:end]
				if nd.fold {
					hay = lower[start:end]
				}
				want = want || bytes.Contains(hay, nd.text)
			}
			if got != want {
				t.Fatalf("round %d, record [%d,%d) of %q with needles %v: mayMatch %v, want %v", round, start, end, data[start:end], needles, got, want)
			}
			start = end
		}
	}
}

// Needles that share their rarest byte share one search for it, and a
// whole-string needle costs no search at all: it is left to the checker.
func TestPrefilterSearchesEachAnchorByteOnce(t *testing.T) {
	// Every byte of the needles but k is common in the sample.
	sample := []byte(strings.Repeat(`{"aaaa":"eeee","rrr":"ssss","lll":"iiii","ccc":"bbb","ggg":"----","dddd":"mmm","nnn":"ttt"}`, 3))
	p := newPrefilter([]needle{folded("breakglass-alice"), folded("BreakGlassAdmin"), {text: []byte(`"Root"`)}}, sample)
	var bytesSearched []byte
	for _, c := range p.cursors {
		bytesSearched = append(bytesSearched, c.c)
	}
	if len(p.cursors) != 2 || p.cursors[0].c != 'k' || p.cursors[1].c != 'K' || len(p.cursors[0].needles) != 2 {
		t.Errorf("searched bytes %q, want the needles' shared rarest byte in both cases", bytesSearched)
	}
	if len(p.whole.bodies) != 1 || string(p.whole.bodies[0]) != "Root" || p.whole.lens != 1<<4 {
		t.Errorf("whole strings %+v, want Root", p.whole)
	}
}
