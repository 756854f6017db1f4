# unknown-reference: roles, notifiers and jit policies that no block declares.
role "db-admin" {
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/cloudsql.admin"
  }
}

notifier "pager" {
  type    = "webhook"
  url_env = "PAGER_URL"
}

jit "db" {
  roles        = ["db-admin", "db-admn"] # ERROR: unknown-reference
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
}

temporary "migration" {
  role          = "db-reader" # ERROR: unknown-reference
  principals    = ["user:contractor@partner.example"]
  starts        = "2026-12-01T00:00:00Z"
  expires       = "2026-12-15T00:00:00Z"
  justification = "Postgres 16 migration, CHG-1234"
  approved_by   = ["user:cto@example.com"]
}

break_glass "idp-outage" {
  accounts = ["user:breakglass-1@example.com"]
  roles = [
    "org-admin", # ERROR: unknown-reference
  ]
  session_recording = true
  review_within     = "24h"
  notify            = ["pager", "security-pager"] # ERROR: unknown-reference
}

test "typo in the expected policy" {
  request {
    requester     = "user:alice@example.com"
    groups        = ["group:sre@example.com"]
    role          = "db-admin"
    justification = "INC-1"
  }
  expect        = "allowed"
  expect_policy = "db-troubleshooting" # ERROR: unknown-reference
}

test "typo in the requested role" {
  request {
    requester = "user:alice@example.com"
    role      = "db-admn" # ERROR: unknown-reference
  }
  expect = "denied"
}
