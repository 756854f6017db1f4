package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/state"
)

// appendN appends n entries, advancing the clock by a second before each.
func appendN(t *testing.T, s state.Store, clock *Clock, n int) []state.AuditEvent {
	t.Helper()
	var out []state.AuditEvent
	for i := range n {
		clock.Advance(time.Second)
		e := must(s.AppendAudit(ctxFor(t), state.AuditEvent{
			Actor: "user:alice@example.com", Action: "test.event", Subject: fmt.Sprintf("thing/%d", i%2),
			Data: json.RawMessage(fmt.Sprintf(`{ "i" : %d, "note": "entry %d" }`, i, i)),
		}))(t)
		out = append(out, e)
	}
	return out
}

func testAuditChain(t *testing.T, b Backend) {
	s, clock := open(t, b)
	ctx := ctxFor(t)

	res := must(s.VerifyAudit(ctx))(t)
	if !res.OK || res.Checked != 0 || res.HeadSeq != 0 {
		t.Fatalf("verifying an empty log: %+v, want OK with nothing checked", res)
	}

	got := appendN(t, s, clock, 5)
	prev := state.GenesisHash
	for i, e := range got {
		if e.Seq != int64(i+1) || e.PrevHash != prev || e.Hash != state.AuditHash(e) || len(e.Hash) != 64 {
			t.Fatalf("entry %d: seq %d prev %s hash %s; want seq %d chained to %s with its own hash", i, e.Seq, e.PrevHash, e.Hash, i+1, prev)
		}
		if want := fmt.Sprintf(`{"i":%d,"note":"entry %d"}`, i, i); string(e.Data) != want {
			t.Fatalf("entry %d data %s, want compacted %s", i, e.Data, want)
		}
		if !e.Time.Equal(norm(start.Add(time.Duration(i+1)*time.Second))) || e.Time.Location() != time.UTC {
			t.Fatalf("entry %d time %v, want the store clock's %v in UTC", i, e.Time, norm(start.Add(time.Duration(i+1)*time.Second)))
		}
		prev = e.Hash
	}

	// Stored entries read back exactly as appended.
	all := must(s.ListAudit(ctx, state.AuditFilter{}))(t)
	if d := cmp.Diff(got, all); d != "" {
		t.Fatalf("ListAudit differs from the appended entries (-appended +listed):\n%s", d)
	}
	page := must(s.ListAudit(ctx, state.AuditFilter{AfterSeq: 2, Limit: 2}))(t)
	if len(page) != 2 || page[0].Seq != 3 || page[1].Seq != 4 {
		t.Fatalf("ListAudit after 2, limit 2: got %d entries starting %v", len(page), page)
	}
	subj := must(s.ListAudit(ctx, state.AuditFilter{Subject: "thing/1"}))(t)
	if len(subj) != 2 || subj[0].Seq != 2 || subj[1].Seq != 4 {
		t.Fatalf("ListAudit subject thing/1: got %v, want entries 2 and 4", subj)
	}
	seqs := func(es []state.AuditEvent) []int64 {
		out := []int64{}
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return out
	}
	for _, c := range []struct {
		f    state.AuditFilter
		want []int64
	}{
		{state.AuditFilter{Tail: true, Limit: 1}, []int64{5}},
		{state.AuditFilter{Tail: true, Limit: 2, AfterSeq: 1}, []int64{4, 5}},
		{state.AuditFilter{Tail: true, Limit: 9}, []int64{1, 2, 3, 4, 5}},
		{state.AuditFilter{Action: "test.event", Subject: "thing/0", Tail: true, Limit: 2}, []int64{3, 5}},
		{state.AuditFilter{Action: "test.event", AfterSeq: 3}, []int64{4, 5}},
		{state.AuditFilter{Action: "no.such.action"}, []int64{}},
	} {
		if got := seqs(must(s.ListAudit(ctx, c.f))(t)); !slices.Equal(got, c.want) {
			t.Fatalf("ListAudit %+v: got entries %v, want %v", c.f, got, c.want)
		}
	}

	res = must(s.VerifyAudit(ctx))(t)
	want := state.VerifyResult{OK: true, Checked: 5, HeadSeq: 5, HeadHash: got[4].Hash}
	if d := cmp.Diff(want, res); d != "" {
		t.Fatalf("VerifyAudit (-want +got):\n%s", d)
	}

	// An entry without data stores JSON null; bad input is refused.
	e := must(s.AppendAudit(ctx, state.AuditEvent{Actor: "a", Action: "b"}))(t)
	if string(e.Data) != "null" || e.Seq != 6 {
		t.Fatalf("entry without data: seq %d data %q, want seq 6 data null", e.Seq, e.Data)
	}
	_, err := s.AppendAudit(ctx, state.AuditEvent{Actor: "a", Action: "b", Data: json.RawMessage(`{"x":`)})
	wantErr(t, err, state.ErrInvalid, "appending an entry with invalid JSON data")
	_, err = s.AppendAudit(ctx, state.AuditEvent{Action: "b"})
	wantErr(t, err, state.ErrInvalid, "appending an entry without an actor")
	if res := must(s.VerifyAudit(ctx))(t); !res.OK || res.Checked != 6 {
		t.Fatalf("after refused appends: %+v, want 6 entries OK", res)
	}
}

