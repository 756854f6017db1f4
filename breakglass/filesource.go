package breakglass

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/providers"
)

// Defaults of FileSource.
const (
	// DefaultSettle is how long an incomplete record at the end of a file
	// may stay unchanged before it is reported as truncated.
	DefaultSettle = time.Minute
	// DefaultForget is how long the position in a file that disappeared is
	// kept, to recognise it when it comes back renamed or compressed.
	DefaultForget = time.Hour
)

// fingerprintLen is how much of a file's (decompressed) start identifies
// it; minFingerprint is the least that is trusted to recognise a renamed
// file (shorter starts are too likely to be shared by unrelated files).
const (
	fingerprintLen = 1024
	minFingerprint = 64
)

// FileSource is an audit source (providers.AuditSource) that follows a
// directory of exported audit logs: files that a log shipper, `aws s3
// sync`, `gcloud storage rsync`, azcopy or a Logstash/Vector output writes.
// It reads new files and data appended to existing ones, gzip files
// included, in one of the Scanner's formats.
//
// It returns only the records whose actor an account of Matcher is (the
// scanner's fast path skips the rest), so it is a filtered source: records
// already read are not read again when accounts are added.
//
// The cursor records, per file, how far it has been read (the file name and
// a byte offset into its decompressed data, with a fingerprint of its first
// kilobyte), so a restarted daemon neither misses nor repeats records. A
// file renamed or compressed by log rotation keeps its position (it is
// recognised by its fingerprint); a file truncated or replaced is read
// again from its start. A record the file ends inside is left until it is
// complete, or until it has stayed unchanged for Settle, when it is
// reported as truncated. Hidden files and partial downloads (".tmp",
// ".part", ".partial", "_COPYING_") are ignored. The cursor holds an entry
// per file in the directory: let old files age out of it (a lifecycle rule,
// `find -mtime +7 -delete`).
type FileSource struct {
	// Dir is the directory, read recursively.
	Dir    string
	Format Source
	// Matcher returns the accounts to look for (it may change when
	// policies reload); nil looks for none.
	Matcher func() *Matcher
	// Settle defaults to DefaultSettle, Forget to DefaultForget.
	Settle time.Duration
	Forget time.Duration
	// Now defaults to time.Now.
	Now func() time.Time
	// OnProblem receives malformed records and damaged files.
	OnProblem func(Problem)
}

// fileCursor is the decoded cursor: the state of every file, by path
// relative to Dir with forward slashes.
type fileCursor struct {
	V     int                   `json:"v"`
	Files map[string]*fileState `json:"files"`
}

const fileCursorVersion = 1

type fileState struct {
	// Mark is where reading resumes; Skip counts the events already
	// returned from the top-level value at Mark (a records file holding
	// more events than one Read returns).
	Mark Mark `json:"mark"`
	Skip int  `json:"skip,omitempty"`
	// Size and MTime are the file's at the last read: unchanged, there is
	// nothing new.
	Size  int64 `json:"size"`
	MTime int64 `json:"mtime"`
	// FP is the hex SHA-256 of the first FPLen bytes of the decompressed
	// data.
	FP    string `json:"fp,omitempty"`
	FPLen int    `json:"fplen,omitempty"`
	// PendingSince is when the incomplete tail was first seen unchanged.
	PendingSince time.Time `json:"pending_since,omitzero"`
	// Gone is when the file was found missing.
	Gone time.Time `json:"gone,omitzero"`
}

func decodeFileCursor(s string) (*fileCursor, error) {
	c := &fileCursor{V: fileCursorVersion, Files: map[string]*fileState{}}
	if s == "" {
		return c, nil
	}
	if err := json.Unmarshal([]byte(s), c); err != nil || c.V != fileCursorVersion {
		return nil, fmt.Errorf("the stored cursor is not a file source cursor (version %d): reset it by renaming the source", c.V)
	}
	if c.Files == nil {
		c.Files = map[string]*fileState{}
	}
	return c, nil
}

func (c *fileCursor) encode() string {
	b, _ := json.Marshal(c) // map keys are sorted: the same state encodes the same way
	return string(b)
}

// fileInfo is one file found in the directory.
type fileInfo struct {
	rel, abs string
	size     int64
	mtime    int64
}

