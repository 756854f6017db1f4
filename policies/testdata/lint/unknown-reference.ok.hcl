# unknown-reference near miss: every name is declared (in any order), and a
# test may request an undeclared role when it asserts the unknown-role denial.
jit "db" {
  roles        = ["db-admin"]
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
}

break_glass "idp-outage" {
  accounts          = ["user:breakglass-1@example.com"]
  roles             = ["org-admin"]
  session_recording = true
  review_within     = "24h"
  notify            = ["pager"]
}

temporary "migration" {
  role          = "db-admin"
  principals    = ["user:contractor@partner.example"]
  expires       = "2026-12-15T00:00:00Z"
  justification = "Postgres 16 migration, CHG-1234"
  approved_by   = ["user:cto@example.com"]
}

test "sre gets the database" {
  request {
    requester     = "user:alice@example.com"
    groups        = ["group:sre@example.com"]
    role          = "db-admin"
    justification = "INC-1"
  }
  expect        = "allowed"
  expect_policy = "db"
}

test "unknown roles are denied" {
  request {
    requester = "user:alice@example.com"
    role      = "no-such-role"
  }
  expect         = "denied"
  expect_reasons = ["unknown-role"]
}

role "db-admin" {
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/cloudsql.admin"
  }
}

role "org-admin" {
  gcp {
    resource = "organizations/1234567890"
    role     = "roles/resourcemanager.organizationAdmin"
  }
}

notifier "pager" {
  type    = "webhook"
  url_env = "PAGER_URL"
}
