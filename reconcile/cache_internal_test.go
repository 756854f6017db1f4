package reconcile

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/state"
)

// The cache's list folds changed grants into the last sorted list instead
// of sorting every grant again: after any mix of updates, new grants and
// ended ones it must equal the live grants sorted from scratch.
func TestGrantCacheListMergesChanges(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	grant := func(i int, version int64, status model.GrantStatus) model.Grant {
		return model.Grant{ID: fmt.Sprintf("g%04d", i), Status: status, Version: version,
			RequestedAt: t0.Add(time.Duration(i/3) * time.Second)} // ties on time, ordered by ID
	}
	var read []model.Grant
	for i := range 200 {
		read = append(read, grant(i, 1, model.StatusActive))
	}
	c := newGrantCache()
	if c.isLoaded() {
		t.Fatal("a new cache says it is loaded")
	}
	rng.Shuffle(len(read), func(i, j int) { read[i], read[j] = read[j], read[i] })
	c.reset(read)
	if !c.isLoaded() {
		t.Fatal("a reset cache says it is not loaded")
	}
	want := map[string]model.Grant{}
	for _, g := range read {
		want[g.ID] = g
	}
	version := int64(1)
	for round := range 20 {
		for range 1 + rng.IntN(15) {
			version++
			i := rng.IntN(260) // some new
			status := model.StatusActive
			if rng.IntN(4) == 0 {
				status = model.StatusExpired
			}
			g := grant(i, version, status)
			c.apply(g)
			if status.Live() {
				want[g.ID] = g
			} else {
				delete(want, g.ID)
			}
		}
		got := c.list()
		var wantList []model.Grant
		for _, g := range want {
			wantList = append(wantList, g)
		}
		slices.SortFunc(wantList, compareStoreOrder)
		if len(got) != len(wantList) {
			t.Fatalf("round %d: list has %d grants, want %d", round, len(got), len(wantList))
		}
		for i := range got {
			if got[i].ID != wantList[i].ID || got[i].Version != wantList[i].Version {
				t.Fatalf("round %d: list[%d] = %s v%d, want %s v%d", round, i, got[i].ID, got[i].Version, wantList[i].ID, wantList[i].Version)
			}
		}
	}
	c.drop()
	if c.isLoaded() || len(c.list()) != 0 {
		t.Fatal("a dropped cache still lists grants or says it is loaded")
	}
}

func TestOwnerScopes(t *testing.T) {
	a := model.ScopeKey{Cloud: model.CloudGCP, Scope: "projects/a"}
	b := model.ScopeKey{Cloud: model.CloudGCP, Scope: "projects/b"}
	c := model.ScopeKey{Cloud: model.CloudAWS, Scope: "111111111111"}
	o := newOwnerScopes()
	o.add("g1", a)
	o.add("g1", a)
	o.add("g2", a)
	o.add("g2", b)
	o.add("g3", c)
	if got := o.appendTo(nil, "g2"); !slices.Equal(got, []model.ScopeKey{a, b}) {
		t.Fatalf("g2 scopes = %v", got)
	}
	if got := o.appendTo([]model.ScopeKey{b}, "g2"); !slices.Equal(got, []model.ScopeKey{b, a}) {
		t.Fatalf("g2 scopes after b = %v", got)
	}
	// A pass read a and b: g2 is now only in b, g1 left a, g4 appeared in
	// a; c was not read, so g3 stays there.
	o.observed(map[model.ScopeKey]map[string]ownerState{
		a: {"g4": ownerPresent | ownerComplete, "g1": ownerComplete},
		b: {"g2": ownerPresent},
	})
	for _, tc := range []struct {
		owner string
		want  []model.ScopeKey
	}{{"g1", nil}, {"g2", []model.ScopeKey{b}}, {"g3", []model.ScopeKey{c}}, {"g4", []model.ScopeKey{a}}} {
		if got := o.appendTo(nil, tc.owner); !slices.Equal(got, tc.want) {
			t.Errorf("%s scopes = %v, want %v", tc.owner, got, tc.want)
		}
	}
	if o.len() != 3 || !o.has("g2", b) || o.has("g2", a) {
		t.Errorf("after the pass: %d owners, g2 in b %v, in a %v", o.len(), o.has("g2", b), o.has("g2", a))
	}
}

// The recorder's mirror holds records compactly; what it gives back must be
// the records it was given (the store's Updated time aside, which passes
// do not use).
func TestMirrorPacksRecords(t *testing.T) {
	a := model.Target{Cloud: model.CloudGCP, Scope: "projects/a", Role: "roles/viewer"}
	b := model.Target{Cloud: model.CloudGCP, Scope: "projects/a", Role: "roles/editor"}
	p := model.MustPrincipal("user:alice@example.com")
	records := []state.BindingRecord{
		{Binding: model.Binding{Target: a, Principal: p, Owner: "g1", NotBefore: t0, Expires: t0.Add(time.Hour), Native: true, Raw: "elevate:g1"},
			State: state.BindingApplied},
		{Binding: model.Binding{Target: b, Principal: p, Owner: "g2", Expires: t0.Add(time.Minute).Add(time.Microsecond)},
			State: state.BindingFailed, Detail: "refused"},
		{Binding: model.Binding{Target: a, Principal: p, Owner: "g3"}, State: state.BindingApplied},
	}
	var m mirrored
	m.pack(records)
	got := m.unpack()
	if len(got) != len(records) {
		t.Fatalf("unpacked %d records, want %d", len(got), len(records))
	}
	for i := range records {
		w, g := records[i], got[i]
		if g.Binding.Key() != w.Binding.Key() || g.State != w.State || g.Detail != w.Detail || !sameRecorded(w.Binding, g.Binding) ||
			g.Binding.NotBefore.IsZero() != w.Binding.NotBefore.IsZero() || g.Binding.Expires.IsZero() != w.Binding.Expires.IsZero() {
			t.Errorf("record %d: got %+v, want %+v", i, g, w)
		}
	}
	if len(m.targets) != 2 {
		t.Errorf("the mirror holds %d targets, want the 2 distinct ones", len(m.targets))
	}
}
