# duplicate-name: the second and later blocks of one kind with the same name.
role "db-admin" {
  description = "first"
}

role "db-admin" { # ERROR: duplicate-name
  description = "second"
}

role "db-admin" { # ERROR: duplicate-name
  description = "third"
}

jit "db" {
  roles        = ["db-admin"]
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
}

jit "db" { # ERROR: duplicate-name
  roles        = ["db-admin"]
  requesters   = ["group:dba@example.com"]
  max_duration = "30m"
}

temporary "access" {
  role          = "db-admin"
  principals    = ["user:a@partner.example"]
  expires       = "2026-12-15T00:00:00Z"
  justification = "CHG-1"
  approved_by   = ["user:cto@example.com"]
}

temporary "access" { # ERROR: duplicate-name
  role          = "db-admin"
  principals    = ["user:b@partner.example"]
  expires       = "2026-12-15T00:00:00Z"
  justification = "CHG-2"
  approved_by   = ["user:cto@example.com"]
}

break_glass "outage" {
  accounts          = ["user:bg-1@example.com"]
  session_recording = true
  review_within     = "24h"
  notify            = ["pager"]
}

break_glass "outage" { # ERROR: duplicate-name
  accounts          = ["user:bg-2@example.com"]
  session_recording = true
  review_within     = "24h"
  notify            = ["pager"]
}

notifier "pager" {
  type    = "webhook"
  url_env = "PAGER_URL"
}

notifier "pager" { # ERROR: duplicate-name
  type    = "slack"
  url_env = "SLACK_URL"
}

test "sre" {
  request {
    requester = "user:alice@example.com"
    role      = "db-admin"
  }
  expect = "denied"
}

test "sre" { # ERROR: duplicate-name
  request {
    requester = "user:bob@example.com"
    role      = "db-admin"
  }
  expect = "denied"
}
