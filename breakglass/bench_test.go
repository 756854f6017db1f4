package breakglass

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// naiveScanTrail is the baseline the fast path is measured against: what
// one writes first, decoding every record of a trail file with
// encoding/json's streaming decoder and matching each. It stops at the first
// syntax error (encoding/json cannot resynchronise), so it is only a
// baseline for well-formed input.
func naiveScanTrail(r io.Reader, m *Matcher) (records int, detections []string, err error) {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 1<<20))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return 0, nil, fmt.Errorf("reading trail file: want '{', got %v (%v)", tok, err)
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return records, detections, err
		}
		if key != "Records" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return records, detections, err
			}
			continue
		}
		if _, err := dec.Token(); err != nil {
			return records, detections, err
		}
		for dec.More() {
			var rec cloudTrailRecord
			var typeErr *json.UnmarshalTypeError
			if err := dec.Decode(&rec); err != nil && !errors.As(err, &typeErr) {
				return records, detections, err
			}
			records++
			ev := rec.event()
			for _, a := range m.Match(ev) {
				detections = append(detections, detectionText(Detection{Account: a, Event: ev}))
			}
		}
		if _, err := dec.Token(); err != nil {
			return records, detections, err
		}
	}
	return records, detections, nil
}

// The fast path, the decode-everything path and the naive baseline find the
// same records and the same detections in generated data with many uses and
// near misses.
func TestFastPathMatchesFullDecodeOnGeneratedData(t *testing.T) {
	m := matcherFor(t, aliceARN, rootARN, roleARN)
	for _, jsonLines := range []bool{false, true} {
		var buf bytes.Buffer
		records, uses, err := writeTrail(&buf, 3<<20, 7, jsonLines, 40)
		if err != nil {
			t.Fatal(err)
		}
		got := scanBoth(t, m, SourceCloudTrail, "generated", buf.Bytes(), 0)
		if got.records != records || got.malformed != 0 || len(got.detections) != uses {
			t.Fatalf("jsonLines=%v: records %d malformed %d detections %d, generated %d records with %d uses", jsonLines, got.records, got.malformed, len(got.detections), records, uses)
		}
		if uses < 50 {
			t.Fatalf("only %d uses generated: too few to compare", uses)
		}
		if jsonLines {
			continue
		}
		nRecords, nDetections, err := naiveScanTrail(bytes.NewReader(buf.Bytes()), m)
		if err != nil {
			t.Fatal(err)
		}
		if nRecords != records {
			t.Errorf("naive scan read %d records, want %d", nRecords, records)
		}
		if diff := cmp.Diff(nDetections, got.detections); diff != "" {
			t.Errorf("fast path and naive decoding disagree (-naive +fast):\n%s", diff)
		}
	}
}

// benchSize is the size of the generated trail file: 200 MB, or
// ELEVATE_BENCH_MB megabytes for a quick run.
func benchSize(b *testing.B) int64 {
	mb := 200
	if s := os.Getenv("ELEVATE_BENCH_MB"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("ELEVATE_BENCH_MB=%q: want a positive number of megabytes", s)
		}
		mb = n
	}
	return int64(mb) * 1_000_000
}