func testAuditTamper(t *testing.T, b Backend) {
	if b.RewriteAudit == nil {
		t.Skip("this backend has no RewriteAudit hook: tamper detection not exercised")
	}
	cases := []struct {
		name       string
		tamper     func(t *testing.T, s state.Store, entries []state.AuditEvent)
		brokenSeq  int64
		problemHas string
	}{
		{"data changed", func(t *testing.T, s state.Store, es []state.AuditEvent) {
			e := es[2]
			e.Data = json.RawMessage(`{"i":2,"note":"nothing to see"}`)
			b.RewriteAudit(t, s, 3, &e)
		}, 3, "entry 3 was altered"},
		{"actor changed and rehashed", func(t *testing.T, s state.Store, es []state.AuditEvent) {
			e := es[2]
			e.Actor = "user:mallory@example.com"
			e.Hash = state.AuditHash(e)
			b.RewriteAudit(t, s, 3, &e)
		}, 4, "entry 3 or 4 was altered"},
		{"time changed", func(t *testing.T, s state.Store, es []state.AuditEvent) {
			e := es[1]
			e.Time = e.Time.Add(-time.Hour)
			b.RewriteAudit(t, s, 2, &e)
		}, 2, "entry 2 was altered"},
		{"middle entry deleted", func(t *testing.T, s state.Store, es []state.AuditEvent) {
			b.RewriteAudit(t, s, 3, nil)
		}, 3, "entry 3 is missing"},
		{"last entry deleted", func(t *testing.T, s state.Store, es []state.AuditEvent) {
			b.RewriteAudit(t, s, 5, nil)
		}, 5, "removed from the end"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, clock := open(t, b)
			entries := appendN(t, s, clock, 5)
			tc.tamper(t, s, entries)
			res := must(s.VerifyAudit(ctxFor(t)))(t)
			if res.OK || res.BrokenSeq != tc.brokenSeq || !strings.Contains(res.Problem, tc.problemHas) {
				t.Fatalf("VerifyAudit after tampering = %+v; want not OK, broken at %d, problem mentioning %q", res, tc.brokenSeq, tc.problemHas)
			}
		})
	}
}