func (f *FileSource) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// ignoredName reports whether a file name is a hidden file or a download
// in progress.
func ignoredName(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") {
		return true
	}
	for _, suffix := range []string{".tmp", ".part", ".partial", ".crdownload", "_COPYING_", ".swp"} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}

// list returns the files under Dir, by path.
func (f *FileSource) list() ([]fileInfo, error) {
	st, err := os.Stat(f.Dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("directory %s does not exist: create it, or point path at the directory the logs are shipped to", f.Dir)
		}
		return nil, fmt.Errorf("reading directory %s: %w", f.Dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory: path must name the directory the log files land in", f.Dir)
	}
	var out []fileInfo
	err = filepath.WalkDir(f.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == f.Dir {
				return err
			}
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		if path == f.Dir {
			return nil
		}
		if ignoredName(d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		info, err := os.Stat(path) // follows symbolic links to files
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(f.Dir, path)
		if err != nil {
			return err
		}
		out = append(out, fileInfo{rel: filepath.ToSlash(rel), abs: path, size: info.Size(), mtime: info.ModTime().UnixNano()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", f.Dir, err)
	}
	slices.SortFunc(out, func(a, b fileInfo) int { return strings.Compare(a.rel, b.rel) })
	return out, nil
}

// isGzip reports whether the file starts with the gzip magic bytes.
func isGzip(path string) (bool, error) {
	fh, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer fh.Close()
	var magic [2]byte
	n, err := io.ReadFull(fh, magic[:])
	if err != nil && n < 2 {
		return false, nil
	}
	return magic[0] == 0x1f && magic[1] == 0x8b, nil
}

// openLogical opens the file's data, decompressed when it is gzip.
func openLogical(path string) (io.ReadCloser, bool, error) {
	gz, err := isGzip(path)
	if err != nil {
		return nil, false, err
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, false, err
	}
	if !gz {
		return fh, false, nil
	}
	zr, err := gzip.NewReader(fh)
	if err != nil {
		fh.Close()
		// An incomplete header: the file is still being written.
		return io.NopCloser(bytes.NewReader(nil)), true, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, fh}, true, nil
}

// prefix returns up to fingerprintLen bytes of the file's decompressed
// start.
func prefix(path string) ([]byte, error) {
	rc, _, err := openLogical(path)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf := make([]byte, fingerprintLen)
	// A short or damaged file still has the start that identifies it.
	n, _ := io.ReadFull(rc, buf)
	return buf[:n], nil
}

func fingerprint(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// matchesFingerprint reports whether data starts with e's fingerprinted
// bytes.
func (e *fileState) matchesFingerprint(data []byte) bool {
	return e.FPLen > 0 && len(data) >= e.FPLen && fingerprint(data[:e.FPLen]) == e.FP
}

// Read implements providers.AuditSource. Events come in file order (files
// by path), then record order. The returned cursor may advance past
// records that hold no events.
func (f *FileSource) Read(ctx context.Context, cursor string, limit int) ([]providers.AuditEvent, string, error) {
	if _, err := ParseSource(string(f.Format)); err != nil {
		return nil, cursor, err
	}
	if limit <= 0 {
		limit = 1000
	}
	cur, err := decodeFileCursor(cursor)
	if err != nil {
		return nil, cursor, err
	}
	files, err := f.list()
	if err != nil {
		return nil, cursor, err
	}
	now := f.now()
	settle, forget := f.Settle, f.Forget
	if settle <= 0 {
		settle = DefaultSettle
	}
	if forget <= 0 {
		forget = DefaultForget
	}

	// Sort out identities: files gone, replaced, renamed.
	present := map[string]bool{}
	for _, fi := range files {
		present[fi.rel] = true
	}
	for rel, e := range cur.Files {
		switch {
		case present[rel]:
			e.Gone = time.Time{}
		case e.Gone.IsZero():
			e.Gone = now
		case now.Sub(e.Gone) > forget:
			delete(cur.Files, rel)
		}
	}
	// Entries whose file no longer starts as it did (truncated, replaced)
	// and entries whose file is gone may be claimed by a new path.
	var claimable []string
	prefixes := map[string][]byte{}
	for _, fi := range files {
		e := cur.Files[fi.rel]
		if e == nil || (e.Size == fi.size && e.MTime == fi.mtime) || e.FPLen == 0 {
			continue
		}
		p, err := prefix(fi.abs)
		if err != nil {
			continue // unreadable now: the read below reports it
		}
		prefixes[fi.rel] = p
		if !e.matchesFingerprint(p) {
			displaced := *e
			displaced.Gone = now
			cur.Files["\x00displaced:"+fi.rel] = &displaced
			cur.Files[fi.rel] = &fileState{}
		}
	}
	for rel, e := range cur.Files {
		if !e.Gone.IsZero() && e.FPLen >= minFingerprint {
			claimable = append(claimable, rel)
		}
	}
	slices.Sort(claimable)
	for _, fi := range files {
		if cur.Files[fi.rel] != nil {
			continue
		}
		e := &fileState{}
		if len(claimable) > 0 {
			p, ok := prefixes[fi.rel]
			if !ok {
				p, _ = prefix(fi.abs)
			}
			for i, rel := range claimable {
				old := cur.Files[rel]
				if old != nil && old.matchesFingerprint(p) {
					moved := *old
					moved.Gone, moved.Size, moved.MTime, moved.PendingSince = time.Time{}, -1, 0, time.Time{}
					e = &moved
					delete(cur.Files, rel)
					claimable = slices.Delete(claimable, i, i+1)
					break
				}
			}
		}
		cur.Files[fi.rel] = e
	}
	for rel := range cur.Files {
		if strings.HasPrefix(rel, "\x00displaced:") && cur.Files[rel].FPLen < minFingerprint {
			delete(cur.Files, rel)
		}
	}

	var events []providers.AuditEvent
	var firstErr error
	for _, fi := range files {
		if len(events) >= limit {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, cursor, err
		}
		e := cur.Files[fi.rel]
		finalize := !e.PendingSince.IsZero() && e.Size == fi.size && e.MTime == fi.mtime && now.Sub(e.PendingSince) >= settle
		if e.Size == fi.size && e.MTime == fi.mtime && !finalize {
			continue
		}
		got, err := f.readFile(fi, e, limit-len(events), finalize, now)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			if f.OnProblem != nil {
				f.OnProblem(Problem{Position: Position{File: fi.rel}, Err: err})
			}
			continue
		}
		events = append(events, got...)
	}
	if len(events) == 0 && firstErr != nil {
		return nil, cursor, firstErr
	}
	// An error in one file does not hold back the others' events: it goes
	// to OnProblem, and the next Read retries that file.
	return events, cur.encode(), nil
}

// countingReader counts the bytes and newlines read through it.
type countingReader struct {
	r     io.Reader
	n     int64
	lines int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.lines += bytes.Count(p[:n], []byte{'\n'})
	return n, err
}

// readFile scans one file from its mark and updates its state.
func (f *FileSource) readFile(fi fileInfo, e *fileState, need int, finalize bool, now time.Time) ([]providers.AuditEvent, error) {
	gz, err := isGzip(fi.abs)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", fi.rel, err)
	}
	fh, err := os.Open(fi.abs)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", fi.rel, err)
	}
	defer fh.Close()

	// Refresh the fingerprint while the file is shorter than its length.
	if e.FPLen < fingerprintLen {
		if p, err := prefix(fi.abs); err == nil && len(p) > e.FPLen {
			if e.FPLen == 0 || e.matchesFingerprint(p) {
				e.FP, e.FPLen = fingerprint(p), len(p)
			}
		}
	}

	sc := &Scanner{Source: f.Format, Follow: !finalize, Resume: e.Mark, OnProblem: f.OnProblem}
	if f.Matcher != nil {
		sc.Matcher = f.Matcher()
	}
	if sc.Matcher == nil {
		sc.Matcher = NewMatcher(&policies.Set{})
	}
	var in io.Reader = fh
	if gz {
		zr, err := gzip.NewReader(fh)
		if err != nil {
			if !finalize {
				// The gzip header is not all there yet.
				e.notePending(fi, now)
				return nil, nil
			}
			if f.OnProblem != nil {
				f.OnProblem(Problem{Position: Position{File: fi.rel}, Err: fmt.Errorf("the gzip header is damaged (%v): the file cannot be read", err)})
			}
			e.Size, e.MTime, e.PendingSince = fi.size, fi.mtime, time.Time{}
			return nil, nil
		}
		if _, err := io.CopyN(io.Discard, zr, e.Mark.Offset); err != nil {
			if !finalize && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) {
				e.notePending(fi, now)
				return nil, nil
			}
			// The data before the mark changed: read the file again.
			*e = fileState{}
			return nil, fmt.Errorf("reading %s: its compressed data no longer reaches the position read before; it will be read again from the start", fi.rel)
		}
		in = zr
		sc.Decompressed = true
	} else if _, err := fh.Seek(e.Mark.Offset, io.SeekStart); err != nil {
		return nil, fmt.Errorf("reading %s: %w", fi.rel, err)
	}

	skip := e.Skip
	lastMark, beforeLast := e.Mark, 0
	stopped := false
	var distinct []*ActorEvent
	sc.Continue = func(r *Result) bool {
		distinct = distinctEvents(r.Detections, distinct[:0])
		if len(distinct)-skip >= need {
			stopped = true
			return false
		}
		lastMark, beforeLast = r.Consumed, len(distinct)
		return true
	}
	counter := &countingReader{r: in}
	res, err := sc.Scan(counter, fi.rel)
	if err != nil {
		return nil, err
	}
	all := distinctEvents(res.Detections, nil)
	if skip > len(all) {
		skip = len(all)
	}
	got := all[skip:]
	switch {
	case len(got) > need:
		// The last value holds more events than fit: resume at its
		// start, skipping those returned.
		returnedBefore := max(0, beforeLast-skip)
		fromLast := need - returnedBefore
		if lastMark == e.Mark {
			fromLast += e.Skip
		}
		got = got[:need]
		e.Mark, e.Skip = lastMark, fromLast
	case res.Consumed != e.Mark:
		e.Mark, e.Skip = res.Consumed, 0
	}
	e.Size, e.MTime = fi.size, fi.mtime
	switch {
	case finalize:
		// Whatever was left is reported: resume after it.
		e.Mark = Mark{Offset: sc.Resume.Offset + counter.n, Lines: sc.Resume.Lines + counter.lines, Records: sc.Resume.Records + res.Records}
		e.Skip, e.PendingSince = 0, time.Time{}
	case res.Pending && len(got) < need:
		e.notePending(fi, now)
	default:
		e.PendingSince = time.Time{}
	}
	if stopped {
		// More to read in this file: come back at once.
		e.Size = -1
	}
	out := make([]providers.AuditEvent, len(got))
	for i, ev := range got {
		out[i] = AuditEventOf(ev, f.Format)
	}
	return out, nil
}

