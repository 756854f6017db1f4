package breakglass

import (
	"bytes"
	"strings"
	"testing"
)

// TestScanFollow pins Follow mode: a value the input ends inside is left
// for later (no problem reported, nothing counted), Consumed marks where
// whole values end, and a scan resumed there counts positions from the
// stream's start.
func TestScanFollow(t *testing.T) {
	m := fixtureMatcher(t)
	r1 := ctLogin("f1", "breakglass-alice", t0, true)
	r2 := ctLogin("f2", "breakglass-alice", t0, false)
	stream := r1 + r2
	cut := len(r1) + len(r2)/2

	var problems []string
	sc := &Scanner{Source: SourceCloudTrail, Matcher: m, Follow: true, OnProblem: func(p Problem) { problems = append(problems, p.String()) }}
	res, err := sc.Scan(strings.NewReader(stream[:cut]), "s.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Pending || res.Records != 1 || res.Malformed != 0 || len(res.Detections) != 1 || len(problems) != 0 {
		t.Fatalf("scan of a cut stream: %+v, problems %q", res, problems)
	}
	if want := (Mark{Offset: int64(len(r1) - 1), Lines: 0, Records: 1}); res.Consumed != want {
		t.Fatalf("consumed %+v, want %+v (after the first record's closing brace)", res.Consumed, want)
	}

	// Resume where the whole values ended, with the rest written.
	sc2 := &Scanner{Source: SourceCloudTrail, Matcher: m, Follow: true, Resume: res.Consumed}
	res2, err := sc2.Scan(strings.NewReader(stream[res.Consumed.Offset:]), "s.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if res2.Pending || len(res2.Detections) != 1 {
		t.Fatalf("resumed scan: %+v", res2)
	}
	pos := res2.Detections[0].Event.Position
	if pos.Record != 2 || pos.Line != 2 || pos.Offset != int64(len(r1)) {
		t.Fatalf("the resumed record is at %s, want record 2, line 2, byte %d", pos, len(r1))
	}
	if want := (Mark{Offset: int64(len(stream) - 1), Lines: 1, Records: 2}); res2.Consumed != want {
		t.Fatalf("consumed %+v, want %+v", res2.Consumed, want)
	}

	// Without Follow the same cut is a truncated record.
	problems = nil
	sc.Follow = false
	res, _ = sc.Scan(bytes.NewReader([]byte(stream[:cut])), "s.jsonl")
	if res.Pending || res.Malformed != 1 || len(problems) != 1 || !strings.Contains(problems[0], "truncated") {
		t.Fatalf("scan without Follow: %+v, problems %q", res, problems)
	}

	// A records file still being written is left whole.
	trail := trailFile(r1, r2)
	sc = &Scanner{Source: SourceCloudTrail, Matcher: m, Follow: true}
	res, _ = sc.Scan(strings.NewReader(trail[:len(trail)-10]), "t.json")
	if !res.Pending || len(res.Detections) != 0 || res.Records != 0 || res.Consumed != (Mark{}) {
		t.Fatalf("a records file being written: %+v", res)
	}
}