// testAuditConcurrent appends from several goroutines, some through grant
// writes: the chain must stay linear and every goroutine's entries must
// appear in the order it appended them.
func testAuditConcurrent(t *testing.T, b Backend) {
	s, _ := open(t, b)
	ctx := ctxFor(t)
	const workers, each = 6, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				var err error
				if w == 0 && i%3 == 0 {
					_, err = s.CreateGrant(ctx, newGrant(fmt.Sprintf("w%d-%d", w, i), alice, "db", start), state.Change{Actor: "w", Action: "request"})
				} else {
					_, err = s.AppendAudit(ctx, state.AuditEvent{Actor: fmt.Sprintf("worker-%d", w), Action: "test.concurrent", Data: json.RawMessage(fmt.Sprint(i))})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	res := must(s.VerifyAudit(ctx))(t)
	if !res.OK || res.Checked != workers*each || res.HeadSeq != workers*each {
		t.Fatalf("after %d concurrent appends: %+v", workers*each, res)
	}
	last := map[string]int{}
	for _, e := range must(s.ListAudit(ctx, state.AuditFilter{}))(t) {
		if e.Action != "test.concurrent" {
			continue
		}
		var i int
		if err := json.Unmarshal(e.Data, &i); err != nil {
			t.Fatal(err)
		}
		if prev, ok := last[e.Actor]; ok && i <= prev {
			t.Fatalf("%s's entry %d is after its entry %d in the log", e.Actor, i, prev)
		}
		last[e.Actor] = i
	}
	if len(last) != workers {
		t.Fatalf("entries from %d workers, want %d", len(last), workers)
	}
}

func testBindings(t *testing.T, b Backend) {
	s, clock := open(t, b)
	ctx := ctxFor(t)
	prod := model.ScopeKey{Cloud: model.CloudGCP, Scope: "projects/acme-prod"}
	dev := model.ScopeKey{Cloud: model.CloudGCP, Scope: "projects/acme-dev"}
	exp := start.Add(time.Hour)
	bind := func(scope model.ScopeKey, role string, p model.Principal, owner string) model.Binding {
		return model.Binding{Target: model.Target{Cloud: scope.Cloud, Scope: scope.Scope, Role: role}, Principal: p, Owner: owner,
			NotBefore: start, Expires: exp, Native: true, Raw: "elevate-" + owner}
	}
	recs := []state.BindingRecord{
		{Binding: bind(prod, "roles/cloudsql.admin", bob, "g2"), State: state.BindingApplied},
		{Binding: bind(prod, "roles/cloudsql.admin", alice, "g1"), State: state.BindingApplied},
		{Binding: bind(prod, "roles/viewer", alice, "g1"), State: state.BindingFailed, Detail: "permission denied on projects/acme-prod"},
		{Binding: bind(dev, "roles/viewer", alice, "g3")},
	}
	for _, r := range recs {
		if err := s.PutBinding(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	key := func(rs []state.BindingRecord) []string {
		var out []string
		for _, r := range rs {
			out = append(out, fmt.Sprintf("%s %s %s %s", r.Binding.Target, r.Binding.Principal, r.Binding.Owner, r.State))
		}
		return out
	}
	inProd := must(s.ListBindings(ctx, state.BindingFilter{Scope: prod}))(t)
	want := []string{
		"gcp:projects/acme-prod:roles/cloudsql.admin user:alice@example.com g1 applied",
		"gcp:projects/acme-prod:roles/cloudsql.admin user:bob@example.com g2 applied",
		"gcp:projects/acme-prod:roles/viewer user:alice@example.com g1 failed",
	}
	if d := cmp.Diff(want, key(inProd)); d != "" {
		t.Fatalf("bindings in %s (-want +got):\n%s", prod, d)
	}
	wantRec := recs[2]
	wantRec.Binding.NotBefore, wantRec.Binding.Expires, wantRec.Updated = norm(start), norm(exp), norm(start)
	if d := cmp.Diff(wantRec, inProd[2]); d != "" {
		t.Fatalf("stored binding record (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"gcp:projects/acme-dev:roles/viewer user:alice@example.com g3 applied"},
		key(must(s.ListBindings(ctx, state.BindingFilter{Scope: dev}))(t))); d != "" {
		t.Fatalf("bindings in %s, defaulting to applied (-want +got):\n%s", dev, d)
	}
	if n := len(must(s.ListBindings(ctx, state.BindingFilter{}))(t)); n != 4 {
		t.Fatalf("all bindings: %d, want 4", n)
	}
	if n := len(must(s.ListBindings(ctx, state.BindingFilter{Owner: "g1"}))(t)); n != 2 {
		t.Fatalf("bindings owned by g1: %d, want 2", n)
	}
	l, ok := s.(state.BindingScopeLister)
	if !ok {
		t.Fatalf("%T does not list the scopes holding binding records (state.BindingScopeLister)", s)
	}
	if d := cmp.Diff([]model.ScopeKey{dev, prod}, must(l.BindingScopes(ctx))(t)); d != "" {
		t.Fatalf("scopes holding binding records (-want +got):\n%s", d)
	}

	// Putting the same key again (the principal spelled differently)
	// replaces the record instead of adding one.
	clock.Advance(time.Minute)
	again := recs[1]
	again.Binding.Principal = model.MustPrincipal("user:ALICE@example.com")
	again.Binding.Expires = exp.Add(time.Hour)
	if err := s.PutBinding(ctx, again); err != nil {
		t.Fatal(err)
	}
	inProd = must(s.ListBindings(ctx, state.BindingFilter{Scope: prod}))(t)
	if len(inProd) != 3 || !inProd[0].Binding.Expires.Equal(norm(exp.Add(time.Hour))) || !inProd[0].Updated.Equal(norm(clock.Now())) {
		t.Fatalf("after replacing alice's cloudsql.admin binding: %d records, first %+v", len(inProd), inProd[0])
	}

	// Deleting is by key and idempotent.
	if err := s.DeleteBinding(ctx, recs[1].Binding); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteBinding(ctx, recs[1].Binding); err != nil {
		t.Fatalf("deleting a binding that is already gone: %v", err)
	}
	if d := cmp.Diff(want[1:], key(must(s.ListBindings(ctx, state.BindingFilter{Scope: prod}))(t))); d != "" {
		t.Fatalf("bindings in %s after the delete (-want +got):\n%s", prod, d)
	}
	// A binding with another owner is a different binding.
	other := recs[0].Binding
	other.Owner = "g9"
	if err := s.DeleteBinding(ctx, other); err != nil {
		t.Fatal(err)
	}
	if n := len(must(s.ListBindings(ctx, state.BindingFilter{Scope: prod}))(t)); n != 2 {
		t.Fatalf("deleting another owner's key removed ours: %d left, want 2", n)
	}

	err := s.PutBinding(ctx, state.BindingRecord{Binding: model.Binding{Principal: alice}})
	wantErr(t, err, state.ErrInvalid, "storing a binding without a target")
	err = s.PutBinding(ctx, state.BindingRecord{Binding: recs[0].Binding, State: "gone"})
	wantErr(t, err, state.ErrInvalid, "storing a binding with an unknown state")
}