// notePending records that the file ends inside a record.
func (e *fileState) notePending(fi fileInfo, now time.Time) {
	if e.PendingSince.IsZero() || e.Size != fi.size || e.MTime != fi.mtime {
		e.PendingSince = now
	}
	e.Size, e.MTime = fi.size, fi.mtime
}

// distinctEvents appends the events of dets to out, each once (the
// detections of one record share its event).
func distinctEvents(dets []Detection, out []*ActorEvent) []*ActorEvent {
	for _, d := range dets {
		if len(out) == 0 || out[len(out)-1] != d.Event {
			out = append(out, d.Event)
		}
	}
	return out
}

// EventKey identifies an event across re-reads: its cloud and event ID, or
// a digest of the record when it has no ID.
func EventKey(ev *ActorEvent) string {
	if ev.EventID != "" {
		return string(ev.Cloud) + ":" + ev.EventID
	}
	h := sha256.New()
	if len(ev.Raw) > 0 {
		h.Write(ev.Raw)
	} else {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%+v", ev.Cloud, ev.EventName, ev.TimeText(), ev.SourceIP, ev.Outcome, ev.Actor)
	}
	return string(ev.Cloud) + ":sha256:" + hex.EncodeToString(h.Sum(nil)[:16])
}

// AuditEventOf converts an event read from a log in format into the
// providers' normalised form. The record itself travels in Raw, with the
// format and the record's position in Attrs ("format", "where"), so
// ActorEventOf can read it back whole.
func AuditEventOf(ev *ActorEvent, format Source) providers.AuditEvent {
	out := providers.AuditEvent{
		ID:       strings.TrimPrefix(EventKey(ev), string(ev.Cloud)+":"),
		Cloud:    ev.Cloud,
		Time:     ev.Time,
		Category: category(ev, format),
		Action:   ev.EventName,
		Success:  ev.Outcome == OutcomeSuccess,
		SourceIP: ev.SourceIP,
		Attrs:    map[string]string{"format": string(format), "where": ev.Position.String()},
		Raw:      ev.Raw,
	}
	out.Actor, out.ActorID = actorPrincipal(ev)
	return out
}

