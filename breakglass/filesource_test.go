package breakglass

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/providers"
	"github.com/elevatehq/elevate/state"
)

// follower reads a FileSource the way the watcher does, keeping the cursor
// in a real store between reads.
type follower struct {
	t        *testing.T
	src      *FileSource
	store    state.Store
	clock    *fakeClock
	problems []string
}

func newFollower(t *testing.T, dir string, format Source) *follower {
	t.Helper()
	store, err := state.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &follower{t: t, store: store, clock: newFakeClock(t0)}
	f.src = f.newSource(dir, format)
	return f
}

// newSource is what a restarted daemon builds: a fresh source, sharing
// nothing with the old one but the store.
func (f *follower) newSource(dir string, format Source) *FileSource {
	m := fixtureMatcher(f.t)
	return &FileSource{Dir: dir, Format: format, Matcher: func() *Matcher { return m }, Now: f.clock.Now,
		OnProblem: func(p Problem) { f.problems = append(f.problems, p.String()) }}
}

// read does one Read with limit and stores the cursor; it returns the
// event IDs.
func (f *follower) read(limit int) []string {
	f.t.Helper()
	cur := ""
	if c, err := f.store.GetCursor(f.t.Context(), "files"); err == nil {
		cur = c.Value
	}
	evs, next, err := f.src.Read(f.t.Context(), cur, limit)
	if err != nil {
		f.t.Fatalf("Read: %v", err)
	}
	if err := f.store.SetCursor(f.t.Context(), "files", next); err != nil {
		f.t.Fatal(err)
	}
	var ids []string
	for _, ev := range evs {
		ids = append(ids, ev.ID)
	}
	return ids
}

func (f *follower) cursor() string {
	c, _ := f.store.GetCursor(f.t.Context(), "files")
	return c.Value
}

func wantIDs(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: events %q, want %q", what, got, want)
	}
}

func TestFileSourceFollowsAppends(t *testing.T) {
	dir := t.TempDir()
	f := newFollower(t, dir, SourceCloudTrail)
	p := writeFile(t, dir, "events.jsonl", []byte(ctLogin("a1", "breakglass-alice", t0, true)+ctLogin("n1", "bob", t0, true)))
	wantIDs(t, "first read", f.read(100), "a1")
	wantIDs(t, "nothing new", f.read(100))
	before := f.cursor()
	wantIDs(t, "nothing new again", f.read(100))
	if f.cursor() != before {
		t.Fatalf("a read with nothing new changed the cursor:\n%s\n%s", before, f.cursor())
	}

	// A record written in two pieces is read once, when whole.
	rec := ctLogin("a2", "breakglass-alice", t0.Add(time.Minute), false)
	appendFile(t, p, rec[:len(rec)/2])
	wantIDs(t, "half a record", f.read(100))
	appendFile(t, p, rec[len(rec)/2:])
	wantIDs(t, "the record completed", f.read(100), "a2")
	if len(f.problems) != 0 {
		t.Fatalf("problems reported for a record being written: %q", f.problems)
	}

	// New files, in nested directories, are found; hidden files and
	// downloads in progress are not, until renamed.
	writeFile(t, dir, "2026/11/29/b.jsonl", []byte(ctLogin("b1", "breakglass-alice", t0, true)))
	tmp := writeFile(t, dir, "2026/11/29/c.jsonl.tmp", []byte(ctLogin("c1", "breakglass-alice", t0, true)))
	writeFile(t, dir, ".hidden/d.jsonl", []byte(ctLogin("d1", "breakglass-alice", t0, true)))
	wantIDs(t, "new files", f.read(100), "b1")
	if err := os.Rename(tmp, strings.TrimSuffix(tmp, ".tmp")); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, "the download finished", f.read(100), "c1")
}

func TestFileSourceLimit(t *testing.T) {
	for _, c := range []struct {
		name string
		data func(recs []string) []byte
	}{
		{"json lines", func(recs []string) []byte { return []byte(strings.Join(recs, "")) }},
		{"trail file", func(recs []string) []byte { return []byte(trailFile(recs...)) }},
		{"gzip trail file", func(recs []string) []byte { return gzipped(t, []byte(trailFile(recs...))) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			f := newFollower(t, dir, SourceCloudTrail)
			var recs []string
			for _, id := range []string{"e1", "e2", "x", "e3", "e4", "e5"} {
				user := "breakglass-alice"
				if id == "x" {
					user = "carol"
				}
				recs = append(recs, ctLogin(id, user, t0, true))
			}
			writeFile(t, dir, "a.json", c.data(recs))
			writeFile(t, dir, "b.jsonl", []byte(ctLogin("f1", "breakglass-alice", t0, true)))
			wantIDs(t, "first page", f.read(2), "e1", "e2")
			wantIDs(t, "second page", f.read(2), "e3", "e4")
			wantIDs(t, "third page", f.read(2), "e5", "f1")
			wantIDs(t, "done", f.read(2))
		})
	}
}

