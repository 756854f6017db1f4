# duplicate-name near miss: names are unique per block kind, so blocks of
# different kinds may share one.
role "db" {
  description = "Production databases"
}

jit "db" {
  roles        = ["db"]
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
}

temporary "db" {
  role          = "db"
  principals    = ["user:a@partner.example"]
  expires       = "2026-12-15T00:00:00Z"
  justification = "CHG-1"
  approved_by   = ["user:cto@example.com"]
}

break_glass "db" {
  accounts          = ["user:bg-1@example.com"]
  session_recording = true
  review_within     = "24h"
  notify            = ["db"]
}

notifier "db" {
  type    = "webhook"
  url_env = "PAGER_URL"
}

test "db" {
  request {
    requester = "user:alice@example.com"
    role      = "db"
  }
  expect = "denied"
}

role "db-2" {
  description = "Names differing only by a suffix are different names"
}
