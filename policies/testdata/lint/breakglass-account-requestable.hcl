# breakglass-account-requestable: a break-glass account among jit requesters
# or approvers, or temporary principals or approvers (compared like the cloud
# does: emails case-insensitively).
role "db-admin" {
  description = "Production databases"
}

jit "db" {
  roles        = ["db-admin"]
  requesters   = ["group:sre@example.com", "user:BG-1@example.com"] # ERROR: breakglass-account-requestable
  max_duration = "1h"
  approval {
    approvers = [
      "user:lead@example.com",
      "gcp:user:breakglass-1@example.com", # ERROR: breakglass-account-requestable
    ]
  }
}

temporary "migration" {
  role          = "db-admin"
  principals    = ["aws:arn:aws:iam::123456789012:user/breakglass-alice"] # ERROR: breakglass-account-requestable
  expires       = "2026-12-15T00:00:00Z"
  justification = "CHG-1234"
  approved_by = [
    "user:cto@example.com",
    "user:bg-1@example.com", # ERROR: breakglass-account-requestable
  ]
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
