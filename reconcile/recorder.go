package reconcile

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/state"
)

// recorder writes a leader's bookkeeping (audit entries, binding records,
// grant status changes) to the store, in the order the passes produced it,
// on its own goroutine. The cloud writes of the next pass then never wait
// for the store writes of the last one: with SQLite each of those is a
// synced transaction, and ten thousand of them take longer than the lag
// bound. Everything it writes is derived again by later passes, so work lost
// in a crash or a change of leader is redone. The audit entries of the
// outcome of cloud writes are lost then, but not the writes' record: the
// intent of each scope's writes is committed before them (applyIntent).
//
// While a grant's status change or a binding record write is queued, passes
// see it through pendingGrant and pendingRecords instead of the store,
// so they neither queue it again nor act on the store's stale view.
type recorder struct {
	e        *Engine
	st       state.Store
	stepDown func(error)
	jobs     chan recordJob
	done     chan struct{}
	// ctx ends the store calls of a recorder told to stop.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	grants map[string]int
	// activating counts the queued status changes of each grant that
	// activate it: the active-grants gauge counts those grants already.
	activating map[string]int
	records    map[model.BindingKey]pendingRecord
	// mirror holds each loaded scope's binding records as they will be
	// once the queue is written. The leader is the only writer of binding
	// records, so between full passes (which load it from the store) it is
	// the truth, and targeted passes need not read the store.
	mirror map[model.ScopeKey]*mirrored
	seq    uint64
	fenced error
}

// recordJob is one unit of bookkeeping: the audit entries and record writes
// of one scope, or the status changes of one pass.
type recordJob struct {
	audit   []state.AuditEvent
	records []recordOp
	settle  []settleOp
}

// recordOp puts a binding record, or deletes it.
type recordOp struct {
	rec state.BindingRecord
	del bool
	seq uint64
}

type pendingRecord struct {
	op recordOp
}

// mirrored is one scope's binding records: base, sorted by
// compareBindings and held compactly (the leader keeps every binding
// record between full passes), and the writes queued since, by key. view
// folds the writes into a new base.
type mirrored struct {
	base []mirrorRecord
	// targets are the distinct targets of base, which points into them.
	targets []model.Target
	// over holds the writes since base was made; owners holds their
	// owners, so folding them in computes the key only of records that
	// may be overwritten.
	over   map[model.BindingKey]recordOp
	owners map[string]bool
}

// mirrorRecord is a state.BindingRecord as the mirror holds it: less than
// half the size (the target is shared, the times are instants, and the
// state and detail of a record that is simply applied take no room).
type mirrorRecord struct {
	target             *model.Target
	principal          model.Principal
	owner, raw         string
	notBefore, expires int64 // Unix nanoseconds; noTime for the zero time
	native             bool
	// other holds the state and detail of a record that is not applied,
	// or has a detail; nil for an applied one.
	other *recordState
}

type recordState struct {
	state  state.BindingState
	detail string
}

// noTime stands for the zero time.Time in a mirrorRecord.
const noTime = math.MinInt64

func packTime(t time.Time) int64 {
	if t.IsZero() {
		return noTime
	}
	return t.UnixNano()
}