func TestFileSourceRotationAndRestart(t *testing.T) {
	dir := t.TempDir()
	f := newFollower(t, dir, SourceCloudTrail)
	logPath := filepath.Join(dir, "events.log")
	// The first kilobyte identifies the file: pad it with records of
	// someone else.
	var head strings.Builder
	for i := range 4 {
		head.WriteString(ctLogin("pad"+string(rune('a'+i)), "carol", t0, true))
	}
	appendFile(t, logPath, head.String()+ctLogin("r1", "breakglass-alice", t0, true))
	wantIDs(t, "before rotation", f.read(100), "r1")

	// A record lands just before rotation renames the file; the new file
	// gets another.
	appendFile(t, logPath, ctLogin("r2", "breakglass-alice", t0.Add(time.Second), true))
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, logPath, ctLogin("r3", "breakglass-alice", t0.Add(2*time.Second), true))
	// Files are read in path order: the new events.log, then events.log.1.
	wantIDs(t, "after rotation", f.read(100), "r3", "r2")

	// The rotated file is compressed: recognised, not read again.
	old, err := os.ReadFile(logPath + ".1")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "events.log.1.gz", gzipped(t, old))
	if err := os.Remove(logPath + ".1"); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, "after compression", f.read(100))

	// The daemon restarts: a new source resumes from the stored cursor.
	appendFile(t, logPath, ctLogin("r4", "breakglass-alice", t0.Add(3*time.Second), true))
	f.src = f.newSource(dir, SourceCloudTrail)
	wantIDs(t, "after restart", f.read(100), "r4")
	wantIDs(t, "after restart, again", f.read(100))

	// copytruncate: the file is copied aside and truncated, then written.
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "events.log.2", data)
	if err := os.Truncate(logPath, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, logPath, ctLogin("r5", "breakglass-alice", t0.Add(4*time.Second), true))
	wantIDs(t, "after copytruncate", f.read(100), "r5")
}

func TestFileSourceRestartEveryRead(t *testing.T) {
	// Records land while the daemon restarts between every read: every
	// record is delivered exactly once.
	dir := t.TempDir()
	f := newFollower(t, dir, SourceCloudTrail)
	var want, got []string
	path := filepath.Join(dir, "stream.jsonl")
	for i := range 30 {
		id := "s" + string(rune('a'+i%26)) + string(rune('0'+i/26))
		rec := ctLogin(id, "breakglass-alice", t0.Add(time.Duration(i)*time.Second), i%3 != 0)
		want = append(want, id)
		// Every third record arrives in two writes around a restart.
		if i%3 == 0 {
			appendFile(t, path, rec[:40])
			f.src = f.newSource(dir, SourceCloudTrail)
			got = append(got, f.read(7)...)
			appendFile(t, path, rec[40:])
		} else {
			appendFile(t, path, rec)
		}
		if i%5 == 4 {
			writeFile(t, dir, "batch-"+id+".json.gz", gzipped(t, []byte(trailFile(ctLogin(id+"z", "breakglass-alice", t0, true)))))
			want = append(want, id+"z")
		}
		f.src = f.newSource(dir, SourceCloudTrail)
		got = append(got, f.read(7)...)
	}
	for range 10 {
		got = append(got, f.read(7)...)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %d events %q\nwant %d %q", len(got), got, len(want), want)
	}
}

func TestFileSourceGzipBeingWritten(t *testing.T) {
	dir := t.TempDir()
	f := newFollower(t, dir, SourceCloudTrail)
	full := gzipped(t, []byte(trailFile(ctLogin("g1", "breakglass-alice", t0, true), ctLogin("g2", "breakglass-alice", t0, false))))
	p := writeFile(t, dir, "AWSLogs/123456789012/CloudTrail/us-east-1/trail.json.gz", full[:len(full)/2])
	wantIDs(t, "half a gzip file", f.read(100))
	if len(f.problems) != 0 {
		t.Fatalf("problems reported for a file being written: %q", f.problems)
	}
	if err := os.WriteFile(p, full, 0o600); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, "the whole gzip file", f.read(100), "g1", "g2")
	wantIDs(t, "read once", f.read(100))
}

