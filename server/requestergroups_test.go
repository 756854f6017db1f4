package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/state"
)

// TestRequestRecordsGroups: a request stores the requester's groups as the
// evaluation saw them (sorted, without duplicates), the API shows them,
// and "none" (recorded, empty) stays distinct from "not recorded".
func TestRequestRecordsGroups(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		// Dave's token lists his groups unsorted and one of them twice.
		e.tokens["dave"] = signJWT(t, issuerRSA, e.claims("dave@example.com", e.clock.Now(),
			"sre@example.com", "oncall@example.com", "SRE@example.com", "eng@example.com"))
		wantGroups := []string{"group:eng@example.com", "group:oncall@example.com", "group:sre@example.com"}

		created := e.request("dave", map[string]any{"role": "db-read", "justification": "slow query"})
		if created.Status != "approved" {
			t.Fatalf("dave's db-read request is %s, want approved through group:sre", created.Status)
		}
		if d := cmp.Diff(wantGroups, created.RequesterGroups); d != "" {
			t.Errorf("POST /v1/requests requester_groups (-want +got):\n%s", d)
		}
		detail := e.grantDetail(t, created.ID, "dave")
		if d := cmp.Diff(wantGroups, detail.Grant.RequesterGroups); d != "" {
			t.Errorf("GET /v1/grants/{id} requester_groups (-want +got):\n%s", d)
		}
		stored, err := e.store.GetGrant(t.Context(), created.ID)
		if err != nil {
			t.Fatal(err)
		}
		var storedGroups []string
		for _, g := range stored.RequesterGroups {
			storedGroups = append(storedGroups, g.String())
		}
		if d := cmp.Diff(wantGroups, storedGroups); d != "" {
			t.Errorf("stored requester groups (-want +got):\n%s", d)
		}

		// Later changes to the grant keep them.
		e.clock.Advance(time.Minute)
		if r := e.call("POST", "/v1/grants/"+created.ID+"/extend", "dave", map[string]any{"by": "30m"}); r.status != http.StatusOK {
			t.Fatalf("extending: %d %s", r.status, r.body)
		}
		if got := e.grantDetail(t, created.ID, "dave").Grant.RequesterGroups; !slices.Equal(got, wantGroups) {
			t.Errorf("requester_groups after an extension: %v, want %v", got, wantGroups)
		}

		// The admin's static token has no groups: recorded, and empty (its
		// request is denied, and stored all the same).
		denied := e.request(admin, map[string]any{"role": "db-read", "justification": "x"})
		raw := e.rawGrant(t, denied.ID)
		if got, ok := raw["requester_groups"]; !ok || string(got) != "[]" {
			t.Errorf("a request without groups: requester_groups %s (present %v), want []", got, ok)
		}

		// A grant stored without them (before they were recorded, or a
		// temporary grant) leaves the field out.
		legacy, err := e.store.CreateGrant(t.Context(), model.Grant{
			Kind: model.KindJIT, Principal: model.MustPrincipal(principalOf[requester]), Role: "db-read", Policy: "self-read",
			Status: model.StatusPending, Duration: time.Hour,
		}, state.Change{Actor: principalOf[requester], Action: "request"})
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := e.rawGrant(t, legacy.ID)["requester_groups"]; ok {
			t.Errorf("a grant without recorded groups shows requester_groups %s; want the field left out", got)
		}
		for _, g := range e.listAs(t, admin, "") {
			want := map[string][]string{created.ID: wantGroups, denied.ID: {}, legacy.ID: nil}[g.ID]
			if (want == nil) != (g.RequesterGroups == nil) || !slices.Equal(want, g.RequesterGroups) {
				t.Errorf("GET /v1/grants: grant %s requester_groups %#v, want %#v", g.ID, g.RequesterGroups, want)
			}
		}
	})
}

// TestRequesterGroupsNormalised: what a grant records of an identity's groups.
func TestRequesterGroupsNormalised(t *testing.T) {
	p := model.MustPrincipal
	for _, tc := range []struct {
		name string
		in   []model.Principal
		want []model.Principal
	}{
		{"none is recorded as empty, not as nil", nil, []model.Principal{}},
		{"sorted", []model.Principal{p("group:sre@example.com"), p("group:eng@example.com")},
			[]model.Principal{p("group:eng@example.com"), p("group:sre@example.com")}},
		{"equal principals once, the first spelling kept",
			[]model.Principal{p("group:SRE@example.com"), p("group:eng"), p("group:sre@example.com")},
			[]model.Principal{p("group:eng"), p("group:SRE@example.com")}},
	} {
		got := requesterGroups(tc.in)
		if got == nil {
			t.Errorf("%s: got nil, which means not recorded", tc.name)
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, d)
		}
	}
}

// grantDetail is GET /v1/grants/{id} as who.
func (e *env) grantDetail(t *testing.T, id, who string) GrantDetail {
	t.Helper()
	r := e.call("GET", "/v1/grants/"+id, who, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /v1/grants/%s as %s = %d %s", id, who, r.status, r.body)
	}
	var d GrantDetail
	r.decode(t, &d)
	return d
}

// rawGrant is the grant object of GET /v1/grants/{id} as the admin sees
// it, field by field, to tell a missing field from an empty one.
func (e *env) rawGrant(t *testing.T, id string) map[string]json.RawMessage {
	t.Helper()
	r := e.call("GET", "/v1/grants/"+id, admin, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /v1/grants/%s = %d %s", id, r.status, r.body)
	}
	var body struct {
		Grant map[string]json.RawMessage `json:"grant"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	return body.Grant
}
