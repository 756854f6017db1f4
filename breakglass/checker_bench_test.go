package breakglass

import (
	"bytes"
	"testing"
)

// BenchmarkChecker runs the JSON checker alone over the records of a
// generated 20 MB trail (JSON lines), as the scanner calls it on
// escape-free input: the figure to watch when tuning the checker.
func BenchmarkChecker(b *testing.B) {
	var buf bytes.Buffer
	if _, _, err := writeTrail(&buf, 20<<20, 42, true, 1000); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	var recs [][]byte
	for line := range bytes.Lines(data) {
		recs = append(recs, line)
	}
	var c checker
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		for _, r := range recs {
			c.reset()
			c.clean = len(r)
			if bytes.IndexByte(r, '\\') >= 0 {
				c.clean = 0
			}
			if _, err := c.value(r, 0, true); err != nil {
				b.Fatal(err)
			}
		}
	}
}
