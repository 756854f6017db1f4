# breakglass-account-requestable near miss: the people behind break-glass
# accounts use their regular accounts, AWS ARNs are case-sensitive, and a
# policy test may assert that a break-glass account is denied.
role "db-admin" {
  description = "Production databases"
}

jit "db" {
  roles        = ["db-admin"]
  requesters   = ["user:alice@example.com", "user:bg-1@example.org"]
  max_duration = "1h"
  approval {
    approvers = ["user:lead@example.com", "user:breakglass-1@example.com"]
  }
}

temporary "migration" {
  role          = "db-admin"
  principals    = ["aws:arn:aws:iam::123456789012:user/BreakGlass-Alice"]
  expires       = "2026-12-15T00:00:00Z"
  justification = "CHG-1234"
  approved_by   = ["user:cto@example.com"]
}

break_glass "idp-outage" {
  accounts = [
    "user:bg-1@example.com",
    "gcp:user:breakglass-1@example.com",
    "aws:arn:aws:iam::123456789012:user/breakglass-alice",
  ]
  session_recording = true
  review_within     = "24h"
  notify            = ["pager"]
}

notifier "pager" {
  type    = "webhook"
  url_env = "PAGER_URL"
}

test "break-glass accounts cannot request" {
  request {
    requester = "user:bg-1@example.com"
    role      = "db-admin"
  }
  expect         = "denied"
  expect_reasons = ["breakglass-account"]
}