func category(ev *ActorEvent, format Source) providers.AuditCategory {
	switch {
	case format == SourceAzureSignIn || ev.EventName == "ConsoleLogin":
		return providers.AuditSignIn
	case strings.HasPrefix(ev.EventName, "AssumeRole"):
		return providers.AuditAssumeRole
	case strings.Contains(ev.EventName, "SetIamPolicy") || strings.Contains(ev.EventName, "roleAssignments/write") ||
		strings.HasPrefix(ev.EventName, "Put") && strings.Contains(ev.EventName, "Policy"):
		return providers.AuditIAMChange
	}
	return providers.AuditOther
}

// actorPrincipal returns the event's actor as a policy principal, and the
// cloud's own identifier of it.
func actorPrincipal(ev *ActorEvent) (model.Principal, string) {
	a := &ev.Actor
	try := func(s string) model.Principal {
		p, err := model.ParsePrincipal(s)
		if err != nil {
			return model.Principal{}
		}
		return p
	}
	switch ev.Cloud {
	case model.CloudAWS:
		switch {
		case a.ARN != "":
			return try("aws:" + a.ARN), a.ARN
		case a.Type == "Root" && a.AccountID != "":
			arn := "arn:aws:iam::" + a.AccountID + ":root"
			return try("aws:" + arn), arn
		case a.Type == "IAMUser" && a.AccountID != "" && a.UserName != "" && a.UserName != hiddenUserName:
			arn := "arn:aws:iam::" + a.AccountID + ":user/" + a.UserName
			return try("aws:" + arn), arn
		}
		return model.Principal{}, firstNonEmpty(a.UserName, a.AccountID)
	case model.CloudGCP:
		for _, e := range a.Emails {
			kind := "user"
			if strings.HasSuffix(strings.ToLower(e), ".gserviceaccount.com") {
				kind = "serviceAccount"
			}
			return try("gcp:" + kind + ":" + e), e
		}
		for _, s := range a.Subjects {
			return try("gcp:" + s), s
		}
	case model.CloudAzure:
		for _, u := range a.UPNs {
			return try("azure:user:" + u), u
		}
		for _, o := range a.ObjectIDs {
			return try("azure:object:" + o), o
		}
	}
	return model.Principal{}, ""
}