func unpackTime(n int64) time.Time {
	if n == noTime {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// pack sets m's base to records, which are sorted.
func (m *mirrored) pack(records []state.BindingRecord) {
	m.base = make([]mirrorRecord, len(records))
	m.targets = m.targets[:0]
	for i := range records {
		r := &records[i]
		b := &r.Binding
		j := slices.Index(m.targets, b.Target)
		if j < 0 {
			j = len(m.targets)
			m.targets = append(m.targets, b.Target)
		}
		mr := mirrorRecord{principal: b.Principal, owner: b.Owner, raw: b.Raw,
			notBefore: packTime(b.NotBefore), expires: packTime(b.Expires), native: b.Native}
		if r.State != state.BindingApplied || r.Detail != "" {
			mr.other = &recordState{state: r.State, detail: r.Detail}
		}
		m.base[i] = mr
	}
	// The targets slice is final only now (append may have moved it).
	for i := range records {
		m.base[i].target = &m.targets[slices.Index(m.targets, records[i].Binding.Target)]
	}
}

// unpack returns the records of base.
func (m *mirrored) unpack() []state.BindingRecord {
	out := make([]state.BindingRecord, len(m.base))
	for i := range m.base {
		mr := &m.base[i]
		out[i] = state.BindingRecord{Binding: model.Binding{Target: *mr.target, Principal: mr.principal, Owner: mr.owner,
			NotBefore: unpackTime(mr.notBefore), Expires: unpackTime(mr.expires), Native: mr.native, Raw: mr.raw},
			State: state.BindingApplied}
		if mr.other != nil {
			out[i].State, out[i].Detail = mr.other.state, mr.other.detail
		}
	}
	return out
}

// put records a queued write.
func (m *mirrored) put(k model.BindingKey, op recordOp) {
	if m.over == nil {
		m.over = make(map[model.BindingKey]recordOp)
		m.owners = make(map[string]bool)
	}
	m.over[k] = op
	m.owners[k.Owner] = true
}

// fold returns the records with the queued writes applied, sorted, and
// makes that the new base.
func (m *mirrored) fold() []state.BindingRecord {
	base := m.unpack()
	if len(m.over) == 0 {
		return base
	}
	out := make([]state.BindingRecord, 0, len(base)+len(m.over))
	for _, rec := range base {
		if m.owners[rec.Binding.Owner] {
			if _, ok := m.over[rec.Binding.Key()]; ok {
				continue
			}
		}
		out = append(out, rec)
	}
	for _, op := range m.over {
		if !op.del {
			out = append(out, op.rec)
		}
	}
	slices.SortFunc(out, func(a, b state.BindingRecord) int { return compareBindings(a.Binding, b.Binding) })
	m.pack(out)
	m.over, m.owners = nil, nil
	return out
}

// settleOp is one grant status change and what to do once it is stored.
type settleOp struct {
	grant  model.Grant // as the pass saw it
	action string
	note   string
	mutate func(*model.Grant) bool
	after  func(stored model.Grant)
}

// recorderQueue bounds the queued jobs; a pass that finds it full waits,
// which slows passes down to what the store can absorb.
const recorderQueue = 4096

// recordTimeout bounds the store writes of one job (a real-time I/O
// timeout): a hung store must not hang the leader.
const recordTimeout = time.Minute

func newRecorder(e *Engine, st state.Store, stepDown func(error)) *recorder {
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder{
		ctx: ctx, cancel: cancel,
		e: e, st: st, stepDown: stepDown,
		jobs:       make(chan recordJob, recorderQueue),
		done:       make(chan struct{}),
		grants:     make(map[string]int),
		activating: make(map[string]int),
		records:    make(map[model.BindingKey]pendingRecord),
		mirror:     make(map[model.ScopeKey]*mirrored),
	}
	go r.run()
	return r
}

// enqueue queues job; it marks its grants and records as pending first. It
// waits while the queue is full, unless ctx ends (the job is then dropped;
// a later pass redoes it).
func (r *recorder) enqueue(ctx context.Context, job recordJob) {
	if len(job.audit) == 0 && len(job.records) == 0 && len(job.settle) == 0 {
		return
	}
	r.mu.Lock()
	for i := range job.records {
		r.seq++
		op := &job.records[i]
		op.seq = r.seq
		k := op.rec.Binding.Key()
		r.records[k] = pendingRecord{op: *op}
		if m := r.mirror[k.Target.ScopeKey()]; m != nil {
			m.put(k, *op)
		}
	}
	for _, s := range job.settle {
		r.grants[s.grant.ID]++
		if s.action == "activate" {
			r.activating[s.grant.ID]++
		}
	}
	r.mu.Unlock()
	select {
	case r.jobs <- job:
	case <-ctx.Done():
		r.finish(job)
	}
}

// pending reports whether a status change of grant id is queued.
func (r *recorder) pending(id string) bool {
	p, _ := r.pendingGrant(id)
	return p
}

// pendingGrant reports whether a status change of grant id is queued, and
// whether that change makes it active.
func (r *recorder) pendingGrant(id string) (pending, activating bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.grants[id] > 0, r.activating[id] > 0
}

// view returns the mirrored binding records of scope, if it is loaded,
// sorted by compareBindings.
func (r *recorder) view(scope model.ScopeKey) ([]state.BindingRecord, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.mirror[scope]
	if !ok {
		return nil, false
	}
	return m.fold(), true
}

// load takes the records of scope just read from the store, applies the
// queued writes, sorts and mirrors the result and returns it.
func (r *recorder) load(scope model.ScopeKey, records []state.BindingRecord) []state.BindingRecord {
	records = r.overlay(scope, records)
	slices.SortFunc(records, func(a, b state.BindingRecord) int { return compareBindings(a.Binding, b.Binding) })
	m := &mirrored{}
	m.pack(records)
	r.mu.Lock()
	r.mirror[scope] = m
	r.mu.Unlock()
	return records
}

// overlay returns records as they will be once the queued record writes of
// scope are done.
func (r *recorder) overlay(scope model.ScopeKey, records []state.BindingRecord) []state.BindingRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.records) == 0 {
		return records
	}
	out := make([]state.BindingRecord, 0, len(records))
	seen := make(map[model.BindingKey]bool, len(records))
	for _, rec := range records {
		k := rec.Binding.Key()
		seen[k] = true
		if p, ok := r.records[k]; ok {
			if !p.op.del {
				out = append(out, p.op.rec)
			}
			continue
		}
		out = append(out, rec)
	}
	for k, p := range r.records {
		if !seen[k] && !p.op.del && k.Target.ScopeKey() == scope {
			out = append(out, p.op.rec)
		}
	}
	return out
}

