package reconcile_test

import (
	"testing"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
)

const fixtureHCL = `
role "db-admin" {
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/cloudsql.admin"
  }
  aws {
    account   = "123456789012"
    role_name = "prod-db-admin"
  }
}

role "owner" {
  standing = "remove"
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/owner"
  }
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/owner"
  }
}

role "viewer" {
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/viewer"
  }
}

jit "db" {
  roles        = ["db-admin", "owner"]
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
}
`

var (
	sqlAdmin  = model.Target{Cloud: model.CloudGCP, Scope: "projects/acme-prod", Role: "roles/cloudsql.admin"}
	awsDB     = model.Target{Cloud: model.CloudAWS, Scope: "123456789012", Role: "prod-db-admin"}
	gcpOwner  = model.Target{Cloud: model.CloudGCP, Scope: "projects/acme-prod", Role: "roles/owner"}
	gcpViewer = model.Target{Cloud: model.CloudGCP, Scope: "projects/acme-prod", Role: "roles/viewer"}
	// stray is a target no role names.
	stray = model.Target{Cloud: model.CloudGCP, Scope: "projects/acme-prod", Role: "roles/editor"}

	alice = model.MustPrincipal("user:alice@example.com")
	bob   = model.MustPrincipal("user:bob@example.com")
	carol = model.MustPrincipal("user:carol@example.com")

	now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
)

func loadSet(t testing.TB, src string) *policies.Set {
	t.Helper()
	set, diags := policies.LoadSources([]string{"fixture.hcl"}, map[string][]byte{"fixture.hcl": []byte(src)})
	if diags.HasErrors() {
		t.Fatalf("loading fixture policies: %v", diags)
	}
	return set
}

// grant returns an active grant of role for p over [now-30m, now+30m).
func grant(id string, p model.Principal, role string) *model.Grant {
	return &model.Grant{
		ID: id, Kind: model.KindJIT, Principal: p, Role: role, Policy: "db",
		Status: model.StatusActive, Duration: time.Hour,
		Starts: now.Add(-30 * time.Minute), Expires: now.Add(30 * time.Minute),
	}
}

// bound returns the binding grant g should have on target.
func bound(g *model.Grant, target model.Target) model.Binding {
	return model.Binding{Target: target, Principal: g.Principal, Owner: g.ID, NotBefore: g.Starts, Expires: g.Expires}
}

func grantsByID(gs ...*model.Grant) map[string]*model.Grant {
	m := make(map[string]*model.Grant, len(gs))
	for _, g := range gs {
		m[g.ID] = g
	}
	return m
}