// BenchmarkScanCloudTrail scans a generated trail file ({"Records":[…]},
// 0.1% of records are break-glass use) and reports, besides the fast path's
// own MB/s, the MB/s of the naive full-decode baseline and of
// `grep -c -F ARN` on the same file, and the ratios. The scan and grep
// run alternately, b.N times each, and the figures are of each one's best
// run. Everything is single-threaded: run with -cpu 1 for per-core figures.
func BenchmarkScanCloudTrail(b *testing.B) {
	size := benchSize(b)
	path := filepath.Join(b.TempDir(), "trail.json")
	records, uses, err := writeTrailFile(path, size, 42, false, 1000)
	if err != nil {
		b.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	n := st.Size()
	m := matcherFor(b, aliceARN, rootARN, roleARN)
	mbps := func(d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

	scanOnce := func() Result {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		res, err := (&Scanner{Source: SourceCloudTrail, Matcher: m}).Scan(f, path)
		if err != nil {
			b.Fatal(err)
		}
		return res
	}
	scanOnce() // warm the page cache
	grep, grepErr := exec.LookPath("grep")
	needle := "arn:aws:iam::" + genAccount + ":user/breakglass-alice"
	var count string
	runGrep := func() (wall, cpu time.Duration) {
		cmd := exec.Command(grep, "-c", "-F", needle, path)
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		start := time.Now()
		out, err := cmd.Output()
		wall = time.Since(start)
		if err != nil {
			b.Fatalf("grep: %v", err)
		}
		count = strings.TrimSpace(string(out))
		return wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	// The scan and grep run alternately, and each is credited with its
	// best run: on a shared machine a run is only ever slowed down by
	// others, so the minimum is the closest to the work itself, and
	// alternating exposes both to the same conditions.
	b.SetBytes(n)
	b.ResetTimer()
	var res Result
	var fast, fastCPU, best, bestCPU time.Duration
	for i := 0; i < b.N; i++ {
		start, cpu0 := time.Now(), processCPU()
		res = scanOnce()
		d, c := time.Since(start), processCPU()-cpu0
		if fast == 0 || d < fast {
			fast = d
		}
		if fastCPU == 0 || c < fastCPU {
			fastCPU = c
		}
		if grepErr == nil {
			b.StopTimer()
			d, c := runGrep()
			if best == 0 || d < best {
				best = d
			}
			if bestCPU == 0 || c < bestCPU {
				bestCPU = c
			}
			b.StartTimer()
		}
	}
	b.StopTimer()
	if res.Records != records || res.Malformed != 0 || len(res.Detections) != uses {
		b.Fatalf("fast scan: records %d malformed %d detections %d, generated %d records with %d uses", res.Records, res.Malformed, len(res.Detections), records, uses)
	}

	var naive time.Duration
	for range 2 { // the best of two, like the others
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		nRecords, nDetections, err := naiveScanTrail(f, m)
		d := time.Since(start)
		f.Close()
		if err != nil || nRecords != records || len(nDetections) != uses {
			b.Fatalf("naive scan: records %d detections %d err %v, want %d and %d", nRecords, len(nDetections), err, records, uses)
		}
		if naive == 0 || d < naive {
			naive = d
		}
	}
	b.ReportMetric(mbps(fast), "fast-MB/s")
	b.ReportMetric(mbps(naive), "naive-MB/s")
	b.ReportMetric(naive.Seconds()/fast.Seconds(), "x-naive")
	b.Logf("%.0f MB, %d records, %d break-glass uses", float64(n)/1e6, records, uses)
	b.Logf("fast %.0f MB/s, naive full decode %.0f MB/s: %.1fx", mbps(fast), mbps(naive), naive.Seconds()/fast.Seconds())

	if grepErr != nil {
		b.Logf("grep not found: no grep comparison")
		return
	}
	b.ReportMetric(mbps(best), "grep-MB/s")
	b.ReportMetric(fast.Seconds()/best.Seconds(), "x-grep-time")
	b.Logf("grep -c -F %.0f MB/s (%s matching lines): the scan takes %.2fx grep's time", mbps(best), count, fast.Seconds()/best.Seconds())
	// On a shared machine the wall times above include waiting for the
	// CPU; CPU time (user and system, every thread) does not, so the ratio
	// of CPU times is the steadier measure of work per core.
	if fastCPU > 0 && bestCPU > 0 {
		b.ReportMetric(mbps(fastCPU), "fast-cpu-MB/s")
		b.ReportMetric(mbps(bestCPU), "grep-cpu-MB/s")
		b.ReportMetric(fastCPU.Seconds()/bestCPU.Seconds(), "x-grep-cpu")
		b.Logf("CPU time: the scan %.0f MB/s, grep %.0f MB/s: %.2fx grep's CPU time", mbps(fastCPU), mbps(bestCPU), fastCPU.Seconds()/bestCPU.Seconds())
	}
}