func TestFileSourceReportsTruncationAfterSettling(t *testing.T) {
	dir := t.TempDir()
	f := newFollower(t, dir, SourceCloudTrail)
	rec := ctLogin("t1", "breakglass-alice", t0, true)
	p := writeFile(t, dir, "cut.jsonl", []byte(ctLogin("t0", "breakglass-alice", t0, true)+rec[:60]))
	wantIDs(t, "a record and a cut one", f.read(100), "t0")
	f.clock.Advance(30 * time.Second)
	wantIDs(t, "still settling", f.read(100))
	if len(f.problems) != 0 {
		t.Fatalf("reported before the file settled: %q", f.problems)
	}
	f.clock.Advance(DefaultSettle)
	wantIDs(t, "settled", f.read(100))
	if len(f.problems) != 1 || !strings.Contains(f.problems[0], "cut.jsonl: record 2 (line 2") || !strings.Contains(f.problems[0], "truncated") {
		t.Fatalf("problems %q, want one truncation at record 2, line 2", f.problems)
	}
	// Records written after the damage are read, once.
	appendFile(t, p, "\n"+ctLogin("t2", "breakglass-alice", t0, true))
	wantIDs(t, "after the damage", f.read(100), "t2")
	wantIDs(t, "once", f.read(100))
	if len(f.problems) != 1 {
		t.Fatalf("the damage was reported again: %q", f.problems)
	}
}

func TestFileSourceErrors(t *testing.T) {
	m := fixtureMatcher(t)
	src := &FileSource{Dir: filepath.Join(t.TempDir(), "missing"), Format: SourceCloudTrail, Matcher: func() *Matcher { return m }}
	_, cur, err := src.Read(t.Context(), "", 10)
	if err == nil || !strings.Contains(err.Error(), "does not exist: create it") || cur != "" {
		t.Fatalf("missing directory: %v (cursor %q)", err, cur)
	}
	src.Dir = t.TempDir()
	if _, _, err := src.Read(t.Context(), `{"v":9}`, 10); err == nil || !strings.Contains(err.Error(), "not a file source cursor") {
		t.Fatalf("foreign cursor: %v", err)
	}
	src.Format = "syslog"
	if _, _, err := src.Read(t.Context(), "", 10); err == nil || !strings.Contains(err.Error(), "unknown log source") {
		t.Fatalf("unknown format: %v", err)
	}
}

func TestAuditEventRoundTrip(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.jsonl", []byte(ctLogin("a1", "breakglass-alice", t0, false)))
	m := fixtureMatcher(t)
	src := &FileSource{Dir: dir, Format: SourceCloudTrail, Matcher: func() *Matcher { return m }}
	var as providers.AuditSource = src
	evs, _, err := as.Read(t.Context(), "", 10)
	if err != nil || len(evs) != 1 {
		t.Fatalf("Read: %v, %d events", err, len(evs))
	}
	ae := evs[0]
	if ae.Actor.String() != "aws:arn:aws:iam::123456789012:user/breakglass-alice" || ae.Category != providers.AuditSignIn ||
		ae.Success || ae.Action != "ConsoleLogin" || ae.Cloud != model.CloudAWS || ae.Attrs["format"] != "cloudtrail" ||
		!strings.Contains(ae.Attrs["where"], "a.jsonl: record 1") || len(ae.Raw) == 0 {
		t.Fatalf("audit event %+v", ae)
	}
	back, err := ActorEventOf(ae)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Match(back); len(got) != 1 || got[0].Policy != "idp-outage" || back.Outcome != OutcomeFailure {
		t.Fatalf("read back: %+v matches %v", back, got)
	}
	// An event from a source that has no record text matches by its actor.
	bare := ae
	bare.Raw, bare.Attrs = nil, nil
	back, err = ActorEventOf(bare)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Match(back); len(got) != 1 || got[0].Policy != "idp-outage" {
		t.Fatalf("bare event %+v matches %v", back, got)
	}
	root := providers.AuditEvent{ID: "r", Cloud: model.CloudAWS, Actor: model.MustPrincipal("aws:arn:aws:iam::123456789012:root"), Success: true}
	back, _ = ActorEventOf(root)
	if got := m.Match(back); len(got) != 1 || got[0].Policy != "last-resort" {
		t.Fatalf("root event matches %v", got)
	}
}
