package breakglass

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"errors"
	"fmt"
	"io"

	"github.com/elevatehq/elevate/model"
)

// DefaultMaxRecordSize is the largest record Scan decodes (64 MiB). Larger
// records are reported as malformed and stepped over without being held in
// memory.
const DefaultMaxRecordSize = 64 << 20

// chunkSize is how much input Scan asks for at a time. It is kept well
// inside a core's L2 cache, so that the checker reads what the kernel has
// just copied from cache rather than from memory (a few per cent faster
// than 1 MiB chunks in BenchmarkScanCloudTrail).
const chunkSize = 256 << 10

// Scanner finds break-glass account use in exported audit logs.
//
// Input is JSON lines (or any sequence of JSON values), a JSON array of
// records, or an object holding the records in an array member named
// Records (CloudTrail trail files), records (Azure diagnostic exports), value
// (Microsoft Graph and Azure REST pages) or Events (CloudTrail LookupEvents
// output); gzip is recognised by its magic bytes. Input is streamed: memory
// use is bounded by the largest record, not the file.
//
// Every record is checked for JSON syntax, so malformed records are found
// whether or not they mention an account. A record is only decoded when its
// text contains an account's identifying substring (ignoring ASCII case; one
// that is a whole JSON string, like the root user's "Root", as a value) or
// any escape sequence; DecodeAll turns that pre-filter off.
type Scanner struct {
	Source  Source
	Matcher *Matcher
	// MaxRecordSize is the largest record decoded; 0 means
	// DefaultMaxRecordSize.
	MaxRecordSize int
	// DecodeAll decodes and matches every record instead of only those
	// that pass the substring pre-filter. It is the reference the fast path
	// is tested against.
	DecodeAll bool
	// OnProblem, if set, receives every malformed record and damaged region
	// of the input, in input order.
	OnProblem func(Problem)

	// Follow reads input that may still be growing, such as a log file
	// being appended to: a top-level value the input ends inside (and
	// gzip data that ends early) is left for a later scan instead of
	// being reported as truncated; Result.Pending says so, and
	// Result.Consumed says where the whole values end.
	Follow bool
	// Resume says where in a longer stream the input starts, so that
	// positions count from the stream's start: pass the Consumed mark of
	// the previous scan of the same stream.
	Resume Mark
	// Decompressed says the input is the decompressed data of a gzip file
	// (decompressed by the caller, to resume inside it): positions say so,
	// and a gzip error from the reader is damage to the file.
	Decompressed bool
	// Continue, if set, is called after each whole top-level value (a
	// record of JSON lines, a whole records file); returning false ends
	// the scan there.
	Continue func(*Result) bool
}

// Mark is a point in a stream of records: a byte offset (in the
// decompressed data for gzip), with the lines and records before it.
type Mark struct {
	Offset  int64 `json:"offset"`
	Lines   int   `json:"lines"`
	Records int   `json:"records"`
}

// Problem is a malformed record or a damaged region of the input.
type Problem struct {
	Position Position
	Err      error
}

// String renders the problem for people, position first.
func (p Problem) String() string { return p.Position.String() + ": " + p.Err.Error() }

// Detection is one use of one break-glass account.
type Detection struct {
	Account Account
	Event   *ActorEvent
}

// Result is what one Scan found.
type Result struct {
	// Records counts every record seen, malformed ones included.
	Records int
	// Malformed counts the problems reported: malformed, truncated and
	// oversized records, and damaged regions of the input.
	Malformed  int
	Detections []Detection
	// Consumed is the point after the last whole top-level value read, in
	// the stream's terms (Scanner.Resume included): where a later scan of
	// the same stream resumes.
	Consumed Mark
	// Pending reports, in Follow mode, that the input ends inside a value
	// (or inside gzip data) that may still be being written; what it holds
	// is left for a later scan.
	Pending bool
}

// Scan reads one input (named file in positions) to its end. Malformed
// records never stop it; the returned error is for input that could not be
// read at all (an I/O error), and the Result then holds what was scanned
// before it.
func (sc *Scanner) Scan(r io.Reader, file string) (Result, error) {
	parse := sc.Source.parser()
	if parse == nil {
		return Result{}, fmt.Errorf("scanning %s: unknown log source %q", file, sc.Source)
	}
	if sc.Matcher == nil {
		return Result{}, fmt.Errorf("scanning %s: no break-glass accounts to look for", file)
	}
	s := &scan{
		slashAt: -1,
		sc:      sc,
		parse:   parse,
		cloud:   sc.Source.Cloud(),
		file:    file,
		limit:   sc.MaxRecordSize,
		src:     r,
	}
	if s.limit <= 0 {
		s.limit = DefaultMaxRecordSize
	}
	s.res.Consumed = sc.Resume
	s.run()
	return s.res, s.ioErr
}