// ActorEventOf reads an audit source's event back as an ActorEvent for
// matching: the record in Raw, parsed in the format Attrs names, when
// there is one (every identity the record carries counts, as in a scan);
// otherwise the normalised actor alone.
func ActorEventOf(ae providers.AuditEvent) (*ActorEvent, error) {
	if len(ae.Raw) > 0 {
		if src, err := ParseSource(ae.Attrs["format"]); err == nil {
			ev, err := src.parser()(ae.Raw)
			if err != nil {
				return nil, fmt.Errorf("reading back event %s: %w", ae.ID, err)
			}
			ev.Raw = ae.Raw
			return ev, nil
		}
	}
	ev := &ActorEvent{Cloud: ae.Cloud, EventID: ae.ID, EventName: ae.Action, Time: ae.Time.UTC(), SourceIP: ae.SourceIP, Outcome: OutcomeFailure}
	if !ae.Time.IsZero() {
		ev.RawTime = ae.Time.UTC().Format(time.RFC3339Nano)
	}
	if ae.Success {
		ev.Outcome = OutcomeSuccess
	}
	p := ae.Actor
	kind, v, _ := strings.Cut(p.Value, ":")
	switch p.Kind {
	case model.KindAWS:
		ev.Actor.ARN = p.Value
		if x, ok := parseARN(p.Value); ok {
			ev.Actor.AccountID = x.account
			if x.kind == "root" {
				ev.Actor.Type = "Root"
			}
		}
	case model.KindGCP:
		if kind == "user" || kind == "serviceAccount" {
			ev.Actor.Emails = []string{v}
		} else {
			ev.Actor.Subjects = []string{p.Value}
		}
	case model.KindAzure:
		if kind == "user" {
			ev.Actor.UPNs = []string{v}
		} else {
			ev.Actor.ObjectIDs = []string{v}
		}
	case model.KindUser:
		ev.Actor.Emails, ev.Actor.UPNs = []string{p.Value}, []string{p.Value}
	case model.KindServiceAccount:
		ev.Actor.Emails = []string{p.Value}
	}
	return ev, nil
}