// close stops taking jobs and waits until the queued ones are written, or
// ctx ends (what is left is then dropped; later passes redo it).
func (r *recorder) close(ctx context.Context) {
	close(r.jobs)
	select {
	case <-r.done:
	case <-ctx.Done():
		r.mu.Lock()
		r.fenced = fmt.Errorf("recorder stopped: %w", ctx.Err())
		r.mu.Unlock()
		r.cancel()
		<-r.done
	}
	r.cancel()
}

func (r *recorder) run() {
	defer close(r.done)
	for job := range r.jobs {
		r.mu.Lock()
		stopped := r.fenced != nil
		r.mu.Unlock()
		if !stopped {
			if err := r.write(job); err != nil {
				f := fencedErr(err)
				if f == nil {
					f = err
				}
				r.mu.Lock()
				r.fenced = f
				r.mu.Unlock()
				r.stepDown(f)
			}
		}
		r.finish(job)
	}
}

// finish clears what job marked as pending.
func (r *recorder) finish(job recordJob) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, op := range job.records {
		k := op.rec.Binding.Key()
		if p, ok := r.records[k]; ok && p.op.seq == op.seq {
			delete(r.records, k)
		}
	}
	for _, s := range job.settle {
		if r.grants[s.grant.ID]--; r.grants[s.grant.ID] <= 0 {
			delete(r.grants, s.grant.ID)
		}
		if s.action == "activate" {
			if r.activating[s.grant.ID]--; r.activating[s.grant.ID] <= 0 {
				delete(r.activating, s.grant.ID)
			}
		}
	}
}

// Retries of a failed store write within the recorder.
const (
	recordAttempts = 4
	recordBackoff  = 100 * time.Millisecond
)

// do runs one store write, each attempt bounded by recordTimeout, and
// retries it with backoff unless it failed for a reason retrying cannot fix
// (fenced, invalid, not found) or the recorder is stopping.
func (r *recorder) do(f func(ctx context.Context) error) error {
	var err error
	for attempt := range recordAttempts {
		if attempt > 0 {
			t := r.e.clock.TimerAt(r.e.clock.Now().Add(recordBackoff << (2 * (attempt - 1))))
			select {
			case <-r.ctx.Done():
				t.Stop()
				return err
			case <-t.C():
			}
		}
		ctx, cancel := context.WithTimeout(r.ctx, recordTimeout)
		err = f(ctx)
		cancel()
		if err == nil || fencedErr(err) != nil || errors.Is(err, state.ErrInvalid) || errors.Is(err, state.ErrNotFound) || r.ctx.Err() != nil {
			return err
		}
	}
	return err
}

// write writes job. A write that keeps failing is logged and skipped (later
// passes redo records and status changes; a lost audit entry is logged in
// full); only a fenced write stops the recorder, returned as the error.
func (r *recorder) write(job recordJob) error {
	log := r.e.log
	for _, a := range job.audit {
		err := r.do(func(ctx context.Context) error { _, err := r.st.AppendAudit(ctx, a); return err })
		if fencedErr(err) != nil {
			return err
		}
		if err != nil {
			log.Error("appending an audit entry failed; the entry is lost", "error", err,
				"actor", a.Actor, "action", a.Action, "subject", a.Subject, "data", string(a.Data))
		}
	}
	for _, op := range job.records {
		err := r.do(func(ctx context.Context) error {
			if op.del {
				return r.st.DeleteBinding(ctx, op.rec.Binding)
			}
			return r.st.PutBinding(ctx, op.rec)
		})
		if fencedErr(err) != nil {
			return err
		}
		if err != nil {
			log.Error("recording a binding failed; a later pass records it again", "error", err,
				"target", op.rec.Binding.Target.String(), "principal", op.rec.Binding.Principal.String())
		}
	}
	for _, s := range job.settle {
		var stored model.Grant
		var ok bool
		err := r.do(func(ctx context.Context) error {
			g := s.grant
			var err error
			stored, ok, err = r.e.transitionOK(ctx, r.st, &g, s.action, s.note, s.mutate)
			return err
		})
		if fencedErr(err) != nil {
			return err
		}
		if err != nil {
			log.Error("changing a grant's status failed; retrying in a later pass", "grant", s.grant.ID, "action", s.action, "error", err)
			r.e.settleRetry.Store(true)
			r.e.poke()
			continue
		}
		if ok && s.after != nil {
			s.after(stored)
		}
	}
	return nil
}