// scan is the state of one Scan call. Positions are absolute offsets in the
// (decompressed) input; buf holds the input from offset base to base+end,
// and nothing before keep may be dropped when more is read.
type scan struct {
	sc         *Scanner
	parse      func([]byte) (*ActorEvent, error)
	cloud      model.Cloud
	file       string
	limit      int
	compressed bool
	res        Result

	src    io.Reader
	buf    []byte
	base   int64
	end    int
	keep   int64
	eof    bool
	ioErr  error
	damage error // the compressed stream was truncated or corrupt
	// damageTruncated says the damage is only an early end.
	damageTruncated bool

	lineOff int64 // newlines before lineOff are counted in lines
	lines   int

	chk  checker
	pre  *prefilter // built from the first input read, unless DecodeAll
	stop bool

	// For cleanTo: the first backslash at or after slashFrom is at
	// slashAt, or (when slashAt is -1) there is none before slashSeen.
	slashFrom, slashAt, slashSeen int64

	// cut is set when the input ended inside a value; held buffers the
	// problems of the current top-level value in Follow mode, delivered
	// once the value is known to be whole.
	cut  bool
	held []Problem
}

// fill reads more input, dropping what lies before keep. It returns false
// when no more input will come.
func (s *scan) fill() bool {
	if s.eof {
		return false
	}
	if drop := min(int(s.keep-s.base), s.end); drop > 0 {
		if s.lineOff < s.base+int64(drop) {
			s.lines += bytes.Count(s.buf[int(s.lineOff-s.base):drop], []byte{'\n'})
			s.lineOff = s.base + int64(drop)
		}
		copy(s.buf, s.buf[drop:s.end])
		s.end -= drop
		s.base += int64(drop)
	}
	// Start small (most exports are small files) and double up to about a
	// chunk of free space; a record longer than the buffer grows it.
	if len(s.buf)-s.end < chunkSize/2 {
		grown := make([]byte, max(2*len(s.buf), 64<<10))
		copy(grown, s.buf[:s.end])
		s.buf = grown
	}
	for {
		n, err := s.src.Read(s.buf[s.end:])
		s.end += n
		if err != nil {
			s.eof = true
			s.readError(err)
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
}

// readError sorts a read error: the end of input, a damaged compressed
// stream (reported as a problem, the scan keeps what it read), or an I/O
// error (returned by Scan).
func (s *scan) readError(err error) {
	var corrupt flate.CorruptInputError
	switch {
	case err == io.EOF:
	case s.compressed && errors.Is(err, io.ErrUnexpectedEOF):
		s.damage = errors.New("the gzip data is truncated: the file ends early, records after this point are missing")
		s.damageTruncated = true
	case s.compressed && (errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.As(err, &corrupt)):
		s.damage = fmt.Errorf("the gzip data is corrupt (%v): records after this point are missing", err)
	default:
		s.ioErr = fmt.Errorf("reading %s: %w", s.file, err)
	}
}

// ensure makes the byte at off available; false at the end of input.
func (s *scan) ensure(off int64) bool {
	for off >= s.base+int64(s.end) {
		if !s.fill() {
			return false
		}
	}
	return true
}

func (s *scan) at(off int64) byte { return s.buf[off-s.base] }

// skipSpace returns the offset of the first non-whitespace byte at or after
// off; false at the end of input.
func (s *scan) skipSpace(off int64) (int64, bool) {
	for {
		if !s.ensure(off) {
			return off, false
		}
		i := skipSpace(s.buf[:s.end], int(off-s.base))
		off = s.base + int64(i)
		if i < s.end {
			return off, true
		}
	}
}

// lineAt returns the 1-based line of offset off (off must be in buf).
func (s *scan) lineAt(off int64) int {
	if off >= s.lineOff {
		s.lines += bytes.Count(s.buf[int(s.lineOff-s.base):int(off-s.base)], []byte{'\n'})
		s.lineOff = off
		return s.lines + 1
	}
	return s.lines - bytes.Count(s.buf[int(off-s.base):int(s.lineOff-s.base)], []byte{'\n'}) + 1
}

func (s *scan) position(record int, off int64) Position {
	r := s.sc.Resume
	if record > 0 {
		record += r.Records
	}
	return Position{File: s.file, Record: record, Line: r.Lines + s.lineAt(off), Offset: r.Offset + off, Decompressed: s.compressed}
}

// problem reports a damaged region that is not a record.
func (s *scan) problem(off int64, err error) {
	s.res.Malformed++
	s.report(Problem{Position: s.position(0, off), Err: err})
}

// badRecord counts a malformed record starting at off and reports it.
func (s *scan) badRecord(off int64, err error) {
	s.res.Records++
	s.res.Malformed++
	s.report(Problem{Position: s.position(s.res.Records, off), Err: err})
}

func (s *scan) report(p Problem) {
	if s.sc.Follow {
		s.held = append(s.held, p)
		return
	}
	if s.sc.OnProblem != nil {
		s.sc.OnProblem(p)
	}
}

// deliver hands the held problems to OnProblem.
func (s *scan) deliver() {
	if s.sc.OnProblem != nil {
		for _, p := range s.held {
			s.sc.OnProblem(p)
		}
	}
	s.held = s.held[:0]
}

// snapshot is what a top-level value may add to the result.
type snapshot struct{ records, malformed, detections int }

func (s *scan) snapshot() snapshot {
	return snapshot{s.res.Records, s.res.Malformed, len(s.res.Detections)}
}

// rollback forgets what the value since snap added: in Follow mode, a value
// the input ends inside is read again, whole, by a later scan.
func (s *scan) rollback(snap snapshot) {
	s.res.Records, s.res.Malformed = snap.records, snap.malformed
	clear(s.res.Detections[snap.detections:])
	s.res.Detections = s.res.Detections[:snap.detections]
	s.held = s.held[:0]
	s.res.Pending = true
}

// consumed records off, the end of a whole top-level value, as the
// resume point.
func (s *scan) consumed(off int64) {
	r := s.sc.Resume
	s.res.Consumed = Mark{Offset: r.Offset + off, Lines: r.Lines + s.lineAt(off) - 1, Records: r.Records + s.res.Records}
}

// absolute turns the buffer index of a checker's syntax error into an
// input offset; call it before the buffer moves.
func (s *scan) absolute(err error) error {
	var se *syntaxError
	if errors.As(err, &se) {
		return &syntaxError{off: s.base + se.off, msg: se.msg}
	}
	return err
}

// syntaxAt builds a syntax error at input offset off.
func syntaxAt(off int64, format string, args ...any) error {
	return &syntaxError{off: off, msg: fmt.Sprintf(format, args...)}
}

// describe words a record's syntax error for people.
func describe(err error) error {
	var se *syntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("malformed JSON at byte %d: %s", se.off, se.msg)
	}
	return fmt.Errorf("malformed JSON: %w", err)
}

func (s *scan) run() {
	s.compressed = s.sc.Decompressed
	if !s.compressed && s.ensure(1) && s.buf[0] == 0x1f && s.buf[1] == 0x8b {
		head := bytes.Clone(s.buf[:s.end])
		zr, err := gzip.NewReader(io.MultiReader(bytes.NewReader(head), s.src))
		s.compressed = true
		s.end, s.eof = 0, false
		if err != nil {
			s.eof = true
			s.readError(err)
			if s.damage == nil && s.ioErr == nil {
				s.damage = fmt.Errorf("the gzip data is corrupt (%v)", err)
			}
			s.finish()
			return
		}
		s.src = zr
	}
	var off int64
	if s.ensure(1) && (s.at(0) == 0xff && s.at(1) == 0xfe || s.at(0) == 0xfe && s.at(1) == 0xff) {
		s.problem(0, errors.New("the file is UTF-16 text: audit logs are read as UTF-8; convert it (PowerShell: Out-File -Encoding utf8) and scan again"))
		s.finish()
		return
	}
	if s.ensure(2) && s.at(0) == 0xef && s.at(1) == 0xbb && s.at(2) == 0xbf {
		off = 3 // a UTF-8 byte order mark
	}
	if off > 0 && s.sc.Resume.Offset == 0 {
		s.consumed(off)
	}
	if !s.sc.DecodeAll {
		s.pre = newPrefilter(s.sc.Matcher.needles[s.cloud], s.buf[:min(s.end, 64<<10)])
		s.chk.whole = &s.pre.whole
	}
	for !s.stop {
		var ok bool
		if off, ok = s.skipSpace(off); !ok {
			break
		}
		s.keep = off
		snap := s.snapshot()
		switch s.at(off) {
		case '[':
			off = s.array(off + 1)
		case '{':
			off = s.topObject(off)
		default:
			off = s.topScalar(off)
		}
		if s.sc.Follow && (s.cut || s.truncatedStream()) {
			s.rollback(snap)
			break
		}
		s.consumed(off)
		s.deliver()
		if s.sc.Continue != nil && !s.sc.Continue(&s.res) {
			break
		}
	}
	s.finish()
}

// truncatedStream reports whether the gzip data ended early: in Follow
// mode, a compressed file still being written.
func (s *scan) truncatedStream() bool { return s.damage != nil && s.damageTruncated }

// finish reports damage to the compressed stream found while reading.
func (s *scan) finish() {
	switch {
	case s.damage == nil:
	case s.sc.Follow && s.damageTruncated:
		s.res.Pending = true
	default:
		s.problem(s.base+int64(s.end), s.damage)
	}
	s.deliver()
}

// isContainerKey reports whether an object member of this name holds the
// records of a file (an array value is required too).
func isContainerKey(k []byte) bool {
	switch string(k) {
	case "Records", "records", "value", "Events":
		return true
	}
	return false
}

// cleanTo returns the index in buf of the first backslash at or after off,
// or the end of buf: what the checker may take as escape-free. Each stretch
// of input is searched once, with the vectorised bytes.IndexByte, however
// many records it holds.
func (s *scan) cleanTo(off int64) int {
	if off < s.slashFrom || s.slashAt >= 0 && s.slashAt < off {
		s.slashFrom, s.slashAt, s.slashSeen = off, -1, off
	}
	end := s.base + int64(s.end)
	if s.slashAt < 0 && s.slashSeen < end {
		from := max(s.slashSeen, off)
		if i := bytes.IndexByte(s.buf[from-s.base:s.end], '\\'); i >= 0 {
			s.slashAt = from + int64(i)
		} else {
			s.slashSeen = end
		}
	}
	if s.slashAt >= 0 {
		return int(s.slashAt - s.base)
	}
	return s.end
}

// checkAt runs a check of the value at off, reading more input while the
// value continues past the buffer and stays within limit bytes of from.
// It returns the offset after the value, or the error: errIncomplete at the
// end of input, errTooLarge past the limit, or a syntax error.
func (s *scan) checkAt(off, from int64, check func(b []byte, i int) (int, error)) (int64, error) {
	for {
		i := int(off - s.base)
		e, err := check(s.buf[:s.end], i)
		if err != errIncomplete {
			return s.base + int64(e), s.absolute(err)
		}
		if s.base+int64(s.end)-from > int64(s.limit) {
			return 0, errTooLarge
		}
		if s.eof {
			return 0, errIncomplete
		}
		s.fill()
	}
}

var errTooLarge = errors.New("record too large")

// topObject handles a top-level object: a record (JSON lines, a single
// record file) or a container whose records array it streams. It returns
// where scanning continues.
func (s *scan) topObject(start int64) int64 {
	s.keep = start
	// The common case, a record of JSON lines: check it whole. Anything
	// else (a container, an error, a record past the limit) takes the
	// member-by-member path below, which handles them all.
	s.chk.reset()
	s.chk.topKeys = true
	for {
		i := int(start - s.base)
		s.chk.clean = s.cleanTo(start)
		e, err := s.chk.value(s.buf[:s.end], i, s.eof)
		if err == nil {
			s.chk.topKeys = false
			end := s.base + int64(e)
			s.record(start, end, true)
			return end
		}
		if err != errIncomplete || s.end-i > s.limit || s.eof {
			break
		}
		s.fill()
	}
	s.chk.topKeys = false

	s.chk.reset()
	off := start + 1
	container := false
	const (
		wantFirst = iota
		wantMember
		wantCommaOrEnd
	)
	state := wantFirst
	for {
		var ok bool
		if off, ok = s.skipSpace(off); !ok {
			if container {
				s.problem(off, errors.New("the file ends inside the object that holds the records: it is truncated"))
			} else {
				s.badRecord(start, errors.New("truncated: the input ends inside this record"))
			}
			s.cut = true
			return off
		}
		if !container && off-start > int64(s.limit) {
			return s.oversizedTop(start)
		}
		c := s.at(off)
		switch {
		case c == '}' && state != wantMember:
			off++
			if !container {
				s.record(start, off, false)
			}
			return off
		case c == ',' && state == wantCommaOrEnd:
			off++
			state = wantMember
			continue
		case c == '"' && state != wantCommaOrEnd:
		default:
			return s.brokenTop(start, off, container, syntaxAt(off, "invalid character %s in an object", quoteChar(c)))
		}
		// A member: its key, a colon, its value.
		from := start
		if container {
			from = off
			s.keep = off
		}
		keyEnd, err := s.checkAt(off, from, func(b []byte, i int) (int, error) { return s.chk.str(b, i+1) })
		if err != nil {
			return s.topError(start, off, container, err)
		}
		key := bytes.Clone(s.buf[off-s.base+1 : keyEnd-s.base-1])
		if off, ok = s.skipSpace(keyEnd); !ok {
			return s.topError(start, off, container, errIncomplete)
		}
		if s.at(off) != ':' {
			return s.brokenTop(start, off, container, syntaxAt(off, "invalid character %s after an object key (expected ':')", quoteChar(s.at(off))))
		}
		if off, ok = s.skipSpace(off + 1); !ok {
			return s.topError(start, off, container, errIncomplete)
		}
		if isContainerKey(key) && s.at(off) == '[' {
			container = true
			s.keep = off
			off = s.array(off + 1)
			if s.stop {
				return off
			}
			state = wantCommaOrEnd
			continue
		}
		if container {
			from = off
			s.keep = off
		}
		valEnd, err := s.checkAt(off, from, func(b []byte, i int) (int, error) { return s.chk.value(b, i, s.eof) })
		if err != nil {
			return s.topError(start, off, container, err)
		}
		off = valEnd
		state = wantCommaOrEnd
	}
}

// topError handles an error from checkAt inside a top-level object.
func (s *scan) topError(start, off int64, container bool, err error) int64 {
	switch {
	case err == errTooLarge && !container:
		return s.oversizedTop(start)
	case err == errTooLarge:
		s.problem(off, fmt.Errorf("a member of the object holding the records is larger than the %s limit", sizeText(s.limit)))
		return s.resyncLine(off)
	case err == errIncomplete && container:
		s.problem(off, errors.New("the file ends inside the object that holds the records: it is truncated"))
		s.stop, s.cut = true, true
		return off
	case err == errIncomplete:
		s.badRecord(start, errors.New("truncated: the input ends inside this record"))
		s.stop, s.cut = true, true
		return off
	}
	return s.brokenTop(start, off, container, err)
}

// brokenTop reports a syntax error in a top-level object and skips to the
// next line that starts a record.
func (s *scan) brokenTop(start, off int64, container bool, err error) int64 {
	if container {
		s.problem(off, fmt.Errorf("unexpected data in the object that holds the records: %w", describe(err)))
		return s.resyncLine(off)
	}
	s.badRecord(start, describe(err))
	return s.resyncLine(start)
}

// oversizedTop reports a top-level record over the size limit and steps over
// it.
func (s *scan) oversizedTop(start int64) int64 {
	pos := s.position(s.res.Records+1, start)
	end, res := s.skipBraces(start)
	s.res.Records++
	s.res.Malformed++
	switch res {
	case skipDone:
		s.report(Problem{Position: pos, Err: fmt.Errorf("the record is larger than the %s limit: skipped", sizeText(s.limit))})
		return end
	case skipBroken:
		s.report(Problem{Position: pos, Err: fmt.Errorf("the record is larger than the %s limit and malformed (a line break inside a string): skipped", sizeText(s.limit))})
		return s.resyncLine(end)
	}
	s.report(Problem{Position: pos, Err: fmt.Errorf("the record is larger than the %s limit and the input ends inside it", sizeText(s.limit))})
	s.stop, s.cut = true, true
	return end
}

// topScalar handles a top-level value that is not an object or array: a
// record of the wrong type, or garbage.
func (s *scan) topScalar(start int64) int64 {
	s.chk.reset()
	end, err := s.checkAt(start, start, func(b []byte, i int) (int, error) {
		return s.chk.value(b, i, s.eof)
	})
	switch {
	case err == nil:
		s.badRecord(start, fmt.Errorf("the record is a JSON %s, not an object", jsonKind(s.at(start))))
		return end
	case err == errIncomplete:
		s.badRecord(start, errors.New("truncated: the input ends inside this record"))
		s.stop, s.cut = true, true
		return start
	case err == errTooLarge:
		s.badRecord(start, fmt.Errorf("the record is larger than the %s limit", sizeText(s.limit)))
	default:
		s.badRecord(start, describe(err))
	}
	return s.resyncLine(start)
}

// resyncLine returns the offset of the next line, after off, that starts
// with something other than whitespace: where JSON lines resume after a bad
// line. Indented lines (the inside of a pretty-printed record) are part of
// the damage already reported.
func (s *scan) resyncLine(off int64) int64 {
	for {
		s.keep = off
		if !s.ensure(off) {
			return off
		}
		i := bytes.IndexByte(s.buf[int(off-s.base):s.end], '\n')
		if i < 0 {
			off = s.base + int64(s.end)
			continue
		}
		off += int64(i) + 1
		s.keep = off
		if !s.ensure(off) {
			return off
		}
		switch s.at(off) {
		case ' ', '\t', '\r', '\n':
		default:
			return off
		}
	}
}

// array streams the elements of an array whose '[' is just before off, each
// a record, and returns the offset after its ']'.
func (s *scan) array(off int64) int64 {
	var ok bool
	if off, ok = s.skipSpace(off); !ok {
		s.problem(off, errors.New("the file ends inside a records array: it is truncated"))
		s.stop, s.cut = true, true
		return off
	}
	if s.at(off) == ']' {
		return off + 1
	}
	for {
		next, resynced := s.element(off)
		if s.stop {
			return next
		}
		off = next
		if resynced {
			continue
		}
		if off, ok = s.skipSpace(off); !ok {
			s.problem(off, fmt.Errorf("the file ends inside a records array, after record %d: it is truncated", s.res.Records))
			s.stop, s.cut = true, true
			return off
		}
		switch s.at(off) {
		case ',':
			if off, ok = s.skipSpace(off + 1); !ok {
				s.problem(off, fmt.Errorf("the file ends inside a records array, after record %d: it is truncated", s.res.Records))
				s.stop, s.cut = true, true
				return off
			}
			if s.at(off) == ']' {
				s.problem(off, errors.New("malformed JSON: a ',' before the ']' that ends the records array"))
				return off + 1
			}
		case ']':
			return off + 1
		default:
			s.problem(off, fmt.Errorf("malformed JSON at byte %d: invalid character %s after record %d (expected ',' or ']')", off, quoteChar(s.at(off)), s.res.Records))
			if s.at(off) == '{' && s.plausibleElement(off) {
				continue // only the ',' is missing
			}
			cand, found := s.resync(off)
			if !found {
				return cand
			}
			off = cand
		}
	}
}

// element checks and handles one array element at off. It returns where the
// array continues; resynced says that is the start of another element (the
// damaged region in between was reported) rather than a delimiter.
func (s *scan) element(off int64) (next int64, resynced bool) {
	s.keep = off
	s.chk.reset()
	for {
		i := int(off - s.base)
		s.chk.clean = s.cleanTo(off)
		e, err := s.chk.value(s.buf[:s.end], i, s.eof)
		if err == nil {
			s.record(off, s.base+int64(e), true)
			return s.base + int64(e), false
		}
		if err != errIncomplete {
			return s.brokenElement(off, s.absolute(err))
		}
		if s.end-i > s.limit {
			return s.oversizedElement(off)
		}
		if s.eof {
			s.badRecord(off, errors.New("truncated: the input ends inside this record"))
			s.stop, s.cut = true, true
			return s.base + int64(s.end), false
		}
		s.fill()
	}
}

// brokenElement reports an element with a syntax error and finds where the
// array continues: after the element when its brackets still balance and a
// delimiter follows, else at the next element that parses.
func (s *scan) brokenElement(off int64, err error) (int64, bool) {
	s.badRecord(off, describe(err))
	end, res := s.skipBraces(off)
	if res == skipDone {
		if n, ok := s.skipSpace(end); ok && (s.at(n) == ',' || s.at(n) == ']') {
			return end, false
		}
	}
	from := max(off+1, s.base)
	if res == skipBroken {
		from = end
	}
	cand, found := s.resync(from)
	return cand, found
}

// oversizedElement reports an element over the size limit and steps over it.
func (s *scan) oversizedElement(off int64) (int64, bool) {
	pos := s.position(s.res.Records+1, off)
	end, res := s.skipBraces(off)
	s.res.Records++
	s.res.Malformed++
	switch res {
	case skipDone:
		s.report(Problem{Position: pos, Err: fmt.Errorf("the record is larger than the %s limit: skipped", sizeText(s.limit))})
		return end, false
	case skipBroken:
		s.report(Problem{Position: pos, Err: fmt.Errorf("the record is larger than the %s limit and malformed (a line break inside a string): skipped", sizeText(s.limit))})
		return s.resync(end)
	}
	s.report(Problem{Position: pos, Err: fmt.Errorf("the record is larger than the %s limit and the input ends inside it", sizeText(s.limit))})
	s.stop, s.cut = true, true
	return end, false
}

// skipBraces steps over the object or array at off by bracket matching
// alone, dropping input as it goes.
func (s *scan) skipBraces(off int64) (int64, skipResult) {
	if c := s.at(off); c != '{' && c != '[' {
		return off, skipBroken
	}
	var sk braceSkipper
	for {
		if !s.ensure(off) {
			return off, skipMore
		}
		n, res := sk.feed(s.buf[int(off-s.base):s.end])
		off += int64(n)
		if res != skipMore {
			return off, res
		}
		// Keep up to a record's worth behind: if the brackets never balance,
		// resync searches the damaged record again for the next one.
		s.keep = max(s.keep, off-int64(s.limit))
	}
}

// resync looks for the next element of the array at or after off: an
// object that follows a ',', parses, and is followed by ',' or ']'. It
// returns its offset, or false (and stops the file) at the end of input.
func (s *scan) resync(off int64) (int64, bool) {
	for {
		s.keep = max(s.keep, off-64)
		if !s.ensure(off) {
			s.problem(off, errors.New("no further record found after the damage: the rest of the input is skipped"))
			s.stop, s.cut = true, true
			return off, false
		}
		i := bytes.IndexByte(s.buf[int(off-s.base):s.end], '{')
		if i < 0 {
			off = s.base + int64(s.end)
			continue
		}
		cand := off + int64(i)
		if s.precededByComma(cand) && s.plausibleElement(cand) {
			return cand, true
		}
		off = cand + 1
	}
}

// precededByComma reports whether the last non-space byte before off (within
// the buffer) is a ','.
func (s *scan) precededByComma(off int64) bool {
	for k := int(off-s.base) - 1; k >= 0; k-- {
		switch s.buf[k] {
		case ' ', '\t', '\n', '\r':
			continue
		case ',':
			return true
		}
		return false
	}
	return false
}

// plausibleElement reports whether a valid object starts at off and is
// followed by ',' or ']'.
func (s *scan) plausibleElement(off int64) bool {
	keep := s.keep
	s.keep = max(s.keep, off-64)
	defer func() { s.keep = keep }()
	var chk checker
	end, err := s.checkAt(off, off, func(b []byte, i int) (int, error) { return chk.value(b, i, s.eof) })
	if err != nil {
		return false
	}
	n, ok := s.skipSpace(end)
	return ok && (s.at(n) == ',' || s.at(n) == ']')
}

// record handles one syntactically valid record in buf between off and
// end. whole says the checker checked it in one piece, so its escaped and
// wholeHit notes cover the whole record.
func (s *scan) record(off, end int64, whole bool) {
	raw := s.buf[int(off-s.base):int(end-s.base)]
	if raw[0] != '{' {
		s.badRecord(off, fmt.Errorf("the record is a JSON %s, not an object", jsonKind(raw[0])))
		return
	}
	s.res.Records++
	if !s.sc.DecodeAll && !s.chk.escaped {
		if !(whole && s.chk.wholeHit) && !s.pre.anchoredIn(s.buf[:s.end], s.base, off, end) && (whole || !s.pre.wholeIn(raw)) {
			return
		}
	}
	ev, err := s.parse(raw)
	if err != nil {
		s.res.Malformed++
		s.report(Problem{Position: s.position(s.res.Records, off), Err: err})
		return
	}
	accounts := s.sc.Matcher.Match(ev)
	if len(accounts) == 0 {
		return
	}
	ev.Position = s.position(s.res.Records, off)
	ev.Raw = bytes.Clone(raw)
	for _, a := range accounts {
		s.res.Detections = append(s.res.Detections, Detection{Account: a, Event: ev})
	}
}

func jsonKind(c byte) string {
	switch c {
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

func sizeText(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d-byte", n)
}
