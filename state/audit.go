package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// GenesisHash is the PrevHash of the first audit entry.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// auditDomain separates this hash from any other SHA-256 use and versions
// the encoding.
const auditDomain = "elevate-audit-v1"

// AuditHash returns the lowercase hex SHA-256 of e's canonical encoding:
// a domain tag, then Seq and Time (Unix microseconds) as big-endian int64,
// then Actor, Action, Subject, Data and PrevHash each as a big-endian uint64
// length followed by the bytes. Length prefixes make the encoding
// unambiguous; Hash itself is not part of it.
func AuditHash(e AuditEvent) string {
	h := sha256.New()
	var n [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field([]byte(auditDomain))
	binary.BigEndian.PutUint64(n[:], uint64(e.Seq))
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(e.Time.UnixMicro()))
	h.Write(n[:])
	field([]byte(e.Actor))
	field([]byte(e.Action))
	field([]byte(e.Subject))
	field(e.Data)
	field([]byte(e.PrevHash))
	return hex.EncodeToString(h.Sum(nil))
}

// prepareAudit checks a caller's entry and normalises its data to compact
// JSON ("null" when empty), the form that is stored and hashed.
func prepareAudit(e AuditEvent) (AuditEvent, error) {
	if e.Actor == "" || e.Action == "" {
		return e, fmt.Errorf("appending audit entry: actor and action are required: %w", ErrInvalid)
	}
	if len(e.Data) == 0 {
		e.Data = json.RawMessage("null")
		return e, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, e.Data); err != nil {
		return e, fmt.Errorf("appending audit entry %s: data is not valid JSON (%v): %w", e.Action, err, ErrInvalid)
	}
	e.Data = buf.Bytes()
	return e, nil
}

// sealAudit fills in the chain fields of a prepared entry.
func sealAudit(e AuditEvent, seq int64, prevHash string, at time.Time) AuditEvent {
	e.Seq = seq
	e.Time = normTime(at)
	e.PrevHash = prevHash
	e.Hash = AuditHash(e)
	return e
}

// chainVerifier checks entries one at a time, in sequence order.
type chainVerifier struct {
	res      VerifyResult
	prevHash string
}

func newChainVerifier() *chainVerifier {
	return &chainVerifier{res: VerifyResult{OK: true}, prevHash: GenesisHash}
}

// next checks e and reports whether to go on.
func (v *chainVerifier) next(e AuditEvent) bool {
	v.res.Checked++
	want := v.res.HeadSeq + 1
	switch {
	case e.Seq != want:
		return v.fail(want, fmt.Sprintf("entry %d is missing (found %d next): entries were deleted", want, e.Seq))
	case e.PrevHash != v.prevHash:
		if want == 1 {
			return v.fail(e.Seq, "entry 1 does not start the chain (prev_hash is not the genesis hash)")
		}
		return v.fail(e.Seq, fmt.Sprintf("prev_hash does not match the hash of entry %d: entry %d or %d was altered", want-1, want-1, want))
	case AuditHash(e) != e.Hash:
		return v.fail(e.Seq, fmt.Sprintf("stored hash does not match the entry's contents: entry %d was altered", e.Seq))
	}
	v.res.HeadSeq, v.res.HeadHash, v.prevHash = e.Seq, e.Hash, e.Hash
	return true
}

func (v *chainVerifier) fail(seq int64, problem string) bool {
	v.res.OK, v.res.BrokenSeq, v.res.Problem = false, seq, problem
	return false
}

// finish compares the walked chain with the stored head (the last sequence
// number and hash recorded at append time), which catches a truncated tail.
func (v *chainVerifier) finish(headSeq int64, headHash string) VerifyResult {
	if !v.res.OK {
		return v.res
	}
	walked := v.res.HeadSeq
	switch {
	case walked < headSeq:
		v.fail(walked+1, fmt.Sprintf("the log ends at entry %d but entries up to %d were appended: entries were removed from the end", walked, headSeq))
	case walked > headSeq:
		v.fail(headSeq+1, fmt.Sprintf("entries after %d were not appended through the store (or its head record was altered)", headSeq))
	case headSeq > 0 && headHash != v.res.HeadHash:
		v.fail(headSeq, fmt.Sprintf("entry %d does not match the hash recorded when it was appended: it was altered", headSeq))
	}
	return v.res
}

// normTime is how every store keeps time: UTC, to the microsecond, with
// the zero time kept zero.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}
